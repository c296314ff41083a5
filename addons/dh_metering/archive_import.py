# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Meter archive import (档案管理 → 导入).

The user uploads an .xlsx file with one header row and one row per meter.
This module reads it (openpyxl, read-only mode) and validates every row
without touching the database: the caller passes what already exists
(addresses, numbers, area paths) and gets back the parsed rows and *all*
the errors found.  The caller must import nothing when there is any error.

Pure Python: it must not import trytond.
"""
import datetime as _dt
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ['HEADERS', 'REQUIRED', 'COLUMN_LABELS', 'UTILITIES', 'PROTOCOLS',
    'ROLES', 'ArchiveError', 'RowError', 'MeterRow', 'read_rows', 'validate',
    'parse_archive', 'errors_text']

# Header text -> key.  The first entry of each key is the canonical header
# (used in error messages and in the import template); the others are
# accepted aliases (level1..level4 are the column names of the product's
# own exports).  Matching ignores surrounding whitespace, a trailing '*' and
# the case of latin letters.
HEADERS = {
    '片区': 'level1',
    'level1': 'level1',
    '小区/楼宇': 'level2',
    '小区': 'level2',
    '楼宇': 'level2',
    'level2': 'level2',
    '栋': 'level3',
    '栋/区': 'level3',
    'level3': 'level3',
    '室': 'level4',
    'level4': 'level4',
    '编号': 'number',
    '用户名': 'name',
    '表计地址': 'address',
    '类型': 'utility',
    '协议': 'protocol',
    '通道': 'channel',
    '倍率': 'multiplier',
    '角色': 'role',
    '租户': 'tenant',
    '租户电话': 'tenant_phone',
    }
KEYS = ('level1', 'level2', 'level3', 'level4', 'number', 'name', 'address',
    'utility', 'protocol', 'channel', 'multiplier', 'role', 'tenant',
    'tenant_phone')
REQUIRED = ('level1', 'level2', 'level3', 'level4', 'number', 'name',
    'address', 'utility')
# key -> canonical header text
COLUMN_LABELS = {}
for _header, _key in HEADERS.items():
    COLUMN_LABELS.setdefault(_key, _header)
del _header, _key

# Cell text -> code.  Codes are accepted as well.
UTILITIES = {
    '电': 'electricity',
    '电表': 'electricity',
    '水': 'water',
    '水表': 'water',
    '空调内机': 'ac_indoor',
    '空调外机': 'ac_outdoor',
    }
UTILITY_LABELS = {'electricity': '电', 'water': '水',
    'ac_indoor': '空调内机', 'ac_outdoor': '空调外机'}
# Protocols are matched on the text upper-cased without ' /-_.' so that
# 'DL/T645-2007', 'DLT645 2007' and 'dlt645_2007' are the same.
PROTOCOLS = {
    'DLT6452007': 'dlt645_2007',
    'DLT6451997': 'dlt645_1997',
    'CJT188': 'cjt188',
    'CJT1882004': 'cjt188',
    'MODBUS': 'modbus',
    'MODBUSRTU': 'modbus',
    }
PROTOCOL_LABELS = {'dlt645_2007': 'DL/T645-2007',
    'dlt645_1997': 'DL/T645-1997', 'cjt188': 'CJ/T188', 'modbus': 'Modbus'}
ROLES = {
    '普通': 'normal',
    '普通表': 'normal',
    '公共表': 'public',
    '公共': 'public',
    '主表': 'master',
    }
# Protocols allowed for each utility
UTILITY_PROTOCOLS = {
    'electricity': ('dlt645_2007', 'dlt645_1997', 'modbus'),
    'ac_indoor': ('dlt645_2007', 'dlt645_1997', 'modbus'),
    'ac_outdoor': ('dlt645_2007', 'dlt645_1997', 'modbus'),
    'water': ('cjt188', 'modbus'),
    }
DEFAULT_PROTOCOL = {
    'electricity': 'dlt645_2007',
    'ac_indoor': 'dlt645_2007',
    'ac_outdoor': 'dlt645_2007',
    'water': 'cjt188',
    }
ADDRESS_LENGTH = {'dlt645_2007': 12, 'dlt645_1997': 12, 'cjt188': 14}
DLT645_BROADCAST = '999999999999'
MODBUS_UNIT_MAX = 247

# Header row is searched in the first rows (a title line above it is
# tolerated).
HEADER_SEARCH_ROWS = 10

_MOBILE = re.compile(r'^1[3-9]\d{9}$')
_DIGITS = re.compile(r'^\d+$')
_SPACES = re.compile(r'[\s\u3000\u00a0\u200b\ufeff]+')


class ArchiveError(ValueError):
    "The file cannot be used at all (unreadable, required column missing)"


@dataclass
class RowError:
    row: int          # Excel row number as the user sees it (1-based)
    column: str       # header text, '' for the whole row
    message: str      # Chinese


@dataclass
class MeterRow:
    row: int
    level1: str
    level2: str
    level3: str
    level4: str
    number: str
    name: str
    address: str
    utility: str
    protocol: str
    channel: str | None
    multiplier: Decimal
    role: str
    tenant: str | None
    tenant_phone: str | None

    @property
    def area_path(self):
        return (self.level1, self.level2, self.level3, self.level4)


def _normalize_header(value):
    if value is None:
        return ''
    text = _SPACES.sub('', str(value)).rstrip('*＊')
    text = text.replace('／', '/')
    return text.lower() if text.isascii() else text


_HEADER_LOOKUP = {_normalize_header(h): k for h, k in HEADERS.items()}


def _header_keys(values):
    "Return {key: column index} and [(index, duplicated key)]"
    found, duplicates = {}, []
    for index, value in enumerate(values):
        key = _HEADER_LOOKUP.get(_normalize_header(value))
        if key is None:
            continue
        if key in found:
            duplicates.append((index, key))
        else:
            found[key] = index
    return found, duplicates


def _missing_text(missing):
    return '、'.join(COLUMN_LABELS[k] for k in missing)


def _read_sheet(worksheet):
    """Return (header row number, {key: index}, rows iterator) or raise
    ArchiveError"""
    worksheet.reset_dimensions()  # do not trust the stored dimension
    rows = worksheet.iter_rows(values_only=True)
    best = None
    for row_number, values in enumerate(rows, start=1):
        if row_number > HEADER_SEARCH_ROWS:
            break
        found, duplicates = _header_keys(values or ())
        if not found:
            continue
        if best is None or len(found) > len(best[1]):
            best = (row_number, found, duplicates)
        if all(k in found for k in REQUIRED):
            break
    if best is None:
        raise ArchiveError('未找到表头行：第一行应为列名（%s）'
            % _missing_text(REQUIRED))
    row_number, found, duplicates = best
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        raise ArchiveError('缺少必填列：%s（表头在第 %d 行）'
            % (_missing_text(missing), row_number))
    if duplicates:
        raise ArchiveError('表头中的列重复：%s' % '、'.join(
                COLUMN_LABELS[k] for _, k in duplicates))
    return row_number, found


def read_rows(data):
    """Read the raw cells of an archive file.

    Returns one dict per non blank data row: key -> cell value as stored in
    the file (str, int, float, datetime or None) for every known column
    present, plus '_row', the Excel row number.  Raises ArchiveError if data
    is not a readable .xlsx file or if a required column is missing.
    """
    # Imported here so that the rest of the module (validation) works
    # without openpyxl.
    import openpyxl

    if not data:
        raise ArchiveError('文件为空')
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(bytes(data)),
            read_only=True, data_only=True)
    except Exception:  # zipfile.BadZipFile, KeyError, InvalidFileException…
        raise ArchiveError(
            '无法读取文件：请上传 Excel 2007 及以上版本的 .xlsx 文件'
            '（旧版 .xls 请先在 Excel 中另存为 .xlsx）')
    try:
        sheets = list(workbook.worksheets)
        try:
            active = workbook.active
        except Exception:
            active = None
        if active in sheets:
            sheets.remove(active)
            sheets.insert(0, active)
        sheets = [s for s in sheets if hasattr(s, 'iter_rows')]
        if not sheets:
            raise ArchiveError('文件中没有工作表')
        first_error = None
        for worksheet in sheets:
            try:
                header_row, columns = _read_sheet(worksheet)
            except ArchiveError as exception:
                if first_error is None:
                    first_error = exception
                continue
            break
        else:
            raise first_error

        result = []
        items = list(columns.items())
        try:
            for row_number, values in enumerate(
                    worksheet.iter_rows(min_row=header_row + 1,
                        values_only=True),
                    start=header_row + 1):
                values = values or ()
                raw = {}
                blank = True
                for key, index in items:
                    value = values[index] if index < len(values) else None
                    if isinstance(value, str) and not _clean(value):
                        value = None
                    if value is not None:
                        blank = False
                    raw[key] = value
                if blank:
                    continue
                raw['_row'] = row_number
                result.append(raw)
        except (zipfile.BadZipFile, KeyError, ValueError) as exception:
            raise ArchiveError('文件内容损坏，无法读取：%s' % exception)
        return result
    finally:
        workbook.close()


def _clean(value):
    "Cell value -> trimmed text ('' for empty)"
    if value is None:
        return ''
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return str(value.quantize(Decimal(1)))
        return str(value)
    if isinstance(value, _dt.datetime):
        if value.time() == _dt.time():
            return value.strftime('%Y-%m-%d')
        return value.strftime('%Y-%m-%d %H:%M:%S')
    if isinstance(value, _dt.date):
        return value.strftime('%Y-%m-%d')
    text = str(value).replace('\u3000', ' ').replace('\u00a0', ' ')
    text = text.replace('\u200b', '').replace('\ufeff', '')
    return text.strip()


def _parse_multiplier(value):
    "Return a positive Decimal or None"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, Decimal):
        result = value
    else:
        text = _clean(value).replace(',', '').replace('，', '')
        try:
            result = Decimal(text)
        except InvalidOperation:
            return None
    if not result.is_finite() or result <= 0:
        return None
    return result


def _protocol_key(text):
    return re.sub(r'[\s/\-_.:：（）()]', '', text).upper()


def _normalize_phone(text):
    phone = re.sub(r'[\s\-()（）]', '', text)
    for prefix in ('+86', '0086'):
        if phone.startswith(prefix):
            phone = phone[len(prefix):]
            break
    else:
        if len(phone) == 13 and phone.startswith('86'):
            phone = phone[2:]
    return phone


def _address_error(protocol, text):
    if protocol == 'modbus':
        return ('地址格式错误（Modbus 为 1–%d 的从站地址）: %s'
            % (MODBUS_UNIT_MAX, text))
    return ('地址格式错误（DL/T645 为 12 位数字，CJ/T188 为 14 位数字）: %s'
        % text)


def _normalize_address(protocol, text):
    "Return (address, error message)"
    if not _DIGITS.fullmatch(text):
        return None, _address_error(protocol, text)
    if protocol == 'modbus':
        unit = int(text)
        if not 1 <= unit <= MODBUS_UNIT_MAX:
            return None, _address_error(protocol, text)
        return str(unit), None
    length = ADDRESS_LENGTH[protocol]
    if len(text) > length:
        return None, _address_error(protocol, text)
    address = text.zfill(length)
    if protocol.startswith('dlt645') and address == DLT645_BROADCAST:
        return None, '地址 %s 为 DL/T645 广播地址，不能用作表计地址' % text
    return address, None


def _rows_text(rows):
    return '、'.join('第 %d 行' % r for r in rows)


def validate(raw_rows, *, existing_addresses=frozenset(),
        existing_numbers=frozenset(), known_area_paths=None):
    """Validate raw rows (as returned by read_rows).

    existing_addresses / existing_numbers: what is already in the database
    (addresses in their normalised form: zero padded to 12 / 14 digits).
    known_area_paths: set of (level1, level2, level3, level4) that exist;
    None means missing areas will be created, so any path is accepted.

    Returns (meter rows, errors), errors sorted by row then column.  Only the
    rows without any error are returned; the caller must import nothing when
    errors is not empty.  Modbus unit ids are only unique on one bus, so
    Modbus rows are checked for duplicates on (通道, address) inside the file
    and are not checked against existing_addresses.
    """
    existing_addresses = set(existing_addresses or ())
    existing_numbers = set(existing_numbers or ())
    errors = []
    candidates = []  # (row, values, row has error)
    by_address = {}  # address key -> [row numbers]
    by_number = {}

    for raw in raw_rows:
        row = raw.get('_row', 0)
        text = {k: _clean(raw.get(k)) for k in KEYS}
        if not any(text.values()):
            continue
        row_errors = []

        def error(key, message):
            row_errors.append(RowError(row,
                    COLUMN_LABELS[key] if key else '', message))

        for key in REQUIRED:
            if not text[key]:
                error(key, '必填项为空')

        utility = None
        if text['utility']:
            utility = UTILITIES.get(text['utility'])
            if utility is None and text['utility'].lower() in UTILITY_LABELS:
                utility = text['utility'].lower()
            if utility is None:
                error('utility', '未知的类型「%s」（可填：电、水、空调内机、空调外机）'
                    % text['utility'])

        protocol = None
        if text['protocol']:
            protocol = PROTOCOLS.get(_protocol_key(text['protocol']))
            if protocol is None and text['protocol'].lower() in PROTOCOL_LABELS:
                protocol = text['protocol'].lower()
            if protocol is None:
                error('protocol', '未知的协议「%s」（可填：DL/T645-2007、'
                    'DL/T645-1997、CJ/T188、Modbus）' % text['protocol'])
        elif utility:
            protocol = DEFAULT_PROTOCOL[utility]
        if utility and protocol and protocol not in UTILITY_PROTOCOLS[utility]:
            error('protocol', '协议 %s 不适用于%s表计（可用：%s）' % (
                    PROTOCOL_LABELS[protocol], UTILITY_LABELS[utility],
                    '、'.join(PROTOCOL_LABELS[p]
                        for p in UTILITY_PROTOCOLS[utility])))
            protocol = None

        channel = text['channel'] or None

        address = None
        if text['address'] and protocol:
            address, message = _normalize_address(protocol, text['address'])
            if message:
                error('address', message)
            else:
                if protocol == 'modbus':
                    key = ('modbus', channel or '', address)
                else:
                    key = ('address', address)
                    if address in existing_addresses:
                        error('address', '表计地址 %s 已存在于系统中' % address)
                by_address.setdefault(key, []).append(row)

        number = text['number']
        if number:
            if number in existing_numbers:
                error('number', '编号 %s 已存在于系统中' % number)
            by_number.setdefault(number, []).append(row)

        multiplier = Decimal(1)
        if text['multiplier']:
            multiplier = _parse_multiplier(raw.get('multiplier'))
            if multiplier is None:
                error('multiplier', '倍率必须是大于 0 的数字: %s'
                    % text['multiplier'])

        role = 'normal'
        if text['role']:
            role = ROLES.get(text['role'])
            if role is None and text['role'].lower() in ('normal', 'public',
                    'master'):
                role = text['role'].lower()
            if role is None:
                error('role', '未知的角色「%s」（可填：普通、公共表、主表）'
                    % text['role'])

        tenant = text['tenant'] or None
        tenant_phone = None
        if text['tenant_phone']:
            tenant_phone = _normalize_phone(text['tenant_phone'])
            if not _MOBILE.fullmatch(tenant_phone):
                error('tenant_phone', '租户电话应为 11 位手机号码: %s'
                    % text['tenant_phone'])
                tenant_phone = None
            elif not tenant:
                error('tenant', '填写了租户电话但未填写租户')

        path = (text['level1'], text['level2'], text['level3'],
            text['level4'])
        if known_area_paths is not None and all(path) \
                and path not in known_area_paths:
            error('', '区域不存在：%s' % ' / '.join(path))

        errors.extend(row_errors)
        meter = None
        if not row_errors:
            meter = MeterRow(row=row, level1=path[0], level2=path[1],
                level3=path[2], level4=path[3], number=number,
                name=text['name'], address=address, utility=utility,
                protocol=protocol, channel=channel, multiplier=multiplier,
                role=role, tenant=tenant, tenant_phone=tenant_phone)
        candidates.append((row, meter))

    bad_rows = set()
    for key, rows in by_address.items():
        if len(rows) < 2:
            continue
        for row in rows:
            others = [r for r in rows if r != row]
            if key[0] == 'modbus':
                message = ('通道「%s」上的 Modbus 地址 %s 在文件中重复（与%s相同）'
                    % (key[1], key[2], _rows_text(others)))
            else:
                message = ('表计地址 %s 在文件中重复（与%s相同）'
                    % (key[1], _rows_text(others)))
            errors.append(RowError(row, COLUMN_LABELS['address'], message))
            bad_rows.add(row)
    for number, rows in by_number.items():
        if len(rows) < 2:
            continue
        for row in rows:
            others = [r for r in rows if r != row]
            errors.append(RowError(row, COLUMN_LABELS['number'],
                    '编号 %s 在文件中重复（与%s相同）'
                    % (number, _rows_text(others))))
            bad_rows.add(row)

    order = {COLUMN_LABELS[k]: i for i, k in enumerate(KEYS)}
    order[''] = len(KEYS)
    errors.sort(key=lambda e: (e.row, order.get(e.column, len(KEYS))))
    meters = [m for r, m in candidates if m is not None and r not in bad_rows]
    return meters, errors


def parse_archive(data, **kwargs):
    "read_rows + validate; raises ArchiveError for an unusable file"
    return validate(read_rows(data), **kwargs)


def errors_text(errors, limit=None):
    """One line per error: '第 5 行 [表计地址]: …'.  With limit, only the
    first errors are listed followed by a count of the others."""
    errors = list(errors)
    shown = errors if limit is None else errors[:limit]
    lines = []
    for error in shown:
        if error.column:
            lines.append('第 %d 行 [%s]: %s'
                % (error.row, error.column, error.message))
        else:
            lines.append('第 %d 行: %s' % (error.row, error.message))
    if len(errors) > len(shown):
        lines.append('…… 另有 %d 条错误' % (len(errors) - len(shown)))
    return '\n'.join(lines)
