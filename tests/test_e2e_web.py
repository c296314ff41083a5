"""End to end on the embedded default: `dh demo --no-serve` builds a (small)
plaza, a real trytond serves it, JSON-RPC and the sao web client in headless
Debian chromium show an area manager only his meters."""
import base64
import os
import shutil
import subprocess
import sys

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browsertools  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
WORK = os.path.join(ROOT, 'var', 'test', 'e2e')
OUTPUT = browsertools.OUTPUT
DB = 'dhe2e'
PASSWORD = 'dhDemo-2026x'

pytestmark = pytest.mark.sqlite_only



def dh_demo(port):
    return subprocess.run([os.path.join(BIN, 'dh'), 'demo', '--no-serve',
            '--db', os.path.join(WORK, f'{DB}.sqlite'), '--port', str(port),
            '--scale', '0.1', '--days', '2'],
        capture_output=True, text=True, timeout=600, cwd=ROOT)


def summary(output):
    line, = [l for l in output.splitlines() if l.startswith('SUMMARY:')]
    return dict(item.split('=') for item in line.split()[1:])


@pytest.fixture(scope='module')
def server():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    port = browsertools.demo_port()
    built = dh_demo(port)
    assert built.returncode == 0, built.stdout + built.stderr
    first = summary(built.stdout)
    assert int(first['meters']) > 200 and int(first['readings']) > 10000
    assert 'manager_tangqu / dhDemo-2026x' in built.stdout
    # a second run upgrades and keeps the data as it is
    again = dh_demo(port)
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'upgrading' in again.stdout
    second = summary(again.stdout)
    assert {k: second[k] for k in ['areas', 'meters', 'channels']} == {
        k: first[k] for k in ['areas', 'meters', 'channels']}
    # the history is kept as it was; only the first run's live collection
    # round (from the simulator) was added
    assert int(first['collected']) > 0
    assert int(second['readings']) == (
        int(first['readings']) + int(first['collected']))

    with browsertools.demo_server(WORK, DB, port) as url:
        yield url


class RPC:
    def __init__(self, url, login, password):
        self.url = f'{url}/{DB}/rpc/'
        uid, token = self.call('common.db.login',
            [login, {'password': password}, 'zh_CN'])[:2]
        self.auth = 'Session ' + base64.b64encode(
            f'{login}:{uid}:{token}'.encode()).decode()

    def call(self, method, params):
        headers = {'Authorization': self.auth} if hasattr(self, 'auth') else {}
        r = requests.post(self.url, json={'id': 1, 'method': method,
                'params': params}, headers=headers, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f'HTTP {r.status_code}')
        body = r.json()
        if body.get('error'):
            raise RuntimeError(body['error'])
        return body['result']


def test_jsonrpc_record_rules(server):
    "Over JSON-RPC the area manager of 唐渠 sees only 唐渠's meters"
    admin = RPC(server, 'admin', 'dhAdmin-2026x')
    manager = RPC(server, 'manager_tangqu', PASSWORD)
    everything = admin.call('model.dh.meter.search_read',
        [[], 0, None, None, ['level1'], {}])
    districts = {m['level1'] for m in everything}
    assert {'唐渠', '东政', '海景'} <= districts
    mine = manager.call('model.dh.meter.search_read',
        [[], 0, None, None, ['level1', 'name'], {}])
    assert mine and {m['level1'] for m in mine} == {'唐渠'}
    assert len(mine) == sum(m['level1'] == '唐渠' for m in everything)
    other = next(m['id'] for m in everything if m['level1'] == '东政')
    with pytest.raises(RuntimeError):
        manager.call('model.dh.meter.read', [[other], ['name'], {}])
    # his readings and reports are limited the same way
    readings = manager.call('model.dh.meter.reading.search_count', [[], {}])
    all_readings = admin.call('model.dh.meter.reading.search_count', [[], {}])
    assert 0 < readings < all_readings
    with pytest.raises(RuntimeError):
        RPC(server, 'manager_tangqu', 'wrong password')


def test_browser_manager_sees_his_meters(server):
    "sao in headless chromium: Chinese menus, only 唐渠 in 当前数据"
    browsertools.require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = browsertools.launch(p)
        page = browser.new_page(viewport={'width': 1400, 'height': 900},
            locale='zh-CN')
        browsertools.sao_sign_in(page, server, DB, 'manager_tangqu',
            PASSWORD)
        page.get_by_text('集抄系统', exact=True).first.wait_for(timeout=30000)
        page.get_by_text('集抄系统', exact=True).first.click()
        page.get_by_text('报表', exact=True).first.click()
        page.get_by_text('当前数据', exact=True).first.click()
        page.locator('#tabcontent table').get_by_text(
            '唐渠', exact=True).first.wait_for(timeout=30000)
        page.wait_for_timeout(1000)
        page.screenshot(path=os.path.join(OUTPUT,
                'e2e_manager_current_data.png'))
        text = page.locator('#tabcontent').inner_text()
        browser.close()
    assert '唐渠' in text
    assert '东政' not in text and '海景' not in text
    assert '断电' in text and '正向有功总电能' in text


def test_export_in_background_worker(server):
    "The export wizard queues a job; `dh worker` (SQLite) runs it"
    manager = RPC(server, 'manager_tangqu', PASSWORD)
    session, state, _ = manager.call('wizard.dh.export.create', [{}])
    manager.call('wizard.dh.export.execute', [session, {'start': {
                    'report': 'current', 'match': 'fuzzy', 'level1': '唐',
                    'register': 'energy_total', 'granularity': 'day',
                    'year': 2026, 'month': '11'}}, 'export',
            {'active_model': 'dh.meter'}])
    jobs = manager.call('model.dh.export.job.search_read',
        [[], 0, None, None, ['state', 'rows', 'progress'], {}])
    assert [j['state'] for j in jobs] == ['queued']   # not in the request
    config = os.path.join(WORK, 'trytond.runtime.conf')
    subprocess.run([os.path.join(BIN, 'dh'), 'worker', '-c', config, '-d', DB,
            '--once'], check=True, timeout=300, cwd=ROOT)
    job, = manager.call('model.dh.export.job.search_read',
        [[], 0, None, None, ['state', 'rows', 'progress', 'filename'], {}])
    mine = manager.call('model.dh.meter.search_count', [[], {}])
    assert (job['state'], job['progress']) == ('done', 100)
    assert job['rows'] == mine
    assert job['filename'].endswith('.xlsx')
