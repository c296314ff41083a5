"""DL/T645-2007 and -1997: frames, messages, builders (literal bytes both
ways, dlms-cosem style)."""

import datetime as dt
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import (
    AbnormalReply, CodecError, VendorProfile, decode_to_json, dlt645,
    parse_hex, recharge, to_hex)
from trytond.modules.dh_collector.codec.dlt645 import Frame

ADDR = '000102030425'
WHEN = dt.datetime(2025, 1, 2, 3, 4, 5)


def h(text):
    return parse_hex(text)


# --- frame layer -------------------------------------------------------------

def test_address_nameplate_to_wire():
    raw = Frame(ADDR, 0x11, bytes.fromhex('00000100')).to_bytes(0)
    assert raw[1:7] == bytes.fromhex('250403020100')
    assert Frame.from_bytes(raw).address == ADDR


def test_short_address_is_zero_padded():
    assert Frame('161', 0x13).address == '000000000161'


@pytest.mark.parametrize('address', ['0001020304AB', '1234567890123',
    'abc', '12345678901X'])
def test_bad_address(address):
    with pytest.raises(CodecError):
        Frame(address, 0x11)


def test_wildcard_and_broadcast():
    assert Frame('AAAAAAAAAAAA', 0x13).to_bytes(0)[1:7] == b'\xaa' * 6
    assert Frame(dlt645.BROADCAST, 0x08).is_broadcast


def test_control_fields():
    frame = Frame(ADDR, 0xB1)
    assert frame.is_response and frame.has_follow_up
    assert not frame.is_abnormal and frame.function == 0x11
    frame = Frame(ADDR, 0xD1, b'\x02')
    assert frame.is_abnormal and frame.direction == 'response'
    assert Frame(ADDR, 0x11).direction == 'request'


def test_data_offset_and_checksum():
    raw = Frame(ADDR, 0x11, bytes.fromhex('00000100')).to_bytes(4)
    assert to_hex(raw) == ('FE FE FE FE 68 25 04 03 02 01 00 68 11 04 '
        '33 33 34 33 E1 16')


def test_preamble_optional_and_counted_out_of_checksum():
    for n in range(5):
        raw = dlt645.read_request(ADDR, '00010000', preamble=n)
        assert raw[:n] == b'\xfe' * n
        assert Frame.from_bytes(raw) == Frame.from_bytes(raw[n:])


@pytest.mark.parametrize('raw, reason', [
    ('68 25 04 03 02 01 00 68 11 04 33 33 34 33 E2 16', 'checksum'),
    ('68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 17', 'end'),
    ('68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1', 'truncated'),
    ('68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16 00', 'after'),
    ('FE FE', 'no frame'),
    ('00 68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16', 'start with 68'),
    ('68 25 04 03 02 01 00 69 11 04 33 33 34 33 E1 16', 'not a DL/T645'),
    ('68 2F 04 03 02 01 00 68 11 04 33 33 34 33 EB 16', 'not BCD'),
    ])
def test_malformed_frames(raw, reason):
    with pytest.raises(CodecError) as info:
        Frame.from_bytes(h(raw))
    assert reason in str(info.value)


def test_length_limit():
    with pytest.raises(CodecError):
        Frame(ADDR, 0x91, bytes(201))
    body = bytearray(h('68 25 04 03 02 01 00 68 91')) + bytes([201]) \
        + bytes(201)
    body += bytes([sum(body) & 0xFF, 0x16])
    with pytest.raises(CodecError, match='L=201'):
        Frame.from_bytes(bytes(body))
    with pytest.raises(CodecError, match='exceeds'):
        dlt645.write_request(ADDR, '04000402', bytes(40))


# --- version detection ---------------------------------------------------------

@pytest.mark.parametrize('control, data, version', [
    (0x11, b'\0' * 4, '2007'), (0x91, b'\0' * 8, '2007'),
    (0x01, b'\0' * 2, '1997'), (0x81, b'\0' * 4, '1997'),
    (0xC1, b'\x02', '1997'), (0x04, b'\0' * 8, '1997'),
    (0x08, b'\0' * 6, '2007'), (0x03, b'', '1997'), (0x03, b'\0' * 8, '2007'),
    (0x1C, b'\0' * 16, '2007'), (0x0A, b'\0' * 6, '1997'),
    ])
def test_detect_version(control, data, version):
    assert dlt645.detect_version(Frame(ADDR, control, data)) == version


# --- reads ------------------------------------------------------------------

def test_read_request_2007_and_1997():
    assert to_hex(dlt645.read_request('000000000161', '00020000',
            preamble=0)) == '68 61 01 00 00 00 00 68 11 04 33 33 35 33 15 16'
    assert to_hex(dlt645.read_request('000000000003', 'B611', version='1997',
            preamble=0)) == '68 03 00 00 00 00 00 68 01 02 44 E9 03 16'


def test_di_order_pitfall():
    # vectors #15/16: DI bytes 02 03 00 00 on the wire are DI 00000302
    message = dlt645.decode(h('68 94 35 21 90 88 55 68 11 04 35 36 33 33 0D 16'))
    assert message.di == '00000302'
    assert dlt645.read_request('558890213594', '00000302', preamble=0) == \
        h('68 94 35 21 90 88 55 68 11 04 35 36 33 33 0D 16')


@pytest.mark.parametrize('di, value, data', [
    ('00010000', Decimal('1206.42'), '42 06 12 00'),
    ('02020100', Decimal('-1.234'), '34 12 80'),
    ('02010100', Decimal('220.1'), '01 22'),
    ('02030000', Decimal('-0.5'), '00 50 80'),
    ('02060000', Decimal('0.987'), '87 09'),
    ('02800002', Decimal('50.01'), '01 50'),
    ('00900200', Decimal('12.34'), '34 12 00 00'),
    ('03330201', 7, '07 00'),
    ('04050101', Decimal('0.5283'), '83 52 00 00'),
    ('04001003', Decimal('50.00'), '00 50 00 00'),
    ('04000401', '000102030425', '25 04 03 02 01 00'),
    ])
def test_read_reply_round_trip(di, value, data):
    raw = dlt645.read_response(ADDR, di, value)
    message = dlt645.decode(raw)
    assert message.command == 'read' and message.is_response
    assert message.di == di
    assert message.payload == h(data)
    assert message.value == value
    assert dlt645.read_response(ADDR, di, h(data)) == raw


def test_read_reply_wrong_length():
    raw = dlt645.read_response(ADDR, '00010000', h('42 06 12'))
    with pytest.raises(CodecError, match='needs 4 data bytes'):
        dlt645.decode(raw)


def test_read_reply_non_bcd():
    raw = dlt645.read_response(ADDR, '00010000', h('4A 06 12 00'))
    with pytest.raises(CodecError, match='not BCD'):
        dlt645.decode(raw)


def test_unknown_di_keeps_raw():
    raw = dlt645.read_response(ADDR, '0E0E0E0E', h('01 02'))
    result = decode_to_json(raw)
    assert result['value'] is None
    assert result['values'] == {'data': '0102'}


def test_energy_family_and_blocks():
    values = {'00010000': Decimal('10.00'), '00010100': Decimal('1.00'),
        '00010200': Decimal('2.00'), '00010300': Decimal('3.00'),
        '00010400': Decimal('4.00')}
    message = dlt645.decode(dlt645.read_response(ADDR, '0001FF00', values))
    assert message.value == values
    # settlement period 12, tariff 3
    message = dlt645.decode(dlt645.read_response(ADDR, '0000030C',
        Decimal('-5.25')))
    assert message.value == Decimal('-5.25')
    # partial item in a block
    with pytest.raises(CodecError, match='ends inside'):
        dlt645.decode(dlt645.read_response(ADDR, '0001FF00', bytes(6)))


def test_instant_blocks():
    message = dlt645.decode(dlt645.read_response(ADDR, '0203FF00', {
        '02030000': Decimal('1.5'), '02030100': Decimal('0.5'),
        '02030200': Decimal('0.5'), '02030300': Decimal('0.5')}))
    assert message.value['02030000'] == Decimal('1.5')
    message = dlt645.decode(dlt645.read_response(ADDR, '0202FF00',
        {'02020100': Decimal('5.5')}))
    assert message.value == {'02020100': Decimal('5.5')}


def test_date_time_items():
    message = dlt645.decode(dlt645.read_response(ADDR, '04000101',
        dt.date(2025, 1, 2)))
    assert message.payload == h('04 02 01 25')
    assert message.value == {'date': '2025-01-02', 'weekday': 4}
    message = dlt645.decode(dlt645.read_response(ADDR, '04000102',
        dt.time(13, 4, 5)))
    assert message.payload == h('05 04 13')
    assert message.value == '13:04:05'
    with pytest.raises(CodecError, match='invalid date'):
        dlt645.decode(dlt645.read_response(ADDR, '04000101',
            h('01 32 01 25')))


def test_status_word_3():
    word = dlt645.decode(dlt645.read_response(ADDR, '04000503',
        h('D0 12'))).value
    assert word['relay'] == 'open'
    assert word['relay_command'] == 'trip'
    assert word['pre_trip_alarm'] is True
    assert word['power_hold'] is True
    assert word['meter_type'] == 'money-prepaid'
    assert word['word'] == '12D0'
    closed = dlt645.decode(dlt645.read_response(ADDR, '04000503',
        h('00 00'))).value
    assert closed['relay'] == 'closed' and closed['relay_command'] == 'close'


def test_read_address():
    assert to_hex(dlt645.read_address_request(preamble=3)) == \
        'FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16'
    reply = dlt645.decode(dlt645.read_address_response('002241020208'))
    assert reply.value == '002241020208'
    assert dlt645.read_address_response('002241020208') == h(
        '68 08 02 02 41 22 00 68 93 06 3B 35 35 74 55 33 79 16')


def test_write_address():
    raw = dlt645.write_address_request('000000000161')
    message = dlt645.decode(raw)
    assert message.address == 'AAAAAAAAAAAA'
    assert message.fields == {'new_address': '000000000161'}
    with pytest.raises(CodecError):
        dlt645.write_address_request('AAAAAAAAAAAA')


# --- follow-up ----------------------------------------------------------------

def test_multi_frame_read():
    di = '0001FF00'
    first = dlt645.decode(dlt645.read_response(ADDR, di, h('00 10 00 00'),
        follow_up=True))
    assert first.control == 0xB1 and first.value is None
    request = dlt645.decode(dlt645.read_next_request(ADDR, di, 1))
    assert request.command == 'read-next' and request.seq == 1
    assert request.frame.data[-1] == 1
    second = dlt645.decode(dlt645.read_next_response(ADDR, di,
        h('00 01 00 00'), 1, follow_up=True))
    third = dlt645.decode(dlt645.read_next_response(ADDR, di,
        h('00 02 00 00'), 2))
    assert second.control == 0xB2 and third.control == 0x92
    assert (second.seq, third.seq) == (1, 2)
    payload = dlt645.assemble([first, second, third])
    assert payload == h('00 10 00 00 00 01 00 00 00 02 00 00')
    from trytond.modules.dh_collector.codec import di as registry
    assert registry.decode_value(di, payload)['00010100'] == Decimal('1.00')
    with pytest.raises(CodecError, match='sequence'):
        dlt645.assemble([first, third])
    with pytest.raises(CodecError, match='announced'):
        dlt645.assemble([first, second])
    assert decode_to_json(dlt645.read_next_response(ADDR, di, b'\1', 3)
        )['values'] == {'seq': 3, 'data': '01'}


# --- write, control, time, freeze -----------------------------------------------

def test_write_with_password_and_operator():
    raw = dlt645.write_request(ADDR, '04001001', Decimal('10.50'),
        password='123456', level=0x02, operator='12345678', preamble=0)
    frame = Frame.from_bytes(raw)
    assert frame.data == h('01 10 00 04 02 56 34 12 78 56 34 12 50 10 00 00')
    message = dlt645.parse(frame)
    assert message.command == 'write'
    assert message.fields == {'level': '02', 'password': '123456',
        'operator': '12345678'}
    assert message.value == Decimal('10.50')


def test_password_byte_order_is_a_vendor_setting():
    profile = VendorProfile('test-big', 'test', password_order='big')
    raw = dlt645.write_request(ADDR, '04001001', Decimal('1'),
        password='123456', vendor=profile, preamble=0)
    assert Frame.from_bytes(raw).data[5:8] == h('12 34 56')
    assert dlt645.decode(raw, vendor=profile).fields['password'] == '123456'
    assert dlt645.decode(raw).fields['password'] == '563412'


def test_write_ack_and_errors():
    ack = dlt645.decode(dlt645.ack_response(ADDR, dlt645.WRITE))
    assert ack.control == 0x94 and ack.error is None
    refused = dlt645.decode(dlt645.error_response(ADDR, dlt645.WRITE, 0x04))
    assert refused.control == 0xD4
    assert refused.error == 'wrong password or not authorised'
    with pytest.raises(AbnormalReply) as info:
        refused.raise_for_error()
    assert info.value.code == 0x04
    assert isinstance(info.value, CodecError)


def test_error_word_bits():
    message = dlt645.decode(dlt645.error_response(ADDR, dlt645.READ, 0x83))
    assert message.error_reasons == ('other error', 'no requested data',
        'reserved bits 0x80')
    assert decode_to_json(dlt645.error_response(ADDR, dlt645.READ, 0x02)
        )['error'] == 'no requested data'
    serr = dlt645.decode(dlt645.error_response(ADDR, dlt645.SECURITY, 0x0002))
    assert serr.error == 'duplicate recharge'
    with pytest.raises(CodecError, match='without an error byte'):
        dlt645.decode(Frame(ADDR, 0xD1).to_bytes())


@pytest.mark.parametrize('action, code', sorted(
    dlt645.CONTROL_ACTIONS.items()))
def test_remote_control(action, code):
    raw = dlt645.control_request(ADDR, action, valid_until=WHEN,
        password='000000', preamble=0)
    frame = Frame.from_bytes(raw)
    assert frame.control == 0x1C and len(frame.data) == 16
    assert frame.data[:8] == h('02 00 00 00 00 00 00 00')
    assert frame.data[8:] == bytes([code, 0]) + h('05 04 03 02 01 25')
    message = dlt645.parse(frame)
    assert message.value == action
    assert message.fields['valid_until'] == '2025-01-02T03:04:05'
    assert dlt645.decode(dlt645.ack_response(ADDR, dlt645.CONTROL)
        ).control == 0x9C


def test_remote_control_rejects():
    with pytest.raises(CodecError, match='unknown action'):
        dlt645.control_request(ADDR, 'explode', valid_until=WHEN)
    with pytest.raises(CodecError, match='ESAM'):
        dlt645.control_request(ADDR, 'trip', valid_until=WHEN, level=0x98)
    data = h('02 00 00 00 00 00 00 00 77 00 05 04 03 02 01 25')
    with pytest.raises(CodecError, match='N1=77'):
        dlt645.decode(Frame(ADDR, 0x1C, data).to_bytes())
    cipher = dlt645.decode(Frame(ADDR, 0x1C, h('98 00 00 00 00 00 00 00')
        + bytes(16)).to_bytes())
    assert cipher.fields['encrypted'] is True


def test_time_sync():
    raw = dlt645.time_sync_request(WHEN, preamble=0)
    assert raw == h('68 99 99 99 99 99 99 68 08 06 38 37 36 35 34 58 DA 16')
    assert dlt645.decode(raw).value == '2025-01-02T03:04:05'


def test_freeze():
    message = dlt645.decode(dlt645.freeze_request(hour=0, minute=0))
    assert message.frame.data == h('00 00 99 99')
    assert message.fields == {'minute': 0, 'hour': 0, 'day': None,
        'month': None}
    with pytest.raises(CodecError):
        dlt645.freeze_request(hour=24)


# --- 1997 ---------------------------------------------------------------------

def test_1997_read_reply_and_error():
    raw = dlt645.read_response(ADDR, '9010', Decimal('12.34'), version='1997')
    message = dlt645.decode(raw)
    assert (message.version, message.control, message.di) == ('1997', 0x81,
        '9010')
    assert message.value == Decimal('12.34')
    error = dlt645.decode(dlt645.error_response(ADDR, dlt645.READ_97, 0x02,
        version='1997'))
    assert error.control == 0xC1 and error.error == 'wrong data identifier'
    assert decode_to_json(raw)['protocol'] == 'dlt645-1997'


def test_1997_write():
    raw = dlt645.write_request(ADDR, 'C032', '000000001234',
        version='1997', password='123456', level=0x02, preamble=0)
    frame = Frame.from_bytes(raw)
    assert frame.control == 0x04
    assert frame.data[:6] == h('32 C0 02 56 34 12')
    message = dlt645.parse(frame)
    assert message.value == '000000001234'
    assert 'operator' not in message.fields


def test_1997_blocks():
    message = dlt645.decode(dlt645.read_response(ADDR, 'B61F',
        {'B611': 220, 'B612': 221, 'B613': 219}, version='1997'))
    assert message.value == {'B611': 220, 'B612': 221, 'B613': 219}


def test_forced_version():
    raw = dlt645.read_request(ADDR, '9010', version='1997')
    assert decode_to_json(raw, 'dlt645-2007')['di'] is None
    with pytest.raises(CodecError, match='4-byte DI'):
        decode_to_json(Frame(ADDR, 0x11, h('10 90')).to_bytes())


# --- reply checking -------------------------------------------------------------

def test_check_reply():
    request = dlt645.decode(dlt645.read_request(ADDR, '00010000'))
    reply = dlt645.decode(dlt645.read_response(ADDR, '00010000', 1))
    assert dlt645.check_reply(request, reply) is reply
    other = dlt645.decode(dlt645.read_response('000102030426', '00010000', 1))
    with pytest.raises(CodecError, match='reply from'):
        dlt645.check_reply(request, other)
    wrong_di = dlt645.decode(dlt645.read_response(ADDR, '00020000', 1))
    with pytest.raises(CodecError, match='DI'):
        dlt645.check_reply(request, wrong_di)
    refused = dlt645.decode(dlt645.error_response(ADDR, dlt645.READ, 2))
    with pytest.raises(AbnormalReply):
        dlt645.check_reply(request, refused)
    wildcard = dlt645.decode(dlt645.read_request('AAAAAAAAAAAA', '00010000'))
    assert dlt645.check_reply(wildcard, other)


# --- recharge -------------------------------------------------------------------

def test_purchase_frame_round_trip():
    raw = recharge.purchase_request(ADDR, '100.50', 8, preamble=0)
    frame = Frame.from_bytes(raw)
    assert frame.control == 0x14
    # DI 04900000, PA P0-P2, C0-C3, count NNNNNNNN, amount XXXXXX.XX
    assert frame.data == h('00 00 90 04 02 00 00 00 00 00 00 00'
        ' 08 00 00 00 50 00 01 00')
    purchase = recharge.parse_purchase(raw)
    assert purchase == recharge.Purchase(ADDR, Decimal('100.50'), 8)


@pytest.mark.parametrize('amount, count', [('0', 1), ('-1', 1), ('1.005', 1),
    ('1', 0), ('1', 10000), ('abc', 1), ('1000000', 1)])
def test_purchase_rejects(amount, count):
    with pytest.raises(CodecError):
        recharge.purchase_request(ADDR, amount, count)


def test_purchase_count_semantics():
    assert recharge.classify(4, 5) == recharge.APPLY
    assert recharge.classify(5, 5) == recharge.DUPLICATE
    assert recharge.classify(5, 7) == recharge.INVALID
    assert recharge.classify(5, 4) == recharge.INVALID


def test_recharge_dialects():
    with pytest.raises(CodecError, match='key service'):
        recharge.purchase_request(ADDR, '10', 1, vendor='state-grid')
    raw = recharge.security_request(ADDR, False)
    assert dlt645.decode(raw).value == 0x0004
    assert dlt645.decode(recharge.count_request(ADDR)).di == '03330201'
    with pytest.raises(CodecError, match='not a plain-write'):
        recharge.parse_purchase(dlt645.read_request(ADDR, '04900000'))
