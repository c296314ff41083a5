# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Notifications (dh.notification): who is told what, and the delivery.

A notification is one message to one recipient on one channel.  It is
created with a de-duplication key (the same event never makes two rows),
then delivered by the Tryton queue worker: the attempt is committed as
'sending' before the gateway is called, so a worker that dies mid-send
never sends it again; failures are retried with back-off until
max_attempts, then given up.  Each phone gets at most ``daily_cap``
messages a day.

Channels: 'sms' (the configured gateway: log, Aliyun or Tencent Cloud) and
'wechat' (template messages; the WeChat module registers the sender by
extending ``senders`` and adds bound tenants in ``recipients``)."""
import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal

from sql import Null
from sql.aggregate import Count

from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSingleton, ModelSQL, ModelView, Unique, fields)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.dh_metering.meter import MAIN_REGISTER
from trytond.modules.dh_metering.reading import local_timezone
from trytond.modules.dh_metering.storage import forget_records
from trytond.modules.dh_metering.usage import E4

from . import rules
from .alarm import KIND_NAMES_ZH, _chunks, _p
from .sms import SmsError, make_gateway, parse_mobiles

logger = logging.getLogger(__name__)
UTC = dt.timezone.utc
CHANNELS = [
    ('sms', "SMS"),
    ('wechat', "WeChat"),
    ]
STATES = [
    ('queued', "Queued"),
    ('sending', "Sending"),
    ('sent', "Sent"),
    ('failed', "Failed (will retry)"),
    ('given_up', "Given Up"),
    ]
# template code → (Chinese text, parameter names in the template's order)
TEMPLATES = {
    'low_balance': ('{meter}剩余{remaining}{unit}，已低于{threshold}{unit}，'
        '请及时充值。', ('meter', 'remaining', 'threshold', 'unit')),
    'monthly_usage': ('{meter}{period}用量{usage}{unit}，当前剩余'
        '{remaining}。', ('meter', 'period', 'usage', 'unit', 'remaining')),
    'cutoff': ('{meter}因余额不足已断电，充值后将自动恢复供电。', ('meter',)),
    'restored': ('{meter}已恢复供电，当前剩余{remaining}。',
        ('meter', 'remaining')),
    'alarm': ('{meter}报警：{kind}，数值{value}，阈值{threshold}，'
        '时间{time}。', ('meter', 'kind', 'value', 'threshold', 'time')),
    }
TEMPLATE_SELECTION = [
    ('low_balance', "Low Balance"),
    ('monthly_usage', "Monthly Usage"),
    ('cutoff', "Cut Off"),
    ('restored', "Supply Restored"),
    ('alarm', "Alarm"),
    ]
UNITS = {'electricity': '度', 'water': '吨', 'ac_indoor': '小时',
    'ac_outdoor': '度'}


def render(template, params):
    text, _ = TEMPLATES[template]
    return text.format(**params)


def _money(value):
    return f'{Decimal(value):.2f}' if value is not None else '-'


class Configuration(ModelSingleton, ModelSQL, ModelView):
    "Notification settings: the SMS gateway and its templates"
    __name__ = 'dh.alarm.configuration'
    __string__ = "Alarm Configuration"
    sms_gateway = fields.Selection([
            ('log', "Log Only (demo)"),
            ('aliyun', "Aliyun SMS"),
            ('tencent', "Tencent Cloud SMS"),
            ], "SMS Gateway", required=True)
    sms_key_id = fields.Char("Access Key ID",
        states={'invisible': Eval('sms_gateway') == 'log'})
    sms_secret = fields.Char("Access Key Secret",
        states={'invisible': Eval('sms_gateway') == 'log'},
        help="Readable by DH administrators only.")
    sms_sign_name = fields.Char("Sign Name", help="短信签名, e.g. DH物业.")
    sms_endpoint = fields.Char("Endpoint",
        states={'invisible': Eval('sms_gateway') == 'log'},
        help="Empty: the provider's public endpoint.")
    sms_region = fields.Char("Region",
        states={'invisible': Eval('sms_gateway') == 'log'})
    sms_app_id = fields.Char("SMS SdkAppId",
        states={'invisible': Eval('sms_gateway') != 'tencent'})
    sms_timeout = fields.Integer("Time-out (s)", required=True)
    template_low_balance = fields.Char("Template: Low Balance")
    template_monthly_usage = fields.Char("Template: Monthly Usage")
    template_cutoff = fields.Char("Template: Cut Off")
    template_restored = fields.Char("Template: Restored")
    template_alarm = fields.Char("Template: Alarm")
    daily_cap = fields.Integer("Messages per Phone per Day", required=True,
        domain=[('daily_cap', '>', 0)])
    max_attempts = fields.Integer("Max Attempts", required=True,
        domain=[('max_attempts', '>', 0)])
    retry_delay = fields.Integer("First Retry After (s)", required=True,
        help="Doubled at each further attempt.")

    @staticmethod
    def default_sms_gateway():
        return 'log'

    @staticmethod
    def default_sms_timeout():
        return 10

    @staticmethod
    def default_daily_cap():
        return 10

    @staticmethod
    def default_max_attempts():
        return 5

    @staticmethod
    def default_retry_delay():
        return 60

    def gateway(self):
        settings = {}
        if self.sms_gateway == 'aliyun':
            settings = dict(access_key_id=self.sms_key_id,
                access_key_secret=self.sms_secret,
                sign_name=self.sms_sign_name, timeout=self.sms_timeout)
            if self.sms_endpoint:
                settings['endpoint'] = self.sms_endpoint
            if self.sms_region:
                settings['region'] = self.sms_region
        elif self.sms_gateway == 'tencent':
            settings = dict(secret_id=self.sms_key_id,
                secret_key=self.sms_secret, sdk_app_id=self.sms_app_id,
                sign_name=self.sms_sign_name, timeout=self.sms_timeout)
            if self.sms_endpoint:
                endpoint = self.sms_endpoint
                if '://' in endpoint:
                    protocol, endpoint = endpoint.split('://', 1)
                    settings['protocol'] = protocol
                settings['endpoint'] = endpoint.rstrip('/')
            if self.sms_region:
                settings['region'] = self.sms_region
        else:
            settings = dict(log=logger)
        return make_gateway(self.sms_gateway, **settings)

    def template_id(self, template):
        return getattr(self, f'template_{template}', None) or template


class Notification(ModelSQL, ModelView):
    "A message to one recipient"
    __name__ = 'dh.notification'
    __string__ = "Notification"
    channel = fields.Selection(CHANNELS, "Channel", required=True,
        readonly=True)
    recipient = fields.Char("Recipient", required=True, readonly=True,
        help="Mobile number or WeChat openid.")
    template = fields.Selection(TEMPLATE_SELECTION, "Template",
        required=True, readonly=True)
    params = fields.Dict(None, "Parameters", readonly=True)
    text = fields.Text("Text", readonly=True)
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    attempts = fields.Integer("Attempts", readonly=True)
    next_attempt_at = fields.DateTime("Next Attempt", readonly=True)
    sent_at = fields.DateTime("Sent At", readonly=True)
    provider_id = fields.Char("Provider Message Id", readonly=True)
    error = fields.Char("Error", readonly=True)
    key = fields.Char("De-duplication Key", required=True, readonly=True)
    meter = fields.Many2One('dh.meter', "Meter", readonly=True,
        ondelete='SET NULL')
    alarm = fields.Many2One('dh.alarm', "Alarm", readonly=True,
        ondelete='SET NULL')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('key_unique', Unique(t, t.key), 'dh_alarm.msg_notification_key'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.recipient, Index.Equality()),
                    (t.create_date, Index.Range())),
                Index(t, (t.meter, Index.Range())),
                })
        cls._order = [('create_date', 'DESC'), ('id', 'DESC')]
        cls._buttons.update({
                'retry': {
                    'invisible': ~Eval('state').in_(['given_up', 'failed']),
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_state():
        return 'queued'

    @staticmethod
    def default_attempts():
        return 0

    # -- who ----------------------------------------------------------------
    @classmethod
    def recipients(cls, meters, profiles):
        """{meter id: [(channel, recipient)]}: the meter's own mobiles,
        its profile's and its area managers' (住户和片区经理).  The WeChat
        module adds the tenants bound to the meter."""
        managers = cls._area_managers({m['area'] for m in meters.values()})
        result = {}
        for meter_id, meter in meters.items():
            profile = profiles.get(meter['profile'])
            phones = []
            for text in [meter.get('phones'),
                    profile.phones if profile else None]:
                try:
                    phones += parse_mobiles(text)
                except ValueError:
                    continue
            phones += managers.get(meter['area'], [])
            seen, unique = set(), []
            for phone in phones:
                if phone not in seen:
                    seen.add(phone)
                    unique.append(('sms', phone))
            result[meter_id] = unique
        return result

    @classmethod
    def _area_managers(cls, area_ids):
        "{area: [mobiles of the managers of it and of its ancestors]}"
        pool = Pool()
        Area = pool.get('dh.area')
        Link = pool.get('dh.area-res.user')
        User = pool.get('res.user')
        area, link, user = (Area.__table__(), Link.__table__(),
            User.__table__())
        cursor = Transaction().connection.cursor()
        paths = {}
        for chunk in _chunks(sorted(a for a in area_ids if a)):
            cursor.execute(*area.select(area.id, area.l1, area.l2, area.l3,
                    area.l4, where=area.id.in_(chunk)))
            for id_, *path in cursor:
                paths[id_] = [id_] + [a for a in path if a]
        cursor.execute(*link.join(user, condition=link.user == user.id
                ).select(link.area, user.dh_mobile,
                where=(user.dh_mobile != Null) & (user.active == True)))  # noqa
        mobiles = defaultdict(list)
        for area_id, text in cursor:
            try:
                mobiles[area_id] += parse_mobiles(text)
            except ValueError:
                continue
        return {a: [m for ancestor in dict.fromkeys(path)
                for m in mobiles.get(ancestor, [])]
            for a, path in paths.items()}

    # -- what ---------------------------------------------------------------
    @classmethod
    def notify(cls, template, params, recipients, key, meter=None,
            alarm=None):
        """Queue one message per recipient; a key already used is skipped
        (the same event never makes two messages), a phone over its daily
        cap gets the row given up.  Returns the new notifications."""
        return cls.notify_many([(template, params, recipients, key, meter,
                    alarm)])

    @classmethod
    def notify_many(cls, items):
        """``notify`` for many events at once: [(template, params,
        recipients, key, meter, alarm)] — a few queries, not a few per
        message"""
        pool = Pool()
        Config = pool.get('dh.alarm.configuration')
        config = Config(1)
        rows = {}
        for template, params, recipients, key, meter, alarm in items:
            text = render(template, params)
            for channel, recipient in recipients:
                rows.setdefault(f'{key}:{channel}:{recipient}', {
                        'channel': channel, 'recipient': recipient,
                        'template': template, 'params': params,
                        'text': text, 'meter': meter, 'alarm': alarm,
                        'state': 'queued'})
        if not rows:
            return []
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        for chunk in _chunks(sorted(rows)):
            cursor.execute(*table.select(table.key,
                    where=table.key.in_(chunk)))
            for key, in cursor:
                rows.pop(key, None)
        today = dt.datetime.combine(dt.date.today(), dt.time())
        phones = sorted({v['recipient'] for v in rows.values()
                if v['channel'] == 'sms'})
        counts = defaultdict(int)
        for chunk in _chunks(phones):
            cursor.execute(*table.select(table.recipient, Count(table.id),
                    where=table.recipient.in_(chunk)
                    & (table.create_date >= today)
                    & (table.state != 'given_up'),
                    group_by=[table.recipient]))
            counts.update(cursor)
        vlist = []
        for key, values in rows.items():
            values['key'] = key
            if values['channel'] == 'sms':
                if counts[values['recipient']] >= config.daily_cap:
                    values.update(state='given_up', error=gettext(
                            'dh_alarm.msg_daily_cap', cap=config.daily_cap))
                else:
                    counts[values['recipient']] += 1
            vlist.append(values)
        notifications = []
        for chunk in _chunks(vlist, 500):
            notifications += cls.create(chunk)
        queued = [n for n in notifications if n.state == 'queued']
        if queued:
            cls.enqueue(queued)
        return notifications

    @classmethod
    def enqueue(cls, notifications, delay=None):
        # small tasks: several workers share a burst of messages
        context = {'queue_name': 'dh_notification', 'queue_batch': 20}
        if delay:
            context['queue_scheduled_at'] = dt.timedelta(seconds=delay)
        with Transaction().set_context(**context):
            cls.__queue__.deliver(notifications)

    @classmethod
    def after_evaluation(cls, changes, facts, existing):
        """The messages an evaluation calls for: new alarms, the
        low-balance staging of both modes, and on the settlement day the
        monthly usage.  Returns how many notifications were made."""
        meters, profiles = facts.meters, facts.profiles
        opened = [a for a in changes.opened if a.state == 'open']
        by_key = {(a.meter, a.kind): a for a in opened}
        low = {}
        for (meter_id, kind), alarm in by_key.items():
            if kind == 'low_remaining':
                low[meter_id] = ('new', alarm)
        for (meter_id, kind), open_ in changes.still_open.items():
            if kind == 'low_remaining':
                low[meter_id] = ('old', open_)
        others = [a for a in opened if a.kind != 'low_remaining'
            and profiles[meters[a.meter]['profile']].alarm_sms]
        wanted = {a.meter for a in others} | set(low)
        monthly = {}
        if facts.timed:
            monthly = cls._monthly_due(facts)
            wanted |= set(monthly)
        if not wanted:
            return 0
        recipients = cls.recipients({i: meters[i] for i in wanted}, profiles)
        items = []
        for alarm in others:
            items.append(('alarm', cls.alarm_params(alarm,
                        meters[alarm.meter]['name']),
                    recipients[alarm.meter], f'alarm:{alarm.id}',
                    alarm.meter, alarm.id))
        stage_updates = []
        for meter_id, (_, alarm) in low.items():
            meter = meters[meter_id]
            profile = profiles[meter['profile']]
            threshold = facts.remaining_threshold(meter, profile)
            stage_now = rules.low_stage(meter['remaining'], threshold,
                profile.ratios)
            params = {'meter': meter['name'],
                'remaining': _money(meter['remaining']),
                'threshold': _money(threshold),
                'unit': '度' if meter['billing_mode'] == 'energy' else '元'}
            if profile.low_balance_mode == 'staged':
                step = rules.staged(alarm.stage or 0, stage_now)
                if step.send:
                    items.append(('low_balance', params,
                            recipients[meter_id],
                            f'low:{alarm.id}:{step.stage}', meter_id,
                            alarm.id))
                if step.stage != (alarm.stage or 0):
                    stage_updates.append((alarm.id, step.stage, None))
            else:
                send_at = profile.daily_at
                step = rules.daily(stage_now, facts.local, send_at,
                    alarm.last_sent)
                if step.send:
                    items.append(('low_balance', params,
                            recipients[meter_id],
                            f'lowday:{alarm.id}:{facts.local:%Y-%m-%d}',
                            meter_id, alarm.id))
                    stage_updates.append((alarm.id, stage_now,
                            facts.local.date()))
        if stage_updates:
            p = _p()
            cursor = Transaction().connection.cursor()
            cursor.executemany(f'UPDATE dh_alarm SET stage = {p}, '
                f'last_sent = COALESCE({p}, last_sent) WHERE id = {p}',
                [(stage, sent, id_) for id_, stage, sent in stage_updates])
            forget_records('dh.alarm')
        for meter_id, params in monthly.items():
            items.append(('monthly_usage', params, recipients[meter_id],
                    f'month:{meter_id}:{params["period"]}', meter_id, None))
        return len(cls.notify_many(items))

    @classmethod
    def _monthly_due(cls, facts):
        """{meter: params} of the monthly-usage messages due today: on the
        settlement day, the usage from the last settlement day to this
        one"""
        cursor = Transaction().connection.cursor()
        p = _p()
        today = facts.local.date()
        due = defaultdict(list)
        spans = {}
        for profile in facts.profiles.values():
            if profile.monthly_sms and profile.settlement_day:
                span = rules.settlement_period(today, profile.settlement_day)
                if span:
                    spans[profile.id] = span
        if not spans:
            return {}
        for meter_id, meter in facts.meters.items():
            span = spans.get(meter['profile'])
            if span:
                due[span].append(meter_id)
        if not due:
            return {}
        table = cls.__table__()
        result = {}
        for (start, end), members in due.items():
            period = f'{start:%Y-%m-%d}~{end - dt.timedelta(days=1):%Y-%m-%d}'
            keys = {f'month:{m}:{period}': m for m in members}
            sent = set()
            for chunk in _chunks(sorted(keys)):
                cursor.execute(*table.select(table.key,
                        where=table.key.like(f'month:%:{period}:%')
                        & table.meter.in_([keys[k] for k in chunk])))
                sent.update(k for k, in cursor)
            sent_meters = {int(k.split(':')[1]) for k in sent}
            todo = [m for m in members if m not in sent_meters]
            usage = {}
            for chunk in _chunks(sorted(todo)):
                cursor.execute('SELECT meter, register, SUM(usage_e4) FROM '
                    f'dh_usage_day WHERE period >= {p} AND period < {p} AND '
                    f'meter IN ({", ".join([p] * len(chunk))}) '
                    'GROUP BY meter, register', [start, end] + chunk)
                for meter_id, register, total in cursor:
                    if register == MAIN_REGISTER.get(
                            facts.meters[meter_id]['utility']):
                        usage[meter_id] = Decimal(total) / E4
            for meter_id in todo:
                meter = facts.meters[meter_id]
                result[meter_id] = {'meter': meter['name'],
                    'period': period,
                    'usage': f'{usage.get(meter_id, Decimal(0)):.2f}',
                    'unit': UNITS.get(meter['utility'], ''),
                    'remaining': _money(meter['remaining'])}
        return result

    @staticmethod
    def alarm_params(alarm, meter_name):
        tz = local_timezone()
        start = alarm.start.replace(tzinfo=UTC).astimezone(tz)
        return {'meter': meter_name,
            'kind': KIND_NAMES_ZH.get(alarm.kind, alarm.kind),
            'value': f'{alarm.value.normalize():f}'
            if alarm.value is not None else '-',
            'threshold': f'{alarm.threshold.normalize():f}'
            if alarm.threshold is not None else '-',
            'time': f'{start:%m-%d %H:%M}'}

    @classmethod
    def alarms_opened(cls, alarms):
        "Alarms opened outside an evaluation (from command outcomes)"
        pool = Pool()
        Meter = pool.get('dh.meter')
        Profile = pool.get('dh.alarm.profile')
        for alarm in alarms:
            meter = Meter(alarm.meter)
            profile = meter.effective_profile
            if (not profile or not profile.enabled or not profile.alarm_sms
                    or alarm.state == 'closed' and alarm.kind != 'load_trip'):
                continue
            info = {meter.id: {'area': meter.area.id,
                    'phones': meter.alarm_phones, 'profile': profile.id}}
            recipients = cls.recipients(info, {profile.id: Profile(
                        profile.id)})
            cls.notify('alarm', cls.alarm_params(alarm, meter.name),
                recipients[meter.id], f'alarm:{alarm.id}', meter=meter.id,
                alarm=alarm.id)

    @classmethod
    def supply_changed(cls, command):
        "断电 / 恢复供电 messages for arrears trips and closes"
        pool = Pool()
        Profile = pool.get('dh.alarm.profile')
        meter = command.meter
        profile = meter.effective_profile
        if not profile or not profile.enabled or not profile.supply_sms:
            return []
        template = 'cutoff' if command.kind == 'trip' else 'restored'
        info = {meter.id: {'area': meter.area.id,
                'phones': meter.alarm_phones, 'profile': profile.id}}
        recipients = cls.recipients(info, {profile.id: Profile(profile.id)})
        params = {'meter': meter.name}
        if template == 'restored':
            params['remaining'] = _money(meter.remaining)
        return cls.notify(template, params, recipients[meter.id],
            f'{template}:{command.id}', meter=meter.id)

    # -- delivery -----------------------------------------------------------
    @classmethod
    def senders(cls):
        "{channel: function(notification, config) → provider message id}"
        return {'sms': cls._send_sms}

    @classmethod
    def _send_sms(cls, notification, config):
        gateway = config.gateway()
        _, order = TEMPLATES[notification.template]
        params = dict(notification.params or {})
        ordered = {name: str(params.get(name, '')) for name in order}
        template = config.template_id(notification.template)
        if config.sms_gateway == 'log':
            # the log shows the Chinese text itself
            template = TEMPLATES[notification.template][0]
        result = gateway.send(notification.recipient, template, ordered,
            out_id=str(notification.id))
        return result.message_id

    @classmethod
    def deliver(cls, notifications):
        """Send each queued or due notification once.  Every step is a
        transaction of its own (the caller's stays untouched, so one
        message's outcome never waits on another's): the attempt is
        committed before the gateway is called, so a crash after it leaves
        the row 'sending', which is never sent again; the outcome is
        committed at once."""
        table = cls.__table__()
        for notification_id in [int(n) for n in notifications]:
            now = dt.datetime.now()
            with Transaction().new_transaction() as transaction:
                cursor = transaction.connection.cursor()
                cursor.execute(*table.update(
                        [table.state, table.attempts, table.write_date],
                        ['sending', table.attempts + 1, now],
                        where=(table.id == notification_id)
                        & table.state.in_(['queued', 'failed'])
                        & ((table.next_attempt_at == Null)
                            | (table.next_attempt_at <= now))))
                claimed = cursor.rowcount
                transaction.commit()
            if claimed:
                with Transaction().new_transaction() as transaction:
                    cls._deliver_one(cls(notification_id))
                    transaction.commit()

    @classmethod
    def _deliver_one(cls, notification):
        Config = Pool().get('dh.alarm.configuration')
        config = Config(1)
        sender = cls.senders().get(notification.channel)
        values = {}
        retry = None
        try:
            if sender is None:
                raise SmsError('no-channel', gettext(
                        'dh_alarm.msg_no_channel',
                        channel=notification.channel), False)
            message_id = sender(notification, config)
            values.update(state='sent', provider_id=message_id,
                sent_at=dt.datetime.now(), error=None)
        except SmsError as exception:
            error = f'{exception.code}: {exception.message}'[:250]
            if (exception.retryable
                    and notification.attempts < config.max_attempts):
                retry = config.retry_delay * 2 ** (notification.attempts - 1)
                values.update(state='failed', error=error,
                    next_attempt_at=dt.datetime.now()
                    + dt.timedelta(seconds=retry))
            else:
                values.update(state='given_up', error=error)
        except Exception as exception:
            # a bug or a broken configuration: keep the row, say why
            logger.exception('notification %s', notification.id)
            values.update(state='given_up',
                error=f'{type(exception).__name__}: {exception}'[:250])
        cls.write([notification], values)
        if retry is not None:
            cls.enqueue([notification], delay=retry)

    @classmethod
    @ModelView.button
    def retry(cls, notifications):
        notifications = [n for n in notifications
            if n.state in {'failed', 'given_up'}]
        cls.write(notifications, {'state': 'queued', 'attempts': 0,
                'next_attempt_at': None})
        cls.enqueue(notifications)

    @classmethod
    def cron_retry(cls):
        """The safety net: queue the due retries again, and give up the
        rows left 'sending' by a worker that died (they may have been sent:
        never twice)"""
        now = dt.datetime.now()
        due = cls.search([('state', 'in', ['queued', 'failed']),
                ['OR', ('next_attempt_at', '=', None),
                    ('next_attempt_at', '<=', now)],
                ('create_date', '<', now - dt.timedelta(minutes=1))])
        if due:
            cls.enqueue(due)
        stale = cls.search([('state', '=', 'sending'),
                ('write_date', '<', now - dt.timedelta(minutes=10))])
        if stale:
            cls.write(stale, {'state': 'given_up',
                    'error': gettext('dh_alarm.msg_outcome_unknown')})
        return len(due), len(stale)
