# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""A local stand-in for WeChat on loopback, with real crypto: the tests
point the portal at it, and ``dh demo`` runs it so that a recharge can be
paid end to end on a laptop.

* WeChat Pay API v3 — JSAPI order, query, close, refund, refund query.
  Every request's Authorization signature is checked with the merchant's
  public key (401 SIGN_ERROR otherwise); every answer is signed with the
  fake's own platform key (RSA-SHA256, headers Wechatpay-*), like the real
  one in public-key mode.
* Payment notifications — a paid order is notified to its notify_url:
  AEAD_AES_256_GCM-encrypted resource under the API v3 key, signed; the
  tests can forge, replay, delay, date back or alter them.
* The "payer" — ``POST /fake/jsapi-pay`` takes the JSAPI parameters the
  page would hand to WeixinJSBridge, checks paySign with the merchant's
  public key, pays and notifies; ``/fake/cashier`` is the same as a page
  (the demo outside WeChat).
* OAuth snsapi_base (``/connect/oauth2/authorize`` → code,
  ``/sns/oauth2/access_token`` → openid) and the official account's
  ``/cgi-bin/token`` and ``/cgi-bin/message/template/send`` (messages are
  kept for the tests; unfollowed openids get 43004).

Run alone (the demo): ``python -m trytond.modules.dh_wechat.fake_wechat
--state DIR --port N`` where DIR holds state.json written by the demo."""
import argparse
import base64
import datetime as dt
import html
import json
import logging
import os
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger(__name__)
CHINA = dt.timezone(dt.timedelta(hours=8))


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_private(pem):
    return serialization.load_pem_private_key(pem.encode(), password=None)


def load_public(pem):
    return serialization.load_pem_public_key(pem.encode())


def sign(key, message):
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(),
            hashes.SHA256())).decode()


def verify(public_key, message, signature):
    try:
        public_key.verify(base64.b64decode(signature), message.encode(),
            padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def encrypt(apiv3_key, plain, associated_data):
    nonce = secrets.token_hex(6)        # 12 characters, as WeChat sends
    data = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plain.encode(),
        associated_data.encode())
    return {'algorithm': 'AEAD_AES_256_GCM',
        'ciphertext': base64.b64encode(data).decode(), 'nonce': nonce,
        'associated_data': associated_data}


def now_china():
    return dt.datetime.now(CHINA).isoformat(timespec='seconds')


class FakeWeChat:
    """The fake; ``with FakeWeChat(...) as fake:`` serves it on a thread.

    merchant_public_key: the PEM the portal's private key pairs with;
    platform_key: this fake's own key (generated when not given)."""

    def __init__(self, appid, mchid, apiv3_key, merchant_public_key,
            merchant_serial, oa_secret, platform_key=None,
            public_key_id='PUB_KEY_ID_0000000000000000000000000001',
            port=0, host='127.0.0.1', auto_openid=None, followers=None):
        self.appid = appid
        self.mchid = mchid
        self.apiv3_key = apiv3_key
        self.merchant_public = load_public(merchant_public_key)
        self.merchant_serial = merchant_serial
        self.oa_secret = oa_secret
        self.platform_key = platform_key or new_key()
        self.public_key_id = public_key_id
        self.auto_openid = auto_openid
        # None: every openid follows the official account
        self.followers = set(followers) if followers is not None else None
        self.orders = {}            # out_trade_no -> order dict
        self.refunds = {}           # out_refund_no -> refund dict
        self.notifications = []     # (notification body, headers, status)
        self.messages = []          # template messages sent
        self.requests = []          # (method, path) of every API call
        self.codes = {}             # OAuth code -> (openid, expires)
        self.tokens = {}            # OA access_token -> expires
        self.token_fetches = 0
        self.fail_next = []         # [(path prefix, status, body)]
        self.refund_status = 'SUCCESS'   # what a new refund answers
        self.lock = threading.RLock()
        self.host = host
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f'http://{host}:{self.port}'
        self._thread = None

    @property
    def platform_public_key(self):
        return public_pem(self.platform_key)

    # -- lifecycle ----------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
            daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- signing ------------------------------------------------------------
    def signed_headers(self, body, timestamp=None, key=None, serial=None):
        timestamp = str(int(time.time() if timestamp is None else timestamp))
        nonce = secrets.token_hex(16)
        signature = sign(key or self.platform_key,
            f'{timestamp}\n{nonce}\n{body}\n')
        return {'Wechatpay-Timestamp': timestamp, 'Wechatpay-Nonce': nonce,
            'Wechatpay-Signature': signature,
            'Wechatpay-Serial': serial or self.public_key_id,
            'Wechatpay-Signature-Type': 'WECHATPAY2-SHA256-RSA2048'}

    def check_authorization(self, method, path, body, header):
        "The merchant's request signature (401 SIGN_ERROR when wrong)"
        scheme, _, rest = (header or '').partition(' ')
        if scheme != 'WECHATPAY2-SHA256-RSA2048':
            return False
        fields = {}
        for part in rest.split(','):
            key, _, value = part.strip().partition('=')
            fields[key] = value.strip('"')
        if fields.get('mchid') != self.mchid or fields.get(
                'serial_no') != self.merchant_serial:
            return False
        try:
            if abs(time.time() - int(fields.get('timestamp', '0'))) > 300:
                return False
        except ValueError:
            return False
        message = (f'{method}\n{path}\n{fields.get("timestamp")}\n'
            f'{fields.get("nonce_str")}\n{body}\n')
        return verify(self.merchant_public, message,
            fields.get('signature', ''))

    # -- what the tests (and the demo payer) do ------------------------------
    def transaction(self, order):
        data = {'appid': order['appid'], 'mchid': order['mchid'],
            'out_trade_no': order['out_trade_no'],
            'trade_state': order['trade_state'],
            'trade_state_desc': {'SUCCESS': '支付成功',
                'NOTPAY': '未支付', 'CLOSED': '已关闭',
                'REFUND': '转入退款'}.get(order['trade_state'], ''),
            'trade_type': 'JSAPI', 'attach': order.get('attach', ''),
            'payer': order['payer'],
            'amount': {'total': order['amount']['total'],
                'currency': 'CNY'}}
        if order.get('transaction_id'):
            data.update(transaction_id=order['transaction_id'],
                bank_type='OTHERS', success_time=order['success_time'])
            data['amount'].update(payer_total=order['paid_total'],
                payer_currency='CNY')
        return data

    def pay(self, number, notify=True, paid_total=None, **notify_options):
        """The payer pays order ``number`` (paid_total: what WeChat says
        was paid, to test a mismatch); notifies unless notify=False.
        Returns the notification's HTTP status (or None)."""
        with self.lock:
            order = self.orders[number]
            if order['trade_state'] == 'NOTPAY':
                order.update(trade_state='SUCCESS',
                    transaction_id='4200' + secrets.token_hex(12)[:24],
                    success_time=now_china(),
                    paid_total=paid_total or order['amount']['total'])
                if paid_total:
                    order['amount']['total'] = paid_total
        if notify:
            return self.notify(number, **notify_options)
        return None

    def notification_body(self, number, event_id=None, associated='transaction'):
        order = self.orders[number]
        resource = encrypt(self.apiv3_key, json.dumps(
                self.transaction(order), ensure_ascii=False), associated)
        resource['original_type'] = 'transaction'
        return json.dumps({'id': event_id or 'EV-' + secrets.token_hex(10),
                'create_time': now_china(),
                'resource_type': 'encrypt-resource',
                'event_type': 'TRANSACTION.SUCCESS', 'summary': '支付成功',
                'resource': resource}, ensure_ascii=False)

    def notify(self, number, forge=False, timestamp=None, body=None,
            url=None, event_id=None):
        """POST the order's payment notification; forge: signed with
        another key; timestamp: a stale one; body: resend this exact body
        (a replay).  Returns the HTTP status the portal answered."""
        order = self.orders[number]
        body = body or self.notification_body(number, event_id)
        key = new_key() if forge else None
        headers = self.signed_headers(body, timestamp=timestamp, key=key)
        headers['Content-Type'] = 'application/json'
        try:
            response = requests.post(url or order['notify_url'],
                data=body.encode(), headers=headers, timeout=30)
            status, text = response.status_code, response.text
        except requests.RequestException as exception:
            status, text = None, str(exception)
        with self.lock:
            self.notifications.append({'number': number, 'body': body,
                    'status': status, 'answer': text})
        return status

    def new_code(self, openid):
        code = secrets.token_hex(16)
        with self.lock:
            self.codes[code] = (openid, time.time() + 300)
        return code

    # -- the HTTP side --------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                logger.debug(*args)

            def _send(self, status, body=b'', content_type='application/json',
                    headers=None, sign_it=False):
                if isinstance(body, (dict, list)):
                    body = json.dumps(body, ensure_ascii=False)
                if isinstance(body, str):
                    body = body.encode()
                self.send_response(status)
                if body or content_type == 'application/json':
                    self.send_header('Content-Type',
                        content_type + ('; charset=utf-8'
                            if 'json' in content_type or 'html'
                            in content_type else ''))
                self.send_header('Content-Length', str(len(body)))
                self.send_header('Access-Control-Allow-Origin', '*')
                if sign_it:
                    for key, value in fake.signed_headers(
                            body.decode()).items():
                        self.send_header(key, value)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                length = int(self.headers.get('Content-Length') or 0)
                return self.rfile.read(length).decode() if length else ''

            def do_OPTIONS(self):
                self._send(204, b'', headers={
                        'Access-Control-Allow-Methods': 'POST, GET',
                        'Access-Control-Allow-Headers': 'Content-Type'})

            def do_GET(self):
                self._route('GET', '')

            def do_POST(self):
                self._route('POST', self._body())

            def _route(self, method, body):
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                path = parsed.path
                try:
                    if path.startswith('/v3/'):
                        return self._pay_api(method, path, body)
                    handler = {
                        ('GET', '/connect/oauth2/authorize'): self._authorize,
                        ('POST', '/connect/oauth2/authorize'):
                        self._authorize_post,
                        ('GET', '/sns/oauth2/access_token'): self._oauth_token,
                        ('GET', '/cgi-bin/token'): self._token,
                        ('POST', '/cgi-bin/message/template/send'):
                        self._template,
                        ('POST', '/fake/jsapi-pay'): self._jsapi_pay,
                        ('GET', '/fake/cashier'): self._cashier,
                        ('POST', '/fake/cashier'): self._cashier_pay,
                        }.get((method, path))
                    if handler is None:
                        return self._send(404, {'code': 'NOT_FOUND',
                                'message': path})
                    return handler(query, body)
                except Exception as exception:     # a bug in the fake
                    logger.exception('fake wechat')
                    return self._send(500, {'code': 'SYSTEM_ERROR',
                            'message': str(exception)})

            # pay API -------------------------------------------------------
            def _pay_api(self, method, path, body):
                with fake.lock:
                    fake.requests.append((method, self.path))
                    for i, (prefix, status, answer) in enumerate(
                            fake.fail_next):
                        if self.path.startswith(prefix):
                            del fake.fail_next[i]
                            return self._send(status, answer, sign_it=True)
                if not fake.check_authorization(method, self.path, body,
                        self.headers.get('Authorization')):
                    return self._send(401, {'code': 'SIGN_ERROR',
                            'message': '签名错误'})
                data = json.loads(body) if body else {}
                parts = path.strip('/').split('/')
                if path == '/v3/pay/transactions/jsapi':
                    return self._create(data)
                if parts[:4] == ['v3', 'pay', 'transactions',
                        'out-trade-no'] and len(parts) >= 5:
                    number = parts[4]
                    order = fake.orders.get(number)
                    if order is None:
                        return self._send(404, {'code': 'ORDER_NOT_EXIST',
                                'message': '订单不存在'}, sign_it=True)
                    if len(parts) == 6 and parts[5] == 'close':
                        with fake.lock:
                            if order['trade_state'] in {'SUCCESS', 'REFUND'}:
                                return self._send(400, {'code': 'ORDERPAID',
                                        'message': '订单已支付'},
                                    sign_it=True)
                            order['trade_state'] = 'CLOSED'
                        return self._send(204, b'', sign_it=True)
                    return self._send(200, fake.transaction(order),
                        sign_it=True)
                if path == '/v3/refund/domestic/refunds' and method == 'POST':
                    return self._refund(data)
                if parts[:4] == ['v3', 'refund', 'domestic', 'refunds'] \
                        and len(parts) == 5:
                    refund = fake.refunds.get(parts[4])
                    if refund is None:
                        return self._send(404, {'code': 'RESOURCE_NOT_EXISTS',
                                'message': '退款单不存在'}, sign_it=True)
                    return self._send(200, refund, sign_it=True)
                return self._send(404, {'code': 'NOT_FOUND',
                        'message': path}, sign_it=True)

            def _create(self, data):
                for name in ['appid', 'mchid', 'description', 'out_trade_no',
                        'notify_url', 'amount', 'payer']:
                    if not data.get(name):
                        return self._send(400, {'code': 'PARAM_ERROR',
                                'message': f'缺少参数 {name}'}, sign_it=True)
                if data['appid'] != fake.appid or data['mchid'] != fake.mchid:
                    return self._send(400, {'code': 'APPID_MCHID_NOT_MATCH',
                            'message': 'appid和mch_id不匹配'}, sign_it=True)
                total = data['amount'].get('total')
                if not isinstance(total, int) or total <= 0:
                    return self._send(400, {'code': 'PARAM_ERROR',
                            'message': '订单金额错误'}, sign_it=True)
                number = data['out_trade_no']
                with fake.lock:
                    order = fake.orders.get(number)
                    if order is not None:
                        if order['trade_state'] == 'SUCCESS':
                            return self._send(400, {'code': 'ORDERPAID',
                                    'message': '该订单已支付'},
                                sign_it=True)
                        if order['amount']['total'] != total:
                            return self._send(400, {
                                    'code': 'OUT_TRADE_NO_USED',
                                    'message': '商户订单号重复'},
                                sign_it=True)
                    else:
                        order = dict(data, trade_state='NOTPAY',
                            prepay_id='wx' + secrets.token_hex(16))
                        fake.orders[number] = order
                return self._send(200, {'prepay_id': order['prepay_id']},
                    sign_it=True)

            def _refund(self, data):
                number = data.get('out_trade_no')
                order = fake.orders.get(number)
                if order is None or order['trade_state'] not in {
                        'SUCCESS', 'REFUND'}:
                    return self._send(400, {'code': 'INVALID_REQUEST',
                            'message': '订单未支付'}, sign_it=True)
                amount = data.get('amount') or {}
                with fake.lock:
                    done = sum(r['amount']['refund']
                        for r in fake.refunds.values()
                        if r['out_trade_no'] == number
                        and r['out_refund_no'] != data.get('out_refund_no'))
                    if amount.get('total') != order['amount']['total']:
                        return self._send(400, {'code': 'PARAM_ERROR',
                                'message': '订单金额不一致'}, sign_it=True)
                    if amount.get('refund', 0) <= 0 or done + amount[
                            'refund'] > order['amount']['total']:
                        return self._send(403, {'code': 'NOT_ENOUGH',
                                'message': '退款金额超过可退金额'},
                            sign_it=True)
                    refund = fake.refunds.get(data['out_refund_no'])
                    if refund is None:
                        refund = {'refund_id': '5030' + secrets.token_hex(
                                12)[:24],
                            'out_refund_no': data['out_refund_no'],
                            'transaction_id': order['transaction_id'],
                            'out_trade_no': number, 'channel': 'ORIGINAL',
                            'user_received_account': '支付用户零钱',
                            'create_time': now_china(),
                            'success_time': now_china(),
                            'status': fake.refund_status,
                            'amount': {'total': amount['total'],
                                'refund': amount['refund'],
                                'payer_total': amount['total'],
                                'payer_refund': amount['refund'],
                                'currency': 'CNY'}}
                        fake.refunds[data['out_refund_no']] = refund
                        order['trade_state'] = 'REFUND'
                return self._send(200, refund, sign_it=True)

            # OAuth and the official account ---------------------------------
            def _authorize(self, query, body):
                if query.get('appid') != fake.appid:
                    return self._send(400, '参数错误：appid', 'text/html')
                if query.get('scope') not in {'snsapi_base',
                        'snsapi_userinfo'}:
                    return self._send(400, '参数错误：scope', 'text/html')
                openid = query.get('fake_openid') or fake.auto_openid
                if openid:
                    return self._back(query, openid)
                # the demo: pick who "you" are in WeChat
                suggested = 'o' + secrets.token_urlsafe(20)
                hidden = ''.join(
                    f'<input type="hidden" name="{html.escape(k)}" '
                    f'value="{html.escape(v)}">' for k, v in query.items())
                page = ('<!doctype html><meta charset="utf-8"><meta '
                    'name="viewport" content="width=device-width">'
                    '<title>微信授权（模拟）</title><body style="font-family:'
                    'sans-serif;padding:1em"><h3>微信网页授权（本地模拟）</h3>'
                    '<p>这是演示用的模拟微信。请填写“你的”微信 openid：</p>'
                    '<form method="post">' + hidden +
                    f'<input name="fake_openid" value="{suggested}" '
                    'style="width:100%"><p><button>同意授权</button></p>'
                    '</form></body>')
                return self._send(200, page, 'text/html')

            def _authorize_post(self, query, body):
                form = dict(urllib.parse.parse_qsl(body))
                return self._back(form, form.get('fake_openid') or 'o-demo')

            def _back(self, query, openid):
                target = query.get('redirect_uri', '')
                code = fake.new_code(openid)
                sep = '&' if '?' in target else '?'
                location = target + sep + urllib.parse.urlencode(
                    [('code', code), ('state', query.get('state', ''))])
                return self._send(302, b'', 'text/html',
                    headers={'Location': location})

            def _oauth_token(self, query, body):
                if (query.get('appid') != fake.appid
                        or query.get('secret') != fake.oa_secret):
                    return self._send(200, {'errcode': 40125,
                            'errmsg': 'invalid appsecret'})
                with fake.lock:
                    openid, expires = fake.codes.pop(query.get('code'),
                        (None, 0))
                if not openid or expires < time.time():
                    return self._send(200, {'errcode': 40029,
                            'errmsg': 'invalid code'})
                return self._send(200, {'access_token': secrets.token_hex(16),
                        'expires_in': 7200, 'refresh_token': 'r',
                        'openid': openid, 'scope': 'snsapi_base'})

            def _token(self, query, body):
                if (query.get('appid') != fake.appid
                        or query.get('secret') != fake.oa_secret):
                    return self._send(200, {'errcode': 40125,
                            'errmsg': 'invalid appsecret'})
                token = secrets.token_hex(24)
                with fake.lock:
                    fake.tokens[token] = time.time() + 7200
                    fake.token_fetches += 1
                return self._send(200, {'access_token': token,
                        'expires_in': 7200})

            def _template(self, query, body):
                token = dict(urllib.parse.parse_qsl(
                        urllib.parse.urlsplit(self.path).query)).get(
                    'access_token')
                with fake.lock:
                    valid = fake.tokens.get(token, 0) > time.time()
                if not valid:
                    return self._send(200, {'errcode': 40001,
                            'errmsg': 'invalid credential'})
                data = json.loads(body)
                openid = data.get('touser')
                if fake.followers is not None and \
                        openid not in fake.followers:
                    return self._send(200, {'errcode': 43004,
                            'errmsg': 'require subscribe'})
                if not data.get('template_id'):
                    return self._send(200, {'errcode': 40037,
                            'errmsg': 'invalid template_id'})
                with fake.lock:
                    fake.messages.append(data)
                    msgid = len(fake.messages)
                return self._send(200, {'errcode': 0, 'errmsg': 'ok',
                        'msgid': msgid})

            # the payer -----------------------------------------------------
            def _check_jsapi(self, params):
                package = params.get('package', '')
                prepay_id = package.partition('prepay_id=')[2]
                order = next((o for o in list(fake.orders.values())
                        if o['prepay_id'] == prepay_id), None)
                message = (f"{params.get('appId')}\n"
                    f"{params.get('timeStamp')}\n{params.get('nonceStr')}\n"
                    f"{package}\n")
                if (order is None or params.get('appId') != fake.appid
                        or not verify(fake.merchant_public, message,
                            params.get('paySign', ''))):
                    return None
                return order

            def _jsapi_pay(self, query, body):
                params = json.loads(body or '{}')
                order = self._check_jsapi(params)
                if order is None:
                    return self._send(200, {
                            'err_msg': 'get_brand_wcpay_request:fail'})
                if order['trade_state'] == 'CLOSED':
                    return self._send(200, {
                            'err_msg': 'get_brand_wcpay_request:fail'})
                status = fake.pay(order['out_trade_no'])
                return self._send(200, {
                        'err_msg': 'get_brand_wcpay_request:ok',
                        'notified': status})

            def _cashier(self, query, body):
                order = self._check_jsapi(query)
                if order is None:
                    return self._send(400, '签名错误', 'text/html')
                hidden = ''.join(
                    f'<input type="hidden" name="{html.escape(k)}" '
                    f'value="{html.escape(v)}">' for k, v in query.items())
                total = order['amount']['total'] / 100
                page = ('<!doctype html><meta charset="utf-8"><meta '
                    'name="viewport" content="width=device-width">'
                    '<title>微信支付（模拟）</title><body style="font-family:'
                    'sans-serif;padding:1em;text-align:center">'
                    '<h3>微信支付（本地模拟）</h3>'
                    f'<p>{html.escape(order["description"])}</p>'
                    f'<p style="font-size:2em">¥{total:.2f}</p>'
                    '<form method="post">' + hidden +
                    '<button style="font-size:1.2em;padding:.5em 2em">'
                    '确认支付</button></form></body>')
                return self._send(200, page, 'text/html')

            def _cashier_pay(self, query, body):
                form = dict(urllib.parse.parse_qsl(body))
                order = self._check_jsapi(form)
                if order is None:
                    return self._send(400, '签名错误', 'text/html')
                fake.pay(order['out_trade_no'])
                target = form.get('return', '')
                host = urllib.parse.urlsplit(target).hostname
                if host not in {'127.0.0.1', 'localhost'}:
                    return self._send(200, '支付成功', 'text/html')
                return self._send(303, b'', 'text/html',
                    headers={'Location': target})
        return Handler


# -- the demo's fake ---------------------------------------------------------
def write_state(folder, **values):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'state.json')
    with open(path, 'w') as handle:
        json.dump(values, handle, indent=1)
    os.chmod(path, 0o600)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog='fake_wechat',
        description='a local stand-in for WeChat (demo and tests)')
    parser.add_argument('--state', required=True,
        help='folder holding state.json (written by the demo)')
    parser.add_argument('--port', type=int, default=0)
    options = parser.parse_args(argv)
    with open(os.path.join(options.state, 'state.json')) as handle:
        state = json.load(handle)
    fake = FakeWeChat(state['appid'], state['mchid'], state['apiv3_key'],
        state['merchant_public_key'], state['merchant_serial'],
        state['oa_secret'],
        platform_key=load_private(state['platform_private_key']),
        public_key_id=state['public_key_id'],
        port=options.port or state.get('port', 0))
    print(f'fake WeChat on {fake.url}', flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
