# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Meters with alarm profiles, alarm phones and alarm-driven states; the
hooks that run the alarm rules (new readings, command outcomes,
recharges); area managers' mobiles; safe-electricity honoured by billing."""
import datetime as dt
import logging
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.dh_metering.storage import forget_records

from .profile import check_mobiles

UTC = dt.timezone.utc
logger = logging.getLogger(__name__)


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'
    alarm_profile = fields.Many2One('dh.alarm.profile', "Alarm Profile",
        ondelete='RESTRICT',
        help="Empty: the profile of the nearest area that has one.")
    effective_profile = fields.Many2One('dh.alarm.profile',
        "Effective Alarm Profile", readonly=True, ondelete='SET NULL')
    alarm_phones = fields.Char("Alarm Mobiles",
        help="This meter's own numbers (e.g. the tenant's), separated by "
        "commas; the profile's numbers and the area managers are added.")
    alarms = fields.One2Many('dh.alarm', 'meter', "Alarms", readonly=True)
    open_alarms = fields.Function(fields.Integer("Open Alarms"),
        'get_open_alarms')
    safety_readback = fields.Text("Limits Read Back", readonly=True,
        help="The safe-electricity limits last read from the meter.")
    safety_read_at = fields.DateTime("Limits Read At", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'reset_lockout': {
                    'invisible': Eval('utility') != 'electricity',
                    'depends': ['utility'],
                    },
                'read_trip_records': {
                    'invisible': Eval('utility') != 'electricity',
                    'depends': ['utility'],
                    },
                'apply_control_mode': {},
                })

    @classmethod
    def validate_fields(cls, meters, field_names):
        super().validate_fields(meters, field_names)
        if 'alarm_phones' in field_names:
            for meter in meters:
                check_mobiles(meter.alarm_phones,
                    'dh_alarm.msg_bad_meter_mobiles', meter=meter.rec_name)

    @classmethod
    def get_open_alarms(cls, meters, name):
        Alarm = Pool().get('dh.alarm')
        alarm = Alarm.__table__()
        cursor = Transaction().connection.cursor()
        result = {m.id: 0 for m in meters}
        from sql.aggregate import Count
        for i in range(0, len(meters), 500):
            ids = [m.id for m in meters[i:i + 500]]
            cursor.execute(*alarm.select(alarm.meter, Count(alarm.id),
                    where=alarm.meter.in_(ids) & (alarm.state != 'closed'),
                    group_by=[alarm.meter]))
            result.update(cursor)
        return result

    @classmethod
    def create(cls, vlist):
        meters = super().create(vlist)
        cls.update_effective_profiles([m.id for m in meters])
        return meters

    @classmethod
    def write(cls, *args):
        super().write(*args)
        actions = iter(args)
        changed, control = [], []
        for meters, values in zip(actions, actions):
            if {'alarm_profile', 'area'} & set(values):
                changed.extend(m.id for m in meters)
            if 'control_mode' in values:
                control.extend(meters)
        if changed:
            cls.update_effective_profiles(changed)
        if control:
            cls.apply_control_mode(cls.browse(control))

    @classmethod
    def update_effective_profiles(cls, meter_ids=None):
        """The profile each meter uses: its own, else the one of its
        nearest area (room, building, community, district)"""
        pool = Pool()
        Link = pool.get('dh.alarm.profile-dh.area')
        Profile = pool.get('dh.alarm.profile')
        link = Link.__table__()
        profile = Profile.__table__()
        meter = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*link.join(profile,
                condition=link.profile == profile.id).select(
                link.area, link.profile, where=profile.active == True,  # noqa
                order_by=[link.profile.desc]))
        by_area = dict(cursor)
        where = None
        if meter_ids is not None:
            if not meter_ids:
                return
            where = meter.id.in_(list(meter_ids))
        columns = [meter.id, meter.alarm_profile, meter.area, meter.area_l4,
            meter.area_l3, meter.area_l2, meter.area_l1,
            meter.effective_profile]
        updates = []
        ids = list(meter_ids) if meter_ids is not None else None
        chunks = ([ids[i:i + 1000] for i in range(0, len(ids), 1000)]
            if ids is not None else [None])
        for chunk in chunks:
            cursor.execute(*meter.select(*columns,
                    where=meter.id.in_(chunk) if chunk else where))
            for id_, own, *areas, current in cursor.fetchall():
                effective = own
                if not effective:
                    for area in areas:
                        if area in by_area:
                            effective = by_area[area]
                            break
                if effective != current:
                    updates.append((effective, id_))
        from trytond import backend
        p = '%s' if backend.name == 'postgresql' else '?'
        if updates:
            cursor.executemany(f'UPDATE dh_meter SET effective_profile = {p} '
                f'WHERE id = {p}', updates)
            forget_records('dh.meter')

    @classmethod
    @ModelView.button
    def reset_lockout(cls, meters):
        "Lift a load lockout after a manager has checked the room"
        Command = Pool().get('dh.command')
        Command.queue([m for m in meters if m.utility == 'electricity'],
            'load_reset', reference='manager')

    @classmethod
    @ModelView.button
    def read_trip_records(cls, meters):
        "报警记录: read the meter's trip records into the alarm list"
        Command = Pool().get('dh.command')
        Command.queue([m for m in meters if m.utility == 'electricity'],
            'event_read', {'last': 10}, reference='manager')

    @classmethod
    @ModelView.button
    def apply_control_mode(cls, meters):
        """断电送电控制: unconditional close / trip now; the metered modes
        follow the balance"""
        pool = Pool()
        Command = pool.get('dh.command')
        close = [m for m in meters if m.control_mode == 'always_on'
            and m.relay != 'closed']
        trip = [m for m in meters if m.control_mode == 'always_off'
            and m.relay != 'open']
        if close:
            Command.queue(close, 'close', reference='control_mode')
        if trip:
            Command.queue(trip, 'trip', reference='control_mode')
        # meter-side prepaid meters hold themselves (保电): never cut
        prepaid = [m for m in meters if m.billing_mode == 'energy'
            and m.utility == 'electricity' and m.protocol == 'dlt645_2007']
        hold = [m for m in prepaid if m.control_mode == 'controlled_no_cut']
        release = [m for m in prepaid if m.control_mode == 'controlled']
        if hold:
            Command.queue(hold, 'hold', reference='control_mode')
        if release:
            Command.queue(release, 'hold_release', reference='control_mode')
        metered = [m for m in meters
            if m.control_mode in {'controlled', 'controlled_no_cut'}]
        wallets = {m.paying_wallet for m in metered if m.paying_wallet}
        if wallets:
            pool.get('dh.wallet').check_arrears(list(wallets))

    def emergency_energy_credit(self):
        "应急透支电量 as money at the meter's price (0 when not set)"
        profile = self.effective_profile
        if not profile or not profile.overdraft_energy:
            return Decimal(0)
        price = self.unit_price_now() or Decimal(0)
        return (profile.overdraft_energy * price).quantize(Decimal('0.01'))

    @classmethod
    def control_supply(cls, meters, balance, emergency_credit,
            force_trip=False):
        "The profile's emergency overdraft counts as emergency credit"
        extra = max([m.emergency_energy_credit() for m in meters]
            or [Decimal(0)])
        return super().control_supply(meters, balance,
            max(emergency_credit or Decimal(0), extra), force_trip)


class Reading(metaclass=PoolMeta):
    __name__ = 'dh.meter.reading'

    @classmethod
    def ingested(cls, rows):
        "Run the reading-driven alarm rules on the meters of the batch"
        super().ingested(rows)
        context = Transaction().context
        if not rows or context.get('dh_no_alarms'):
            return
        from trytond import backend
        Alarm = Pool().get('dh.alarm')
        newest = max(r[2] for r in rows)
        now = dt.datetime.now(UTC).replace(tzinfo=None)
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        # a fault in the alarm rules must not cost the readings (the
        # collector would spool and retry them for ever): it is logged and
        # the next cron round evaluates these meters again
        cursor.execute('SAVEPOINT dh_alarm_evaluate')
        try:
            # history loaded late is judged at its own time
            Alarm.evaluate(sorted({r[0] for r in rows}), min(newest, now),
                timed=False)
        except backend.DatabaseOperationalError:
            raise
        except Exception:
            logger.exception('alarm evaluation of an ingest batch failed; '
                'the readings are kept')
            cursor.execute('ROLLBACK TO SAVEPOINT dh_alarm_evaluate')
            for cache in transaction.cache.values():
                cache.clear()
        else:
            cursor.execute('RELEASE SAVEPOINT dh_alarm_evaluate')


class Command(metaclass=PoolMeta):
    __name__ = 'dh.command'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # the collector's safe-electricity kinds (see docs/collection.md)
        for kind, label in [('param_read', "Parameter Read"),
                ('event_read', "Trip Records Read"),
                ('load_reset', "Load Lockout Reset")]:
            if kind not in dict(cls.kind.selection):
                cls.kind.selection.append((kind, label))

    @classmethod
    def report(cls, command_id, state, error=None, result=None):
        new_state = super().report(command_id, state, error, result)
        if new_state in {'confirmed', 'failed'}:
            Pool().get('dh.alarm').command_done(cls(command_id), result)
        return new_state


class Recharge(metaclass=PoolMeta):
    __name__ = 'dh.recharge'

    @classmethod
    def recharge(cls, number, wallet, amount, *args, **kwargs):
        "A recharge over the threshold resets the low-balance staging"
        recharge = super().recharge(number, wallet, amount, *args, **kwargs)
        pool = Pool()
        Alarm = pool.get('dh.alarm')
        Wallet = pool.get('dh.wallet')
        meters = Wallet(recharge.wallet.id).paid_meters()
        if meters:
            Alarm.evaluate([m.id for m in meters],
                dt.datetime.now(UTC).replace(tzinfo=None), timed=False)
        return recharge


class User(metaclass=PoolMeta):
    __name__ = 'res.user'
    dh_mobile = fields.Char("Mobile for Alarms",
        help="Area managers get alarm and low-balance messages here.")

    @classmethod
    def validate_fields(cls, users, field_names):
        super().validate_fields(users, field_names)
        if 'dh_mobile' in field_names:
            for user in users:
                check_mobiles(user.dh_mobile, 'dh_alarm.msg_bad_user_mobile',
                    user=user.rec_name)


class Area(metaclass=PoolMeta):
    __name__ = 'dh.area'

    @classmethod
    def write(cls, *args):
        super().write(*args)
        actions = iter(args)
        if any('parent' in values for _, values in zip(actions, actions)):
            Pool().get('dh.meter').update_effective_profiles()


class Wallet(metaclass=PoolMeta):
    __name__ = 'dh.wallet'

    @classmethod
    def cron_monthly_topup(cls, date=None):
        """月补电量: on the settlement day, credit each cash-mode meter the
        profile's monthly top-up (kWh × the meter's price) once a month"""
        pool = Pool()
        Meter = pool.get('dh.meter')
        Line = pool.get('dh.wallet.line')
        date = date or dt.date.today()
        done = []
        meters = Meter.search([('effective_profile.monthly_topup', '>', 0),
                ('billing_mode', '=', 'cash'), ('wallet', '!=', None)])
        for meter in meters:
            profile = meter.effective_profile
            if not profile.enabled or date.day < (
                    profile.settlement_day or 1):
                continue
            reference = f'topup:{meter.id}:{date:%Y-%m}'
            if Line.search([('reference', '=', reference)], limit=1):
                continue
            price = meter.unit_price_now()
            wallet = meter.wallet
            if not price or wallet.state != 'open':
                continue
            amount = (profile.monthly_topup * price).quantize(
                Decimal('0.01'))
            cls.post_lines(wallet, [{'kind': 'subsidy', 'amount': amount,
                        'energy': profile.monthly_topup,
                        'unit_price': price, 'meter': meter.id,
                        'utility': meter.utility, 'reference': reference,
                        'description': gettext('dh_alarm.msg_topup_line',
                            month=f'{date:%Y-%m}',
                            energy=profile.monthly_topup)}])
            done.append(wallet)
        if done:
            cls.check_arrears(done)
        return done
