# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The dh_api module in a transaction: Tryton's generic checks, tokens
(hashed, shown once, scoped), the audit log, the abnormal-device hook, and
the request validation (pure)."""
import datetime as dt
import json
import os
import re
import unittest
from decimal import Decimal
from xml.etree import ElementTree

from trytond.exceptions import UserError
from trytond.modules.company.tests import CompanyTestMixin
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction
from trytond.transaction import Transaction

from .. import validate
from ..api import ApiError, Context
from ..token import hash_key

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = Decimal


class DhApiTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the dh_api module"
    module = 'dh_api'

    @with_transaction()
    def test_token_key_hashed_and_shown_once(self):
        "The key is returned once; only its SHA-256 is stored"
        Token = Pool().get('dh.api.token')
        token, key = Token.create_token('ERP', ['read', 'recharge'])
        self.assertTrue(key.startswith('dh_'))
        self.assertGreater(len(key), 40)
        self.assertEqual(token.key_hash, hash_key(key))
        self.assertNotIn(key, json.dumps(Token.read([token.id],
                    ['name', 'prefix', 'key_hash', 'state'])))
        self.assertEqual(token.state, 'active')
        token_id, state, scopes, areas = Token.authenticate(key)
        self.assertEqual((token_id, state, areas), (token.id, 'active',
                []))
        self.assertEqual(scopes, {'read', 'recharge'})
        self.assertIsNone(Token.authenticate(key + 'x'))
        self.assertIsNone(Token.authenticate(''))
        # a new key replaces the old one
        new = token.new_key()
        self.assertIsNone(Token.authenticate(key))
        self.assertEqual(Token.authenticate(new)[0], token.id)

    @with_transaction()
    def test_generate_key_wizard(self):
        "The backend's button: a draft token gets its key, shown once"
        pool = Pool()
        Token = pool.get('dh.api.token')
        GenerateKey = pool.get('dh.api.token.generate_key', type='wizard')
        token, = Token.create([{'name': 'Platform', 'scopes': ['read']}])
        self.assertEqual((token.state, token.key_hash), ('draft', None))
        session_id, _, _ = GenerateKey.create()
        wizard = GenerateKey(session_id)
        with Transaction().set_context(active_model='dh.api.token',
                active_id=token.id, active_ids=[token.id]):
            result = wizard.execute(session_id, {}, 'show')
        key = result['view']['defaults']['key']
        self.assertEqual(Token.authenticate(key)[:2], (token.id, 'active'))
        GenerateKey.delete(session_id)

    @with_transaction()
    def test_revoke_is_final(self):
        Token = Pool().get('dh.api.token')
        token, key = Token.create_token('ERP', ['read'])
        Token.revoke([token])
        self.assertEqual(Token.authenticate(key)[1], 'revoked')
        self.assertIsNotNone(token.revoked_at)
        with self.assertRaises(UserError):
            token.new_key()
        with self.assertRaises(UserError):
            Token.delete([token])

    @with_transaction()
    def test_unknown_scope_refused(self):
        Token = Pool().get('dh.api.token')
        with self.assertRaises(Exception):
            Token.create([{'name': 'x', 'scopes': ['admin']}])

    @with_transaction()
    def test_audit_log_is_append_only(self):
        pool = Pool()
        Token = pool.get('dh.api.token')
        Call = pool.get('dh.api.call')
        token, _ = Token.create_token('ERP', ['read'])
        Call.record(token.id, '127.0.0.1', 'balance', '2001', None, None,
            200, 'ok', 3.4)
        call, = Call.search([])
        self.assertEqual((call.token, call.operation, call.device,
                call.status, call.outcome, call.duration),
            (token, 'balance', '2001', 200, 'ok', 3))
        self.assertEqual(Token(token.id).last_used, call.date)
        # the daily purge keeps what is younger than the retention
        self.assertEqual(Call.cron_purge(days=1), 0)
        self.assertEqual(Call.cron_purge(days=-1), 1)
        Call.record(token.id, '127.0.0.1', 'balance', '2001', None, None,
            200, 'ok', 3.4)
        call, = Call.search([])
        with self.assertRaises(UserError):
            Call.write([call], {'outcome': 'forged'})
        with self.assertRaises(UserError):
            Call.delete([call])

    @with_transaction()
    def test_scope_and_abnormal_hook(self):
        "A token sees its areas only; the abnormal hook says why"
        from trytond.modules.dh_metering.tests.tools import (
            create_areas, create_meter)
        pool = Pool()
        Meter = pool.get('dh.meter')
        areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601']}},
                '东政': {'东区': {'2': ['301']}}})
        a = create_meter(areas['唐渠', '瀚盛家园', '15', '601'], '202',
            '瀚15#601A', '15085381')
        b = create_meter(areas['东政', '东区', '2', '301'], '301',
            '东2#301D', '16005628')
        tangqu = Context(pool, 1, {'read'}, [areas['唐渠',].id])
        everything = Context(pool, 1, {'read'}, None)
        self.assertEqual(tangqu.find('202'), a.id)
        self.assertEqual(tangqu.find('15085381'), a.id)   # address, short
        with self.assertRaises(ApiError) as cm:
            tangqu.find('301')
        self.assertEqual((cm.exception.status, cm.exception.code),
            (404, 'unknown_device'))
        self.assertEqual(everything.find('16005628'), b.id)
        Meter.write([b], {'state': 'offline'})
        Meter.write([a], {'relay': 'open'})
        reasons = Meter.api_abnormal_reasons(everything.scope_query())
        self.assertEqual([r['code'] for r in reasons[b.id]], ['offline'])
        self.assertEqual([r['code'] for r in reasons[a.id]], ['relay_open'])
        reasons = Meter.api_abnormal_reasons(tangqu.scope_query())
        self.assertEqual(list(reasons), [a.id])
        # an inactive meter is unknown
        Meter.write([a], {'active': False})
        with self.assertRaises(ApiError):
            tangqu.find('202')

    @with_transaction()
    def test_demo_token(self):
        "The demo part makes its published token once"
        from ..demo import DEMO_KEY, DemoPart
        Token = Pool().get('dh.api.token')
        logged = []
        for _ in range(2):
            summary = DemoPart.build({}, logged.append)
        self.assertEqual(summary, {'api_token': DEMO_KEY})
        self.assertEqual(len(logged), 1)
        token_id, state, scopes, areas = Token.authenticate(DEMO_KEY)
        self.assertEqual((state, scopes, areas), ('active',
                {'read', 'recharge', 'control'}, None))

    @with_transaction()
    def test_translations_complete(self):
        "Every message and reason has its zh_CN translation"
        po = open(os.path.join(HERE, 'locale', 'zh_CN.po'),
            encoding='utf-8').read()
        self.assertNotRegex(po, r'msgstr ""\n\n')
        self.assertNotIn('fuzzy', po)
        ids = re.findall(r'id="(msg_[a-z_]+)"',
            open(os.path.join(HERE, 'message.xml')).read())
        for msg_id in ids:
            self.assertIn(f'model:ir.message,text:{msg_id}"', po, msg_id)


class ValidateTestCase(unittest.TestCase):
    "Request validation without a database"

    def invalid(self, func, *args):
        with self.assertRaises(validate.Invalid) as cm:
            func(*args)
        return cm.exception.code, cm.exception.field

    def test_body(self):
        self.assertEqual(validate.parse_body(b''), {})
        self.assertEqual(validate.parse_body(b'{"a": 1.50}'),
            {'a': D('1.50')})
        for raw in [b'[]', b'"x"', b'{', b'{"a": NaN}', b'\xff\xfe',
                b'{"a": Infinity}', b'[' * 100000]:
            self.assertEqual(self.invalid(validate.parse_body, raw)[0],
                'invalid_json', raw[:10])

    def test_amount(self):
        for value, expected in [('100', D('100.00')), ('0.01', D('0.01')),
                (D('12.5'), D('12.50')), (7, D('7.00')),
                ('100000.00', D('100000.00')), (D('1E+2'), D('100.00'))]:
            self.assertEqual(validate.amount(value), expected)
        for value in ['0', '-1', '1.001', '1e3', ' 1', '1 ', '+1', '1.',
                '', '１２', True, None, [], {}, 100000.01, '100000.01',
                D('0.001'), D('1E+1000'), D('NaN'), 0, '1\n']:
            self.assertEqual(self.invalid(validate.amount, value),
                ('invalid_amount', 'amount'), repr(value))

    def test_fields(self):
        self.assertEqual(validate.v_recharge({'device_id': '2001',
                    'amount': '1000', 'txn_no': 'PAY-1'}),
            {'device_id': '2001', 'amount': D('1000.00'), 'txn_no': 'PAY-1'})
        self.assertEqual(self.invalid(validate.v_recharge, {
                    'device_id': '2001', 'amount': '1'}),
            ('missing_field', 'txn_no'))
        self.assertEqual(self.invalid(validate.v_balance, {
                    'device_id': '2001', 'extra': 1}),
            ('unknown_field', 'extra'))
        for device in [2001, '', ' 2001', '2001\n', 'a' * 65, '瀚15', None]:
            self.assertEqual(self.invalid(validate.v_balance,
                    {'device_id': device})[0],
                'missing_field' if device is None else 'invalid_field')
        self.assertEqual(validate.v_usage({'device_ids': ['1', '1', '2'],
                    'month': '2026-02'}),
            {'device_ids': ['1', '2'], 'month': dt.date(2026, 2, 1)})
        for month in ['2026-13', '2026-2', '1999-12', '2026-02-01', 202602]:
            self.assertEqual(self.invalid(validate.v_usage, {
                        'device_ids': ['1'], 'month': month}),
                ('invalid_month', 'month'), month)
        self.assertEqual(self.invalid(validate.v_usage, {
                    'device_ids': [], 'month': '2026-02'}),
            ('invalid_field', 'device_ids'))
        self.assertEqual(self.invalid(validate.v_usage, {
                    'device_ids': ['1'] * 101, 'month': '2026-02'}),
            ('invalid_field', 'device_ids'))
        base = {'device_ids': ['1']}
        for date_from, date_to in [('2026-02-30', '2026-03-01'),
                ('2026-03-02', '2026-03-01'), ('2024-01-01', '2026-01-01'),
                ('20260101', '2026-01-02')]:
            self.assertEqual(self.invalid(validate.v_recharges, {**base,
                        'date_from': date_from, 'date_to': date_to})[0],
                'invalid_date')
        self.assertEqual(validate.v_balances({'page': D('2.0')}),
            {'page': 2, 'page_size': 100})
        for page in [0, -1, True, '1', D('1.5'), 10 ** 7, None]:
            self.assertEqual(self.invalid(validate.v_balances,
                    {'page': page}), ('invalid_field', 'page'))
        self.assertEqual(self.invalid(validate.v_control, {
                    'device_id': '1', 'action': 'explode'}),
            ('invalid_field', 'action'))
        self.assertEqual(self.invalid(validate.v_low_balance, {
                    'below': '1', 'kind': None}), ('invalid_field', 'kind'))
        self.assertEqual(validate.v_low_balance({'below': '-5.5'}),
            {'below': D('-5.50'), 'kind': 'money', 'page': 1,
                'page_size': 100})

    def test_reasons_match_messages(self):
        "message.xml holds every reason with the same English text"
        root = ElementTree.parse(os.path.join(HERE, 'message.xml'))
        texts = {r.get('id'): r.find('field').text
            for r in root.iter('record')}
        for key, text in validate.REASONS.items():
            self.assertEqual(texts.get(f'msg_reason_{key}'), text, key)


del ModuleTestCase
