# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Benchmark of xlsx_export.write_xlsx alone (no database).

    python tests/bench/bench_export_pure.py [--rows 100000] [--out FILE]

run(args) returns a dict with rows, columns, seconds, file size and peak RSS
(resource.getrusage, i.e. the peak of the whole process so far, in MB).
Figures are printed, never asserted.
"""
import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "addons", "dh_metering"))
import xlsx_export  # noqa: E402
from xlsx_export import Column  # noqa: E402

COLUMNS = [
    Column('编号'),
    Column('level1'),
    Column('level2'),
    Column('level3'),
    Column('level4'),
    Column('用户名'),
    Column('表计地址'),
    Column('倍率', 'int'),
    Column('正向有功总电能', 'number'),
    Column('剩余电量', 'number3'),
    Column('钱包余额', 'money'),
    Column('抄读时间', 'datetime'),
    ]


def _rows(count):
    start = dt.datetime(2018, 9, 21, 0, 45, 10)
    for i in range(count):
        yield (str(i + 1), '唐渠', '瀚盛家园', str(i % 40), str(100 + i % 30),
            '瀚%d#%dA' % (i % 40, 100 + i % 30), '%012d' % (15085381 + i),
            1, Decimal(i) / 100 + Decimal('1232.21'),
            Decimal(i % 1000) / 1000 - 100, Decimal(i) / 7,
            start + dt.timedelta(seconds=i))


def _peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == 'darwin':  # bytes on macOS, kB on Linux
        return peak / 1024 / 1024
    return peak / 1024


def run(args=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--rows', type=int, default=100000)
    parser.add_argument('--out', default=None,
        help='output file (default: a temporary file, removed)')
    options = parser.parse_args(args)

    rss_before = _peak_rss_mb()
    if options.out:
        path, remove = options.out, False
    else:
        fd, path = tempfile.mkstemp(suffix='.xlsx')
        os.close(fd)
        remove = True
    try:
        start = time.perf_counter()
        count = xlsx_export.write_xlsx(path, '当前数据',
            xlsx_export.criteria_title('当前数据', [('片区', '唐渠')]),
            COLUMNS, _rows(options.rows))
        seconds = time.perf_counter() - start
        size = os.path.getsize(path)
    finally:
        if remove:
            os.unlink(path)
    result = {
        'rows': count,
        'columns': len(COLUMNS),
        'seconds': round(seconds, 2),
        'rows_per_second': round(count / seconds) if seconds else None,
        'file_mb': round(size / 1024 / 1024, 2),
        'peak_rss_mb_before': round(rss_before, 1),
        'peak_rss_mb': round(_peak_rss_mb(), 1),
        }
    return result


if __name__ == '__main__':
    for key, value in run(sys.argv[1:]).items():
        print('%s: %s' % (key, value))
