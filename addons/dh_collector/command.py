# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Commands to meters (dh.command): everything sent to a meter goes through
this queue — read now, trip, close, recharge push, parameter write / read,
alarm records read, load lockout reset, time sync, valve open/close.
queued → sent → confirmed / failed / expired."""
import datetime as dt
import json

from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

KINDS = [
    ('read', "Read Now"),
    ('trip', "Trip"),
    ('close', "Close"),
    ('recharge', "Recharge Push"),
    ('param_write', "Parameter Write"),
    ('param_read', "Parameter Read"),
    ('event_read', "Read Alarm Records"),
    ('load_reset', "Load Lockout Reset"),
    ('time_sync', "Time Sync"),
    ('valve_open', "Open Valve"),
    ('valve_close', "Close Valve"),
    ('hold', "Power Hold"),
    ('hold_release', "Power Hold Release"),
    ('clear', "Remote Clear"),
    ]
STATES = [
    ('queued', "Queued"),
    ('sent', "Sent"),
    ('confirmed', "Confirmed"),
    ('failed', "Failed"),
    ('expired', "Expired"),
    ]
OPEN_STATES = ('queued', 'sent')


class Command(ModelSQL, ModelView):
    "A command to a meter"
    __name__ = 'dh.command'
    __string__ = "Meter Command"
    meter = fields.Many2One('dh.meter', "Meter", required=True,
        readonly=True, ondelete='RESTRICT')
    channel = fields.Many2One('dh.channel', "Channel", readonly=True)
    kind = fields.Selection(KINDS, "Kind", required=True, readonly=True)
    state = fields.Selection(STATES, "State", required=True, readonly=True)
    payload = fields.Text("Payload", readonly=True)
    result = fields.Text("Result", readonly=True)
    attempts = fields.Integer("Attempts", readonly=True)
    max_attempts = fields.Integer("Max Attempts", required=True,
        readonly=True)
    last_error = fields.Char("Last Error", readonly=True)
    queued_at = fields.DateTime("Queued At", required=True, readonly=True)
    sent_at = fields.DateTime("Sent At", readonly=True)
    done_at = fields.DateTime("Done At", readonly=True)
    expires_at = fields.DateTime("Expires At", required=True, readonly=True)
    requested_by = fields.Many2One('res.user', "Requested By",
        readonly=True)
    reference = fields.Char("Reference", readonly=True,
        help="What asked for it, e.g. the recharge.")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.state, Index.Equality(cardinality='low')),
                    (t.channel, Index.Range())),
                Index(t, (t.meter, Index.Range())),
                })
        cls._order.insert(0, ('queued_at', 'DESC'))
        cls._buttons.update({
                'cancel': {
                    'invisible': ~Eval('state').in_(list(OPEN_STATES)),
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_state():
        return 'queued'

    @staticmethod
    def default_attempts():
        return 0

    @staticmethod
    def default_max_attempts():
        return 3

    @classmethod
    def queue(cls, meters, kind, payload=None, expires_in=3600,
            reference=None, max_attempts=3):
        """Queue a command for each meter; an identical open command
        (same meter, kind and payload) is reused instead of doubled."""
        now = dt.datetime.now()
        text = json.dumps(payload or {}, sort_keys=True, default=str)
        existing = {(c.meter.id, c.kind, c.payload): c for c in cls.search([
                    ('meter', 'in', [m.id for m in meters]),
                    ('kind', '=', kind),
                    ('state', 'in', list(OPEN_STATES))])}
        result, to_create = [], []
        for meter in meters:
            command = existing.get((meter.id, kind, text))
            if command:
                result.append(command)
                continue
            command = cls(meter=meter, kind=kind, payload=text,
                channel=getattr(meter, 'bus', None), queued_at=now,
                expires_at=now + dt.timedelta(seconds=expires_in),
                requested_by=Transaction().user or None,
                reference=reference, max_attempts=max_attempts)
            to_create.append(command)
            result.append(command)
        cls.save(to_create)
        return result

    @classmethod
    @ModelView.button
    def cancel(cls, commands):
        cls.write([c for c in commands if c.state in OPEN_STATES], {
                'state': 'failed', 'done_at': dt.datetime.now(),
                'last_error': gettext('dh_collector.msg_command_cancelled')})

    @classmethod
    def pending(cls, channel_id, now=None):
        """Queued, unexpired commands of a channel's meters, oldest first
        (a command in flight is 'sent' and not handed out twice)"""
        now = now or dt.datetime.now()
        return cls.search([('channel', '=', channel_id),
                ('state', '=', 'queued'),
                ('expires_at', '>', now)], order=[('queued_at', 'ASC'),
                ('id', 'ASC')])

    @classmethod
    def report(cls, command_id, state, error=None, result=None):
        """The collector's news of a command: 'sent' (an attempt goes on
        the wire), 'confirmed' (the meter's state read back agrees) or
        'failed' (this attempt failed: queued again until max_attempts,
        then failed with the last error).  Returns the new state."""
        pool = Pool()
        Meter = pool.get('dh.meter')
        command = cls(command_id)
        if command.state not in OPEN_STATES:
            return command.state
        now = dt.datetime.now()
        values = {}
        if error:
            values['last_error'] = str(error)[:250]
        if result is not None:
            values['result'] = json.dumps(result, sort_keys=True,
                default=str)
        if state == 'sent':
            values.update(state='sent', sent_at=now,
                attempts=(command.attempts or 0) + 1)
        elif state == 'confirmed':
            values.update(state='confirmed', done_at=now)
            if command.kind == 'trip':
                Meter.write([command.meter], {'relay': 'open',
                        'state': 'cutoff'})
            elif command.kind == 'close':
                values_meter = {'relay': 'closed'}
                if command.meter.state == 'cutoff':
                    values_meter['state'] = 'normal'
                Meter.write([command.meter], values_meter)
            elif command.kind == 'clear':
                Meter.write([command.meter], {'remaining': 0})
            elif command.kind == 'load_reset' and isinstance(result, dict) \
                    and result.get('relay') in ('open', 'closed'):
                Meter.write([command.meter], {'relay': result['relay']})
        elif (command.attempts or 0) >= command.max_attempts:
            values.update(state='failed', done_at=now)
        else:
            values['state'] = 'queued'
        cls.write([command], values)
        return values.get('state', command.state)

    @classmethod
    def cron_expire(cls):
        "Commands not done in time are expired, with the reason kept"
        now = dt.datetime.now()
        commands = cls.search([('state', 'in', list(OPEN_STATES)),
                ('expires_at', '<=', now)])
        for command in commands:
            cls.write([command], {'state': 'expired', 'done_at': now,
                    'last_error': gettext('dh_collector.msg_command_expired',
                        attempts=command.attempts or 0,
                        error=command.last_error or '-')})
        return len(commands)
