# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"Test (and demo) helpers: a company with a chart, and billing configured."
import datetime as dt
from decimal import Decimal

from trytond.pool import Pool


def setup_accounting(company=None, today=None):
    """A company in CNY with a fiscal year, the minimal chart and the
    billing configuration; returns the company"""
    from trytond.modules.account.tests import create_chart, get_fiscalyear
    from trytond.modules.company.tests import create_company, set_company
    from trytond.modules.currency.tests import create_currency
    pool = Pool()
    FiscalYear = pool.get('account.fiscalyear')
    Account = pool.get('account.account')
    AccountType = pool.get('account.account.type')
    Journal = pool.get('account.journal')
    Config = pool.get('dh.billing.configuration')
    if company is None:
        currency = create_currency('CNY')
        company = create_company(currency=currency)
    with set_company(company):
        today = today or dt.date.today()
        for year in {today.year - 1, today.year}:
            fiscalyear = get_fiscalyear(company, today=dt.date(year, 6, 1))
            fiscalyear.save()
            FiscalYear.create_period([fiscalyear])
        create_chart(company)
        liability, = AccountType.search([
                ('name', 'like', 'Unearned revenue%'),
                ('company', '=', company.id)], limit=1)
        accruals, = Account.search([('code', '=', '2.2.0')])
        prepayment = Account(name='预收账款—水电费', code='2.2.9',
            parent=accruals, type=liability, party_required=True,
            reconcile=False, company=company)
        prepayment.save()
        cash, = Account.search([('code', '=', '1.1.1')])
        revenue, = Account.search([('type.revenue', '=', True),
                ('closed', '!=', True)], limit=1)
        cash_journal, = Journal.search([('code', '=', 'CASH')])
        revenue_journal, = Journal.search([('code', '=', 'REV')])
        config = Config(1)
        config.prepayment_account = prepayment
        config.cash_account_counter = cash
        config.cash_account_wechat = cash
        config.cash_account_api = cash
        config.journal_counter = cash_journal
        config.journal_wechat = cash_journal
        config.journal_api = cash_journal
        config.journal_revenue = revenue_journal
        config.revenue_electricity = revenue
        config.revenue_water = revenue
        config.revenue_ac = revenue
        config.save()
    return company


def flat_tariff(price='1.2', name='居民电价'):
    Tariff = Pool().get('dh.tariff')
    tariff, = Tariff.create([{'name': name, 'kind': 'flat',
                'price': Decimal(price)}])
    return tariff


def ledger_balance(party=None):
    "Prepayment account balance as credit − debit (posted moves)"
    pool = Pool()
    MoveLine = pool.get('account.move.line')
    Config = pool.get('dh.billing.configuration')
    account = Config(1).prepayment_account
    domain = [('account', '=', account.id)]
    if party:
        domain.append(('party', '=', party.id))
    return sum((l.credit - l.debit for l in MoveLine.search(domain)),
        Decimal(0))
