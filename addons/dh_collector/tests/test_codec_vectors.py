"""Every frame of shared/vectors/frames.json decodes to what the file says.

The file is read at run time from ``<repo root>/../shared/vectors``; it is
never copied into the project.
"""

import json
from pathlib import Path

import pytest

from trytond.modules.dh_collector.codec import (
    CodecError, cjt188, decode_to_json, parse_hex)


def repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / 'addons').is_dir() and (
                parent / 'pyproject.toml').is_file():
            return parent
    return here.parents[3]


VECTORS_PATH = repo_root().parent / 'shared' / 'vectors' / 'frames.json'

# CJ/T188 entries whose "direction" says "response" although C has D7 = 0
# (requests: read, read address, valve command). The control byte and the
# entries' own "meaning" say request; we follow D7.
DIRECTION_WRONG_IN_FILE = {38, 40, 42, 45, 46, 47, 48, 49, 52}


def load_vectors() -> list[dict]:
    if not VECTORS_PATH.is_file():
        pytest.fail(f'test vectors not found at {VECTORS_PATH}')
    with VECTORS_PATH.open(encoding='utf-8') as fp:
        return json.load(fp)


def _ours(entry):
    return entry['protocol'] in ('dlt645-2007', 'dlt645-1997', 'cjt188')


VECTORS = [v for v in load_vectors() if _ours(v)] if VECTORS_PATH.is_file() \
    else []
GOOD = [v for v in VECTORS if not v.get('expect', '').startswith('reject')]
REJECT = [v for v in VECTORS if v.get('expect', '').startswith('reject')]


def test_vectors_present():
    assert len(load_vectors()) >= 30
    assert GOOD and REJECT


def _direction_from_control(control: int) -> str:
    return 'response' if control & 0x80 else 'request'


@pytest.mark.parametrize('entry', GOOD, ids=lambda v: f"#{v['id']}")
@pytest.mark.parametrize('forced', [False, True], ids=['auto', 'forced'])
def test_vector_decodes(entry, forced):
    result = decode_to_json(entry['hex'],
        entry['protocol'] if forced else None)
    assert set(result) == {'protocol', 'address', 'control', 'direction',
        'error', 'di', 'value', 'values'}
    assert result['protocol'] == entry['protocol']
    assert result['address'] == entry['address']
    assert result['control'] == entry['control']
    assert result['error'] is None
    if 'di' in entry:
        assert result['di'] == entry['di']
    if 'di_bytes_on_wire' in entry:
        wire = bytes.fromhex(entry['di_bytes_on_wire'])
        assert result['di'] in (wire.hex().upper(), wire[::-1].hex().upper())
        assert result['di'] in cjt188.KNOWN_DIS
        order = 'big' if wire.hex().upper() == result['di'] else 'little'
        assert result['values']['di_order'] == order
    if 'value' in entry:
        assert result['value'] == pytest.approx(entry['value'], abs=1e-9)
        assert type(result['value']) in (int, float)
    else:
        assert result['value'] is None
    if 'values' in entry:
        assert result['values'] == entry['values']
    expected = _direction_from_control(entry['control'])
    assert result['direction'] == expected
    if entry['direction'] != expected:
        assert entry['id'] in DIRECTION_WRONG_IN_FILE, (
            f"vector #{entry['id']}: direction {entry['direction']!r} "
            f"contradicts C={entry['control']:02X}")
    else:
        assert entry['id'] not in DIRECTION_WRONG_IN_FILE
    assert entry['checksum_ok'] is True


@pytest.mark.parametrize('entry', REJECT, ids=lambda v: f"#{v['id']}")
@pytest.mark.parametrize('forced', [False, True], ids=['auto', 'forced'])
def test_vector_rejected(entry, forced):
    reason = entry['expect'].split(':', 1)[1].strip()
    with pytest.raises(CodecError) as info:
        decode_to_json(entry['hex'], entry['protocol'] if forced else None)
    assert reason.split()[0] in str(info.value)
    assert entry['checksum_ok'] is False


def _fix_checksum(raw: bytes) -> bytes:
    body = bytearray(raw.lstrip(b'\xfe'))
    body[-2] = sum(body[:-2]) & 0xFF
    return bytes(body)


@pytest.mark.parametrize('entry', REJECT, ids=lambda v: f"#{v['id']}")
def test_corrected_twin_decodes(entry):
    twin = _fix_checksum(parse_hex(entry['hex']))
    result = decode_to_json(twin)
    assert result['protocol'] == entry['protocol']
    assert result['address'] == entry['address']
    assert result['control'] == entry['control']
    if 'value' in entry:
        assert result['value'] == pytest.approx(entry['value'])


def test_cjt188_twin_fields():
    entry = next(v for v in REJECT if v['id'] == 43)
    result = decode_to_json(_fix_checksum(parse_hex(entry['hex'])))
    values = result['values']
    assert result['di'] == '901F'
    assert values['di_order'] == 'little'
    assert values['meter_type'] == '10'
    assert values['flow'] == 556677.0
    assert values['flow_unit'] == 'm3'
    assert values['settlement_flow'] == 556677.0
    assert values['time'] == '2015-05-11T22:01:31'
    assert values['status'] == {'st': '2184', 'valve': 'closed',
        'battery_low': False}


def test_voltage_block_values():
    entry = next(v for v in GOOD if v['id'] == 7)
    result = decode_to_json(entry['hex'])
    assert result['values'] == {'02010100': 0.0, '02010200': 0.0,
        '02010300': 239.4}


def test_meter_number_and_address_values():
    by_id = {v['id']: v for v in GOOD}
    assert decode_to_json(by_id[20]['hex'])['values'] == {
        'meter_number': '002241020208'}
    assert decode_to_json(by_id[21]['hex'])['values'] == {
        'address': '002241020208'}


def test_vector_55_modbus_is_not_ours():
    entry = next(v for v in load_vectors() if v['protocol'] == 'modbus-rtu')
    with pytest.raises(CodecError):
        decode_to_json(entry['hex'])
