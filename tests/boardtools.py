"""A real trytond server for the wall status board (状态报警界面) on a
throw-away database (SQLite file, or PostgreSQL in the PostgreSQL pass)
with N meters (default 3,500) in the product's colours, open alarms on the
yellow and red ones, and an area manager of one community.

  python tests/boardtools.py seed CONFIG DATABASE N   (used by server())"""
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dbtools  # noqa: E402

BIN = dbtools.BIN
ADMIN_PASSWORD = 'admin-Secret-123'      # dbtools' administrator
MANAGER = 'board_manager'
MANAGER_PASSWORD = 'boardMgr-2026x'
COMMUNITIES = ['培元新苑', '瀚盛家园', '东政花园', '海景湾', '唐渠小区',
    '金桂苑', '银杏里', '紫荆城', '翠湖居', '锦绣苑']
# one meter in ten of each state but normal: 7 normal, then alarm, cut
# off, fault; one in 50 offline
STATES = ['normal'] * 7 + ['alarm', 'cutoff', 'fault']


def state_of(i):
    return 'offline' if i % 50 == 49 else STATES[i % 10]


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def seed(config, name, count):
    "count meters in 10 communities, states, alarms, the manager"
    from trytond import config as tconfig
    tconfig.update_etc(config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    Pool.start()
    pool = Pool(name)
    with Transaction().start(name, 0, readonly=True):
        pool.init()
    sys.path.insert(0, os.path.join(HERE, 'bench'))
    import dbutil
    from trytond import backend
    p = '%s' if backend.name == 'postgresql' else '?'
    with Transaction().start(name, 0) as transaction:
        ids = dbutil.bulk_meters(count, prefix='P')
        Area = pool.get('dh.area')
        cursor = transaction.connection.cursor()
        communities = Area.search([('level', '=', '2')], order=[('id', 'ASC')])
        for community, label in zip(communities, COMMUNITIES):
            Area.write([community], {'name': label})
        cursor.execute('SELECT m.id, a2.name, m.level3, m.level4 FROM dh_meter m'
            ' JOIN dh_area a2 ON a2.id = m.area_l2 ORDER BY m.id')
        rows = cursor.fetchall()
        updates = []
        for i, (meter_id, community, building, room) in enumerate(rows):
            label = (f'{community}{int(building) + 10}#{int(room) + 1300}'
                f'{"ABCD"[i // 1000 % 4]}')
            if i % 97 == 5:
                label = f'赵敏 E{100 + i % 9}-{101 + i % 9}'
            state = state_of(i)
            relay = 'open' if state == 'cutoff' else 'closed'
            updates.append((label, state, relay, community, meter_id))
        cursor.executemany(f'UPDATE dh_meter SET name = {p}, state = {p}, '
            f'relay = {p}, level2 = {p} WHERE id = {p}', updates)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        alarms = []
        for i, meter_id in enumerate(ids):
            state = state_of(i)
            if state == 'alarm':
                alarms.append((meter_id, 'over_voltage', 'open',
                        now - dt.timedelta(minutes=i % 600), 251.5, 240))
                if i % 20 == 7:
                    alarms.append((meter_id, 'day_usage', 'acknowledged',
                            now - dt.timedelta(hours=2), 35, 30))
            elif state == 'fault':
                alarms.append((meter_id, 'relay_mismatch', 'open',
                        now - dt.timedelta(minutes=i % 300), None, None))
            elif state == 'offline':
                alarms.append((meter_id, 'offline', 'open',
                        now - dt.timedelta(hours=3), None, 180))
        # a closed one is not shown
        alarms.append((ids[0], 'over_current', 'closed',
                now - dt.timedelta(days=1), 45, 40))
        cursor.executemany('INSERT INTO dh_alarm (meter, kind, state, start, '
            f'value, threshold, create_uid, create_date) VALUES ({p}, {p}, '
            f'{p}, {p}, {p}, {p}, 0, {p})',
            [row + (now,) for row in alarms])
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        manager_group = ModelData.get_id('dh_metering', 'group_dh_manager')
        User.create([{'login': MANAGER, 'name': '片区经理',
                    'password': MANAGER_PASSWORD, 'language': None,
                    'groups': [('add', [manager_group])],
                    'dh_areas': [('add', [communities[0].id])]}])
        Lang = pool.get('ir.lang')
        chinese = Lang.search([('code', '=', 'zh_CN'),
                ('translatable', '=', True)])
        if chinese:
            admin, = User.search([('login', '=', 'admin')])
            User.write([admin] + User.search([('login', '=', MANAGER)]),
                {'language': chinese[0].id})
        # the administrator's first sign-in would open the module
        # configuration wizard
        cursor.execute("UPDATE ir_module_config_wizard_item SET state = 'done'")
        cursor.execute('SELECT COUNT(*) FROM dh_meter WHERE area_l2 = '
            f'{p}', (communities[0].id,))
        print('MANAGER_METERS', cursor.fetchone()[0], flush=True)


class Server:
    def __init__(self, name, count=3500, chinese=False):
        self.name = name
        self.count = count
        self.folder, self.config = dbtools.create(name, 'dh_alarm',
            '[queue]\nworker = False\n'
            '[web]\nroot = ' + os.path.join(os.path.dirname(HERE),
                'node_modules', 'tryton-sao') + '\n')
        if chinese:
            # the web client in Chinese: zh_CN loaded with a module update
            subprocess.run([os.path.join(BIN, 'trytond-admin'), '-c',
                    self.config, '-d', name, '--all', '-l',
                    'zh_CN'], check=True, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, timeout=600)
        seeded = subprocess.run([sys.executable, __file__, 'seed',
                self.config, name, str(count)], capture_output=True,
            text=True, check=True, timeout=600)
        self.manager_meters = int(seeded.stdout.split('MANAGER_METERS')[1])
        self.port = free_port()
        with open(self.config, 'a') as handle:
            handle.write(f'listen = 127.0.0.1:{self.port}\n')
        self.log = open(os.path.join(self.folder, 'trytond.log'), 'w')
        self.process = subprocess.Popen([os.path.join(BIN, 'trytond'), '-c',
                self.config, '-d', name], stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, TRYTOND_DATABASE_NAMES=name))
        self.url = f'http://127.0.0.1:{self.port}'
        for _ in range(300):
            try:
                requests.get(self.url + '/', timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        self.board = f'{self.url}/{name}/dh/board'

    def login(self, login, password):
        "The web client's sign-in: the tryton_session cookie's value"
        r = requests.post(f'{self.url}/{self.name}/session/login',
            json={'method': 'common.db.login',
                'params': [login, {'password': password}, 'zh_CN']},
            timeout=30)
        r.raise_for_status()
        return r.cookies.get('tryton_session') or \
            r.headers['Set-Cookie'].split('tryton_session=')[1].split(';')[0]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == '__main__' and sys.argv[1] == 'seed':
    seed(sys.argv[2], sys.argv[3], int(sys.argv[4]))
