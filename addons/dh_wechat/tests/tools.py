# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Test (and demo) helpers: merchant keys, a WeChat configuration pointed at
a fake, and a small plaza with two tenants — 张伟 with one room, 李娜 with
two rooms on one wallet (多间统一充值) and an energy-mode meter."""
from decimal import Decimal

from trytond.pool import Pool

from ..fake_wechat import FakeWeChat, new_key, private_pem, public_pem

D = Decimal
APPID = 'wx0123456789abcdef'
MCHID = '1900000109'
SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1'
APIV3_KEY = 'dhDemoApiV3Key-0123456789abcdefg'[:32]
OA_SECRET = 'dh-demo-oa-secret'
PASSWORD = 'dhTenant-2026x'

_merchant = None


def merchant_key():
    "One merchant key per process (2048-bit RSA takes a moment)"
    global _merchant
    if _merchant is None:
        _merchant = new_key()
    return _merchant


def fake(**kwargs):
    key = merchant_key()
    return FakeWeChat(APPID, MCHID, APIV3_KEY, public_pem(key), SERIAL,
        OA_SECRET, **kwargs)


def configure(company, fake_wechat, portal_url, **values):
    "The company's WeChat configuration, pointed at the fake"
    Config = Pool().get('dh.wechat.config')
    key = merchant_key()
    config, = Config.create([dict({'company': company.id, 'appid': APPID,
                    'oa_secret': OA_SECRET, 'oa_api_base': fake_wechat.url,
                    'oa_open_base': fake_wechat.url, 'mchid': MCHID,
                    'serial_no': SERIAL, 'private_key': private_pem(key),
                    'apiv3_key': APIV3_KEY,
                    'platform_public_key': fake_wechat.platform_public_key,
                    'platform_public_key_id': fake_wechat.public_key_id,
                    'pay_gateway': fake_wechat.url,
                    'portal_url': portal_url,
                    'template_low_balance': 'TPL-LOW',
                    'template_cutoff': 'TPL-CUT',
                    'template_restored': 'TPL-ON',
                    'template_monthly_usage': 'TPL-MONTH',
                    'template_alarm': 'TPL-ALARM'}, **values)])
    return config


def tenants(company):
    """Areas, tariffs, two tenants with portal accounts; returns a dict of
    the records by name"""
    from trytond.modules.dh_billing.tests.tools import flat_tariff
    from trytond.modules.dh_metering.tests.tools import (
        create_areas, create_meter)
    pool = Pool()
    Party = pool.get('party.party')
    Wallet = pool.get('dh.wallet')
    WebUser = pool.get('web.user')
    areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601', '602', '603']}},
            '东政': {'东政': {'东政': ['东政']}}})
    room = {n: areas['唐渠', '瀚盛家园', '15', n] for n in ['601', '602',
            '603']}
    tariff = flat_tariff('1.2')
    zhang, li = Party.create([{'name': '张伟'}, {'name': '李娜'}])
    w_zhang, w_li = Wallet.create([{'party': zhang.id, 'company': company.id},
            {'party': li.id, 'company': company.id}])
    a = create_meter(room['601'], '202', '瀚15#601A', '15085381',
        tariff=tariff.id, wallet=w_zhang.id, tenant=zhang.id,
        billing_mode='cash')
    b = create_meter(room['602'], '204', '瀚15#602A', '15085390',
        tariff=tariff.id, wallet=w_li.id, tenant=li.id, billing_mode='cash')
    c = create_meter(room['603'], '205', '瀚15#603A', '15085391',
        tariff=tariff.id, wallet=w_li.id, tenant=li.id, billing_mode='cash')
    e = create_meter(areas['东政', '东政', '东政', '东政'], '2001', '东政',
        '16005628', tariff=tariff.id, wallet=w_li.id, tenant=li.id,
        billing_mode='energy', unit_price=D('1.2'))
    Wallet.post_lines(w_zhang, [{'kind': 'adjustment', 'amount': D('50.00'),
                'description': 'opening'}])
    Wallet.post_lines(w_li, [{'kind': 'adjustment', 'amount': D('0.40'),
                'description': 'opening'}])
    u_zhang, u_li = WebUser.create([
            {'dh_login': 'zhangwei', 'party': zhang.id,
                'password': PASSWORD},
            {'dh_login': 'lina', 'party': li.id, 'password': PASSWORD}])
    return {'zhang': zhang, 'li': li, 'w_zhang': w_zhang, 'w_li': w_li,
        'a': a, 'b': b, 'c': c, 'e': e, 'u_zhang': u_zhang, 'u_li': u_li,
        'tariff': tariff}
