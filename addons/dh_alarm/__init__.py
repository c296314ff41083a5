# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"DH alarms: alarm profiles and evaluation, staged low-balance messages, SMS and WeChat notifications, safe-electricity limits."
from . import routes  # noqa: F401,E402  (registers the board's routes)
