"""The tenant portal on a real trytond server over a real socket (a SQLite
file, or PostgreSQL in the PostgreSQL pass), WeChat played by the loopback
fake in this process (real RSA / AES-GCM both ways), seeded with two
tenants (张伟: one room; 李娜: two rooms and an energy-mode meter on one
wallet) and shared by the portal test files of one pytest run."""
import atexit
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from decimal import Decimal

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

NAME = 'dh_wechat_it'
BIN = dbtools.BIN
D = Decimal
PASSWORD = 'dhTenant-2026x'
WECHAT_UA = ('Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) '
    'AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 '
    'MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def seed(pool, fake, port):
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_billing.tests.tools import setup_accounting
    from trytond.modules.dh_metering.tests.tools import create_meter
    from trytond.modules.dh_wechat.tests import tools
    from trytond.transaction import Transaction
    company = setup_accounting()
    ids = {}
    with set_company(company):
        r = tools.tenants(company)
        config = tools.configure(company, fake, f'http://127.0.0.1:{port}',
            sandbox=True)
        ids['config'] = config.id
        ids['notify_key'] = config.notify_key
        for key, record in r.items():
            ids[key] = record.id
        WebUser = pool.get('web.user')
        Party = pool.get('party.party')
        wang, = Party.create([{'name': '王芳'}])
        WebUser.create([{'dh_login': 'wangfang', 'party': wang.id,
                    'password': PASSWORD}])
        # a month of readings on 瀚15#601A (daily usage 3 + day % 4 kWh) and
        # 瀚15#602A (twice that)
        tz = dt.timezone(dt.timedelta(hours=8))
        today = dt.datetime.now(tz).replace(hour=0, minute=0, second=0,
            microsecond=0)
        rows, value = [], D(1000)
        for back in range(40, -1, -1):
            at = (today - dt.timedelta(days=back)).astimezone(
                dt.timezone.utc).replace(tzinfo=None)
            rows.append((r['a'].id, 'energy_total', at, value))
            rows.append((r['b'].id, 'energy_total', at, value * 2))
            value += 3 + back % 4
        with Transaction().set_context(dh_no_billing=True):
            pool.get('dh.meter.reading').ingest(rows)
        # 李娜's room 602 shares a public meter (an allocation with basis)
        public = create_meter(r['b'].area, '210', '瀚15#602公', '14022114',
            tariff=r['tariff'].id, role='public', billing_mode='postpaid')
        start = (today - dt.timedelta(days=10)).astimezone(
            dt.timezone.utc).replace(tzinfo=None)
        end = (today - dt.timedelta(days=1)).astimezone(
            dt.timezone.utc).replace(tzinfo=None)
        with Transaction().set_context(dh_no_billing=True):
            pool.get('dh.meter.reading').ingest([
                    (public.id, 'energy_total', start, D(100)),
                    (public.id, 'energy_total', end, D(130))])
        pool.get('dh.allocation').allocate_public(public,
            start.date(), (today + dt.timedelta(days=1)).date(),
            members=[pool.get('dh.meter')(r['b'].id),
                pool.get('dh.meter')(r['c'].id)])
        # an open alarm and its message on 李娜's room 602
        Alarm = pool.get('dh.alarm')
        Alarm.create([{'meter': r['b'].id, 'kind': 'over_voltage',
                    'state': 'open', 'start': dt.datetime.utcnow(),
                    'value': D('262.4'), 'threshold': D(250)}])
        Notification = pool.get('dh.notification')
        Notification.notify('cutoff', {'meter': '瀚15#602A'},
            [('sms', '13800000002')], 'cutoff:seed', meter=r['b'].id)
    return ids


class Server:
    def __init__(self):
        from trytond.modules.dh_wechat.tests import tools
        self.port = free_port()
        self.fake = tools.fake().start()
        self.folder, self.config = dbtools.create(NAME, 'dh_wechat',
            f'retry = 10\n[web]\nlisten = 127.0.0.1:{self.port}\n'
            '[queue]\nworker = False\n[session]\nmax_attempt = 5\n')
        subprocess.run([os.path.join(BIN, 'trytond-admin'), '-c',
                self.config, '-d', NAME, '-u', 'dh_wechat', '-l', 'zh_CN'],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        from trytond.modules.dh_collector import collectd
        self.db = collectd.Database(self.config, NAME)
        self.ids = self.db._run(lambda pool: seed(pool, self.fake,
                self.port))
        self.log = open(os.path.join(self.folder, 'server.log'), 'wb')
        self.process = subprocess.Popen([os.path.join(BIN, 'trytond'),
                '-c', self.config, '-d', NAME], stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, TRYTOND_DATABASE_NAMES=NAME))
        self.root = f'http://127.0.0.1:{self.port}'
        self.base = f'{self.root}/{NAME}/dh/wx'
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.base + '/login', timeout=5,
                        allow_redirects=False).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or \
                    time.monotonic() > deadline:
                raise RuntimeError('trytond did not start: '
                    + open(os.path.join(self.folder, 'server.log')).read())
            time.sleep(0.2)

    def run(self, func, readonly=False):
        return self.db._run(func, readonly=readonly)

    # -- a tenant's browser ------------------------------------------------------
    def browser(self, wechat=False):
        session = requests.Session()
        if wechat:
            session.headers['User-Agent'] = WECHAT_UA
        return session

    def csrf(self, response):
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        return found.group(1) if found else None

    def login(self, session, login, password=PASSWORD, expect=303):
        page = session.get(self.base + '/login?manual=1')
        response = session.post(self.base + '/login', data={
                'csrf': self.csrf(page), 'login': login,
                'password': password}, allow_redirects=False)
        assert response.status_code == expect, response.text
        return response

    def bind(self, session, openid, login):
        """Through WeChat OAuth (the fake answers with ``openid``), then the
        password: the openid is bound and this session carries it"""
        self.fake.auto_openid = openid
        page = session.get(self.base + '/oauth')
        assert page.url.startswith(self.base + '/login'), page.url
        assert '绑定' in page.text
        response = session.post(self.base + '/login', data={
                'csrf': self.csrf(page), 'login': login,
                'password': PASSWORD}, allow_redirects=False)
        assert response.status_code == 303, response.text
        return response

    def form_token(self, session, path='/meters'):
        return self.csrf(session.get(self.base + '/account'))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        self.fake.stop()
        if not os.environ.get('DH_KEEP_TEST_DB'):
            shutil.rmtree(self.folder, ignore_errors=True)


_server = None


def server():
    "The shared server (started on first use)"
    global _server
    if _server is None:
        _server = Server()
        atexit.register(_server.stop)
    return _server
