# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""WeChat Pay API v3 for JSAPI recharges: a thin adapter around
``wechatpayv3`` (pinned) with typed errors, the replay window the library
lacks, amounts in fen and the JSAPI parameters the page needs.

No ORM here: the models (order.py) call it, the tests drive it against the
loopback fake (fake_wechat.py) with real RSA and AES-GCM.

What the library does for us: the request signatures (Authorization:
WECHATPAY2-SHA256-RSA2048 over method, path, timestamp, nonce, body), the
verification of every response and notification signature with the
platform public key (public-key mode: no certificate download), the
AEAD_AES_256_GCM decryption of notification resources.  What we add: the
gateway can be pointed elsewhere (``_core._gate_way``, a private attribute,
checked by a test), timestamps outside ±5 minutes are refused, an unknown
serial is refused without the library fetching certificates, errors are
PayError with a code and whether a retry may help."""
import datetime as dt
import json
import secrets
import time
from decimal import ROUND_HALF_UP, Decimal

import requests
from wechatpayv3 import SignType, WeChatPay, WeChatPayType

GATEWAY = 'https://api.mch.weixin.qq.com'
WINDOW = 300          # seconds: a notification's timestamp must be this fresh
SIGNATURE_TYPE = 'WECHATPAY2-SHA256-RSA2048'
HEADERS = ['Wechatpay-Signature', 'Wechatpay-Timestamp', 'Wechatpay-Nonce',
    'Wechatpay-Serial', 'Wechatpay-Signature-Type']
CHINA = dt.timezone(dt.timedelta(hours=8))


class PayError(Exception):
    """code: WeChat's error code (PARAM_ERROR, ORDER_CLOSED, …) or ours
    (network, signature, stale, bad_response, config); retryable: whether
    the same call later may succeed"""

    def __init__(self, code, message='', retryable=False, status=None):
        super().__init__(f'{code}: {message}' if message else code)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.status = status


class SignatureError(PayError):
    def __init__(self, message):
        super().__init__('signature', message)


class StaleError(PayError):
    def __init__(self, message):
        super().__init__('stale', message)


def to_fen(amount):
    "Decimal yuan → integer fen (the amount must have at most 2 decimals)"
    amount = Decimal(amount)
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f'{amount} has more than 2 decimals')
    return int(fen)


def from_fen(fen):
    return (Decimal(int(fen)) / 100).quantize(Decimal('0.01'),
        rounding=ROUND_HALF_UP)


def expire_time(minutes, now=None):
    "time_expire for an order: RFC 3339 in China time"
    now = now or dt.datetime.now(dt.timezone.utc)
    return (now + dt.timedelta(minutes=minutes)).astimezone(CHINA
        ).isoformat(timespec='seconds')


class PayClient:
    "One merchant (商户号) paying into one official account's JSAPI"

    def __init__(self, appid, mchid, serial_no, private_key, apiv3_key,
            public_key, public_key_id, gateway=None, notify_url=None,
            timeout=10):
        missing = [name for name, value in [('appid', appid),
                ('mchid', mchid), ('serial_no', serial_no),
                ('private_key', private_key), ('apiv3_key', apiv3_key),
                ('public_key', public_key),
                ('public_key_id', public_key_id)] if not value]
        if missing:
            raise PayError('config', ', '.join(missing))
        if len(apiv3_key.encode()) != 32:
            raise PayError('config', 'the API v3 key must be 32 bytes')
        self.appid = appid
        self.mchid = mchid
        self.public_key_id = public_key_id
        try:
            self._pay = WeChatPay(wechatpay_type=WeChatPayType.JSAPI,
                mchid=mchid, private_key=private_key,
                cert_serial_no=serial_no, appid=appid, apiv3_key=apiv3_key,
                notify_url=notify_url, public_key=public_key,
                public_key_id=public_key_id, timeout=timeout)
        except Exception as exception:      # the library raises bare ones
            raise PayError('config', str(exception)) from exception
        # the gateway is hard-coded in wechatpayv3 2.0.x
        self._pay._core._gate_way = (gateway or GATEWAY).rstrip('/')

    # -- calls --------------------------------------------------------------
    def _call(self, func, *args, **kwargs):
        try:
            status, body = func(*args, **kwargs)
        except requests.RequestException as exception:
            raise PayError('network', str(exception), retryable=True)
        except Exception as exception:
            text = str(exception)
            if 'verify the signature' in text or 'algorithm' in text:
                raise SignatureError(text) from exception
            raise PayError('client', text) from exception
        if isinstance(body, bytes):
            body = body.decode('utf-8', 'replace')
        data = {}
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                raise PayError('bad_response', body[:200], retryable=True,
                    status=status)
        if 200 <= status < 300:
            return data
        code = data.get('code') or f'HTTP_{status}'
        retryable = status >= 500 or status == 429 or code in {
            'SYSTEM_ERROR', 'FREQUENCY_LIMITED', 'BANK_ERROR'}
        raise PayError(code, data.get('message', ''), retryable=retryable,
            status=status)

    def jsapi_order(self, number, description, amount, openid,
            expire_minutes=30, notify_url=None):
        "Create the JSAPI order; returns the prepay_id"
        data = self._call(self._pay.pay, description=description[:127],
            out_trade_no=number, amount={'total': to_fen(amount),
                'currency': 'CNY'}, payer={'openid': openid},
            time_expire=expire_time(expire_minutes), notify_url=notify_url,
            pay_type=WeChatPayType.JSAPI)
        prepay_id = data.get('prepay_id')
        if not prepay_id:
            raise PayError('bad_response', 'no prepay_id', retryable=True)
        return prepay_id

    def jsapi_params(self, prepay_id, timestamp=None, nonce=None):
        """The signed parameters of WeixinJSBridge getBrandWCPayRequest
        (paySign: RSA-SHA256 over appId, timeStamp, nonceStr, package)"""
        timestamp = str(int(timestamp or time.time()))
        nonce = nonce or secrets.token_hex(16)
        package = f'prepay_id={prepay_id}'
        sign = self._pay.sign([self.appid, timestamp, nonce, package],
            SignType.RSA_SHA256)
        return {'appId': self.appid, 'timeStamp': timestamp,
            'nonceStr': nonce, 'package': package, 'signType': 'RSA',
            'paySign': sign}

    def query(self, number):
        "The order as WeChat Pay has it (trade_state, amount, payer, …)"
        return self._call(self._pay.query, out_trade_no=number)

    def close(self, number):
        self._call(self._pay.close, out_trade_no=number)

    def refund(self, number, refund_number, amount, total, reason=None,
            notify_url=None):
        return self._call(self._pay.refund, out_refund_no=refund_number,
            amount={'refund': to_fen(amount), 'total': to_fen(total),
                'currency': 'CNY'}, out_trade_no=number,
            reason=(reason or None) and reason[:80], notify_url=notify_url)

    def query_refund(self, refund_number):
        return self._call(self._pay.query_refund,
            out_refund_no=refund_number)

    # -- notifications ------------------------------------------------------
    def parse_notification(self, headers, body, now=None, window=WINDOW):
        """Verify and decrypt a payment notification.  Returns the
        notification (id, event_type, …) with its decrypted 'resource'.
        Raises SignatureError (forged, wrong serial, undecryptable) or
        StaleError (timestamp outside ±window seconds)."""
        if isinstance(body, bytes):
            try:
                body = body.decode('utf-8')
            except UnicodeDecodeError:
                raise SignatureError('body is not UTF-8')
        wanted = {name: (headers.get(name) or '') for name in HEADERS}
        if not wanted['Wechatpay-Signature']:
            raise SignatureError('no signature')
        if wanted['Wechatpay-Signature-Type'] not in {'', SIGNATURE_TYPE}:
            raise SignatureError('unsupported signature type')
        wanted['Wechatpay-Signature-Type'] = SIGNATURE_TYPE
        if wanted['Wechatpay-Serial'] != self.public_key_id:
            # the library would fetch certificates for an unknown serial
            raise SignatureError('unknown serial')
        try:
            stamp = int(wanted['Wechatpay-Timestamp'])
        except ValueError:
            raise SignatureError('bad timestamp')
        if not self._pay._core._verify_signature(wanted, body):
            raise SignatureError('signature mismatch')
        now = time.time() if now is None else now
        if abs(now - stamp) > window:
            raise StaleError(f'timestamp {stamp} is {int(now - stamp)} s '
                'away')
        try:
            data = json.loads(body)
        except ValueError:
            raise SignatureError('body is not JSON')
        resource = data.get('resource') or {}
        if resource.get('algorithm') != 'AEAD_AES_256_GCM':
            raise SignatureError('unsupported algorithm')
        try:
            plain = self._pay._core.decrypt_callback(wanted, body)
        except Exception as exception:
            raise SignatureError(str(exception)) from exception
        if not plain:
            raise SignatureError('the resource cannot be decrypted')
        data['resource'] = json.loads(plain)
        return data
