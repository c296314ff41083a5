"""Readings/s through dh.meter.reading.ingest (idempotent upsert and the
hourly/daily/monthly/yearly aggregates included).

  dh bench ingest [--backend sqlite|postgresql] [--meters N] [--hours H]
                  [--batch B]
"""
import argparse
import datetime as dt
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench ingest')
    parser.add_argument('--backend', default='sqlite',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--meters', type=int, default=5000)
    parser.add_argument('--hours', type=int, default=48)
    parser.add_argument('--batch', type=int, default=50000)
    options = parser.parse_args(args)
    name = f'bench_ingest_{options.backend}'
    config = dbutil.create(options.backend, name)
    dbutil.pool(config, name)
    from trytond.transaction import Transaction
    with Transaction().start(name, 0):
        meters = dbutil.make_meters(options.meters)
    start = dt.datetime(2026, 10, 1)
    rows = [(m, 'energy_total', start + dt.timedelta(hours=h),
            1000 + h * 0.37 + (m % 7))
        for h in range(options.hours) for m in meters]
    Reading = dbutil.pool(config, name).get('dh.meter.reading')

    def load(rows):
        began = time.perf_counter()
        result = {'inserted': 0, 'duplicates': 0}
        for i in range(0, len(rows), options.batch):
            with Transaction().start(name, 0):
                r = Reading.ingest(rows[i:i + options.batch])
            result['inserted'] += r['inserted']
            result['duplicates'] += r['duplicates']
        return time.perf_counter() - began, result

    new_time, new = load(rows)
    dup_time, dup = load(rows[:len(rows) // 2])
    return {'backend': options.backend, 'meters': options.meters,
        'readings': len(rows), 'batch': options.batch,
        'new_readings_per_s': round(len(rows) / new_time),
        'new_seconds': round(new_time, 2), 'inserted': new['inserted'],
        'resent_readings_per_s': round(len(rows) // 2 / dup_time),
        'resent_duplicates': dup['duplicates'],
        'goal_readings_per_s': 100000}
