# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError


class AreaValidationError(ValidationError):
    pass


class MeterValidationError(ValidationError):
    pass


class MergeError(UserError):
    pass


class IngestError(UserError):
    pass


class ImportError_(UserError):
    pass


class ExportError(UserError):
    pass


class ReplaceError(UserError):
    pass
