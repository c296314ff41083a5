"""Data-identifier registries of DL/T645-2007 (4-byte DI) and -1997
(2-byte DI).

Each DI maps to an :class:`Item` (format, unit, implied decimals, length,
sign) or a :class:`Block` (``xxxxFF00``: items concatenated). DIs are written
as conventionally printed, most significant byte first (``'00010000'``,
``'9010'``); on the wire they go low byte first.

``lookup(di, version)`` is the one entry point; families with many members
(energy per tariff and settlement period) are generated on demand.
"""

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from decimal import Decimal

from .bcd import (
    bcd_byte, bcd_to_decimal, decimal_to_bcd, decode_datetime, digits_to_wire,
    encode_datetime, from_bcd_byte, iso_datetime, wire_to_digits)
from .errors import CodecError

# kinds of item
NUMBER = 'number'      # packed BCD with implied decimals
DIGITS = 'digits'      # BCD digit string (address, meter number)
DATE = 'date'          # YYMMDDWW
TIME = 'time'          # hhmmss
DATETIME = 'datetime'  # YYMMDDWWhhmmss
STATUS3 = 'status3'    # status word 3, bits decoded
WORD = 'word'          # binary word, little endian
PURCHASE = 'purchase'  # vendor recharge: count NNNNNNNN + amount XXXXXX.XX
BANDS = 'bands'        # time-of-day power limits: n x (hhmm XX.XXXX kW)
LOAD_EVENT = 'load_event'    # a load-protection record (安全用电 报警记录)
LOAD_STATUS = 'load_status'  # load-protection state: flags + trip counts

_WIRE_LAYOUT = {
    DATE: 'WWDDMMYY',
    TIME: 'ssmmhh',
    DATETIME: 'ssmmhhWWDDMMYY',
    }


@dataclass(frozen=True)
class Item:
    di: str
    name: str
    fmt: str
    length: int
    unit: str = ''
    decimals: int = 0
    signed: bool = False
    kind: str = NUMBER

    @property
    def numeric(self) -> bool:
        return self.kind == NUMBER

    def decode(self, raw: bytes):
        """Wire bytes (already −0x33) to a value: ``Decimal``/``int`` for
        numbers, ``str`` for digits, ``dict`` for composite items."""
        if self.kind == BANDS:      # the one variable-length kind
            return decode_bands(raw, self.length)
        if len(raw) != self.length:
            raise CodecError(f'DI {self.di} ({self.name}) needs {self.length} '
                f'data bytes, got {len(raw)}')
        if self.kind == NUMBER:
            return bcd_to_decimal(raw, self.decimals, signed=self.signed)
        if self.kind == DIGITS:
            return wire_to_digits(raw)
        if self.kind == DATE:
            fields = decode_datetime(raw, _WIRE_LAYOUT[DATE])
            return {'date': iso_datetime(
                    {k: fields[k] for k in ('YY', 'MM', 'DD')}),
                'weekday': fields['WW']}
        if self.kind == TIME:
            return iso_datetime(decode_datetime(raw, _WIRE_LAYOUT[TIME]))
        if self.kind == DATETIME:
            fields = decode_datetime(raw, _WIRE_LAYOUT[DATETIME])
            fields.pop('WW')
            return iso_datetime(fields)
        if self.kind == STATUS3:
            return decode_status3(int.from_bytes(raw, 'little'))
        if self.kind == WORD:
            return int.from_bytes(raw, 'little')
        if self.kind == PURCHASE:
            return {
                'count': bcd_to_decimal(raw[:4], 0),
                'amount': bcd_to_decimal(raw[4:], 2),
                }
        if self.kind == LOAD_EVENT:
            return decode_load_event(raw)
        if self.kind == LOAD_STATUS:
            return decode_load_status(raw)
        raise CodecError(f'DI {self.di}: unknown item kind {self.kind}')

    def encode(self, value) -> bytes:
        """A value (as :meth:`decode` returns it, or a ``datetime``) to wire
        bytes (before +0x33)."""
        if self.kind == NUMBER:
            return decimal_to_bcd(value, self.length, self.decimals,
                signed=self.signed)
        if self.kind == DIGITS:
            return digits_to_wire(str(value), self.length, self.name)
        if self.kind in _WIRE_LAYOUT:
            if isinstance(value, dt.date) and not isinstance(
                    value, dt.datetime):
                value = dt.datetime.combine(value, dt.time())
            elif isinstance(value, dt.time):
                value = dt.datetime.combine(dt.date(2000, 1, 1), value)
            elif isinstance(value, str):
                try:
                    value = dt.datetime.fromisoformat(value)
                except ValueError:
                    raise CodecError(f'{self.name}: {value!r} is not an ISO '
                        'date/time') from None
            if not isinstance(value, dt.datetime):
                raise CodecError(f'{self.name} needs a date/time')
            return encode_datetime(value, _WIRE_LAYOUT[self.kind])
        if self.kind in (STATUS3, WORD):
            if not isinstance(value, int) or not 0 <= value < 1 << (
                    8 * self.length):
                raise CodecError(f'{self.name} needs an integer word')
            return value.to_bytes(self.length, 'little')
        if self.kind == PURCHASE:
            try:
                count, amount = value['count'], value['amount']
            except (TypeError, KeyError):
                raise CodecError('purchase needs count and amount') from None
            return (decimal_to_bcd(count, 4, 0)
                + decimal_to_bcd(amount, 4, 2))
        if self.kind == BANDS:
            return encode_bands(value, self.length)
        if self.kind == LOAD_EVENT:
            return encode_load_event(value)
        if self.kind == LOAD_STATUS:
            return encode_load_status(value)
        raise CodecError(f'DI {self.di}: cannot encode kind {self.kind}')


@dataclass(frozen=True)
class Block:
    """``xxxxFF00`` style block: the member items concatenated. A meter may
    return fewer members than listed (single-phase meters, fewer tariffs),
    never a partial one."""
    di: str
    name: str
    items: tuple[Item, ...]

    def decode(self, raw: bytes) -> dict:
        values = {}
        offset = 0
        for item in self.items:
            if offset >= len(raw):
                break
            chunk = raw[offset:offset + item.length]
            if len(chunk) != item.length:
                raise CodecError(f'block {self.di} ends inside item {item.di}')
            values[item.di] = item.decode(chunk)
            offset += item.length
        if offset != len(raw):
            raise CodecError(f'block {self.di} has {len(raw) - offset} '
                'bytes more than its items')
        if not values:
            raise CodecError(f'block {self.di} is empty')
        return values

    def encode(self, values: dict) -> bytes:
        out = bytearray()
        for item in self.items:
            if item.di not in values:
                break
            out += item.encode(values[item.di])
        return bytes(out)


# --- status word 3 (04000503) ----------------------------------------------

_SUPPLY = {0: 'mains', 1: 'auxiliary', 2: 'battery', 3: 'reserved'}
_METER_TYPE = {0: 'post-paid', 1: 'energy-prepaid', 2: 'money-prepaid',
    3: 'reserved'}


def decode_status3(word: int) -> dict:
    """Status word 3 with the relay bits decoded (PROTOCOLS.md §1.5)."""
    def bit(n):
        return bool(word >> n & 1)
    return {
        'word': f'{word:04X}',
        'relay': 'open' if bit(4) else 'closed',
        'relay_command': 'trip' if bit(6) else 'close',
        'pre_trip_alarm': bit(7),
        'power_hold': bit(12),
        'supply': _SUPPLY[word >> 1 & 3],
        'meter_type': _METER_TYPE[word >> 8 & 3],
        'programming_allowed': bit(3),
        'time_slot_table': 2 if bit(0) else 1,
        'time_zone_table': 2 if bit(5) else 1,
        'tariff_table': 2 if bit(10) else 1,
        'step_table': 2 if bit(11) else 1,
        'identity_authenticated': bit(13),
        'local_account_opened': bit(14),
        'remote_account_opened': bit(15),
        }


def status3_word(*, relay_open=False, relay_command_trip=False,
        pre_trip_alarm=False, power_hold=False, meter_type='money-prepaid',
        remote_account_opened=True) -> int:
    """Build a status word 3 (for the simulator)."""
    types = {v: k for k, v in _METER_TYPE.items()}
    if meter_type not in types:
        raise CodecError(f'unknown meter type {meter_type!r}')
    return (relay_open << 4 | relay_command_trip << 6 | pre_trip_alarm << 7
        | types[meter_type] << 8 | power_hold << 12
        | remote_account_opened << 15)


# --- 安全用电 (load protection) ----------------------------------------------
#
# Composite items carry their fields in the printed order, each field low
# byte first (as the vendor purchase item above, and the standard's
# demand-and-time items, do).

#: one time-of-day band: start hhmm (wire mm hh) + limit XX.XXXX kW
BAND_SIZE = 5
#: a write carries DI (4) + password and operator (8) + data, L <= 50
MAX_BANDS = 7
LOAD_EVENT_KINDS = {1: 'overload', 2: 'malignant', 3: 'tod', 4: 'step'}
_LOAD_EVENT_CODES = {v: k for k, v in LOAD_EVENT_KINDS.items()}
LOAD_EVENT_SIZE = 14
_EVENT_TIME = 'ssmmhhDDMMYY'


def _band_start(value) -> tuple[int, int]:
    """``'HH:MM'`` (or a ``datetime.time`` on a whole minute) to (hour,
    minute)."""
    if isinstance(value, dt.time):
        if value.second or value.microsecond:
            raise CodecError(f'band start {value} is not on a whole minute')
        return value.hour, value.minute
    if isinstance(value, str):
        hour, sep, minute = value.strip().partition(':')
        if (sep and len(minute) == 2 and 1 <= len(hour) <= 2
                and hour.isdigit() and minute.isdigit()
                and int(hour) <= 23 and int(minute) <= 59):
            return int(hour), int(minute)
    raise CodecError(f'band start {value!r} is not HH:MM')


def _check_band_order(starts, max_bands):
    if len(starts) > max_bands:
        raise CodecError(f'at most {max_bands} time-of-day bands, got '
            f'{len(starts)}')
    for before, after in zip(starts, starts[1:]):
        if after <= before:
            raise CodecError('time-of-day bands must start in increasing '
                'order, each at a different time')


def decode_bands(raw: bytes, max_length: int) -> list:
    """Time-of-day power limits: ``[['HH:MM', Decimal kW], ...]`` in start
    order; no bands (zero bytes) is an empty list."""
    if len(raw) % BAND_SIZE or len(raw) > max_length:
        raise CodecError(f'time-of-day power limits need whole '
            f'{BAND_SIZE}-byte bands, at most {max_length // BAND_SIZE}; '
            f'got {len(raw)} bytes')
    bands, starts = [], []
    for i in range(0, len(raw), BAND_SIZE):
        minute, hour = from_bcd_byte(raw[i]), from_bcd_byte(raw[i + 1])
        if hour > 23 or minute > 59:
            raise CodecError(f'band start {hour:02d}:{minute:02d} is not a '
                'time of day')
        starts.append(hour * 60 + minute)
        bands.append([f'{hour:02d}:{minute:02d}',
            bcd_to_decimal(raw[i + 2:i + BAND_SIZE], 4)])
    _check_band_order(starts, max_length // BAND_SIZE)
    return bands


def encode_bands(value, max_length: int) -> bytes:
    """``[(start 'HH:MM', kW), ...]`` (pairs, or ``{'start', 'power'}``
    objects) to wire bytes; ``None`` or ``[]``: no bands."""
    if value is None:
        value = []
    if isinstance(value, (str, bytes, bytearray, dict)):
        raise CodecError('time-of-day power limits are a list of (start '
            'HH:MM, kW) bands')
    try:
        bands = list(value)
    except TypeError:
        raise CodecError('time-of-day power limits are a list of (start '
            'HH:MM, kW) bands') from None
    out, starts = bytearray(), []
    for band in bands:
        if isinstance(band, dict):
            start, power = band.get('start'), band.get('power')
        else:
            try:
                start, power = band
            except (TypeError, ValueError):
                raise CodecError(f'band {band!r} is not (start HH:MM, '
                    'kW)') from None
        hour, minute = _band_start(start)
        if power is None or isinstance(power, bool):
            raise CodecError(f'band {start}: {power!r} is not a power')
        starts.append(hour * 60 + minute)
        out += bytes((bcd_byte(minute), bcd_byte(hour)))
        out += decimal_to_bcd(power, 3, 4)
    _check_band_order(starts, max_length // BAND_SIZE)
    return bytes(out)


def decode_load_event(raw: bytes) -> dict:
    """One 报警记录: ``YYMMDDhhmmss NN XX.XXXX XX.XXXX NN`` = time (meter
    local), kind (01 overload, 02 malignant, 03 tod, 04 step), the power
    measured (kW), the step that caused it (kW, signed; 0 when none) and
    whether this trip locked the meter out (00/01)."""
    at = iso_datetime(decode_datetime(raw[:6], _EVENT_TIME))
    code = from_bcd_byte(raw[6])
    if code not in LOAD_EVENT_KINDS:
        raise CodecError(f'unknown load event kind {code:02d}')
    if raw[13] not in (0, 1):
        raise CodecError(f'load event lockout flag 0x{raw[13]:02X} is not '
            '00 or 01')
    return {
        'at': at,
        'kind': LOAD_EVENT_KINDS[code],
        'power': bcd_to_decimal(raw[7:10], 4),
        'step': bcd_to_decimal(raw[10:13], 4, signed=True),
        'lockout': bool(raw[13]),
        }


def encode_load_event(value) -> bytes:
    try:
        at, kind, power = value['at'], value['kind'], value['power']
    except (TypeError, KeyError):
        raise CodecError('a load event needs at, kind and power') from None
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at)
        except ValueError:
            raise CodecError(f'load event time {at!r} is not ISO') from None
    if not isinstance(at, dt.datetime):
        raise CodecError('a load event time is a date and time')
    if kind not in _LOAD_EVENT_CODES:
        raise CodecError(f'unknown load event kind {kind!r}; one of '
            f'{", ".join(_LOAD_EVENT_CODES)}')
    return (encode_datetime(at, _EVENT_TIME)
        + bytes((bcd_byte(_LOAD_EVENT_CODES[kind]),))
        + decimal_to_bcd(power, 3, 4)
        + decimal_to_bcd(value.get('step', 0), 3, 4, signed=True)
        + bytes((1 if value.get('lockout') else 0,)))


def decode_load_status(raw: bytes) -> dict:
    """``XX NN NN``: flags (bit0 locked out, bit1 relay held open by load
    protection, timed or locked), overload trips and malignant-load trips
    counted since the last reset."""
    flags = raw[0]
    return {
        'lockout': bool(flags & 1),
        'load_trip': bool(flags & 2),
        'overload_trips': from_bcd_byte(raw[1]),
        'malignant_trips': from_bcd_byte(raw[2]),
        }


def encode_load_status(value) -> bytes:
    try:
        flags = (1 if value['lockout'] else 0) | (
            2 if value.get('load_trip') else 0)
        return bytes((flags, bcd_byte(min(int(value['overload_trips']), 99)),
            bcd_byte(min(int(value['malignant_trips']), 99))))
    except (TypeError, KeyError, ValueError):
        raise CodecError('a load status needs lockout, overload_trips and '
            'malignant_trips') from None


# --- DL/T645-2007 ------------------------------------------------------------

_ENERGY_KINDS = {
    # DI2: (name, unit, signed)
    0x00: ('combined_active', 'kWh', True),
    0x01: ('forward_active', 'kWh', False),
    0x02: ('reverse_active', 'kWh', False),
    0x03: ('combined_reactive_1', 'kvarh', True),
    0x04: ('combined_reactive_2', 'kvarh', True),
    0x05: ('q1_reactive', 'kvarh', False),
    0x06: ('q2_reactive', 'kvarh', False),
    0x07: ('q3_reactive', 'kvarh', False),
    0x08: ('q4_reactive', 'kvarh', False),
    0x09: ('forward_apparent', 'kVAh', False),
    0x0A: ('reverse_apparent', 'kVAh', False),
    }
MAX_TARIFFS = 63


def _energy_item(di2: int, di1: int, di0: int) -> Item:
    base, unit, signed = _ENERGY_KINDS[di2]
    name = f'{base}_{"total" if di1 == 0 else f"t{di1}"}'
    if di0:
        name += f'_settlement_{di0}'
    return Item(f'00{di2:02X}{di1:02X}{di0:02X}', name, 'XXXXXX.XX', 4,
        unit, 2, signed)


def _energy(di: bytes):
    di3, di2, di1, di0 = di
    if di3 != 0x00 or di2 not in _ENERGY_KINDS or di0 > 0x0C:
        return None
    if di1 == 0xFF:
        items = tuple(_energy_item(di2, n, di0)
            for n in range(MAX_TARIFFS + 1))
        base = _ENERGY_KINDS[di2][0]
        suffix = f'_settlement_{di0}' if di0 else ''
        return Block(di.hex().upper(), f'{base}_block{suffix}', items)
    if di1 <= MAX_TARIFFS:
        return _energy_item(di2, di1, di0)
    return None


_PHASES = {1: 'a', 2: 'b', 3: 'c'}
# DI2 of 02xxxx00: (name, fmt, length, unit, decimals, signed, has_total)
_INSTANT = {
    0x01: ('voltage', 'XXX.X', 2, 'V', 1, False, False),
    0x02: ('current', 'XXX.XXX', 3, 'A', 3, True, False),
    0x03: ('active_power', 'XX.XXXX', 3, 'kW', 4, True, True),
    0x04: ('reactive_power', 'XX.XXXX', 3, 'kvar', 4, True, True),
    0x05: ('apparent_power', 'XX.XXXX', 3, 'kVA', 4, True, True),
    0x06: ('power_factor', 'X.XXX', 2, '', 3, True, True),
    }


def _instant_item(di2: int, di1: int) -> Item:
    name, fmt, length, unit, decimals, signed, _ = _INSTANT[di2]
    suffix = 'total' if di1 == 0 else _PHASES[di1]
    return Item(f'02{di2:02X}{di1:02X}00', f'{name}_{suffix}', fmt, length,
        unit, decimals, signed)


def _instant(di: bytes):
    di3, di2, di1, di0 = di
    if di3 != 0x02 or di2 not in _INSTANT or di0 != 0:
        return None
    has_total = _INSTANT[di2][6]
    members = ([0] if has_total else []) + [1, 2, 3]
    if di1 == 0xFF:
        return Block(di.hex().upper(), f'{_INSTANT[di2][0]}_block',
            tuple(_instant_item(di2, n) for n in members))
    if di1 in members:
        return _instant_item(di2, di1)
    return None


def _items(*items):
    return {i.di: i for i in items}


ITEMS_2007 = _items(
    Item('02800001', 'neutral_current', 'XXX.XXX', 3, 'A', 3, True),
    Item('02800002', 'frequency', 'XX.XX', 2, 'Hz', 2),
    Item('04000101', 'date', 'YYMMDDWW', 4, kind=DATE),
    Item('04000102', 'time', 'hhmmss', 3, kind=TIME),
    Item('0400010C', 'datetime', 'YYMMDDWWhhmmss', 7, kind=DATETIME),
    Item('04000401', 'address', 'NNNNNNNNNNNN', 6, kind=DIGITS),
    Item('04000402', 'meter_number', 'NNNNNNNNNNNN', 6, kind=DIGITS),
    Item('0400040E', 'customer_number', 'NNNNNNNNNNNN', 6, kind=DIGITS),
    *(Item(f'0400050{n}', f'status_word_{n}', 'XXXX', 2, kind=WORD)
        for n in (1, 2, 4, 5, 6, 7)),
    Item('04000503', 'status_word_3', 'XXXX', 2, kind=STATUS3),
    Item('00900100', 'remaining_energy', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('00900101', 'overdraft_energy', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('00900200', 'remaining_money', 'XXXXXX.XX', 4, 'yuan', 2),
    Item('00900201', 'overdraft_money', 'XXXXXX.XX', 4, 'yuan', 2),
    Item('03330201', 'purchase_count', 'NNNN', 2),
    Item('04001001', 'alarm_1_limit', 'XXXXXX.XX', 4, 'yuan', 2),
    Item('04001002', 'alarm_2_limit', 'XXXXXX.XX', 4, 'yuan', 2),
    Item('04001003', 'overdraft_limit', 'XXXXXX.XX', 4, 'yuan', 2),
    Item('04001004', 'hoarding_limit', 'XXXXXX.XX', 4, 'yuan', 2),
    Item('04001005', 'close_allowed_limit', 'XXXXXX.XX', 4, 'yuan', 2),
    # energy-prepaid limits and power limits of the standard (kWh / kW)
    Item('04000E01', 'forward_active_power_limit', 'XX.XXXX', 3, 'kW', 4),
    Item('04000E02', 'reverse_active_power_limit', 'XX.XXXX', 3, 'kW', 4),
    Item('04000F01', 'alarm_energy_1_limit', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('04000F02', 'alarm_energy_2_limit', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('04000F03', 'hoarding_energy_limit', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('04000F04', 'overdraft_energy_limit', 'XXXXXX.XX', 4, 'kWh', 2),
    # VENDOR RANGE 04A0xxxx / 04A1xxxx, not in DL/T645-2007: the 安全用电
    # items of the 'dh' safety map (codec.vendors); a maker's own DIs go in
    # another map, registered with register_items()
    Item('04A00101', 'monthly_topup_energy', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('04A00201', 'malignant_load_power', 'XX.XXXX', 3, 'kW', 4),
    Item('04A00202', 'power_change_threshold', 'XX.XXXX', 3, 'kW', 4),
    Item('04A00203', 'overload_trips_allowed', 'NN', 1),
    Item('04A00204', 'malignant_trips_allowed', 'NN', 1),
    Item('04A00301', 'tod_power_limits', 'n x (hhmm XX.XXXX)',
        BAND_SIZE * MAX_BANDS, 'kW', kind=BANDS),
    Item('04A00401', 'load_status', 'XX NN NN', 3, kind=LOAD_STATUS),
    Item('04A00402', 'load_reset', 'NN', 1),
    # vendor 剩余电量设置: the remote clear (远程清零) writes 0.00 here
    Item('04A00501', 'remaining_energy_set', 'XXXXXX.XX', 4, 'kWh', 2),
    Item('04A10000', 'load_event_count', 'NNNNNN', 3),
    *(Item(f'04A100{n:02X}', f'load_event_{n}',
        'YYMMDDhhmmss NN XX.XXXX XX.XXXX NN', LOAD_EVENT_SIZE,
        kind=LOAD_EVENT) for n in range(1, 11)),
    *(Item(f'0405010{n}', f'price_t{n}', 'XXXX.XXXX', 4, 'yuan/kWh', 4)
        for n in (1, 2, 3, 4)),
    # vendor scheme (PROTOCOLS.md §3): write-only purchase, security switch
    Item('04900000', 'purchase', 'NNNNNNNN XXXXXX.XX', 8, kind=PURCHASE),
    Item('049F0000', 'security_config', 'XXXX', 2, kind=WORD),
    )
BLOCKS_2007 = {
    '040005FF': Block('040005FF', 'status_words', tuple(
        ITEMS_2007[f'0400050{n}'] for n in range(1, 8))),
    }


# --- DL/T645-1997 ------------------------------------------------------------

def _items_1997():
    items = []
    for d1, (base, unit) in {0x90: ('active', 'kWh'),
            0x91: ('reactive', 'kvarh')}.items():
        for d2, direction in ((0x1, 'forward'), (0x2, 'reverse')):
            for tariff in range(5):
                name = f'{direction}_{base}_' + (
                    'total' if not tariff else f't{tariff}')
                items.append(Item(f'{d1:02X}{d2:X}{tariff:X}', name,
                    'XXXXXX.XX', 4, unit, 2))
    for n, phase in _PHASES.items():
        items.append(Item(f'B61{n}', f'voltage_{phase}', 'XXX', 2, 'V', 0))
        items.append(Item(f'B62{n}', f'current_{phase}', 'XX.XX', 2, 'A', 2))
    for n, suffix in ((0, 'total'), *_PHASES.items()):
        items.append(Item(f'B63{n}', f'active_power_{suffix}', 'XX.XXXX', 3,
            'kW', 4))
        items.append(Item(f'B64{n}', f'reactive_power_{suffix}', 'XX.XX', 2,
            'kvar', 2))
        items.append(Item(f'B65{n}', f'power_factor_{suffix}', 'X.XXX', 2,
            '', 3))
    items += [
        Item('C010', 'date', 'YYMMDDWW', 4, kind=DATE),
        Item('C011', 'time', 'hhmmss', 3, kind=TIME),
        Item('C020', 'run_status', 'XX', 1, kind=WORD),
        Item('C030', 'active_constant', 'NNNNNN', 3, 'imp/kWh', 0),
        Item('C031', 'reactive_constant', 'NNNNNN', 3, 'imp/kvarh', 0),
        Item('C032', 'meter_number', 'NNNNNNNNNNNN', 6, kind=DIGITS),
        Item('C033', 'customer_number', 'NNNNNNNNNNNN', 6, kind=DIGITS),
        Item('C034', 'device_code', 'NNNNNNNNNNNN', 6, kind=DIGITS),
        ]
    return _items(*items)


ITEMS_1997 = _items_1997()


def _blocks_1997():
    blocks = {}
    for di in ITEMS_1997:
        if di[:2] in ('90', '91', 'B6'):
            block_di = di[:3] + 'F'
            blocks.setdefault(block_di, []).append(ITEMS_1997[di])
    return {di: Block(di, items[0].name.rsplit('_', 1)[0] + '_block',
            tuple(items)) for di, items in blocks.items()}


BLOCKS_1997 = _blocks_1997()


_REGISTERED = []    # callbacks run when items are added (codec caches)


def register_items(*items: Item, version: str = '2007'):
    """Add items (a maker's own DIs) to the registry; a DI already there
    is replaced."""
    table = ITEMS_1997 if version == '1997' else ITEMS_2007
    for item in items:
        if not isinstance(item, Item):
            raise CodecError(f'{item!r} is not a registry Item')
        table[item.di.upper()] = item
    _lookup.cache_clear()
    for callback in _REGISTERED:
        callback()


def on_register(callback):
    """Call ``callback()`` whenever :func:`register_items` changes the
    registry (modules caching lookups clear their caches)."""
    _REGISTERED.append(callback)


def lookup(di: str, version: str = '2007'):
    """The :class:`Item` or :class:`Block` of ``di``, or ``None``."""
    if not isinstance(di, str):
        return None
    return _lookup(di.upper(), version)


@lru_cache(maxsize=4096)
def _lookup(di: str, version: str):
    if version == '1997':
        return ITEMS_1997.get(di) or BLOCKS_1997.get(di)
    found = ITEMS_2007.get(di) or BLOCKS_2007.get(di)
    if found is not None:
        return found
    try:
        raw = bytes.fromhex(di)
    except ValueError:
        return None
    if len(raw) != 4:
        return None
    return _energy(raw) or _instant(raw)


def decode_value(di: str, raw: bytes, version: str = '2007'):
    """Decode ``raw`` (−0x33, wire order) for ``di``; unknown DIs give
    ``None`` (the caller keeps the raw bytes)."""
    entry = lookup(di, version)
    if entry is None:
        return None
    return entry.decode(raw)


def encode_value(di: str, value, version: str = '2007') -> bytes:
    entry = lookup(di, version)
    if entry is None:
        raise CodecError(f'DI {di} is not in the DL/T645-{version} registry; '
            'pass raw data bytes')
    return entry.encode(value)


def is_number(value) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)
