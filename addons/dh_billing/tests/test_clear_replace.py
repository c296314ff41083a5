# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Remote clear (远程清零) and meter replacement (换表): the rules, the
money side and the continuity of usage and billing."""
import datetime as dt
import unittest
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.modules.company.tests import set_company
from trytond.modules.dh_metering.tests.tools import (
    create_areas, create_meter, utc)
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    activate_module, drop_db, with_transaction)
from trytond.transaction import Transaction

from .tools import flat_tariff, ledger_balance, setup_accounting

D = Decimal


def plaza():
    pool = Pool()
    Party = pool.get('party.party')
    Wallet = pool.get('dh.wallet')
    areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601', '602']}}})
    tenant, other = Party.create([{'name': '张伟'}, {'name': '李娜'}])
    wallet, wallet2 = Wallet.create([{'party': tenant.id},
            {'party': other.id}])
    tariff = flat_tariff('1.2')
    room = areas['唐渠', '瀚盛家园', '15', '601']
    room2 = areas['唐渠', '瀚盛家园', '15', '602']
    prepaid = create_meter(room2, '2001', '瀚15#602', '16005628',
        billing_mode='energy', tariff=tariff.id, wallet=wallet.id)
    cash = create_meter(room, '202', '瀚15#601A', '15085381',
        tariff=tariff.id, wallet=wallet2.id, billing_mode='cash')
    return wallet, wallet2, prepaid, cash


def usage_day(meter, day):
    from trytond import backend
    p = '%s' if backend.name == 'postgresql' else '?'
    cursor = Transaction().connection.cursor()
    cursor.execute('SELECT usage_e4 FROM dh_usage_day WHERE meter = '
        f"{p} AND register = 'energy_total' AND period = {p}",
        (meter.id, day))
    row = cursor.fetchone()
    return D(row[0]) / 10000 if row else None


def consumption(wallet):
    Line = Pool().get('dh.wallet.line')
    return Line.search([('wallet', '=', wallet.id),
            ('kind', '=', 'consumption')])


class ClearReplaceTestCase(unittest.TestCase):
    "远程清零 and 换表"

    @classmethod
    def setUpClass(cls):
        activate_module(['dh_billing'])

    @classmethod
    def tearDownClass(cls):
        # close this process' connections to the test database: the next
        # test restores it from the template on PostgreSQL, and cannot drop
        # a database other sessions use
        drop_db()

    def delivered_recharge(self, wallet, meter, amount, number):
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        Command = pool.get('dh.command')
        recharge = Recharge.recharge(number, wallet, amount, meter=meter)
        Command.report(recharge.command.id, 'sent')
        Command.report(recharge.command.id, 'confirmed')
        return Recharge(recharge.id)

    @with_transaction()
    def test_clear_credits_the_remaining_energy_once(self):
        "500 kWh left at 1.2: 600.00 back as one residual line, once"
        pool = Pool()
        Clear = pool.get('dh.meter.clear')
        Command = pool.get('dh.command')
        Wallet = pool.get('dh.wallet')
        Line = pool.get('dh.wallet.line')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, prepaid, cash = plaza()
            recharge = self.delivered_recharge(wallet, prepaid, D(1000),
                'T-1')
            self.assertEqual((recharge.kwh, recharge.wallet_after),
                (833, D('0.40')))
            # the tariff moved since: the energy is credited at 1.2
            prepaid.unit_price = D('1.5')
            prepaid.save()
            clear = Clear.request(prepaid, '退租清零')
            self.assertEqual(clear.state, 'requested')
            self.assertEqual(clear.user.id, Transaction().user)
            command = clear.command
            self.assertEqual((command.kind, command.reference),
                ('clear', f'dh.meter.clear:{clear.number}'))
            # the same number again (a double click): the first request
            self.assertEqual(Clear.request(prepaid, '退租清零',
                    number=clear.number), clear)
            with self.assertRaises(UserError):      # one at a time
                Clear.request(prepaid, '再清一次')
            # attempt 1: written, but neither acknowledged nor read back
            Command.report(command.id, 'sent')
            self.assertEqual(Command.report(command.id, 'failed',
                    'remaining energy unreadable', {
                        'remaining_before': '500.00', 'unknown': True}),
                'queued')
            self.assertEqual(Clear(clear.id).uncertain_energy, D('500.00'))
            self.assertFalse(Line.search([('kind', '=', 'residual')]))
            # attempt 2 finds the meter at zero: attempt 1 had cleared it
            Command.report(command.id, 'sent')
            Command.report(command.id, 'confirmed', result={
                    'remaining_before': '0.00', 'remaining_after': '0.00',
                    'acknowledged': True})
            clear = Clear(clear.id)
            self.assertEqual((clear.state, clear.meter_energy, clear.energy,
                    clear.unit_price, clear.amount), ('confirmed',
                    D('500.00'), D('500.00'), D('1.2'), D('600.00')))
            line, = Line.search([('kind', '=', 'residual')])
            self.assertEqual((line.amount, line.energy, line.meter,
                    line.reference, line.description, line.move),
                (D('600.00'), D('500.00'), prepaid, clear.number,
                    '退租清零', clear.move))
            self.assertEqual(Wallet(wallet.id).balance, D('600.40'))
            self.assertEqual(Meter(prepaid.id).remaining, D(0))
            # the books: Dr revenue / Cr prepayments, the wallet matches
            self.assertEqual(ledger_balance(wallet.party), D('600.40'))
            # a report again (a replayed one) changes nothing
            Command.report(command.id, 'confirmed', result={
                    'remaining_before': '0.00'})
            Clear.command_news(Command(command.id), {
                    'remaining_before': '7.00'})
            self.assertEqual(len(Line.search([('kind', '=', 'residual')])),
                1)
            self.assertEqual(Wallet(wallet.id).balance, D('600.40'))

    @with_transaction()
    def test_clear_with_a_multiplier_and_a_confirmed_first_try(self):
        "At multiplier 30 the meter's 2.50 are 75 kWh: 90.00 back"
        pool = Pool()
        Clear = pool.get('dh.meter.clear')
        Command = pool.get('dh.command')
        Wallet = pool.get('dh.wallet')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, prepaid, cash = plaza()
            prepaid.multiplier = D(30)
            prepaid.save()
            self.delivered_recharge(wallet, prepaid, D(120), 'T-30')
            before = Wallet(wallet.id).balance
            clear = Clear.request(prepaid, '换表前清零')
            Command.report(clear.command.id, 'sent')
            Command.report(clear.command.id, 'confirmed', result={
                    'remaining_before': '2.50', 'remaining_after': '0.00'})
            clear = Clear(clear.id)
            self.assertEqual((clear.energy, clear.amount),
                (D('75.00'), D('90.00')))
            self.assertEqual(Wallet(wallet.id).balance, before + D('90.00'))

    @with_transaction()
    def test_failed_or_expired_clear_writes_nothing(self):
        pool = Pool()
        Clear = pool.get('dh.meter.clear')
        Command = pool.get('dh.command')
        Line = pool.get('dh.wallet.line')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, prepaid, cash = plaza()
            self.delivered_recharge(wallet, prepaid, D(100), 'T-2')
            clear = Clear.request(prepaid, '测试')
            for _ in range(5):
                Command.report(clear.command.id, 'sent')
                Command.report(clear.command.id, 'failed',
                    'refused the clear', {'remaining_before': '80.00'})
            clear = Clear(clear.id)
            self.assertEqual((clear.state, clear.error, clear.amount),
                ('failed', 'refused the clear', None))
            # expired
            clear = Clear.request(prepaid, '测试2')
            Command.write([clear.command], {
                    'expires_at': dt.datetime.now() - dt.timedelta(
                        seconds=1)})
            Command.cron_expire()
            self.assertEqual(Clear(clear.id).state, 'failed')
            # cancelled by hand
            clear = Clear.request(prepaid, '测试3')
            Command.cancel([clear.command])
            self.assertEqual(Clear(clear.id).state, 'failed')
            self.assertFalse(Line.search([('kind', '=', 'residual')]))
            # the records stay
            with self.assertRaises(UserError):
                Clear.delete([clear])

    @with_transaction()
    def test_clear_rules(self):
        "A reason; an energy-mode meter; only the DH administrators"
        pool = Pool()
        Clear = pool.get('dh.meter.clear')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        Group = pool.get('res.group')
        ActionGroup = pool.get('ir.action-res.group')
        Wizard = pool.get('dh.meter.clear.wizard', type='wizard')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, prepaid, cash = plaza()
            with self.assertRaises(UserError):
                Clear.request(prepaid, '  ')
            with self.assertRaises(UserError):
                Clear.request(cash, '现金表')
            clerk_group = Group(ModelData.get_id('dh_metering',
                    'group_dh_clerk'))
            finance_group = Group(ModelData.get_id('dh_metering',
                    'group_dh_finance'))
            clerk, = User.create([{'login': 'clerk', 'name': '收费员',
                        'groups': [('add', [clerk_group.id,
                                    finance_group.id])],
                        'companies': [('add', [company.id])],
                        'company': company.id}])
            with Transaction().set_user(clerk.id):
                with self.assertRaises(UserError) as raised:
                    Clear.request(prepaid, '收费员清零')
            self.assertIn('administrator', str(raised.exception))
            self.assertFalse(Clear.search([]))
            # the wizard is offered to the DH administrators only
            action = ModelData.get_id('dh_billing', 'wizard_clear')
            groups = {g.group.id for g in ActionGroup.search([
                        ('action', '=', action)])}
            self.assertEqual(groups, {ModelData.get_id('dh_metering',
                        'group_dh_admin')})
            with Transaction().set_user(clerk.id), \
                    Transaction().set_context(active_model='dh.meter',
                        active_id=prepaid.id, active_ids=[prepaid.id]):
                # Tryton refuses the wizard to the clerk's groups
                with self.assertRaises(UserError) as raised:
                    Wizard.create()
                self.assertIn('dh.meter.clear.wizard', str(raised.exception))
            # the admin user is a DH administrator: the wizard
            session_id, _, _ = Wizard.create()
            wizard = Wizard(session_id)
            with Transaction().set_context(active_model='dh.meter',
                    active_id=prepaid.id, active_ids=[prepaid.id]):
                defaults = wizard.default_start(None)
                self.assertEqual((defaults['meter'], defaults['wallet'],
                        defaults['unit_price']), (prepaid.id, wallet.id,
                        D('1.2')))
                wizard.start.number = defaults['number']
                wizard.start.reason = '管理员清零'
                self.assertEqual(wizard.transition_clear(), 'end')
                wizard.transition_clear()       # a double click
            clear, = Clear.search([])
            self.assertEqual((clear.number, clear.reason, clear.state),
                (defaults['number'], '管理员清零', 'requested'))

    @with_transaction()
    def test_replacement_keeps_usage_and_billing_continuous(self):
        "old 1000.00 → 1012.50, new 0.00 → 3.20: 15.70 kWh billed once"
        pool = Pool()
        Meter = pool.get('dh.meter')
        Reading = pool.get('dh.meter.reading')
        Recharge = pool.get('dh.recharge')
        Wallet = pool.get('dh.wallet')
        Log = pool.get('dh.meter.replacement')
        Matrix = pool.get('dh.report.daily_matrix')
        Usage = pool.get('dh.report.usage')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, prepaid, old = plaza()
            old.vendor = 'password-big-endian'
            old.password = '123456'
            old.save()
            Recharge.recharge('C-1', wallet2, D('100.00'))
            Reading.ingest([(old.id, 'energy_total', utc(2026, 11, 2, 0, 45),
                        D('1000.00'))])
            self.assertEqual(Wallet(wallet2.id).balance, D('100.00'))
            at = utc(2026, 11, 2, 10, 0)
            with self.assertRaises(UserError):      # below the last
                Meter.replace(old, {'address': '15085399'}, D('999.99'),
                    D(0), at=at)
            with self.assertRaises(UserError):      # before the last
                Meter.replace(old, {'address': '15085399'}, D('1012.50'),
                    D(0), at=utc(2026, 11, 2, 0, 0))
            new = Meter.replace(old, {'address': '15085399'},
                D('1012.50'), D('0.00'), at=at, note='表坏')
            old = Meter(old.id)
            # the new meter inherits the room, the wallet, the tariff...
            self.assertEqual((new.number, new.name, new.area, new.wallet,
                    new.tariff, new.billing_mode, new.multiplier,
                    new.address, new.replaces), ('202', '瀚15#601A',
                    old.area, wallet2, old.tariff, 'cash', D(1),
                    '000015085399', old))
            self.assertEqual((new.vendor, new.password),
                ('password-big-endian', '123456'))
            self.assertEqual((old.active, old.replaced_by, old.replaced_at,
                    old.number), (False, new, at, '202/202611020200'))
            log, = Log.search([])
            self.assertEqual((log.old_meter, log.new_meter, log.last_value,
                    log.final_value, log.opening_value),
                (old, new, D('1000.00'), D('1012.50'), D('0.00')))
            # the old meter billed to its final reading: 12.50 × 1.2
            self.assertEqual(Wallet(wallet2.id).balance, D('85.00'))
            Reading.ingest([(new.id, 'energy_total',
                        utc(2026, 11, 2, 18, 0), D('3.20'))])
            self.assertEqual(Wallet(wallet2.id).balance, D('81.16'))
            # exactly once: billing and ingest again change nothing
            Meter.bill([old, new])
            Reading.ingest([(new.id, 'energy_total',
                        utc(2026, 11, 2, 18, 0), D('3.20'))])
            self.assertEqual(Wallet(wallet2.id).balance, D('81.16'))
            lines = consumption(wallet2)
            self.assertEqual(sum(l.energy for l in lines), D('15.70'))
            self.assertEqual(sum(l.amount for l in lines), D('-18.84'))
            self.assertEqual({l.meter for l in lines}, {old, new})
            # usage of the day: 12.50 on the old meter + 3.20 on the new
            day = dt.date(2026, 11, 2)
            self.assertEqual((usage_day(old, day), usage_day(new, day)),
                (D('12.50'), D('3.20')))
            # the reports list both meters for the month of the swap
            with Transaction().set_context(year=2026, month='11',
                    register='energy_total'):
                rows = {r.meter: r for r in Matrix.search([
                            ('level4', '=', '601')])}
            self.assertEqual(set(rows), {old, new})
            self.assertAlmostEqual(sum(r.total for r in rows.values()),
                15.70, places=2)
            self.assertAlmostEqual(rows[old].d02 + rows[new].d02, 15.70,
                places=2)
            with Transaction().set_context(granularity='day',
                    from_date=day, to_date=day, register='energy_total'):
                rows = {r.meter: r for r in Usage.search([
                            ('level4', '=', '601')])}
            self.assertEqual(set(rows), {old, new})
            self.assertAlmostEqual(rows[old].current_value, 1012.50, 2)
            self.assertAlmostEqual(rows[new].current_value, 3.20, 2)
            # the next month lists the new meter only
            with Transaction().set_context(year=2026, month='12',
                    register='energy_total'):
                self.assertEqual([r.meter for r in Matrix.search([
                                ('level4', '=', '601')])], [new])
            # an archived meter is not replaced twice
            with self.assertRaises(UserError):
                Meter.replace(old, {'address': '15085398'}, D('1012.50'),
                    D(0), at=utc(2026, 11, 3))

    @with_transaction()
    def test_replace_wizard(self):
        "The wizard: a new number keeps the old one's"
        pool = Pool()
        Meter = pool.get('dh.meter')
        Reading = pool.get('dh.meter.reading')
        Replace = pool.get('dh.meter.replace', type='wizard')
        company = setup_accounting()
        with set_company(company):
            wallet, wallet2, prepaid, old = plaza()
            Reading.ingest([(old.id, 'energy_total', utc(2026, 11, 2, 0, 45),
                        D('20.00'))])
            session_id, _, _ = Replace.create()
            replace = Replace(session_id)
            with Transaction().set_context(active_model='dh.meter',
                    active_id=old.id, active_ids=[old.id]):
                defaults = replace.default_start(None)
                self.assertEqual((defaults['last_value'],
                        defaults['final_value'], defaults['number']),
                    (D('20.00'), D('20.00'), '202'))
                replace.start.meter = old
                replace.start.final_value = D('21.00')
                replace.start.opening_value = D('5.00')
                replace.start.date = utc(2026, 11, 3, 9)
                replace.start.number = '202B'
                replace.start.address = '15085390'
                replace.start.protocol = 'dlt645_2007'
                replace.start.note = None
                replace.start.vendor = 'password-big-endian'
                replace.start.password = '654321'
                replace.transition_replace()
            new, = Meter.search([('number', '=', '202B')])
            old = Meter(old.id)
            self.assertEqual((old.number, old.replaced_by, new.replaces,
                    new.vendor, new.password), ('202', new, old,
                    'password-big-endian', '654321'))
