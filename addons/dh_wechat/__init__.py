# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"DH WeChat: the tenant mobile portal (official-account H5 pages), WeChat OAuth binding and WeChat Pay API v3 recharge."
from . import routes  # noqa: F401  (registers the portal's HTTP routes)
