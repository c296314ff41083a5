"""docs/examples/integrate.py, the integrator's example of docs/jsonrpc.md,
run as it is against the running API test server: JSON-RPC with requests,
the HTTP API with a token, proteus over XML-RPC."""
import json
import os
import subprocess
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitools  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'docs', 'examples', 'integrate.py')


def test_example_script():
    api = apitools.server()
    result = subprocess.run([sys.executable, SCRIPT,
            '--url', f'http://127.0.0.1:{api.port}', '--db', apitools.NAME,
            '--login', 'admin', '--password', 'admin-Secret-123',
            '--token', api.keys['tangqu'], '--device', '203',
            '--amount', '12.34', '--txn-no', 'EXAMPLE-1'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    steps = {}
    for line in result.stdout.splitlines():
        step = json.loads(line)
        steps[step.pop('step')] = step
    assert list(steps) == ['login', 'search_read', 'wallet', 'logout',
        'balance', 'recharge', 'replay', 'result', 'proteus']
    assert steps['search_read']['meter']['name'] == '瀚15#601B'
    assert steps['wallet']['code'] == 'W000002'
    assert steps['recharge']['amount'] == '12.34'
    assert Decimal(steps['recharge']['wallet_after']) == Decimal(
        steps['balance']['balance']) + Decimal('12.34')
    assert steps['replay'] == {'replayed': True,
        'wallet_after': steps['recharge']['wallet_after']}
    assert steps['result']['txn_no'] == 'EXAMPLE-1'
    assert steps['proteus']['wallet'] == 'W000002'
    assert Decimal(steps['proteus']['balance']) == Decimal(
        steps['recharge']['wallet_after'])


def test_example_script_reports_errors():
    "A wrong token: the API's error code on stderr, exit 1"
    api = apitools.server()
    result = subprocess.run([sys.executable, SCRIPT,
            '--url', f'http://127.0.0.1:{api.port}', '--db', apitools.NAME,
            '--password', 'admin-Secret-123', '--token', 'dh_wrong',
            '--device', '203', '--no-proteus'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert 'unauthorized' in result.stderr
