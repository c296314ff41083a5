# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Request validation of the integration API: pure functions, no database.

Every call's body is a JSON object; each field is checked for type, range
and format, unknown fields are refused (a typo is an error, not a silent
default).  A failure raises :class:`Invalid` with a stable code, the field
and the reason; the route turns it into a 400 answer.
"""
import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation

MAX_AMOUNT = Decimal('100000.00')
MAX_DEVICES = 100
MAX_PAGE_SIZE = 500
MAX_RANGE_DAYS = 366
AMOUNT = re.compile(r'^[0-9]{1,6}(\.[0-9]{1,2})?$')
THRESHOLD = re.compile(r'^-?[0-9]{1,10}(\.[0-9]{1,2})?$')
PLAIN = re.compile(r'^-?[0-9]{1,20}(\.[0-9]{1,20})?$')
TXN_NO = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$')
DEVICE_ID = re.compile(r'^[0-9A-Za-z][0-9A-Za-z_.#:/-]{0,63}$')
MONTH = re.compile(r'^([0-9]{4})-([0-9]{2})$')
DATE = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$')

ACTIONS = ('prepaid', 'postpaid', 'public', 'trip', 'close', 'hold',
    'release')
LOW_BALANCE_KINDS = ('money', 'energy')


# why a field is refused: key -> English text (message.xml holds the same
# texts as dh_api.msg_reason_<key>, translated; a test keeps them equal)
REASONS = {
    'not_json': "the body is not valid JSON (UTF-8)",
    'not_object': "the body must be a JSON object",
    'unknown': "this call has no such field",
    'required': "this field is required",
    'string': "must be a string",
    'device_format': "must be a meter number or address (1-64 letters, "
    "digits, _ . # : / -)",
    'device_list': "must be a list of device ids",
    'device_count': "must hold 1 to %(max)s device ids",
    'amount_type': "must be a decimal string or a number",
    'amount_format': 'must be a decimal number like "100.00"',
    'not_number': "not a number",
    'positive': "must be greater than zero",
    'amount_max': "must be at most %(max)s",
    'decimals': "at most two decimals",
    'threshold_range': "must be between -1000000000 and 1000000000",
    'txn_format': "must be 1-64 letters, digits, _ . : - (starting with a "
    "letter or digit)",
    'month_format': "must be a month YYYY-MM",
    'month_range': "must be a month between 2000-01 and 2100-12",
    'date_format': "must be a date YYYY-MM-DD",
    'date_none': "no such date",
    'date_range': "must be between 2000-01-01 and 2100-12-31",
    'date_order': "must not be before date_from",
    'date_span': "the range is at most %(max)s days",
    'integer': "must be an integer",
    'integer_range': "must be between %(low)s and %(high)s",
    'choice': "must be one of %(choices)s",
    }


class Invalid(Exception):
    """A request field is wrong: code (stable), field, reason key (see
    REASONS) and its parameters"""

    def __init__(self, code, field, reason, **params):
        self.code = code
        self.field = field
        self.reason = reason
        self.params = {k: str(v) for k, v in params.items()}
        super().__init__(self.text())

    def text(self):
        "The reason in English, for use without a database"
        reason = REASONS[self.reason] % self.params
        return f'{self.field}: {reason}' if self.field else reason


def parse_body(raw):
    """The request body as a dict: empty means {}; anything but a JSON
    object (or NaN / Infinity, or bad UTF-8) is refused.  Numbers with a
    fraction are read as Decimal, never float."""
    if not raw or not raw.strip():
        return {}
    try:
        text = raw.decode('utf-8') if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_float=Decimal,
            parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Invalid('invalid_json', None, 'not_json')
    if not isinstance(data, dict):
        raise Invalid('invalid_json', None, 'not_object')
    return data


def _no_constant(name):
    raise ValueError(name)


def _only(data, allowed):
    for key in data:
        if key not in allowed:
            raise Invalid('unknown_field', str(key)[:64], 'unknown')


def _required(data, field):
    if field not in data or data[field] is None:
        raise Invalid('missing_field', field, 'required')
    return data[field]


def device_id(value, field='device_id'):
    "A meter number or address"
    if not isinstance(value, str):
        raise Invalid('invalid_field', field, 'string')
    if not DEVICE_ID.fullmatch(value):
        raise Invalid('invalid_field', field, 'device_format')
    return value


def device_ids(value, field='device_ids'):
    if not isinstance(value, list):
        raise Invalid('invalid_field', field, 'device_list')
    if not 1 <= len(value) <= MAX_DEVICES:
        raise Invalid('invalid_field', field, 'device_count',
            max=MAX_DEVICES)
    result = []
    for i, item in enumerate(value):
        item = device_id(item, f'{field}[{i}]')
        if item not in result:
            result.append(item)
    return result


def _decimal(value, code, field, pattern):
    """A JSON number (int or Decimal) or a string matching ``pattern`` as a
    finite Decimal, and whether its form was right: a plain decimal string
    outside the pattern ("0.001", "-5") is read so that the reason given is
    the precise one, and refused after the range checks"""
    if isinstance(value, bool) or not isinstance(value, (str, int,
                Decimal)):
        raise Invalid(code, field, 'amount_type')
    shaped = True
    if isinstance(value, str):
        if not pattern.fullmatch(value):
            if not PLAIN.fullmatch(value):
                raise Invalid(code, field, 'amount_format')
            shaped = False
    try:
        value = Decimal(value)
    except (InvalidOperation, ValueError):
        raise Invalid(code, field, 'not_number')
    if not value.is_finite():
        raise Invalid(code, field, 'not_number')
    return value, shaped


def amount(value, field='amount'):
    """Money in yuan: a string like "100.00" or a number, greater than
    zero, at most two decimals, at most MAX_AMOUNT"""
    value, shaped = _decimal(value, 'invalid_amount', field, AMOUNT)
    if value <= 0:
        raise Invalid('invalid_amount', field, 'positive')
    if value > MAX_AMOUNT:
        raise Invalid('invalid_amount', field, 'amount_max',
            max=MAX_AMOUNT)
    if value != value.quantize(Decimal('0.01')):
        raise Invalid('invalid_amount', field, 'decimals')
    if not shaped:
        raise Invalid('invalid_amount', field, 'amount_format')
    return value.quantize(Decimal('0.01'))


def threshold(value, field='below'):
    "A money or energy threshold: any decimal, two decimals at most"
    value, shaped = _decimal(value, 'invalid_field', field, THRESHOLD)
    if abs(value) > Decimal('1000000000'):
        raise Invalid('invalid_field', field, 'threshold_range')
    if value != value.quantize(Decimal('0.01')):
        raise Invalid('invalid_field', field, 'decimals')
    if not shaped:
        raise Invalid('invalid_field', field, 'amount_format')
    return value.quantize(Decimal('0.01'))


def txn_no(value, field='txn_no'):
    if not isinstance(value, str) or not TXN_NO.fullmatch(value):
        raise Invalid('invalid_field', field, 'txn_format')
    return value


def month(value, field='month'):
    "YYYY-MM -> the first day of the month"
    if not isinstance(value, str):
        raise Invalid('invalid_month', field, 'month_format')
    match = MONTH.fullmatch(value)
    if not match:
        raise Invalid('invalid_month', field, 'month_format')
    year, month_ = int(match.group(1)), int(match.group(2))
    if not (2000 <= year <= 2100 and 1 <= month_ <= 12):
        raise Invalid('invalid_month', field, 'month_range')
    return dt.date(year, month_, 1)


def date(value, field):
    if not isinstance(value, str) or not DATE.fullmatch(value):
        raise Invalid('invalid_date', field, 'date_format')
    try:
        result = dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid('invalid_date', field, 'date_none')
    if not 2000 <= result.year <= 2100:
        raise Invalid('invalid_date', field, 'date_range')
    return result


MISSING = object()


def integer(value, field, low, high, default=None):
    "An optional integer: absent gives the default, null is refused"
    if value is MISSING:
        return default
    if isinstance(value, Decimal) and value.is_finite() \
            and value == value.to_integral_value():
        value = int(value)      # 2.0 is an integer in JSON Schema
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid('invalid_field', field, 'integer')
    if not low <= value <= high:
        raise Invalid('invalid_field', field, 'integer_range',
            low=low, high=high)
    return value


def choice(value, field, choices):
    if not isinstance(value, str) or value not in choices:
        raise Invalid('invalid_field', field, 'choice',
            choices=', '.join(choices))
    return value


def _paging(data):
    return {'page': integer(data.get('page', MISSING), 'page', 1, 1000000,
            1),
        'page_size': integer(data.get('page_size', MISSING), 'page_size',
            1, MAX_PAGE_SIZE, 100)}


# -- one validator per call: data (dict) -> clean parameters ---------------
def v_balance(data):
    _only(data, {'device_id'})
    return {'device_id': device_id(_required(data, 'device_id'))}


def v_balances(data):
    _only(data, {'page', 'page_size'})
    return _paging(data)


def v_recharge(data):
    _only(data, {'device_id', 'amount', 'txn_no'})
    return {'device_id': device_id(_required(data, 'device_id')),
        'amount': amount(_required(data, 'amount')),
        'txn_no': txn_no(_required(data, 'txn_no'))}


def v_recharge_result(data):
    _only(data, {'device_id', 'txn_no'})
    return {'device_id': device_id(_required(data, 'device_id')),
        'txn_no': txn_no(_required(data, 'txn_no'))}


def v_user(data):
    return v_balance(data)


def v_low_balance(data):
    _only(data, {'below', 'kind', 'page', 'page_size'})
    kind = data.get('kind', MISSING)
    return {'below': threshold(_required(data, 'below')),
        'kind': 'money' if kind is MISSING else choice(kind, 'kind',
            LOW_BALANCE_KINDS),
        **_paging(data)}


def v_usage(data):
    _only(data, {'device_ids', 'month'})
    return {'device_ids': device_ids(_required(data, 'device_ids')),
        'month': month(_required(data, 'month'))}


def v_recharges(data):
    _only(data, {'device_ids', 'date_from', 'date_to'})
    result = {'device_ids': device_ids(_required(data, 'device_ids')),
        'date_from': date(_required(data, 'date_from'), 'date_from'),
        'date_to': date(_required(data, 'date_to'), 'date_to')}
    if result['date_to'] < result['date_from']:
        raise Invalid('invalid_date', 'date_to', 'date_order')
    if (result['date_to'] - result['date_from']).days >= MAX_RANGE_DAYS:
        raise Invalid('invalid_date', 'date_to', 'date_span',
            max=MAX_RANGE_DAYS)
    return result


def v_abnormal(data):
    _only(data, {'page', 'page_size'})
    return _paging(data)


def v_control(data):
    _only(data, {'device_id', 'action'})
    return {'device_id': device_id(_required(data, 'device_id')),
        'action': choice(_required(data, 'action'), 'action', ACTIONS)}
