# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"DH billing: tariffs, prepaid wallets, recharge and refunds, consumption billing, arrears control, allocation, accounting."
