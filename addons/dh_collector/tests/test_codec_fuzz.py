"""Property tests: garbage in, only CodecError out; builders round-trip."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from trytond.modules.dh_collector.codec import (
    CodecError, StreamDecoder, auto, cjt188, decode_to_json, dlt645,
    parse_hex)
from trytond.modules.dh_collector.codec import di as di_registry
from trytond.modules.dh_collector.codec.auto import PROTOCOLS
from trytond.modules.dh_collector.codec.dlt645 import Frame

from .test_codec_vectors import VECTORS

SEEDS = [parse_hex(v['hex']) for v in VECTORS] + [
    dlt645.control_request('000102030425', 'hold',
        valid_until=dt.datetime(2030, 12, 31, 23, 59, 59)),
    dlt645.write_request('000102030425', '04001001', Decimal('1.5')),
    dlt645.read_response('000102030425', '04000503', 0x1010),
    dlt645.read_response('000102030425', '0001FF00', bytes(20)),
    dlt645.read_next_response('000102030425', '0001FF00', bytes(4), 1),
    dlt645.error_response('000102030425', 0x03, 0x0002),
    dlt645.time_sync_request(dt.datetime(2025, 1, 1)),
    dlt645.freeze_request(),
    cjt188.read_response('78330011223344', flow=1, time=dt.datetime(
        2025, 1, 1)),
    cjt188.error_response('78330011223344', 1, st=b'\x00\x00'),
    ]

FUZZ = settings(max_examples=1000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow])
PROTOCOL = st.sampled_from((None,) + PROTOCOLS)


def _fix_checksum(raw: bytearray) -> bytearray:
    """Recompute CS so mutations reach the message parsers."""
    body = raw.lstrip(b'\xfe')
    if len(body) >= 4 and body[0] == 0x68:
        body[-2] = sum(body[:-2]) & 0xFF
    return body


@st.composite
def mutated(draw):
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(('set', 'insert', 'delete', 'truncate',
            'length')))
        index = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == 'set' and raw:
            raw[index] = draw(st.integers(0, 255))
        elif op == 'insert':
            raw[index:index] = draw(st.binary(min_size=1, max_size=4))
        elif op == 'delete' and raw:
            del raw[index]
        elif op == 'truncate':
            raw = raw[:index]
        elif op == 'length' and len(raw) > 14:
            # L byte of DL/T645 (offset 9) or CJ/T188 (offset 10)
            body_start = len(raw) - len(raw.lstrip(b'\xfe'))
            raw[body_start + draw(st.sampled_from((9, 10)))] = draw(
                st.integers(0, 255))
    if draw(st.booleans()):
        raw = _fix_checksum(raw)
    return bytes(raw)


def _decode_only_codec_error(raw, protocol):
    try:
        result = decode_to_json(raw, protocol)
    except CodecError as exc:
        assert exc.reason and '\n' not in exc.reason
        return None
    assert set(result) == {'protocol', 'address', 'control', 'direction',
        'error', 'di', 'value', 'values'}
    return result


@FUZZ
@given(st.binary(max_size=64), PROTOCOL)
def test_random_bytes(raw, protocol):
    _decode_only_codec_error(raw, protocol)


@FUZZ
@given(st.binary(max_size=40).map(lambda b: b'\x68' + b), PROTOCOL)
def test_random_bytes_after_start(raw, protocol):
    _decode_only_codec_error(raw, protocol)


@FUZZ
@given(mutated(), PROTOCOL)
def test_mutated_frames(raw, protocol):
    _decode_only_codec_error(raw, protocol)


@FUZZ
@given(st.text(max_size=40))
def test_random_text(text):
    _decode_only_codec_error(text, None)


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.one_of(mutated(), st.binary(max_size=20)), max_size=6),
    st.integers(1, 16))
def test_stream_decoder_never_raises(chunks, size):
    stream = b''.join(chunks)
    for decode in (dlt645.decode_stream, cjt188.decode_stream,
            auto.decode_stream):
        decoder = StreamDecoder(decode)
        for i in range(0, len(stream), size):
            for frame in decoder.feed(stream[i:i + size]):
                assert frame.to_bytes(0)[0] == 0x68
        assert len(decoder.buffer) <= len(stream)


ADDRESS = st.text('0123456789', min_size=12, max_size=12)
ENERGY = st.decimals(min_value=0, max_value=Decimal('999999.99'), places=2)


@settings(max_examples=300, deadline=None, database=None)
@given(ADDRESS, ENERGY, st.sampled_from(('00010000', '00020000',
    '00010300', '00900200', '04001005')))
def test_read_reply_round_trip(address, value, di):
    message = dlt645.decode(dlt645.read_response(address, di, value))
    assert (message.address, message.di, message.value) == (address, di,
        value)


@settings(max_examples=300, deadline=None, database=None)
@given(ADDRESS, st.decimals(min_value=Decimal('-799.999'),
    max_value=Decimal('799.999'), places=3))
def test_signed_current_round_trip(address, value):
    message = dlt645.decode(dlt645.read_response(address, '02020100', value))
    assert message.value == value


@settings(max_examples=300, deadline=None, database=None)
@given(st.text('0123456789', min_size=14, max_size=14), ENERGY,
    st.datetimes(min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2099, 12, 31)).map(
        lambda d: d.replace(microsecond=0)),
    st.integers(0, 255), st.sampled_from(('big', 'little')))
def test_cjt188_round_trip(address, flow, when, ser, order):
    message = cjt188.decode(cjt188.read_response(address, flow=flow,
        time=when, ser=ser, di_order=order))
    assert message.value == flow and message.ser == ser
    assert message.di_order == order
    assert message.fields['time'] == when.isoformat()


# --- fast paths agree with the general ones ---------------------------------
#
# dlt645.decode reads well-formed 2007 read frames directly; bytearray input
# (or a vendor) takes the general Frame.from_bytes + parse path. The builders
# read_request / read_response assemble bytes without a Frame. Each must
# give exactly what the general path gives: the same Message (repr shows
# Decimal exponents and value types) or the same CodecError.

def _outcome(call, *args, **kwargs):
    try:
        return 'ok', repr(call(*args, **kwargs))
    except Exception as exc:   # builders given odd values may raise others
        return type(exc).__name__, str(exc)


ADDR = '000102030425'


def _general_decode(raw, version=None):
    return dlt645.decode(bytearray(raw), version)


READ_DIS = ('00010000', '00000000', '00010300', '0001FF00', '02020100',
    '02030000', '02010100', '04000503', '04000401', '0400010C', '00900200',
    '0E0E0E0E')
READ_VALUE = st.one_of(
    st.decimals(min_value=Decimal('-9999999.99'),
        max_value=Decimal('99999999'), places=2),
    st.decimals(min_value=-1000, max_value=1000, places=3),
    st.decimals(min_value=0, max_value=Decimal('1E+9'), places=0),
    st.integers(-10 ** 9, 10 ** 9),
    st.sampled_from((Decimal('NaN'), Decimal('-0'), Decimal('1E+30'),
        Decimal('1.00000000000000000000000001'), True, None, '12.5', 1.5,
        b'\x12\x34\x56\x78', bytearray(b'\x99\x99'))))


@settings(max_examples=600, deadline=None, database=None)
@given(st.one_of(ADDRESS, st.just('AAAAAAAAAAAA'), st.just('12345')),
    st.sampled_from(READ_DIS), READ_VALUE, st.booleans(),
    st.integers(0, 4))
def test_read_response_matches_frame_path(address, di, value, follow_up,
        preamble):
    control = 0x91 | (0x20 if follow_up else 0)

    def general():
        data = dlt645._di_wire(di, '2007')
        if isinstance(value, (bytes, bytearray)):
            data += bytes(value)
        else:
            data += di_registry.encode_value(di, value)
        return Frame(address, control, data).to_bytes(preamble)

    assert _outcome(dlt645.read_response, address, di, value,
        follow_up=follow_up, preamble=preamble) == _outcome(general)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(ADDRESS, st.just('AAAAAAAAAAAA'), st.just('12'),
    st.just('12345678901X'), st.just('1234567890123')),
    st.one_of(st.sampled_from(READ_DIS), st.just('0001000'),
        st.just('9010')), st.sampled_from(('2007', '1997')))
def test_read_request_matches_frame_path(address, di, version):
    def general():
        function = 0x01 if version == '1997' else 0x11
        return Frame(address, function, dlt645._di_wire(di, version)
            ).to_bytes(4)

    for _ in range(2):   # built, then remembered
        assert _outcome(dlt645.read_request, address, di,
            version=version) == _outcome(general)


BCD_PAYLOAD = st.lists(st.sampled_from([b for b in range(256)
    if b >> 4 < 10 and b & 15 < 10] + [0x9A, 0xA0, 0xFF]),
    min_size=1, max_size=8).map(bytes)


@FUZZ
@given(st.one_of(ADDRESS, st.just('AAAAAAAAAAAA')),
    st.sampled_from(READ_DIS), st.one_of(BCD_PAYLOAD, st.binary(max_size=12)),
    st.sampled_from((0x11, 0x91, 0xB1, 0xD1, 0x12)), st.integers(0, 4),
    st.sampled_from((None, '2007', '1997')))
def test_fast_decode_matches_general_path(address, di, payload, control,
        preamble, version):
    raw = Frame(address, control, dlt645._di_wire(di, '2007') + payload
        ).to_bytes(preamble)
    assert _outcome(dlt645.decode, raw, version) == _outcome(
        _general_decode, raw, version)


@FUZZ
@given(mutated(), st.sampled_from((None, '2007', '1997')))
def test_fast_decode_matches_general_path_mutated(raw, version):
    assert _outcome(dlt645.decode, raw, version) == _outcome(
        _general_decode, raw, version)


@pytest.mark.parametrize('di', ('00010000', '00000000', '02020100',
    '02030000', '02010100', '02800002', '03330201'))
def test_fast_decode_every_top_byte(di):
    """The value's most significant byte decides BCD validity and, for
    signed items, the sign: all 256 of them, through both paths."""
    length = di_registry.lookup(di).length
    for low in (b'', b'\x00', b'\x99', b'\x9a', b'\x12\x34\x56')[:length]:
        for top in range(256):
            payload = (low + bytes(length))[:length - 1] + bytes((top,))
            for control in (0x91, 0xB1, 0x11):
                raw = Frame(ADDR, control, dlt645._di_wire(di, '2007')
                    + payload).to_bytes(4)
                assert _outcome(dlt645.decode, raw) == _outcome(
                    _general_decode, raw)
