# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Alarm events (dh.alarm) and their evaluation.

``Alarm.evaluate(meter_ids, now)`` gathers each meter's figures with a few
set-based queries (latest instantaneous values, today's / this month's /
tonight's usage, remaining, last reading), asks rules.py what is true, and
opens, updates or closes events — one open event per meter and kind at a
time.  It runs after every ingest batch (reading-driven rules) and from
cron (the time-based ones: offline, stagnant, daily messages, settlement
day).  New events, low balances, cut-offs and restorations become
notifications (notification.py)."""
import datetime as dt
import json
import logging
from collections import defaultdict
from decimal import Decimal

from sql import Null
from sql.aggregate import Max, Min

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import (
    Button, StateAction, StateTransition, StateView, Wizard)

from trytond.modules.dh_metering.meter import MAIN_REGISTER
from trytond.modules.dh_metering.reading import local_timezone
from trytond.modules.dh_metering.storage import forget_records
from trytond.modules.dh_metering.usage import E4

from . import rules

logger = logging.getLogger(__name__)
UTC = dt.timezone.utc
KINDS = [
    ('over_voltage', "Over-voltage"),
    ('over_current', "Over-current"),
    ('over_load', "Over Max Load"),
    ('day_usage', "Daily Usage Over Maximum"),
    ('month_usage', "Monthly Usage Over Maximum"),
    ('night_usage', "Night Usage Over Limit"),
    ('low_remaining', "Low Remaining"),
    ('stagnant', "Stagnant Meter (theft suspicion)"),
    ('offline', "Offline"),
    ('relay_mismatch', "Relay Mismatch"),
    ('reverse_energy', "Reverse Energy"),
    ('load_trip', "Load Trip (meter record)"),
    ('load_lockout', "Load Lockout (needs a manager)"),
    ]
KIND_NAMES_ZH = {
    'over_voltage': '过压', 'over_current': '过流', 'over_load': '超负荷',
    'day_usage': '日用量超限', 'month_usage': '月用量超限',
    'night_usage': '夜间用量超限', 'low_remaining': '剩余量不足',
    'stagnant': '静止状态', 'offline': '离线',
    'relay_mismatch': '继电器状态异常', 'reverse_energy': '反向电量',
    'load_trip': '负荷跳闸', 'load_lockout': '负荷锁定断电',
    }
TRIP_KINDS_ZH = {'overload': '超负荷', 'malignant': '恶性负载',
    'tod': '分时功率超限'}
STATES = [
    ('open', "Open"),
    ('acknowledged', "Acknowledged"),
    ('closed', "Closed"),
    ]
INSTANT = ('voltage', 'current', 'power')


def _dt(value):
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


def _p():
    return '%s' if backend.name == 'postgresql' else '?'


def _chunks(items, size=1000):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Alarm(ModelSQL, ModelView):
    "An alarm event"
    __name__ = 'dh.alarm'
    __string__ = "Alarm"
    meter = fields.Many2One('dh.meter', "Meter", required=True,
        readonly=True, ondelete='CASCADE')
    kind = fields.Selection(KINDS, "Kind", required=True, readonly=True,
        sort=False)
    state = fields.Selection(STATES, "State", required=True, readonly=True,
        sort=False)
    start = fields.DateTime("Start", required=True, readonly=True)
    end = fields.DateTime("End", readonly=True)
    value = fields.Numeric("Value", digits=(16, 4), readonly=True)
    threshold = fields.Numeric("Threshold", digits=(16, 4), readonly=True)
    period = fields.Char("Period", readonly=True,
        help="The day, month or night the event is about.")
    description = fields.Char("Description", readonly=True)
    stage = fields.Integer("Messages Stage", readonly=True,
        help="Low remaining: the last message stage sent.")
    last_sent = fields.Date("Last Message", readonly=True)
    note = fields.Text("Note", readonly=True)
    acknowledged_by = fields.Many2One('res.user', "Acknowledged By",
        readonly=True)
    acknowledged_at = fields.DateTime("Acknowledged At", readonly=True)
    meter_name = fields.Function(fields.Char("Meter Name"), 'get_meter_field')
    level1 = fields.Function(fields.Char("Level 1"), 'get_meter_field')
    level2 = fields.Function(fields.Char("Level 2"), 'get_meter_field')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.meter, Index.Range()),
                    (t.kind, Index.Equality(cardinality='low')),
                    where=t.state != 'closed'),
                Index(t, (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.start, Index.Range())),
                })
        cls._order = [('start', 'DESC'), ('id', 'DESC')]
        cls._buttons.update({
                'acknowledge': {
                    'invisible': Eval('state') != 'open',
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_state():
        return 'open'

    @classmethod
    def view_attributes(cls):
        from trytond.pyson import If
        return super().view_attributes() + [
            ('/tree', 'visual', If(Eval('state') == 'open', 'warning',
                    If(Eval('state') == 'closed', 'muted', ''))),
            ]

    def get_meter_field(self, name):
        meter = self.meter
        return {'meter_name': meter.name, 'level1': meter.level1,
            'level2': meter.level2}[name]

    def get_rec_name(self, name):
        return f'{self.meter.name} {KIND_NAMES_ZH.get(self.kind, self.kind)}'

    @classmethod
    @ModelView.button_action('dh_alarm.wizard_acknowledge')
    def acknowledge(cls, alarms):
        pass

    @classmethod
    def do_acknowledge(cls, alarms, note=None):
        cls.write([a for a in alarms if a.state == 'open'], {
                'state': 'acknowledged', 'note': note,
                'acknowledged_by': Transaction().user or None,
                'acknowledged_at': dt.datetime.now()})

    # -- evaluation ---------------------------------------------------------
    @classmethod
    def evaluate(cls, meter_ids=None, now=None, timed=True):
        """Evaluate the rules for these meters (all when None) at ``now``
        (naive UTC).  ``timed``: also the rules that depend on time passing
        (offline, stagnant, daily messages, settlement day) — the cron
        round.  Returns {'opened': n, 'closed': n, 'notified': n}."""
        pool = Pool()
        now = now or dt.datetime.now(UTC).replace(tzinfo=None)
        tz = local_timezone()
        local = now.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
        meters = cls._meters(meter_ids)
        if not meters:
            return {'opened': 0, 'closed': 0, 'notified': 0}
        profiles = cls._profiles({m['profile'] for m in meters.values()})
        meters = {i: m for i, m in meters.items()
            if profiles.get(m['profile']) is not None}
        facts = _Facts(cls, meters, profiles, now, local, tz, timed,
            every=meter_ids is None)
        facts.load()
        existing = cls._open_events(list(meters))
        changes = _Changes(cls, now)
        for meter_id, meter in meters.items():
            profile = profiles[meter['profile']]
            # later entries win (a meter that moved today is not stagnant)
            for kind, found in dict(facts.conditions(
                    meter_id, meter, profile)).items():
                changes.apply(meter_id, kind, found,
                    existing.get((meter_id, kind)))
        changes.flush()
        notified = pool.get('dh.notification').after_evaluation(
            changes, facts, existing)
        touched = set(changes.touched)
        if touched:
            cls.refresh_states(touched)
        return {'opened': len(changes.opened), 'closed': changes.closed,
            'notified': notified}

    @classmethod
    def _meters(cls, meter_ids):
        Meter = Pool().get('dh.meter')
        meter = Meter.__table__()
        cursor = Transaction().connection.cursor()
        columns = [meter.id, meter.effective_profile, meter.utility,
            meter.state, meter.relay, meter.tenant, meter.wallet,
            meter.billing_mode, meter.remaining, meter.last_read_at,
            meter.bus, meter.name, meter.area, meter.alarm_phones,
            meter.control_mode, meter.role]
        names = ['id', 'profile', 'utility', 'state', 'relay', 'tenant',
            'wallet', 'billing_mode', 'remaining', 'last_read_at', 'bus',
            'name', 'area', 'phones', 'control_mode', 'role']
        where = (meter.active == True) & (  # noqa: E712
            meter.effective_profile != Null)
        result = {}
        chunks = _chunks(meter_ids) if meter_ids is not None else [None]
        for chunk in chunks:
            cond = where if chunk is None else (where & meter.id.in_(chunk))
            cursor.execute(*meter.select(*columns, where=cond))
            for row in cursor:
                values = dict(zip(names, row))
                values['last_read_at'] = _dt(values['last_read_at'])
                if values['remaining'] is not None and not isinstance(
                        values['remaining'], Decimal):
                    values['remaining'] = Decimal(str(values['remaining']))
                result[values['id']] = values
        return result

    @classmethod
    def _profiles(cls, ids):
        Profile = Pool().get('dh.alarm.profile')
        return {p.id: p.snapshot() for p in Profile.browse(
                [i for i in ids if i]) if p.active and p.enabled}

    @classmethod
    def _open_events(cls, meter_ids):
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        result = {}
        columns = [table.id, table.meter, table.kind, table.period,
            table.value, table.state, table.stage, table.last_sent,
            table.start]
        if len(meter_ids) > 20000:
            cursor.execute(*table.select(*columns,
                    where=table.state != 'closed'))
            rows = cursor.fetchall()
        else:
            rows = []
            for chunk in _chunks(meter_ids):
                cursor.execute(*table.select(*columns,
                        where=(table.state != 'closed')
                        & table.meter.in_(chunk)))
                rows.extend(cursor.fetchall())
        wanted = set(meter_ids)
        for id_, meter, kind, period, value, state, stage, sent, start \
                in rows:
            if meter not in wanted:
                continue
            if isinstance(sent, str):
                sent = dt.date.fromisoformat(sent)
            result[meter, kind] = _Open(id_, period, Decimal(str(value))
                if value is not None else None, state, stage or 0, sent,
                _dt(start))
        return result

    @classmethod
    def refresh_states(cls, meter_ids):
        """The board's colour of these meters from their open alarms (cut
        off stays black while the relay is open)"""
        Meter = Pool().get('dh.meter')
        meter = Meter.__table__()
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        kinds = defaultdict(set)
        rows = {}
        for chunk in _chunks(sorted(meter_ids)):
            cursor.execute(*table.select(table.meter, table.kind,
                    where=(table.state != 'closed')
                    & table.meter.in_(chunk)))
            for meter_id, kind in cursor:
                kinds[meter_id].add(kind)
            cursor.execute(*meter.select(meter.id, meter.relay, meter.state,
                    where=meter.id.in_(chunk)))
            rows.update((i, (r, s)) for i, r, s in cursor)
        updates = defaultdict(list)
        for meter_id, (relay, state) in rows.items():
            new = rules.meter_state(relay, state, kinds.get(meter_id, set()))
            if new != state:
                updates[new].append(meter_id)
        for state, ids in updates.items():
            for chunk in _chunks(ids):
                cursor.execute(*meter.update([meter.state], [state],
                        where=meter.id.in_(chunk)))
        if updates:
            forget_records('dh.meter')

    # -- outcomes of commands -----------------------------------------------
    @classmethod
    def command_done(cls, command, result=None):
        """Trip / close that failed or read back wrong: relay mismatch;
        confirmed: the mismatch is over.  Trip records read from the meter
        become load-trip events; a lockout stays open until reset."""
        pool = Pool()
        Notification = pool.get('dh.notification')
        Meter = pool.get('dh.meter')
        now = dt.datetime.now(UTC).replace(tzinfo=None)
        meter = command.meter
        existing = cls._open_events([meter.id])
        changes = _Changes(cls, now)
        if command.kind in {'trip', 'close'}:
            if command.state == 'failed':
                changes.apply(meter.id, 'relay_mismatch', _Found(
                        value=None, threshold=None, start=now,
                        description=gettext('dh_alarm.msg_relay_failed',
                            kind={'trip': '跳闸', 'close': '合闸'}.get(
                                command.kind, command.kind),
                            error=command.last_error or '-')),
                    existing.get((meter.id, 'relay_mismatch')))
            elif command.state == 'confirmed':
                changes.apply(meter.id, 'relay_mismatch', None,
                    existing.get((meter.id, 'relay_mismatch')))
                if command.reference in {'arrears', 'recharge'}:
                    Notification.supply_changed(command)
        elif command.kind == 'event_read' and command.state == 'confirmed':
            data = _result(command, result)
            cls._trip_records(meter, data, changes, existing)
        elif command.kind == 'load_reset' and command.state == 'confirmed':
            changes.apply(meter.id, 'load_lockout', None,
                existing.get((meter.id, 'load_lockout')))
        elif command.kind == 'param_read' and command.state == 'confirmed':
            data = _result(command, result)
            Meter.write([meter], {
                    'safety_readback': json.dumps(data.get('params', data),
                        ensure_ascii=False, sort_keys=True, indent=1),
                    'safety_read_at': dt.datetime.now()})
        changes.flush()
        if changes.opened:
            Notification.alarms_opened(changes.opened)
        if changes.touched:
            cls.refresh_states(changes.touched)

    @classmethod
    def _trip_records(cls, meter, data, changes, existing):
        "报警记录: each trip record once (keyed by its time and kind)"
        tz = local_timezone()
        events = data.get('events') or []
        known = {(a.period, a.description) for a in cls.search([
                    ('meter', '=', meter.id), ('kind', '=', 'load_trip')])}
        for event in events:
            try:
                at = dt.datetime.fromisoformat(str(event['at']))
            except (KeyError, ValueError):
                continue
            if at.tzinfo is None:
                at = at.replace(tzinfo=tz)
            start = at.astimezone(UTC).replace(tzinfo=None)
            kind = str(event.get('kind', ''))
            if kind == 'step':
                # a power-change record (功率变化记录), not a trip
                continue
            kind = TRIP_KINDS_ZH.get(kind, kind)
            period = f'{start:%Y-%m-%d %H:%M:%S}'
            description = gettext('dh_alarm.msg_trip_record', kind=kind,
                power=event.get('power', '-'))
            if (period, description) in known:
                continue
            known.add((period, description))
            power = event.get('power')
            changes.record(meter.id, 'load_trip', _Found(
                    value=Decimal(str(power)) if power is not None else None,
                    threshold=None, start=start, period=period,
                    description=description))
        if data.get('lockout'):
            changes.apply(meter.id, 'load_lockout', _Found(value=None,
                    threshold=None, start=changes.now,
                    description=gettext('dh_alarm.msg_lockout')),
                existing.get((meter.id, 'load_lockout')))

    # -- cron ---------------------------------------------------------------
    @classmethod
    def cron_evaluate(cls):
        "The timed round: every meter with a profile"
        result = cls.evaluate(None, timed=True)
        logger.info('alarm round: %s', result)
        return result


def _result(command, result):
    if isinstance(result, dict):
        return result
    try:
        return json.loads(command.result or '{}')
    except ValueError:
        return {}


class _Open:
    "An event not closed yet"
    __slots__ = ('id', 'period', 'value', 'state', 'stage', 'last_sent',
        'start')

    def __init__(self, id, period, value, state, stage, last_sent, start):
        self.id, self.period, self.value, self.state = id, period, value, state
        self.stage, self.last_sent, self.start = stage, last_sent, start


class _Opened:
    "An event just created, as plain values (meter is the meter id)"
    __slots__ = ('id', 'meter', 'kind', 'state', 'start', 'value',
        'threshold', 'stage', 'last_sent')

    def __init__(self, id, values):
        self.id = id
        for name in self.__slots__[1:]:
            setattr(self, name, values.get(name))


class _Found:
    "A condition that holds now"
    __slots__ = ('value', 'threshold', 'start', 'period', 'description')

    def __init__(self, value, threshold, start, period=None,
            description=None):
        self.value, self.threshold, self.start = value, threshold, start
        self.period, self.description = period, description


class _Changes:
    "Opens, updates and closes events in bulk"

    def __init__(self, Alarm, now):
        self.Alarm = Alarm
        self.now = now
        self.to_create = []
        self.to_close = []          # (id, end)
        self.to_update = []         # (id, value)
        self.opened = []            # _Opened of the events created
        self.closed = 0
        self.touched = set()
        self.still_open = {}        # (meter, kind) → _Open kept open

    def apply(self, meter_id, kind, found, open_):
        """``found`` (or None) is the condition now; ``open_`` the event
        already open for it"""
        period_kind = rules.KINDS[kind] == rules.PERIOD
        if open_ is not None:
            if found is not None and (not period_kind
                    or open_.period == found.period):
                if (found.value is not None and open_.value is not None
                        and found.value > open_.value):
                    self.to_update.append((open_.id, found.value))
                self.still_open[meter_id, kind] = open_
                return
            end = self.now
            if period_kind and found is not None:
                end = found.start
            self.to_close.append((open_.id, end))
            self.touched.add(meter_id)
        if found is not None:
            self.record(meter_id, kind, found)

    def record(self, meter_id, kind, found):
        closed = rules.KINDS[kind] == rules.EVENT
        self.to_create.append({'meter': meter_id, 'kind': kind,
                'state': 'closed' if closed else 'open',
                'start': found.start, 'end': found.start if closed else None,
                'value': found.value, 'threshold': found.threshold,
                'period': found.period, 'description': found.description,
                'stage': 0})
        self.touched.add(meter_id)

    def flush(self):
        Alarm = self.Alarm
        cursor = Transaction().connection.cursor()
        p = _p()
        if self.to_close:
            cursor.executemany(f'UPDATE dh_alarm SET state = {p}, "end" = '
                f'{p}, write_date = {p} WHERE id = {p} AND state != {p}',
                [('closed', end, dt.datetime.now(), id_, 'closed')
                    for id_, end in self.to_close])
            self.closed = len(self.to_close)
        if self.to_update:
            cursor.executemany(f'UPDATE dh_alarm SET value = {p} '
                f'WHERE id = {p}', [(v, i) for i, v in self.to_update])
        if self.to_create:
            # in chunks: Tryton checks every instance against the whole
            # list of created ids (quadratic for thousands of events)
            for chunk in _chunks(self.to_create, 500):
                alarms = Alarm.create(chunk)
                self.opened += [_Opened(alarm.id, values)
                    for alarm, values in zip(alarms, chunk)]
        if self.to_close or self.to_update:
            forget_records('dh.alarm')


class _Facts:
    "The figures of one evaluation, gathered set-based"

    def __init__(self, Alarm, meters, profiles, now, local, tz, timed,
            every=False):
        self.Alarm = Alarm
        self.every = every          # a round over every meter
        self.meters = meters
        self.profiles = profiles
        self.now, self.local, self.tz, self.timed = now, local, tz, timed
        # the same for every meter of the round: computed once
        self.day_label = f'{local:%Y-%m-%d}'
        self.month_label = f'{local:%Y-%m}'
        self.day_start = self.days_ago(0)
        self.instant = {}           # (meter, register) → (read_at, value)
        self.day = {}               # (meter, register) → usage today
        self.month = {}             # meter → usage this month
        self.night = {}             # meter → (usage, period label)
        self.stagnant_days = {}     # meter → (days read, usage)
        self.cycle = {}             # channel → minutes
        self.trip_at = {}           # meter → time the relay was opened
        self.used_since_trip = {}   # meter → usage after the trip
        self.lines = defaultdict(list)

    def days_ago(self, days):
        "The start (naive UTC) of the local day ``days`` before today"
        return self.utc(dt.datetime.combine(
                self.local.date() - dt.timedelta(days=days), dt.time()))

    def utc(self, local):
        return local.replace(tzinfo=self.tz).astimezone(UTC).replace(
            tzinfo=None)

    def load(self):
        cursor = Transaction().connection.cursor()
        p = _p()
        today = self.local.date()
        month = today.replace(day=1)
        profiles = self.profiles
        need = defaultdict(set)
        for meter_id, meter in self.meters.items():
            profile = profiles[meter['profile']]
            if profile.voltage_max:
                need['voltage'].add(meter_id)
            if profile.current_max:
                need['current'].add(meter_id)
            if profile.max_load or profile.power_bands:
                need['power'].add(meter_id)
            if profile.day_usage_max or profile.reverse_energy:
                need['day'].add(meter_id)
            if profile.month_usage_max:
                need['month'].add(meter_id)
            if profile.night_usage_max:
                need['night'].add(meter_id)
            if self.timed and profile.stagnant_days and (
                    meter['tenant'] or meter['wallet']):
                need['stagnant'].add(meter_id)
            if meter['relay'] == 'open':
                need['trip'].add(meter_id)
        main = {meter_id: MAIN_REGISTER.get(meter['utility'])
            for meter_id, meter in self.meters.items()}
        for register in INSTANT:
            for meter_id, read_at, value in self.rows(cursor,
                    'SELECT meter, read_at, value_e4 FROM dh_reading_last '
                    f'WHERE register = {p}', [register], need[register]):
                self.instant[meter_id, register] = (_dt(read_at),
                    Decimal(value) / E4)
        for meter_id, register, usage in self.rows(cursor,
                'SELECT meter, register, usage_e4 FROM dh_usage_day '
                f'WHERE period = {p}', [today], need['day']):
            self.day[meter_id, register] = Decimal(usage) / E4
        for meter_id, register, usage in self.rows(cursor,
                'SELECT meter, register, usage_e4 FROM dh_usage_month '
                f'WHERE period = {p}', [month], need['month']):
            if register == main[meter_id]:
                self.month[meter_id] = Decimal(usage) / E4
        # nights differ by profile: one query per distinct window
        windows = defaultdict(set)
        night_of = {}
        for meter_id in need['night']:
            profile = profiles[self.meters[meter_id]['profile']]
            window = night_of.get(profile.id)
            if window is None:
                window = night_of[profile.id] = rules.night_window(
                    self.local, *profile.night)
            windows[window].add(meter_id)
        for (begin, end), members in windows.items():
            label = f'{begin:%Y-%m-%d}'
            for meter_id, register, usage in self.rows(cursor,
                    'SELECT meter, register, SUM(usage_e4) FROM '
                    f'dh_usage_hour WHERE period >= {p} AND period < {p}',
                    [self.utc(begin), self.utc(end)], members,
                    'GROUP BY meter, register'):
                if register == main[meter_id]:
                    self.night[meter_id] = (Decimal(usage) / E4, label,
                        self.utc(begin))
        by_days = defaultdict(set)
        for meter_id in need['stagnant']:
            profile = profiles[self.meters[meter_id]['profile']]
            by_days[profile.stagnant_days].add(meter_id)
        for days, members in by_days.items():
            first = today - dt.timedelta(days=days)
            for meter_id, register, count, total in self.rows(cursor,
                    'SELECT meter, register, COUNT(*), SUM(usage_e4) FROM '
                    f'dh_usage_day WHERE period >= {p} AND period < {p}',
                    [first, today], members, 'GROUP BY meter, register'):
                if register == main[meter_id]:
                    self.stagnant_days[meter_id] = (count, total)
        if self.timed:
            Plan = Pool().get('dh.channel-dh.read.plan')
            ReadPlan = Pool().get('dh.read.plan')
            link = Plan.__table__()
            plan = ReadPlan.__table__()
            cursor.execute(*link.join(plan,
                    condition=link.plan == plan.id).select(
                    link.channel, Min(plan.interval),
                    where=plan.active == True,  # noqa: E712
                    group_by=[link.channel]))
            self.cycle = dict(cursor)
        if need['trip']:
            Command = Pool().get('dh.command')
            command = Command.__table__()
            for chunk in _chunks(sorted(need['trip'])):
                cursor.execute(*command.select(command.meter,
                        Max(command.done_at),
                        where=command.meter.in_(chunk)
                        & (command.kind == 'trip')
                        & (command.state == 'confirmed'),
                        group_by=[command.meter]))
                for meter_id, done in cursor:
                    if done is not None:
                        self.trip_at[meter_id] = _dt(done)
            # usage in the whole hours after the trip (the hour of the trip
            # itself may hold usage from before it)
            starts = {meter_id: at.replace(minute=0, second=0,
                    microsecond=0) + dt.timedelta(hours=1)
                for meter_id, at in self.trip_at.items()}
            if starts:
                for meter_id, register, period, usage in self.rows(cursor,
                        'SELECT meter, register, period, usage_e4 FROM '
                        f'dh_usage_hour WHERE period >= {p}',
                        [min(starts.values())], set(starts)):
                    if (register == main[meter_id] and usage
                            and _dt(period) >= starts[meter_id]):
                        used, _ = self.used_since_trip.get(meter_id,
                            (Decimal(0), None))
                        self.used_since_trip[meter_id] = (
                            used + Decimal(usage) / E4, starts[meter_id])

    def rows(self, cursor, query, params, members, tail=''):
        """The rows of ``query`` (a SELECT … WHERE …, meter first) for the
        meters ``members``: in a round over every meter one query for all
        (the rows of other meters dropped), else by chunks of meters"""
        if not members:
            return
        if self.every or len(members) > 20000:
            cursor.execute(f'{query} {tail}', params)
            for row in cursor:
                if row[0] in members:
                    yield row
            return
        p = _p()
        postgresql = backend.name == 'postgresql'
        for chunk in _chunks(sorted(members), 5000 if postgresql else 500):
            if postgresql:
                cursor.execute(f'{query} AND meter = ANY({p}) {tail}',
                    params + [chunk])
            else:
                cursor.execute(f'{query} AND meter IN '
                    f'({", ".join([p] * len(chunk))}) {tail}',
                    params + chunk)
            yield from cursor.fetchall()

    def conditions(self, meter_id, meter, profile):
        """[(kind, _Found or None)] for every rule that applies to this
        meter; None says the condition is not (or no longer) there"""
        result = []
        now = self.now
        for register, kind, limit in [
                ('voltage', 'over_voltage', profile.voltage_max),
                ('current', 'over_current', profile.current_max)]:
            if limit:
                read_at, value = self.instant.get((meter_id, register),
                    (None, None))
                result.append((kind, _Found(value, limit, read_at)
                        if rules.over(value, limit) else None))
        if profile.max_load or profile.power_bands:
            read_at, value = self.instant.get((meter_id, 'power'),
                (None, None))
            limit = profile.max_load
            if read_at is not None and profile.power_bands:
                local_at = read_at.replace(tzinfo=UTC).astimezone(self.tz)
                limit = rules.power_limit_at(profile.power_bands,
                    local_at.time(), limit)
            result.append(('over_load', _Found(value, limit, read_at)
                    if rules.over(value, limit) else None))
        main = MAIN_REGISTER.get(meter['utility'])
        day_label, day_start = self.day_label, self.day_start
        if profile.day_usage_max:
            usage = self.day.get((meter_id, main))
            result.append(('day_usage', _Found(usage, profile.day_usage_max,
                        max(day_start, min(now, meter['last_read_at']
                                or now)), day_label)
                    if rules.over(usage, profile.day_usage_max) else None))
        if profile.month_usage_max:
            usage = self.month.get(meter_id)
            result.append(('month_usage', _Found(usage,
                        profile.month_usage_max, now, self.month_label)
                    if rules.over(usage, profile.month_usage_max) else None))
        if profile.night_usage_max:
            usage, label, begin = self.night.get(meter_id,
                (None, None, None))
            result.append(('night_usage', _Found(usage,
                        profile.night_usage_max, begin,
                        label)
                    if rules.over(usage, profile.night_usage_max) else None))
        if profile.reverse_energy and meter['utility'] == 'electricity':
            usage = self.day.get((meter_id, 'energy_reverse'))
            result.append(('reverse_energy', _Found(usage, Decimal(0),
                        now, day_label)
                    if usage and usage > 0 else None))
        threshold = self.remaining_threshold(meter, profile)
        if threshold:
            remaining = meter['remaining']
            low = rules.low_stage(remaining, threshold) > 0
            result.append(('low_remaining', _Found(remaining, threshold,
                        now) if low else None))
        if profile.offline_cycles:
            cycle = self.cycle.get(meter['bus']) or 60
            is_offline = rules.offline(meter['last_read_at'], now,
                profile.offline_cycles, cycle)
            if is_offline and self.timed:
                result.append(('offline', _Found(None, Decimal(
                                profile.offline_cycles * cycle),
                            meter['last_read_at'] or now)))
            elif not is_offline:
                result.append(('offline', None))
        if profile.stagnant_days and (meter['tenant'] or meter['wallet']):
            if self.timed:
                count, total = self.stagnant_days.get(meter_id, (0, None))
                if rules.stagnant(True, count, total,
                        profile.stagnant_days):
                    result.append(('stagnant', _Found(Decimal(0),
                                Decimal(profile.stagnant_days),
                                self.days_ago(profile.stagnant_days))))
                elif count >= profile.stagnant_days:
                    result.append(('stagnant', None))
            if self.day.get((meter_id, main)):
                # it moved today: not stagnant any more
                result.append(('stagnant', None))
        if meter_id in self.used_since_trip:
            used, start = self.used_since_trip[meter_id]
            result.append(('relay_mismatch', _Found(used, Decimal(0), start,
                        description=gettext(
                            'dh_alarm.msg_used_while_open'))))
        return result

    @staticmethod
    def remaining_threshold(meter, profile):
        if meter['billing_mode'] == 'postpaid' or meter['role'] == 'public':
            return None
        if meter['billing_mode'] == 'energy':
            return profile.remaining_min or profile.alarm_energy
        if meter['wallet']:
            return profile.remaining_min
        return None


class AcknowledgeStart(ModelView):
    __name__ = 'dh.alarm.acknowledge.start'
    __string__ = "Acknowledge Alarms"
    note = fields.Text("Note", required=True)


class Acknowledge(Wizard):
    __name__ = 'dh.alarm.acknowledge'
    __string__ = "Acknowledge Alarms"
    start = StateView('dh.alarm.acknowledge.start',
        'dh_alarm.acknowledge_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Acknowledge", 'acknowledge', 'tryton-ok', default=True),
            ])
    acknowledge = StateTransition()

    def transition_acknowledge(self):
        Alarm = Pool().get('dh.alarm')
        Alarm.do_acknowledge(self.records, self.start.note)
        return 'end'


class StatusAlarms(Wizard):
    "The open alarms of the meters in one status of the board"
    __name__ = 'dh.meter.status.alarms'
    __string__ = "Alarms of These Meters"
    start_state = 'open_'
    open_ = StateAction('dh_alarm.act_alarm_open')

    def do_open_(self, action):
        from trytond.pyson import PYSONEncoder
        state = self.record.state if self.record else None
        domain = [('state', '!=', 'closed')]
        if state:
            domain.append(('meter.state', '=', state))
        action['pyson_domain'] = PYSONEncoder().encode(domain)
        return action, {}
