"""Wall time of `dh demo --no-serve` on a fresh database (goal ≤ 2 minutes).

  dh bench demo [--scale 1.0]"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench demo')
    parser.add_argument('--scale', default='1.0')
    options = parser.parse_args(args)
    folder = os.path.join(ROOT, 'var', 'bench', 'demo')
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'dh'),
            'demo', '--no-serve', '--db', os.path.join(folder, 'bench.sqlite'),
            '--scale', options.scale], capture_output=True, text=True,
        check=True)
    elapsed = time.perf_counter() - t0
    line, = [l for l in out.stdout.splitlines() if l.startswith('SUMMARY:')]
    summary = dict(item.split('=') for item in line.split()[1:])
    return {'seconds': round(elapsed, 1), **{k: int(v) for k, v in
            summary.items() if k != 'seconds'}, 'goal_seconds': 120}
