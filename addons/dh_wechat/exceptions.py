# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class WeChatError(UserError):
    pass


class WeChatValidationError(ValidationError):
    pass
