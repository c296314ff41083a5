# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The demo's money: a small Chinese chart, tariffs, a wallet per tenant
with an opening recharge and 30 days of billed consumption (some low, some
in arrears and cut off), the product's meter 2001 for the worked example, a
public meter allocated over four rooms and a central-AC outdoor unit with
three indoor units."""
import datetime as dt
import random
from decimal import Decimal

from trytond.pool import Pool
from trytond.transaction import Transaction

D = Decimal


class DemoPart:
    sequence = 30
    name = 'dh_billing'

    @classmethod
    def build(cls, options, log):
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        Company = pool.get('company.company')
        company = Company.search([])[0]
        with Transaction().set_context(company=company.id):
            if Wallet.search([], count=True):
                log('dh_billing: wallets present, kept as they are')
            else:
                cls.accounting(company, log)
                tariffs = cls.tariffs()
                cls.wallets(company, tariffs, options, log)
            wallets = Wallet.search([])
            return {'wallets': len(wallets),
                'balance': str(sum((w.balance for w in wallets), D(0)))}

    @classmethod
    def accounting(cls, company, log):
        from trytond.modules.account.tests import create_chart
        pool = Pool()
        FiscalYear = pool.get('account.fiscalyear')
        Sequence = pool.get('ir.sequence.strict')
        ModelData = pool.get('ir.model.data')
        Account = pool.get('account.account')
        AccountType = pool.get('account.account.type')
        Journal = pool.get('account.journal')
        Config = pool.get('dh.billing.configuration')
        User = pool.get('res.user')
        today = dt.date.today()
        sequence_type = ModelData.get_id('account',
            'sequence_type_account_move')
        for year in sorted({today.year - 1, today.year}):
            sequence, = Sequence.create([{'name': f'{year}',
                        'sequence_type': sequence_type,
                        'company': company.id}])
            fiscalyear, = FiscalYear.create([{'name': f'{year}',
                        'company': company.id,
                        'start_date': dt.date(year, 1, 1),
                        'end_date': dt.date(year, 12, 31),
                        'move_sequence': sequence.id}])
            FiscalYear.create_period([fiscalyear])
        # the template chart needs the company in the user's context
        admin, = User.search([('login', '=', 'admin')])
        with Transaction().set_user(admin.id), Transaction().set_context(
                company=company.id, companies=[company.id]):
            create_chart(company)
        cash_type, = AccountType.search([('name', '=', 'Cash'),
                ('company', '=', company.id)], limit=1) or AccountType.search(
            [('name', 'like', 'Cash%'), ('company', '=', company.id)],
            limit=1)
        liability, = AccountType.search([
                ('name', 'like', 'Unearned revenue%'),
                ('company', '=', company.id)], limit=1)
        revenue_type, = AccountType.search([('revenue', '=', True),
                ('company', '=', company.id)], limit=1)
        root, = Account.search([('parent', '=', None),
                ('company', '=', company.id)], limit=1)

        def account(code, name, type_, **values):
            record, = Account.create([{'code': code, 'name': name,
                        'type': type_.id, 'parent': root.id,
                        'company': company.id, **values}])
            return record
        cash = account('1001', '库存现金', cash_type)
        bank = account('1002', '银行存款', cash_type)
        prepay = account('2203', '预收账款—水电费', liability,
            party_required=True)
        rev_e = account('6001.01', '主营业务收入—电费', revenue_type)
        rev_w = account('6001.02', '主营业务收入—水费', revenue_type)
        rev_ac = account('6001.03', '主营业务收入—空调费', revenue_type)
        cash_journal, = Journal.create([{'name': '柜台收款', 'code': 'CTR',
                    'type': 'cash'}])
        wechat_journal, = Journal.create([{'name': '微信收款', 'code': 'WX',
                    'type': 'cash'}])
        api_journal, = Journal.create([{'name': '接口收款', 'code': 'API',
                    'type': 'cash'}])
        revenue_journal, = Journal.search([('code', '=', 'REV')])
        Config.write([Config(1)], {'prepayment_account': prepay.id,
                'cash_account_counter': cash.id,
                'cash_account_wechat': bank.id, 'cash_account_api': bank.id,
                'journal_counter': cash_journal.id,
                'journal_wechat': wechat_journal.id,
                'journal_api': api_journal.id,
                'journal_revenue': revenue_journal.id,
                'revenue_electricity': rev_e.id, 'revenue_water': rev_w.id,
                'revenue_ac': rev_ac.id})
        log('dh_billing: chart with 库存现金, 银行存款, 预收账款—水电费, '
            '主营业务收入—电费/水费/空调费')

    @classmethod
    def tariffs(cls):
        Tariff = Pool().get('dh.tariff')
        home, shop, water, ac = Tariff.create([
                {'name': '居民电价', 'kind': 'flat', 'price': D('1.2'),
                    'catalogue_price': D('1.1')},
                {'name': '商业分时电价', 'kind': 'tou', 'price_t1': D('1.45'),
                    'price_t2': D('1.25'), 'price_t3': D('0.95'),
                    'price_t4': D('0.55'), 'catalogue_price': D('1.25'),
                    'bands': [('create', [
                                {'start': '00:00', 'end': '08:00',
                                    'band': 't4'},
                                {'start': '08:00', 'end': '10:00',
                                    'band': 't3'},
                                {'start': '10:00', 'end': '12:00',
                                    'band': 't1'},
                                {'start': '12:00', 'end': '18:00',
                                    'band': 't2'},
                                {'start': '18:00', 'end': '21:00',
                                    'band': 't1'},
                                {'start': '21:00', 'end': '24:00',
                                    'band': 't3'}])]},
                {'name': '居民水价', 'kind': 'flat', 'price': D('4.5'),
                    'utility': 'water'},
                {'name': '中央空调电价', 'kind': 'flat', 'price': D('1.2'),
                    'utility': 'ac'},
                ])
        return {'home': home, 'shop': shop, 'water': water, 'ac': ac}

    @classmethod
    def wallets(cls, company, tariffs, options, log):
        pool = Pool()
        Meter = pool.get('dh.meter')
        Wallet = pool.get('dh.wallet')
        Recharge = pool.get('dh.recharge')
        Allocation = pool.get('dh.allocation')
        Area = pool.get('dh.area')
        Party = pool.get('party.party')
        rng = random.Random(2001)
        meters = Meter.search([('tenant', '!=', None)],
            order=[('id', 'ASC')])
        tenants = sorted({m.tenant for m in meters}, key=lambda p: p.id)
        wallets = dict(zip(tenants, Wallet.create([{'party': t.id,
                            'company': company.id} for t in tenants])))
        for meter in meters:
            tariff = tariffs['water'] if meter.utility == 'water' else (
                tariffs['shop'] if meter.level1 == '海景' else
                tariffs['home'])
            Meter.write([meter], {'wallet': wallets[meter.tenant].id,
                    'tariff': tariff.id, 'billing_mode': 'cash'})
        # public meters get the home price for their allocation
        Meter.write(Meter.search([('role', '=', 'public'),
                    ('tariff', '=', None)]), {'tariff': tariffs['home'].id,
                'billing_mode': 'postpaid'})
        # the opening recharges, 30 days ago at the counter
        for i, (tenant, wallet) in enumerate(wallets.items()):
            amount = D(rng.choice([30, 50, 100, 200, 300, 500]))
            if i % 13 == 0:
                amount = D(10)          # these will be in arrears
            Recharge.recharge(f'DEMO-OPEN-{wallet.id}', wallet, amount,
                channel=rng.choice(['counter', 'counter', 'wechat']))
        # 30 days of billed history, in 3-day steps
        days = int(options.get('days') or 30)
        end = dt.datetime.utcnow()
        start = end - dt.timedelta(days=days)
        Meter.start_billing(meters, start)
        step = start
        while step < end:
            step = min(step + dt.timedelta(days=3), end)
            Meter.bill(Meter.browse([m.id for m in meters]), until=step)
        log(f'dh_billing: {len(wallets)} wallets, {days} days billed')

        # the product's meter 2001 (东政, 16005628, 1.2, energy mode, 0.40)
        path = {}
        parent = None
        for level in range(1, 5):
            area = Area.search([('name', '=', '东政'),
                    ('level', '=', str(level)),
                    ('parent', '=', parent.id if parent else None)])
            area = area[0] if area else Area.create([{'name': '东政',
                            'level': str(level),
                            'parent': parent.id if parent else None}])[0]
            parent = path[level] = area
        party, = Party.create([{'name': '东政'}])
        wallet, = Wallet.create([{'party': party.id,
                    'company': company.id}])
        Meter.create([{'number': '2001', 'name': '东政',
                    'address': '16005628', 'area': path[4].id,
                    'tenant': party.id, 'wallet': wallet.id,
                    'billing_mode': 'energy', 'tariff': tariffs['home'].id,
                    'unit_price': D('1.2'), 'multiplier': D(1)}])
        Recharge.recharge('DEMO-2001-OPENING', wallet, D('0.40'),
            note='开户余额', adjustment=True)

        # a public meter allocated over the four rooms of its box
        for public in Meter.search([('role', '=', 'public'),
                    ('name', 'like', '%公')]):
            members = Meter.search([('area', '=', public.area.id),
                    ('role', '=', 'normal'),
                    ('utility', '=', 'electricity')])
            if len(members) == 4:
                Allocation.allocate_public(public, (start + dt.timedelta(
                            days=1)).date(), end.date(), members=members)
                log(f'dh_billing: {public.name} allocated over 4 rooms')
                break

        cls.central_ac(company, tariffs, wallets, start, end, log)
        Wallet.cron_post_consumption()

    @classmethod
    def central_ac(cls, company, tariffs, wallets, start, end, log):
        pool = Pool()
        Meter = pool.get('dh.meter')
        Allocation = pool.get('dh.allocation')
        Reading = pool.get('dh.meter.reading')
        shop = Meter.search([('level1', '=', '海景'),
                ('wallet', '!=', None)], limit=3)
        if not shop:
            return
        area = shop[0].area
        outdoor, = Meter.create([{'number': 'AC-01', 'name': '海景中央空调外机1',
                    'address': '000000000901', 'utility': 'ac_outdoor',
                    'area': area.id, 'tariff': tariffs['ac'].id,
                    'billing_mode': 'postpaid', 'role': 'normal'}])
        units = Meter.create([{'number': f'AC-01-{i}',
                    'name': f'{m.name}空调内机', 'address':
                    f'{902 + i:012d}', 'utility': 'ac_indoor',
                    'area': m.area.id, 'tariff': tariffs['ac'].id,
                    'wallet': m.wallet.id, 'ac_outdoor': outdoor.id,
                    'capacity_kw': cap, 'billing_mode': 'postpaid'}
                for i, (m, cap) in enumerate(zip(shop, [D('2.8'),
                            D('3.6'), D('7.1')]))])
        rows = []
        days = (end - start).days
        energy, runtime = D(0), [D(0)] * len(units)
        for day in range(days + 1):
            t = start + dt.timedelta(days=day)
            rows.append((outdoor.id, 'energy_total', t, energy))
            for i, unit in enumerate(units):
                rows.append((unit.id, 'ac_runtime', t, runtime[i]))
            energy += D(60) + day % 5 * 7
            runtime = [r + D(h) for r, h in zip(runtime, [6, 9, 4])]
        with Transaction().set_context(dh_no_billing=True):
            Reading.ingest(rows)
        Allocation.allocate_ac(outdoor, (start + dt.timedelta(days=1)).date(),
            end.date())
        log('dh_billing: central AC outdoor unit split over 3 indoor units')
