# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Fake Aliyun and Tencent Cloud SMS services on loopback for the tests.

They check signatures, keys and timestamps like the real services (with
their own code, independent of dh_alarm.sms) and answer with the real
response shapes.  Use them as context managers:

    with FakeAliyun(keys={'key-id': 'secret'}) as fake:
        AliyunSms('key-id', 'secret', 'Sign', endpoint=fake.url).send(...)
        fake.messages  # [{'phone', 'template', 'params', 'sign', 'out_id'}]

`script([...])` queues behaviours, one consumed per request (then 'ok'):
'ok', 'throttle', ('error', code, message) a per-message business error,
('http', status) a bare HTTP error from a gateway in front of the service,
('delay', seconds) answer 'ok' after a pause (the message is still sent:
time-outs are ambiguous).  FakeAliyun's 'error' takes an optional HTTP
status; FakeTencent also has ('api-error', code, message), a request-level
error.  `clock` is the server's time.time; `requests` counts requests and
`last_request` holds the last raw one (method, path, headers, body)."""
import calendar
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = ['FakeAliyun', 'FakeTencent']


class _Handler(BaseHTTPRequestHandler):
    fake = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        status, content_type, payload = self.fake._handle(
            self.command, self.path, self.headers, body)
        try:
            self.send_response(status)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (time-out)

    do_GET = do_POST

    def log_message(self, format, *args):
        pass


class _FakeService:

    def __init__(self, keys, clock=time.time):
        self.keys = dict(keys)
        self.clock = clock
        self.messages = []
        self.requests = 0
        self.last_request = None
        self._script = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        handler = type('Handler', (_Handler,), {'fake': self})
        self._server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self._server.daemon_threads = True
        self.endpoint = '127.0.0.1:%s' % self._server.server_address[1]
        self.url = f'http://{self.endpoint}/'
        self._thread = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
            kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def script(self, behaviours):
        with self._lock:
            self._script.extend(behaviours)

    def _handle(self, method, path, headers, body):
        with self._lock:
            self.requests += 1
            self.last_request = dict(method=method, path=path,
                headers=dict(headers.items()), body=body)
            behaviour = self._script.pop(0) if self._script else 'ok'
        if isinstance(behaviour, str):
            behaviour = (behaviour,)
        if behaviour[0] == 'delay':
            self._stop.wait(behaviour[1])
            behaviour = ('ok',)
        if behaviour[0] == 'http':
            return (behaviour[1], 'text/html',
                b'<html><body>%d Service Temporarily Unavailable'
                b'</body></html>' % behaviour[1])
        return self._answer(method, path, headers, body, behaviour)

    def _record(self, **message):
        with self._lock:
            self.messages.append(message)
            return next(self._ids)

    @staticmethod
    def _json(status, content, content_type='application/json'):
        return status, content_type, json.dumps(
            content, ensure_ascii=False).encode()


class FakeAliyun(_FakeService):
    "dysmsapi SendSms (RPC style, HMAC-SHA1), keys: {access_key_id: secret}"

    def __init__(self, keys, clock=time.time):
        super().__init__(keys, clock)
        self._nonces = set()

    @staticmethod
    def string_to_sign(method, params):
        canonical = urlencode(
            sorted(params.items()), safe='~', quote_via=quote)
        return f'{method}&%2F&{quote(canonical, safe="~")}'

    def _answer(self, method, path, headers, body, behaviour):
        request_id = str(uuid.uuid4()).upper()

        def error(status, code, message):
            return self._json(status, {
                    'RequestId': request_id,
                    'HostId': 'dysmsapi.aliyuncs.com',
                    'Code': code,
                    'Message': message,
                    'Recommend': 'https://api.aliyun.com/troubleshoot'
                    f'?q={code}&product=Dysmsapi',
                    })

        params = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        if 'x-www-form-urlencoded' in headers.get('Content-Type', ''):
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
        signature = params.pop('Signature', None)
        for name in ['Signature', 'AccessKeyId', 'Timestamp',
                'SignatureNonce']:
            if not (signature if name == 'Signature' else params.get(name)):
                return error(400, f'Missing{name}',
                    f'{name} is mandatory for this action.')
        secret = self.keys.get(params['AccessKeyId'])
        if secret is None:
            return error(404, 'InvalidAccessKeyId.NotFound',
                'Specified access key is not found.')
        try:
            timestamp = calendar.timegm(
                time.strptime(params['Timestamp'], '%Y-%m-%dT%H:%M:%SZ'))
        except ValueError:
            return error(400, 'InvalidTimeStamp.Format',
                'Specified time stamp or date value is not well formatted.')
        if abs(self.clock() - timestamp) > 15 * 60:
            return error(400, 'InvalidTimeStamp.Expired',
                'Specified time stamp or date value is expired.')
        if (params.get('SignatureMethod') != 'HMAC-SHA1'
                or params.get('SignatureVersion') != '1.0'):
            return error(400, 'InvalidSignatureMethod',
                'Specified signature method is not supported.')
        string_to_sign = self.string_to_sign(method, params)
        expected = b64encode(hmac.new((secret + '&').encode(),
                string_to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            return error(400, 'SignatureDoesNotMatch',
                'Specified signature does not match our calculation. '
                f'server string to sign is:{string_to_sign}')
        with self._lock:
            if params['SignatureNonce'] in self._nonces:
                return error(400, 'SignatureNonceUsed',
                    'Specified signature nonce was used already.')
            self._nonces.add(params['SignatureNonce'])
        if params.get('Action') != 'SendSms' or (
                params.get('Version') != '2017-05-25'):
            return error(404, 'InvalidAction.NotFound',
                'Specified api is not found, '
                'please check your url and method.')

        def result(code, message, status=200, **extra):
            return self._json(status, dict(
                    Code=code, Message=message, RequestId=request_id, **extra))
        if behaviour[0] == 'error':
            return result(*behaviour[1:])
        if behaviour[0] == 'throttle':
            return result('isv.BUSINESS_LIMIT_CONTROL', '触发分钟级流控Permits:1')
        try:
            template_params = json.loads(params.get('TemplateParam') or '{}')
        except ValueError:
            return result('isv.INVALID_JSON_PARAM', 'JSON参数不合法，只接受字符串值')
        number = self._record(phone=params.get('PhoneNumbers'),
            template=params.get('TemplateCode'), params=template_params,
            sign=params.get('SignName'), out_id=params.get('OutId'))
        return result('OK', 'OK', BizId=f'{900619746936000 + number}^0')


class FakeTencent(_FakeService):
    "SMS API 2021-01-11 SendSms (TC3-HMAC-SHA256), keys: {secret_id: key}"

    _authorization = re.compile(
        r'TC3-HMAC-SHA256 Credential=(?P<secret_id>[^/]+)/(?P<date>[0-9-]+)/'
        r'(?P<service>[a-z]+)/tc3_request, '
        r'SignedHeaders=(?P<signed>[a-z0-9;-]+), '
        r'Signature=(?P<signature>[0-9a-f]{64})')

    @staticmethod
    def signature(secret_key, date, service, string_to_sign):
        key = ('TC3' + secret_key).encode()
        for part in [date, service, 'tc3_request']:
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return hmac.new(
            key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def _answer(self, method, path, headers, body, behaviour):
        request_id = str(uuid.uuid4())

        def respond(**response):
            return self._json(200, {'Response': dict(
                        response, RequestId=request_id)})

        def error(code, message):
            return respond(Error={'Code': code, 'Message': message})

        match = self._authorization.fullmatch(headers.get('Authorization', ''))
        timestamp = headers.get('X-TC-Timestamp', '')
        if not match or not timestamp.isdigit():
            return error('AuthFailure.InvalidAuthorization',
                'Authorization header or X-TC-Timestamp is invalid.')
        secret_key = self.keys.get(match['secret_id'])
        if secret_key is None:
            return error('AuthFailure.SecretIdNotFound',
                'The SecretId is not found, please ensure that your '
                'SecretId is correct.')
        if abs(self.clock() - int(timestamp)) > 5 * 60:
            return error('AuthFailure.SignatureExpire',
                'Signature expire. Timestamp is more than 5 minutes away '
                'from the server time.')
        signed = match['signed'].split(';')
        date = time.strftime('%Y-%m-%d', time.gmtime(int(timestamp)))
        if (match['date'] != date or match['service'] != 'sms'
                or not {'content-type', 'host'} <= set(signed)
                or signed != sorted(signed)):
            return error('AuthFailure.SignatureFailure',
                'The credential scope or the signed headers are invalid.')
        url = urlsplit(path)
        if headers.get('X-TC-Content-SHA256') == 'UNSIGNED-PAYLOAD':
            body_hash = hashlib.sha256(b'UNSIGNED-PAYLOAD').hexdigest()
        else:
            body_hash = hashlib.sha256(
                body if method == 'POST' else b'').hexdigest()
        canonical_request = '\n'.join([
                method, url.path or '/', url.query,
                ''.join(f'{h}:{headers.get(h, "").strip().lower()}\n'
                    for h in signed),
                match['signed'], body_hash])
        string_to_sign = '\n'.join([
                'TC3-HMAC-SHA256', timestamp, f'{date}/sms/tc3_request',
                hashlib.sha256(canonical_request.encode()).hexdigest()])
        expected = self.signature(secret_key, date, 'sms', string_to_sign)
        if not hmac.compare_digest(expected, match['signature']):
            return error('AuthFailure.SignatureFailure',
                'The provided credentials could not be validated. '
                'Please check your signature is correct.')
        if (headers.get('X-TC-Action') != 'SendSms'
                or headers.get('X-TC-Version') != '2021-01-11'):
            return error('InvalidAction', 'The action or version is invalid.')
        try:
            request = json.loads(body)
            phones = request['PhoneNumberSet']
        except (ValueError, KeyError, TypeError):
            return error('FailedOperation.JsonParseFail',
                'Failed to parse the request body.')
        if not phones:
            return error('MissingParameter.EmptyPhoneNumberSet',
                'The PhoneNumberSet is empty.')
        if behaviour[0] == 'throttle':
            return error('RequestLimitExceeded',
                'Your current request times exceeds the frequency limit. '
                'Please reduce the frequency of calls.')
        if behaviour[0] == 'api-error':
            return error(*behaviour[1:])

        def status(phone):
            if behaviour[0] == 'error':
                return dict(SerialNo='', PhoneNumber=phone, Fee=0,
                    SessionContext=request.get('SessionContext', ''),
                    Code=behaviour[1], Message=behaviour[2], IsoCode='CN')
            number = self._record(phone=phone.removeprefix('+86'),
                template=request.get('TemplateId'),
                params=request.get('TemplateParamSet') or [],
                sign=request.get('SignName'),
                out_id=request.get('SessionContext'),
                app_id=request.get('SmsSdkAppId'))
            return dict(SerialNo=f'5000:{10 ** 27 + number}',
                PhoneNumber=phone, Fee=1,
                SessionContext=request.get('SessionContext', ''),
                Code='Ok', Message='send success', IsoCode='CN')
        return respond(SendStatusSet=[status(p) for p in phones])
