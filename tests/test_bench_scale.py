"""`dh bench scale` at a toy size (1,000 meters, one day of hours) on
PostgreSQL, so that the million-meter benchmark's generator and its
measurements cannot rot: every figure is produced and the data it reads
back is the data it generated.  Speed is not asserted."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.postgresql_only

BIN = os.path.dirname(sys.executable)


def test_scale_smoke():
    name = f'scale_smoke_{os.getpid()}'
    result = subprocess.run([os.path.join(BIN, 'dh'), 'bench', 'scale',
            '--meters', '1000', '--days', '3', '--hourly-days', '1',
            '--bill', '50,100', '--clients', '2', '--seconds', '1',
            '--name', name], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    tables = figures['storage']['tables']
    assert tables['dh_reading']['rows'] == 1000 * 24
    assert tables['dh_usage_hour']['rows'] == 1000 * 24
    assert tables['dh_usage_day']['rows'] == 1000 * 3
    assert tables['dh_usage_month']['rows'] == 1000
    assert figures['storage']['hourly_bytes_per_meter_day'] > 0
    assert figures['ingest']['inserted'] == 1000
    runs = figures['billing']['runs']
    assert [r['meters'] for r in runs] == [50, 100]
    # a flat tariff, one new hour each: one wallet line per meter
    assert [r['wallet_lines'] for r in runs] == [50, 100]
    report = figures['report']
    assert report['all_rows'] == 1000
    assert report['area_rows'] == 1000  # one community of 10,000 places
    api = figures['api_balance']
    for run in (api['loaded'], api['two_clients']):
        assert run['requests'] > 0
        assert set(run['statuses']) == {'200'}
    import psycopg
    uri = os.environ.get('DH_POSTGRES_URI',
        'postgresql://postgres@127.0.0.1:5432/')
    with psycopg.connect(uri + 'postgres') as conn:
        assert not conn.execute('SELECT 1 FROM pg_database WHERE '
            'datname = %s', (name,)).fetchone(), 'database not dropped'
