"""Bill one hour of consumption for N meters (default 100,000 on
PostgreSQL): wallet lines, balances and the daily accounting batch; and
recharges per second through the recharge API.

  dh bench billing [--backend postgresql|sqlite] [--meters N]
                   [--per-wallet 10] [--recharges 500]"""
import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench billing')
    parser.add_argument('--backend', default='postgresql',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--meters', type=int, default=100000)
    parser.add_argument('--per-wallet', type=int, default=10)
    parser.add_argument('--recharges', type=int, default=500)
    options = parser.parse_args(args)
    name = f'bench_billing_{options.backend}'
    config = dbutil.create(options.backend, name)
    pool = dbutil.pool(config, name)
    from trytond.transaction import Transaction
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_collector.collectd import run_in_transaction
    t0 = time.perf_counter()
    company_id = run_in_transaction(name,
        lambda pool: setup_accounting().id, pool)
    with Transaction().start(name, 0) as transaction:
        company = pool.get('company.company')(company_id)
        with set_company(company):
            meters = dbutil.bulk_meters(options.meters)
            tariff = flat_tariff('1.2')
            Party = pool.get('party.party')
            Wallet = pool.get('dh.wallet')
            n_wallets = max(1, options.meters // options.per_wallet)
            parties = Party.create([{'name': f'住户{i}'}
                    for i in range(n_wallets)])
            wallets = Wallet.create([{'party': p.id} for p in parties])
            cursor = transaction.connection.cursor()
            p = '%s' if options.backend == 'postgresql' else '?'
            cursor.executemany(
                f'UPDATE dh_meter SET wallet = {p}, tariff = {p}, '
                f"billing_mode = 'cash' WHERE id = {p}",
                [(wallets[i // options.per_wallet % n_wallets].id,
                        tariff.id, m) for i, m in enumerate(meters)])
            cursor.executemany(f'UPDATE dh_wallet SET balance = {p} '
                f'WHERE id = {p}', [(Decimal(1000), w.id) for w in wallets])
    start = dt.datetime.utcnow().replace(minute=0, second=0,
        microsecond=0) - dt.timedelta(hours=2)
    Reading = pool.get('dh.meter.reading')
    Meter = pool.get('dh.meter')
    for hour in range(2):
        rows = [(m, 'energy_total', start + dt.timedelta(hours=hour),
                Decimal(1000 + hour) + Decimal(m % 7) / 10) for m in meters]
        for i in range(0, len(rows), 50000):
            with Transaction().start(name, 0, context={
                        'dh_no_billing': True}):
                Reading.ingest(rows[i:i + 50000])
        if hour == 0:
            with Transaction().start(name, 0) as transaction:
                cursor = transaction.connection.cursor()
                cursor.execute('INSERT INTO dh_billing_mark (meter, '
                    'register, read_at, value_e4) SELECT meter, register, '
                    'read_at, value_e4 FROM dh_reading_last')
    setup = time.perf_counter() - t0
    context = {'company': company_id, 'language': 'en'}

    def bill(pool):
        # timed per attempt: a lock restart (Tryton's record locks) counts
        t1 = time.perf_counter()
        lines = Meter.bill(Meter.browse(meters))
        return len(lines), time.perf_counter() - t1
    t_all = time.perf_counter()
    n_lines, bill_seconds = run_in_transaction(name, bill, pool,
        context=context)
    bill_wall = time.perf_counter() - t_all

    def post(pool):
        t2 = time.perf_counter()
        moves = pool.get('dh.wallet').cron_post_consumption()
        return moves and len(moves), time.perf_counter() - t2
    n_moves, post_seconds = run_in_transaction(name, post, pool,
        context=context)
    Recharge = pool.get('dh.recharge')
    wallet_ids = run_in_transaction(name, lambda pool: [w.id for w in
            pool.get('dh.wallet').search([], limit=options.recharges)],
        pool, context=context)
    t3 = time.perf_counter()
    for i, wallet_id in enumerate(wallet_ids):
        run_in_transaction(name, lambda pool, i=i, w=wallet_id:
            Recharge.recharge(f'BENCH-{i}', pool.get('dh.wallet')(w),
                Decimal(50)), pool, context=context)
    recharge_seconds = time.perf_counter() - t3
    wallets = wallet_ids
    moves = [None] * (n_moves or 0)
    return {'backend': options.backend, 'meters': options.meters,
        'wallets': n_wallets, 'setup_seconds': round(setup),
        'bill_seconds': round(bill_seconds, 2),
        'bill_wall_seconds_with_lock_restarts': round(bill_wall, 2),
        'wallet_lines': n_lines,
        'post_seconds': round(post_seconds, 2), 'moves': len(moves),
        'bill_and_post_seconds': round(bill_seconds + post_seconds, 2),
        'recharges_per_s': round(len(wallets) / recharge_seconds, 1),
        'goal_seconds': 30}
