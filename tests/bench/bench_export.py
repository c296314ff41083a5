"""A 100,000-row Excel export through the export job (current data, 当前数据).

  dh bench export [--backend sqlite|postgresql] [--rows N]

The job runs in a fresh child process so its peak RSS is the export's own."""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dbutil  # noqa: E402


def child(config, name):
    dbutil.pool(config, name)
    import io
    import openpyxl
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Transaction().start(name, 0) as transaction:
        Job = Pool().get('dh.export.job')
        t0 = time.perf_counter()
        job = Job.create_job('current', {'match': 'fuzzy'})
        Job.run([job])
        elapsed = time.perf_counter() - t0
        job = Job(job.id)
        size = len(job.file)
        book = openpyxl.load_workbook(io.BytesIO(job.file), read_only=True)
        rows = book.active.max_row - 2
        state = job.state
        transaction.rollback()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({'seconds': round(elapsed, 2), 'rows': rows,
                'state': state, 'bytes': size,
                'peak_rss_mb': round(rss / 1024, 1),
                'rss_before_export_mb': round(rss_before / 1024, 1)}))


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench export')
    parser.add_argument('--backend', default='sqlite',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--rows', type=int, default=100000)
    options = parser.parse_args(args)
    name = f'bench_export_{options.backend}'
    config = dbutil.create(options.backend, name)
    dbutil.pool(config, name)
    from trytond.transaction import Transaction
    with Transaction().start(name, 0):
        dbutil.bulk_meters(options.rows)
    out = subprocess.run([sys.executable, __file__, '--child', config, name],
        capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {'backend': options.backend, **result, 'goal_seconds': 10,
        'goal_peak_rss_mb': 300}


if __name__ == '__main__' and sys.argv[1:2] == ['--child']:
    child(sys.argv[2], sys.argv[3])
