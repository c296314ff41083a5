# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The demo's alarms: profiles on the plaza (residential by district, a
safe-electricity one for the shops), tenants' and managers' mobiles, the
log-only SMS gateway, and a first alarm round over what is there — stagnant
meters, the offline one, low balances already messaged — plus an
over-voltage, a relay that does not answer, and one shop locked out by its
malignant-load protection, waiting for a manager."""
import datetime as dt
from decimal import Decimal

from trytond.pool import Pool

D = Decimal
UTC = dt.timezone.utc
MANAGER_MOBILES = {'manager_tangqu': '13900000101',
    'manager_dongzheng': '13900000102', 'maint': '13900000103'}


class DemoPart:
    sequence = 40
    name = 'dh_alarm'

    @classmethod
    def build(cls, options, log):
        pool = Pool()
        Profile = pool.get('dh.alarm.profile')
        if Profile.search([], count=True):
            log('dh_alarm: profiles present, kept as they are')
            return {}
        cls.configure()
        cls.mobiles()
        profiles = cls.profiles()
        result = cls.conditions(profiles, log)
        return result

    @classmethod
    def configure(cls):
        Config = Pool().get('dh.alarm.configuration')
        config = Config(1)
        config.sms_gateway = 'log'
        config.sms_sign_name = 'DH物业'
        # managers get every alarm of their district: a higher cap
        config.daily_cap = 50
        config.save()

    @classmethod
    def mobiles(cls):
        pool = Pool()
        User = pool.get('res.user')
        Meter = pool.get('dh.meter')
        for login, mobile in MANAGER_MOBILES.items():
            users = User.search([('login', '=', login)])
            if users:
                User.write(users, {'dh_mobile': mobile})
        to_write = []
        for meter in Meter.search([('tenant', '!=', None)]):
            mobiles = [c.value for c in meter.tenant.contact_mechanisms
                if c.type == 'mobile']
            if mobiles:
                to_write += [[meter], {'alarm_phones': mobiles[0]}]
        if to_write:
            Meter.write(*to_write)

    @classmethod
    def profiles(cls):
        pool = Pool()
        Profile = pool.get('dh.alarm.profile')
        Area = pool.get('dh.area')
        Meter = pool.get('dh.meter')
        districts = Area.search([('level', '=', '1')])
        home, shop = Profile.create([{
                    'name': '居民用电', 'voltage_max': D(250),
                    'current_max': D(60), 'day_usage_max': D(60),
                    'month_usage_max': D(1200), 'night_usage_max': D(12),
                    'night_start': '23:00', 'night_end': '06:00',
                    'remaining_min': D(20), 'settlement_day': 1,
                    'stagnant_days': 3, 'offline_cycles': 3,
                    'low_balance_mode': 'staged',
                    'alarm_energy': D(10), 'overdraft_energy': D(5),
                    'areas': [('add', [a.id for a in districts])],
                    }, {
                    'name': '商铺安全用电', 'voltage_max': D(250),
                    'current_max': D(80), 'day_usage_max': D(120),
                    'remaining_min': D(50), 'settlement_day': 1,
                    'stagnant_days': 3, 'offline_cycles': 3,
                    'low_balance_mode': 'daily', 'daily_time': '09:00',
                    'phones': '13900000100', 'max_load': D(8),
                    'malignant_power': D('2.5'),
                    'power_change_threshold': D('0.5'),
                    'overload_trips_allowed': 20,
                    'malignant_trips_allowed': 20,
                    'tod_power_limits': '07:00 8\n23:00 3',
                    }])
        from trytond.modules.dh_metering.demo import PLAZA
        shops = Meter.search([('level2', '=', PLAZA[1])])
        if shops:
            Meter.write(shops, {'alarm_profile': shop.id})
        return home, shop

    @classmethod
    def conditions(cls, profiles, log):
        pool = Pool()
        Meter = pool.get('dh.meter')
        Alarm = pool.get('dh.alarm')
        Command = pool.get('dh.command')
        Reading = pool.get('dh.meter.reading')
        now = dt.datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        # the board's yellow and red meters get their real causes
        yellow = Meter.search([('state', '=', 'alarm')])
        if yellow:
            Reading.ingest([(m.id, 'voltage', now, D('262.4'))
                    for m in yellow])
        red = Meter.search([('state', '=', 'fault')])
        for meter in red:
            command, = Command.queue([meter], 'close', max_attempts=1,
                reference='demo')
            Command.report(command.id, 'sent')
            Command.report(command.id, 'failed',
                error='继电器无响应 (relay does not answer)')
        # one shop locked out by its malignant-load protection (恶性负载)
        shop = Meter.search([('alarm_profile', '=', profiles[1].id),
                ('state', '=', 'normal'), ('utility', '=', 'electricity')],
            limit=1)
        if shop:
            shop, = shop
            local = (now + dt.timedelta(hours=8)).replace(second=0)
            command, = Command.queue([shop], 'event_read', {'last': 10},
                reference='demo')
            Command.report(command.id, 'sent')
            Command.report(command.id, 'confirmed', result={
                    'events': [{'at': (local - dt.timedelta(minutes=m))
                            .isoformat(), 'kind': 'malignant',
                            'power': '3.1200', 'lockout': m == 1}
                        for m in (47, 31, 12, 1)],
                    'lockout': True})
        # the first alarm round: stagnant, offline, low balances
        Alarm.evaluate(None, now, timed=True)
        Alarm.refresh_states([m.id for m in Meter.search([])])
        open_ = Alarm.search([('state', '!=', 'closed')], count=True)
        messages = pool.get('dh.notification').search([], count=True)
        log(f'dh_alarm: 2 profiles, {open_} open alarms, {messages} '
            f'messages queued (log gateway)')
        return {'alarms': open_, 'messages': messages,
            'lockout': shop.name if shop else None}

    @classmethod
    def counts(cls):
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        return {'alarms': Alarm.search([('state', '!=', 'closed')],
                count=True)}
