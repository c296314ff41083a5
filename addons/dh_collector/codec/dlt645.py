"""DL/T645-2007 and DL/T645-1997: frames, messages, builders. Pure, no I/O.

Layers, each usable alone:

* :class:`Frame` — address (nameplate order), control byte, data (−0x33
  already removed); ``Frame.to_bytes()`` / ``Frame.from_bytes()``.
* :func:`decode_stream` — the streaming framer (``(used, frame)``).
* :class:`Message` / :func:`parse` — what a frame means: command, DI,
  payload, decoded value, request fields, error reasons.
* builders (``read_request`` … ``error_response``) — bytes ready to send,
  for the collector (requests) and the simulator (responses).
"""

import datetime as dt
from decimal import Decimal
from dataclasses import dataclass, field
from functools import lru_cache

from . import di as registry
from .bcd import (
    ADDRESS_BYTES, bcd_byte, bcd_fields, checksum, decode_datetime,
    digits_to_wire, encode_datetime, hex_to_wire, iso_datetime,
    normalize_digits, wire_to_digits, wire_to_hex)
from .errors import CodecError
from .framing import (
    BAD, END, NEED, NOISE, OK, PREAMBLE, START, MessageBase, scan)
from .vendors import BIG, get_vendor

V2007 = '2007'
V1997 = '1997'
BROADCAST = '999999999999'
WILDCARD = 'AAAAAAAAAAAA'
MAX_L = 200        # reads; writes are limited to 50 by the standard
MAX_WRITE_L = 50
ADDRESS_LEN = 6

# control byte
DIR_RESPONSE = 0x80
ABNORMAL = 0x40
FOLLOW_UP = 0x20
FUNCTION = 0x1F

# DL/T645-2007 function codes
SECURITY = 0x03
TIME_SYNC = 0x08
READ = 0x11
READ_NEXT = 0x12
READ_ADDRESS = 0x13
WRITE = 0x14
WRITE_ADDRESS = 0x15
FREEZE = 0x16
BAUD = 0x17
PASSWORD = 0x18
CLEAR_DEMAND = 0x19
CLEAR_METER = 0x1A
CLEAR_EVENT = 0x1B
CONTROL = 0x1C
OUTPUT = 0x1D

# DL/T645-1997 function codes
READ_97 = 0x01
READ_NEXT_97 = 0x02
REREAD_97 = 0x03
WRITE_97 = 0x04
TIME_SYNC_97 = 0x08
WRITE_ADDRESS_97 = 0x0A
BAUD_97 = 0x0C
PASSWORD_97 = 0x0F
CLEAR_DEMAND_97 = 0x10

COMMANDS = {
    V2007: {
        SECURITY: 'security', TIME_SYNC: 'time-sync', READ: 'read',
        READ_NEXT: 'read-next', READ_ADDRESS: 'read-address',
        WRITE: 'write', WRITE_ADDRESS: 'write-address', FREEZE: 'freeze',
        BAUD: 'baud', PASSWORD: 'password', CLEAR_DEMAND: 'clear-demand',
        CLEAR_METER: 'clear-meter', CLEAR_EVENT: 'clear-event',
        CONTROL: 'control', OUTPUT: 'output',
        },
    V1997: {
        READ_97: 'read', READ_NEXT_97: 'read-next', REREAD_97: 'reread',
        WRITE_97: 'write', TIME_SYNC_97: 'time-sync',
        WRITE_ADDRESS_97: 'write-address', BAUD_97: 'baud',
        PASSWORD_97: 'password', CLEAR_DEMAND_97: 'clear-demand',
        },
    }
_ONLY_1997 = {READ_97, READ_NEXT_97, WRITE_97, WRITE_ADDRESS_97, BAUD_97,
    PASSWORD_97, CLEAR_DEMAND_97}

# remote control (0x1C) N1 codes
CONTROL_ACTIONS = {
    'trip': 0x1A,
    'close': 0x1B,          # close allowed (合闸允许)
    'close-direct': 0x1C,   # direct close, State-Grid extension
    'alarm': 0x2A,
    'alarm-release': 0x2B,
    'hold': 0x3A,           # power hold (保电)
    'hold-release': 0x3B,
    }
_ACTION_NAMES = {v: k for k, v in CONTROL_ACTIONS.items()}
ESAM_LEVEL = 0x98

# error words
ERR_2007 = {
    0: 'other error',
    1: 'no requested data',
    2: 'wrong password or not authorised',
    3: 'baud rate cannot be changed',
    4: 'too many year time zones',
    5: 'too many day time slots',
    6: 'too many tariffs',
    }
ERR_1997 = {
    0: 'illegal data',
    1: 'wrong data identifier',
    2: 'wrong password',
    4: 'too many year time zones',
    5: 'too many day time slots',
    6: 'too many tariffs',
    }
SERR = {
    0: 'other error',
    1: 'duplicate recharge',
    2: 'ESAM verification failed',
    3: 'identity authentication failed',
    4: 'customer number mismatch',
    5: 'purchase count error',
    6: 'over hoarding limit',
    }


def error_reasons(code: int, table: dict) -> tuple[str, ...]:
    reasons = tuple(text for bit, text in sorted(table.items())
        if code >> bit & 1)
    unknown = code & ~sum(1 << bit for bit in table)
    if unknown:
        reasons += (f'reserved bits 0x{unknown:X}',)
    return reasons or ('unspecified error',)


# --- frame ------------------------------------------------------------------

# the data field goes on the wire +0x33 per byte (mod 256)
_ADD33 = bytes((b + 0x33) & 0xFF for b in range(256))
_SUB33 = bytes((b - 0x33) & 0xFF for b in range(256))
_FE = bytes((PREAMBLE,))
# 68 A0..A5 68 | C | L | DI+0x33 | rest of the data+0x33 | CS | 16
_LAYOUT = b'%s%c%c%s%s%c\x16'

_new = object.__new__
_set = object.__setattr__

# address text -> (digits, wire, header ``68 A0..A5 68``, sum of the
# header): normalize_digits(address, 6) of addresses seen before (bounded)
_ADDRESSES: dict[str, tuple[str, bytes, bytes, int]] = {}
_ADDRESSES_MAX = 8192


def _address_parts(address) -> tuple[str, bytes, bytes, int]:
    if type(address) is str:
        found = _ADDRESSES.get(address)
        if found is not None:
            return found
    digits, wire = normalize_digits(address, ADDRESS_LEN)
    header = b'\x68' + wire + b'\x68'
    found = (digits, wire, header, sum(header))
    if type(address) is str:
        if len(_ADDRESSES) >= _ADDRESSES_MAX:
            _ADDRESSES.clear()
        _ADDRESSES[address] = found
    return found


def _normalize_address(address) -> tuple[str, bytes]:
    """``normalize_digits(address, ADDRESS_LEN)``, memoised for text."""
    found = _address_parts(address)
    return found[0], found[1]


def _frame(address: str, wire: bytes, control: int, data: bytes) -> 'Frame':
    """A :class:`Frame` from parts already checked and normalised (what
    ``Frame(address, control, data)`` would hold), without its checks."""
    frame = _new(Frame)
    d = frame.__dict__
    d['address'] = address
    d['control'] = control
    d['data'] = data
    d['_wire'] = wire
    return frame


@dataclass(frozen=True)
class Frame:
    """One DL/T645 frame. ``address`` is printed (nameplate) order,
    ``data`` is the data field with the 0x33 offset removed."""
    address: str
    control: int
    data: bytes = b''
    _wire: bytes = field(default=b'', init=False, repr=False,
        compare=False)

    def __post_init__(self):
        if not isinstance(self.control, int) or not 0 <= self.control <= 0xFF:
            raise CodecError('control must be a byte')
        if len(self.data) > MAX_L:
            raise CodecError(f'data field of {len(self.data)} bytes exceeds '
                f'L={MAX_L}')
        # validates and normalises
        address, wire = _normalize_address(self.address)
        _set(self, 'address', address)
        _set(self, '_wire', wire)
        if type(self.data) is not bytes:
            _set(self, 'data', bytes(self.data))

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
    def has_follow_up(self) -> bool:
        return bool(self.control & FOLLOW_UP)

    @property
    def function(self) -> int:
        return self.control & FUNCTION

    @property
    def is_broadcast(self) -> bool:
        return self.address == BROADCAST

    def to_bytes(self, preamble: int = 4) -> bytes:
        data = self.data
        body = (b'\x68' + self._wire + bytes((START, self.control, len(data)))
            + data.translate(_ADD33))
        return _FE * preamble + body + bytes((checksum(body), END))

    @classmethod
    def from_bytes(cls, raw: bytes) -> 'Frame':
        """Exactly one frame, optionally after FE preamble bytes."""
        if type(raw) is not bytes:
            raw = bytes(raw)
        start = _skip_preamble(raw)
        status, result = probe(raw, start)
        if status == OK:
            length, frame = result
            if start + length != len(raw):
                raise CodecError(f'{len(raw) - start - length} bytes after '
                    'the end of the frame')
            return frame
        if status == NEED:
            raise CodecError('truncated DL/T645 frame')
        if status == BAD:
            raise CodecError(result)
        raise CodecError('not a DL/T645 frame (no 68 A0..A5 68 header)')


def _skip_preamble(raw: bytes) -> int:
    start = len(raw) - len(raw.lstrip(_FE))
    if start >= len(raw):
        raise CodecError('no frame after the FE preamble')
    if raw[start] != START:
        raise CodecError(f'frame must start with 68, found '
            f'{raw[start]:02X}')
    return start


def probe(buf, i):
    """Framing probe (see :mod:`.framing`) for a DL/T645 frame at ``i``."""
    available = len(buf) - i
    if available < 8:
        return NEED, None
    if buf[i + 7] != START:
        return NOISE, None
    if available < 10:
        return NEED, None
    length = buf[i + 9]
    if length > MAX_L:
        return BAD, f'L={length} exceeds the maximum of {MAX_L}'
    total = 12 + length
    if available < total:
        return NEED, None
    end = i + 10 + length     # index of CS
    if buf[end + 1] != END:
        return BAD, 'frame does not end with 16'
    cs = sum(buf[i:end]) & 0xFF
    if cs != buf[end]:
        return BAD, (f'checksum mismatch (frame says '
            f'{buf[end]:02X}, computed {cs:02X})')
    wire = bytes(buf[i + 1:i + 7])
    bad = wire.translate(None, ADDRESS_BYTES)
    if bad:     # as wire_to_digits says it
        return BAD, f'address byte 0x{bad[0]:02X} is not BCD'
    data = bytes(buf[i + 10:end]).translate(_SUB33)
    return OK, (total, _frame(wire[::-1].hex().upper(), wire, buf[i + 8],
        data))


def decode_stream(buffer, on_reject=None):
    """``(used, Frame|None)``; ``used == 0``: need more bytes. Garbage and
    FE before a frame are consumed; frames with a bad checksum or end byte
    are dropped (``on_reject(reason)`` is told)."""
    return scan(buffer, (probe,), on_reject)


# --- messages ---------------------------------------------------------------

@dataclass(frozen=True)
class Message(MessageBase):
    """What a frame means."""
    frame: Frame
    version: str
    command: str
    di: str | None = None
    payload: bytes = b''
    seq: int | None = None
    value: object = None
    fields: dict = field(default_factory=dict)
    error_code: int | None = None
    error_reasons: tuple = ()

    @property
    def has_follow_up(self) -> bool:
        return self.frame.has_follow_up



def _message(frame, version, command, di=None, payload=b'', seq=None,
        value=None, fields=None) -> Message:
    """``Message(frame=…, …)`` for a normal (not abnormal) message, without
    the cost of the frozen dataclass ``__init__``."""
    message = _new(Message)
    d = message.__dict__
    d['frame'] = frame
    d['version'] = version
    d['command'] = command
    d['di'] = di
    d['payload'] = payload
    d['seq'] = seq
    d['value'] = value
    d['fields'] = {} if fields is None else fields
    d['error_code'] = None
    d['error_reasons'] = ()
    return message


def detect_version(frame: Frame) -> str:
    """1997 or 2007 from the control code family (and L for the shared
    code 03: 1997 re-read has no data)."""
    function = frame.control & FUNCTION
    if function in _ONLY_1997:
        return V1997
    if function == REREAD_97 and not frame.data:
        return V1997
    return V2007


def parse(frame: Frame, version: str | None = None, vendor=None) -> Message:
    """Interpret a frame; ``version`` None auto-detects."""
    if version is None:
        version = detect_version(frame)
    if version not in COMMANDS:
        raise CodecError(f'unknown DL/T645 version {version!r}')
    profile = get_vendor(vendor)
    control = frame.control
    function = control & FUNCTION
    command = COMMANDS[version].get(function) or f'function-{function:02X}'
    if function == READ and version == V2007 and not control & ABNORMAL:
        return _parse_read_2007(frame, control, command)
    data = frame.data
    base = dict(frame=frame, version=version, command=command)

    if frame.is_response and frame.is_abnormal:
        if function == SECURITY and version == V2007:
            if len(data) < 2:
                raise CodecError('abnormal security reply needs a 2-byte SERR')
            code, table = int.from_bytes(data[:2], 'little'), SERR
        else:
            if not data:
                raise CodecError('abnormal reply without an error byte')
            code = data[0]
            table = ERR_1997 if version == V1997 else ERR_2007
        return Message(**base, error_code=code,
            error_reasons=error_reasons(code, table),
            fields={'error_word': f'{code:02X}'})

    di_len = 2 if version == V1997 else 4
    parser = _PARSERS.get((version, function))
    if parser is None:
        fields = {'data': data.hex().upper()} if data else {}
        return Message(**base, fields=fields)
    return parser(frame, base, di_len, profile)


def _split_di(data: bytes, di_len: int, what: str):
    if len(data) < di_len:
        raise CodecError(f'{what} needs a {di_len}-byte DI, got {len(data)} '
            'data bytes')
    return wire_to_hex(data[:di_len]), data[di_len:]


def _value(di, payload, version):
    return registry.decode_value(di, payload, version)


@lru_cache(maxsize=8192)
def _di_entry(wire: bytes, version: str):
    """DI text, registry entry (or None) and :func:`_number` of a DI in
    wire order."""
    di = wire_to_hex(wire)
    entry = registry.lookup(di, version)
    return di, entry, _number(entry)


def _number(entry):
    """``(length, signed, type, suffix)`` of a plain numeric item, else
    ``None``: for BCD bytes (sign bit clear when signed), ``Item.decode``
    returns ``type(digits + suffix)``, digits as printed."""
    if type(entry) is registry.Item and entry.kind == registry.NUMBER:
        if entry.decimals > 0:
            return (entry.length, entry.signed, Decimal,
                f'E-{entry.decimals}')
        if not entry.decimals:
            return entry.length, entry.signed, int, ''
    return None


def _parse_read_2007(frame, control, command):
    """:func:`_parse_read` for DL/T645-2007 (normal request or reply)."""
    data = frame.data
    if len(data) < 4:
        raise CodecError(f'read needs a 4-byte DI, got {len(data)} '
            'data bytes')
    di, entry, _ = _di_entry(data[:4], V2007)
    rest = data[4:]
    if not control & DIR_RESPONSE:
        return _message(frame, V2007, command, di,
            fields={'params': rest.hex().upper()} if rest else None)
    value = None
    if entry is not None and not control & FOLLOW_UP:
        value = entry.decode(rest)
    return _message(frame, V2007, command, di, rest, value=value)


def _parse_read(frame, base, di_len, profile):
    version = base['version']
    di, rest = _split_di(frame.data, di_len, 'read')
    if not frame.is_response:
        fields = {'params': rest.hex().upper()} if rest else {}
        return Message(**base, di=di, fields=fields)
    value = None
    if not frame.has_follow_up:
        value = _value(di, rest, version)
    return Message(**base, di=di, payload=rest, value=value)


def _parse_read_next(frame, base, di_len, profile):
    version = base['version']
    di, rest = _split_di(frame.data, di_len, 'read follow-up')
    if version == V1997:
        if frame.is_response:
            return Message(**base, di=di, payload=rest)
        return Message(**base, di=di)
    if not rest:
        raise CodecError('read follow-up needs a sequence byte')
    seq = rest[-1]
    if not frame.is_response and len(rest) != 1:
        raise CodecError('read follow-up request is DI + one sequence byte')
    return Message(**base, di=di, payload=rest[:-1], seq=seq)


def _parse_read_address(frame, base, di_len, profile):
    if not frame.is_response:
        if frame.data:
            raise CodecError('read-address request carries no data')
        return Message(**base)
    if len(frame.data) != ADDRESS_LEN:
        raise CodecError('read-address reply needs 6 address bytes')
    return Message(**base, value=wire_to_digits(frame.data))


def _password(raw: bytes, profile) -> str:
    return (raw if profile.password_order == BIG else raw[::-1]).hex().upper()


def _password_wire(password: str, profile) -> bytes:
    wire = hex_to_wire(password, 3, 'password')
    return wire[::-1] if profile.password_order == BIG else wire


def _parse_write(frame, base, di_len, profile):
    version = base['version']
    if frame.is_response:
        return _parse_ack(frame, base, di_len, profile)
    di, rest = _split_di(frame.data, di_len, 'write')
    auth = 8 if version == V2007 else 4
    if len(rest) < auth:
        what = 'password and operator code' if auth == 8 else 'password'
        raise CodecError(f'write needs {what} ({auth} bytes) after the DI')
    fields = {'level': f'{rest[0]:02X}',
        'password': _password(rest[1:4], profile)}
    if version == V2007:
        fields['operator'] = wire_to_hex(rest[4:8])
    payload = rest[auth:]
    value = _value(di, payload, version)
    return Message(**base, di=di, payload=payload, value=value, fields=fields)


def _parse_ack(frame, base, di_len, profile):
    """Normal reply without meaning-bearing data (0x94, 0x95, 0x96, 0x9C)."""
    fields = {'data': frame.data.hex().upper()} if frame.data else {}
    return Message(**base, fields=fields)


def _parse_write_address(frame, base, di_len, profile):
    if frame.is_response:
        return _parse_ack(frame, base, di_len, profile)
    if len(frame.data) != ADDRESS_LEN:
        raise CodecError('write-address needs 6 address bytes')
    new = wire_to_digits(frame.data)
    return Message(**base, value=new, fields={'new_address': new})


def _parse_time_sync(frame, base, di_len, profile):
    if len(frame.data) != 6:
        raise CodecError('time sync needs 6 bytes ss mm hh DD MM YY')
    when = iso_datetime(decode_datetime(frame.data, 'ssmmhhDDMMYY'))
    return Message(**base, value=when, fields={'time': when})


def _parse_freeze(frame, base, di_len, profile):
    if frame.is_response:
        return _parse_ack(frame, base, di_len, profile)
    if len(frame.data) != 4:
        raise CodecError('freeze needs 4 bytes mm hh DD MM')
    names = ('minute', 'hour', 'day', 'month')
    limits = (59, 23, 31, 12)
    fields = {}
    for name, limit, number in zip(names, limits, bcd_fields(frame.data)):
        if number != 99 and number > limit:
            raise CodecError(f'freeze {name} {number} out of range')
        fields[name] = None if number == 99 else number
    return Message(**base, fields=fields)


def _parse_control(frame, base, di_len, profile):
    if frame.is_response:
        return _parse_ack(frame, base, di_len, profile)
    data = frame.data
    if len(data) < 8:
        raise CodecError('remote control needs password and operator code')
    fields = {'level': f'{data[0]:02X}', 'operator': wire_to_hex(data[4:8])}
    if data[0] == ESAM_LEVEL:
        fields['encrypted'] = True
        fields['cipher'] = data[8:].hex().upper()
        return Message(**base, fields=fields)
    if len(data) != 16:
        raise CodecError('plaintext remote control needs 16 data bytes '
            '(PA P0-P2 C0-C3 N1 N2 N3-N8)')
    fields['password'] = _password(data[1:4], profile)
    action = _ACTION_NAMES.get(data[8])
    if action is None:
        raise CodecError(f'unknown remote control code N1={data[8]:02X}')
    fields['action'] = action
    fields['valid_until'] = iso_datetime(
        decode_datetime(data[10:16], 'ssmmhhDDMMYY'))
    return Message(**base, value=action, fields=fields)


def _parse_security(frame, base, di_len, profile):
    di, rest = _split_di(frame.data, 4, 'security')
    return Message(**base, di=di, payload=rest,
        fields={'data': rest.hex().upper()} if rest else {})


def _parse_baud(frame, base, di_len, profile):
    if len(frame.data) != 1:
        raise CodecError('baud change carries one Z byte')
    return Message(**base, fields={'z': f'{frame.data[0]:02X}'})


_PARSERS = {
    (V2007, READ): _parse_read,
    (V2007, READ_NEXT): _parse_read_next,
    (V2007, READ_ADDRESS): _parse_read_address,
    (V2007, WRITE): _parse_write,
    (V2007, WRITE_ADDRESS): _parse_write_address,
    (V2007, TIME_SYNC): _parse_time_sync,
    (V2007, FREEZE): _parse_freeze,
    (V2007, CONTROL): _parse_control,
    (V2007, SECURITY): _parse_security,
    (V2007, BAUD): _parse_baud,
    (V1997, READ_97): _parse_read,
    (V1997, READ_NEXT_97): _parse_read_next,
    (V1997, WRITE_97): _parse_write,
    (V1997, TIME_SYNC_97): _parse_time_sync,
    (V1997, WRITE_ADDRESS_97): _parse_write_address,
    (V1997, BAUD_97): _parse_baud,
    }


def decode(raw: bytes, version: str | None = None, vendor=None) -> Message:
    """One frame (FE preamble allowed) to a :class:`Message`.

    The frames a collector sees most, well-formed DL/T645-2007 read
    requests (11) and normal replies (91, B1), are decoded here directly;
    every other frame, including every malformed one, goes through
    ``parse(Frame.from_bytes(raw))``, which says what is wrong. Both give
    the same :class:`Message`."""
    if (type(raw) is not bytes or vendor is not None
            or not (version is None or version == V2007)):
        return parse(Frame.from_bytes(raw), version, vendor)
    body = raw.lstrip(_FE)
    head = _HEADS.get(body[:14])
    if head is None:
        head = _read_head(body)
        if head is None:
            return parse(Frame.from_bytes(raw), version, vendor)
    # the header is known good: check the length, end byte and checksum
    cs = body[-2]
    if (len(body) != head[0] or body[-1] != END
            or (sum(body) - END - cs) & 0xFF != cs):
        return parse(Frame.from_bytes(raw), version, vendor)
    _, control, address, wire, di, entry, number = head
    data = body[10:-2].translate(_SUB33)
    frame = _new(Frame)
    d = frame.__dict__
    d['address'] = address
    d['control'] = control
    d['data'] = data
    d['_wire'] = wire
    rest = data[4:]
    message = _new(Message)
    d = message.__dict__
    d['frame'] = frame
    d['version'] = V2007
    d['command'] = 'read'
    d['di'] = di
    if control == READ:
        d['payload'] = b''
        d['seq'] = None
        d['value'] = None
        d['fields'] = {'params': rest.hex().upper()} if rest else {}
    else:
        value = None
        if control == 0x91 and entry is not None:
            # the hex text of packed BCD is its digits (as printed): the
            # bytes are BCD when it is all 0-9; a signed item's sign bit
            # shows as a first digit 8 or 9 (both left to Item.decode)
            digits = rest[::-1].hex()
            if (number is not None and len(rest) == number[0]
                    and digits.isdigit()
                    and not (number[1] and digits[0] > '7')):
                value = number[2](digits + number[3])
            else:
                value = entry.decode(rest)
        d['payload'] = rest
        d['seq'] = None
        d['value'] = value
        d['fields'] = {}
    d['error_code'] = None
    d['error_reasons'] = ()
    return message


def _read_head(body: bytes) -> tuple | None:
    """What ``68 A0..A5 68 C L DI`` (``body[:14]``) says when it starts a
    DL/T645-2007 read request (11) or normal reply (91, B1) with a BCD
    address and 4 <= L <= 200, else None: ``(frame size, control,
    address, wire address, DI, registry entry, _number(entry))``,
    memoised."""
    if len(body) < 16 or body[0] != START or body[7] != START:
        return None
    control = body[8]
    length = body[9]
    if (control != 0x91 and control != READ and control != 0xB1
            or length < 4 or length > MAX_L):
        return None
    wire = body[1:7]
    if wire.translate(None, ADDRESS_BYTES):
        return None
    head = (12 + length, control, wire[::-1].hex().upper(), wire,
        *_di_entry(body[10:14].translate(_SUB33), V2007))
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()
    _HEADS[body[:14]] = head
    return head


# body[:14] of read frames seen before -> _read_head (bounded)
_HEADS: dict[bytes, tuple] = {}
_HEADS_MAX = 8192


def _forget_entries():
    """Registry changed (di.register_items): drop what cached entries."""
    _di_entry.cache_clear()
    _HEADS.clear()
    _DI_PARTS.clear()


registry.on_register(_forget_entries)


def check_reply(request: Message, reply: Message) -> Message:
    """Verify that ``reply`` answers ``request`` (address, function, DI);
    raise :class:`AbnormalReply` for an abnormal one. Returns ``reply``."""
    if not reply.is_response:
        raise CodecError('expected a reply, got a request')
    if request.frame.function != reply.frame.function:
        raise CodecError(f'reply function {reply.frame.function:02X} does not '
            f'match request {request.frame.function:02X}')
    wanted = request.address
    if 'A' not in wanted and wanted != BROADCAST and reply.address != wanted:
        raise CodecError(f'reply from {reply.address}, expected {wanted}')
    reply.raise_for_error()
    if request.di is not None and reply.di != request.di:
        raise CodecError(f'reply DI {reply.di} does not match request '
            f'{request.di}')
    return reply


def assemble(replies: list[Message]) -> bytes:
    """Payload of a multi-frame read: the 0x91/0xB1 reply, then the
    0x92/0xB2 follow-ups in sequence order. The last must have D5 clear."""
    if not replies:
        raise CodecError('no replies to assemble')
    first = replies[0]
    payload = bytearray(first.payload)
    for expected_seq, reply in enumerate(replies[1:], start=1):
        if reply.di != first.di:
            raise CodecError(f'follow-up DI {reply.di} differs from '
                f'{first.di}')
        if reply.seq is not None and reply.seq != expected_seq:
            raise CodecError(f'follow-up sequence {reply.seq}, expected '
                f'{expected_seq}')
        payload += reply.payload
    if replies[-1].has_follow_up:
        raise CodecError('more follow-up frames are announced')
    return bytes(payload)


# --- builders ---------------------------------------------------------------

def _di_wire(di: str, version: str) -> bytes:
    return _di_parts(di, version)[0]


def _di_parts(di: str, version: str) -> tuple:
    """``(wire, entry, number, wire+0x33, sum(wire+0x33))``: the DI in
    wire order (checked as ``hex_to_wire`` does), its registry entry (or
    None), and for a plain numeric item ``number = (decimals, limit,
    '%0Nd', 10**decimals, L)``: an ``int`` or ``Decimal`` value that,
    scaled, is an integer in ``0 <= n < limit`` encodes as the BCD of
    ``'%0Nd' % n`` (what ``Item.encode`` gives); L is that of a reply,
    DI and value."""
    cache = type(di) is str and type(version) is str
    if cache:
        found = _DI_PARTS.get((di, version))
        if found is not None:
            return found
    wire = hex_to_wire(di, 2 if version == V1997 else 4, 'DI')
    entry = registry.lookup(di, version)
    number = None
    if (type(entry) is registry.Item and entry.kind == registry.NUMBER
            and entry.decimals >= 0):
        digits = 2 * entry.length
        # signed: the first digit carries the sign bit, so it stays 0-7
        limit = 8 * 10 ** (digits - 1) if entry.signed else 10 ** digits
        number = (entry.decimals, limit, f'%0{digits}d',
            10 ** entry.decimals, len(wire) + entry.length)
    shifted = wire.translate(_ADD33)
    found = (wire, entry, number, shifted, sum(shifted))
    if cache:
        if len(_DI_PARTS) >= _DI_PARTS_MAX:
            _DI_PARTS.clear()
        _DI_PARTS[di, version] = found
    return found


def _read_body(address, control: int, di_parts: tuple,
        payload: bytes = b'') -> bytes:
    """``Frame(address, control, DI + payload).to_bytes(0)`` (same checks,
    same errors) without the intermediate object, the DI's share of the
    data field and checksum precomputed."""
    length = len(di_parts[0]) + len(payload)
    if length > MAX_L:
        raise CodecError(f'data field of {length} bytes exceeds '
            f'L={MAX_L}')
    head = _ADDRESSES.get(address) if type(address) is str else None
    if head is None:
        head = _address_parts(address)
    payload = payload.translate(_ADD33)
    return _LAYOUT % (head[2], control, length, di_parts[3], payload,
        (head[3] + control + length + di_parts[4] + sum(payload)) & 0xFF)


# (DI text, version) -> _di_parts, for DIs seen before (bounded)
_DI_PARTS: dict[tuple[str, str], tuple] = {}
_DI_PARTS_MAX = 4096


def _item_data(di: str, value, version: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return registry.encode_value(di, value, version)


def _auth(password: str, level: int, operator: str | None, profile,
        version: str) -> bytes:
    if not isinstance(level, int) or not 0 <= level <= 0xFF:
        raise CodecError('password level must be a byte')
    out = bytes([level]) + _password_wire(password, profile)
    if version == V2007:
        out += hex_to_wire(operator or '00000000', 4, 'operator code')
    return out


def _preamble(preamble, vendor):
    return get_vendor(vendor).preamble if preamble is None else preamble


def read_request(address: str, di: str, *, version: str = V2007,
        preamble: int | None = None, vendor=None) -> bytes:
    # a collector sends the same few requests to each meter every cycle
    standard = (preamble is None and vendor is None and version == V2007
        and type(address) is str and type(di) is str)
    if standard:
        found = _REQUESTS.get((address, di))
        if found is not None:
            return found
    parts = (_DI_PARTS.get((di, version))
        if type(di) is str and type(version) is str else None)
    if parts is None:
        parts = _di_parts(di, version)
    body = _read_body(address, READ_97 if version == V1997 else READ, parts)
    if preamble is None:
        preamble = get_vendor(vendor).preamble
    frame = _FE * preamble + body
    if standard:
        if len(_REQUESTS) >= _REQUESTS_MAX:
            _REQUESTS.clear()
        _REQUESTS[address, di] = frame
    return frame


# (address, DI) -> read_request(address, DI) with the defaults (bounded)
_REQUESTS: dict[tuple[str, str], bytes] = {}
_REQUESTS_MAX = 8192


def read_next_request(address: str, di: str, seq: int, *,
        preamble: int | None = None, vendor=None) -> bytes:
    if not 0 <= seq <= 0xFF:
        raise CodecError('sequence must be a byte')
    return Frame(address, READ_NEXT, _di_wire(di, V2007) + bytes([seq])
        ).to_bytes(_preamble(preamble, vendor))


def read_address_request(*, preamble: int | None = None, vendor=None) -> bytes:
    return Frame(WILDCARD, READ_ADDRESS).to_bytes(_preamble(preamble, vendor))


def write_request(address: str, di: str, value, *, password: str = '000000',
        level: int | None = None, operator: str = '00000000',
        version: str = V2007, preamble: int | None = None,
        vendor=None) -> bytes:
    """Write ``value`` (encoded through the DI registry; ``bytes`` are sent
    as is) with password level, password and (2007) operator code."""
    profile = get_vendor(vendor)
    level = profile.level if level is None else level
    data = (_di_wire(di, version)
        + _auth(password, level, operator, profile, version)
        + _item_data(di, value, version))
    if len(data) > MAX_WRITE_L:
        raise CodecError(f'write data of {len(data)} bytes exceeds '
            f'L={MAX_WRITE_L}')
    function = WRITE_97 if version == V1997 else WRITE
    return Frame(address, function, data).to_bytes(
        _preamble(preamble, vendor))


def write_address_request(new_address: str, *,
        preamble: int | None = None, vendor=None) -> bytes:
    new = digits_to_wire(new_address, ADDRESS_LEN)
    if 0xAA in new:
        raise CodecError('a new address cannot contain wildcards')
    return Frame(WILDCARD, WRITE_ADDRESS, new).to_bytes(
        _preamble(preamble, vendor))


def time_sync_request(when: dt.datetime, *, address: str = BROADCAST,
        preamble: int | None = None, vendor=None) -> bytes:
    """Broadcast time (0x08): ``ss mm hh DD MM YY``; meters do not reply."""
    return Frame(address, TIME_SYNC, encode_datetime(when, 'ssmmhhDDMMYY')
        ).to_bytes(_preamble(preamble, vendor))


def freeze_request(address: str = BROADCAST, *, minute=None, hour=None,
        day=None, month=None, preamble: int | None = None,
        vendor=None) -> bytes:
    """Freeze (0x16) at ``mm hh DD MM``; ``None`` is 99 (every). All None
    freezes at once."""
    data = bytearray()
    for name, limit, v in (('minute', 59, minute), ('hour', 23, hour),
            ('day', 31, day), ('month', 12, month)):
        if v is not None and not 0 <= v <= limit:
            raise CodecError(f'freeze {name} {v} out of range')
        data.append(bcd_byte(99 if v is None else v))
    return Frame(address, FREEZE, bytes(data)).to_bytes(
        _preamble(preamble, vendor))


def control_request(address: str, action: str, *, valid_until: dt.datetime,
        password: str = '000000', level: int | None = None,
        operator: str = '00000000', preamble: int | None = None,
        vendor=None) -> bytes:
    """Plaintext remote control (0x1C): trip, close, close-direct, alarm,
    alarm-release, hold, hold-release."""
    if action not in CONTROL_ACTIONS:
        raise CodecError(f'unknown action {action!r}; one of '
            f'{", ".join(CONTROL_ACTIONS)}')
    profile = get_vendor(vendor)
    level = profile.level if level is None else level
    if level == ESAM_LEVEL:
        raise CodecError('level 98 needs ESAM ciphertext; not supported')
    data = (_auth(password, level, operator, profile, V2007)
        + bytes([CONTROL_ACTIONS[action], 0x00])
        + encode_datetime(valid_until, 'ssmmhhDDMMYY'))
    return Frame(address, CONTROL, data).to_bytes(_preamble(preamble, vendor))


# responses (the simulator's side)

def read_response(address: str, di: str, value=None, *,
        version: str = V2007, follow_up: bool = False,
        preamble: int = 0) -> bytes:
    """Normal read reply (0x91 / 0xB1 with ``follow_up``; 1997: 0x81)."""
    function = READ_97 if version == V1997 else READ
    control = DIR_RESPONSE | function | (FOLLOW_UP if follow_up else 0)
    parts = (_DI_PARTS.get((di, version))
        if type(di) is str and type(version) is str else None)
    if parts is None:
        parts = _di_parts(di, version)
    number = parts[2]
    if number is not None:
        # Item.encode of a plain number and the frame, inlined for int
        # and Decimal values in range (anything else: the general path)
        kind = type(value)
        integer = None
        if kind is Decimal:
            scaled = value.scaleb(number[0])
            if scaled.is_finite():
                integer = int(scaled)
                if scaled != integer:
                    integer = None
        elif kind is int:
            integer = value * number[3]
        if integer is not None and 0 <= integer < number[1]:
            head = _ADDRESSES.get(address) if type(address) is str else None
            if head is None:
                head = _address_parts(address)
            payload = bytes.fromhex(number[2] % integer)[::-1].translate(
                _ADD33)
            length = number[4]
            return _FE * preamble + _LAYOUT % (head[2], control, length,
                parts[3], payload, (head[3] + control + length + parts[4]
                    + sum(payload)) & 0xFF)
    entry = parts[1]
    if entry is None or isinstance(value, (bytes, bytearray)):
        data = _item_data(di, value, version)
    else:
        data = entry.encode(value)
    return _FE * preamble + _read_body(address, control, parts, data)


def read_next_response(address: str, di: str, data: bytes, seq: int, *,
        follow_up: bool = False, preamble: int = 0) -> bytes:
    control = DIR_RESPONSE | READ_NEXT | (FOLLOW_UP if follow_up else 0)
    return Frame(address, control, _di_wire(di, V2007) + bytes(data)
        + bytes([seq])).to_bytes(preamble)


def read_address_response(address: str, *, preamble: int = 0) -> bytes:
    return Frame(address, DIR_RESPONSE | READ_ADDRESS,
        digits_to_wire(address, ADDRESS_LEN)).to_bytes(preamble)


def ack_response(address: str, function: int, *, preamble: int = 0) -> bytes:
    """Normal reply without data (0x94 write, 0x95, 0x96, 0x9C control)."""
    return Frame(address, DIR_RESPONSE | function).to_bytes(preamble)


def error_response(address: str, function: int, code: int, *,
        version: str = V2007, preamble: int = 0) -> bytes:
    """Abnormal reply ``C|0xC0`` with ERR (SERR, 2 bytes, for 0x03)."""
    if function == SECURITY and version == V2007:
        data = code.to_bytes(2, 'little')
    else:
        data = bytes([code & 0xFF])
    return Frame(address, DIR_RESPONSE | ABNORMAL | function, data).to_bytes(
        preamble)


ERR_CODES = {
    'other': 0x01, 'no-data': 0x02, 'password': 0x04, 'baud': 0x08,
    'year-zones': 0x10, 'day-slots': 0x20, 'tariffs': 0x40,
    }
SERR_CODES = {
    'other': 0x01, 'duplicate': 0x02, 'esam': 0x04, 'auth': 0x08,
    'customer': 0x10, 'count': 0x20, 'hoarding': 0x40,
    }
