# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Streaming Excel (.xlsx) export for the report screens (导出数据).

Pure Python on top of xlsxwriter; it must not import trytond so that it can
be used and tested on its own.  The workbook is written in xlsxwriter's
``constant_memory`` mode: every row is flushed to a temporary file as soon as
the next one starts, so memory stays flat whatever the number of rows.  The
price is that rows must be written strictly in order, which is what
:func:`write_xlsx` does with the iterable it is given.

Layout of the sheet::

    row 1   title (report name and filter criteria), bold, merged over the
            columns
    row 2   headers, bold, grey background, wrapped
    row 3+  data

Panes are frozen below the header row and an auto-filter covers the header
and the data.
"""
import datetime as _dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal

import xlsxwriter

__all__ = ['Column', 'KINDS', 'write_xlsx', 'criteria_title',
    'sanitize_sheet_name']

# kind -> Excel number format (None: no number format)
KINDS = {
    'text': None,
    'int': '0',
    'number': '0.00',
    'number3': '0.000',
    'number4': '0.0000',
    'money': '#,##0.00',
    'date': 'yyyy-mm-dd',
    'datetime': 'yyyy-mm-dd hh:mm:ss',
    }
_NUMERIC_KINDS = {'int', 'number', 'number3', 'number4', 'money'}
_DATE_KINDS = {'date', 'datetime'}

# Default column width (in Excel character units) per kind; the header may
# make a column wider (see _default_width).
_DEFAULT_WIDTHS = {
    'text': 12,
    'int': 10,
    'number': 14,
    'number3': 14,
    'number4': 14,
    'money': 14,
    'date': 12,
    'datetime': 20,
    }
_MAX_DEFAULT_WIDTH = 40

_INVALID_SHEET_CHARS = re.compile(r'[\[\]:*?/\\]')
_SHEET_NAME_MAX = 31


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = 'text'
    width: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError('Unknown column kind %r (expected one of %s)'
                % (self.kind, ', '.join(sorted(KINDS))))


def _display_width(text):
    "Width of text in Excel character units: CJK / full-width count double"
    width = 0
    for char in str(text):
        code = ord(char)
        if (0x1100 <= code <= 0x115F or 0x2E80 <= code <= 0xA4CF
                or 0xAC00 <= code <= 0xD7A3 or 0xF900 <= code <= 0xFAFF
                or 0xFE30 <= code <= 0xFE4F or 0xFF00 <= code <= 0xFF60
                or 0xFFE0 <= code <= 0xFFE6 or 0x20000 <= code <= 0x3FFFD):
            width += 2
        else:
            width += 1
    return width


def _default_width(column):
    if column.width is not None:
        return column.width
    width = max(_DEFAULT_WIDTHS[column.kind],
        _display_width(column.header) + 2)
    return min(width, _MAX_DEFAULT_WIDTH)


def _utf16_len(text):
    return len(text.encode('utf-16-le')) // 2


def sanitize_sheet_name(name):
    """Return a name Excel accepts for a worksheet: no []:*?/\\ characters,
    no leading / trailing apostrophe, at most 31 characters, not empty and
    not the reserved name 'History'."""
    name = _INVALID_SHEET_CHARS.sub('_', str(name or ''))
    name = ''.join(c for c in name if c >= ' ')  # no control characters
    name = name.strip().strip("'").strip()
    while _utf16_len(name) > _SHEET_NAME_MAX:
        name = name[:-1]
    name = name.rstrip().rstrip("'")
    if not name:
        name = 'Sheet1'
    if name.lower() == 'history':
        name += '_'
    return name


def _format_criterion_value(value):
    if isinstance(value, _dt.datetime):
        return value.strftime('%Y-%m-%d %H:%M:%S')
    if isinstance(value, _dt.date):
        return value.strftime('%Y-%m-%d')
    return str(value).strip()


def _is_empty(value):
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_empty(v) for v in value)
    return False


def criteria_title(report_name, criteria):
    """Build the sheet title from the report name and (label, value) pairs.

    Empty values (None, blank strings, empty sequences) are skipped.  The
    label and value are joined with '=' unless the label already ends with an
    operator (= ~ < > ≤ ≥ :), so ('用户名~', '601') gives '用户名~601' for
    a fuzzy match.  Dates and datetimes are written ISO style; a 2-tuple is
    a range: (a, b) -> 'a 至 b', (a, None) -> '≥a', (None, b) -> '≤b'.

    >>> criteria_title('当前数据', [('片区', '唐渠'), ('用户名~', '601'), ('栋', '')])
    '当前数据 · 片区=唐渠 · 用户名~601'
    """
    parts = [str(report_name).strip()] if report_name else []
    for label, value in criteria or ():
        if _is_empty(value):
            continue
        if isinstance(value, tuple) and len(value) == 2:
            low, high = value
            if _is_empty(low):
                text = '≤' + _format_criterion_value(high)
            elif _is_empty(high):
                text = '≥' + _format_criterion_value(low)
            else:
                text = '%s 至 %s' % (
                    _format_criterion_value(low),
                    _format_criterion_value(high))
        elif isinstance(value, (list, tuple, set, frozenset)):
            text = '、'.join(_format_criterion_value(v) for v in value
                if not _is_empty(v))
        else:
            text = _format_criterion_value(value)
        label = str(label or '').strip()
        if not label:
            parts.append(text)
        elif label[-1] in '=~<>≤≥:：' or text[:1] in '≤≥':
            parts.append(label + text)
        else:
            parts.append('%s=%s' % (label, text))
    return ' · '.join(parts)


def _text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    if isinstance(value, _dt.datetime):
        return value.strftime('%Y-%m-%d %H:%M:%S')
    if isinstance(value, _dt.date):
        return value.strftime('%Y-%m-%d')
    return str(value)


def write_xlsx(target, sheet_name, title, columns, rows, *, progress=None,
        progress_every=5000):
    """Write one sheet into target (a path or a writable binary file object).

    rows is any iterable of tuples / lists with one value per column; it is
    consumed once, strictly in order (a generator is fine and is the way to
    export 100k+ rows).  Values are written according to the column kind:
    numbers (int, float, Decimal) as numbers with the kind's format, date /
    datetime as real Excel dates, None as an empty cell, anything else as
    text; NaN and infinity leave the cell empty.  A value that does not fit
    its column kind (e.g. a string in a number column) is written as text
    rather than rejected.  Timezone-aware
    datetimes have their tzinfo dropped: pass local naive datetimes.

    progress(n) is called every progress_every rows and once at the end
    with the total (not repeated if the total is a multiple of
    progress_every, except that an empty export reports 0).

    Returns the number of data rows written.
    """
    columns = list(columns)
    if not columns:
        raise ValueError('At least one column is required')
    ncols = len(columns)
    if progress_every is None or progress_every < 1:
        progress_every = 0

    workbook = xlsxwriter.Workbook(target, {
            'constant_memory': True,
            'strings_to_numbers': False,
            'strings_to_formulas': False,
            'strings_to_urls': False,
            'nan_inf_to_errors': True,
            'remove_timezone': True,
            })
    try:
        worksheet = workbook.add_worksheet(sanitize_sheet_name(sheet_name))

        title_format = workbook.add_format({
                'bold': True, 'font_size': 12, 'valign': 'vcenter'})
        header_format = workbook.add_format({
                'bold': True, 'bg_color': '#D9D9D9', 'text_wrap': True,
                'valign': 'vcenter', 'align': 'center', 'border': 1})
        formats = {}
        for kind, num_format in KINDS.items():
            formats[kind] = (workbook.add_format({'num_format': num_format})
                if num_format else None)

        for col, column in enumerate(columns):
            worksheet.set_column(col, col, _default_width(column))
        worksheet.freeze_panes(2, 0)

        # Row 1: title (constant_memory: rows strictly in order)
        title = '' if title is None else str(title)
        if ncols > 1:
            worksheet.merge_range(0, 0, 0, ncols - 1, title, title_format)
        else:
            worksheet.write_string(0, 0, title, title_format)
        worksheet.set_row(0, 22)

        # Row 2: headers
        for col, column in enumerate(columns):
            worksheet.write_string(1, col, str(column.header), header_format)

        kinds = [c.kind for c in columns]
        write_string = worksheet.write_string
        write_number = worksheet.write_number
        write_datetime = worksheet.write_datetime
        count = 0
        row_idx = 1
        for values in rows:
            row_idx += 1
            if len(values) > ncols:
                raise ValueError('Row %d has %d values for %d columns'
                    % (count + 1, len(values), ncols))
            for col, value in enumerate(values):
                if value is None:
                    continue
                kind = kinds[col]
                fmt = formats[kind]
                if kind in _NUMERIC_KINDS:
                    if isinstance(value, bool):
                        write_number(row_idx, col, int(value), fmt)
                    elif isinstance(value, int):
                        write_number(row_idx, col, value, fmt)
                    elif isinstance(value, (float, Decimal)):
                        value = float(value)
                        if math.isfinite(value):
                            write_number(row_idx, col, value, fmt)
                        # NaN / infinity: left empty
                    else:
                        write_string(row_idx, col, _text(value))
                elif kind in _DATE_KINDS:
                    if isinstance(value, (_dt.datetime, _dt.date)):
                        write_datetime(row_idx, col, value, fmt)
                    else:
                        write_string(row_idx, col, _text(value))
                else:
                    write_string(row_idx, col, _text(value))
            count += 1
            if progress and progress_every and count % progress_every == 0:
                progress(count)

        worksheet.autofilter(1, 0, 1 + count, ncols - 1)
    finally:
        workbook.close()

    if progress and (count == 0 or not progress_every
            or count % progress_every):
        progress(count)
    return count
