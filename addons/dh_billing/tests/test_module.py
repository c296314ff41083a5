# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
import datetime as dt
import json
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import CompanyTestMixin, set_company
from trytond.modules.dh_metering.tests.tools import (
    create_areas, create_meter, utc)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction

from .tools import flat_tariff, ledger_balance, setup_accounting

D = Decimal


def plaza():
    pool = Pool()
    Party = pool.get('party.party')
    Wallet = pool.get('dh.wallet')
    areas = create_areas({'东政': {'东政': {'东政': ['东政']}},
            '唐渠': {'瀚盛家园': {'15': ['601']}}})
    tenant, other = Party.create([{'name': '张伟'}, {'name': '李娜'}])
    wallet, wallet2 = Wallet.create([{'party': tenant.id},
            {'party': other.id}])
    tariff = flat_tariff('1.2')
    room = areas['唐渠', '瀚盛家园', '15', '601']
    # the product's meter 2001: 东政, address 16005628, price 1.2, energy mode
    m2001 = create_meter(areas['东政', '东政', '东政', '东政'], '2001', '东政',
        '16005628', billing_mode='energy', tariff=tariff.id,
        wallet=wallet.id)
    a = create_meter(room, '202', '瀚15#601A', '15085381', tariff=tariff.id,
        wallet=wallet2.id, billing_mode='cash')
    b = create_meter(room, '203', '瀚15#601B', '15085377', tariff=tariff.id,
        wallet=wallet2.id, billing_mode='cash', multiplier=D(30))
    public = create_meter(room, '201', '瀚15#601公', '14022114',
        tariff=tariff.id, role='public')
    return wallet, wallet2, m2001, a, b, public


def ingest(rows):
    return Pool().get('dh.meter.reading').ingest(rows)


class DhBillingTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the dh_billing module"
    module = 'dh_billing'

    @with_transaction()
    def test_energy_recharge_worked_example(self):
        "1000 at 1.2 with 0.40 in the wallet: 833 kWh, 999.60, 0.80 left"
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Wallet = pool.get('dh.wallet')
        Command = pool.get('dh.command')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            Wallet.post_lines(wallet, [{'kind': 'adjustment',
                        'amount': D('0.40'), 'description': 'opening'}])
            recharge = Recharge.recharge('T-0001', wallet, D(1000),
                meter=m2001)
            self.assertEqual((recharge.kwh, recharge.paid,
                    recharge.wallet_after, recharge.meter_energy,
                    recharge.wallet_before),
                (833, D('999.60'), D('0.80'), D('833.00'), D('0.40')))
            self.assertEqual(Wallet(wallet.id).balance, D('0.80'))
            command, = Command.search([('kind', '=', 'recharge')])
            self.assertEqual(json.loads(command.payload),
                {'amount': '833.00', 'count': 1})
            self.assertEqual(recharge.state, 'paid')
            # the meter confirms: delivered
            Command.report(command.id, 'sent')
            Command.report(command.id, 'confirmed')
            self.assertEqual(Recharge(recharge.id).state, 'delivered')
            # the ledger: 1000 in, 999.60 sold; the 0.40 opening was no cash
            self.assertEqual(ledger_balance(wallet.party), D('0.40'))

            # the next recharge settles the 0.80 change: 1000.80 = 834 kWh
            again = Recharge.recharge('T-0002', wallet, D(1000),
                meter=m2001)
            self.assertEqual((again.kwh, again.paid, again.wallet_after),
                (834, D('1000.80'), D('0.00')))
            command = Command.search([('kind', '=', 'recharge')],
                order=[('id', 'DESC')])[0]
            self.assertEqual(json.loads(command.payload)['count'], 2)

            # the same worked example at multiplier 30: 变比电量 27.77
            m30 = create_meter(m2001.area, '2002', '东政B', '16005629',
                billing_mode='energy', tariff=m2001.tariff.id,
                wallet=wallet2.id, multiplier=D(30))
            Wallet.post_lines(wallet2, [{'kind': 'adjustment',
                        'amount': D('0.40'), 'description': 'opening'}])
            r30 = Recharge.recharge('T-0003', wallet2, D(1000), meter=m30)
            self.assertEqual((r30.kwh, r30.paid, r30.wallet_after,
                    r30.meter_energy), (833, D('999.60'), D('0.80'),
                    D('27.77')))

    @with_transaction()
    def test_transaction_number_idempotent(self):
        "The same transaction number 100 times credits once"
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Wallet = pool.get('dh.wallet')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            first = Recharge.recharge('WX-42', wallet2, D('50.00'),
                channel='wechat')
            for _ in range(100):
                self.assertEqual(Recharge.recharge('WX-42', wallet2,
                        D('50.00'), channel='wechat'), first)
            self.assertEqual(Wallet(wallet2.id).balance, D('50.00'))
            self.assertEqual(len(Recharge.search([])), 1)
            with self.assertRaises(UserError):
                Recharge.recharge('', wallet2, D(1))
            with self.assertRaises(UserError):
                Recharge.recharge('X-1', wallet2, D(-1))
            with self.assertRaises(UserError):     # adjustment needs reason
                Recharge.recharge('X-2', wallet2, D(5), adjustment=True)

    @with_transaction()
    def test_cash_billing_once_and_arrears(self):
        "Each interval is billed once; arrears trip, a recharge closes"
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        Command = pool.get('dh.command')
        Line = pool.get('dh.wallet.line')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            Recharge.recharge('C-1', wallet2, D('20.00'))
            rows = [(a.id, 'energy_total', utc(2026, 11, 1, h), D(100) + h)
                for h in range(3)]
            ingest(rows[:1])                 # the baseline
            self.assertEqual(Wallet(wallet2.id).balance, D('20.00'))
            ingest(rows)                     # +2 kWh × 1.2
            self.assertEqual(Wallet(wallet2.id).balance, D('17.60'))
            ingest(rows)                     # again: nothing
            Wallet.cron_bill()               # the safety net: nothing
            self.assertEqual(Wallet(wallet2.id).balance, D('17.60'))
            consumption = Line.search([('kind', '=', 'consumption')])
            self.assertEqual(sum(l.amount for l in consumption), D('-2.40'))
            # the list shows the register by its name, not its key
            self.assertEqual({l.register_name for l in consumption},
                {'energy_total'})
            selection = dict(Line.fields_get(['register_name'])
                ['register_name']['selection'])
            self.assertEqual(selection['energy_total'],
                'Forward Active Total Energy')
            self.assertEqual(Meter(a.id).remaining, D('17.60'))
            # meter B (multiplier 30): 0.5 × 30 × 1.2 = 18.00 → arrears
            Meter.write([a, b], {'relay': 'closed'})
            ingest([(b.id, 'energy_total', utc(2026, 11, 1, 1), D(10))])
            ingest([(b.id, 'energy_total', utc(2026, 11, 1, 2), D('10.5'))])
            self.assertEqual(Wallet(wallet2.id).balance, D('-0.40'))
            trips = Command.search([('kind', '=', 'trip')])
            self.assertEqual({c.meter for c in trips}, {a, b})
            for trip in trips:
                Command.report(trip.id, 'sent')
                Command.report(trip.id, 'confirmed')
            self.assertEqual(Meter(a.id).relay, 'open')
            Recharge.recharge('C-2', wallet2, D('10.00'))
            closes = Command.search([('kind', '=', 'close')])
            self.assertEqual({c.meter for c in closes}, {a, b})

    @with_transaction()
    def test_refunds_and_move_out(self):
        "Refund, refund without cut-off and the full refund of a move-out"
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Refund = pool.get('dh.refund')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        Command = pool.get('dh.command')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            Meter.write([a, b], {'relay': 'closed'})
            Recharge.recharge('R-1', wallet2, D('100.00'))
            refund = Refund.refund('F-1', wallet2, 'partial', D('30.00'))
            self.assertEqual((refund.wallet_before, refund.wallet_after),
                (D('100.00'), D('70.00')))
            with self.assertRaises(UserError):
                Refund.refund('F-2', wallet2, 'partial', D('500.00'))
            Refund.refund('F-3', wallet2, 'no_cut', D('70.00'))
            self.assertEqual(Wallet(wallet2.id).balance, D('0.00'))
            self.assertFalse(Command.search([('kind', '=', 'trip')]))
            # move-out: the last reading is billed, the rest returned
            Recharge.recharge('R-2', wallet2, D('50.00'))
            ingest([(a.id, 'energy_total', utc(2026, 11, 2, 1), D(200))])
            ingest([(a.id, 'energy_total', utc(2026, 11, 2, 2), D(205))])
            full = Refund.refund('F-4', wallet2, 'full')
            self.assertEqual(full.amount, D('44.00'))   # 50 − 5 × 1.2
            wallet2 = Wallet(wallet2.id)
            self.assertEqual((wallet2.balance, wallet2.state),
                (D('0.00'), 'closed'))
            self.assertEqual(len(Command.search([('kind', '=', 'trip')])),
                2)
            with self.assertRaises(UserError):
                Recharge.recharge('R-3', wallet2, D('1.00'))
            # nothing financial is deleted
            with self.assertRaises(UserError):
                Pool().get('dh.wallet.line').delete(wallet2.lines)
            Wallet.cron_post_consumption()
            self.assertEqual(ledger_balance(wallet2.party), D('0.00'))

    @with_transaction()
    def test_reversal(self):
        "A wrong line is reversed by another, never edited"
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        Line = pool.get('dh.wallet.line')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            line, = Wallet.post_lines(wallet2, [{'kind': 'subsidy',
                        'amount': D('15.00'), 'description': '月补电量'}])
            with self.assertRaises(UserError):
                Line.write([line], {'amount': D(1)})
            reversal, = Line.reverse([line], 'entered twice')
            self.assertEqual(reversal.amount, D('-15.00'))
            self.assertEqual(Wallet(wallet2.id).balance, D('0.00'))
            with self.assertRaises(UserError):
                Line.reverse([line], 'again')

    @with_transaction()
    def test_public_allocation(self):
        "A public meter's usage is shared exactly over its room"
        pool = Pool()
        Allocation = pool.get('dh.allocation')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            c = create_meter(public.area, '204', '瀚15#601C', '15085383',
                tariff=public.tariff.id, wallet=wallet.id)
            Meter.write([a], {'floor_area': D(20)})
            Meter.write([b], {'floor_area': D(30)})
            Meter.write([c], {'floor_area': D(50)})
            ingest([(public.id, 'energy_total', utc(2026, 11, 1, 12),
                        D('100')),
                    (public.id, 'energy_total', utc(2026, 11, 2, 12),
                        D('110.01'))])
            allocation = Allocation.allocate_public(public,
                dt.date(2026, 11, 1), dt.date(2026, 11, 3))
            shares = {l.meter: l.energy for l in allocation.lines}
            self.assertEqual(sum(shares.values()), D('10.01'))
            self.assertEqual(shares, {a: D('3.34'), b: D('3.34'),
                    c: D('3.33')})
            self.assertEqual(allocation.energy, D('10.01'))
            with self.assertRaises(UserError):   # the period is taken
                Allocation.allocate_public(public, dt.date(2026, 11, 2),
                    dt.date(2026, 11, 4))
            by_area = Allocation.allocate_public(public,
                dt.date(2026, 11, 3), dt.date(2026, 11, 4), basis='area')
            self.assertEqual(by_area.energy, D(0))
            self.assertEqual(Wallet(wallet2.id).balance,
                -(D('3.34') * D('1.2')).quantize(D('0.01'))
                - (D('3.34') * D('1.2')).quantize(D('0.01')))

    @with_transaction()
    def test_ac_allocation(self):
        "The outdoor unit's energy split by capacity × runtime, basis kept"
        pool = Pool()
        Allocation = pool.get('dh.allocation')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            room = public.area
            outdoor = create_meter(room, '900', '空调外机1', '000000000900',
                utility='ac_outdoor', tariff=public.tariff.id)
            units = [create_meter(room, f'90{i}', f'空调内机{i}',
                    f'00000000090{i}', utility='ac_indoor',
                    ac_outdoor=outdoor.id, capacity_kw=cap,
                    wallet=wallet2.id, unit_price=D('1.5'))
                for i, cap in [(1, D('2.8')), (2, D('3.6')), (3, D('7.1'))]]
            rows = [(outdoor.id, 'energy_total', utc(2026, 11, 1, 8), D(0)),
                (outdoor.id, 'energy_total', utc(2026, 11, 1, 20), D(50))]
            for unit, hours in zip(units, [D(4), D(8), D(0)]):
                rows += [(unit.id, 'ac_runtime', utc(2026, 11, 1, 8), D(0)),
                    (unit.id, 'ac_runtime', utc(2026, 11, 1, 20), hours)]
            ingest(rows)
            allocation = Allocation.allocate_ac(outdoor,
                dt.date(2026, 11, 1), dt.date(2026, 11, 2))
            shares = {l.meter.name: l.energy for l in allocation.lines}
            # weights 2.8×4 = 11.2 and 3.6×8 = 28.8 (the third did not run)
            self.assertEqual(shares, {'空调内机1': D('14.00'),
                    '空调内机2': D('36.00'), '空调内机3': D('0.00')})
            line = [l for l in allocation.lines if l.meter == units[1]][0]
            self.assertIn('28.8', line.inputs)
            self.assertEqual(line.amount, D('54.00'))
            self.assertEqual(allocation.basis, 'capacity_runtime')

    @with_transaction()
    def test_ledger_invariant(self):
        "Σ wallet balances = the prepayment account once consumption posts"
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Refund = pool.get('dh.refund')
        Wallet = pool.get('dh.wallet')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            Recharge.recharge('L-1', wallet2, D('80.00'))
            Recharge.recharge('L-2', wallet, D('30.00'), meter=m2001)
            ingest([(a.id, 'energy_total', utc(2026, 11, 1, h), D(h) * 3)
                    for h in range(5)])
            ingest([(a.id, 'energy_total', utc(2026, 11, 1, 6), D(20))])
            Refund.refund('L-3', wallet2, 'no_cut', D('5.00'))
            total, ledger, unposted, differences = Wallet.reconcile()
            self.assertEqual(differences, {})
            self.assertNotEqual(unposted, 0)
            Wallet.cron_post_consumption()
            total, ledger, unposted, differences = Wallet.reconcile()
            self.assertEqual((unposted, differences), (0, {}))
            self.assertEqual(total, ledger)
            self.assertEqual(total, sum(w.balance
                    for w in Wallet.search([])))

    @with_transaction()
    def test_random_operations_keep_the_books(self):
        "Random recharge / consume / refund / subsidy / adjust / reverse "
        "sequences keep Σ lines = balance = ledger, to the cent"
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Refund = pool.get('dh.refund')
        Wallet = pool.get('dh.wallet')
        Line = pool.get('dh.wallet.line')
        company = setup_accounting()
        counter = iter(range(10 ** 6))
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            state = {'value': D(100), 'hour': 0}
            ingest([(a.id, 'energy_total', utc(2026, 10, 1), D(100))])
            # warm up outside hypothesis: the locks Tryton asks for (record
            # and journal-period locks) restart the test transaction here,
            # once, instead of failing an example halfway
            Recharge.recharge('WARM-1', wallet2, D('10.00'))
            Recharge.recharge('WARM-2', wallet, D('10.00'), meter=m2001)
            Refund.refund('WARM-3', wallet2, 'no_cut', D('1.00'))
            Wallet.post_lines(wallet2, [{'kind': 'subsidy',
                        'amount': D('1.00')}])
            Wallet.cron_post_consumption()
            operation = st.one_of(
                st.tuples(st.just('recharge'),
                    st.decimals('0.01', '500', places=2)),
                st.tuples(st.just('consume'),
                    st.decimals('0', '40', places=2)),
                st.tuples(st.just('refund'),
                    st.decimals('0.01', '100', places=2)),
                st.tuples(st.just('subsidy'),
                    st.decimals('0.01', '20', places=2)),
                st.tuples(st.just('adjust'),
                    st.decimals('-20', '20', places=2)),
                st.tuples(st.just('reverse'), st.just(D(0))),
                st.tuples(st.just('energy'),
                    st.decimals('1', '300', places=2)))

            @settings(max_examples=20, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
            @given(st.lists(operation, min_size=1, max_size=12))
            def run(operations):
                for kind, amount in operations:
                    n = next(counter)
                    balance = Wallet(wallet2.id).balance
                    if kind == 'recharge':
                        Recharge.recharge(f'H-{n}', wallet2, amount)
                    elif kind == 'energy':
                        Recharge.recharge(f'H-{n}', wallet, amount,
                            meter=m2001)
                    elif kind == 'consume':
                        state['value'] += amount
                        state['hour'] += 1
                        ingest([(a.id, 'energy_total', utc(2026, 10, 1)
                                    + dt.timedelta(hours=state['hour']),
                                    state['value'])])
                    elif kind == 'refund' and balance >= amount:
                        Refund.refund(f'H-{n}', wallet2, 'no_cut', amount)
                    elif kind == 'subsidy':
                        Wallet.post_lines(wallet2, [{'kind': 'subsidy',
                                    'amount': amount}])
                    elif kind == 'adjust' and amount:
                        Recharge.recharge(f'H-{n}', wallet2, amount,
                            note='correction', adjustment=True)
                    elif kind == 'reverse':
                        lines = Line.search([('wallet', '=', wallet2.id),
                                ('kind', '=', 'subsidy')])
                        done = {l.reversal_of for l in Line.search([
                                    ('reversal_of', '!=', None)])}
                        todo = [l for l in lines if l not in done]
                        if todo:
                            Line.reverse(todo[:1], 'random')
                for w in [wallet, wallet2]:
                    w = Wallet(w.id)
                    lines = Line.search([('wallet', '=', w.id)])
                    self.assertEqual(sum((l.amount for l in lines), D(0)),
                        w.balance)
                Wallet.cron_post_consumption()
                total, ledger, unposted, differences = Wallet.reconcile()
                self.assertEqual((unposted, differences), (0, {}))
                self.assertEqual(total, ledger)
            run()

    @with_transaction()
    def test_merged_subs_subsidy_windows_tiers(self):
        "Merged sub meters bill the master's wallet and are cut with it; "
        "monthly subsidies; no-cut windows; tiered prices"
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        Command = pool.get('dh.command')
        Config = pool.get('dh.billing.configuration')
        Tariff = pool.get('dh.tariff')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            master = create_meter(a.area, '210', '瀚15#601主', '15085999',
                role='master', tariff=a.tariff.id, wallet=wallet2.id)
            sub = create_meter(a.area, '211', '瀚15#601D', '15085998',
                tariff=a.tariff.id)
            Meter.do_merge([sub], master)
            Meter.write([sub, master, a, b], {'relay': 'closed'})
            Recharge.recharge('M-1', wallet2, D('5.00'))
            # the first reading is the baseline
            ingest([(sub.id, 'energy_total', utc(2026, 11, 1, 1), D(10))])
            ingest([(sub.id, 'energy_total', utc(2026, 11, 1, 2), D(15))])
            # 5 kWh × 1.2 on the master's wallet: −1.00 → all cut
            self.assertEqual(Wallet(wallet2.id).balance, D('-1.00'))
            trips = {c.meter for c in Command.search([('kind', '=', 'trip')])}
            self.assertIn(sub, trips)
            self.assertIn(master, trips)

            # monthly subsidy on the settlement day, once a month
            Wallet.write([wallet2], {'monthly_subsidy': D('8.00'),
                    'settlement_day': 5})
            self.assertEqual(Wallet.cron_subsidy(dt.date(2026, 11, 4)), [])
            self.assertEqual(len(Wallet.cron_subsidy(dt.date(2026, 11, 5))),
                1)
            self.assertEqual(Wallet.cron_subsidy(dt.date(2026, 11, 20)), [])
            self.assertEqual(Wallet(wallet2.id).balance, D('7.00'))

            # a no-cut window covering all day: arrears do not cut
            Config.write([Config(1)], {'no_cut_start': '00:00',
                    'no_cut_end': '00:00'})
            Command.write(Command.search([]), {'state': 'failed'})
            Meter.write([sub, master, a, b], {'relay': 'closed'})
            ingest([(sub.id, 'energy_total', utc(2026, 11, 1, 3), D(30))])
            self.assertLess(Wallet(wallet2.id).balance, 0)
            self.assertFalse(Command.search([('kind', '=', 'trip'),
                        ('state', '=', 'queued')]))

            # tiers: 10 kWh at 0.5 then 1.0 (monthly cumulative)
            tiered, = Tariff.create([{'name': '阶梯', 'kind': 'flat',
                        'price': D('0.5'), 'tiers': [('create', [
                                    {'upto': D(10), 'price': D('0.5')},
                                    {'upto': None, 'price': D('1.0')}])]}])
            Meter.write([a], {'tariff': tiered.id})
            before = Wallet(wallet2.id).balance
            ingest([(a.id, 'energy_total', utc(2026, 11, 2, 1), D(100))])
            Meter.start_billing([Meter(a.id)], utc(2026, 11, 2, 1))
            ingest([(a.id, 'energy_total', utc(2026, 11, 2, 2), D(108))])
            ingest([(a.id, 'energy_total', utc(2026, 11, 2, 3), D(114))])
            # 8 at 0.5, then 2 at 0.5 + 4 at 1.0
            self.assertEqual(Wallet(wallet2.id).balance,
                before - D('4.00') - D('5.00'))

    @with_transaction()
    def test_statement_and_reconcile_reports(self):
        "Statements and the recharge history export to Excel; the "
        "reconciliation report lists energy differences"
        import io
        import openpyxl
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Job = pool.get('dh.export.job')
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, m2001, a, b, public = plaza()
            Recharge.recharge('S-1', wallet2, D('30.00'))
            ingest([(a.id, 'energy_total', utc(2026, 11, 1, 1), D(10))])
            ingest([(a.id, 'energy_total', utc(2026, 11, 1, 2), D(12))])
            job = Job.create_job('statement', {'wallet': wallet2.id,
                    'meter': a.id, 'meter_name': a.name})
            Job.run([job])
            job = Job(job.id)
            self.assertEqual((job.state, job.rows), ('done', 1), job.error)
            sheet = openpyxl.load_workbook(io.BytesIO(job.file)).active
            self.assertEqual(sheet['A2'].value, '时间')
            self.assertEqual((sheet['B3'].value, sheet['E3'].value,
                    sheet['G3'].value), ('消费', 2, -2.4))
            job = Job.create_job('recharges', {})
            Job.run([job])
            job = Job(job.id)
            self.assertEqual((job.state, job.rows), ('done', 1), job.error)

            # energy mode: 100 kWh delivered, the meter says 50 left after
            # 10 used → 40 kWh unexplained
            r = Recharge.recharge('S-2', wallet, D('120.00'), meter=m2001)
            Command.report(r.command.id, 'sent')
            Command.report(r.command.id, 'confirmed')
            ingest([(m2001.id, 'energy_total', dt.datetime.now()
                        - dt.timedelta(hours=1), D(0)),
                    (m2001.id, 'energy_total', dt.datetime.now()
                        + dt.timedelta(minutes=1), D(10)),
                    (m2001.id, 'remaining_energy', dt.datetime.now()
                        + dt.timedelta(minutes=1), D(50))])
            self.assertEqual(Meter(m2001.id).remaining, D(50))
            from ..statement import energy_differences
            (meter, expected, remaining), = energy_differences()
            self.assertEqual((meter, expected), (m2001, D('90.00')))


del ModuleTestCase
