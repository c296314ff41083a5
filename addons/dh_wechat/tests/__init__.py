# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
