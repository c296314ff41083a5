# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""dh_wechat in a Tryton test database, WeChat played by the loopback fake
(real RSA signatures both ways, real AES-GCM notifications)."""
import datetime as dt
import time
from decimal import Decimal

from trytond.exceptions import UserError
from trytond.model.exceptions import ValidationError
from trytond.modules.company.tests import CompanyTestMixin, set_company
from trytond.modules.dh_billing.tests.tools import setup_accounting
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from . import tools

D = Decimal


class Plaza:
    "The fake started once for the test case"
    fake = None


def setup(**config_values):
    company = setup_accounting()
    records = {'company': company}
    with set_company(company):
        records.update(tools.tenants(company))
        records['config'] = tools.configure(company, Plaza.fake,
            'http://127.0.0.1:9', **config_values)
    return records


class DhWeChatTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the dh_wechat module"
    module = 'dh_wechat'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Plaza.fake = tools.fake().start()

    @classmethod
    def tearDownClass(cls):
        Plaza.fake.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        Plaza.fake.orders.clear()
        Plaza.fake.messages.clear()
        Plaza.fake.followers = None

    @with_transaction()
    def test_config_validated(self):
        "Presets, amounts, the API v3 key, expiry and URLs are checked"
        r = setup()
        Config = Pool().get('dh.wechat.config')
        config = r['config']
        self.assertEqual(config.amount_presets(), [D('30'), D('50'),
                D('100'), D('200'), D('500')])
        self.assertTrue(config.notify_key)
        for values in [{'presets': '50, abc'}, {'presets': '0.001'},
                {'min_amount': D('0')}, {'max_amount': D('10')},
                {'apiv3_key': 'short'}, {'order_expiry': 1},
                {'portal_url': 'ftp://x'}]:
            with self.assertRaises(ValidationError, msg=values):
                Config.write([config], values)
        with self.assertRaises(UserError):
            Config.create([{'company': r['company'].id, 'appid': 'x',
                        'portal_url': 'https://x'}])

    @with_transaction()
    def test_secrets_for_administrators_only(self):
        "AppSecret, private key, API v3 key: not for the other DH groups"
        pool = Pool()
        Config = pool.get('dh.wechat.config')
        User = pool.get('res.user')
        ModelData = pool.get('ir.model.data')
        r = setup()
        finance, = User.create([{'login': 'fin', 'name': 'Finance',
                    'groups': [('add', [ModelData.get_id('dh_metering',
                                    'group_dh_finance')])],
                    'companies': [('add', [r['company'].id])],
                    'company': r['company'].id}])
        with Transaction().set_user(finance.id), \
                Transaction().set_context(_check_access=True,
                    company=r['company'].id,
                    companies=[r['company'].id]):
            config, = Config.read([r['config'].id], ['appid', 'mchid'])
            self.assertEqual(config['appid'], tools.APPID)
            for name in ['oa_secret', 'private_key', 'apiv3_key',
                    'access_token']:
                with self.assertRaises(UserError, msg=name):
                    Config.read([r['config'].id], [name])
        # the client points wechatpayv3 at the configured gateway through
        # a private attribute of the pinned 2.0.x: it must still exist
        client = r['config'].pay_client()
        self.assertEqual(client._pay._core._gate_way, Plaza.fake.url)

    @with_transaction()
    def test_account_name(self):
        "Tenants sign in with an account name; it is unique, e-mail optional"
        r = setup()
        WebUser = Pool().get('web.user')
        self.assertEqual(WebUser.dh_find('zhangwei'), r['u_zhang'])
        self.assertEqual(WebUser.dh_find(' lina '), r['u_li'])
        self.assertIsNone(WebUser.dh_find('nobody'))
        valid, _ = WebUser.check_password(tools.PASSWORD,
            r['u_zhang'].password_hash)
        self.assertTrue(valid)
        with self.assertRaises(ValidationError):
            WebUser.create([{'dh_login': 'zhang wei'}])
        with self.assertRaises(ValidationError):
            WebUser.create([{}])        # neither an account name nor e-mail
        self.assertEqual(r['u_li'].dh_parties(), [r['li'].id])
        # last: on PostgreSQL a violated constraint ends the transaction
        with self.assertRaises(UserError):
            WebUser.create([{'dh_login': 'zhangwei'}])

    @with_transaction()
    def test_payment_credited_once(self):
        "Notified, replayed, queried: the order is credited exactly once"
        pool = Pool()
        Order = pool.get('dh.wechat.order')
        Wallet = pool.get('dh.wallet')
        Event = pool.get('dh.wechat.pay.event')
        r = setup()
        order = Order.start(r['config'], r['u_zhang'], r['w_zhang'], r['a'],
            D('100.00'), 'o-zhang', '水电费充值-瀚15#601A')
        self.assertEqual(order.state, 'pending')
        self.assertTrue(order.prepay_id.startswith('wx'))
        self.assertEqual(Plaza.fake.orders[order.number]['amount'],
            {'total': 10000, 'currency': 'CNY'})
        params = order.jsapi_params()
        self.assertEqual(params['package'], f'prepay_id={order.prepay_id}')
        Plaza.fake.pay(order.number, notify=False)
        body = Plaza.fake.notification_body(order.number, 'EV-1')
        headers = Plaza.fake.signed_headers(body)
        status, _ = Order.handle_notification(r['config'], headers, body)
        self.assertEqual(status, 204)
        order = Order(order.id)
        self.assertEqual(order.state, 'paid')
        self.assertEqual(order.recharge.amount, D('100.00'))
        self.assertEqual(order.recharge.channel, 'wechat')
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('150.00'))
        # the same notification again, and the query: nothing more
        status, _ = Order.handle_notification(r['config'], headers, body)
        self.assertEqual(status, 204)
        Order.sync([order])
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('150.00'))
        self.assertEqual([e.outcome for e in Event.search([],
                        order=[('id', 'ASC')])], ['credited', 'duplicate'])

    @with_transaction()
    def test_notification_refused(self):
        "Forged, stale, altered, for another amount: nothing is credited"
        pool = Pool()
        Order = pool.get('dh.wechat.order')
        Wallet = pool.get('dh.wallet')
        r = setup()
        order = Order.start(r['config'], r['u_zhang'], r['w_zhang'], r['a'],
            D('20.00'), 'o-zhang', 'x')
        Plaza.fake.pay(order.number, notify=False)
        body = Plaza.fake.notification_body(order.number)
        from ..fake_wechat import new_key
        forged = Plaza.fake.signed_headers(body, key=new_key())
        self.assertEqual(Order.handle_notification(r['config'], forged,
                body)[0], 401)
        stale = Plaza.fake.signed_headers(body, timestamp=time.time() - 301)
        self.assertEqual(Order.handle_notification(r['config'], stale,
                body)[0], 400)
        other = Plaza.fake.signed_headers(body, serial='PUB_KEY_ID_OTHER')
        self.assertEqual(Order.handle_notification(r['config'], other,
                body)[0], 401)
        altered = body.replace('"id": "EV', '"id": "XX')
        self.assertEqual(Order.handle_notification(r['config'],
                Plaza.fake.signed_headers(body), altered)[0], 401)
        self.assertEqual(Order(order.id).state, 'pending')
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('50.00'))
        # an authentic notification for another amount: refused, flagged
        Plaza.fake.orders[order.number]['amount']['total'] = 1
        body = Plaza.fake.notification_body(order.number)
        status, answer = Order.handle_notification(r['config'],
            Plaza.fake.signed_headers(body), body)
        self.assertEqual((status, answer['code']), (400, 'FAIL'))
        order = Order(order.id)
        self.assertEqual(order.state, 'flagged')
        self.assertIn('amount 1 fen', order.flag_reason)
        self.assertIsNone(order.recharge)
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('50.00'))

    @with_transaction()
    def test_energy_recharge_delivered(self):
        "An energy-mode meter: kWh bought, pushed, shown delivered"
        pool = Pool()
        Order = pool.get('dh.wechat.order')
        Command = pool.get('dh.command')
        r = setup()
        order = Order.start(r['config'], r['u_li'], r['w_li'], r['e'],
            D('1000.00'), 'o-li', '购电')
        Plaza.fake.pay(order.number, notify=False)
        Order.sync([order])
        order = Order(order.id)
        recharge = order.recharge
        # the product's example: 1000 + 0.40 at 1.2 → 833 kWh, 0.80 left
        self.assertEqual((recharge.mode, recharge.kwh, recharge.paid,
                recharge.wallet_after), ('energy', 833, D('999.60'),
                D('0.80')))
        self.assertEqual(order.delivery, 'paid')
        Command.report(recharge.command.id, 'sent')
        Command.report(recharge.command.id, 'confirmed')
        self.assertEqual(Order(order.id).delivery, 'delivered')

    @with_transaction()
    def test_late_notification_and_stale_orders(self):
        "The query credits a payment whose notification never came; an "
        "expired unpaid order is closed"
        pool = Pool()
        Order = pool.get('dh.wechat.order')
        r = setup()
        paid = Order.start(r['config'], r['u_zhang'], r['w_zhang'], r['a'],
            D('30.00'), 'o-zhang', 'x')
        stale = Order.start(r['config'], r['u_zhang'], r['w_zhang'], r['a'],
            D('30.00'), 'o-zhang', 'y')
        Plaza.fake.pay(paid.number, notify=False)
        past = dt.datetime.now() - dt.timedelta(minutes=31)
        table = Order.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update([table.create_date, table.expires_at],
                [past, past + dt.timedelta(minutes=30)]))
        self.assertEqual(Order.cron_sync(), 2)
        self.assertEqual(Order(paid.id).state, 'paid')
        self.assertEqual(Order(stale.id).state, 'closed')
        self.assertEqual(Plaza.fake.orders[stale.number]['trade_state'],
            'CLOSED')

    @with_transaction()
    def test_refund(self):
        "A refund goes through the v3 call and is a billing refund"
        pool = Pool()
        Order = pool.get('dh.wechat.order')
        Refund = pool.get('dh.wechat.refund')
        Wallet = pool.get('dh.wallet')
        r = setup()
        order = Order.start(r['config'], r['u_zhang'], r['w_zhang'], r['a'],
            D('100.00'), 'o-zhang', 'x')
        Plaza.fake.pay(order.number, notify=False)
        Order.sync([order])
        order = Order(order.id)
        with self.assertRaises(UserError):
            Refund.make(order, D('100.01'), 'too much', 'WXR1')
        refund = Refund.make(order, D('30.00'), '多缴退回', 'WXR2')
        self.assertEqual(refund.state, 'success')
        self.assertEqual(refund.billing_refund.amount, D('30.00'))
        self.assertEqual(refund.billing_refund.channel, 'wechat')
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('120.00'))
        self.assertEqual(Refund.make(order, D('30.00'), 'again', 'WXR2'),
            refund)
        self.assertEqual(Order(order.id).refunded, D('30.00'))
        # a refund WeChat is still processing, then closes: reversed by a
        # wallet line (nothing deleted), the money stays in the wallet
        Plaza.fake.refund_status = 'PROCESSING'
        try:
            late = Refund.make(Order(order.id), D('20.00'), '退回', 'WXR4')
        finally:
            Plaza.fake.refund_status = 'SUCCESS'
        self.assertEqual(late.state, 'processing')
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('100.00'))
        Plaza.fake.refunds['WXR4']['status'] = 'CLOSED'
        table = Refund.__table__()
        Transaction().connection.cursor().execute(*table.update(
                [table.date], [dt.datetime.now() - dt.timedelta(minutes=5)]))
        Order.cron_sync()
        self.assertEqual(Refund(late.id).state, 'closed')
        self.assertEqual(Wallet(r['w_zhang'].id).balance, D('120.00'))
        Line = Pool().get('dh.wallet.line')
        line, = Line.search([('reference', '=', 'WXR4')])
        reversal, = Line.search([('reversal_of', '=', line.id)])
        self.assertEqual((line.amount, reversal.amount),
            (D('-20.00'), D('20.00')))
        self.assertEqual(Order(order.id).refunded, D('30.00'))
        # WeChat refusing leaves nothing behind
        Plaza.fake.fail_next.append(('/v3/refund', 403,
                {'code': 'NOT_ENOUGH', 'message': '余额不足'}))
        with self.assertRaises(UserError):
            Refund.make(Order(order.id), D('10.00'), 'x', 'WXR3')

    @with_transaction()
    def test_wechat_recipients_and_template(self):
        "Bound tenants get template messages for what they subscribed to"
        pool = Pool()
        Notification = pool.get('dh.notification')
        Binding = pool.get('dh.wechat.binding')
        Config = pool.get('dh.wechat.config')
        r = setup()
        Binding.bind(r['u_li'], r['config'], 'o-li')
        zhang = Binding.bind(r['u_zhang'], r['config'], 'o-zhang')
        info = {m.id: {'area': m.area.id, 'phones': None, 'profile': None}
            for m in [r['a'], r['b'], r['e']]}
        recipients = Notification.recipients(info, {})
        self.assertEqual(recipients[r['a'].id], [('wechat', 'o-zhang')])
        self.assertEqual(recipients[r['e'].id], [('wechat', 'o-li')])
        Binding.write([zhang], {'notify_low_balance': False})
        made = Notification.notify('low_balance', {'meter': '瀚15#601A',
                'remaining': '4.00', 'threshold': '20.00', 'unit': '元'},
            recipients[r['a'].id] + recipients[r['e'].id], 'low:1:1')
        self.assertEqual([(n.channel, n.recipient) for n in made],
            [('wechat', 'o-li')])
        config = pool.get('dh.alarm.configuration')(1)
        message_id = Notification._send_wechat(made[0], config)
        self.assertTrue(message_id)
        sent, = Plaza.fake.messages
        self.assertEqual((sent['touser'], sent['template_id']),
            ('o-li', 'TPL-LOW'))
        self.assertIn('剩余4.00元', sent['data']['first']['value'])
        self.assertTrue(sent['url'].endswith('/dh/wx/recharge'))
        # the access_token is kept in the database and reused
        self.assertEqual(Plaza.fake.token_fetches, 1)
        Notification._send_wechat(made[0], config)
        self.assertEqual(Plaza.fake.token_fetches, 1)
        # WeChat forgot it: fetched again, once
        Plaza.fake.tokens.clear()
        Notification._send_wechat(made[0], config)
        self.assertEqual(Plaza.fake.token_fetches, 2)
        self.assertTrue(Config(r['config'].id).access_token)
        # an openid that does not follow the account: given up, not retried
        from trytond.modules.dh_alarm.sms import SmsError
        Plaza.fake.followers = set()
        with self.assertRaises(SmsError) as cm:
            Notification._send_wechat(made[0], config)
        self.assertFalse(cm.exception.retryable)


del ModuleTestCase
