"""Concurrent operations on one wallet (8 threads, each its own
transactions): no lost update, the final balance is the sum of the lines,
and every transaction number credited once.  200 operations a thread on
PostgreSQL; fewer on SQLite, where writers queue on the database lock."""
import os
import random
import shutil
import sys
import threading
from decimal import Decimal

import pytest

from trytond.modules.dh_collector import collectd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

PG = dbtools.PG
NAME = 'dh_billing_conc'
THREADS = 8
OPERATIONS = 200 if PG else 25


@pytest.fixture(scope='module')
def db():
    folder, config = dbtools.create(NAME, 'dh_billing', 'retry = 20\n')
    database = collectd.Database(config, NAME)

    def setup(pool):
        from trytond.modules.dh_billing.tests.tools import setup_accounting
        from trytond.modules.company.tests import set_company
        company = setup_accounting()
        with set_company(company):
            Party = pool.get('party.party')
            Wallet = pool.get('dh.wallet')
            party, = Party.create([{'name': '并发住户'}])
            wallet, = Wallet.create([{'party': party.id}])
            return company.id, wallet.id
    company_id, wallet_id = database._run(setup)
    yield database, company_id, wallet_id
    shutil.rmtree(folder, ignore_errors=True)


def test_no_lost_update(db):
    database, company_id, wallet_id = db
    errors = []

    def worker(index):
        rng = random.Random(index)
        for n in range(OPERATIONS):
            amount = Decimal(rng.randrange(1, 5000)) / 100
            kind = rng.choice(['recharge', 'recharge', 'refund', 'subsidy',
                    'replay'])
            number = f'C{index}-{n}' if kind != 'replay' else f'C{index}-0'

            def op(pool):
                from trytond.transaction import Transaction
                with Transaction().set_context(company=company_id):
                    Wallet = pool.get('dh.wallet')
                    wallet = Wallet(wallet_id)
                    if kind in {'recharge', 'replay'}:
                        pool.get('dh.recharge').recharge(number, wallet,
                            amount)
                    elif kind == 'refund':
                        if Wallet.lock_balance(wallet_id) >= amount:
                            pool.get('dh.refund').refund(number, wallet,
                                'no_cut', amount)
                    else:
                        Wallet.post_lines(wallet, [{'kind': 'subsidy',
                                    'amount': amount}])
            try:
                database._run(op)
            except Exception as exception:   # a real failure
                errors.append(repr(exception))

    threads = [threading.Thread(target=worker, args=(i,))
        for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    def check(pool):
        Wallet = pool.get('dh.wallet')
        Line = pool.get('dh.wallet.line')
        Recharge = pool.get('dh.recharge')
        wallet = Wallet(wallet_id)
        lines = Line.search([('wallet', '=', wallet_id)])
        numbers = [r.number for r in Recharge.search([])]
        return wallet.balance, sum((l.amount for l in lines), Decimal(0)), \
            len(lines), numbers
    balance, total, count, numbers = database._run(check, readonly=True)
    assert balance == total
    assert count > THREADS * OPERATIONS // 2
    assert len(numbers) == len(set(numbers))
