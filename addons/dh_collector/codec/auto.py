"""Protocol auto-detection, mixed-bus framing and the JSON view of a frame
(DESIGN.md §6.2, printed by ``dh frame decode``)."""

from decimal import Decimal

from . import cjt188, dlt645
from .bcd import parse_hex
from .errors import CodecError
from .framing import BAD, NEED, OK, PREAMBLE, START, scan

DLT645_2007 = 'dlt645-2007'
DLT645_1997 = 'dlt645-1997'
CJT188 = 'cjt188'
PROTOCOLS = (DLT645_2007, DLT645_1997, CJT188)


def decode_stream(buffer, on_reject=None):
    """Framer for a bus that may carry DL/T645 and CJ/T188:
    ``(used, dlt645.Frame|cjt188.Frame|None)``. A corrupt frame of one
    protocol may be held until enough bytes show it is not the start of
    the other's; prefer the single-protocol framers when a channel's
    protocol is known."""
    return scan(buffer, (dlt645.probe, cjt188.probe), on_reject)


def _body(raw: bytes) -> tuple[int, bytes]:
    start = 0
    while start < len(raw) and raw[start] == PREAMBLE:
        start += 1
    if start >= len(raw):
        raise CodecError('no frame after the FE preamble' if raw
            else 'empty frame')
    if raw[start] != START:
        raise CodecError(f'frame must start with 68 (after optional FE), '
            f'found {raw[start]:02X}')
    return start, raw


def detect(raw: bytes) -> str:
    """``dlt645`` or ``cjt188`` from the frame layout (DL/T645: ``68`` again
    after 6 address bytes and length 12+L; CJ/T188: a meter-type byte and
    length 13+L), checksum deciding when both layouts fit."""
    start, raw = _body(bytes(raw))
    results = {}
    for name, probe in (('dlt645', dlt645.probe), ('cjt188', cjt188.probe)):
        status, result = probe(raw, start)
        if status == OK and start + result[0] == len(raw):
            return name
        results[name] = (status, result)
    for name in ('dlt645', 'cjt188'):
        status, result = results[name]
        if status == BAD:
            raise CodecError(result)
    for name in ('dlt645', 'cjt188'):
        status, result = results[name]
        if status == OK:
            raise CodecError(f'{len(raw) - start - result[0]} bytes after '
                'the end of the frame')
    if any(status == NEED for status, _ in results.values()):
        raise CodecError('truncated frame')
    raise CodecError('neither a DL/T645 nor a CJ/T188 frame')


def decode(raw, protocol: str | None = None, vendor=None):
    """A :class:`dlt645.Message` or :class:`cjt188.Message`."""
    if isinstance(raw, str):
        raw = parse_hex(raw)
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise CodecError('frame must be bytes or hex text')
    raw = bytes(raw)
    if protocol is None:
        family = detect(raw)
        if family == 'cjt188':
            return cjt188.decode(raw)
        return dlt645.decode(raw, vendor=vendor)
    if protocol == DLT645_2007:
        return dlt645.decode(raw, dlt645.V2007, vendor)
    if protocol == DLT645_1997:
        return dlt645.decode(raw, dlt645.V1997, vendor)
    if protocol == CJT188:
        return cjt188.decode(raw)
    raise CodecError(f'unknown protocol {protocol!r}; one of '
        f'{", ".join(PROTOCOLS)}')


def jsonable(value):
    """Decimals to float (int when integral with no decimals), recursively."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        if value.as_tuple().exponent >= 0:
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def to_json(message) -> dict:
    if isinstance(message, cjt188.Message):
        protocol = CJT188
        values = {
            'meter_type': f'{message.meter_type:02X}',
            'meter_type_name': cjt188.type_name(message.meter_type),
            'ser': message.ser,
            }
        if message.di_order is not None:
            values['di_order'] = message.di_order
        values.update(message.fields)
        value = message.value if _is_number(message.value) else None
    else:
        protocol = (DLT645_1997 if message.version == dlt645.V1997
            else DLT645_2007)
        value, values = None, None
        if _is_number(message.value):
            value = message.value
        elif isinstance(message.value, dict):
            values = dict(message.value)
        elif message.value is not None:
            values = {_value_key(message): message.value}
        if message.fields:
            values = {**(values or {}), **message.fields}
        if message.seq is not None:
            values = {**(values or {}), 'seq': message.seq}
        if (message.value is None and message.payload
                and message.error_code is None):
            values = {**(values or {}), 'data': message.payload.hex().upper()}
    return {
        'protocol': protocol,
        'address': message.address,
        'control': message.control,
        'direction': message.direction,
        'error': message.error,
        'di': message.di,
        'value': jsonable(value),
        'values': jsonable(values),
        }


def _value_key(message) -> str:
    from . import di as registry
    if message.di:
        entry = registry.lookup(message.di, message.version)
        if entry is not None:
            return entry.name
    return {'read-address': 'address', 'write-address': 'new_address',
        'time-sync': 'time', 'control': 'action'}.get(message.command,
        'value')


def _is_number(value) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def decode_to_json(frame_bytes, protocol: str | None = None,
        vendor=None) -> dict:
    """The §6.2 JSON view of one frame (bytes or hex text); raises only
    :class:`CodecError`."""
    return to_json(decode(frame_bytes, protocol, vendor))
