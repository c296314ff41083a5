# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Alarm profiles (the product's 报警设置 screen) with the safe-electricity
settings (安全用电管理) that are written to meters."""
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval

from . import rules
from .exceptions import AlarmValidationError
from .sms import parse_mobiles

_kw = dict(digits=(16, 3))
_kwh = dict(digits=(16, 2))
# the profile fields written to meters, by the collector's parameter name
SAFETY_PARAMS = {
    'alarm_energy': 'alarm_energy',
    'overdraft_energy': 'overdraft_energy',
    'monthly_topup': 'monthly_topup',
    'max_load': 'max_load',
    'malignant_power': 'malignant_power',
    'power_change_threshold': 'power_change_threshold',
    'overload_trips_allowed': 'overload_trips_allowed',
    'malignant_trips_allowed': 'malignant_trips_allowed',
    }


def check_mobiles(text, message, **values):
    "Raise the validation error ``message`` naming the bad mobile number"
    try:
        return parse_mobiles(text)
    except ValueError as exception:
        raise AlarmValidationError(gettext(message, error=str(exception),
                **values)) from None


class Profile(DeactivableMixin, ModelSQL, ModelView):
    "Alarm profile: thresholds, notification rules and safe-electricity limits"
    __name__ = 'dh.alarm.profile'
    __string__ = "Alarm Profile"
    name = fields.Char("Name", required=True)
    enabled = fields.Boolean("Alarms On", help="是否开启报警.")
    voltage_max = fields.Numeric("Voltage Max (V)", digits=(16, 1),
        help="电压最大值: a voltage strictly over it opens an alarm.")
    current_max = fields.Numeric("Current Max (A)", **_kw,
        help="电流最大值.")
    day_usage_max = fields.Numeric("Daily Usage Max", **_kwh,
        help="日用量最大值 (kWh, m³ for water).")
    month_usage_max = fields.Numeric("Monthly Usage Max", **_kwh,
        help="月用量最大值.")
    night_usage_max = fields.Numeric("Night Usage Max", **_kwh,
        help="夜间用量极限值: the usage within one night window.")
    night_start = fields.Char("Night From", help="HH:MM local time.")
    night_end = fields.Char("Night Until", help="HH:MM; may be the next "
        "morning (23:00 → 06:00).")
    remaining_min = fields.Numeric("Remaining Threshold", **_kwh,
        help="剩余量极限值: money (yuan) for meters billed on the server, "
        "kWh for meter-side prepaid meters (报警电量 when empty).")
    settlement_day = fields.Integer("Settlement Day",
        domain=['OR', ('settlement_day', '=', None),
            [('settlement_day', '>=', 1), ('settlement_day', '<=', 31)]],
        help="月底结算日: the monthly usage message goes out on this day.")
    rate_mode = fields.Selection([
            ('single', "Single Rate"),
            ('four', "Four Rates (尖峰平谷)"),
            ], "Rate Setting", required=True, help="费率设置.")
    phones = fields.Char("Alarm Mobiles",
        help="报警手机号: one or more mobile numbers separated by commas; "
        "the area managers are always added.")
    stagnant_days = fields.Integer("Stagnant After (days)",
        domain=['OR', ('stagnant_days', '=', None),
            ('stagnant_days', '>=', 0)],
        help="静止状态报警: no usage for this many days while the room has "
        "a tenant (0: off).")
    offline_cycles = fields.Integer("Offline After (cycles)",
        domain=['OR', ('offline_cycles', '=', None),
            ('offline_cycles', '>=', 0)],
        help="No reading for this many read cycles of the meter's channel "
        "(0: off).")
    reverse_energy = fields.Boolean("Reverse Energy Alarm")
    low_balance_mode = fields.Selection([
            ('daily', "One Message a Day Until Recharged"),
            ('staged', "Three Messages (threshold, 50 %, 20 %)"),
            ], "Low Balance Messages", required=True)
    daily_time = fields.Char("Daily Message At",
        states={'invisible': Eval('low_balance_mode') != 'daily'},
        help="HH:MM local time.")
    stage2_ratio = fields.Numeric("Second Message Below", digits=(4, 2),
        states={'invisible': Eval('low_balance_mode') != 'staged'},
        domain=[('stage2_ratio', '>', 0), ('stage2_ratio', '<', 1)],
        help="Ratio of the threshold (0.50 = 50 %).")
    stage3_ratio = fields.Numeric("Third Message Below", digits=(4, 2),
        states={'invisible': Eval('low_balance_mode') != 'staged'},
        domain=[('stage3_ratio', '>', 0),
            ('stage3_ratio', '<', Eval('stage2_ratio', 1))],
        help="Ratio of the threshold (0.20 = 20 %).")
    alarm_sms = fields.Boolean("Message Alarms",
        help="Send each new alarm to the alarm mobiles.")
    monthly_sms = fields.Boolean("Monthly Usage Message",
        help="月用量短信 on the settlement day.")
    supply_sms = fields.Boolean("Cut-off / Restored Messages")
    # 安全用电管理
    alarm_energy = fields.Numeric("Alarm Energy (kWh)", **_kwh,
        help="报警电量: written to meter-side prepaid meters.")
    overdraft_energy = fields.Numeric("Emergency Overdraft (kWh)", **_kwh,
        help="应急透支电量: meters keep supplying this much below zero; "
        "billing on the server honours it too.")
    monthly_topup = fields.Numeric("Monthly Top-up (kWh)", **_kwh,
        help="月补电量: credited each month on the settlement day.")
    max_load = fields.Numeric("Max Load (kW)", **_kw,
        help="最大用电负荷: power over it trips the meter for 3 minutes "
        "and opens an alarm.")
    malignant_power = fields.Numeric("Malignant Load From (kW)", **_kw,
        help="恶性负载起始功率.")
    power_change_threshold = fields.Numeric("Power Change Record (kW)",
        **_kw, help="功率变化记录阈值.")
    overload_trips_allowed = fields.Integer("Overload Trips Allowed",
        help="允许超负荷断电次数: after these the meter stays off until a "
        "manager resets it.")
    malignant_trips_allowed = fields.Integer("Malignant Trips Allowed",
        help="允许恶性负载断电次数.")
    tod_power_limits = fields.Text("Time-of-day Power Limits",
        help="分时功率: one line per band, 'HH:MM kW' (from that time on).")
    areas = fields.Many2Many('dh.alarm.profile-dh.area', 'profile', 'area',
        "Areas", help="Meters below these areas use this profile unless "
        "they have their own.")
    meters = fields.One2Many('dh.meter', 'alarm_profile', "Meters",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('name', 'ASC'))
        cls._buttons.update({
                'write_safety': {},
                'read_safety': {},
                })

    @classmethod
    def create(cls, vlist):
        profiles = super().create(vlist)
        if any(v.get('areas') for v in vlist):
            Pool().get('dh.meter').update_effective_profiles()
        return profiles

    @classmethod
    def write(cls, *args):
        super().write(*args)
        actions = iter(args)
        if any({'areas', 'active'} & set(values)
                for _, values in zip(actions, actions)):
            Pool().get('dh.meter').update_effective_profiles()

    @classmethod
    def delete(cls, profiles):
        super().delete(profiles)
        Pool().get('dh.meter').update_effective_profiles()

    @staticmethod
    def default_enabled():
        return True

    @staticmethod
    def default_rate_mode():
        return 'single'

    @staticmethod
    def default_night_start():
        return '23:00'

    @staticmethod
    def default_night_end():
        return '06:00'

    @staticmethod
    def default_stagnant_days():
        return 3

    @staticmethod
    def default_offline_cycles():
        return 3

    @staticmethod
    def default_reverse_energy():
        return True

    @staticmethod
    def default_low_balance_mode():
        return 'staged'

    @staticmethod
    def default_daily_time():
        return '09:00'

    @staticmethod
    def default_stage2_ratio():
        return Decimal('0.5')

    @staticmethod
    def default_stage3_ratio():
        return Decimal('0.2')

    @staticmethod
    def default_alarm_sms():
        return True

    @staticmethod
    def default_monthly_sms():
        return True

    @staticmethod
    def default_supply_sms():
        return True

    @classmethod
    def validate_fields(cls, profiles, field_names):
        super().validate_fields(profiles, field_names)
        for profile in profiles:
            if 'phones' in field_names:
                check_mobiles(profile.phones, 'dh_alarm.msg_bad_mobiles',
                    profile=profile.rec_name)
            for name in ['night_start', 'night_end', 'daily_time']:
                value = getattr(profile, name)
                if name in field_names and value:
                    try:
                        rules.parse_hhmm(value)
                    except ValueError:
                        raise AlarmValidationError(gettext(
                                'dh_alarm.msg_bad_time',
                                profile=profile.rec_name, value=value))
            if 'tod_power_limits' in field_names:
                try:
                    rules.parse_power_bands(profile.tod_power_limits)
                except ValueError as exception:
                    raise AlarmValidationError(gettext(
                            'dh_alarm.msg_bad_power_bands',
                            profile=profile.rec_name,
                            error=str(exception)))

    @property
    def mobiles(self):
        return parse_mobiles(self.phones)

    @property
    def ratios(self):
        return (self.stage2_ratio or Decimal('0.5'),
            self.stage3_ratio or Decimal('0.2'))

    @property
    def night(self):
        return (rules.parse_hhmm(self.night_start or '23:00'),
            rules.parse_hhmm(self.night_end or '06:00'))

    def snapshot(self):
        """The profile as a plain object (a round over 100,000 meters
        reads its fields millions of times: not through the ORM), with the
        texts already parsed"""
        from types import SimpleNamespace
        values = {name: getattr(self, name) for name in [
                'id', 'enabled', 'voltage_max', 'current_max',
                'day_usage_max', 'month_usage_max', 'night_usage_max',
                'remaining_min', 'settlement_day', 'phones', 'stagnant_days',
                'offline_cycles', 'reverse_energy', 'low_balance_mode',
                'alarm_sms', 'monthly_sms', 'supply_sms', 'alarm_energy',
                'overdraft_energy', 'max_load', 'tod_power_limits']}
        return SimpleNamespace(**values, night=self.night,
            ratios=self.ratios,
            power_bands=rules.parse_power_bands(self.tod_power_limits),
            daily_at=rules.parse_hhmm(self.daily_time or '09:00'))

    def safety_values(self):
        "{collector parameter name: value} of the limits that are set"
        values = {}
        for field, param in SAFETY_PARAMS.items():
            value = getattr(self, field)
            if value is not None:
                values[param] = str(value)
        if self.tod_power_limits:
            values['tod_power_limits'] = [
                [f'{start:%H:%M}', str(limit)] for start, limit in
                rules.parse_power_bands(self.tod_power_limits)]
        return values

    def safety_meters(self):
        "The meters (own and by area) that take parameter writes"
        Meter = Pool().get('dh.meter')
        return [m for m in Meter.search([('effective_profile', '=', self.id)])
            if m.utility == 'electricity'
            and m.protocol in {'dlt645_2007', 'dlt645_1997'}]

    @classmethod
    @ModelView.button
    def write_safety(cls, profiles):
        "设置: write the limits to the profile's meters"
        Command = Pool().get('dh.command')
        for profile in profiles:
            values = profile.safety_values()
            meters = profile.safety_meters()
            if values and meters:
                Command.queue(meters, 'param_write', {'params': values},
                    reference=f'dh.alarm.profile:{profile.id}',
                    expires_in=24 * 3600)

    @classmethod
    @ModelView.button
    def read_safety(cls, profiles):
        "读取: read the limits back from the profile's meters"
        Command = Pool().get('dh.command')
        for profile in profiles:
            meters = profile.safety_meters()
            if meters:
                Command.queue(meters, 'param_read', {'params': sorted(
                            set(SAFETY_PARAMS.values())
                            | {'tod_power_limits'})},
                    reference=f'dh.alarm.profile:{profile.id}',
                    expires_in=24 * 3600)


class ProfileArea(ModelSQL):
    "Alarm profile of an area"
    __name__ = 'dh.alarm.profile-dh.area'
    __string__ = "Alarm Profile Area"
    profile = fields.Many2One('dh.alarm.profile', "Profile", required=True,
        ondelete='CASCADE')
    area = fields.Many2One('dh.area', "Area", required=True,
        ondelete='CASCADE')
