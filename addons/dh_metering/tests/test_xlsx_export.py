# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"Tests of the pure Python Excel export (no trytond needed)"
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from trytond.modules.dh_metering import xlsx_export
from trytond.modules.dh_metering.xlsx_export import Column, criteria_title, write_xlsx  # noqa: E402

COLUMNS = [
    Column('编号', 'text'),
    Column('用户名', 'text'),
    Column('表计地址', 'text'),
    Column('倍率', 'int'),
    Column('正向有功总电能', 'number'),
    Column('剩余电量', 'number3'),
    Column('单价', 'number4'),
    Column('钱包余额', 'money'),
    Column('日期', 'date'),
    Column('抄读时间', 'datetime', width=25),
    ]
ROWS = [
    ('201', '瀚15#601公', '14022114', 1, Decimal('3950.54'),
        Decimal('-3938.857'), Decimal('1.2000'), Decimal('-6905.55'),
        dt.date(2018, 9, 21), dt.datetime(2018, 9, 21, 0, 45, 10)),
    ('202', '瀚15#601A', '15085381', 2, 1232.21, 154.662, 0.97, 1234567.891,
        dt.datetime(2018, 9, 20, 13, 0), dt.date(2018, 9, 20)),
    (None, None, None, None, None, None, None, None, None, None),
    ('=1+1', '短行'),
    ]


def _open(target):
    if isinstance(target, (bytes, bytearray)):
        target = io.BytesIO(target)
    return openpyxl.load_workbook(target)


@pytest.fixture
def small(tmp_path):
    path = tmp_path / 'small.xlsx'
    calls = []
    count = write_xlsx(str(path), '当前数据', '当前数据 · 片区=唐渠', COLUMNS,
        ROWS, progress=calls.append, progress_every=2)
    workbook = _open(str(path))
    return count, calls, workbook.active


def test_count_and_progress(small):
    count, calls, _ = small
    assert count == 4
    # every 2 rows, no duplicate at the end
    assert calls == [2, 4]


def test_title_and_headers(small):
    _, _, ws = small
    assert ws.title == '当前数据'
    assert ws['A1'].value == '当前数据 · 片区=唐渠'
    assert ws['A1'].font.b
    assert 'A1:J1' in [str(r) for r in ws.merged_cells.ranges]
    assert [c.value for c in ws[2]] == [c.header for c in COLUMNS]
    header = ws['E2']
    assert header.font.b
    assert header.alignment.wrap_text
    assert header.fill.fgColor.rgb.endswith('D9D9D9')


def test_freeze_and_filter(small):
    _, _, ws = small
    assert ws.freeze_panes == 'A3'
    assert ws.auto_filter.ref == 'A2:J6'


def test_widths(small):
    _, _, ws = small
    # CJK header of 7 characters: at least 14 + 2
    assert ws.column_dimensions['E'].width >= 16
    assert ws.column_dimensions['J'].width == pytest.approx(25, abs=1)


def test_values_and_formats(small):
    _, _, ws = small
    row = ws[3]
    assert row[0].value == '201' and row[0].data_type == 's'
    assert row[1].value == '瀚15#601公'
    assert row[2].value == '14022114' and row[2].data_type == 's'
    assert row[3].value == 1 and row[3].number_format == '0'
    assert row[4].value == pytest.approx(3950.54)
    assert row[4].data_type == 'n' and row[4].number_format == '0.00'
    assert row[5].value == pytest.approx(-3938.857)
    assert row[5].number_format == '0.000'
    assert row[6].value == pytest.approx(1.2)
    assert row[6].number_format == '0.0000'
    assert row[7].value == pytest.approx(-6905.55)
    assert row[7].number_format == '#,##0.00'
    assert row[8].value == dt.datetime(2018, 9, 21)
    assert row[8].is_date and row[8].number_format == 'yyyy-mm-dd'
    assert row[9].value == dt.datetime(2018, 9, 21, 0, 45, 10)
    assert row[9].is_date
    assert row[9].number_format == 'yyyy-mm-dd hh:mm:ss'
    row = ws[4]
    assert row[7].value == pytest.approx(1234567.891)
    # a datetime in a date column and a date in a datetime column
    assert row[8].value == dt.datetime(2018, 9, 20, 13, 0)
    assert row[9].value == dt.datetime(2018, 9, 20)


def test_none_and_short_rows(small):
    _, _, ws = small
    assert all(c.value is None for c in ws[5])
    row = ws[6]
    # no formula injection: text stays text
    assert row[0].value == '=1+1' and row[0].data_type == 's'
    assert row[1].value == '短行'
    assert all(c.value is None for c in row[2:])


def test_text_in_number_column_and_integral_float_text(tmp_path):
    path = tmp_path / 't.xlsx'
    write_xlsx(str(path), 's', 't', [Column('地址'), Column('值', 'number')],
        [(16005628.0, 'n/a'), (Decimal('2001'), float('nan')),
            ('x', Decimal('Infinity'))])
    ws = _open(str(path)).active
    assert ws['A3'].value == '16005628'
    assert ws['B3'].value == 'n/a'
    assert ws['A4'].value == '2001'
    assert ws['B4'].value is None
    assert ws['B5'].value is None


def test_too_many_values(tmp_path):
    with pytest.raises(ValueError):
        write_xlsx(str(tmp_path / 'x.xlsx'), 's', 't', [Column('a')],
            [('1', '2')])


def test_unknown_kind():
    with pytest.raises(ValueError):
        Column('x', 'float')


def test_file_object_and_empty(tmp_path):
    buffer = io.BytesIO()
    calls = []
    count = write_xlsx(buffer, 'Sheet', '空', [Column('A'), Column('B')], [],
        progress=calls.append)
    assert count == 0 and calls == [0]
    ws = _open(buffer.getvalue()).active
    assert ws['A1'].value == '空'
    assert ws['A2'].value == 'A'
    assert ws.auto_filter.ref == 'A2:B2'
    assert ws.freeze_panes == 'A3'


def test_single_column(tmp_path):
    path = tmp_path / 'one.xlsx'
    write_xlsx(str(path), 'one', '标题', [Column('编号')], [('1',), ('2',)])
    ws = _open(str(path)).active
    assert ws['A1'].value == '标题'
    assert ws.auto_filter.ref == 'A2:A4'


@pytest.mark.parametrize('name, expected', [
        ('日/月:报表[2018]*?', '日_月_报表_2018___'),
        ('x' * 40, 'x' * 31),
        ('', 'Sheet1'),
        ("'引号'", '引号'),
        ('History', 'History_'),
        ('a\\b', 'a_b'),
        ])
def test_sanitize_sheet_name(name, expected):
    assert xlsx_export.sanitize_sheet_name(name) == expected


def test_sheet_name_in_file(tmp_path):
    path = tmp_path / 'n.xlsx'
    name = '日用量报表[2018/09/01-2018/09/30]:唐渠?' * 2
    write_xlsx(str(path), name, 't', [Column('a')], [('1',)])
    ws = _open(str(path)).active
    assert len(ws.title) <= 31
    assert not set(ws.title) & set('[]:*?/\\')
    assert ws.title.startswith('日用量报表_2018_09_01')


def test_generator_10k(tmp_path):
    path = tmp_path / 'big.xlsx'
    start = dt.datetime(2018, 9, 1)
    consumed = []

    def rows():
        for i in range(10000):
            consumed.append(i)
            yield (str(i), '瀚%d#601A' % i, i, Decimal(i) / 100,
                start + dt.timedelta(minutes=i), None)

    calls = []
    columns = [Column('编号'), Column('用户名'), Column('序号', 'int'),
        Column('用量', 'number'), Column('抄读时间', 'datetime'),
        Column('备注')]
    count = write_xlsx(str(path), '小时报表', criteria_title('小时报表',
            [('用户名~', '601')]), columns, rows(), progress=calls.append,
        progress_every=3000)
    assert count == 10000
    assert consumed == list(range(10000))
    assert calls == [3000, 6000, 9000, 10000]
    workbook = openpyxl.load_workbook(str(path), read_only=True)
    ws = workbook.active
    it = ws.iter_rows(values_only=True)
    assert next(it)[0] == '小时报表 · 用户名~601'
    assert next(it) == tuple(c.header for c in columns)
    n = 0
    for n, values in enumerate(it, start=0):
        if n in (0, 9999):
            assert values[0] == str(n)
            assert values[1] == '瀚%d#601A' % n
            assert values[2] == n
            assert values[3] == pytest.approx(n / 100)
            assert values[4] == start + dt.timedelta(minutes=n)
            assert values[5] is None
    assert n == 9999
    workbook.close()


def test_criteria_title():
    assert criteria_title('当前数据', [('片区', '唐渠'), ('用户名~', '601'),
            ('栋', ''), ('室', None), ('类型', '  ')]) == \
        '当前数据 · 片区=唐渠 · 用户名~601'
    assert criteria_title('日用量报表', [
            ('日期', (dt.date(2018, 9, 1), dt.date(2018, 9, 30))),
            ('抄读时间', (dt.datetime(2018, 9, 1, 8, 0), None)),
            ('编号', 0)]) == ('日用量报表 · 日期=2018-09-01 至 2018-09-30'
        ' · 抄读时间≥2018-09-01 08:00:00 · 编号=0')
    assert criteria_title('充值查询', []) == '充值查询'
    assert criteria_title('报表', [('日期', (None, None))]) == '报表'
