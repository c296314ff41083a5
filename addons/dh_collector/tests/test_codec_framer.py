"""Streaming framers, pymodbus style: each frame whole, split in two at every
point, byte by byte, with garbage around it, and with a bad checksum."""

import datetime as dt

import pytest

from trytond.modules.dh_collector.codec import (
    StreamDecoder, auto, cjt188, dlt645, parse_hex)

from .test_codec_vectors import GOOD

DLT_FRAMES = [parse_hex(v['hex']) for v in GOOD
    if v['protocol'].startswith('dlt645')] + [
    dlt645.control_request('000102030425', 'trip',
        valid_until=dt.datetime(2025, 1, 2, 3, 4, 5)),
    dlt645.read_response('000102030425', '0001FF00', bytes(20)),
    dlt645.error_response('000102030425', 0x11, 0x02, preamble=2),
    ]
CJT_FRAMES = [parse_hex(v['hex']) for v in GOOD
    if v['protocol'] == 'cjt188'] + [
    cjt188.read_response('78330011223344', flow=12, time=dt.datetime(
        2024, 2, 29, 23, 59, 59), preamble=2),
    ]

CASES = ([(dlt645.decode_stream, dlt645.Frame, f) for f in DLT_FRAMES]
    + [(cjt188.decode_stream, cjt188.Frame, f) for f in CJT_FRAMES]
    + [(auto.decode_stream, dlt645.Frame, f) for f in DLT_FRAMES]
    + [(auto.decode_stream, cjt188.Frame, f) for f in CJT_FRAMES])
IDS = [f'{d.__module__.rsplit(".", 1)[-1]}-{i}' for i, (d, _, _) in
    enumerate(CASES)]

GARBAGE_BEFORE = bytes.fromhex('00 68 12 FE 68 33 16 68 FE FE')
GARBAGE_AFTER = bytes.fromhex('FE 68 00 16')


def _expected(cls, raw):
    return cls.from_bytes(raw)


def _feed(decode, pieces):
    decoder = StreamDecoder(decode)
    frames = []
    for piece in pieces:
        frames += decoder.feed(piece)
    return frames, decoder


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_whole(decode, cls, raw):
    used, frame = decode(raw)
    assert used == len(raw)
    assert frame == _expected(cls, raw)


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_need_more(decode, cls, raw):
    start = raw.index(0x68)
    for cut in range(start + 1, len(raw)):
        assert decode(raw[start:cut]) == (0, None)


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_split_at_every_point(decode, cls, raw):
    expected = _expected(cls, raw)
    for cut in range(1, len(raw)):
        frames, decoder = _feed(decode, [raw[:cut], raw[cut:]])
        assert frames == [expected], cut
        assert not decoder.buffer and not decoder.rejected


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_byte_by_byte(decode, cls, raw):
    frames, decoder = _feed(decode, [raw[i:i + 1] for i in range(len(raw))])
    assert frames == [_expected(cls, raw)]
    assert not decoder.buffer


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_garbage_around(decode, cls, raw):
    stream = GARBAGE_BEFORE + raw + GARBAGE_AFTER
    frames, decoder = _feed(decode, [stream])
    assert frames == [_expected(cls, raw)]
    # the trailing garbage is either dropped or kept as a possible frame start
    assert GARBAGE_AFTER.endswith(bytes(decoder.buffer))
    frames, _ = _feed(decode, [stream[i:i + 1] for i in range(len(stream))])
    assert frames == [_expected(cls, raw)]


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_two_frames_back_to_back(decode, cls, raw):
    frames, _ = _feed(decode, [raw + raw])
    assert frames == [_expected(cls, raw)] * 2


@pytest.mark.parametrize('decode, cls, raw', CASES, ids=IDS)
def test_bad_checksum_rejected(decode, cls, raw):
    bad = bytearray(raw)
    bad[-2] ^= 0x01
    frames, decoder = _feed(decode, [bytes(bad)])
    assert frames == []
    if decode is not auto.decode_stream:
        # single-protocol framers reject at once; on a mixed bus the same
        # bytes may still be the start of the other protocol's frame
        assert decoder.rejected and 'checksum' in decoder.rejected[0]
        # what is kept is the tail from a later 68 (a possible frame start)
        assert bytes(bad).endswith(bytes(decoder.buffer))
        assert len(decoder.buffer) < len(raw.lstrip(b'\xfe'))
    # a good frame after the bad one still comes through
    frames, decoder = _feed(decode, [bytes(bad), raw])
    assert frames == [_expected(cls, raw)]


@pytest.mark.parametrize('decode, cls, raw', CASES[:3], ids=IDS[:3])
def test_bad_end_byte_rejected(decode, cls, raw):
    bad = bytearray(raw)
    bad[-1] = 0x17
    frames, decoder = _feed(decode, [bytes(bad)])
    assert frames == [] and '16' in decoder.rejected[0]


def test_pure_garbage_is_consumed():
    for decode in (dlt645.decode_stream, cjt188.decode_stream,
            auto.decode_stream):
        assert decode(bytes(range(0x00, 0x60))) == (0x60, None)
        assert decode(b'') == (0, None)
        assert decode(b'\xfe\xfe\xfe') == (3, None)


def test_partial_frame_after_garbage_keeps_start():
    raw = dlt645.read_request('000102030425', '00010000')
    used, frame = dlt645.decode_stream(b'\x01\x02' + raw[:10])
    assert frame is None
    assert used == 2 + raw.index(0x68)


def test_mixed_bus():
    water = cjt188.read_request('78330011223344')
    power = dlt645.read_request('000102030425', '00010000')
    frames, _ = _feed(auto.decode_stream, [water + power + water])
    assert [type(f) for f in frames] == [cjt188.Frame, dlt645.Frame,
        cjt188.Frame]


def test_l_above_limit_is_rejected():
    body = bytearray(parse_hex('68 25 04 03 02 01 00 68 91 C9'))
    body += bytes(0xC9) + bytes([0, 0x16])
    rejected = []
    used, frame = dlt645.decode_stream(bytes(body), rejected.append)
    assert frame is None and used == len(body)
    assert 'L=201' in rejected[0]
