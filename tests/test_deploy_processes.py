"""Several production processes on one database (docs/deploy.md): two
`dh web` (gunicorn) servers, a `dh cron` (trytond-cron) and a `dh queue`
(trytond-worker, PostgreSQL) — every one a real process.

* a tariff changed through one web server (JSON-RPC) is what billing uses
  in the cron process and in the other web server;
* Tryton's process caches stay coherent on PostgreSQL: an access right
  revoked through one server is refused at once by the other, which had
  it cached (``[cache] clean_timeout = 0``: LISTEN/NOTIFY);
* /<db>/dh/metrics answers what the database holds, whichever process is
  scraped: queue depth, notifications and commands by state, billing lag.
"""
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import requests

from trytond.modules.dh_collector import collectd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

PG = dbtools.PG
NAME = 'dh_deploy_procs'
BIN = dbtools.BIN
PASSWORD = 'admin-Secret-123'
D = Decimal
UTC = dt.timezone.utc
# clean_timeout = 0: cache invalidations by LISTEN/NOTIFY (PostgreSQL only:
# on SQLite trytond's cache check flips the one shared connection to
# autocommit, so a restarted transaction would keep its first attempt's
# writes; SQLite is the single-process demo's database anyway)
CONFIG = ('retry = 20\n'
    + ('[cache]\nclean_timeout = 0\n' if PG else '')
    + '[queue]\nworker = True\n'
    '[session]\nmax_attempt = 100\n')


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def now():
    return dt.datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def seed(pool):
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_metering.tests.tools import (
        create_areas, create_meter)
    from trytond.transaction import Transaction
    company = setup_accounting()
    User = pool.get('res.user')
    Group = pool.get('res.group')
    Data = pool.get('ir.model.data')
    admin, = User.search([('login', '=', 'admin')])
    User.write([admin], {'companies': [('add', [company.id])],
            'company': company.id})
    finance = Group(Data.get_id('dh_metering', 'group_dh_finance'))
    cashier, = User.create([{'name': 'Cashier', 'login': 'cashier',
                'password': PASSWORD, 'groups': [('add', [finance.id])]}])
    with set_company(company):
        Party = pool.get('party.party')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        party, = Party.create([{'name': '王芳'}])
        wallet, = Wallet.create([{'party': party.id}])
        Wallet.post_lines(wallet, [{'kind': 'adjustment',
                    'amount': D('500.00'), 'description': 'opening'}])
        tariff = flat_tariff('1.0')
        areas = create_areas({'部署': {'A': {'1': ['101']}}})
        meter = create_meter(areas['部署', 'A', '1', '101'], '9001', '部署表',
            '16000009001', billing_mode='cash', tariff=tariff.id,
            wallet=wallet.id)
        start = now() - dt.timedelta(hours=3)
        with Transaction().set_context(dh_no_billing=True):
            pool.get('dh.meter.reading').ingest([(meter.id, 'energy_total',
                        start, D('1000'))])
        Meter.start_billing([meter], start)
    return {'tariff': tariff.id, 'meter': meter.id, 'wallet': wallet.id,
        'company': company.id, 'cashier': cashier.id,
        'finance': finance.id,
        'cron_bill': Data.get_id('dh_billing', 'cron_bill')}


def ingest(db, meter_id, value, at):
    "A reading stored without billing it (billing is another process')"
    def run(pool):
        from trytond.transaction import Transaction
        with Transaction().set_context(dh_no_billing=True):
            pool.get('dh.meter.reading').ingest([(meter_id, 'energy_total',
                        at, D(value))])
    db._run(run)


def consumption(db, wallet_id):
    "The consumption lines of the wallet: [(amount, unit price)]"
    def run(pool):
        Line = pool.get('dh.wallet.line')
        return [(line.amount, line.unit_price) for line in Line.search([
                    ('wallet', '=', wallet_id), ('kind', '=', 'consumption')],
                order=[('id', 'ASC')])]
    return db._run(run, readonly=True)


class Web:
    "A `dh web` (gunicorn) server"
    def __init__(self, folder, config, workers):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}/{NAME}/'
        self.log = open(os.path.join(folder, f'web{self.port}.log'), 'wb')
        self.process = subprocess.Popen([os.path.join(BIN, 'dh'), 'web',
                '-c', config, '-d', NAME, '--bind', f'127.0.0.1:{self.port}',
                '--workers', str(workers), '--threads', '2'],
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.logfile = self.log.name

    def wait(self):
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(self.url + 'dh/metrics',
                        timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or \
                    time.monotonic() > deadline:
                raise RuntimeError('dh web did not start: '
                    + open(self.logfile).read()[-3000:])
            time.sleep(0.5)

    def login(self, login):
        session = requests.Session()
        uid, token = self.rpc(session, 'common.db.login',
            [login, {'password': PASSWORD}, 'en'])[:2]
        import base64
        session.headers['Authorization'] = 'Session ' + base64.b64encode(
            f'{login}:{uid}:{token}'.encode()).decode()
        return session

    def rpc(self, session, method, params):
        "(result) or raises RuntimeError(error)"
        r = session.post(self.url + 'rpc/', json={'id': 1, 'method': method,
                'params': params}, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        if body.get('error'):
            raise RuntimeError(body['error'])
        return body['result']

    def metrics(self, headers=None):
        r = requests.get(self.url + 'dh/metrics', headers=headers or {},
            timeout=60)
        return r

    def stop(self):
        dbtools.stop(self.process)
        self.log.close()


def start(folder, args):
    log = open(os.path.join(folder, f'{args[0]}.log'), 'wb')
    process = subprocess.Popen([os.path.join(BIN, 'dh'), *args],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    process.logfile = log
    return process


def stop(process):
    dbtools.stop(process)
    process.logfile.close()


def snapshot():
    "trytond's configuration of this pytest process, to put back after"
    from trytond import config
    parser = config._config
    return {section: dict(parser.items(section, raw=True))
        for section in parser.sections()}


def restore(saved):
    from trytond import config
    parser = config._config
    for section in parser.sections():
        parser.remove_section(section)
    for section, options in saved.items():
        parser.add_section(section)
        for option, value in options.items():
            parser.set(section, option, value)
    config._cache_clear()


@pytest.fixture(scope='module')
def deployment():
    # the database object below reads our configuration into this pytest
    # process ([queue] worker, [cache] clean_timeout): the later tests get
    # theirs back at the end
    saved = snapshot()
    folder, config = dbtools.create(NAME, 'dh_alarm', CONFIG)
    db = collectd.Database(config, NAME)
    ids = db._run(seed)
    webs = [Web(folder, config, 2), Web(folder, config, 1)]
    cron = start(folder, ['cron', '-c', config, '-d', NAME])
    try:
        for web in webs:
            web.wait()
        yield db, ids, webs, cron, folder, config
    finally:
        for web in webs:
            web.stop()
        stop(cron)
        if PG:
            # this process' cache listener first (it would log the drop)
            from trytond.cache import Cache
            Cache.drop(NAME)
            import psycopg
            with psycopg.connect(dbtools.PG_URI + 'postgres',
                    autocommit=True) as conn:
                conn.execute('SELECT pg_terminate_backend(pid) FROM '
                    'pg_stat_activity WHERE datname = %s', (NAME,))
                conn.execute(f'DROP DATABASE IF EXISTS "{NAME}"')
        shutil.rmtree(folder, ignore_errors=True)
        restore(saved)


def decimal(value):
    return {'__class__': 'Decimal', 'decimal': str(value)}


def price(web, session, tariff_id):
    record, = web.rpc(session, 'model.dh.tariff.read',
        [[tariff_id], ['price'], {}])
    return D(record['price']['decimal'])


def test_tariff_and_caches_across_processes(deployment):
    db, ids, (a, b), cron, folder, config = deployment
    admin_a, admin_b = a.login('admin'), b.login('admin')
    cashier_b = b.login('cashier')
    tariff = ids['tariff']

    # B has read the tariff (and cached the cashier's access) first
    assert price(b, admin_b, tariff) == D('1.0')
    b.rpc(cashier_b, 'model.dh.tariff.write',
        [[tariff], {'name': '居民电价'}, {}])

    # the tariff changed through A: B reads the new price at once …
    a.rpc(admin_a, 'model.dh.tariff.write',
        [[tariff], {'price': decimal('2.5')}, {}])
    assert price(b, admin_b, tariff) == D('2.5')

    # … and the cron process bills the next reading at it
    ingest(db, ids['meter'], '1010', now() - dt.timedelta(hours=2))
    a.rpc(admin_a, 'model.ir.cron.write', [[ids['cron_bill']],
            {'next_call': {'__class__': 'datetime', 'year': 2000,
                    'month': 1, 'day': 1, 'hour': 0, 'minute': 0,
                    'second': 0, 'microsecond': 0}}, {}])
    deadline = time.monotonic() + 200   # trytond-cron wakes every minute
    while not consumption(db, ids['wallet']):
        assert cron.poll() is None, open(cron.logfile.name).read()[-3000:]
        assert time.monotonic() < deadline, 'the cron never billed: ' + \
            open(cron.logfile.name).read()[-3000:]
        time.sleep(1)
    assert consumption(db, ids['wallet']) == [(D('-25.00'), D('2.5'))]

    # changed again through B, billed by A (the cron action run there)
    b.rpc(admin_b, 'model.dh.tariff.write',
        [[tariff], {'price': decimal('3.0')}, {}])
    ingest(db, ids['meter'], '1020', now() - dt.timedelta(hours=1))
    a.rpc(admin_a, 'model.ir.cron.run_once', [[ids['cron_bill']], {}])
    assert consumption(db, ids['wallet'])[1:] == [(D('-30.00'), D('3.0'))]

    if not PG:
        # SQLite: caches are checked every [cache] clean_timeout (300 s)
        return
    # the cashier taken out of the finance group through A is refused by
    # B at once, though B had his groups and rights cached a moment ago
    def groups(change):
        return {'groups': [(change, [ids['finance']])]}
    a.rpc(admin_a, 'model.res.user.write', [[ids['cashier']],
            groups('remove'), {}])
    with pytest.raises(RuntimeError) as refused:
        b.rpc(cashier_b, 'model.dh.tariff.write',
            [[tariff], {'name': '居民电价 2'}, {}])
    assert 'not allowed to access "Tariff"' in str(refused.value)
    a.rpc(admin_a, 'model.res.user.write', [[ids['cashier']],
            groups('add'), {}])
    b.rpc(cashier_b, 'model.dh.tariff.write',
        [[tariff], {'name': '居民电价 3'}, {}])


def parse(text):
    "{(name, ((label, value), …)): value} of a Prometheus text"
    from prometheus_client.parser import text_string_to_metric_families
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name, tuple(sorted(sample.labels.items()))] = \
                sample.value
    return values


def test_metrics(deployment):
    db, ids, (a, b), cron, folder, config = deployment

    def activity(pool):
        from trytond.transaction import Transaction
        Notification = pool.get('dh.notification')
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        meter = Meter(ids['meter'])
        with Transaction().set_context(company=ids['company']):
            Notification.notify_many([('low_balance', {'meter': '部署表',
                            'remaining': '5', 'threshold': '10',
                            'unit': '元'},
                        [('sms', f'1380000{n:04d}')], f'deploy-{n}',
                        meter.id, None) for n in range(3)])
            Command.queue([meter], 'read')
    db._run(activity)
    ingest(db, ids['meter'], '1030', now() - dt.timedelta(minutes=30))

    def truth(pool):
        from trytond.transaction import Transaction
        cursor = Transaction().connection.cursor()
        cursor.execute("SELECT name, COUNT(*) FROM ir_queue WHERE "
            "dequeued_at IS NULL AND finished_at IS NULL GROUP BY name")
        queue = dict(cursor)
        cursor.execute('SELECT state, COUNT(*) FROM dh_notification '
            'GROUP BY state')
        notifications = dict(cursor)
        cursor.execute('SELECT state, COUNT(*) FROM dh_command '
            'GROUP BY state')
        return queue, notifications, dict(cursor)
    queue, notifications, commands = db._run(truth, readonly=True)
    assert queue.get('dh_notification') and notifications.get('queued') == 3

    for web in (a, b):
        r = web.metrics()
        assert r.status_code == 200
        assert r.headers['Content-Type'].startswith('text/plain')
        values = parse(r.text)
        for name, count in queue.items():
            assert values['dh_queue_tasks', (('queue', name),
                    ('state', 'pending'))] == count
        for state in ['queued', 'sending', 'sent', 'failed', 'given_up']:
            assert values['dh_notifications', (('state', state),)] == \
                notifications.get(state, 0)
        for state in ['queued', 'sent', 'confirmed', 'failed', 'expired']:
            assert values['dh_commands', (('state', state),)] == \
                commands.get(state, 0)
        assert values['dh_billing_unbilled_meters', ()] == 1
        # the newest unbilled reading is 30 min old, the watermark 1 h
        age = values['dh_billing_newest_unbilled_age_seconds', ()]
        lag = values['dh_billing_lag_seconds', ()]
        assert 1790 <= age < 1790 + 600
        assert 3590 <= lag < 3590 + 600

    # a queue worker process delivers the messages (the log gateway) and
    # billing catches up: the scrape says so
    worker = start(folder, ['queue', '-c', config, '-d', NAME, '-n', '1']) \
        if PG else start(folder, ['worker', '-c', config, '-d', NAME])
    try:
        a.rpc(a.login('admin'), 'model.ir.cron.run_once',
            [[ids['cron_bill']], {}])
        deadline = time.monotonic() + 180
        while True:
            values = parse(a.metrics().text)
            if values['dh_notifications', (('state', 'sent'),)] == 3:
                break
            assert worker.poll() is None, \
                open(worker.logfile.name).read()[-3000:]
            assert time.monotonic() < deadline, (values,
                open(worker.logfile.name).read()[-3000:])
            time.sleep(1)
    finally:
        stop(worker)
    assert values.get(('dh_queue_tasks', (('queue', 'dh_notification'),
                ('state', 'pending'))), 0) == 0
    assert values['dh_notifications', (('state', 'queued'),)] == 0
    assert values['dh_billing_unbilled_meters', ()] == 0
    assert values['dh_billing_lag_seconds', ()] == 0


def test_metrics_protection(deployment):
    "Loopback only without a token; the bearer token when one is set"
    db, ids, (a, b), cron, folder, config = deployment
    from trytond.modules.dh_alarm import metrics

    class Request:
        def __init__(self, remote_addr, headers=None):
            self.remote_addr = remote_addr
            self.headers = headers or {}
    assert metrics.allowed(Request('127.0.0.1'))
    assert metrics.allowed(Request('::1'))
    assert not metrics.allowed(Request('10.0.0.7'))
    assert not metrics.allowed(Request(None))
    # with a token: a server of its own reading that configuration
    token_config = os.path.join(folder, 'token.conf')
    with open(config) as source, open(token_config, 'w') as target:
        target.write(source.read() + '[dh]\nmetrics_token = s3cret-token\n')
    web = Web(folder, token_config, 1)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                r = web.metrics()
                break
            except requests.RequestException:
                assert web.process.poll() is None and \
                    time.monotonic() < deadline, open(web.logfile).read()
                time.sleep(0.5)
        assert r.status_code == 403
        assert web.metrics({'Authorization': 'Bearer wrong'}).status_code \
            == 403
        r = web.metrics({'Authorization': 'Bearer s3cret-token'})
        assert r.status_code == 200 and 'dh_commands' in r.text
    finally:
        web.stop()
