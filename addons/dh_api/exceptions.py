# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.exceptions import UserError


class TokenError(UserError):
    pass
