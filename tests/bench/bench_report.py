"""The daily matrix (日用量) for 100,000 meters × 31 days.

  dh bench report [--backend postgresql|sqlite] [--meters N] [--keep]

Daily aggregates are loaded straight into dh_usage_day (as ingest leaves
them); the report runs through the ORM as the client calls it: the first
page (search limit 100 + read) and the whole matrix (every row read, as an
export does)."""
import argparse
import datetime as dt
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402

DAYS = 31


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench report')
    parser.add_argument('--backend', default='postgresql',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--meters', type=int, default=100000)
    options = parser.parse_args(args)
    name = f'bench_report_{options.backend}'
    config = dbutil.create(options.backend, name)
    pool = dbutil.pool(config, name)
    from trytond.transaction import Transaction
    from trytond.modules.dh_metering import storage
    began = time.perf_counter()
    with Transaction().start(name, 0):
        meters = dbutil.bulk_meters(options.meters)
        cursor = Transaction().connection.cursor()
        start = dt.date(2026, 10, 1)
        rows = [(m, 'energy_total', start + dt.timedelta(days=d),
                (m % 97) * 1000 + d * 10, 1000000 + d * 10000,
                dt.datetime(2026, 10, 1) + dt.timedelta(days=d, hours=16))
            for m in meters for d in range(DAYS)]
        storage.bulk_upsert(cursor, 'dh_usage_day',
            ('meter', 'register', 'period', 'usage_e4', 'last_e4',
                'last_at'), rows, '(meter, register, period) DO NOTHING')
        if options.backend == 'postgresql':
            cursor.execute('ANALYZE dh_usage_day')
            cursor.execute('ANALYZE dh_meter')
    setup = time.perf_counter() - began
    Matrix = pool.get('dh.report.daily_matrix')
    fields = ['number', 'level1', 'level2', 'level3', 'level4', 'name'] + [
        f'd{d:02d}' for d in range(1, 32)] + ['total']
    context = {'year': 2026, 'month': '10', 'register': 'energy_total'}
    figures = {}
    # what the web client does: the first page of 100 rows, sorted
    timings = []
    for _ in range(3):
        with Transaction().start(name, 0, readonly=True, context=context):
            t0 = time.perf_counter()
            records = Matrix.search([], limit=100, order=[('number', 'ASC')])
            page = Matrix.read([r.id for r in records], fields)
            timings.append(time.perf_counter() - t0)
    figures['first_page_100_seconds'] = round(min(timings), 3)
    # what an export does: every row, ids from the search query, columns
    # read in pages of 2,000
    timings = []
    for _ in range(2):
        with Transaction().start(name, 0, readonly=True, context=context):
            t0 = time.perf_counter()
            cursor = Transaction().connection.cursor()
            cursor.execute(*Matrix.search([], order=[('number', 'ASC')],
                    query=True))
            ids = [i for i, in cursor]
            table = Matrix.__table__()
            from sql import Column
            data = []
            for i in range(0, len(ids), 2000):
                cursor.execute(*table.select(table.id,
                        *[Column(table, f) for f in fields],
                        where=table.id.in_(ids[i:i + 2000])))
                data.extend(cursor.fetchall())
            timings.append(time.perf_counter() - t0)
    figures['full_matrix_seconds'] = round(min(timings), 3)
    figures['full_matrix_rows'] = len(data)
    # the same query straight in SQL (what the database itself costs)
    with Transaction().start(name, 0, readonly=True, context=context):
        query = Matrix.table_query()
        cursor = Transaction().connection.cursor()
        t0 = time.perf_counter()
        cursor.execute(*query)
        n = len(cursor.fetchall())
        figures['sql_only_seconds'] = round(time.perf_counter() - t0, 3)
        figures['sql_only_rows'] = n
    total = sum(row[-1] or 0 for row in data)
    assert len(page) == 100
    return {'backend': options.backend, 'meters': options.meters,
        'days': DAYS, 'daily_rows': len(rows), 'setup_seconds': round(setup),
        **figures, 'check_total_kwh': round(total, 2),
        'goal_seconds': 2.0}
