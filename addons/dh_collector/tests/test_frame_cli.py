"""``dh frame decode|encode`` through ``frame_cli.main`` (no subprocess)."""

import json

import pytest

from trytond.modules.dh_collector.codec import decode_to_json, parse_hex
from trytond.modules.dh_collector.frame_cli import main

from .test_codec_vectors import GOOD, REJECT


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_decode_vector(capsys):
    code, out, err = run(capsys, 'decode',
        '68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8B 16')
    assert code == 0 and err == ''
    assert out.count('\n') == 1
    assert json.loads(out) == {'protocol': 'dlt645-2007',
        'address': '000102030425', 'control': 145, 'direction': 'response',
        'error': None, 'di': '00010000', 'value': 1206.42, 'values': None}


@pytest.mark.parametrize('entry', GOOD, ids=lambda v: f"#{v['id']}")
def test_decode_every_vector(capsys, entry):
    code, out, _ = run(capsys, 'decode', entry['hex'])
    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(
        decode_to_json(entry['hex'])))


def test_decode_unquoted_pieces(capsys):
    code, out, _ = run(capsys, 'decode', *'68 AA AA AA AA AA AA 68 13 00 DF 16'
        .split())
    assert code == 0 and json.loads(out)['control'] == 0x13


def test_decode_forced_protocol(capsys):
    code, out, _ = run(capsys, 'decode', '--protocol', 'dlt645-1997',
        '68 03 00 00 00 00 00 68 01 02 44 E9 03 16')
    assert code == 0 and json.loads(out)['di'] == 'B611'
    code, out, err = run(capsys, 'decode', '--protocol', 'cjt188',
        '68 03 00 00 00 00 00 68 01 02 44 E9 03 16')
    assert code == 2 and out == '' and err.count('\n') == 1


@pytest.mark.parametrize('argv', [
    ['decode', 'zz'],
    ['decode', '68 25'],
    ['decode', '6'],
    ['decode', ''],
    ['decode', '00 11 22 33'],
    ['decode', REJECT[0]['hex']] if REJECT else ['decode', 'x'],
    ['decode', '--protocol', 'modbus', '68'],
    ['decode'],
    [],
    ['encode'],
    ['encode', 'read', '--address', '12', '--di', '0001'],
    ['encode', 'read', '--address', 'abc', '--di', '00010000'],
    ['encode', 'control', '--address', '1', '--action', 'explode'],
    ['encode', 'control', '--address', '1', '--action', 'trip',
        '--valid-until', '991332000000'],
    ['encode', 'control', '--address', '1', '--action', 'trip',
        '--level', 'zz'],
    ['encode', 'valve', '--address', '1'],
    ['encode', 'valve', '--address', '1', '--open', '--close'],
    ['encode', 'cjt188-read', '--address', '1', '--type', '99'],
    ['encode', 'write', '--address', '1', '--di', '04001001', '--value',
        '1.234'],
    ['encode', 'recharge', '--address', '1', '--amount', '-5', '--count',
        '1'],
    ['encode', 'time-sync', '--time', 'yesterday'],
    ['frobnicate'],
    ])
def test_bad_input_exit_2_one_line(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ''
    assert err.count('\n') == 1 and err.strip()
    assert 'Traceback' not in err


def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, '--help')
    assert code == 0 and 'decode' in out


@pytest.mark.parametrize('argv, expected', [
    (['read', '--address', '000102030425', '--di', '00010000'],
        'FE FE FE FE 68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16'),
    (['read', '--address', '000003430163', '--di', '9010', '--version',
        '1997'], 'FE FE FE FE 68 63 01 43 03 00 00 68 01 02 43 C3 83 16'),
    (['read', '--address', '000102030425', '--di', '00010000',
        '--preamble', '0'],
        '68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16'),
    (['read-address'],
        'FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16'),
    (['control', '--address', '000102030425', '--action', 'trip',
        '--valid-until', '250102030405'],
        'FE FE FE FE 68 25 04 03 02 01 00 68 1C 10 35 33 33 33 33 33 33 33 '
        '4D 33 38 37 36 35 34 58 AB 16'),
    (['time-sync', '--time', '2025-01-02T03:04:05'],
        'FE FE FE FE 68 99 99 99 99 99 99 68 08 06 38 37 36 35 34 58 DA 16'),
    (['cjt188-read', '--address', '00002020120218'],
        'FE FE FE FE 68 10 18 02 12 20 20 00 00 01 03 90 1F 00 97 16'),
    (['cjt188-read', '--address', '78330011223344', '--vendor',
        'cjt188-2018'],
        'FE FE FE FE 68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16'),
    (['valve', '--address', '78331505900569', '--open', '--ser', '1'],
        'FE FE FE FE 68 10 69 05 90 05 15 33 78 04 04 A0 17 01 55 50 16'),
    (['valve', '--address', '78331505900569', '--close', '--ser', '1'],
        'FE FE FE FE 68 10 69 05 90 05 15 33 78 04 04 A0 17 01 99 94 16'),
    (['cjt188-read-address'],
        'FE FE FE FE 68 AA AA AA AA AA AA AA AA 03 03 81 0A 00 49 16'),
    ])
def test_encode(capsys, argv, expected):
    code, out, err = run(capsys, 'encode', *argv)
    assert (code, err) == (0, '')
    assert out == expected + '\n'


@pytest.mark.parametrize('action', ['trip', 'close', 'close-direct', 'alarm',
    'alarm-release', 'hold', 'hold-release'])
def test_encode_control_decodes_back(capsys, action):
    code, out, _ = run(capsys, 'encode', 'control', '--address',
        '000102030425', '--action', action, '--password', '123456',
        '--level', '04', '--operator', '00000001')
    assert code == 0
    values = decode_to_json(parse_hex(out))['values']
    assert values['action'] == action
    assert (values['password'], values['level'], values['operator']) == (
        '123456', '04', '00000001')


def test_encode_write_recharge_freeze_next(capsys):
    code, out, _ = run(capsys, 'encode', 'write', '--address',
        '000102030425', '--di', '04001001', '--value', '20.00')
    assert code == 0 and decode_to_json(out)['value'] == 20.0
    code, out, _ = run(capsys, 'encode', 'write', '--address',
        '000102030425', '--di', '04001001', '--data', '00200000')
    assert code == 0 and decode_to_json(out)['value'] == 20.0
    code, out, _ = run(capsys, 'encode', 'recharge', '--address',
        '000102030425', '--amount', '50', '--count', '3')
    assert code == 0
    assert decode_to_json(out)['values']['amount'] == 50.0
    code, out, _ = run(capsys, 'encode', 'freeze', '--hour', '0',
        '--minute', '0')
    assert code == 0 and decode_to_json(out)['values']['hour'] == 0
    code, out, _ = run(capsys, 'encode', 'read-next', '--address',
        '000102030425', '--di', '0001FF00', '--seq', '2')
    assert code == 0 and decode_to_json(out)['values'] == {'seq': 2}


def test_encode_defaults_for_times(capsys):
    code, out, _ = run(capsys, 'encode', 'time-sync')
    assert code == 0 and decode_to_json(out)['values']['time']
    code, out, _ = run(capsys, 'encode', 'control', '--address', '1',
        '--action', 'hold')
    assert code == 0 and decode_to_json(out)['values']['valid_until']


def test_safety_items(capsys):
    """安全用电 DIs encode and decode with their formats; lists as JSON."""
    code, out, _ = run(capsys, 'encode', 'write', '--address', '1', '--di',
        '04A00301', '--password', '123456', '--value',
        '[["08:00", "5"], ["22:00", "1.5"]]')
    assert code == 0
    values = decode_to_json(out)['values']
    assert values['tod_power_limits'] == [['08:00', 5.0], ['22:00', 1.5]]
    assert values['password'] == '123456'
    code, out, _ = run(capsys, 'encode', 'write', '--address', '1', '--di',
        '04000E01', '--value', '8')
    assert code == 0 and decode_to_json(out)['value'] == 8.0
    code, out, _ = run(capsys, 'decode', out)
    assert code == 0 and json.loads(out)['di'] == '04000E01'
    code, _, err = run(capsys, 'encode', 'write', '--address', '1', '--di',
        '04A00301', '--value', '[bad')
    assert code == 2 and 'is not JSON' in err
    code, _, err = run(capsys, 'encode', 'write', '--address', '1', '--di',
        '04A00301', '--value', '[["22:00", "1"], ["08:00", "5"]]')
    assert code == 2 and 'increasing order' in err
