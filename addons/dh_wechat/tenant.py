# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Tenants on the portal: Tryton's web users with the account name the
property office sets (物业公司需要设置每一个用户的用户名及密码), their
WeChat bindings (openid per official account, with the template messages
they subscribed to), the portal session's openid and the OAuth hand-over
between the WeChat redirect and the password sign-in that binds it."""
import datetime as dt
import secrets

from sql import Literal
from sql.operators import Equal

from trytond.i18n import gettext
from trytond.model import Exclude, Index, ModelSQL, ModelView, Unique, fields
from trytond.pool import PoolMeta
from trytond.pyson import Bool, Eval
from trytond.transaction import Transaction

from .exceptions import WeChatValidationError

# template → the binding's subscription field
SUBSCRIPTIONS = {
    'low_balance': 'notify_low_balance',
    'cutoff': 'notify_supply',
    'restored': 'notify_supply',
    'monthly_usage': 'notify_monthly',
    'alarm': 'notify_alarm',
    }
PENDING_MINUTES = 15


class WebUser(metaclass=PoolMeta):
    __name__ = 'web.user'
    dh_login = fields.Char("Account Name",
        help="The name the tenant signs in to the portal with (账号), set by "
        "the property office with the password.")
    dh_bindings = fields.One2Many('dh.wechat.binding', 'web_user',
        "WeChat Bindings", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # a tenant may have an account name and no e-mail
        cls.email.states = dict(cls.email.states)
        cls.email.states['required'] = (Eval('active', True)
            & ~Bool(Eval('dh_login')))
        cls.email.depends = set(cls.email.depends) | {'dh_login'}
        t = cls.__table__()
        cls._sql_constraints += [
            ('dh_login_exclude', Exclude(t, (t.dh_login, Equal),
                    where=t.active == Literal(True)),
                'dh_wechat.msg_login_unique'),
            ]
        cls._sql_indexes.add(
            Index(t, (t.dh_login, Index.Equality(cardinality='high'))))

    @classmethod
    def preprocess_values(cls, mode, values):
        values = super().preprocess_values(mode, values)
        if isinstance(values.get('dh_login'), str):
            values['dh_login'] = values['dh_login'].strip() or None
        return values

    @classmethod
    def validate_fields(cls, users, field_names):
        super().validate_fields(users, field_names)
        if 'dh_login' in field_names:
            for user in users:
                login = user.dh_login or ''
                if login and (len(login) > 64 or any(
                            c.isspace() for c in login)):
                    raise WeChatValidationError(gettext(
                            'dh_wechat.msg_login_format', login=login))

    @classmethod
    def dh_find(cls, login):
        "The active web user signing in as ``login`` (account name or e-mail)"
        login = (login or '').strip()
        if not login:
            return None
        users = cls.search([('dh_login', '=', login)], limit=1)
        if not users and '@' in login:
            users = cls.search([('email', '=', login.lower())], limit=1)
        return users[0] if users else None

    def dh_parties(self):
        "The tenants (parties) this account speaks for"
        parties = [p.id for p in self.secondary_parties]
        if self.party:
            parties.insert(0, self.party.id)
        return parties


class WebUserSession(metaclass=PoolMeta):
    __name__ = 'web.user.session'
    dh_openid = fields.Char("WeChat OpenID")


class Binding(ModelSQL, ModelView):
    "A tenant's WeChat (openid) bound to his portal account"
    __name__ = 'dh.wechat.binding'
    __string__ = "WeChat Binding"
    web_user = fields.Many2One('web.user', "Web User", required=True,
        ondelete='CASCADE', readonly=True)
    config = fields.Many2One('dh.wechat.config', "Official Account",
        required=True, ondelete='CASCADE', readonly=True)
    openid = fields.Char("OpenID", required=True, readonly=True)
    bound_at = fields.DateTime("Bound At", readonly=True)
    last_login = fields.DateTime("Last Sign-in", readonly=True)
    notify_low_balance = fields.Boolean("Low Balance Messages")
    notify_supply = fields.Boolean("Cut-off / Restored Messages")
    notify_monthly = fields.Boolean("Monthly Usage Messages")
    notify_alarm = fields.Boolean("Alarm Messages")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('openid_unique', Unique(t, t.config, t.openid),
                'dh_wechat.msg_binding_unique'),
            ]
        cls._sql_indexes.add(Index(t, (t.web_user, Index.Range())))

    @staticmethod
    def default_notify_low_balance():
        return True

    @staticmethod
    def default_notify_supply():
        return True

    @staticmethod
    def default_notify_monthly():
        return True

    @staticmethod
    def default_notify_alarm():
        return False

    def get_rec_name(self, name):
        return f'{self.web_user.rec_name} {mask(self.openid)}'

    @classmethod
    def bind(cls, web_user, config, openid):
        """Bind ``openid`` to the account (an openid belongs to one account:
        a binding it had elsewhere is moved)"""
        now = dt.datetime.now()
        existing = cls.search([('config', '=', config.id),
                ('openid', '=', openid)])
        if existing:
            binding, = existing
            if binding.web_user != web_user:
                binding.web_user = web_user
                binding.bound_at = now
            binding.last_login = now
            binding.save()
            return binding
        binding, = cls.create([{'web_user': web_user.id,
                    'config': config.id, 'openid': openid, 'bound_at': now,
                    'last_login': now}])
        return binding

    @classmethod
    def subscribed(cls, openids, template):
        "The openids among these that want this template's messages"
        name = SUBSCRIPTIONS.get(template)
        if not name or not openids:
            return set()
        return {b.openid for b in cls.search([('openid', 'in',
                        list(openids)), (name, '=', True)])}


class OAuthPending(ModelSQL):
    "An openid back from WeChat OAuth, waiting for the password to bind it"
    __name__ = 'dh.wechat.oauth'
    __string__ = "WeChat OAuth Hand-over"
    key = fields.Char("Key", required=True, strip=False)
    openid = fields.Char("OpenID", required=True)
    config = fields.Many2One('dh.wechat.config', "Official Account",
        required=True, ondelete='CASCADE')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('key_unique', Unique(t, t.key), 'dh_wechat.msg_binding_unique'),
            ]

    @classmethod
    def put(cls, config, openid):
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.delete(where=table.create_date < (
                    dt.datetime.now() - dt.timedelta(
                        minutes=PENDING_MINUTES))))
        key = secrets.token_urlsafe(24)
        cls.create([{'key': key, 'openid': openid, 'config': config.id}])
        return key

    @classmethod
    def take(cls, key):
        "(config, openid) of a fresh hand-over, consumed; None otherwise"
        if not key:
            return None
        rows = cls.search([('key', '=', key)], limit=1)
        if not rows:
            return None
        row, = rows
        fresh = row.create_date > dt.datetime.now() - dt.timedelta(
            minutes=PENDING_MINUTES)
        result = (row.config, row.openid) if fresh else None
        cls.delete([row])
        return result

    @classmethod
    def peek(cls, key):
        if not key:
            return None
        rows = cls.search([('key', '=', key), ('create_date', '>',
                    dt.datetime.now() - dt.timedelta(
                        minutes=PENDING_MINUTES))], limit=1)
        return (rows[0].config, rows[0].openid) if rows else None


def mask(openid):
    openid = openid or ''
    return openid[:4] + '…' + openid[-4:] if len(openid) > 10 else openid



class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # every portal page looks a tenant's meters up by tenant (and by
        # wallet: Tryton indexes that one for the wallet's One2Many)
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.tenant, Index.Range())))


class Wallet(metaclass=PoolMeta):
    __name__ = 'dh.wallet'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.party, Index.Range())))


class Recharge(metaclass=PoolMeta):
    __name__ = 'dh.recharge'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        # the tenant's history: his wallets' latest recharges
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.wallet, Index.Range()),
                (t.date, Index.Range(order='DESC'))))
