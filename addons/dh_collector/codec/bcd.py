"""Byte helpers shared by the codecs: hex text, checksum, BCD, addresses.

Multi-byte fields of DL/T645 and CJ/T188 go low byte first on the wire;
every helper here takes and returns wire order unless it says otherwise.
"""

import datetime as dt
from decimal import Decimal

from .errors import CodecError

_HEX_SEPARATORS = str.maketrans('', '', ' \t\r\n:-_,')

#: every valid packed-BCD byte (both nibbles 0-9): ``raw.translate(None,
#: BCD_BYTES)`` leaves exactly the bytes that are not BCD, in order.
BCD_BYTES = bytes(b for b in range(256) if b >> 4 <= 9 and b & 0x0F <= 9)
#: the same plus the ``AA`` wildcard/broadcast byte of addresses
ADDRESS_BYTES = BCD_BYTES + b'\xaa'


def parse_hex(text: str) -> bytes:
    """``'68 25 04 …'`` (spaces, colons, dashes allowed, ``0x`` optional)."""
    if not isinstance(text, str):
        raise CodecError('hex input must be text')
    cleaned = text.translate(_HEX_SEPARATORS)
    if cleaned[:2].lower() == '0x':
        cleaned = cleaned[2:]
    if not cleaned:
        raise CodecError('empty hex input')
    if len(cleaned) % 2:
        raise CodecError('hex input has an odd number of digits')
    if not all(c in '0123456789abcdefABCDEF' for c in cleaned):
        raise CodecError('hex input contains a non-hex character')
    return bytes.fromhex(cleaned)


def to_hex(data: bytes) -> str:
    """Uppercase, space separated: ``68 25 04``."""
    return bytes(data).hex(' ').upper()


def checksum(data: bytes) -> int:
    """Sum of the bytes modulo 256 (DL/T645 and CJ/T188 CS)."""
    return sum(data) & 0xFF


def bcd_byte(value: int) -> int:
    if not 0 <= value <= 99:
        raise CodecError(f'{value} does not fit one BCD byte')
    return (value // 10) << 4 | value % 10


def from_bcd_byte(byte: int) -> int:
    high, low = byte >> 4, byte & 0x0F
    if high > 9 or low > 9:
        raise CodecError(f'byte 0x{byte:02X} is not BCD')
    return high * 10 + low


def bcd_to_int(raw: bytes, *, signed: bool = False) -> int:
    """Little-endian packed BCD to an integer; ``signed``: bit 7 of the
    most significant byte is the sign."""
    if not raw:
        raise CodecError('empty BCD field')
    if type(raw) is not bytes:
        try:
            raw = bytes(raw)
        except (TypeError, ValueError):   # not bytes-like: byte by byte
            return _bcd_to_int_by_bytes(raw, signed)
    negative = False
    if signed and raw[-1] & 0x80:
        negative = True
        raw = raw[:-1] + bytes((raw[-1] & 0x7F,))
    bad = raw.translate(None, BCD_BYTES)
    if bad:
        # the most significant offending byte, as a digit-by-digit read
        # would meet it first
        raise CodecError(f'byte 0x{bad[-1]:02X} is not BCD')
    # the hex text of valid BCD bytes is their decimal digits
    value = int(raw[::-1].hex())
    return -value if negative else value


def _bcd_to_int_by_bytes(raw, signed: bool) -> int:
    negative = False
    if signed and raw[-1] & 0x80:
        negative = True
        raw = raw[:-1] + bytes([raw[-1] & 0x7F])
    value = 0
    for byte in reversed(raw):
        value = value * 100 + from_bcd_byte(byte)
    return -value if negative else value


def int_to_bcd(value: int, length: int, *, signed: bool = False) -> bytes:
    """Integer to ``length`` bytes of little-endian packed BCD."""
    negative = value < 0
    if negative and not signed:
        raise CodecError(f'{value} is negative but the field is unsigned')
    magnitude = -value if negative else value
    digits = f'{magnitude:0{length * 2}d}'
    if len(digits) > length * 2 or (signed and digits[0] > '7'):
        raise CodecError(f'{value} does not fit {length} BCD bytes')
    # decimal digits read as hex are the packed BCD bytes
    out = bytes.fromhex(digits)[::-1]
    if negative:
        out = out[:-1] + bytes((out[-1] | 0x80,))
    return out


def decimal_to_bcd(value, length: int, decimals: int, *,
        signed: bool = False) -> bytes:
    """A number with ``decimals`` implied decimals to BCD (exact, no
    rounding: extra precision is an error)."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        scaled = number.scaleb(decimals)
    except ArithmeticError:
        raise CodecError(f'{value!r} is not a number') from None
    if not scaled.is_finite():
        raise CodecError(f'{value!r} is not a finite number')
    integer = int(scaled)
    if scaled != integer:
        raise CodecError(f'{value} has more than {decimals} decimals')
    return int_to_bcd(integer, length, signed=signed)


def bcd_to_decimal(raw: bytes, decimals: int, *, signed: bool = False):
    """BCD to ``Decimal`` with ``decimals`` implied decimals (``int`` when
    there are none)."""
    number = bcd_to_int(raw, signed=signed)
    if not decimals:
        return number
    if decimals > 0:
        # same coefficient and exponent as Decimal(number).scaleb(-decimals)
        return Decimal(f'{number}E-{decimals}')
    return Decimal(number).scaleb(-decimals)


def wire_to_digits(raw: bytes) -> str:
    """Digits as printed (most significant first) from wire order, keeping
    wildcard/broadcast nibbles (``AA``) as letters; any other non-BCD byte
    is an error."""
    if type(raw) is not bytes:
        try:
            raw = bytes(raw)
        except (TypeError, ValueError):   # not bytes-like: byte by byte
            for byte in raw:
                if byte != 0xAA and (byte >> 4 > 9 or byte & 0x0F > 9):
                    raise CodecError(f'address byte 0x{byte:02X} is not BCD')
            raise
    bad = raw.translate(None, ADDRESS_BYTES)
    if bad:
        raise CodecError(f'address byte 0x{bad[0]:02X} is not BCD')
    return raw[::-1].hex().upper()


def normalize_digits(digits: str, length: int,
        what: str = 'address') -> tuple[str, bytes]:
    """Printed digits, zero-padded on the left to ``length`` bytes, and
    their wire order. ``AA`` pairs are wildcards."""
    if not isinstance(digits, str):
        raise CodecError(f'{what} must be text')
    size = length * 2
    if len(digits) != size:
        digits = digits.strip()
        if len(digits) > size:
            raise CodecError(f'{what} {digits!r} has more than {size} digits')
        digits = digits.rjust(size, '0')
    if not (digits.isascii() and digits.isdigit()):
        digits = digits.upper()
        for i in range(0, size, 2):
            pair = digits[i:i + 2]
            if pair != 'AA' and not (pair.isascii() and pair.isdigit()):
                raise CodecError(f'{what} {digits!r} must be decimal digits '
                    '(or AA wildcards)')
    return digits, bytes.fromhex(digits)[::-1]


def digits_to_wire(digits: str, length: int, what: str = 'address') -> bytes:
    """Printed digits (most significant first) to wire order; shorter input
    is zero-padded on the left. ``AA`` pairs are wildcards."""
    return normalize_digits(digits, length, what)[1]


def hex_to_wire(text: str, length: int, what: str) -> bytes:
    """A hex field written most significant first (DI, password, operator
    code) to wire order."""
    if not isinstance(text, str):
        raise CodecError(f'{what} must be text')
    wire = _HEX_WIRE.get(text)
    if wire is not None and len(wire) == length:
        return wire
    text = text.strip()
    wire = None
    if len(text) == length * 2:
        try:
            # fromhex skips inner ASCII whitespace: fewer bytes, rejected
            wire = bytes.fromhex(text)[::-1]
        except ValueError:
            pass
    if wire is None or len(wire) != length:
        raise CodecError(f'{what} must be {length * 2} hex digits, '
            f'got {text!r}')
    if len(_HEX_WIRE) >= _HEX_WIRE_MAX:
        _HEX_WIRE.clear()
    _HEX_WIRE[text] = wire
    return wire


# hex_to_wire results (DIs, passwords and operator codes repeat endlessly)
_HEX_WIRE: dict[str, bytes] = {}
_HEX_WIRE_MAX = 4096


def wire_to_hex(raw: bytes) -> str:
    return bytes(raw)[::-1].hex().upper()


def bcd_fields(raw: bytes) -> list[int]:
    """Each byte as a 0–99 BCD number, in wire order."""
    return [from_bcd_byte(b) for b in raw]


def encode_datetime(when: dt.datetime, layout: str) -> bytes:
    """``layout`` names the fields in wire order, e.g. ``'ssmmhhDDMMYY'``."""
    fields = {
        'ss': when.second, 'mm': when.minute, 'hh': when.hour,
        'DD': when.day, 'MM': when.month, 'YY': when.year % 100,
        'CC': when.year // 100, 'WW': (when.isoweekday() % 7),
        }
    return bytes(bcd_byte(fields[layout[i:i + 2]])
        for i in range(0, len(layout), 2))


def decode_datetime(raw: bytes, layout: str) -> dict[str, int]:
    """Fields of a BCD date/time in ``layout`` (wire order)."""
    if len(raw) * 2 != len(layout):
        raise CodecError(f'date/time needs {len(layout) // 2} bytes, '
            f'got {len(raw)}')
    numbers = bcd_fields(raw)
    return {layout[i * 2:i * 2 + 2]: n for i, n in enumerate(numbers)}


def iso_datetime(fields: dict[str, int]) -> str:
    """ISO text of decoded fields, checked as a real calendar time."""
    year = fields.get('CC', 20) * 100 + fields.get('YY', 0)
    try:
        when = dt.datetime(year, fields.get('MM', 1), fields.get('DD', 1),
            fields.get('hh', 0), fields.get('mm', 0), fields.get('ss', 0))
    except ValueError as exc:
        raise CodecError(f'invalid date/time: {exc}') from None
    if 'DD' not in fields:
        return when.time().isoformat()
    if 'hh' not in fields:
        return when.date().isoformat()
    return when.isoformat()
