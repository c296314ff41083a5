# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""安全用电 in the codec: the DIs of the safety map, their formats, round
trips through frames, and vendor profiles naming other DIs."""

from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import (
    CodecError, auto, di as registry, dlt645, vendors)

ADDR = '000000000001'


def test_the_dh_map_uses_standard_dis_where_they_exist():
    safety = vendors.get_vendor(None).safety_map
    assert safety.names == vendors.SAFETY_PARAMS
    assert {name: safety.di(name) for name in safety.names} == {
        'alarm_energy': '04000F01',
        'overdraft_energy': '04000F04',
        'monthly_topup': '04A00101',
        'max_load': '04000E01',
        'malignant_power': '04A00201',
        'power_change_threshold': '04A00202',
        'overload_trips_allowed': '04A00203',
        'malignant_trips_allowed': '04A00204',
        'tod_power_limits': '04A00301',
        }
    assert (safety.load_reset, safety.load_status) == ('04A00402',
        '04A00401')
    assert safety.events.count == '04A10000'
    assert [safety.events.record_di(n) for n in (1, 2, 10)] == [
        '04A10001', '04A10002', '04A1000A']
    with pytest.raises(CodecError, match='beyond'):
        safety.events.record_di(11)
    # the built-in profiles all have it (a profile may name another map)
    assert all(vendors.get_vendor(name).safety_map is safety for name in (
        'standard', 'cjt188-2018', 'password-big-endian', 'state-grid',
        'cjt188-valve-2a'))


@pytest.mark.parametrize('name, fmt, length, unit, decimals', [
    ('alarm_energy', 'XXXXXX.XX', 4, 'kWh', 2),
    ('overdraft_energy', 'XXXXXX.XX', 4, 'kWh', 2),
    ('monthly_topup', 'XXXXXX.XX', 4, 'kWh', 2),
    ('max_load', 'XX.XXXX', 3, 'kW', 4),
    ('malignant_power', 'XX.XXXX', 3, 'kW', 4),
    ('power_change_threshold', 'XX.XXXX', 3, 'kW', 4),
    ('overload_trips_allowed', 'NN', 1, '', 0),
    ('malignant_trips_allowed', 'NN', 1, '', 0),
    ])
def test_formats(name, fmt, length, unit, decimals):
    item = vendors.get_vendor(None).safety_map.item(name)
    assert (item.fmt, item.length, item.unit, item.decimals, item.kind) == (
        fmt, length, unit, decimals, registry.NUMBER)


def test_unknown_and_unmapped_names():
    safety = vendors.get_vendor(None).safety_map
    with pytest.raises(CodecError, match="unknown parameter 'max_lod'"):
        safety.di('max_lod')
    assert safety.name_of('04000E01') == 'max_load'
    assert safety.name_of('00010000') is None


@pytest.mark.parametrize('di, value, wire', [
    ('04000F01', Decimal('20.00'), '00200000'),
    ('04000F04', Decimal('5.50'), '50050000'),
    ('04000E01', Decimal('8.0000'), '000008'),
    ('04A00201', Decimal('2.5000'), '005002'),
    ('04A00202', Decimal('0.3000'), '003000'),
    ('04A00203', 20, '20'),
    ('04A00204', 5, '05'),
    ('04A00101', Decimal('30.00'), '00300000'),
    ('04A00402', 1, '01'),
    ('04A10000', 1234, '341200'),
    ])
def test_number_round_trips_through_a_read_reply(di, value, wire):
    assert registry.encode_value(di, value).hex() == wire
    reply = dlt645.read_response(ADDR, di, value)
    message = dlt645.decode(reply)
    assert message.di == di and message.value == value
    assert type(message.value) is type(value)
    # and the written form parses back on the meter's side
    write = dlt645.write_request(ADDR, di, value, password='123456')
    parsed = dlt645.decode(write)
    assert parsed.value == value and parsed.fields['password'] == '123456'


def test_tod_bands_block():
    item = registry.lookup('04A00301')
    bands = [['00:00', Decimal('2.0000')], ['08:00', Decimal('5.5000')],
        ['22:30', Decimal('1.0000')]]
    raw = item.encode([('0:00', 2), {'start': '08:00', 'power': '5.5'},
        ['22:30', Decimal('1')]])
    # each band: mm hh, then the kW low byte first
    assert raw.hex() == '0000000002' + '0008005005' + '3022000001'
    assert item.decode(raw) == bands
    reply = dlt645.read_response(ADDR, '04A00301', bands)
    assert dlt645.decode(reply).value == bands
    assert item.encode([]) == item.encode(None) == b''
    assert item.decode(b'') == []
    # seven bands fit a write (L <= 50), eight do not
    seven = [[f'{h:02d}:00', '1'] for h in range(7)]
    frame = dlt645.write_request(ADDR, '04A00301', seven)
    assert dlt645.decode(frame).value == [[s, Decimal('1.0000')]
        for s, _ in seven]
    with pytest.raises(CodecError, match='at most 7'):
        item.encode(seven + [['23:00', '1']])


@pytest.mark.parametrize('bands, reason', [
    ([['08:00', '1'], ['07:00', '1']], 'increasing'),
    ([['08:00', '1'], ['08:00', '2']], 'increasing'),
    ([['24:00', '1']], 'HH:MM'),
    ([['8', '1']], 'HH:MM'),
    ([['08:00', '1.23456']], 'decimals'),
    ([['08:00', '100']], 'fit'),
    ([['08:00', '-1']], 'negative'),
    ([['08:00', None]], 'power'),
    ([['08:00']], 'start HH:MM'),
    ('08:00 1', 'list'),
    ({'start': '08:00'}, 'list'),
    ])
def test_bad_bands_are_refused(bands, reason):
    with pytest.raises(CodecError, match=reason):
        registry.lookup('04A00301').encode(bands)


@pytest.mark.parametrize('raw', [
    '00080000',                 # not whole bands
    '0008000001' * 8,           # more than 7
    '0025000001',               # 25:00
    '00080000010007000001',     # out of order
    '000800000A',               # not BCD
    ])
def test_bad_band_bytes_are_codec_errors(raw):
    with pytest.raises(CodecError):
        registry.lookup('04A00301').decode(bytes.fromhex(raw))


def test_load_event_record():
    item = registry.lookup('04A10001')
    event = {'at': '2025-03-03T08:00:05', 'kind': 'malignant',
        'power': Decimal('5.1230'), 'step': Decimal('-2.5000'),
        'lockout': True}
    raw = item.encode(event)
    assert len(raw) == registry.LOAD_EVENT_SIZE == item.length
    # time ss mm hh DD MM YY, kind, power, signed step, lockout
    assert raw.hex() == '050008030325' + '02' + '301205' + '005082' + '01'
    assert item.decode(raw) == event
    reply = dlt645.read_response(ADDR, '04A1000A', event)
    assert dlt645.decode(reply).value == event
    view = auto.decode_to_json(reply)
    assert view['values']['kind'] == 'malignant'
    assert view['values']['at'] == '2025-03-03T08:00:05'
    for kind in ('overload', 'tod', 'step'):
        assert item.decode(item.encode({**event, 'kind': kind}))['kind'] \
            == kind
    with pytest.raises(CodecError, match='kind'):
        item.encode({**event, 'kind': 'fire'})
    with pytest.raises(CodecError, match='kind'):
        item.decode(raw[:6] + b'\x09' + raw[7:])
    with pytest.raises(CodecError, match='lockout'):
        item.decode(raw[:13] + b'\x02')
    with pytest.raises(CodecError):
        item.decode(raw[:13])


def test_load_status():
    item = registry.lookup('04A00401')
    status = {'lockout': True, 'load_trip': True, 'overload_trips': 21,
        'malignant_trips': 3}
    raw = item.encode(status)
    assert raw.hex() == '032103'
    assert item.decode(raw) == status
    assert item.decode(bytes.fromhex('000000')) == {'lockout': False,
        'load_trip': False, 'overload_trips': 0, 'malignant_trips': 0}
    assert item.encode({**status, 'overload_trips': 150})[1] == 0x99
    with pytest.raises(CodecError):
        item.decode(bytes.fromhex('00AA00'))


def test_frame_decode_names_the_items():
    view = auto.decode_to_json(dlt645.read_response(ADDR, '04A00301',
        [['08:00', '3.5']]))
    assert view['values'] == {'tod_power_limits': [['08:00', 3.5]]}
    view = auto.decode_to_json(dlt645.read_response(ADDR, '04000E01',
        Decimal('8.0000')))
    assert view['value'] == 8.0
    view = auto.decode_to_json(dlt645.read_response(ADDR, '04A00401',
        {'lockout': False, 'overload_trips': 2, 'malignant_trips': 0}))
    assert view['values']['overload_trips'] == 2


def test_another_profile_maps_other_dis():
    """A maker's own DIs: registered with their formats, mapped by a
    safety map, named by a profile; the codec follows the profile."""
    registry.register_items(
        registry.Item('04A80001', 'other_max_load', 'XX.XXXX', 3, 'kW', 4))
    other = vendors.register_safety_map(vendors.SafetyMap(
        'test-other', 'max load elsewhere',
        params=(('max_load', '04A80001'),),
        load_reset='04A00402', load_status='04A00401',
        events=vendors.RecordScheme('04A10000', '04A10001', 3)))
    assert other.item('max_load').name == 'other_max_load'
    assert dlt645.decode(dlt645.read_response(ADDR, '04A80001',
        Decimal('7.5'))).value == Decimal('7.5000')
    with pytest.raises(CodecError, match='not in the test-other'):
        other.di('alarm_energy')
    with pytest.raises(CodecError, match='not in the DI registry'):
        vendors.SafetyMap('bad', 'unknown DI',
            params=(('max_load', '04A8FFFF'),), load_reset='04A00402',
            load_status='04A00401',
            events=vendors.RecordScheme('04A10000', '04A10001'))
    with pytest.raises(CodecError, match='unknown safety map'):
        vendors.VendorProfile('bad', 'no such map', safety='nope')
    none = vendors.VendorProfile('no-safety', 'no safety items',
        safety=None)
    assert none.safety_map is None
