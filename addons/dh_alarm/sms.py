# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""SMS gateways (Aliyun, Tencent Cloud, a logging one for the demo) and
mainland mobile number parsing.  Pure Python: no trytond imports.

Every gateway sends one message to one phone per call and raises SmsError on
failure; SmsError.retryable tells the caller whether trying again later may
succeed (throttling, time-outs, network and server errors) or not (bad number,
template, sign or credentials)."""
import base64
import hashlib
import hmac
import itertools
import json
import logging
import re
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import requests

__all__ = [
    'SmsError', 'SmsResult', 'SmsGateway', 'AliyunSms', 'TencentSms',
    'LogGateway', 'make_gateway', 'normalise_mobile', 'parse_mobiles',
    'aliyun_percent_encode', 'aliyun_string_to_sign', 'aliyun_signature',
    ]

logger = logging.getLogger(__name__)


class SmsError(Exception):
    "A message was not accepted by the gateway."

    def __init__(self, code, message, retryable=False):
        super().__init__(f'{code}: {message}')
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass
class SmsResult:
    message_id: str
    raw: dict


# Mobile numbers

_MOBILE = re.compile(r'1[3-9][0-9]{9}')


def normalise_mobile(text: str) -> str:
    "Return the 11 digits of a mainland China mobile number; or ValueError"
    # NFKC turns full-width digits and '＋' into ASCII ones
    number = re.sub(r'[\s\-]', '', unicodedata.normalize('NFKC', text or ''))
    if number.startswith('+86'):
        number = number[3:]
    elif number.startswith('0086'):
        number = number[4:]
    elif len(number) == 13 and number.startswith('86'):
        number = number[2:]
    if not _MOBILE.fullmatch(number):
        raise ValueError(_bad_mobile(text))
    return number


def _bad_mobile(text):
    return (f'"{text}" is not a mainland China mobile number '
        '(11 digits starting with 13-19, optionally prefixed by +86)')


def _mobile_or_none(text):
    try:
        return normalise_mobile(text)
    except ValueError:
        return None


def parse_mobiles(text: str) -> list[str]:
    """Return the distinct mobile numbers of a list separated by commas,
    semicolons or white space; raise ValueError naming the first bad entry.
    A comma-separated entry may itself contain spaces ("138 0013 8000")."""
    numbers = []
    for chunk in re.split(r'[,;、]', unicodedata.normalize('NFKC', text or '')):
        if not chunk.strip():
            continue
        try:
            entries = [normalise_mobile(chunk)]
        except ValueError:
            tokens = chunk.split()
            entries = [_mobile_or_none(t) for t in tokens]
            if None in entries:
                # name the bad token, or the whole entry if no token is good
                bad = tokens[entries.index(None)] if any(entries) else chunk
                raise ValueError(_bad_mobile(bad.strip())) from None
        for number in entries:
            if number not in numbers:
                numbers.append(number)
    return numbers


# Gateways

class SmsGateway:
    name = None

    def send(self, phone: str, template: str, params: dict[str, str], *,
            out_id: str | None = None) -> SmsResult:
        """Send template with params (in the template's order) to one phone.
        Return SmsResult; raise SmsError."""
        try:
            phone = normalise_mobile(phone)
        except ValueError as exception:
            raise SmsError('invalid-number', str(exception)) from exception
        params = {str(k): str(v) for k, v in (params or {}).items()}
        return self._send(phone, template, params, out_id)

    def _send(self, phone, template, params, out_id):
        raise NotImplementedError


class LogGateway(SmsGateway):
    "Log the messages and keep them in `sent` instead of sending them"
    name = 'log'

    def __init__(self, log=None):
        self.log = log or logger
        self.sent = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _send(self, phone, template, params, out_id):
        try:
            text = template.format_map(params)
        except (KeyError, ValueError, IndexError):
            text = template
        if text == template and params:
            text += ' ' + ', '.join(f'{k}={v}' for k, v in params.items())
        with self._lock:
            message_id = f'log-{next(self._ids)}'
            message = dict(id=message_id, phone=phone, template=template,
                params=params, out_id=out_id, text=text)
            self.sent.append(message)
        self.log.info('SMS %s to %s: %s', message_id, phone, text)
        return SmsResult(message_id, message)


def aliyun_percent_encode(s):
    "RFC 3986 encoding of UTF-8 as the Aliyun RPC signature wants it"
    return quote(str(s), safe='~')


def aliyun_string_to_sign(method, params):
    encode = aliyun_percent_encode
    query = '&'.join(f'{encode(k)}={encode(v)}'
        for k, v in sorted(params.items()) if v is not None)
    return f'{method.upper()}&{encode("/")}&{encode(query)}'


def aliyun_signature(method, params, secret):
    digest = hmac.new((secret + '&').encode(),
        aliyun_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSms(SmsGateway):
    "Aliyun dysmsapi SendSms through the signed RPC API"
    name = 'aliyun'
    # isv.BUSINESS_LIMIT_CONTROL is retryable unless it is the daily cap
    retryable_codes = {
        'isv.BUSINESS_LIMIT_CONTROL', 'isp.SYSTEM_ERROR', 'InternalError',
        'ServiceUnavailable', 'SignatureNonceUsed'}

    def __init__(self, access_key_id, access_key_secret, sign_name,
            endpoint='https://dysmsapi.aliyuncs.com/', region='cn-hangzhou',
            timeout=10, session=None):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.endpoint = endpoint
        self.region = region
        self.timeout = timeout
        self.session = session or requests.Session()

    def signed_params(self, phone, template, params, out_id=None):
        query = {
            'Action': 'SendSms',
            'Version': '2017-05-25',
            'Format': 'JSON',
            'RegionId': self.region,
            'AccessKeyId': self.access_key_id,
            'SignatureMethod': 'HMAC-SHA1',
            'SignatureVersion': '1.0',
            'SignatureNonce': uuid.uuid4().hex,
            'Timestamp': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'PhoneNumbers': phone,
            'SignName': self.sign_name,
            'TemplateCode': template,
            'TemplateParam': json.dumps(params, ensure_ascii=False),
            }
        if out_id:
            query['OutId'] = out_id
        query['Signature'] = aliyun_signature(
            'POST', query, self.access_key_secret)
        return query

    @classmethod
    def is_retryable(cls, code, message, status=200):
        if code == 'isv.BUSINESS_LIMIT_CONTROL' and '天级' in (message or ''):
            return False  # "触发天级流控": the number's daily cap
        return (code in cls.retryable_codes or code.startswith('Throttling')
            or status >= 500)

    def _send(self, phone, template, params, out_id):
        data = self.signed_params(phone, template, params, out_id)
        try:
            response = self.session.post(
                self.endpoint, data=data, timeout=self.timeout)
        except requests.Timeout as exception:
            raise SmsError('timeout', str(exception), True) from exception
        except requests.RequestException as exception:
            raise SmsError('connection', str(exception), True) from exception
        try:
            result = response.json()
        except ValueError:
            result = None
        if not isinstance(result, dict) or 'Code' not in result:
            raise SmsError(f'http-{response.status_code}',
                response.text[:200], response.status_code >= 500)
        code, message = result['Code'], result.get('Message', '')
        if code != 'OK':
            raise SmsError(code, message,
                self.is_retryable(code, message, response.status_code))
        return SmsResult(result.get('BizId', ''), result)


class TencentSms(SmsGateway):
    "Tencent Cloud SMS (API 2021-01-11) through the official SDK"
    name = 'tencent'
    # The daily caps (LimitExceeded.*DailyLimit) are not worth retrying today
    retryable_codes = {
        'RequestLimitExceeded', 'LimitExceeded.PhoneNumberThirtySecondLimit',
        'LimitExceeded.PhoneNumberOneHourLimit',
        'LimitExceeded.DeliveryFrequencyLimit',
        'LimitExceeded.GlobalSmsSendingRateLimit',
        'InternalError', 'InternalError.Timeout',
        'InternalError.SendAndRecvFail', 'InternalError.OtherError',
        'InternalError.UnknownError', 'InternalError.ParseBackendResponseFail',
        'ServiceUnavailable', 'ServerNetworkError'}

    def __init__(self, secret_id, secret_key, sdk_app_id, sign_name,
            endpoint='sms.tencentcloudapi.com', region='ap-guangzhou',
            timeout=10, protocol='https'):
        from tencentcloud.common import credential
        from tencentcloud.common.exception.tencent_cloud_sdk_exception \
            import TencentCloudSDKException
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        try:
            profile = ClientProfile(httpProfile=HttpProfile(
                    protocol=protocol, endpoint=endpoint, reqTimeout=timeout))
            self.client = sms_client.SmsClient(
                credential.Credential(secret_id, secret_key), region, profile)
        except TencentCloudSDKException as exception:
            raise ValueError(exception.message) from exception

    @classmethod
    def is_retryable(cls, code):
        return (code in cls.retryable_codes
            or code.startswith('RequestLimitExceeded.'))

    def _send(self, phone, template, params, out_id):
        from tencentcloud.common.exception.tencent_cloud_sdk_exception \
            import TencentCloudSDKException
        from tencentcloud.sms.v20210111 import models
        request = models.SendSmsRequest()
        request.PhoneNumberSet = ['+86' + phone]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = template
        request.TemplateParamSet = list(params.values())
        if out_id:
            request.SessionContext = out_id
        try:
            response = self.client.SendSms(request)
        except TencentCloudSDKException as exception:
            code, message = exception.code, exception.message
            if isinstance(message, bytes):
                message = message.decode(errors='replace')
            message = str(message)
            if code == 'ClientNetworkError':
                # the SDK wraps every requests exception in this code
                code = 'timeout' if 'timed out' in message else 'connection'
                raise SmsError(code, message, True) from exception
            raise SmsError(code, message, self.is_retryable(code)) \
                from exception
        raw = json.loads(response.to_json_string())
        if not response.SendStatusSet:
            raise SmsError('no-status', f'no SendStatusSet in {raw}')
        status = response.SendStatusSet[0]
        if status.Code != 'Ok':
            raise SmsError(
                status.Code, status.Message, self.is_retryable(status.Code))
        return SmsResult(status.SerialNo, raw)


GATEWAYS = {'log': LogGateway, 'aliyun': AliyunSms, 'tencent': TencentSms}


def make_gateway(kind: str, **settings) -> SmsGateway:
    try:
        Gateway = GATEWAYS[kind]
    except KeyError:
        raise ValueError(f'Unknown SMS gateway "{kind}" '
            f'(expected one of {", ".join(GATEWAYS)})') from None
    return Gateway(**settings)
