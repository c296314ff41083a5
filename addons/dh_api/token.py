# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""API tokens (dh.api.token) and the audit log of every call (dh.api.call).

A token's key is shown once, when it is generated, and stored only as its
SHA-256 hash (the key is 256 random bits: a slow password hash would add
100 ms to every call and no safety).  A token is scoped to areas (it sees
only the meters below them, or all) and to operations (read / recharge /
control); revoking it is immediate and final.
"""
import datetime as dt
import hashlib
import json
import secrets

from sql.aggregate import Max

from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSQL, ModelView, Unique, Workflow, fields)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction, without_check_access
from trytond.wizard import Button, StateView, Wizard

from . import sqlcache
from .exceptions import TokenError

SCOPES = [
    ('read', "Read"),
    ('recharge', "Recharge"),
    ('control', "Control"),
    ]
KEY_PREFIX = 'dh_'


def hash_key(key):
    return hashlib.sha256(key.encode('utf-8', 'replace')).hexdigest()


class Token(Workflow, ModelSQL, ModelView):
    "An integrator's key to the HTTP API"
    __name__ = 'dh.api.token'
    __string__ = "API Token"
    _states = {'readonly': Eval('state') == 'revoked'}
    name = fields.Char("Name", required=True, states=_states,
        help="Who uses it, e.g. the property platform of 唐渠.")
    prefix = fields.Char("Key Prefix", readonly=True,
        help="The first characters of the key, to recognise it.")
    # the SHA-256 of the key: useless without the key (2^256 to invert),
    # readable like the rest by administrators only
    key_hash = fields.Char("Key Hash", readonly=True)
    all_areas = fields.Boolean("All Areas", states=_states,
        help="The token sees every meter.")
    areas = fields.Many2Many('dh.api.token-dh.area', 'token', 'area',
        "Areas", states={
            'readonly': Eval('state') == 'revoked',
            'invisible': Eval('all_areas', False),
            },
        help="The token sees only the meters below these areas.")
    scopes = fields.MultiSelection(SCOPES, "Operations", states=_states,
        help="Read: balances, users, usage, records, abnormal devices. "
        "Recharge: recharges. Control: mode changes and trip / close.")
    state = fields.Selection([
            ('draft', "Draft"),
            ('active', "Active"),
            ('revoked', "Revoked"),
            ], "State", readonly=True, required=True, sort=False)
    generated_at = fields.DateTime("Key Generated At", readonly=True)
    revoked_at = fields.DateTime("Revoked At", readonly=True)
    revoked_by = fields.Many2One('res.user', "Revoked By", readonly=True)
    last_used = fields.Function(fields.DateTime("Last Used"),
        'get_last_used')
    calls = fields.One2Many('dh.api.call', 'token', "Calls", readonly=True)
    del _states

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('key_hash_unique', Unique(t, t.key_hash),
                'dh_api.msg_token_key_unique'),
            ]
        cls._sql_indexes.add(
            Index(t, (t.key_hash, Index.Equality(cardinality='high'))))
        cls._order.insert(0, ('name', 'ASC'))
        cls._transitions |= {('draft', 'revoked'), ('active', 'revoked')}
        cls._buttons.update({
                'generate_key': {
                    'invisible': Eval('state') == 'revoked',
                    'depends': ['state'],
                    },
                'revoke': {
                    'invisible': Eval('state') == 'revoked',
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_state():
        return 'draft'

    @staticmethod
    def default_scopes():
        return ['read']

    @staticmethod
    def default_all_areas():
        return False

    @classmethod
    def get_last_used(cls, tokens, name):
        Call = Pool().get('dh.api.call')
        call = Call.__table__()
        cursor = Transaction().connection.cursor()
        result = {t.id: None for t in tokens}
        cursor.execute(*call.select(call.token, Max(call.date),
                where=call.token.in_(list(result)), group_by=[call.token]))
        for token_id, date in cursor:
            if isinstance(date, str):
                date = dt.datetime.fromisoformat(date)
            result[token_id] = date
        return result

    @classmethod
    def copy(cls, tokens, default=None):
        default = default.copy() if default else {}
        for name in ['prefix', 'key_hash', 'generated_at', 'revoked_at',
                'revoked_by', 'calls']:
            default.setdefault(name, None)
        default.setdefault('state', 'draft')
        return super().copy(tokens, default=default)

    @classmethod
    def delete(cls, tokens):
        for token in tokens:
            if token.state != 'draft':
                raise TokenError(gettext('dh_api.msg_token_delete',
                        token=token.rec_name))
        super().delete(tokens)

    @classmethod
    @ModelView.button_action('dh_api.wizard_generate_key')
    def generate_key(cls, tokens):
        pass

    @classmethod
    @ModelView.button
    @Workflow.transition('revoked')
    def revoke(cls, tokens):
        cls.write(tokens, {'revoked_at': dt.datetime.now(),
                'revoked_by': Transaction().user or None})

    def new_key(self):
        """Make a new key for the token (the old one stops working), store
        its hash and return it: the only time it is seen"""
        if self.state == 'revoked':
            raise TokenError(gettext('dh_api.msg_token_revoked_key',
                    token=self.rec_name))
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with without_check_access():
            self.write([self], {'key_hash': hash_key(key),
                    'prefix': key[:8], 'state': 'active',
                    'generated_at': dt.datetime.now()})
        return key

    @classmethod
    def create_token(cls, name, scopes, areas=None, all_areas=False):
        "(token, key) for scripts: a new active token"
        token, = cls.create([{'name': name, 'scopes': sorted(set(scopes)),
                    'all_areas': all_areas,
                    'areas': [('add', [a.id for a in areas or []])]}])
        return token, token.new_key()

    @classmethod
    def check_scopes(cls, scopes):
        unknown = set(scopes) - {s for s, _ in SCOPES}
        if unknown:
            raise TokenError(gettext('dh_api.msg_token_scope',
                    scopes=', '.join(sorted(unknown))))

    @classmethod
    def validate(cls, tokens):
        super().validate(tokens)
        for token in tokens:
            cls.check_scopes(token.scopes or [])

    @classmethod
    def authenticate(cls, key):
        """The (id, state, scopes, area ids or None for all) of the token
        whose key this is, or None: one indexed query, no ORM"""
        if not key or len(key) > 200:
            return None
        pool = Pool()
        table = cls.__table__()
        link = pool.get('dh.api.token-dh.area').__table__()
        cursor = Transaction().connection.cursor()
        digest = hash_key(key)
        sqlcache.execute(cursor, ('token',), lambda: table.select(table.id,
                table.state, table.scopes, table.all_areas,
                where=table.key_hash == digest), [digest])
        row = cursor.fetchone()
        if not row:
            return None
        token_id, state, scopes, all_areas = row
        scopes = json.loads(scopes) if isinstance(scopes, str) else (
            scopes or [])
        areas = None
        if not all_areas:
            sqlcache.execute(cursor, ('token_areas',), lambda: link.select(
                    link.area, where=link.token == token_id), [token_id])
            areas = sorted(a for a, in cursor)
        return token_id, state, frozenset(scopes), areas


class TokenArea(ModelSQL):
    __name__ = 'dh.api.token-dh.area'
    __string__ = "API Token - Area"
    token = fields.Many2One('dh.api.token', "Token", required=True,
        ondelete='CASCADE')
    area = fields.Many2One('dh.area', "Area", required=True,
        ondelete='CASCADE')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.token, Index.Range())))


class Call(ModelSQL, ModelView):
    "One call of the API: who, what, which device, and how it ended"
    __name__ = 'dh.api.call'
    __string__ = "API Call"
    date = fields.DateTime("Date", required=True, readonly=True)
    token = fields.Many2One('dh.api.token', "Token", readonly=True,
        ondelete='RESTRICT', help="Empty when no valid token was given.")
    remote_addr = fields.Char("Caller Address", readonly=True)
    operation = fields.Char("Operation", readonly=True)
    device = fields.Char("Device", readonly=True,
        help="The device id(s) as the caller sent them.")
    meter = fields.Many2One('dh.meter', "Meter", readonly=True,
        ondelete='SET NULL')
    reference = fields.Char("Reference", readonly=True,
        help="Transaction number or action.")
    status = fields.Integer("HTTP Status", readonly=True)
    outcome = fields.Char("Outcome", readonly=True,
        help='"ok" or the error code.')
    duration = fields.Integer("Duration (ms)", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.token, Index.Range()), (t.date, Index.Range())),
                Index(t, (t.date, Index.Range())),
                Index(t, (t.meter, Index.Range())),
                })
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    @classmethod
    def record(cls, token_id, remote_addr, operation, device, meter_id,
            reference, status, outcome, duration):
        """Append one entry (a plain INSERT: the log is written on every
        call and must not slow it)"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        now = dt.datetime.now()
        values = [Transaction().user, now, now, token_id or None,
            (remote_addr or '')[:64], operation[:64],
            (device or '')[:250] or None, meter_id or None,
            (reference or '')[:100] or None, status, outcome[:64],
            int(duration)]
        sqlcache.execute(cursor, ('call',), lambda: table.insert(
                [table.create_uid, table.create_date, table.date,
                    table.token, table.remote_addr, table.operation,
                    table.device, table.meter, table.reference,
                    table.status, table.outcome, table.duration],
                [values]), values)

    @classmethod
    def cron_purge(cls, days=None):
        """Remove the entries older than [dh] api_log_days (default 365):
        at hundreds of calls a second the log would otherwise outgrow
        everything else.  Returns the number removed."""
        from trytond.config import config
        if days is None:
            days = config.getint('dh', 'api_log_days', default=365)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.delete(where=table.date
                < dt.datetime.now() - dt.timedelta(days=days)))
        return cursor.rowcount

    @classmethod
    def write(cls, *args):
        # only the meter may be cleared (when it is deleted)
        actions = iter(args)
        for calls, values in zip(actions, actions):
            if set(values) - {'meter'} or values.get('meter'):
                raise TokenError(gettext('dh_api.msg_call_readonly'))
        super().write(*args)

    @classmethod
    def delete(cls, calls):
        raise TokenError(gettext('dh_api.msg_call_readonly'))


class GenerateKeyShow(ModelView):
    __name__ = 'dh.api.token.generate_key.show'
    __string__ = "New API Key"
    token = fields.Many2One('dh.api.token', "Token", readonly=True)
    key = fields.Char("Key", readonly=True,
        help="Copy it now: it is stored only as a hash and is never shown "
        "again.")


class GenerateKey(Wizard):
    "Generate (or replace) the key of a token and show it once"
    __name__ = 'dh.api.token.generate_key'
    __string__ = "Generate API Key"
    start_state = 'show'
    show = StateView('dh.api.token.generate_key.show',
        'dh_api.generate_key_show_view_form', [
            Button("Close", 'end', 'tryton-ok', default=True),
            ])

    def default_show(self, fields):
        token = self.record
        key = token.new_key()
        return {'token': token.id, 'key': key}

