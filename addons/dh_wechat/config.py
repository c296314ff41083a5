# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The WeChat configuration of a company: the official account (appid,
secret, OAuth), the merchant (mchid, serial, private key, API v3 key, the
platform public key) and the portal's own settings.  The secrets are
readable and writable by DH administrators only (field access); the
official account's access_token is kept here so that every trytond
process and worker shares one."""
import datetime as dt
import secrets
from decimal import Decimal, InvalidOperation

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.pool import Pool
from trytond.transaction import Transaction

from .exceptions import WeChatValidationError
from .oa import API_BASE, OPEN_BASE, OAClient
from .wxpay import GATEWAY, PayClient

TEMPLATES = ['low_balance', 'cutoff', 'restored', 'monthly_usage', 'alarm']


def parse_presets(text):
    "'50, 100,200' -> [Decimal('50.00'), …] (ValueError when malformed)"
    result = []
    for part in (text or '').replace('，', ',').split(','):
        part = part.strip()
        if not part:
            continue
        try:
            value = Decimal(part)
        except InvalidOperation:
            raise ValueError(part)
        if value <= 0 or value != value.quantize(Decimal('0.01')):
            raise ValueError(part)
        result.append(value.quantize(Decimal('0.01')))
    return result


class Configuration(ModelSQL, ModelView):
    "WeChat official account and WeChat Pay of a company"
    __name__ = 'dh.wechat.config'
    __string__ = "WeChat Configuration"
    company = fields.Many2One('company.company', "Company", required=True,
        ondelete='CASCADE')
    active = fields.Boolean("Active")
    appid = fields.Char("Official Account AppID", required=True,
        help="公众号 AppID (also the AppID of the JSAPI payments).")
    oa_secret = fields.Char("Official Account AppSecret",
        help="Readable by DH administrators only.")
    oa_api_base = fields.Char("OA API Base URL", required=True)
    oa_open_base = fields.Char("OAuth Base URL", required=True)
    mchid = fields.Char("Merchant ID (mchid)")
    serial_no = fields.Char("Merchant Certificate Serial")
    private_key = fields.Text("Merchant Private Key (PEM)",
        help="Readable by DH administrators only.")
    apiv3_key = fields.Char("API v3 Key",
        help="32 characters; readable by DH administrators only.")
    platform_public_key = fields.Text("WeChat Pay Public Key (PEM)")
    platform_public_key_id = fields.Char("WeChat Pay Public Key ID")
    pay_gateway = fields.Char("WeChat Pay Gateway", required=True)
    portal_url = fields.Char("Portal Public URL", required=True,
        help="How WeChat reaches this server, e.g. https://wx.example.com "
        "(payment notifications, OAuth and message links).")
    notify_key = fields.Char("Notification Key", readonly=True,
        help="The last part of the payment notification URL.")
    presets = fields.Char("Amount Presets", required=True,
        help="Yuan, separated by commas.")
    min_amount = fields.Numeric("Minimum Amount", digits=(16, 2),
        required=True)
    max_amount = fields.Numeric("Maximum Amount", digits=(16, 2),
        required=True)
    order_expiry = fields.Integer("Order Expiry (min)", required=True,
        help="Unpaid orders are closed after this.")
    sandbox = fields.Boolean("Sandbox (local fake WeChat)",
        help="The demo: outside WeChat, the recharge page offers the local "
        "fake's cashier.")
    template_low_balance = fields.Char("Template: Low Balance")
    template_cutoff = fields.Char("Template: Cut Off")
    template_restored = fields.Char("Template: Restored")
    template_monthly_usage = fields.Char("Template: Monthly Usage")
    template_alarm = fields.Char("Template: Alarm")
    access_token = fields.Char("Access Token", readonly=True)
    access_token_expires = fields.DateTime("Access Token Expires",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('company_unique', Unique(t, t.company),
                'dh_wechat.msg_config_company_unique'),
            ('notify_key_unique', Unique(t, t.notify_key),
                'dh_wechat.msg_config_notify_key_unique'),
            ]

    @staticmethod
    def default_active():
        return True

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    @staticmethod
    def default_oa_api_base():
        return API_BASE

    @staticmethod
    def default_oa_open_base():
        return OPEN_BASE

    @staticmethod
    def default_pay_gateway():
        return GATEWAY

    @staticmethod
    def default_presets():
        return '30, 50, 100, 200, 500'

    @staticmethod
    def default_min_amount():
        return Decimal('1.00')

    @staticmethod
    def default_max_amount():
        return Decimal('5000.00')

    @staticmethod
    def default_order_expiry():
        return 30

    @staticmethod
    def default_sandbox():
        return False

    def get_rec_name(self, name):
        return f'{self.company.rec_name} ({self.appid})'

    @classmethod
    def create(cls, vlist):
        vlist = [dict(v, notify_key=secrets.token_urlsafe(12))
            for v in vlist]
        return super().create(vlist)

    @classmethod
    def copy(cls, configs, default=None):
        default = dict(default or {})
        default.setdefault('access_token', None)
        default.setdefault('access_token_expires', None)
        return super().copy(configs, default=default)

    @classmethod
    def validate_fields(cls, configs, field_names):
        super().validate_fields(configs, field_names)
        for config in configs:
            if field_names & {'presets', 'min_amount', 'max_amount'}:
                try:
                    presets = parse_presets(config.presets)
                except ValueError as exception:
                    raise WeChatValidationError(gettext(
                            'dh_wechat.msg_config_presets',
                            value=str(exception)))
                if (config.min_amount <= 0
                        or config.max_amount < config.min_amount
                        or any(p < config.min_amount or p > config.max_amount
                            for p in presets)):
                    raise WeChatValidationError(gettext(
                            'dh_wechat.msg_config_amounts'))
            if 'apiv3_key' in field_names and config.apiv3_key and len(
                    config.apiv3_key.encode()) != 32:
                raise WeChatValidationError(gettext(
                        'dh_wechat.msg_config_apiv3_key'))
            if 'order_expiry' in field_names and not (
                    5 <= (config.order_expiry or 0) <= 24 * 60):
                raise WeChatValidationError(gettext(
                        'dh_wechat.msg_config_expiry'))
            if field_names & {'portal_url', 'oa_api_base', 'oa_open_base',
                    'pay_gateway'}:
                for name in ['portal_url', 'oa_api_base', 'oa_open_base',
                        'pay_gateway']:
                    value = getattr(config, name) or ''
                    if not value.startswith(('http://', 'https://')):
                        raise WeChatValidationError(gettext(
                                'dh_wechat.msg_config_url', value=value))

    @classmethod
    def for_company(cls, company_id):
        configs = cls.search([('company', '=', company_id),
                ('active', '=', True)], limit=1)
        return configs[0] if configs else None

    @classmethod
    def get_default(cls):
        configs = cls.search([('active', '=', True)], order=[('id', 'ASC')],
            limit=1)
        return configs[0] if configs else None

    def amount_presets(self):
        try:
            return parse_presets(self.presets)
        except ValueError:
            return []

    # -- clients ------------------------------------------------------------
    def notify_url(self, database):
        return (f'{self.portal_url.rstrip("/")}/{database}/dh/wx/pay/notify/'
            f'{self.notify_key}')

    def pay_client(self):
        return PayClient(self.appid, self.mchid, self.serial_no,
            self.private_key, self.apiv3_key, self.platform_public_key,
            self.platform_public_key_id, gateway=self.pay_gateway,
            notify_url=self.notify_url(Transaction().database.name))

    def oa_client(self):
        return OAClient(self.appid, self.oa_secret, api_base=self.oa_api_base,
            open_base=self.oa_open_base)

    def template_id(self, template):
        return getattr(self, f'template_{template}', None)

    def get_access_token(self, force=False):
        """The official account's access_token, shared through the database
        (every trytond process and worker uses the one stored): fetched
        when missing, expiring within 5 minutes, or ``force``d after
        WeChat refused it"""
        now = dt.datetime.now()
        if (not force and self.access_token and self.access_token_expires
                and self.access_token_expires > now + dt.timedelta(
                    minutes=5)):
            return self.access_token
        token, expires_in = self.oa_client().fetch_access_token()
        expires = now + dt.timedelta(seconds=expires_in)
        if not Transaction().readonly:
            self.__class__.write([self.__class__(self.id)], {
                    'access_token': token, 'access_token_expires': expires})
        self.access_token = token
        self.access_token_expires = expires
        return token


def config_of_wallet(wallet):
    Config = Pool().get('dh.wechat.config')
    return Config.for_company(wallet.company.id)
