# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Recharges paid with WeChat Pay (JSAPI): the order (our out_trade_no),
the payment notifications, the order query for late notifications, the
closing of stale orders, and refunds made from the backend through the v3
refund call and recorded as billing refunds.

A payment is credited through ``dh.recharge.recharge`` with the order's
number as the transaction number (唯一交易号), so whatever reports it —
the notification, its replays, the order query, the cron — credits once."""
import datetime as dt
import logging
import secrets
from decimal import Decimal

from trytond import backend
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import WeChatError
from .wxpay import PayError, SignatureError, StaleError, to_fen

logger = logging.getLogger(__name__)
STATES = [
    ('created', "Created"),
    ('pending', "Waiting for Payment"),
    ('paid', "Paid"),
    ('closed', "Closed"),
    ('failed', "Failed"),
    ('flagged', "Flagged for Review"),
    ]
STATE_ZH = {'created': '待支付', 'pending': '待支付', 'paid': '已支付',
    'closed': '已关闭', 'failed': '失败', 'flagged': '待人工核对'}
# how long after its creation an unpaid order is asked about
QUERY_AFTER = dt.timedelta(seconds=10)
QUERY_EVERY = dt.timedelta(seconds=5)


def new_number(prefix='WX'):
    "Our out_trade_no: unique, ≤ 32 characters of [A-Z0-9]"
    return (f'{prefix}{dt.datetime.now():%Y%m%d%H%M%S}'
        f'{secrets.token_hex(5).upper()}')


class Order(ModelSQL, ModelView):
    "A WeChat Pay order for a recharge"
    __name__ = 'dh.wechat.order'
    __string__ = "WeChat Pay Order"
    number = fields.Char("Order Number", required=True, readonly=True,
        help="Our out_trade_no; also the recharge's transaction number.")
    config = fields.Many2One('dh.wechat.config', "Official Account",
        required=True, readonly=True, ondelete='RESTRICT')
    web_user = fields.Many2One('web.user', "Web User", readonly=True,
        ondelete='SET NULL')
    wallet = fields.Many2One('dh.wallet', "Wallet", required=True,
        readonly=True, ondelete='RESTRICT')
    meter = fields.Many2One('dh.meter', "Meter", readonly=True,
        ondelete='RESTRICT',
        help="For energy-mode meters: the meter the energy goes to.")
    amount = fields.Numeric("Amount", digits=(16, 2), required=True,
        readonly=True)
    openid = fields.Char("Payer OpenID", readonly=True)
    description = fields.Char("Description", readonly=True)
    state = fields.Selection(STATES, "State", required=True, readonly=True,
        sort=False)
    prepay_id = fields.Char("Prepay ID", readonly=True)
    transaction_id = fields.Char("WeChat Transaction", readonly=True)
    paid_amount = fields.Numeric("Amount Reported", digits=(16, 2),
        readonly=True, help="What WeChat Pay said was paid.")
    paid_at = fields.DateTime("Paid At", readonly=True)
    expires_at = fields.DateTime("Expires At", readonly=True)
    last_query_at = fields.DateTime("Last Queried", readonly=True)
    recharge = fields.Many2One('dh.recharge', "Recharge", readonly=True)
    error = fields.Char("Last Error", readonly=True)
    flag_reason = fields.Char("Review Reason", readonly=True)
    refunds = fields.One2Many('dh.wechat.refund', 'order', "Refunds",
        readonly=True)
    events = fields.One2Many('dh.wechat.pay.event', 'order',
        "Notifications", readonly=True)
    refunded = fields.Function(fields.Numeric("Refunded", digits=(16, 2)),
        'get_refunded')
    delivery = fields.Function(fields.Char("Delivery to Meter"),
        'get_delivery')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'dh_wechat.msg_order_number_unique'),
            ]
        cls._sql_indexes.update({
                Index(t, (t.web_user, Index.Range()),
                    (t.create_date, Index.Range())),
                Index(t, (t.state, Index.Equality(cardinality='low'))),
                Index(t, (t.wallet, Index.Range())),
                })
        cls._order = [('create_date', 'DESC'), ('id', 'DESC')]
        cls._buttons.update({
                'query': {
                    'invisible': ~Eval('state').in_(['created', 'pending',
                            'closed']),
                    'depends': ['state'],
                    },
                'close': {
                    'invisible': ~Eval('state').in_(['created', 'pending']),
                    'depends': ['state'],
                    },
                'refund': {
                    'invisible': Eval('state') != 'paid',
                    'depends': ['state'],
                    },
                })

    @staticmethod
    def default_state():
        return 'created'

    def get_rec_name(self, name):
        return self.number

    def get_refunded(self, name):
        return sum((r.amount for r in self.refunds
                if r.state in {'processing', 'success', 'abnormal'}),
            Decimal('0.00'))

    def get_delivery(self, name):
        if self.recharge and self.recharge.mode == 'energy':
            return self.recharge.state
        return None

    @classmethod
    def copy(cls, orders, default=None):
        if not orders:
            return []
        raise WeChatError(gettext('dh_wechat.msg_order_no_copy'))

    @classmethod
    def delete(cls, orders):
        raise WeChatError(gettext('dh_wechat.msg_order_no_delete'))

    # -- the tenant starts paying ---------------------------------------------
    @classmethod
    def start(cls, config, web_user, wallet, meter, amount, openid,
            description):
        """Record the order and create it at WeChat Pay; returns the order
        ('pending' with its prepay_id, or 'failed' with the error when
        WeChat refused — the caller shows it)"""
        now = dt.datetime.now()
        order, = cls.create([{'number': new_number(), 'config': config.id,
                    'web_user': web_user.id, 'wallet': wallet.id,
                    'meter': meter.id if meter else None,
                    'amount': amount, 'openid': openid,
                    'description': description[:127], 'state': 'created',
                    'expires_at': now + dt.timedelta(
                        minutes=config.order_expiry)}])
        try:
            prepay_id = config.pay_client().jsapi_order(order.number,
                order.description, amount, openid,
                expire_minutes=config.order_expiry)
        except PayError as error:
            logger.warning('order %s: %s', order.number, error)
            cls.write([order], {'state': 'failed',
                    'error': str(error)[:250]})
            return order
        cls.write([order], {'state': 'pending', 'prepay_id': prepay_id})
        return order

    def jsapi_params(self):
        return self.config.pay_client().jsapi_params(self.prepay_id)

    # -- payment reported (notification or query) -----------------------------
    @classmethod
    def settle(cls, config, resource, source='notify'):
        """Check a transaction WeChat reports against our order and credit
        it once.  Returns (outcome, order): credited, duplicate (already
        credited), mismatch (flagged, not credited), not_paid, unknown."""
        pool = Pool()
        Recharge = pool.get('dh.recharge')
        number = resource.get('out_trade_no') or ''
        orders = cls.search([('number', '=', number),
                ('config', '=', config.id)], limit=1)
        if not orders:
            return 'unknown', None
        order, = orders
        if backend.name == 'postgresql':
            # one payment report at a time per order (Tryton's record lock)
            cls.lock([order])
        order = cls(order.id)
        if resource.get('trade_state') != 'SUCCESS':
            return 'not_paid', order
        if order.state == 'paid':
            return 'duplicate', order
        amount = resource.get('amount') or {}
        problems = []
        if resource.get('mchid') != config.mchid:
            problems.append(f'mchid {resource.get("mchid")}')
        if resource.get('appid') != config.appid:
            problems.append(f'appid {resource.get("appid")}')
        if amount.get('total') != to_fen(order.amount):
            problems.append(f'amount {amount.get("total")} fen, ordered '
                f'{to_fen(order.amount)}')
        if (amount.get('currency') or 'CNY') != 'CNY':
            problems.append(f'currency {amount.get("currency")}')
        if order.wallet.state != 'open':
            problems.append('wallet closed')
        values = {'transaction_id': resource.get('transaction_id'),
            'paid_amount': (Decimal(int(amount['total'])) / 100
                if isinstance(amount.get('total'), int) else None)}
        if problems:
            reason = gettext('dh_wechat.msg_order_flagged',
                problems='; '.join(problems), source=source)
            logger.warning('order %s flagged: %s', order.number, reason)
            if order.state != 'flagged':
                cls.write([order], dict(values, state='flagged',
                        flag_reason=reason[:250]))
            return 'mismatch', order
        recharge = Recharge.recharge(order.number, order.wallet,
            order.amount, channel='wechat', meter=order.meter,
            note=f'微信支付 {resource.get("transaction_id") or ""}'.strip())
        cls.write([order], dict(values, state='paid',
                paid_at=dt.datetime.now(), recharge=recharge.id,
                error=None))
        return 'credited', order

    @classmethod
    def handle_notification(cls, config, headers, body):
        """A payment notification (the route's work): (HTTP status,
        answer).  2xx only when handled for good — WeChat sends again on
        anything else."""
        pool = Pool()
        Event = pool.get('dh.wechat.pay.event')
        try:
            data = config.pay_client().parse_notification(headers, body)
        except StaleError as error:
            logger.warning('notification refused: %s', error)
            return 400, {'code': 'FAIL', 'message': 'stale timestamp'}
        except SignatureError as error:
            logger.warning('notification refused: %s', error)
            return 401, {'code': 'FAIL', 'message': 'bad signature'}
        except PayError as error:
            logger.error('notification: configuration: %s', error)
            return 500, {'code': 'FAIL', 'message': 'not configured'}
        event_id = str(data.get('id') or '')[:64]
        resource = data.get('resource') or {}
        if data.get('event_type') != 'TRANSACTION.SUCCESS':
            Event.record(event_id, data, None, 'ignored')
            return 204, None
        outcome, order = cls.settle(config, resource, 'notify')
        Event.record(event_id, data, order, outcome)
        if outcome == 'mismatch':
            return 400, {'code': 'FAIL', 'message': 'order mismatch'}
        return 204, None

    # -- late notifications, stale orders ------------------------------------
    @classmethod
    def sync(cls, orders):
        """Ask WeChat Pay about unpaid orders: credit the paid ones, mark
        the closed ones, close the expired ones"""
        now = dt.datetime.now()
        for order in orders:
            if order.state not in {'created', 'pending', 'closed'}:
                continue
            try:
                data = order.config.pay_client().query(order.number)
            except PayError as error:
                values = {'last_query_at': now, 'error': str(error)[:250]}
                if error.code in {'ORDER_NOT_EXIST', 'ORDERNOTEXIST'} and (
                        order.expires_at and order.expires_at < now):
                    values['state'] = 'closed'
                cls.write([order], values)
                continue
            cls.write([order], {'last_query_at': now})
            trade_state = data.get('trade_state')
            if trade_state in {'SUCCESS', 'REFUND'}:
                cls.settle(order.config, dict(data, trade_state='SUCCESS'),
                    'query')
            elif trade_state in {'CLOSED', 'REVOKED'}:
                if order.state != 'closed':
                    cls.write([order], {'state': 'closed'})
            elif trade_state == 'PAYERROR':
                cls.write([order], {'state': 'failed',
                        'error': data.get('trade_state_desc')})
            elif trade_state == 'NOTPAY' and order.expires_at and (
                    order.expires_at < now):
                cls.close_orders([order])

    @classmethod
    def close_orders(cls, orders):
        for order in orders:
            if order.state not in {'created', 'pending'}:
                continue
            try:
                order.config.pay_client().close(order.number)
            except PayError as error:
                if error.code == 'ORDERPAID':
                    cls.sync([order])
                    continue
                cls.write([order], {'error': str(error)[:250]})
                continue
            cls.write([order], {'state': 'closed'})

    def poll(self):
        """The status page asks: a notification that is late is looked
        for with an order query (at most every few seconds)"""
        now = dt.datetime.now()
        if self.state != 'pending' or self.create_date > now - QUERY_AFTER:
            return
        if self.last_query_at and self.last_query_at > now - QUERY_EVERY:
            return
        self.__class__.sync([self])

    @classmethod
    def cron_sync(cls):
        """Late notifications and stale orders, and refunds still being
        processed by WeChat Pay (every few minutes)"""
        Refund = Pool().get('dh.wechat.refund')
        now = dt.datetime.now()
        orders = cls.search([('state', 'in', ['created', 'pending']),
                ('create_date', '<', now - dt.timedelta(minutes=1))],
            order=[('id', 'ASC')], limit=500)
        cls.sync(orders)
        refunds = Refund.search([('state', '=', 'processing'),
                ('date', '<', now - dt.timedelta(minutes=1))],
            order=[('id', 'ASC')], limit=500)
        Refund.sync(refunds)
        return len(orders)

    @classmethod
    @ModelView.button
    def query(cls, orders):
        cls.sync(orders)

    @classmethod
    @ModelView.button
    def close(cls, orders):
        cls.close_orders(orders)

    @classmethod
    @ModelView.button_action('dh_wechat.wizard_refund')
    def refund(cls, orders):
        pass


class PayEvent(ModelSQL, ModelView):
    "A payment notification received (verified)"
    __name__ = 'dh.wechat.pay.event'
    __string__ = "WeChat Pay Notification"
    event_id = fields.Char("Notification ID", readonly=True)
    event_type = fields.Char("Event Type", readonly=True)
    order = fields.Many2One('dh.wechat.order', "Order", readonly=True,
        ondelete='RESTRICT')
    number = fields.Char("Order Number", readonly=True)
    outcome = fields.Selection([
            ('credited', "Credited"),
            ('duplicate', "Already Credited"),
            ('mismatch', "Mismatch (flagged)"),
            ('not_paid', "Not Paid"),
            ('unknown', "Unknown Order"),
            ('ignored', "Ignored"),
            ], "Outcome", readonly=True)
    received_at = fields.DateTime("Received At", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.event_id, Index.Equality(cardinality='high'))),
                Index(t, (t.order, Index.Range())),
                })
        cls._order = [('received_at', 'DESC'), ('id', 'DESC')]

    @classmethod
    def record(cls, event_id, data, order, outcome):
        resource = data.get('resource') or {}
        cls.create([{'event_id': event_id,
                    'event_type': str(data.get('event_type') or '')[:64],
                    'order': order.id if order else None,
                    'number': str(resource.get('out_trade_no') or '')[:64],
                    'outcome': outcome,
                    'received_at': dt.datetime.now()}])


class Refund(ModelSQL, ModelView):
    "A refund of a WeChat payment (v3 refund call + billing refund)"
    __name__ = 'dh.wechat.refund'
    __string__ = "WeChat Pay Refund"
    number = fields.Char("Refund Number", required=True, readonly=True,
        help="Our out_refund_no; also the billing refund's number.")
    order = fields.Many2One('dh.wechat.order', "Order", required=True,
        readonly=True, ondelete='RESTRICT')
    amount = fields.Numeric("Amount", digits=(16, 2), required=True,
        readonly=True)
    reason = fields.Char("Reason", readonly=True)
    state = fields.Selection([
            ('processing', "Processing"),
            ('success', "Refunded"),
            ('closed', "Closed (reversed)"),
            ('abnormal', "Abnormal (needs staff)"),
            ], "State", required=True, readonly=True)
    refund_id = fields.Char("WeChat Refund ID", readonly=True)
    billing_refund = fields.Many2One('dh.refund', "Billing Refund",
        readonly=True)
    date = fields.DateTime("Date", required=True, readonly=True)
    user = fields.Many2One('res.user', "Clerk", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'dh_wechat.msg_refund_number_unique'),
            ]
        cls._order = [('date', 'DESC'), ('id', 'DESC')]
        cls._buttons.update({
                'query': {
                    'invisible': Eval('state') != 'processing',
                    'depends': ['state'],
                    },
                })

    @classmethod
    def delete(cls, refunds):
        raise WeChatError(gettext('dh_wechat.msg_order_no_delete'))

    @classmethod
    def make(cls, order, amount, reason, number):
        """Refund ``amount`` of a paid order: the billing refund first (it
        checks the wallet holds the money and locks it), then the v3
        refund call; if WeChat refuses, the whole transaction is rolled
        back (nothing recorded).  Idempotent on ``number``."""
        pool = Pool()
        BillingRefund = pool.get('dh.refund')
        existing = cls.search([('number', '=', number)])
        if existing:
            return existing[0]
        amount = Decimal(amount or 0).quantize(Decimal('0.01'))
        if order.state != 'paid':
            raise WeChatError(gettext('dh_wechat.msg_refund_not_paid',
                    order=order.number))
        left = order.amount - order.refunded
        if amount <= 0 or amount > left:
            raise WeChatError(gettext('dh_wechat.msg_refund_amount',
                    amount=amount, left=left))
        billing = BillingRefund.refund(number, order.wallet, kind='partial',
            amount=amount, channel='wechat',
            note=reason or gettext('dh_wechat.msg_refund_note',
                order=order.number))
        try:
            data = order.config.pay_client().refund(order.number, number,
                amount, order.amount, reason=reason)
        except PayError as error:
            raise WeChatError(gettext('dh_wechat.msg_refund_refused',
                    error=str(error)))
        refund, = cls.create([{'number': number, 'order': order.id,
                    'amount': amount, 'reason': reason,
                    'state': cls._state(data.get('status')),
                    'refund_id': data.get('refund_id'),
                    'billing_refund': billing.id,
                    'date': dt.datetime.now(),
                    'user': Transaction().user or None}])
        if refund.state == 'closed':
            cls._reverse([refund])
        return refund

    @staticmethod
    def _state(status):
        return {'SUCCESS': 'success', 'CLOSED': 'closed',
            'ABNORMAL': 'abnormal'}.get(status, 'processing')

    @classmethod
    def _reverse(cls, refunds):
        "A refund WeChat closed: the money stays, its billing line reversed"
        Line = Pool().get('dh.wallet.line')
        for refund in refunds:
            lines = Line.search([('reference', '=', refund.number),
                    ('kind', '=', 'refund')])
            if lines:
                Line.reverse(lines, gettext('dh_wechat.msg_refund_closed',
                        number=refund.number))

    @classmethod
    @ModelView.button
    def query(cls, refunds):
        cls.sync(refunds, raise_errors=True)

    @classmethod
    def sync(cls, refunds, raise_errors=False):
        """Ask WeChat Pay how processing refunds ended: a closed one is
        reversed in the wallet (the money stays), an abnormal one waits for
        staff"""
        for refund in refunds:
            if refund.state != 'processing':
                continue
            try:
                data = refund.order.config.pay_client().query_refund(
                    refund.number)
            except PayError as error:
                if raise_errors:
                    raise WeChatError(gettext(
                            'dh_wechat.msg_refund_refused',
                            error=str(error)))
                logger.warning('refund %s: %s', refund.number, error)
                continue
            state = cls._state(data.get('status'))
            if state != refund.state:
                cls.write([refund], {'state': state})
                if state == 'closed':
                    cls._reverse([refund])


class RefundStart(ModelView):
    __name__ = 'dh.wechat.refund.start'
    __string__ = "Refund WeChat Payment"
    order = fields.Many2One('dh.wechat.order', "Order", readonly=True)
    number = fields.Char("Refund Number", readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), required=True)
    left = fields.Numeric("Refundable", digits=(16, 2), readonly=True)
    reason = fields.Char("Reason", required=True)


class RefundWizard(Wizard):
    "Refund a WeChat payment (退费) through the v3 refund call"
    __name__ = 'dh.wechat.refund.wizard'
    __string__ = "Refund WeChat Payment"
    start = StateView('dh.wechat.refund.start',
        'dh_wechat.refund_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Refund", 'refund', 'tryton-ok', default=True),
            ])
    refund = StateTransition()

    def default_start(self, fields):
        order = self.record
        left = order.amount - order.refunded
        # the number is made when the form opens: a double click refunds once
        return {'order': order.id, 'number': new_number('WXR'),
            'amount': left, 'left': left}

    def transition_refund(self):
        Refund = Pool().get('dh.wechat.refund')
        Refund.make(self.record, self.start.amount, self.start.reason,
            self.start.number)
        return 'end'
