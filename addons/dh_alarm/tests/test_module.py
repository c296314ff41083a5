# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
import datetime as dt
from collections import Counter
from decimal import Decimal

from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import CompanyTestMixin, set_company
from trytond.modules.dh_billing.tests.tools import (
    flat_tariff, setup_accounting)
from trytond.modules.dh_metering.tests.tools import (
    create_areas, create_meter, utc)
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

D = Decimal
TENANT = '13900000001'
STAFF = '13900000002'
MANAGER = '13900000003'


def plaza(**profile_values):
    """唐渠 / 瀚盛家园 / 15 / 601 with a manager (mobile MANAGER), a profile
    on the district and two meters: A (cash, wallet, tenant) and B"""
    pool = Pool()
    Profile = pool.get('dh.alarm.profile')
    User = pool.get('res.user')
    Party = pool.get('party.party')
    Wallet = pool.get('dh.wallet')
    areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601']}},
            '东政': {'东政': {'东政': ['东政']}}})
    district = areas['唐渠', ]
    room = areas['唐渠', '瀚盛家园', '15', '601']
    manager, = User.create([{'name': '片区经理', 'login': 'mgr',
                'dh_mobile': MANAGER,
                'dh_areas': [('add', [district.id])]}])
    values = {'name': '居民', 'phones': STAFF, 'voltage_max': D(240),
        'current_max': D(40), 'day_usage_max': D(30),
        'month_usage_max': D(500), 'night_usage_max': D(4),
        'remaining_min': D(20), 'stagnant_days': 3, 'offline_cycles': 3,
        'areas': [('add', [district.id])]}
    values.update(profile_values)
    profile, = Profile.create([values])
    tenant, = Party.create([{'name': '张伟'}])
    wallet, = Wallet.create([{'party': tenant.id}])
    tariff = flat_tariff('1.0')
    a = create_meter(room, '202', '瀚15#601A', '15085381', tariff=tariff.id,
        wallet=wallet.id, billing_mode='cash', tenant=tenant.id,
        alarm_phones=TENANT)
    b = create_meter(room, '203', '瀚15#601B', '15085377')
    other = create_meter(areas['东政', '东政', '东政', '东政'], '2001', '东政',
        '16005628')
    return profile, wallet, a, b, other


def ingest(rows):
    Reading = Pool().get('dh.meter.reading')
    return Reading.ingest(rows)


def alarms(meter=None, kind=None, state=None):
    Alarm = Pool().get('dh.alarm')
    domain = []
    if meter:
        domain.append(('meter', '=', meter.id))
    if kind:
        domain.append(('kind', '=', kind))
    if state == 'not closed':
        domain.append(('state', '!=', 'closed'))
    elif state:
        domain.append(('state', '=', state))
    return Alarm.search(domain, order=[('id', 'ASC')])


def sent(template=None):
    Notification = Pool().get('dh.notification')
    domain = [('state', '!=', 'given_up')]
    if template:
        domain.append(('template', '=', template))
    return Notification.search(domain, order=[('id', 'ASC')])


def set_balance(wallet, balance):
    Wallet = Pool().get('dh.wallet')
    wallet = Wallet(wallet.id)
    Wallet.post_lines(wallet, [{'kind': 'adjustment',
                'amount': D(balance) - wallet.balance}])


class DhAlarmTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the dh_alarm module"
    module = 'dh_alarm'

    @with_transaction()
    def test_profile_mobiles_validated(self):
        "Bad alarm mobiles are refused with the bad number named"
        Profile = Pool().get('dh.alarm.profile')
        profile, = Profile.create([{'name': 'p',
                    'phones': '13800138000, +86 139-0000-0001'}])
        self.assertEqual(profile.mobiles, ['13800138000', '13900000001'])
        with self.assertRaises(ValidationError) as cm:
            Profile.write([profile], {'phones': '13800138000,12345'})
        self.assertIn('12345', cm.exception.message)
        with self.assertRaises(ValidationError):
            Profile.write([profile], {'night_start': '25:00'})
        with self.assertRaises(ValidationError):
            Profile.write([profile], {'tod_power_limits': '08:00 x'})

    @with_transaction()
    def test_effective_profile(self):
        "A meter uses its own profile, else its nearest area's"
        pool = Pool()
        Profile = pool.get('dh.alarm.profile')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            self.assertEqual(Meter(a.id).effective_profile, profile)
            self.assertIsNone(Meter(other.id).effective_profile)
            # a profile given to an area later reaches its meters
            east, = pool.get('dh.area').search([('name', '=', '东政'),
                    ('level', '=', '2')])
            later, = Profile.create([{'name': '东政',
                        'areas': [('add', [east.id])]}])
            self.assertEqual(Meter(other.id).effective_profile, later)
            Profile.write([later], {'areas': [('remove', [east.id])]})
            self.assertIsNone(Meter(other.id).effective_profile)
            own, = Profile.create([{'name': 'shop'}])
            Meter.write([Meter(a.id)], {'alarm_profile': own.id})
            self.assertEqual(Meter(a.id).effective_profile, own)
            self.assertEqual(Meter(b.id).effective_profile, profile)
            Meter.write([Meter(a.id)], {'alarm_profile': None})
            self.assertEqual(Meter(a.id).effective_profile, profile)

    @with_transaction()
    def test_over_voltage_boundary_and_no_duplicates(self):
        "Equal to the limit is no alarm; one event while it lasts"
        pool = Pool()
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            t = utc(2026, 11, 20, 10)
            ingest([(b.id, 'voltage', t, D('240.0'))])
            self.assertEqual(alarms(b), [])
            ingest([(b.id, 'voltage', t + dt.timedelta(minutes=15),
                        D('240.1'))])
            alarm, = alarms(b)
            self.assertEqual((alarm.kind, alarm.state, alarm.value,
                    alarm.threshold), ('over_voltage', 'open', D('240.1'),
                    D(240)))
            self.assertEqual(Meter(b.id).state, 'alarm')
            ingest([(b.id, 'voltage', t + dt.timedelta(minutes=30),
                        D('251.5'))])
            alarm, = alarms(b)
            self.assertEqual(alarm.value, D('251.5'))
            ingest([(b.id, 'voltage', t + dt.timedelta(minutes=45),
                        D('229'))])
            alarm, = alarms(b)
            self.assertEqual(alarm.state, 'closed')
            self.assertIsNotNone(alarm.end)
            self.assertEqual(Meter(b.id).state, 'normal')
            # the other meter (no profile) is never evaluated
            ingest([(other.id, 'voltage', t, D('300'))])
            self.assertEqual(alarms(other), [])

    @with_transaction()
    def test_day_usage_and_month_end(self):
        "Daily maximum per local day; monthly maximum per month"
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(day_usage_max=D(30),
                month_usage_max=D(50), night_usage_max=None)
            rows = [(b.id, 'energy_total', utc(2026, 10, 31, 8), 100),
                (b.id, 'energy_total', utc(2026, 10, 31, 12), 130),
                ]
            ingest(rows)
            self.assertEqual(alarms(b), [])     # 30 = max: no alarm
            ingest([(b.id, 'energy_total', utc(2026, 10, 31, 14), 131)])
            day, = alarms(b, 'day_usage')
            self.assertEqual((day.period, day.value), ('2026-10-31', D(31)))
            ingest([(b.id, 'energy_total', utc(2026, 10, 31, 20), 151)])
            month, = alarms(b, 'month_usage')
            self.assertEqual((month.period, month.value), ('2026-10', D(51)))
            # the next day (local) closes yesterday's event; November starts
            # from zero
            ingest([(b.id, 'energy_total', utc(2026, 11, 1, 6), 152)])
            day, = alarms(b, 'day_usage')
            self.assertEqual(day.state, 'closed')
            month, = alarms(b, 'month_usage')
            self.assertEqual(month.state, 'closed')
            ingest([(b.id, 'energy_total', utc(2026, 11, 1, 23), 190)])
            days = alarms(b, 'day_usage')
            self.assertEqual([(d.period, d.state) for d in days],
                [('2026-10-31', 'closed'), ('2026-11-01', 'open')])

    @with_transaction()
    def test_night_usage_across_midnight(self):
        "The night 23:00 → 06:00 is one window across midnight"
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(night_usage_max=D(4),
                day_usage_max=None)
            base = 1000
            rows = []
            value = base
            # 22:00 .. 07:00 local, 1 kWh an hour
            for hour in range(10):
                t = utc(2026, 11, 20, 22) + dt.timedelta(hours=hour)
                rows.append((b.id, 'energy_total', t, value))
                value += 1
            ingest(rows[:4])            # until 01:00: 2 kWh in the night
            self.assertEqual(alarms(b, 'night_usage'), [])
            ingest(rows[4:])            # the whole night: 7 kWh
            night, = alarms(b, 'night_usage')
            self.assertEqual((night.period, night.value),
                ('2026-11-20', D(7)))

    @with_transaction()
    def test_stagnant_and_offline(self):
        "静止: tenant meter flat for N days (timed round); offline after N "
        "cycles; readings close both"
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(remaining_min=None,
                day_usage_max=None, night_usage_max=None)
            start = utc(2026, 11, 16, 0)
            rows = [(m.id, 'energy_total', start + dt.timedelta(hours=h),
                    D(500) if m == a else D(h)) for h in range(0, 24 * 4, 6)
                for m in [a, b]]
            ingest(rows)
            now = utc(2026, 11, 19, 19)
            Alarm.evaluate(None, now)
            stagnant, = alarms(kind='stagnant')
            self.assertEqual(stagnant.meter, a)    # b has no tenant
            self.assertEqual(alarms(kind='offline'), [])
            # 3 cycles of 60 minutes without a reading
            later = utc(2026, 11, 19, 18) + dt.timedelta(hours=3)
            Alarm.evaluate(None, later)
            self.assertEqual(sorted(x.meter.id for x in alarms(
                        kind='offline')), sorted([a.id, b.id]))
            self.assertEqual(Meter(a.id).state, 'offline')
            # not twice
            Alarm.evaluate(None, later + dt.timedelta(hours=1))
            self.assertEqual(len(alarms(kind='offline')), 2)
            ingest([(a.id, 'energy_total', later, D(501))])
            self.assertEqual(alarms(a, 'offline')[0].state, 'closed')
            self.assertEqual(alarms(a, 'stagnant')[0].state, 'closed')
            self.assertEqual(Meter(a.id).state, 'normal')
            self.assertEqual(Meter(b.id).state, 'offline')

    @with_transaction()
    def test_reverse_energy_and_over_load(self):
        "Reverse energy counted today; power over the max load"
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(max_load=D(8),
                tod_power_limits='23:00 2\n07:00 8')
            t = utc(2026, 11, 20, 10)
            ingest([(b.id, 'energy_reverse', t, D(5)),
                    (b.id, 'energy_reverse', t + dt.timedelta(hours=1),
                        D('5.5')),
                    (b.id, 'power', t, D(8))])
            reverse, = alarms(b, 'reverse_energy')
            self.assertEqual(reverse.value, D('0.5'))
            self.assertEqual(alarms(b, 'over_load'), [])
            # at night the band allows 2 kW
            ingest([(b.id, 'power', utc(2026, 11, 20, 23, 30), D('2.5'))])
            load, = alarms(b, 'over_load')
            self.assertEqual((load.value, load.threshold),
                (D('2.5'), D(2)))

    @with_transaction()
    def test_relay_mismatch_from_commands(self):
        "A failed trip is a relay mismatch (red); a confirmed one ends it"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            command, = Command.queue([b], 'trip', max_attempts=1)
            Command.report(command.id, 'sent')
            Command.report(command.id, 'failed', error='relay stuck')
            mismatch, = alarms(b, 'relay_mismatch')
            self.assertIn('relay stuck', mismatch.description)
            self.assertEqual(Meter(b.id).state, 'fault')
            command, = Command.queue([b], 'trip')
            Command.report(command.id, 'sent')
            Command.report(command.id, 'confirmed')
            mismatch, = alarms(b, 'relay_mismatch')
            self.assertEqual(mismatch.state, 'closed')
            self.assertEqual(Meter(b.id).state, 'cutoff')

    @with_transaction()
    def test_used_while_open_is_mismatch(self):
        "The meter keeps counting after a confirmed trip: relay mismatch"
        pool = Pool()
        Command = pool.get('dh.command')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(day_usage_max=None,
                night_usage_max=None)
            command, = Command.queue([b], 'trip')
            Command.report(command.id, 'sent')
            Command.report(command.id, 'confirmed')
            done = Command(command.id).done_at
            hour = done.replace(minute=0, second=0, microsecond=0)
            ingest([(b.id, 'energy_total', hour + dt.timedelta(hours=1), 10),
                    (b.id, 'energy_total', hour + dt.timedelta(hours=2),
                        10)])
            self.assertEqual(alarms(b, 'relay_mismatch'), [])
            ingest([(b.id, 'energy_total', hour + dt.timedelta(hours=3),
                        11)])
            mismatch, = alarms(b, 'relay_mismatch')
            self.assertEqual(mismatch.value, D(1))

    @with_transaction()
    def test_alarm_fault_keeps_the_readings(self):
        "A failing rule is logged; the ingest batch is stored all the same"
        from unittest.mock import patch
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        Reading = pool.get('dh.meter.reading')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            t = utc(2026, 11, 20, 10)
            with patch.object(Alarm, 'evaluate',
                    side_effect=RuntimeError('bug in a rule')), \
                    self.assertLogs('trytond.modules.dh_alarm', 'ERROR'):
                result = ingest([(b.id, 'voltage', t, D(260)),
                        (b.id, 'energy_total', t, D(5))])
            self.assertEqual(result['inserted'], 2)
            self.assertEqual(len(Reading.search([('meter', '=', b.id)])), 2)
            self.assertEqual(alarms(b), [])
            # the next round catches up
            Alarm.evaluate([b.id], t)
            self.assertEqual([x.kind for x in alarms(b)], ['over_voltage'])

    @with_transaction()
    def test_acknowledge(self):
        "Acknowledged events stay until the condition goes, not doubled"
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            t = utc(2026, 11, 20, 10)
            ingest([(b.id, 'current', t, D(41))])
            alarm, = alarms(b)
            Alarm.do_acknowledge([alarm], '已通知电工')
            ingest([(b.id, 'current', t + dt.timedelta(minutes=5), D(45))])
            alarm, = alarms(b)
            self.assertEqual((alarm.state, alarm.note, alarm.value),
                ('acknowledged', '已通知电工', D(45)))
            ingest([(b.id, 'current', t + dt.timedelta(minutes=10), D(3))])
            self.assertEqual(alarms(b)[0].state, 'closed')

    @with_transaction()
    def test_low_balance_staged(self):
        "Mode b: threshold, 50 %, 20 % — three messages to each of tenant, "
        "profile number and area manager; a recharge resets the staging"
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        Recharge = pool.get('dh.recharge')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(
                low_balance_mode='staged')
            now = utc(2026, 11, 20, 10)
            for balance, expected in [(25, 0), ('20.00', 1), (15, 1),
                    (10, 2), (9, 2), ('4.00', 3), (1, 3), (-2, 3)]:
                set_balance(wallet, balance)
                Alarm.evaluate([a.id], now)
                messages = sent('low_balance')
                self.assertEqual(len(messages), 3 * expected,
                    msg=f'balance {balance}')
            self.assertEqual(Counter(m.recipient for m in messages),
                {TENANT: 3, STAFF: 3, MANAGER: 3})
            self.assertIn('瀚15#601A剩余4.00元', messages[-1].text)
            alarm, = alarms(a, 'low_remaining')
            self.assertEqual(alarm.stage, 3)
            # recharged above the threshold: closed, staging reset
            Recharge.recharge('R-1', wallet, D(100))
            self.assertEqual(alarms(a, 'low_remaining')[0].state, 'closed')
            set_balance(wallet, 3)
            Alarm.evaluate([a.id], now)
            self.assertEqual(len(sent('low_balance')), 9 + 3)
            alarm = alarms(a, 'low_remaining')[-1]
            self.assertEqual((alarm.state, alarm.stage), ('open', 3))

    @with_transaction()
    def test_low_balance_daily(self):
        "Mode a: one message a day at the set time until recharged"
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        Recharge = pool.get('dh.recharge')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(low_balance_mode='daily',
                daily_time='09:00', stagnant_days=0, offline_cycles=0)
            set_balance(wallet, 15)
            counts = []
            for local in [(20, 8, 0), (20, 8, 59), (20, 9, 0), (20, 15, 0),
                    (21, 8, 0), (21, 9, 15), (21, 23, 0), (22, 9, 0)]:
                Alarm.evaluate([a.id], utc(2026, 11, *local))
                counts.append(len(sent('low_balance')) // 3)
            self.assertEqual(counts, [0, 0, 1, 1, 1, 2, 2, 3])
            Recharge.recharge('R-2', wallet, D(50))
            Alarm.evaluate([a.id], utc(2026, 11, 23, 9))
            self.assertEqual(len(sent('low_balance')), 9)

    @with_transaction()
    def test_notification_dedup_and_daily_cap(self):
        "The same key never makes two rows; a phone over its cap is not "
        "sent to"
        pool = Pool()
        Notification = pool.get('dh.notification')
        Config = pool.get('dh.alarm.configuration')
        config = Config(1)
        config.daily_cap = 2
        config.save()
        recipients = [('sms', TENANT)]
        params = {'meter': 'A', 'remaining': '1', 'threshold': '2',
            'unit': '元'}
        first = Notification.notify('low_balance', params, recipients, 'k1')
        again = Notification.notify('low_balance', params, recipients, 'k1')
        self.assertEqual((len(first), len(again)), (1, 0))
        Notification.notify('low_balance', params, recipients, 'k2')
        third, = Notification.notify('low_balance', params, recipients,
            'k3')
        self.assertEqual(third.state, 'given_up')
        self.assertIn('2', third.error)

    @with_transaction()
    def test_cutoff_and_restored_messages(self):
        "Arrears trip and the close after a recharge are messaged once"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            Meter.write([Meter(a.id)], {'relay': 'closed'})
            set_balance(wallet, -5)
            pool.get('dh.wallet').check_arrears([wallet])
            trip, = Command.search([('meter', '=', a.id),
                    ('kind', '=', 'trip')])
            Command.report(trip.id, 'sent')
            Command.report(trip.id, 'confirmed')
            Command.report(trip.id, 'confirmed')
            cut = sent('cutoff')
            self.assertEqual(len(cut), 3)
            self.assertIn('因余额不足已断电', cut[0].text)
            pool.get('dh.recharge').recharge('R-3', wallet, D(50))
            close, = Command.search([('meter', '=', a.id),
                    ('kind', '=', 'close')])
            Command.report(close.id, 'sent')
            Command.report(close.id, 'confirmed')
            restored = sent('restored')
            self.assertEqual(len(restored), 3)
            self.assertIn('45.00', restored[0].text)

    @with_transaction()
    def test_monthly_usage_message(self):
        "月用量短信 on the settlement day, once"
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(settlement_day=1,
                stagnant_days=0, offline_cycles=0, remaining_min=None)
            ingest([(a.id, 'energy_total', utc(2026, 10, 1, 0, 30), 100),
                    (a.id, 'energy_total', utc(2026, 10, 31, 23), 250),
                    (a.id, 'energy_total', utc(2026, 11, 1, 1), 251)])
            Alarm.evaluate([a.id], utc(2026, 10, 31, 10))
            self.assertEqual(sent('monthly_usage'), [])
            Alarm.evaluate([a.id], utc(2026, 11, 1, 9))
            Alarm.evaluate([a.id], utc(2026, 11, 1, 10))
            messages = sent('monthly_usage')
            self.assertEqual(len(messages), 3)
            self.assertIn('2026-10-01~2026-10-31用量150.00度',
                messages[0].text)

    @with_transaction()
    def test_trip_records_and_lockout(self):
        "报警记录 read from the meter become events; a lockout stays open "
        "until the reset is confirmed"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            Meter.read_trip_records([b])
            command, = Command.search([('kind', '=', 'event_read')])
            result = {'events': [
                    {'at': '2026-11-20T10:00:03', 'kind': 'overload',
                        'power': '9.100', 'lockout': False},
                    {'at': '2026-11-20T10:05:01', 'kind': 'overload',
                        'power': '9.300', 'lockout': True}],
                'lockout': True}
            Command.report(command.id, 'sent')
            Command.report(command.id, 'confirmed', result=result)
            trips = alarms(b, 'load_trip')
            self.assertEqual([t.value for t in trips], [D('9.1'), D('9.3')])
            self.assertTrue(all(t.state == 'closed' for t in trips))
            lockout, = alarms(b, 'load_lockout')
            self.assertEqual(Meter(b.id).state, 'fault')
            # read again: the same records are not doubled
            Meter.read_trip_records([b])
            command2, = Command.search([('kind', '=', 'event_read'),
                    ('state', '=', 'queued')])
            Command.report(command2.id, 'sent')
            Command.report(command2.id, 'confirmed', result=result)
            self.assertEqual(len(alarms(b, 'load_trip')), 2)
            self.assertEqual(len(alarms(b, 'load_lockout')), 1)
            Meter.reset_lockout([b])
            reset, = Command.search([('kind', '=', 'load_reset')])
            Command.report(reset.id, 'sent')
            Command.report(reset.id, 'confirmed')
            self.assertEqual(alarms(b, 'load_lockout')[0].state, 'closed')
            self.assertEqual(Meter(b.id).state, 'normal')

    @with_transaction()
    def test_safety_parameters_written(self):
        "设置 queues one parameter write per meter with the profile limits"
        pool = Pool()
        Command = pool.get('dh.command')
        Profile = pool.get('dh.alarm.profile')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(max_load=D(8),
                malignant_power=D('2.5'), overload_trips_allowed=20,
                malignant_trips_allowed=20, overdraft_energy=D(10),
                tod_power_limits='07:00 8\n23:00 2')
            Profile.write_safety([profile])
            commands = Command.search([('kind', '=', 'param_write')])
            self.assertEqual({c.meter for c in commands}, {a, b})
            import json
            payload = json.loads(commands[0].payload)['params']
            self.assertEqual(D(payload['max_load']), D(8))
            self.assertEqual(payload['tod_power_limits'],
                [['07:00', '8'], ['23:00', '2']])
            self.assertEqual(int(payload['overload_trips_allowed']), 20)
            Profile.read_safety([profile])
            read, = Command.search([('kind', '=', 'param_read'),
                    ('meter', '=', b.id)])
            Command.report(read.id, 'sent')
            Command.report(read.id, 'confirmed',
                result={'params': {'max_load': '8.0000'}})
            self.assertIn('8.0000', pool.get('dh.meter')(b.id)
                .safety_readback)

    @with_transaction()
    def test_emergency_overdraft_honoured(self):
        "应急透支电量 × price is credit before the cut-off"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        Wallet = pool.get('dh.wallet')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(overdraft_energy=D(10))
            Meter.write([Meter(a.id)], {'relay': 'closed'})
            set_balance(wallet, -9)
            Wallet.check_arrears([wallet])
            self.assertEqual(Command.search([('kind', '=', 'trip')]), [])
            set_balance(wallet, -11)
            Wallet.check_arrears([wallet])
            self.assertEqual(len(Command.search([('kind', '=', 'trip')])),
                1)

    @with_transaction()
    def test_monthly_topup(self):
        "月补电量 credited once a month on the settlement day"
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza(monthly_topup=D(15),
                settlement_day=5)
            self.assertEqual(Wallet.cron_monthly_topup(
                    dt.date(2026, 11, 4)), [])
            Wallet.cron_monthly_topup(dt.date(2026, 11, 5))
            Wallet.cron_monthly_topup(dt.date(2026, 11, 6))
            self.assertEqual(Wallet(wallet.id).balance, D('15.00'))

    @with_transaction()
    def test_control_mode_applied(self):
        "断电送电控制: unconditional trip / close are sent at once"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            Meter.write([Meter(b.id)], {'relay': 'closed'})
            Meter.write([Meter(b.id)], {'control_mode': 'always_off'})
            trip, = Command.search([('meter', '=', b.id)])
            self.assertEqual(trip.kind, 'trip')
            Meter.write([Meter(b.id)], {'relay': 'open'})
            Meter.write([Meter(b.id)], {'control_mode': 'always_on'})
            self.assertEqual({c.kind for c in Command.search(
                        [('meter', '=', b.id)])}, {'trip', 'close'})
            # a meter-side prepaid meter holds itself (保电)
            Meter.write([Meter(b.id)], {'billing_mode': 'energy'})
            Meter.write([Meter(b.id)], {'control_mode': 'controlled_no_cut'})
            Meter.write([Meter(b.id)], {'control_mode': 'controlled'})
            self.assertEqual({c.kind for c in Command.search(
                        [('meter', '=', b.id)])},
                {'trip', 'close', 'hold', 'hold_release'})

    @with_transaction()
    def test_status_board_opens_alarms(self):
        "Clicking a state on the board opens the alarms of those meters"
        pool = Pool()
        StatusCount = pool.get('dh.meter.status.count')
        Wizard = pool.get('dh.meter.status.alarms', type='wizard')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            ingest([(b.id, 'voltage', utc(2026, 11, 20, 10), D(250))])
            row, = [r for r in StatusCount.search([])
                if r.state == 'alarm']
            self.assertEqual(row.count, 1)
            session_id, _, _ = Wizard.create()
            wizard = Wizard(session_id)
            with Transaction().set_context(active_model=StatusCount.__name__,
                    active_id=row.id, active_ids=[row.id]):
                action, = [a for a in [wizard.execute(session_id, {},
                                'open_')] if a]
            self.assertIn("alarm", str(action))



class DhAlarmApiTestCase(ModuleTestCase):
    "dh_alarm with the integration API installed"
    module = 'dh_alarm'
    extras = ['dh_api']

    @with_transaction()
    def test_abnormal_devices_list_open_alarms(self):
        "devices/abnormal gives each open alarm as a reason"
        pool = Pool()
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            profile, wallet, a, b, other = plaza()
            ingest([(b.id, 'voltage', utc(2026, 11, 20, 10), D('251.5'))])
            table = Meter.__table__()
            reasons = Meter.api_abnormal_reasons(table.select(table.id))
            codes = [(r['code'], r['detail'] and r['detail'].get('value'))
                for r in reasons[b.id]]
            self.assertIn(('alarm_over_voltage', '251.5'), codes)
            self.assertNotIn(a.id, reasons)


del ModuleTestCase
