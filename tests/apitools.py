"""A real trytond server with dh_api on a throw-away database (a SQLite file,
or PostgreSQL in the PostgreSQL pass), seeded with a small plaza and a few
tokens, shared by the API test files of one pytest run (started once,
stopped at exit)."""
import atexit
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from decimal import Decimal

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

NAME = 'dh_api_it'
BIN = dbtools.BIN
D = Decimal
# the month the usage tests read (local time)
MONTH = '2025-03'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def seed(pool):
    """The plaza: 唐渠 (rooms 601, 602), 东政 (meter 2001, the product's
    worked example) and FUZZ (meters the schema fuzzer may hit)"""
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_metering.tests.tools import (
        create_areas, create_meter)
    from trytond.transaction import Transaction
    company = setup_accounting()
    ids = {'company': company.id}
    # the administrator works in the company (JSON-RPC and proteus clients)
    User = pool.get('res.user')
    admin, = User.search([('login', '=', 'admin')])
    User.write([admin], {'companies': [('add', [company.id])],
            'company': company.id})
    with set_company(company):
        Party = pool.get('party.party')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        Command = pool.get('dh.command')
        areas = create_areas({
                '唐渠': {'瀚盛家园': {'15': ['601', '602']}},
                '东政': {'东政': {'东政': ['东政']}},
                'FUZZ': {'F': {'F': ['F']}}})
        for key, area in areas.items():
            ids['area:' + '/'.join(key)] = area.id
        zhang, li, fuzz = Party.create([
                {'name': '张伟', 'contact_mechanisms': [('create', [
                                {'type': 'mobile', 'value': '13800000001'},
                                {'type': 'email', 'value': 'zw@example.com'}
                                ])]},
                {'name': '李娜', 'contact_mechanisms': [('create', [
                                {'type': 'phone', 'value': '0571-88880000'}
                                ])]},
                {'name': 'Fuzz'}])
        w1, w2, w3 = Wallet.create([{'party': zhang.id},
                {'party': li.id}, {'party': fuzz.id}])
        tariff = flat_tariff('1.2')
        room601 = areas['唐渠', '瀚盛家园', '15', '601']
        room602 = areas['唐渠', '瀚盛家园', '15', '602']
        dz = areas['东政', '东政', '东政', '东政']
        ff = areas['FUZZ', 'F', 'F', 'F']
        meters = {
            '2001': create_meter(dz, '2001', '东政', '16005628',
                billing_mode='energy', tariff=tariff.id, wallet=w1.id,
                password='000000'),
            '202': create_meter(room601, '202', '瀚15#601A', '15085381',
                billing_mode='cash', tariff=tariff.id, wallet=w2.id),
            '203': create_meter(room601, '203', '瀚15#601B', '15085377',
                billing_mode='cash', tariff=tariff.id, wallet=w2.id,
                multiplier=D(30)),
            '201': create_meter(room601, '201', '瀚15#601公', '14022114',
                tariff=tariff.id, role='public'),
            '204': create_meter(room602, '204', '瀚15#602A', '15085390',
                billing_mode='postpaid'),
            'W1': create_meter(room602, 'W1', '瀚15#602水',
                '14000000000501', utility='water', billing_mode='cash',
                tariff=tariff.id, wallet=w2.id),
            '1': create_meter(ff, '1', 'F1', '000000000001',
                billing_mode='cash', tariff=tariff.id, wallet=w3.id),
            'A': create_meter(ff, 'A', 'FA', '000000000002',
                billing_mode='energy', tariff=tariff.id, wallet=w3.id),
            }
        for number, meter in meters.items():
            ids[number] = meter.id
        ids['w1'], ids['w2'], ids['w3'] = w1.id, w2.id, w3.id
        Wallet.post_lines(w1, [{'kind': 'adjustment',
                    'amount': D('0.40'), 'description': 'opening'}])
        Wallet.post_lines(w2, [{'kind': 'adjustment',
                    'amount': D('50.00'), 'description': 'opening'}])
        Wallet.post_lines(w3, [{'kind': 'adjustment',
                    'amount': D('1000.00'), 'description': 'opening'}])
        # readings: meter 202 every local midnight of March 2025 + 1 day
        # (7.5 kWh a day), meter 203 on three days (x30)
        tz = dt.timezone(dt.timedelta(hours=8))
        rows = []
        for day in range(0, 32):
            local = dt.datetime(2025, 3, 1, tzinfo=tz) + dt.timedelta(
                days=day)
            at = local.astimezone(dt.timezone.utc).replace(tzinfo=None)
            rows.append((meters['202'].id, 'energy_total', at,
                    D('1000') + D('7.5') * day))
            if day in (0, 1, 2):
                rows.append((meters['203'].id, 'energy_total', at,
                        D('100') + D('0.1') * day))
        with Transaction().set_context(dh_no_billing=True):
            pool.get('dh.meter.reading').ingest(rows)
        # 203 is in fault, 204 tripped, 2001 offline-free; a failed command
        Meter.write([meters['203']], {'state': 'fault'})
        Meter.write([meters['204']], {'relay': 'open'})
        command, = Command.queue([meters['202']], 'read')
        Command.report(command.id, 'sent')
        Command.write([command], {'max_attempts': 1})
        Command.report(command.id, 'failed', error='timeout')
    return ids


def make_tokens(pool, ids):
    Token = pool.get('dh.api.token')
    Area = pool.get('dh.area')
    keys = {}
    for name, scopes, areas in [
            ('all', ['read', 'recharge', 'control'], None),
            ('read', ['read'], None),
            ('recharge', ['recharge'], None),
            ('tangqu', ['read', 'recharge', 'control'], ['唐渠']),
            ('dongzheng', ['read', 'recharge', 'control'], ['东政']),
            ('fuzz', ['read', 'recharge', 'control'], ['FUZZ']),
            ('revoked', ['read'], None)]:
        area_records = [Area(ids['area:' + a]) for a in areas or []]
        token, key = Token.create_token(name, scopes, area_records,
            all_areas=areas is None)
        keys[name] = key
        ids['token:' + name] = token.id
    Token.revoke([Token(ids['token:revoked'])])
    return keys


class Server:
    def __init__(self):
        self.port = free_port()
        self.folder, self.config = dbtools.create(NAME, 'dh_api',
            f'retry = 10\n[web]\nlisten = 127.0.0.1:{self.port}\n'
            '[queue]\nworker = False\n')
        # the Chinese messages (Accept-Language: zh-CN)
        subprocess.run([os.path.join(BIN, 'trytond-admin'), '-c',
                self.config, '-d', NAME, '-u', 'dh_api', '-l', 'zh_CN'],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        from trytond.modules.dh_collector import collectd
        self.db = collectd.Database(self.config, NAME)
        self.ids = self.db._run(seed)
        self.keys = self.db._run(lambda pool: make_tokens(pool, self.ids))
        self.log = open(os.path.join(self.folder, 'server.log'), 'wb')
        self.process = subprocess.Popen([os.path.join(BIN, 'trytond'),
                '-c', self.config, '-d', NAME], stdout=self.log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, TRYTOND_DATABASE_NAMES=NAME))
        self.base = f'http://127.0.0.1:{self.port}/{NAME}/dh/api/v1'
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.base + '/openapi.json',
                        timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or \
                    time.monotonic() > deadline:
                raise RuntimeError('trytond did not start: '
                    + open(os.path.join(self.folder, 'server.log')).read())
            time.sleep(0.2)

    def post(self, call, body=None, token='all', raw=None, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            key = self.keys.get(token, token)
            hdrs['Authorization'] = f'Bearer {key}'
        if raw is not None:
            return requests.post(f'{self.base}/{call}', data=raw,
                headers=hdrs, timeout=60)
        return requests.post(f'{self.base}/{call}', json=body or {},
            headers=hdrs, timeout=60)

    def run(self, func, readonly=False):
        return self.db._run(func, readonly=readonly)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_server = None


def server():
    "The shared server (started on first use)"
    global _server
    if _server is None:
        _server = Server()
        atexit.register(_server.stop)
    return _server
