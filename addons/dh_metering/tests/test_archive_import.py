# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Tests of the pure Python meter archive import (no trytond needed)"
import io
from decimal import Decimal

import openpyxl
import pytest

from trytond.modules.dh_metering import archive_import
from trytond.modules.dh_metering.archive_import import (  # noqa: E402
    ArchiveError, MeterRow, RowError, errors_text, parse_archive, read_rows,
    validate)

HEADER = ['片区', '小区/楼宇', '栋', '室', '编号', '用户名', '表计地址', '类型',
    '协议', '通道', '倍率', '角色', '租户', '租户电话']


def xlsx(rows, header=HEADER, before=(), sheets=None):
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = '档案'
    for row in before:
        ws.append(row)
    if header is not None:
        ws.append(header)
    for row in rows:
        ws.append(row)
    for title, content in (sheets or {}).items():
        other = workbook.create_sheet(title)
        for row in content:
            other.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def row(**kw):
    values = {
        '片区': '唐渠', '小区/楼宇': '瀚盛家园', '栋': '15', '室': '601',
        '编号': '202', '用户名': '瀚15#601A', '表计地址': '15085381',
        '类型': '电', '协议': None, '通道': None, '倍率': None, '角色': None,
        '租户': None, '租户电话': None}
    values.update(kw)
    return [values[h] for h in HEADER]


def messages(errors):
    return [(e.row, e.column) for e in errors]


def test_valid_file_defaults():
    data = xlsx([
        row(),
        row(**{'编号': 203, '用户名': '瀚15#601公', '表计地址': 14022114,
            '类型': '水', '倍率': 30, '角色': '公共表', '通道': 'COM3',
            '租户': '赵敏', '租户电话': '138 0013 8000'}),
        row(**{'编号': '204', '表计地址': '1', '类型': '空调内机',
            '协议': 'Modbus', '倍率': '2.5', '角色': '主表'}),
        row(**{'编号': 205.0, '表计地址': 15085377.0, '类型': '空调外机',
            '协议': 'DL/T645-1997', '倍率': 1.5, '租户电话': 13800138001,
            '租户': '王社根', '室': 601}),
        ])
    meters, errors = parse_archive(data, existing_addresses=set(),
        existing_numbers=set(), known_area_paths=None)
    assert errors == []
    assert len(meters) == 4
    first, second, third, fourth = meters
    assert first == MeterRow(row=2, level1='唐渠', level2='瀚盛家园',
        level3='15', level4='601', number='202', name='瀚15#601A',
        address='000015085381', utility='electricity',
        protocol='dlt645_2007', channel=None, multiplier=Decimal(1),
        role='normal', tenant=None, tenant_phone=None)
    assert second.row == 3
    assert second.number == '203'
    assert second.utility == 'water' and second.protocol == 'cjt188'
    assert second.address == '00000014022114'
    assert second.multiplier == Decimal(30)
    assert second.role == 'public' and second.channel == 'COM3'
    assert second.tenant == '赵敏' and second.tenant_phone == '13800138000'
    assert third.protocol == 'modbus' and third.address == '1'
    assert third.utility == 'ac_indoor' and third.role == 'master'
    assert third.multiplier == Decimal('2.5')
    # floats typed by Excel
    assert fourth.number == '205'
    assert fourth.address == '000015085377'
    assert fourth.protocol == 'dlt645_1997'
    assert fourth.utility == 'ac_outdoor'
    assert fourth.multiplier == Decimal('1.5')
    assert fourth.tenant_phone == '13800138001'
    assert fourth.level4 == '601'
    assert fourth.area_path == ('唐渠', '瀚盛家园', '15', '601')


def test_read_rows_raw_and_blank_rows_skipped():
    data = xlsx([
        row(),
        [None] * len(HEADER),
        ['  ', None, '\u3000'] + [None] * (len(HEADER) - 3),
        [],
        row(**{'编号': '203', '表计地址': '  15085377 '}),
        ])
    raw = read_rows(data)
    assert [r['_row'] for r in raw] == [2, 6]
    assert raw[0]['address'] == '15085381'
    assert raw[0]['level1'] == '唐渠'
    meters, errors = validate(raw, existing_addresses=set(),
        existing_numbers=set(), known_area_paths=None)
    assert errors == []
    assert [m.row for m in meters] == [2, 6]
    assert meters[1].address == '000015085377'


def test_header_order_free_extra_columns_and_aliases():
    header = ['备注', '表计地址', '用户名', '编号', 'Level1', 'level2',
        '栋/区*', ' 室 ', '类型']
    data = xlsx([['x', 16005628, '东政', 2001, '东政', '东政', '东政', '东政',
                '电']], header=header)
    meters, errors = parse_archive(data, existing_addresses=set(),
        existing_numbers=set(), known_area_paths=None)
    assert errors == []
    assert meters[0].address == '000016005628'
    assert meters[0].number == '2001'
    assert meters[0].level3 == '东政'


def test_title_line_above_header():
    data = xlsx([row()], before=[['表计档案导入'], []])
    meters, errors = parse_archive(data, existing_addresses=set(),
        existing_numbers=set(), known_area_paths=None)
    assert errors == []
    assert meters[0].row == 4


def test_header_found_on_other_sheet():
    workbook = openpyxl.Workbook()
    workbook.active.title = '说明'
    workbook.active.append(['请按模板填写'])
    ws = workbook.create_sheet('档案')
    ws.append(HEADER)
    ws.append(row())
    buffer = io.BytesIO()
    workbook.save(buffer)
    meters, errors = parse_archive(buffer.getvalue())
    assert errors == [] and len(meters) == 1


def test_missing_header():
    header = [h for h in HEADER if h not in ('表计地址', '类型')]
    with pytest.raises(ArchiveError) as info:
        read_rows(xlsx([], header=header))
    assert '表计地址' in str(info.value) and '类型' in str(info.value)
    assert '片区' not in str(info.value)


def test_no_header_at_all():
    with pytest.raises(ArchiveError):
        read_rows(xlsx([['a', 'b']], header=None))


def test_duplicate_header():
    with pytest.raises(ArchiveError) as info:
        read_rows(xlsx([], header=HEADER + ['level1']))
    assert '片区' in str(info.value)


@pytest.mark.parametrize('data', [
        b'', b'not an excel file', b'PK\x03\x04garbage',
        'a,b,c\n1,2,3\n'.encode('utf-8'),
        b'\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1' + b'\0' * 512,  # old .xls
        ])
def test_not_xlsx(data):
    with pytest.raises(ArchiveError):
        parse_archive(data)


def test_archive_error_is_value_error():
    assert issubclass(ArchiveError, ValueError)


def check(rows, **kwargs):
    kwargs.setdefault('existing_addresses', set())
    kwargs.setdefault('existing_numbers', set())
    kwargs.setdefault('known_area_paths', None)
    return parse_archive(xlsx(rows), **kwargs)


@pytest.mark.parametrize('column', ['片区', '小区/楼宇', '栋', '室', '编号',
        '用户名', '表计地址', '类型'])
def test_required(column):
    meters, errors = check([row(**{column: None})])
    assert meters == []
    assert messages(errors) == [(2, column)]
    assert '必填' in errors[0].message


@pytest.mark.parametrize('kw, address', [
        ({'表计地址': '12AB'}, None),
        ({'表计地址': '1234567890123'}, None),
        ({'表计地址': '-5'}, None),
        ({'表计地址': 123.5}, None),
        ({'表计地址': '999999999999'}, None),
        ({'表计地址': '123456789012345', '类型': '水'}, None),
        ({'表计地址': '0', '协议': 'modbus'}, None),
        ({'表计地址': '248', '协议': 'modbus'}, None),
        ({'表计地址': '12345678901234', '类型': '水'}, '12345678901234'),
        ({'表计地址': '123456789012'}, '123456789012'),
        ({'表计地址': '0012'}, '000000000012'),
        ({'表计地址': '247', '协议': 'modbus'}, '247'),
        ({'表计地址': '007', '协议': 'modbus'}, '7'),
        ])
def test_address_format(kw, address):
    meters, errors = check([row(**kw)])
    if address is None:
        assert messages(errors) == [(2, '表计地址')]
        assert '地址' in errors[0].message
    else:
        assert errors == []
        assert meters[0].address == address


def test_address_message_text():
    _, errors = check([row(**{'表计地址': '12AB'})], known_area_paths=None)
    assert errors_text(errors) == ('第 2 行 [表计地址]: 地址格式错误'
        '（DL/T645 为 12 位数字，CJ/T188 为 14 位数字）: 12AB')


def test_duplicate_address_in_file_and_existing():
    meters, errors = check([
        row(**{'编号': '1', '表计地址': '15085381'}),
        row(**{'编号': '2', '表计地址': '000015085381'}),
        row(**{'编号': '3', '表计地址': 15085381.0}),
        row(**{'编号': '4', '表计地址': '16005628'}),
        row(**{'编号': '5', '表计地址': '16005629'}),
        ], existing_addresses={'000016005628'})
    assert messages(errors) == [(2, '表计地址'), (3, '表计地址'),
        (4, '表计地址'), (5, '表计地址')]
    assert '第 3 行、第 4 行' in errors[0].message
    assert '第 2 行、第 4 行' in errors[1].message
    assert '已存在' in errors[3].message
    assert [m.number for m in meters] == ['5']


def test_modbus_duplicates_per_channel():
    meters, errors = check([
        row(**{'编号': '1', '表计地址': '1', '协议': 'Modbus', '通道': 'A'}),
        row(**{'编号': '2', '表计地址': '1', '协议': 'Modbus', '通道': 'B'}),
        row(**{'编号': '3', '表计地址': '01', '协议': 'Modbus', '通道': 'B'}),
        ], existing_addresses={'1'})
    assert messages(errors) == [(3, '表计地址'), (4, '表计地址')]
    assert [m.number for m in meters] == ['1']


def test_duplicate_number_in_file_and_existing():
    meters, errors = check([
        row(**{'编号': '201', '表计地址': '1'}),
        row(**{'编号': 201, '表计地址': '2'}),
        row(**{'编号': '300', '表计地址': '3'}),
        ], existing_numbers={'300'})
    assert messages(errors) == [(2, '编号'), (3, '编号'), (4, '编号')]
    assert '第 3 行' in errors[0].message
    assert '已存在' in errors[2].message
    assert meters == []


@pytest.mark.parametrize('kw, column', [
        ({'类型': '气'}, '类型'),
        ({'协议': 'IEC 62056'}, '协议'),
        ({'角色': '分表'}, '角色'),
        ({'类型': '水', '协议': 'DL/T645-2007'}, '协议'),
        ({'类型': '电', '协议': 'CJ/T188'}, '协议'),
        ])
def test_unknown_values_and_protocol_mismatch(kw, column):
    meters, errors = check([row(**kw)])
    assert meters == []
    assert messages(errors) == [(2, column)]


@pytest.mark.parametrize('text, code', [
        ('DL/T645-2007', 'dlt645_2007'), ('dlt645_2007', 'dlt645_2007'),
        ('DLT645 2007', 'dlt645_2007'), ('DL/T 645-1997', 'dlt645_1997'),
        ('CJ/T188', 'cjt188'), ('CJ/T 188-2004', 'cjt188'),
        ('modbus', 'modbus'), ('Modbus-RTU', 'modbus'),
        ])
def test_protocol_spellings(text, code):
    kw = {'协议': text}
    if code == 'cjt188':
        kw['类型'] = '水'
    if code == 'modbus':
        kw['表计地址'] = '3'
    meters, errors = check([row(**kw)])
    assert errors == []
    assert meters[0].protocol == code


def test_water_modbus_allowed():
    meters, errors = check([row(**{'类型': '水', '协议': 'Modbus',
                    '表计地址': 12})])
    assert errors == [] and meters[0].protocol == 'modbus'


@pytest.mark.parametrize('value, expected', [
        (None, Decimal(1)), ('', Decimal(1)), (1, Decimal(1)),
        (30, Decimal(30)), ('30', Decimal(30)), (' 40 ', Decimal(40)),
        (0.5, Decimal('0.5')), ('1.25', Decimal('1.25')), (80.0, Decimal(80)),
        ('1,000', Decimal(1000)),
        (0, None), ('0', None), (-1, None), ('-2.5', None), ('三十', None),
        ('abc', None), ('NaN', None), ('Infinity', None),
        ])
def test_multiplier(value, expected):
    meters, errors = check([row(**{'倍率': value})])
    if expected is None:
        assert messages(errors) == [(2, '倍率')]
    else:
        assert errors == []
        assert meters[0].multiplier == expected
        assert isinstance(meters[0].multiplier, Decimal)


@pytest.mark.parametrize('value, expected', [
        ('13800138000', '13800138000'), (13912345678, '13912345678'),
        (17721416308.0, '17721416308'), ('+86 177-2141-6308', '17721416308'),
        ('8617721416308', '17721416308'),
        ('12800138000', None), ('1380013800', None), ('021-12345678', None),
        ('abc', None), ('138001380001', None),
        ])
def test_tenant_phone(value, expected):
    meters, errors = check([row(**{'租户': '赵敏', '租户电话': value})])
    if expected is None:
        assert messages(errors) == [(2, '租户电话')]
    else:
        assert errors == []
        assert meters[0].tenant_phone == expected


def test_tenant_phone_without_tenant():
    _, errors = check([row(**{'租户电话': '13800138000'})])
    assert messages(errors) == [(2, '租户')]


def test_area_paths():
    known = {('唐渠', '瀚盛家园', '15', '601')}
    meters, errors = check([
        row(),
        row(**{'编号': '2', '表计地址': '2', '室': '602'}),
        ], known_area_paths=known)
    assert messages(errors) == [(3, '')]
    assert '唐渠 / 瀚盛家园 / 15 / 602' in errors[0].message
    assert errors_text(errors).startswith('第 3 行: 区域不存在')
    assert len(meters) == 1
    # None: areas will be created
    meters, errors = check([row(**{'室': '602'})], known_area_paths=None)
    assert errors == [] and len(meters) == 1


def test_whitespace_trimmed():
    meters, errors = check([row(**{'片区': ' 唐渠\u3000', '用户名': '\t瀚15#601A ',
                    '类型': ' 电 ', '角色': ' 公共表', '租户': '  '})])
    assert errors == []
    assert meters[0].level1 == '唐渠'
    assert meters[0].name == '瀚15#601A'
    assert meters[0].role == 'public'
    assert meters[0].tenant is None


def test_all_errors_collected():
    rows = [
        row(**{'编号': '1', '表计地址': '12AB'}),               # 2 address
        row(**{'编号': '2', '表计地址': '2'}),                  # 3 valid
        row(**{'编号': '3', '表计地址': '3', '类型': '气',
            '倍率': 0}),                                         # 4 type + multiplier
        [None] * len(HEADER),                                   # 5 blank
        row(**{'编号': '2', '表计地址': '5', '片区': None,
            '租户': 'x', '租户电话': '123'}),                   # 6 level1, number dup, phone
        row(**{'编号': '7', '表计地址': '7', '角色': '分表'}),  # 7 role
        ]
    meters, errors = check(rows)
    assert messages(errors) == [
        (2, '表计地址'),
        (3, '编号'),
        (4, '类型'), (4, '倍率'),
        (6, '片区'), (6, '编号'), (6, '租户电话'),
        (7, '角色'),
        ]
    assert all(isinstance(e, RowError) for e in errors)
    assert meters == []  # row 3 is a duplicate of row 6's number
    text = errors_text(errors)
    assert len(text.splitlines()) == len(errors)
    assert text.splitlines()[0].startswith('第 2 行 [表计地址]: ')
    assert errors_text(errors, limit=3).splitlines()[-1] == '…… 另有 5 条错误'


def test_validate_defaults_and_dicts():
    raw = [{'_row': 9, 'level1': '唐渠', 'level2': '瀚盛家园', 'level3': 15,
        'level4': 601, 'number': 1.0, 'name': 'a', 'address': 5.0,
        'utility': 'water'}]
    meters, errors = validate(raw)
    assert errors == []
    assert meters[0].address == '00000000000005'
    assert meters[0].row == 9 and meters[0].number == '1'


def test_module_is_pure():
    source = open(archive_import.__file__, encoding='utf-8').read()
    assert 'trytond' not in source.replace('must not import trytond', '')
