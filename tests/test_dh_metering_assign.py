"""权限分配 on a real trytond server over JSON-RPC: an area manager of 唐渠
with two meters of 东政 ticked for him (through the administrator's screen)
sees exactly his area's meters plus those two, and not a third."""
import base64
import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(__file__))
import browsertools  # noqa: E402
import dbtools  # noqa: E402
from apitools import free_port  # noqa: E402

BIN = os.path.dirname(sys.executable)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = browsertools.OUTPUT
NAME = f'dhassign{os.getpid()}'
PASSWORD = 'Manager-Pass-2026x'
PLAZA = {
    '唐渠': {'瀚盛家园': {'15': ['601', '602']}},
    '东政': {'东区': {'2': ['301', '302']}},
    }


def seed(pool):
    from trytond.modules.dh_metering.tests.tools import (
        create_areas, create_meter)
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    areas = create_areas(PLAZA)
    ids = {}
    for i, (path, name) in enumerate([
                (('唐渠', '瀚盛家园', '15', '601'), '瀚15#601A'),
                (('唐渠', '瀚盛家园', '15', '602'), '瀚15#602A'),
                (('东政', '东区', '2', '301'), '东2#301A'),
                (('东政', '东区', '2', '301'), '东2#301B'),
                (('东政', '东区', '2', '302'), '东2#302A'),
                ]):
        ids[name] = create_meter(areas[path], str(100 + i), name,
            str(15085300 + i)).id
    manager = ModelData.get_id('dh_metering', 'group_dh_manager')
    zh, = pool.get('ir.lang').search([('code', '=', 'zh_CN')])
    user, = User.create([{'login': 'manager_tangqu', 'name': '唐渠片区经理',
                'password': PASSWORD, 'groups': [('add', [manager])],
                'language': zh.id,
                'dh_areas': [('add', [areas['唐渠',].id])]}])
    User.write(User.search([('login', '=', 'admin')]), {'language': zh.id})
    # no module configuration wizard at the administrator's first sign-in
    Item = pool.get('ir.module.config_wizard.item')
    Item.write(Item.search([]), {'state': 'done'})
    ids['user'] = user.id
    return ids


@pytest.fixture(scope='module')
def server():
    port = free_port()
    sao = os.path.join(ROOT, 'node_modules', 'tryton-sao')
    folder, config = dbtools.create(NAME, 'dh_metering',
        f'[web]\nlisten = 127.0.0.1:{port}\nroot = {sao}\n')
    subprocess.run([os.path.join(BIN, 'trytond-admin'), '-c', config, '-d',
            NAME, '-u', 'dh_metering', '-l', 'zh_CN'], check=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    from trytond.modules.dh_collector import collectd
    ids = collectd.Database(config, NAME)._run(seed)
    log = open(os.path.join(folder, 'server.log'), 'wb')
    process = subprocess.Popen([os.path.join(BIN, 'trytond'), '-c', config,
            '-d', NAME], stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, TRYTOND_DATABASE_NAMES=NAME))
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url + '/', timeout=1)
            break
        except requests.ConnectionError:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    yield url, ids
    process.terminate()
    process.wait(10)
    log.close()
    shutil.rmtree(folder, ignore_errors=True)
    if dbtools.PG:
        import psycopg
        with psycopg.connect(dbtools.PG_URI + 'postgres',
                autocommit=True) as conn:
            # the seeding pool of this process still holds connections
            conn.execute('SELECT pg_terminate_backend(pid) FROM '
                'pg_stat_activity WHERE datname = %s', (NAME,))
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}"')


class RPC:
    def __init__(self, url, login, password):
        self.url = f'{url}/{NAME}/rpc/'
        uid, token = self.call('common.db.login',
            [login, {'password': password}, 'zh_CN'])[:2]
        self.auth = 'Session ' + base64.b64encode(
            f'{login}:{uid}:{token}'.encode()).decode()

    def call(self, method, params):
        headers = {'Authorization': self.auth} if hasattr(self, 'auth') else {}
        r = requests.post(self.url, json={'id': 1, 'method': method,
                'params': params}, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        if body.get('error'):
            raise RuntimeError(body['error'])
        return body['result']


def form(defaults, **changes):
    "The values sao sends back (get_on_change_value: no 'field.' keys)"
    values = {k: v for k, v in defaults.items() if '.' not in k}
    values['lines'] = [{k: v for k, v in l.items() if '.' not in k}
        for l in values.get('lines') or []]
    values.update(changes)
    return values


def names(rpc):
    return sorted(m['name'] for m in rpc.call('model.dh.meter.search_read',
            [[], 0, None, None, ['name', 'area.rec_name'], {}]))


def test_manager_sees_his_area_and_two_ticked_meters(server):
    url, ids = server
    admin = RPC(url, 'admin', 'admin-Secret-123')
    manager = RPC(url, 'manager_tangqu', PASSWORD)
    assert names(manager) == ['瀚15#601A', '瀚15#602A']

    # the administrator's screen (权限分配): fuzzy search, tick two, save
    wizard = 'wizard.dh.meter.assign'
    session, start, _ = admin.call(wizard + '.create', [{}])
    context = {'active_model': 'res.user', 'active_id': ids['user'],
        'active_ids': [ids['user']]}
    shown = admin.call(wizard + '.execute', [session, {}, start, context])
    view = shown['view']
    assert view['defaults']['user'] == ids['user']
    assert view['defaults']['total'] == 5
    values = form(view['defaults'], text='东2#301', match='fuzzy')
    shown = admin.call(wizard + '.execute',
        [session, {start: values}, 'search', context])
    lines = shown['view']['defaults']['lines']
    assert [l['name'] for l in lines] == ['东2#301A', '东2#301B']
    assert not any(l['selected'] for l in lines)
    values = form(shown['view']['defaults'])
    values['lines'] = [dict(l, selected=True) for l in values['lines']]
    shown = admin.call(wizard + '.execute',
        [session, {start: values}, 'save', context])
    assert all(l['selected'] for l in shown['view']['defaults']['lines'])
    # 切换: the assigned ones only
    shown = admin.call(wizard + '.execute',
        [session, {start: form(shown['view']['defaults'], text='')},
            'switch', context])
    assert shown['view']['defaults']['show'] == 'assigned'
    assert sorted(l['name'] for l in shown['view']['defaults']['lines']) \
        == ['东2#301A', '东2#301B']
    admin.call(wizard + '.delete', [session, {}])

    # exactly the two extra meters, with the way up to them
    assert names(manager) == ['东2#301A', '东2#301B', '瀚15#601A', '瀚15#602A']
    areas = {a['rec_name'] for a in manager.call(
            'model.dh.area.search_read',
            [[], 0, None, None, ['rec_name'], {}])}
    assert '东政/东区/2/301' in areas and '东政/东区/2/302' not in areas
    with pytest.raises(RuntimeError):
        manager.call('model.dh.meter.read', [[ids['东2#302A']], ['name'], {}])
    # and never as writer
    with pytest.raises(RuntimeError):
        manager.call('model.dh.meter.write',
            [[ids['东2#301A']], {'name': 'x'}, {}])
    # the admin sees every meter and the ticks on the user
    user, = admin.call('model.res.user.read',
        [[ids['user']], ['dh_meters'], {}])
    assert sorted(user['dh_meters']) == sorted(
        [ids['东2#301A'], ids['东2#301B']])


@pytest.mark.sqlite_only
def test_browser_assign_screen(server):
    "sao in headless chromium: 档案管理 › 权限分配 with its check boxes"
    url, ids = server
    browsertools.require_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = browsertools.launch(p)
        page = browser.new_page(viewport={'width': 1400, 'height': 900},
            locale='zh-CN')
        browsertools.sao_sign_in(page, url, NAME, 'admin',
            'admin-Secret-123')
        try:
            page.get_by_text('集抄系统', exact=True).first.wait_for(
                timeout=30000)
        finally:
            page.screenshot(path=os.path.join(OUTPUT, 'assign_login.png'))
        page.get_by_text('集抄系统', exact=True).first.click()
        page.get_by_text('档案管理', exact=True).first.click()
        page.get_by_text('权限分配', exact=True).first.click()
        dialog = page.locator('.modal-dialog:visible, #tabcontent').last
        user = dialog.locator('input[type=input], input[type=text]').first
        user.wait_for(timeout=30000)
        user.fill('唐渠片区经理')
        user.press('Tab')
        page.wait_for_timeout(1500)
        # sao's search dialog for the user: pick him, OK
        search = page.locator('.modal-dialog:visible').last
        if search.get_by_text('manager_tangqu', exact=True).count():
            search.get_by_text('manager_tangqu', exact=True).first.dblclick()
            page.wait_for_timeout(1500)
        page.screenshot(path=os.path.join(OUTPUT, 'assign_user.png'))
        page.locator('button:visible', has_text='查询').last.click()
        page.get_by_text('东2#301A', exact=True).first.wait_for(timeout=30000)
        page.wait_for_timeout(1000)
        # tick 东2#302A (the column 分配; the first box selects the row)
        row = page.locator('tr:visible', has_text='东2#302A').first
        row.locator('input[type=checkbox]').last.click()
        page.wait_for_timeout(500)
        page.screenshot(path=os.path.join(OUTPUT, 'assign_meters.png'))
        text = page.locator('body').inner_text()
        page.locator('button:visible', has_text='保存').last.click()
        page.wait_for_timeout(2000)
        browser.close()
    for label in ['模糊查询', '切换', '保存', '分配', '瀚15#601A', '东2#302A']:
        assert label in text, label
    manager = RPC(url, 'manager_tangqu', PASSWORD)
    assert '东2#302A' in names(manager)
