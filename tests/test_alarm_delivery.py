"""Notification delivery for real: a database with committed rows, the
queue worker as a separate process (`dh worker`), and the SMS gateways
against the loopback fakes that check every signature.  Retries with
back-off, permanent errors given up, and a worker killed in the middle of a
send: the message is never sent twice."""
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from trytond.modules.dh_alarm.tests.fake_sms import FakeAliyun, FakeTencent
from trytond.modules.dh_collector import collectd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

NAME = 'dh_alarm_delivery'
DH = os.path.join(os.path.dirname(sys.executable), 'dh')
KEYS = {'LTAI5tDemoKey': 'aliyun-demo-secret'}
TENCENT_KEYS = {'AKIDDemoSecretId': 'tencent-demo-key'}
PARAMS = {'meter': '瀚15#601A', 'remaining': '12.00', 'threshold': '20.00',
    'unit': '元'}


@pytest.fixture(scope='module')
def db():
    folder, config = dbtools.create(NAME, 'dh_alarm',
        '[queue]\nworker = True\n')
    database = collectd.Database(config, NAME)
    yield database, config
    shutil.rmtree(folder, ignore_errors=True)


def configure(database, **values):
    def run(pool):
        Config = pool.get('dh.alarm.configuration')
        config = Config(1)
        for name, value in {'sms_gateway': 'log', 'sms_endpoint': None,
                'sms_key_id': None, 'sms_secret': None, 'retry_delay': 120,
                'max_attempts': 3, 'daily_cap': 50, 'sms_timeout': 10,
                'sms_sign_name': 'DH物业', **values}.items():
            setattr(config, name, value)
        config.save()
    database._run(run)


def notify(database, key, phones):
    def run(pool):
        Notification = pool.get('dh.notification')
        return [n.id for n in Notification.notify('low_balance', PARAMS,
                [('sms', p) for p in phones], key)]
    return database._run(run)


def states(database, ids):
    def run(pool):
        Notification = pool.get('dh.notification')
        return {n.id: (n.state, n.attempts, n.error, n.provider_id)
            for n in Notification.browse(ids)}
    return database._run(run, readonly=True)


def worker(config, once=True):
    args = [DH, 'worker', '-c', config, '-d', NAME]
    if once:
        return subprocess.run(args + ['--once'], check=True,
            capture_output=True, timeout=120)
    return subprocess.Popen(args, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def make_due(database, ids):
    "Pretend the back-off has passed"
    def run(pool):
        from trytond.transaction import Transaction
        Notification = pool.get('dh.notification')
        past = dt.datetime.now() - dt.timedelta(minutes=1)
        cursor = Transaction().connection.cursor()
        table = Notification.__table__()
        cursor.execute(*table.update([table.next_attempt_at], [past],
                where=table.id.in_(ids)))
        Queue = pool.get('ir.queue')
        queue = Queue.__table__()
        cursor.execute(*queue.update([queue.scheduled_at], [past],
                where=queue.finished_at == None))  # noqa: E711
    database._run(run)


def test_aliyun_delivered_once(db):
    database, config = db
    with FakeAliyun(KEYS) as fake:
        configure(database, sms_gateway='aliyun', sms_endpoint=fake.url,
            sms_key_id='LTAI5tDemoKey', sms_secret='aliyun-demo-secret',
            template_low_balance='SMS_123')
        ids = notify(database, 'a1', ['13800138001', '13800138002'])
        # the same event again makes nothing
        assert notify(database, 'a1', ['13800138001']) == []
        worker(config)
        worker(config)      # nothing left to do: no second send
        result = states(database, ids)
        assert [s[0] for s in result.values()] == ['sent', 'sent']
        assert all(s[3] for s in result.values())     # provider ids
        assert sorted(m['phone'] for m in fake.messages) == [
            '13800138001', '13800138002']
        message = fake.messages[0]
        assert message['template'] == 'SMS_123'
        assert message['params'] == PARAMS
        assert message['sign'] == 'DH物业'


def test_tencent_delivered(db):
    database, config = db
    with FakeTencent(TENCENT_KEYS) as fake:
        configure(database, sms_gateway='tencent',
            sms_endpoint=f'http://{fake.endpoint}',
            sms_key_id='AKIDDemoSecretId', sms_secret='tencent-demo-key',
            sms_app_id='1400000000', template_low_balance='1234567')
        ids = notify(database, 't1', ['13800138003'])
        worker(config)
        (state, attempts, error, provider), = states(database, ids).values()
        assert (state, attempts) == ('sent', 1), error
        message, = fake.messages
        assert message['phone'] == '13800138003'
        # Tencent takes the parameters in the template's order
        assert message['params'] == list(PARAMS.values())


def test_throttled_then_retried(db):
    database, config = db
    with FakeAliyun(KEYS) as fake:
        configure(database, sms_gateway='aliyun', sms_endpoint=fake.url,
            sms_key_id='LTAI5tDemoKey', sms_secret='aliyun-demo-secret')
        fake.script(['throttle', ('http', 503), 'ok'])
        ids = notify(database, 'r1', ['13800138004'])
        worker(config)
        (state, attempts, error, _), = states(database, ids).values()
        assert (state, attempts) == ('failed', 1)
        assert 'BUSINESS_LIMIT_CONTROL' in error
        # the retry waits for its back-off
        worker(config)
        assert states(database, ids)[ids[0]][1] == 1
        make_due(database, ids)
        worker(config)
        assert states(database, ids)[ids[0]][:2] == ('failed', 2)
        make_due(database, ids)
        worker(config)
        assert states(database, ids)[ids[0]][:2] == ('sent', 3)
        assert len(fake.messages) == 1


def test_permanent_error_given_up(db):
    database, config = db
    with FakeAliyun(KEYS) as fake:
        configure(database, sms_gateway='aliyun', sms_endpoint=fake.url,
            sms_key_id='LTAI5tDemoKey', sms_secret='wrong-secret')
        ids = notify(database, 'p1', ['13800138005'])
        worker(config)
        (state, attempts, error, _), = states(database, ids).values()
        assert (state, attempts) == ('given_up', 1)
        assert 'SignatureDoesNotMatch' in error
        assert fake.messages == []


def test_retries_exhausted(db):
    database, config = db
    with FakeAliyun(KEYS) as fake:
        configure(database, sms_gateway='aliyun', sms_endpoint=fake.url,
            sms_key_id='LTAI5tDemoKey', sms_secret='aliyun-demo-secret',
            max_attempts=2)
        fake.script([('http', 503), ('http', 503), 'ok'])
        ids = notify(database, 'x1', ['13800138006'])
        worker(config)
        make_due(database, ids)
        worker(config)
        (state, attempts, error, _), = states(database, ids).values()
        assert (state, attempts) == ('given_up', 2)
        assert fake.messages == []


def test_worker_killed_mid_send_never_sends_twice(db):
    database, config = db
    with FakeAliyun(KEYS) as fake:
        configure(database, sms_gateway='aliyun', sms_endpoint=fake.url,
            sms_key_id='LTAI5tDemoKey', sms_secret='aliyun-demo-secret',
            sms_timeout=30)
        fake.script([('delay', 20)])
        ids = notify(database, 'k1', ['13800138007'])
        process = worker(config, once=False)
        try:
            deadline = time.monotonic() + 60
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert fake.requests, 'the worker never called the gateway'
            os.killpg(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=30)
        # the gateway took it (the fake records it) but we never heard
        assert states(database, ids)[ids[0]][0] == 'sending'
        # later runs do not send it again
        fresh = notify(database, 'k2', ['13800138008'])
        make_due(database, ids)
        worker(config)
        assert states(database, fresh)[fresh[0]][0] == 'sent'
        assert states(database, ids)[ids[0]][0] == 'sending'

        def stale(pool):
            from trytond.transaction import Transaction
            table = pool.get('dh.notification').__table__()
            Transaction().connection.cursor().execute(*table.update(
                    [table.write_date],
                    [dt.datetime.now() - dt.timedelta(hours=1)],
                    where=table.id.in_(ids)))
            return pool.get('dh.notification').cron_retry()
        database._run(stale)
        state, _, error, _ = states(database, ids)[ids[0]]
        assert state == 'given_up'
        assert 'not sent again' in error
        phones = [m['phone'] for m in fake.messages]
        assert phones.count('13800138007') <= 1
        assert phones.count('13800138008') == 1


def test_log_gateway_writes_the_chinese_text(db):
    database, config = db
    configure(database)
    ids = notify(database, 'l1', ['13800138009'])
    result = worker(config)
    (state, attempts, error, provider), = states(database, ids).values()
    assert (state, provider[:4]) == ('sent', 'log-'), error
    assert '瀚15#601A剩余12.00元，已低于20.00元，请及时充值。' in \
        result.stderr.decode()
