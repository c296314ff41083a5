"""Prepaid purchase (recharge) frames, per vendor dialect.

Common to every dialect: the purchase count is the replay guard. A purchase
carries the count the meter will have *after* it (meter count + 1); the
meter applies it when its count is one less, treats an equal count as a
duplicate (so retries are idempotent) and rejects anything else
(:func:`classify`).

Dialects (``DIALECTS``, chosen by ``VendorProfile.recharge``):

* ``plain-write`` — vendor scheme without ESAM (PROTOCOLS.md §3): a
  plaintext 0x14 write of DI 04900000 whose data, written most significant
  first as the standard prints formats, is ``amount(XXXXXX.XX) 00 00
  count(NNNN)``; on the wire (low byte first) that is ``count`` as 4 BCD
  bytes then ``amount`` as 4 BCD bytes. Security is switched off first by
  writing 0004 to vendor DI 049F0000 (0006 switches it back on), and the
  current count is read from 03330201.
* ``esam`` — State-Grid 0x03 / 070102FF: needs the utility's key service;
  building it raises :class:`CodecError`.
"""

from dataclasses import dataclass
from decimal import Decimal

from . import dlt645
from .bcd import decimal_to_bcd
from .errors import CodecError
from .vendors import get_vendor

APPLY = 'apply'
DUPLICATE = 'duplicate'
INVALID = 'invalid'

PURCHASE_DI = '04900000'
SECURITY_DI = '049F0000'
COUNT_DI = '03330201'
SECURITY_OFF = 0x0004
SECURITY_ON = 0x0006
MAX_COUNT = 9999


def classify(meter_count: int, command_count: int) -> str:
    """``apply`` (meter = command − 1), ``duplicate`` (equal) or
    ``invalid``."""
    if command_count == meter_count + 1:
        return APPLY
    if command_count == meter_count:
        return DUPLICATE
    return INVALID


@dataclass(frozen=True)
class Purchase:
    address: str
    amount: Decimal
    count: int


def _amount(amount) -> Decimal:
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        raise CodecError(f'amount {amount!r} is not a number') from None
    if not value.is_finite() or value <= 0:
        raise CodecError('amount must be positive')
    if value != value.quantize(Decimal('0.01')):
        raise CodecError('amount has more than 2 decimals')
    return value.quantize(Decimal('0.01'))


@dataclass(frozen=True)
class PlainWrite:
    name: str = 'plain-write'
    di: str = PURCHASE_DI

    def build(self, address: str, amount, count: int, *, password='000000',
            level=None, operator='00000000', vendor=None,
            preamble=None) -> bytes:
        if not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise CodecError(f'purchase count must be 1..{MAX_COUNT}')
        data = decimal_to_bcd(count, 4, 0) + decimal_to_bcd(
            _amount(amount), 4, 2)
        return dlt645.write_request(address, self.di, data,
            password=password, level=level, operator=operator,
            vendor=vendor, preamble=preamble)

    def parse(self, message: 'dlt645.Message') -> Purchase:
        if message.command != 'write' or message.di != self.di \
                or message.is_response:
            raise CodecError(f'not a {self.name} purchase frame')
        return Purchase(message.address, message.value['amount'],
            int(message.value['count']))


@dataclass(frozen=True)
class Esam:
    name: str = 'esam'
    di: str = '070102FF'

    def build(self, *args, **kwargs) -> bytes:
        raise CodecError('ESAM recharge needs the utility key service '
            '(MAC and ciphertext); not available')

    def parse(self, message) -> Purchase:
        raise CodecError('ESAM recharge frames cannot be read without keys')


DIALECTS = {d.name: d for d in (PlainWrite(), Esam())}


def dialect(vendor=None):
    profile = get_vendor(vendor)
    try:
        return DIALECTS[profile.recharge]
    except KeyError:
        raise CodecError(f'unknown recharge dialect {profile.recharge!r}'
            ) from None


def purchase_request(address: str, amount, count: int, *, vendor=None,
        **auth) -> bytes:
    """Purchase frame in the vendor's dialect; ``count`` = meter count + 1."""
    return dialect(vendor).build(address, amount, count, vendor=vendor,
        **auth)


def parse_purchase(raw_or_message, *, vendor=None) -> Purchase:
    message = raw_or_message
    if isinstance(raw_or_message, (bytes, bytearray)):
        message = dlt645.decode(raw_or_message, vendor=vendor)
    return dialect(vendor).parse(message)


def security_request(address: str, enable: bool, *, vendor=None,
        **auth) -> bytes:
    """Vendor switch of the ESAM security check (049F0000)."""
    return dlt645.write_request(address, SECURITY_DI,
        (SECURITY_ON if enable else SECURITY_OFF).to_bytes(2, 'little'),
        vendor=vendor, **auth)


def count_request(address: str, *, vendor=None, preamble=None) -> bytes:
    """Read of the purchase count (03330201)."""
    return dlt645.read_request(address, COUNT_DI, vendor=vendor,
        preamble=preamble)
