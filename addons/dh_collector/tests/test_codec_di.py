"""The DL/T645 data-identifier registry and the BCD helpers."""

from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import CodecError, di as registry
from trytond.modules.dh_collector.codec import bcd


@pytest.mark.parametrize('di, name, length, unit, decimals, signed', [
    ('00000000', 'combined_active_total', 4, 'kWh', 2, True),
    ('00010000', 'forward_active_total', 4, 'kWh', 2, False),
    ('00010400', 'forward_active_t4', 4, 'kWh', 2, False),
    ('00020300', 'reverse_active_t3', 4, 'kWh', 2, False),
    ('00000302', 'combined_active_t3_settlement_2', 4, 'kWh', 2, True),
    ('02010300', 'voltage_c', 2, 'V', 1, False),
    ('02020100', 'current_a', 3, 'A', 3, True),
    ('02030000', 'active_power_total', 3, 'kW', 4, True),
    ('02030100', 'active_power_a', 3, 'kW', 4, True),
    ('02060000', 'power_factor_total', 2, '', 3, True),
    ('02800002', 'frequency', 2, 'Hz', 2, False),
    ('00900200', 'remaining_money', 4, 'yuan', 2, False),
    ('00900201', 'overdraft_money', 4, 'yuan', 2, False),
    ('00900100', 'remaining_energy', 4, 'kWh', 2, False),
    ('03330201', 'purchase_count', 2, '', 0, False),
    ('04001004', 'hoarding_limit', 4, 'yuan', 2, False),
    ('04050103', 'price_t3', 4, 'yuan/kWh', 4, False),
    ])
def test_2007_items(di, name, length, unit, decimals, signed):
    item = registry.lookup(di)
    assert (item.name, item.length, item.unit, item.decimals, item.signed) \
        == (name, length, unit, decimals, signed)


@pytest.mark.parametrize('di, name, length, unit, decimals', [
    ('9010', 'forward_active_total', 4, 'kWh', 2),
    ('9020', 'reverse_active_total', 4, 'kWh', 2),
    ('9012', 'forward_active_t2', 4, 'kWh', 2),
    ('B611', 'voltage_a', 2, 'V', 0),
    ('B613', 'voltage_c', 2, 'V', 0),
    ('B621', 'current_a', 2, 'A', 2),
    ('B630', 'active_power_total', 3, 'kW', 4),
    ('B650', 'power_factor_total', 2, '', 3),
    ])
def test_1997_items(di, name, length, unit, decimals):
    item = registry.lookup(di, '1997')
    assert (item.name, item.length, item.unit, item.decimals) == (
        name, length, unit, decimals)


def test_blocks():
    assert [i.di for i in registry.lookup('0201FF00').items] == [
        '02010100', '02010200', '02010300']
    assert registry.lookup('0203FF00').items[0].di == '02030000'
    energy = registry.lookup('0001FF00')
    assert energy.items[0].di == '00010000' and energy.items[4].di == \
        '00010400'
    assert [i.di for i in registry.lookup('901F', '1997').items] == [
        '9010', '9011', '9012', '9013', '9014']
    assert registry.lookup('040005FF').items[2].kind == registry.STATUS3


@pytest.mark.parametrize('di', ['00010040', '000100FE', '0B010000',
    '02070100', '02010400', 'XYZ', '0001', '0201FF01'])
def test_unknown(di):
    assert registry.lookup(di) is None


def test_unknown_encode_needs_raw():
    with pytest.raises(CodecError, match='registry'):
        registry.encode_value('0E0E0E0E', 1)


def test_item_encode_checks():
    item = registry.lookup('00010000')
    with pytest.raises(CodecError, match='decimals'):
        item.encode('1.234')
    with pytest.raises(CodecError, match='fit'):
        item.encode(1000000)
    with pytest.raises(CodecError, match='negative'):
        item.encode(-1)
    with pytest.raises(CodecError):
        item.encode('abc')
    with pytest.raises(CodecError):
        item.encode(float('nan'))
    assert registry.lookup('00000000').encode(Decimal('-1.00')) == \
        bytes.fromhex('00 01 00 80')


def test_status3_word_builder():
    word = registry.status3_word(relay_open=True, relay_command_trip=True,
        power_hold=False)
    decoded = registry.decode_status3(word)
    assert decoded['relay'] == 'open' and decoded['relay_command'] == 'trip'
    assert decoded['meter_type'] == 'money-prepaid'
    assert decoded['remote_account_opened'] is True


@pytest.mark.parametrize('raw, signed, value', [
    ('42 06 12 00', False, 120642), ('34 12 80', True, -1234),
    ('99 99', False, 9999), ('00', False, 0)])
def test_bcd(raw, signed, value):
    data = bytes.fromhex(raw)
    assert bcd.bcd_to_int(data, signed=signed) == value
    assert bcd.int_to_bcd(value, len(data), signed=signed) == data


@pytest.mark.parametrize('text', ['', '0', '6', 'GG', '0x', '68 2'])
def test_parse_hex_rejects(text):
    with pytest.raises(CodecError):
        bcd.parse_hex(text)


def test_parse_hex_forms():
    assert bcd.parse_hex('68 25:04-03\n00') == bytes.fromhex('6825040300')
    assert bcd.parse_hex('0x6825') == bytes.fromhex('6825')
    assert bcd.to_hex(b'\x68\x0a') == '68 0A'


# --- BCD helpers against their digit-by-digit definitions -------------------

def _bcd_to_int_by_digits(raw, signed=False):
    negative = bool(signed and raw[-1] & 0x80)
    if negative:
        raw = bytes(raw[:-1]) + bytes((raw[-1] & 0x7F,))
    value = 0
    for byte in reversed(raw):
        value = value * 100 + bcd.from_bcd_byte(byte)
    return -value if negative else value


def _outcome(call, *args, **kwargs):
    try:
        return 'ok', repr(call(*args, **kwargs))
    except CodecError as exc:
        return 'error', exc.reason


@pytest.mark.parametrize('signed', (False, True))
def test_bcd_to_int_every_byte(signed):
    for byte in range(256):
        for raw in (bytes((byte,)), bytes((0x12, byte)),
                bytes((byte, 0x9A, 0x34)), bytearray((0x45, byte))):
            assert _outcome(bcd.bcd_to_int, raw, signed=signed) == _outcome(
                _bcd_to_int_by_digits, raw, signed)
            expected = _outcome(_bcd_to_int_by_digits, raw, signed)
            if expected[0] == 'ok':
                number = int(expected[1])
                assert repr(bcd.bcd_to_decimal(raw, 2, signed=signed)) == (
                    repr(Decimal(number).scaleb(-2)))
                assert bcd.bcd_to_decimal(raw, 0, signed=signed) == number


def test_int_to_bcd_by_digits():
    for value in (0, 1, 9, 10, 99, 100, 1234, 799999, 800000, 999999,
            1000000, -1, -799999, -800000):
        for signed in (False, True):
            result = _outcome(bcd.int_to_bcd, value, 3, signed=signed)
            if result[0] == 'ok':
                raw = bcd.int_to_bcd(value, 3, signed=signed)
                assert _bcd_to_int_by_digits(raw, signed) == value
            else:
                assert not signed and value < 0 or abs(value) >= (
                    800000 if signed else 1000000)


def test_wire_to_digits_every_byte():
    for byte in range(256):
        raw = bytes((0x25, byte, 0xAA))
        valid = byte == 0xAA or (byte >> 4 < 10 and byte & 15 < 10)
        if valid:
            assert bcd.wire_to_digits(raw) == f'AA{byte:02X}25'
        else:
            with pytest.raises(CodecError, match=f'0x{byte:02X} is not BCD'):
                bcd.wire_to_digits(raw)


@pytest.mark.parametrize('text, length, wire', [
    ('00010000', 4, b'\x00\x00\x01\x00'),
    (' 0001ff00 ', 4, b'\x00\xff\x01\x00'),
    ('9010', 2, b'\x10\x90'), ('0001000', 4, None), ('000100000', 4, None),
    ('00 01 00', 4, None), ('0001 000', 4, None), ('000g0000', 4, None),
    ('0x000100', 4, None), ('000１0000', 4, None), ('', 4, None)])
def test_hex_to_wire(text, length, wire):
    for _ in range(2):   # computed, then remembered
        if wire is None:
            with pytest.raises(CodecError, match='hex digits'):
                bcd.hex_to_wire(text, length, 'DI')
        else:
            assert bcd.hex_to_wire(text, length, 'DI') == wire
