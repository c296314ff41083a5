"""One hourly alarm round over N meters (default 100,000 on PostgreSQL):
every rule of a full profile evaluated for every meter (instantaneous
values, daily / monthly / night usage, remaining, reverse energy, stagnant,
offline), first when many alarms open, then in the steady state; the extra
cost the reading-driven rules add to an ingest batch; and notifications per
second through the delivery path against the loopback Aliyun fake.

  dh bench alarms [--backend postgresql|sqlite] [--meters N]
                  [--messages 1000]"""
import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402

D = Decimal


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench alarms')
    parser.add_argument('--backend', default='postgresql',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--meters', type=int, default=100000)
    parser.add_argument('--messages', type=int, default=1000)
    options = parser.parse_args(args)
    name = f'bench_alarms_{options.backend}'
    config = dbutil.create(options.backend, name)
    pool = dbutil.pool(config, name)
    from trytond.transaction import Transaction
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_collector.collectd import run_in_transaction
    p = '%s' if options.backend == 'postgresql' else '?'
    n = options.meters
    t0 = time.perf_counter()
    company_id = run_in_transaction(name,
        lambda pool: setup_accounting().id, pool)
    with Transaction().start(name, 0) as transaction:
        company = pool.get('company.company')(company_id)
        with set_company(company):
            meters = dbutil.bulk_meters(n)
            tariff = flat_tariff('1.0')
            Party = pool.get('party.party')
            Wallet = pool.get('dh.wallet')
            Area = pool.get('dh.area')
            Profile = pool.get('dh.alarm.profile')
            # a tenant and a wallet for one meter in four (and for the
            # ones that never move)
            tenants = [m for m in meters if m % 4 == 0 or m % 50 == 0]
            parties = Party.create([{'name': f'住户{i}'}
                    for i in range(len(tenants))])
            wallets = Wallet.create([{'party': party.id}
                    for party in parties])
            cursor = transaction.connection.cursor()
            cursor.executemany(f'UPDATE dh_meter SET wallet = {p}, '
                f"tenant = {p}, tariff = {p}, billing_mode = 'cash', "
                f'remaining = {p} WHERE id = {p}',
                [(w.id, party.id, tariff.id, D(i % 200), m)
                    for i, (w, party, m) in enumerate(
                        zip(wallets, parties, tenants))])
            district, = Area.search([('level', '=', '1')])
            Profile.create([{'name': 'bench', 'voltage_max': D(250),
                        'current_max': D(60), 'max_load': D(8),
                        'day_usage_max': D(30), 'month_usage_max': D(600),
                        'night_usage_max': D(5), 'remaining_min': D(20),
                        'stagnant_days': 3, 'offline_cycles': 3,
                        'settlement_day': 1, 'phones': '13900000001',
                        'areas': [('add', [district.id])]}])
    # four days of midday readings (meter k % 50 == 0 never moves: the
    # tenants among them are stagnant), then this hour's round with
    # voltage, current and power (1 % over each limit)
    now = dt.datetime.utcnow().replace(minute=0, second=0, microsecond=0)
    Reading = pool.get('dh.meter.reading')
    quiet = {'dh_no_billing': True, 'dh_no_alarms': True}

    def ingest(rows, context=quiet):
        for i in range(0, len(rows), 50000):
            with Transaction().start(name, 0, context=context):
                Reading.ingest(rows[i:i + 50000])
    midnight = (now + dt.timedelta(hours=8)).replace(hour=0) \
        - dt.timedelta(hours=8)
    for day in range(4, 0, -1):
        at = midnight - dt.timedelta(days=day, hours=-12)
        ingest([(m, 'energy_total', at, D(1000) if m % 50 == 0
                    else D(1000 + (4 - day) * 10 + m % 7)) for m in meters])
    previous = now - dt.timedelta(hours=1)
    ingest([(m, 'energy_total', previous, D(1000) if m % 50 == 0
                else D(1040 + m % 7)) for m in meters])
    setup = time.perf_counter() - t0
    rows = []
    for m in meters:
        over = m % 100 == 0
        rows += [(m, 'energy_total', now, D(1000) if m % 50 == 0
                else D(1041 + m % 7)),
            (m, 'voltage', now, D('262.1') if over else D('221.4')),
            (m, 'current', now, D(65) if over else D('4.2')),
            (m, 'power', now, D('9.5') if over else D('0.9'))]
    # the reading-driven rules' cost inside ingest: half the meters
    # without evaluation, the other half with it
    half = len(rows) // 2
    t1 = time.perf_counter()
    ingest(rows[:half])
    ingest_quiet = time.perf_counter() - t1
    t1 = time.perf_counter()
    ingest(rows[half:], {'dh_no_billing': True})
    ingest_alarms = time.perf_counter() - t1
    Alarm = pool.get('dh.alarm')
    figures = {}
    for label in ['first_round', 'steady_round']:
        def evaluate(pool):
            t = time.perf_counter()
            result = Alarm.evaluate(None, now + dt.timedelta(minutes=5))
            return time.perf_counter() - t, result
        seconds, result = run_in_transaction(name, evaluate, pool)
        figures[label] = {'seconds': round(seconds, 2), **result}
    with Transaction().start(name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute('SELECT kind, COUNT(*) FROM dh_alarm '
            "WHERE state != 'closed' GROUP BY kind")
        open_alarms = dict(cursor)
    return {'backend': options.backend, 'meters': n,
        'setup_s': round(setup, 1),
        'round_s_goal': 10, **figures,
        'open_alarms': open_alarms,
        'ingest_rows': len(rows) - half,
        'ingest_without_alarms_s': round(ingest_quiet, 2),
        'ingest_with_alarms_s': round(ingest_alarms, 2),
        **messages(name, pool, options.messages)}


def messages(name, pool, count):
    "Notifications per second, queued → sent, against the Aliyun fake"
    from trytond.transaction import Transaction
    from trytond.modules.dh_alarm.tests.fake_sms import FakeAliyun
    from trytond.modules.dh_collector.collectd import run_in_transaction
    keys = {'LTAI5tBench': 'bench-secret'}
    with FakeAliyun(keys) as fake:
        def setup(pool):
            Config = pool.get('dh.alarm.configuration')
            config = Config(1)
            config.sms_gateway = 'aliyun'
            config.sms_endpoint = fake.url
            config.sms_key_id = 'LTAI5tBench'
            config.sms_secret = 'bench-secret'
            config.daily_cap = 10 ** 6
            config.save()
            Notification = pool.get('dh.notification')
            params = {'meter': '瀚15#601A', 'remaining': '12.00',
                'threshold': '20.00', 'unit': '元'}
            return [n.id for n in Notification.notify_many([
                        ('low_balance', params, [('sms', f'138{i:08d}')],
                            f'bench:{i}', None, None)
                        for i in range(count)])]
        ids = run_in_transaction(name, setup, pool)
        t = time.perf_counter()
        with Transaction().start(name, 0):
            pool.get('dh.notification').deliver(ids)
        seconds = time.perf_counter() - t
        sent = len(fake.messages)
    return {'messages': count, 'messages_sent': sent,
        'messages_per_s': round(sent / seconds, 1) if seconds else None}
