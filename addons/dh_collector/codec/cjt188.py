"""CJ/T188 (2004 and 2018) water, gas and heat meters. Pure, no I/O.

``FE×2–4 | 68 | T | A0…A6 | C | L | DI DI | SER | data | CS | 16``; no
+0x33, same checksum as DL/T645. The DI byte order differs between
sources: it is configurable per vendor when sending and both orders are
accepted on receive (the order seen is kept in ``Message.di_order``).
"""

import datetime as dt
from dataclasses import dataclass, field

from .bcd import (
    bcd_to_decimal, checksum, decimal_to_bcd, decode_datetime,
    digits_to_wire, encode_datetime, iso_datetime, normalize_digits,
    wire_to_digits)
from .errors import CodecError
from .framing import (
    BAD, END, NEED, NOISE, OK, PREAMBLE, START, MessageBase, scan)
from .vendors import BIG, LITTLE, get_vendor

ADDRESS_LEN = 7
BROADCAST = 'AAAAAAAAAAAAAA'
BROADCAST_TYPE = 0xAA
MAX_L = 0x64     # reads; writes 0x32

DIR_RESPONSE = 0x80
ABNORMAL = 0x40
VENDOR_DEFINED = 0x20
FUNCTION = 0x3F

READ = 0x01
READ_ADDRESS = 0x03
WRITE = 0x04
KEY_VERSION = 0x09
WRITE_ADDRESS = 0x15
SET_BASE = 0x16

COMMANDS = {
    READ: 'read', READ_ADDRESS: 'read-address', WRITE: 'write',
    KEY_VERSION: 'key-version', WRITE_ADDRESS: 'write-address',
    SET_BASE: 'set-meter-base',
    }

METER_TYPES = {
    0x10: 'cold water', 0x11: 'hot water', 0x12: 'drinking water',
    0x13: 'reclaimed water', 0x20: 'heat', 0x21: 'cooling',
    0x22: 'heat and cooling', 0x30: 'gas', 0x40: 'custom',
    }
HEAT_TYPES = range(0x20, 0x2A)


def valid_type(t: int) -> bool:
    """10–19 water, 20–29 heat, 30–39 gas, 40–49 custom, AA broadcast."""
    return t == BROADCAST_TYPE or (0x10 <= t <= 0x49 and t & 0x0F <= 9)


def type_name(t: int) -> str:
    if t == BROADCAST_TYPE:
        return 'broadcast'
    return METER_TYPES.get(t) or {1: 'water', 2: 'heat', 3: 'gas',
        4: 'custom'}[t >> 4]


UNITS = {
    0x01: 'J', 0x02: 'Wh', 0x05: 'kWh', 0x08: 'MWh', 0x0A: 'MWh*100',
    0x0B: 'kJ', 0x0E: 'MJ', 0x11: 'GJ', 0x13: 'GJ*100', 0x14: 'W',
    0x17: 'kW', 0x1A: 'MW', 0x29: 'L', 0x2C: 'm3', 0x32: 'L/h',
    0x35: 'm3/h',
    }
UNIT_CODES = {v: k for k, v in UNITS.items()}

# DIs as conventionally written (DI0 DI1 = high byte first)
DI_METERING = '901F'
DI_ADDRESS = '810A'
DI_VALVE = 'A017'
DI_WRITE_ADDRESS = 'A018'
KNOWN_DIS = frozenset({
    '901F', '911F', '810A', '8102', '8103', '8104', '8105', '8106',
    *(f'A01{n:X}' for n in range(0x10)),
    *(f'D12{n:X}' for n in range(0x0C)),
    *(f'A10{n}' for n in range(1, 8)),
    })

VALVE_OPEN = 0x55
VALVE_CLOSE = 0x99
_VALVE_STATE = {0: 'open', 1: 'closed', 2: 'reserved', 3: 'abnormal'}


def decode_st(st: bytes) -> dict:
    """ST (2 bytes, as sent): byte 0 D0–D1 valve, D2 battery low; the rest
    is vendor-defined (kept in ``st``)."""
    return {
        'st': st.hex().upper(),
        'valve': _VALVE_STATE[st[0] & 3],
        'battery_low': bool(st[0] & 4),
        }


def encode_st(*, valve: str = 'open', battery_low: bool = False,
        extra: int = 0) -> bytes:
    codes = {v: k for k, v in _VALVE_STATE.items()}
    if valve not in codes:
        raise CodecError(f'unknown valve state {valve!r}')
    return bytes([codes[valve] | (4 if battery_low else 0), extra & 0xFF])


# --- frame ------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    meter_type: int
    address: str
    control: int
    data: bytes = b''
    _wire: bytes = field(default=b'', init=False, repr=False,
        compare=False)

    def __post_init__(self):
        if not isinstance(self.meter_type, int) or not valid_type(
                self.meter_type):
            raise CodecError(f'unknown CJ/T188 meter type {self.meter_type!r}')
        if not isinstance(self.control, int) or not 0 <= self.control <= 0xFF:
            raise CodecError('control must be a byte')
        if len(self.data) > MAX_L:
            raise CodecError(f'data of {len(self.data)} bytes exceeds '
                f'L={MAX_L:#x}')
        address, wire = normalize_digits(self.address, ADDRESS_LEN)
        object.__setattr__(self, 'address', address)
        object.__setattr__(self, '_wire', wire)
        object.__setattr__(self, 'data', bytes(self.data))

    @property
    def is_response(self) -> bool:
        return bool(self.control & DIR_RESPONSE)

    @property
    def direction(self) -> str:
        return 'response' if self.is_response else 'request'

    @property
    def is_abnormal(self) -> bool:
        return bool(self.control & ABNORMAL)

    @property
    def function(self) -> int:
        return self.control & FUNCTION

    def to_bytes(self, preamble: int = 4) -> bytes:
        body = bytearray([START, self.meter_type])
        body += self._wire
        body += bytes([self.control, len(self.data)])
        body += self.data
        body += bytes([checksum(body), END])
        return bytes([PREAMBLE]) * preamble + bytes(body)

    @classmethod
    def from_bytes(cls, raw: bytes) -> 'Frame':
        raw = bytes(raw)
        start = 0
        while start < len(raw) and raw[start] == PREAMBLE:
            start += 1
        if start >= len(raw):
            raise CodecError('no frame after the FE preamble')
        if raw[start] != START:
            raise CodecError(f'frame must start with 68, found '
                f'{raw[start]:02X}')
        status, result = probe(raw, start)
        if status == OK:
            length, frame = result
            if start + length != len(raw):
                raise CodecError(f'{len(raw) - start - length} bytes after '
                    'the end of the frame')
            return frame
        if status == NEED:
            raise CodecError('truncated CJ/T188 frame')
        if status == BAD:
            raise CodecError(result)
        raise CodecError('not a CJ/T188 frame (unknown meter type)')


def probe(buf, i):
    """Framing probe (see :mod:`.framing`) for a CJ/T188 frame at ``i``."""
    available = len(buf) - i
    if available < 2:
        return NEED, None
    if not valid_type(buf[i + 1]):
        return NOISE, None
    if available < 11:
        return NEED, None
    length = buf[i + 10]
    if length > MAX_L:
        return NOISE, None
    total = 13 + length
    if available < total:
        return NEED, None
    if buf[i + total - 1] != END:
        return BAD, 'frame does not end with 16'
    cs = checksum(buf[i:i + 11 + length])
    if cs != buf[i + 11 + length]:
        return BAD, (f'checksum mismatch (frame says '
            f'{buf[i + 11 + length]:02X}, computed {cs:02X})')
    try:
        address = wire_to_digits(bytes(buf[i + 2:i + 9]))
    except CodecError as exc:
        return BAD, exc.reason
    data = bytes(buf[i + 11:i + 11 + length])
    return OK, (total, Frame(buf[i + 1], address, buf[i + 9], data))


def decode_stream(buffer, on_reject=None):
    """``(used, Frame|None)``; ``used == 0``: need more bytes."""
    return scan(buffer, (probe,), on_reject)


# --- messages ---------------------------------------------------------------

@dataclass(frozen=True)
class Message(MessageBase):
    frame: Frame
    command: str
    di: str | None = None
    di_order: str | None = None
    ser: int | None = None
    payload: bytes = b''
    value: object = None
    fields: dict = field(default_factory=dict)
    error_code: int | None = None
    error_reasons: tuple = ()

    @property
    def meter_type(self) -> int:
        return self.frame.meter_type



def read_di(raw: bytes) -> tuple[str, str]:
    """DI text and the order it came in: a known DI in either order wins,
    otherwise high byte first (2004)."""
    big = raw.hex().upper()
    little = raw[::-1].hex().upper()
    if big in KNOWN_DIS:
        return big, BIG
    if little in KNOWN_DIS:
        return little, LITTLE
    return big, BIG


def di_wire(di: str, order: str) -> bytes:
    if not isinstance(di, str) or len(di) != 4 or not all(
            c in '0123456789abcdefABCDEF' for c in di):
        raise CodecError(f'CJ/T188 DI must be 4 hex digits, got {di!r}')
    raw = bytes.fromhex(di)
    return raw[::-1] if order == LITTLE else raw


def _abnormal_reasons(st: bytes) -> tuple[str, ...]:
    status = decode_st(st)
    reasons = ['abnormal reply']
    if status['valve'] == 'abnormal':
        reasons.append('valve abnormal')
    if status['battery_low']:
        reasons.append('battery low')
    reasons.append(f'ST={status["st"]}')
    return tuple(reasons)


def _flow(raw: bytes) -> tuple:
    unit = raw[4]
    return bcd_to_decimal(raw[:4], 2), UNITS.get(unit, f'unit {unit:02X}')


_WATER_LEN = 19
_HEAT_LEN = 43


def decode_metering(payload: bytes, meter_type: int) -> dict:
    """901F reply data after DI+SER: water/gas (19 bytes) or heat (43)."""
    if len(payload) == _WATER_LEN:
        flow, unit = _flow(payload[0:5])
        settle, settle_unit = _flow(payload[5:10])
        when = iso_datetime(decode_datetime(payload[10:17], 'ssmmhhDDMMYYCC'))
        return {
            'flow': flow, 'flow_unit': unit,
            'settlement_flow': settle, 'settlement_flow_unit': settle_unit,
            'time': when, 'status': decode_st(payload[17:19]),
            }
    if len(payload) == _HEAT_LEN and meter_type in HEAT_TYPES:
        settle_heat, settle_heat_unit = _flow(payload[0:5])
        heat, heat_unit = _flow(payload[5:10])
        power, power_unit = _flow(payload[10:15])
        rate_unit = payload[19]
        return {
            'settlement_heat': settle_heat,
            'settlement_heat_unit': settle_heat_unit,
            'heat': heat, 'heat_unit': heat_unit,
            'power': power, 'power_unit': power_unit,
            'flow_rate': bcd_to_decimal(payload[15:19], 4),
            'flow_rate_unit': UNITS.get(rate_unit, f'unit {rate_unit:02X}'),
            'flow': _flow(payload[20:25])[0],
            'flow_unit': _flow(payload[20:25])[1],
            'supply_temperature': bcd_to_decimal(payload[25:28], 2),
            'return_temperature': bcd_to_decimal(payload[28:31], 2),
            'working_hours': bcd_to_decimal(payload[31:34], 0),
            'time': iso_datetime(
                decode_datetime(payload[34:41], 'ssmmhhDDMMYYCC')),
            'status': decode_st(payload[41:43]),
            }
    raise CodecError(f'901F reply data must be {_WATER_LEN} bytes '
        f'(water/gas) or {_HEAT_LEN} (heat), got {len(payload)}')


def parse(frame: Frame) -> Message:
    function = frame.function
    command = COMMANDS.get(function, f'function-{function:02X}')
    if frame.control & VENDOR_DEFINED:
        command = f'vendor-{frame.control & 0x7F:02X}'
    data = frame.data
    base = dict(frame=frame, command=command)

    if frame.is_response and frame.is_abnormal:
        if len(data) == 3:
            ser, st, di, order = data[0], data[1:3], None, None
        elif len(data) == 5:
            (di, order), ser, st = read_di(data[:2]), data[2], data[3:5]
        else:
            raise CodecError('abnormal reply needs SER and ST '
                '(L=3, or L=5 with a DI)')
        return Message(**base, di=di, di_order=order, ser=ser,
            error_code=int.from_bytes(st, 'little'),
            error_reasons=_abnormal_reasons(st),
            fields={'status': decode_st(st)})

    if len(data) < 3:
        raise CodecError('CJ/T188 data needs DI (2 bytes) and SER')
    di, order = read_di(data[:2])
    ser, payload = data[2], data[3:]
    base.update(di=di, di_order=order, ser=ser, payload=payload)

    if di == DI_METERING and frame.is_response:
        fields = decode_metering(payload, frame.meter_type)
        return Message(**base, value=fields['flow'], fields=fields)
    if di == DI_VALVE:
        if frame.is_response:
            if len(payload) != 2:
                raise CodecError('valve reply carries ST (2 bytes)')
            return Message(**base, fields={'status': decode_st(payload)})
        if len(payload) != 1:
            raise CodecError('valve command carries one byte (55 or 99)')
        command_byte = payload[0]
        action = {VALVE_OPEN: 'open', VALVE_CLOSE: 'close'}.get(command_byte)
        if action is None:
            raise CodecError(f'unknown valve command {command_byte:02X}')
        return Message(**base, value=action, fields={'valve_command': action})
    if di == DI_ADDRESS and frame.is_response:
        return Message(**base, value=frame.address,
            fields={'address': frame.address})
    if di == DI_WRITE_ADDRESS and not frame.is_response:
        if len(payload) != ADDRESS_LEN:
            raise CodecError('write-address carries 7 address bytes')
        new = wire_to_digits(payload)
        return Message(**base, value=new, fields={'new_address': new})
    fields = {'data': payload.hex().upper()} if payload else {}
    return Message(**base, fields=fields)


def decode(raw: bytes) -> Message:
    return parse(Frame.from_bytes(raw))


def check_reply(request: Message, reply: Message) -> Message:
    """Reply matches request (address, function, SER, DI); abnormal replies
    raise :class:`AbnormalReply`."""
    if not reply.is_response:
        raise CodecError('expected a reply, got a request')
    if reply.frame.function != request.frame.function:
        raise CodecError('reply function does not match the request')
    if 'A' not in request.address and reply.address != request.address:
        raise CodecError(f'reply from {reply.address}, expected '
            f'{request.address}')
    if reply.ser != request.ser:
        raise CodecError(f'reply SER {reply.ser}, expected {request.ser}')
    reply.raise_for_error()
    if reply.di != request.di:
        raise CodecError(f'reply DI {reply.di}, expected {request.di}')
    return reply


def next_ser(ser: int) -> int:
    return (ser + 1) & 0xFF


# --- builders ---------------------------------------------------------------

def _order(di_order, vendor):
    order = get_vendor(vendor).cjt188_di_order if di_order is None \
        else di_order
    if order not in (BIG, LITTLE):
        raise CodecError('DI order must be big or little')
    return order


def _ser(ser: int) -> bytes:
    if not isinstance(ser, int) or not 0 <= ser <= 0xFF:
        raise CodecError('SER must be a byte')
    return bytes([ser])


def _preamble(preamble, vendor):
    return get_vendor(vendor).preamble if preamble is None else preamble


def request(address: str, control: int, di: str, payload: bytes = b'', *,
        meter_type: int = 0x10, ser: int = 0, di_order=None, vendor=None,
        preamble=None) -> bytes:
    data = di_wire(di, _order(di_order, vendor)) + _ser(ser) + bytes(payload)
    return Frame(meter_type, address, control, data).to_bytes(
        _preamble(preamble, vendor))


def read_request(address: str, *, meter_type: int = 0x10,
        di: str = DI_METERING, ser: int = 0, di_order=None, vendor=None,
        preamble=None) -> bytes:
    return request(address, READ, di, meter_type=meter_type, ser=ser,
        di_order=di_order, vendor=vendor, preamble=preamble)


def read_address_request(*, meter_type: int = BROADCAST_TYPE, ser: int = 0,
        di_order=None, vendor=None, preamble=None) -> bytes:
    return request(BROADCAST, READ_ADDRESS, DI_ADDRESS,
        meter_type=meter_type, ser=ser, di_order=di_order, vendor=vendor,
        preamble=preamble)


def valve_request(address: str, open_valve: bool, *, meter_type: int = 0x10,
        ser: int = 0, di_order=None, vendor=None, preamble=None) -> bytes:
    control = get_vendor(vendor).cjt188_valve_control
    return request(address, control, DI_VALVE,
        bytes([VALVE_OPEN if open_valve else VALVE_CLOSE]),
        meter_type=meter_type, ser=ser, di_order=di_order, vendor=vendor,
        preamble=preamble)


def write_address_request(address: str, new_address: str, *,
        meter_type: int = 0x10, ser: int = 0, di_order=None, vendor=None,
        preamble=None) -> bytes:
    return request(address, WRITE_ADDRESS, DI_WRITE_ADDRESS,
        digits_to_wire(new_address, ADDRESS_LEN), meter_type=meter_type,
        ser=ser, di_order=di_order, vendor=vendor, preamble=preamble)


def _unit(unit: str) -> int:
    try:
        return UNIT_CODES[unit]
    except KeyError:
        raise CodecError(f'unknown CJ/T188 unit {unit!r}') from None


def read_response(address: str, *, flow, time: dt.datetime,
        settlement_flow=None, unit: str = 'm3', valve: str = 'open',
        battery_low: bool = False, meter_type: int = 0x10, ser: int = 0,
        di_order: str = BIG, preamble: int = 0) -> bytes:
    """901F reply of a water/gas meter (the simulator's side)."""
    code = _unit(unit)
    settlement_flow = flow if settlement_flow is None else settlement_flow
    payload = (decimal_to_bcd(flow, 4, 2) + bytes([code])
        + decimal_to_bcd(settlement_flow, 4, 2) + bytes([code])
        + encode_datetime(time, 'ssmmhhDDMMYYCC')
        + encode_st(valve=valve, battery_low=battery_low))
    return Frame(meter_type, address, DIR_RESPONSE | READ,
        di_wire(DI_METERING, di_order) + _ser(ser) + payload
        ).to_bytes(preamble)


def valve_response(address: str, *, valve: str, battery_low: bool = False,
        meter_type: int = 0x10, ser: int = 0, di_order: str = BIG,
        control: int = WRITE, preamble: int = 0) -> bytes:
    return Frame(meter_type, address, DIR_RESPONSE | control,
        di_wire(DI_VALVE, di_order) + _ser(ser)
        + encode_st(valve=valve, battery_low=battery_low)).to_bytes(preamble)


def read_address_response(address: str, *, meter_type: int = 0x10,
        ser: int = 0, di_order: str = BIG, preamble: int = 0) -> bytes:
    return Frame(meter_type, address, DIR_RESPONSE | READ_ADDRESS,
        di_wire(DI_ADDRESS, di_order) + _ser(ser)).to_bytes(preamble)


def error_response(address: str, function: int, *, st: bytes,
        meter_type: int = 0x10, ser: int = 0, preamble: int = 0) -> bytes:
    if len(st) != 2:
        raise CodecError('ST is 2 bytes')
    return Frame(meter_type, address, DIR_RESPONSE | ABNORMAL | function,
        _ser(ser) + bytes(st)).to_bytes(preamble)
