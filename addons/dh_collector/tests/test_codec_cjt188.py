"""CJ/T188 frames, DI byte order, 901F records, valve control, vendors."""

import datetime as dt
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import (
    AbnormalReply, CodecError, VendorProfile, cjt188, decode_to_json,
    get_vendor, parse_hex, register_vendor, to_hex, vendors)
from trytond.modules.dh_collector.codec.cjt188 import Frame

ADDR = '78330011223344'
WHEN = dt.datetime(2015, 5, 11, 22, 1, 31)


def h(text):
    return parse_hex(text)


def test_frame_layout():
    raw = Frame(0x10, ADDR, 0x01, h('90 1F 00')).to_bytes(0)
    assert raw[:2] == h('68 10')
    assert raw[2:9] == h('44 33 22 11 00 33 78')
    assert raw[9:11] == h('01 03')
    assert Frame.from_bytes(raw).address == ADDR


@pytest.mark.parametrize('meter_type', [0x10, 0x11, 0x12, 0x13, 0x20, 0x21,
    0x22, 0x30, 0x40, 0xAA])
def test_meter_types(meter_type):
    raw = cjt188.read_request(ADDR, meter_type=meter_type)
    message = cjt188.decode(raw)
    assert message.meter_type == meter_type
    name = decode_to_json(raw)['values']['meter_type_name']
    assert name == (cjt188.METER_TYPES.get(meter_type) or 'broadcast')


@pytest.mark.parametrize('meter_type', [0x00, 0x0F, 0x1A, 0x50, 0xFF, 0x68])
def test_unknown_meter_type(meter_type):
    with pytest.raises(CodecError):
        Frame(meter_type, ADDR, 0x01)


@pytest.mark.parametrize('order, wire', [('big', '90 1F'),
    ('little', '1F 90')])
def test_di_order_on_send_and_receive(order, wire):
    raw = cjt188.read_request(ADDR, di_order=order, preamble=0)
    assert raw[11:13] == h(wire)
    message = cjt188.decode(raw)
    assert (message.di, message.di_order) == ('901F', order)


def test_di_order_from_vendor_profile():
    raw = cjt188.read_request(ADDR, vendor='cjt188-2018', preamble=0)
    assert raw[11:13] == h('1F 90')
    raw = cjt188.read_request(ADDR, preamble=0)
    assert raw[11:13] == h('90 1F')


def test_unknown_di_defaults_to_high_byte_first():
    message = cjt188.decode(cjt188.request(ADDR, 0x01, '1234', b'\x01'))
    assert message.di == '1234'
    assert message.fields == {'data': '01'}


def test_read_reply_round_trip():
    raw = cjt188.read_response(ADDR, flow=Decimal('556677.00'),
        settlement_flow='12.5', time=WHEN, valve='closed', battery_low=True,
        ser=7, di_order='little')
    message = cjt188.decode(raw)
    assert message.control == 0x81 and message.ser == 7
    assert message.value == Decimal('556677.00')
    fields = message.fields
    assert fields['settlement_flow'] == Decimal('12.50')
    assert fields['time'] == '2015-05-11T22:01:31'
    assert fields['status']['valve'] == 'closed'
    assert fields['status']['battery_low'] is True
    assert fields['flow_unit'] == fields['settlement_flow_unit'] == 'm3'


def test_read_reply_litres_and_bad_length():
    raw = cjt188.read_response(ADDR, flow=1, unit='L', time=WHEN)
    assert cjt188.decode(raw).fields['flow_unit'] == 'L'
    frame = Frame.from_bytes(raw)
    short = Frame(0x10, ADDR, 0x81, frame.data[:-1]).to_bytes()
    with pytest.raises(CodecError, match='19 bytes'):
        cjt188.decode(short)
    with pytest.raises(CodecError, match='unknown CJ/T188 unit'):
        cjt188.read_response(ADDR, flow=1, unit='gallon', time=WHEN)


def test_heat_meter_record():
    payload = bytearray()
    payload += h('00 10 00 00 05')        # settlement heat 10.00 kWh
    payload += h('00 20 00 00 05')        # heat 20.00 kWh
    payload += h('50 01 00 00 17')        # power 1.50 kW
    payload += h('00 25 01 00 35')        # flow rate 1.2500 m3/h
    payload += h('00 30 00 00 2C')        # flow 30.00 m3
    payload += h('50 60 00')              # supply 60.50 C
    payload += h('25 45 00')              # return 45.25 C
    payload += h('00 12 00')              # 1200 h
    payload += h('31 01 22 11 05 15 20')  # time
    payload += h('00 00')
    raw = Frame(0x20, ADDR, 0x81, h('90 1F 00') + payload).to_bytes()
    message = cjt188.decode(raw)
    assert message.value == Decimal('30.00')
    fields = message.fields
    assert fields['heat'] == Decimal('20.00') and fields['heat_unit'] == 'kWh'
    assert fields['flow_rate'] == Decimal('1.25')
    assert fields['supply_temperature'] == Decimal('60.50')
    assert fields['return_temperature'] == Decimal('45.25')
    assert fields['working_hours'] == 1200


def test_read_address():
    raw = cjt188.read_address_request(preamble=4)
    assert to_hex(raw) == ('FE FE FE FE 68 AA AA AA AA AA AA AA AA 03 03 '
        '81 0A 00 49 16')
    reply = cjt188.read_address_response('00002020120218', preamble=4)
    assert to_hex(reply) == ('FE FE FE FE 68 10 18 02 12 20 20 00 00 83 03 '
        '81 0A 00 F5 16')
    assert cjt188.decode(reply).value == '00002020120218'


@pytest.mark.parametrize('open_valve, byte, cs', [(True, '55', '50'),
    (False, '99', '94')])
def test_valve_request_matches_vectors(open_valve, byte, cs):
    raw = cjt188.valve_request('78331505900569', open_valve, ser=1)
    assert to_hex(raw) == ('FE FE FE FE 68 10 69 05 90 05 15 33 78 04 04 '
        f'A0 17 01 {byte} {cs} 16')
    message = cjt188.decode(raw)
    assert message.value == ('open' if open_valve else 'close')


def test_vendor_valve_control_code():
    raw = cjt188.valve_request('00000805000001', True, vendor='cjt188-valve-2a',
        preamble=3)
    assert to_hex(raw) == ('FE FE FE 68 10 01 00 00 05 08 00 00 2A 04 A0 17 '
        '00 55 C0 16')
    assert cjt188.decode(raw).command == 'vendor-2A'


def test_valve_reply_and_bad_command():
    reply = cjt188.decode(cjt188.valve_response(ADDR, valve='open', ser=3))
    assert reply.control == 0x84
    assert reply.fields['status'] == {'st': '0000', 'valve': 'open',
        'battery_low': False}
    bad = cjt188.request(ADDR, 0x04, 'A017', b'\x12')
    with pytest.raises(CodecError, match='unknown valve command'):
        cjt188.decode(bad)


def test_abnormal_reply():
    raw = cjt188.error_response(ADDR, 0x04, st=h('03 00'), ser=9)
    message = cjt188.decode(raw)
    assert message.control == 0xC4 and message.ser == 9
    assert 'valve abnormal' in message.error
    with pytest.raises(AbnormalReply):
        message.raise_for_error()
    result = decode_to_json(raw)
    assert result['error'].startswith('abnormal reply')
    with pytest.raises(CodecError, match='SER and ST'):
        cjt188.decode(Frame(0x10, ADDR, 0xC1, b'\x00').to_bytes())


def test_check_reply_and_ser():
    request = cjt188.decode(cjt188.read_request(ADDR, ser=255))
    assert cjt188.next_ser(255) == 0
    reply = cjt188.decode(cjt188.read_response(ADDR, flow=1, time=WHEN,
        ser=255, di_order='little'))
    assert cjt188.check_reply(request, reply) is reply
    stale = cjt188.decode(cjt188.read_response(ADDR, flow=1, time=WHEN,
        ser=254))
    with pytest.raises(CodecError, match='SER'):
        cjt188.check_reply(request, stale)


def test_write_address():
    raw = cjt188.write_address_request(ADDR, '00000000000099')
    assert cjt188.decode(raw).fields == {'new_address': '00000000000099'}


@pytest.mark.parametrize('raw, reason', [
    ('68 10 18 02 12 20 20 00 00 01 03 90 1F 00 98 16', 'checksum'),
    ('68 10 18 02 12 20 20 00 00 01 03 90 1F 00 97 15', 'end'),
    ('68 10 18 02 12 20 20 00 00 01 03 90 1F 00 97', 'truncated'),
    ('68 10 18 02 12 20 20 00 00 01 01 90 76 16', 'DI'),
    ('68 10 1F 02 12 20 20 00 00 01 03 90 1F 00 9E 16', 'not BCD'),
    ])
def test_malformed(raw, reason):
    with pytest.raises(CodecError) as info:
        cjt188.decode(h(raw))
    assert reason in str(info.value)


def test_vendor_registry():
    assert get_vendor() is vendors.STANDARD
    assert get_vendor('cjt188-2018').cjt188_di_order == 'little'
    profile = register_vendor(VendorProfile('test-vendor', 'x',
        cjt188_di_order='little', preamble=2))
    try:
        raw = cjt188.read_request(ADDR, vendor='test-vendor')
        assert raw[:3] == h('FE FE 68') and raw[13:15] == h('1F 90')
        assert get_vendor(profile) is profile
    finally:
        del vendors.VENDORS['test-vendor']
    with pytest.raises(CodecError):
        get_vendor('nobody')
    with pytest.raises(CodecError):
        VendorProfile('x', 'x', password_order='middle')
    with pytest.raises(Exception):
        vendors.STANDARD.preamble = 2
