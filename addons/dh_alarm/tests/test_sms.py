# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"SMS gateways against the loopback fakes, signatures, mobile numbers"
import json
import logging
import time
from urllib.parse import parse_qs

import pytest
import requests

from trytond.modules.dh_alarm.sms import (
    AliyunSms, LogGateway, SmsError, SmsResult, TencentSms,
    aliyun_percent_encode, aliyun_signature, aliyun_string_to_sign,
    make_gateway, normalise_mobile, parse_mobiles)
from trytond.modules.dh_alarm.tests.fake_sms import FakeAliyun, FakeTencent

ALIYUN_KEYS = {'LTAI5tTestKey': 'aliyun-secret'}
TENCENT_KEYS = {'AKIDTestSecretId': 'tencent-secret-key'}
PHONE = '13800138000'
PARAMS = {'room': 'A栋 101', 'balance': '-12.50', 'date': '2026-11-27'}


@pytest.fixture
def fake_aliyun():
    with FakeAliyun(ALIYUN_KEYS) as fake:
        yield fake


@pytest.fixture
def fake_tencent():
    with FakeTencent(TENCENT_KEYS) as fake:
        yield fake


def aliyun(fake, key_id='LTAI5tTestKey', secret='aliyun-secret', **kw):
    return AliyunSms(key_id, secret, '德宏物业', endpoint=fake.url, **kw)


def tencent(fake, secret_id='AKIDTestSecretId', key='tencent-secret-key',
        **kw):
    return TencentSms(secret_id, key, '1400123456', '德宏物业',
        endpoint=fake.endpoint, protocol='http', **kw)


def send_error(gateway, phone=PHONE):
    with pytest.raises(SmsError) as info:
        gateway.send(phone, 'SMS_100', PARAMS)
    return info.value


# Aliyun

def test_aliyun_send(fake_aliyun):
    result = aliyun(fake_aliyun).send(
        '+86 138-0013-8000', 'SMS_100', PARAMS, out_id='alarm-7')
    assert isinstance(result, SmsResult)
    assert result.message_id == result.raw['BizId']
    assert result.raw['Code'] == 'OK'
    assert fake_aliyun.messages == [dict(phone=PHONE, template='SMS_100',
            params=PARAMS, sign='德宏物业', out_id='alarm-7')]
    assert fake_aliyun.requests == 1


def test_aliyun_template_param_is_unescaped_json(fake_aliyun):
    aliyun(fake_aliyun).send(PHONE, 'SMS_100', PARAMS)
    form = parse_qs(fake_aliyun.last_request['body'].decode())
    assert form['TemplateParam'] == [json.dumps(PARAMS, ensure_ascii=False)]
    assert 'A栋 101' in form['TemplateParam'][0]


@pytest.mark.parametrize('key_id, secret, code', [
        ('LTAI5tTestKey', 'wrong-secret', 'SignatureDoesNotMatch'),
        ('LTAI5tUnknown', 'aliyun-secret', 'InvalidAccessKeyId.NotFound'),
        ])
def test_aliyun_bad_credentials(fake_aliyun, key_id, secret, code):
    error = send_error(aliyun(fake_aliyun, key_id, secret))
    assert (error.code, error.retryable) == (code, False)
    assert not fake_aliyun.messages


def test_aliyun_stale_timestamp(fake_aliyun):
    fake_aliyun.clock = lambda: time.time() + 16 * 60
    error = send_error(aliyun(fake_aliyun))
    assert (error.code, error.retryable) == ('InvalidTimeStamp.Expired', False)


def test_aliyun_fake_rejects_tampering_and_replay(fake_aliyun):
    aliyun(fake_aliyun).send(PHONE, 'SMS_100', PARAMS)
    sent = fake_aliyun.last_request
    headers = {'Content-Type': sent['headers']['Content-Type']}
    tampered = sent['body'].replace(b'13800138000', b'13900139000')
    response = requests.post(fake_aliyun.url, data=tampered, headers=headers)
    assert response.json()['Code'] == 'SignatureDoesNotMatch'
    response = requests.post(fake_aliyun.url, data=sent['body'],
        headers=headers)
    assert response.json()['Code'] == 'SignatureNonceUsed'
    assert len(fake_aliyun.messages) == 1


@pytest.mark.parametrize('behaviour, code', [
        ('throttle', 'isv.BUSINESS_LIMIT_CONTROL'),
        (('http', 503), 'http-503'),
        (('error', 'Throttling.User',
                'Request was denied due to user flow control.', 400),
            'Throttling.User'),
        (('error', 'isp.SYSTEM_ERROR', 'isp.SYSTEM_ERROR'),
            'isp.SYSTEM_ERROR'),
        ])
def test_aliyun_retryable(fake_aliyun, behaviour, code):
    fake_aliyun.script([behaviour])
    gateway = aliyun(fake_aliyun)
    error = send_error(gateway)
    assert (error.code, error.retryable) == (code, True)
    assert gateway.send(PHONE, 'SMS_100', PARAMS).message_id


@pytest.mark.parametrize('code, message', [
        ('isv.MOBILE_NUMBER_ILLEGAL', '非法手机号'),
        ('isv.SMS_TEMPLATE_ILLEGAL', '模板不合法(不存在或被拉黑)'),
        ('isv.SMS_SIGNATURE_ILLEGAL', '签名不合法(不存在或被拉黑)'),
        ('isv.AMOUNT_NOT_ENOUGH', '账户余额不足'),
        ('isv.BUSINESS_LIMIT_CONTROL', '触发天级流控Permits:10'),
        ])
def test_aliyun_permanent_errors(fake_aliyun, code, message):
    fake_aliyun.script([('error', code, message)])
    error = send_error(aliyun(fake_aliyun))
    assert (error.code, error.message, error.retryable) == (
        code, message, False)


def test_aliyun_timeout(fake_aliyun):
    fake_aliyun.script([('delay', 3)])
    started = time.monotonic()
    error = send_error(aliyun(fake_aliyun, timeout=0.3))
    assert (error.code, error.retryable) == ('timeout', True)
    assert time.monotonic() - started < 2


def test_aliyun_connection_refused():
    with FakeAliyun(ALIYUN_KEYS) as fake:
        gateway = aliyun(fake)
    error = send_error(gateway)
    assert (error.code, error.retryable) == ('connection', True)


SIGNED_PARAMS = [
    {
        'Action': 'SendSms', 'Version': '2017-05-25', 'Format': 'JSON',
        'AccessKeyId': 'testid', 'SignatureMethod': 'HMAC-SHA1',
        'SignatureVersion': '1.0',
        'SignatureNonce': '45e25e9b-0a6f-4070-8c85-2956eda1b466',
        'Timestamp': '2026-01-02T03:04:05Z', 'RegionId': 'cn-hangzhou',
        'PhoneNumbers': '13800138000', 'SignName': '德宏物业',
        'TemplateCode': 'SMS_153055065',
        'TemplateParam': '{"room": "A栋 101", "balance": "-12.50"}',
        'OutId': 'alarm-7',
        },
    {'a': 'x y', 'B': 'star*tilde~plus+slash/', 'c': '100%&=?#',
        'd': '', 'é': 'ünï', 'emoji': '🔋 低电量'},
    {'Only': '~*~ ~'},
    ]


@pytest.mark.parametrize('params', SIGNED_PARAMS)
@pytest.mark.parametrize('method', ['GET', 'POST'])
def test_aliyun_signature_matches_official_sdk(params, method):
    from alibabacloud_tea_openapi.utils import Utils
    for secret in ['testsecret', '密钥 *~']:
        assert aliyun_signature(method, params, secret) == (
            Utils.get_rpcsignature(params, method, secret))


def test_aliyun_percent_encode():
    assert aliyun_percent_encode('a b*c~d/é') == 'a%20b%2Ac~d%2F%C3%A9'
    assert aliyun_string_to_sign('POST', {'b': '2 3', 'a': '1'}) == (
        'POST&%2F&a%3D1%26b%3D2%25203')


def test_official_aliyun_sdk_accepted_by_fake(fake_aliyun):
    "The fake checks signatures the way the official SDK makes them"
    from alibabacloud_dysmsapi20170525 import models
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi.models import Config

    def client(secret):
        # the SDK signs with ACS3-HMAC-SHA256 unless asked for the RPC 'v2'
        return Client(Config(access_key_id='LTAI5tTestKey',
                access_key_secret=secret, endpoint=fake_aliyun.endpoint,
                protocol='HTTP', signature_algorithm='v2'))
    request = models.SendSmsRequest(phone_numbers=PHONE, sign_name='德宏物业',
        template_code='SMS_100', out_id='o 1*~',
        template_param=json.dumps(PARAMS, ensure_ascii=False))
    response = client('aliyun-secret').send_sms(request)
    assert response.body.code == 'OK'
    assert fake_aliyun.messages[0]['params'] == PARAMS
    with pytest.raises(Exception) as info:
        client('wrong-secret').send_sms(request)
    assert info.value.code == 'SignatureDoesNotMatch'


# Tencent

def test_tencent_send(fake_tencent):
    params = {'z': '3', 'a': '1', 'm': '二'}  # insertion order, not sorted
    result = tencent(fake_tencent).send(
        '138 0013 8000', '2160001', params, out_id='alarm-7')
    assert result.message_id == result.raw['SendStatusSet'][0]['SerialNo']
    assert fake_tencent.messages == [dict(phone=PHONE, template='2160001',
            params=['3', '1', '二'], sign='德宏物业', out_id='alarm-7',
            app_id='1400123456')]
    sent = json.loads(fake_tencent.last_request['body'])
    assert sent['PhoneNumberSet'] == ['+8613800138000']


def test_tencent_fake_rejects_tampered_body(fake_tencent):
    tencent(fake_tencent).send(PHONE, '2160001', PARAMS)
    sent = fake_tencent.last_request
    headers = {k: v for k, v in sent['headers'].items()
        if k.lower() != 'content-length'}
    tampered = sent['body'].replace(b'13800138000', b'13900139000')
    response = requests.post(fake_tencent.url, data=tampered, headers=headers)
    assert response.json()['Response']['Error']['Code'] == (
        'AuthFailure.SignatureFailure')
    response = requests.post(
        fake_tencent.url, data=sent['body'], headers=headers)
    assert response.json()['Response']['SendStatusSet'][0]['Code'] == 'Ok'


@pytest.mark.parametrize('secret_id, key, code', [
        ('AKIDTestSecretId', 'wrong-key', 'AuthFailure.SignatureFailure'),
        ('AKIDUnknown', 'tencent-secret-key', 'AuthFailure.SecretIdNotFound'),
        ])
def test_tencent_bad_credentials(fake_tencent, secret_id, key, code):
    error = send_error(tencent(fake_tencent, secret_id, key))
    assert (error.code, error.retryable) == (code, False)
    assert not fake_tencent.messages


def test_tencent_stale_timestamp(fake_tencent):
    fake_tencent.clock = lambda: time.time() - 6 * 60
    error = send_error(tencent(fake_tencent))
    assert (error.code, error.retryable) == ('AuthFailure.SignatureExpire',
        False)


@pytest.mark.parametrize('behaviour, code', [
        ('throttle', 'RequestLimitExceeded'),
        (('http', 503), 'ServerNetworkError'),
        (('error', 'LimitExceeded.PhoneNumberThirtySecondLimit',
                'the number was sent a message less than 30 s ago'),
            'LimitExceeded.PhoneNumberThirtySecondLimit'),
        (('api-error', 'InternalError.Timeout', 'backend time-out'),
            'InternalError.Timeout'),
        ])
def test_tencent_retryable(fake_tencent, behaviour, code):
    fake_tencent.script([behaviour])
    gateway = tencent(fake_tencent)
    error = send_error(gateway)
    assert (error.code, error.retryable) == (code, True)
    assert gateway.send(PHONE, '2160001', PARAMS).message_id


@pytest.mark.parametrize('behaviour', [
        ('error', 'InvalidParameterValue.IncorrectPhoneNumber',
            'invalid number'),
        ('error', 'FailedOperation.TemplateIncorrectOrUnapproved',
            'template not approved'),
        ('error', 'FailedOperation.SignatureIncorrectOrUnapproved',
            'sign not approved'),
        ('error', 'LimitExceeded.PhoneNumberDailyLimit', 'daily cap'),
        ('api-error', 'UnauthorizedOperation.SmsSdkAppIdVerifyFail',
            'bad app id'),
        ])
def test_tencent_permanent_errors(fake_tencent, behaviour):
    fake_tencent.script([behaviour])
    error = send_error(tencent(fake_tencent))
    assert (error.code, error.message, error.retryable) == (
        behaviour[1], behaviour[2], False)


def test_tencent_timeout(fake_tencent):
    fake_tencent.script([('delay', 3)])
    started = time.monotonic()
    error = send_error(tencent(fake_tencent, timeout=0.3))
    assert (error.code, error.retryable) == ('timeout', True)
    assert time.monotonic() - started < 2


def test_tencent_connection_refused():
    with FakeTencent(TENCENT_KEYS) as fake:
        gateway = tencent(fake)
    error = send_error(gateway)
    assert (error.code, error.retryable) == ('connection', True)


# Gateways in general

@pytest.mark.parametrize('kind', ['aliyun', 'tencent'])
def test_bad_number_is_not_sent(fake_aliyun, fake_tencent, kind):
    gateway = aliyun(fake_aliyun) if kind == 'aliyun' else tencent(
        fake_tencent)
    error = send_error(gateway, phone='1380013800')
    assert (error.code, error.retryable) == ('invalid-number', False)
    assert '1380013800' in error.message
    assert fake_aliyun.requests == fake_tencent.requests == 0


def test_log_gateway(caplog):
    gateway = LogGateway()
    with caplog.at_level(logging.INFO):
        first = gateway.send('+8613800138000', '房间{room}余额{balance}元',
            {'room': '101', 'balance': '-12.50'}, out_id='a')
        second = gateway.send(PHONE, 'SMS_100', {'room': '102'})
    assert (first.message_id, second.message_id) == ('log-1', 'log-2')
    assert [m['text'] for m in gateway.sent] == [
        '房间101余额-12.50元', 'SMS_100 room=102']
    assert gateway.sent[0]['phone'] == PHONE
    assert gateway.sent[0]['out_id'] == 'a'
    assert '房间101余额-12.50元' in caplog.text


def test_log_gateway_custom_logger(caplog):
    log = logging.getLogger('dh_alarm.test.sms')
    with caplog.at_level(logging.INFO, logger='dh_alarm.test.sms'):
        LogGateway(log).send(PHONE, 'hello', {})
    assert [r.name for r in caplog.records] == ['dh_alarm.test.sms']


def test_make_gateway(fake_aliyun):
    assert isinstance(make_gateway('log'), LogGateway)
    gateway = make_gateway('aliyun', access_key_id='LTAI5tTestKey',
        access_key_secret='aliyun-secret', sign_name='S',
        endpoint=fake_aliyun.url)
    assert gateway.name == 'aliyun'
    assert gateway.send(PHONE, 'SMS_100', {}).message_id
    tencent_gateway = make_gateway('tencent', secret_id='id',
        secret_key='key', sdk_app_id='1400123456', sign_name='S')
    assert isinstance(tencent_gateway, TencentSms)
    with pytest.raises(ValueError, match='Unknown SMS gateway "email"'):
        make_gateway('email')


# Mobile numbers

@pytest.mark.parametrize('text', [
        '13800138000', ' 138 0013 8000 ', '138-0013-8000', '+8613800138000',
        '+86 138 0013 8000', '8613800138000', '0086-138-0013-8000',
        '１３８００１３８０００', '＋86 13800138000'])
def test_normalise_mobile(text):
    assert normalise_mobile(text) == PHONE


@pytest.mark.parametrize('text', [
        '', '12345', '1380013800', '138001380001', '12800138000',
        '23800138000', '+1 415 555 0123', '+8612800138000', '138OO138000',
        '86 1380013800'])
def test_normalise_mobile_rejects(text):
    with pytest.raises(ValueError) as info:
        normalise_mobile(text)
    assert f'"{text}"' in str(info.value)
    assert 'mobile number' in str(info.value)


@pytest.mark.parametrize('text, numbers', [
        ('', []),
        (None, []),
        (' ,; ', []),
        ('13800138000', [PHONE]),
        ('13800138000,13900139000;15000150000 18612345678',
            [PHONE, '13900139000', '15000150000', '18612345678']),
        ('13900139000，+86 138 0013 8000；13800138000\n13900139000',
            ['13900139000', PHONE]),
        ('138 0013 8000, 139-0013-9000', [PHONE, '13900139000']),
        ('13800138000 13900139000', [PHONE, '13900139000']),
        ])
def test_parse_mobiles(text, numbers):
    assert parse_mobiles(text) == numbers


@pytest.mark.parametrize('text, bad', [
        ('13800138000, 12345, 999', '12345'),
        ('13800138000 123', '123'),
        ('13800138000，138 0013 800', '138 0013 800'),
        ('abc', 'abc'),
        ])
def test_parse_mobiles_names_bad_entry(text, bad):
    with pytest.raises(ValueError) as info:
        parse_mobiles(text)
    assert f'"{bad}"' in str(info.value)
