# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Excel statements (住户需要清单附件: per wallet, room or meter, any period),
the recharge history export, and the reconciliation report."""
import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from trytond.modules.dh_metering.export import _local
from trytond.modules.dh_metering.xlsx_export import Column

KIND_ZH = {'recharge': '充值', 'energy': '购电', 'consumption': '消费',
    'allocation': '分摊', 'refund': '退费', 'subsidy': '补贴',
    'adjustment': '调整', 'reversal': '冲销', 'residual': '清零退回'}
CHANNEL_ZH = {'counter': '柜台', 'wechat': '微信', 'api': '接口'}
STATE_ZH = {'paid': '已缴费', 'delivered': '已下发', 'failed': '下发失败'}


class ExportJob(metaclass=PoolMeta):
    __name__ = 'dh.export.job'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.report.selection += [
            ('statement', "Wallet Statement"),
            ('recharges', "Recharge History"),
            ]

    @classmethod
    def report_title(cls, report):
        return {'statement': '对账单', 'recharges': '充值查询'}.get(
            report) or super().report_title(report)

    @classmethod
    def report_spec(cls, report, criteria):
        if report == 'statement':
            return cls._statement_spec(criteria)
        if report == 'recharges':
            return cls._recharges_spec(criteria)
        return super().report_spec(report, criteria)

    @classmethod
    def _period_domain(cls, field, criteria):
        domain = []
        if criteria.get('from_date'):
            domain.append((field, '>=', dt.datetime.fromisoformat(
                        criteria['from_date'])))
        if criteria.get('to_date'):
            domain.append((field, '<', dt.datetime.fromisoformat(
                        criteria['to_date']) + dt.timedelta(days=1)))
        return domain

    @classmethod
    def _statement_spec(cls, criteria):
        domain = [('wallet', '=', criteria.get('wallet'))]
        if criteria.get('meter'):
            domain.append(('meter', '=', criteria['meter']))
        domain += cls._period_domain('date', criteria)
        columns = [Column('时间', 'datetime'), Column('类型'),
            Column('表计', width=16), Column('抄表项/时段'),
            Column('用量', 'number'), Column('单价', 'number4'),
            Column('金额', 'money'), Column('余额', 'money'),
            Column('参考', width=22), Column('说明', width=24)]
        fields_ = ['date', 'kind', 'meter.name', 'register', 'energy',
            'unit_price', 'amount', 'balance_after', 'reference',
            'description']

        def row(r):
            return [_local(r['date']), KIND_ZH.get(r['kind'], r['kind']),
                (r.get('meter.') or {}).get('name'), r['register'],
                r['energy'], r['unit_price'], r['amount'],
                r['balance_after'], r['reference'], r['description']]
        pairs = [('钱包', criteria.get('wallet_name')),
            ('表计', criteria.get('meter_name')),
            ('日期', f"{criteria.get('from_date') or ''} 至 "
                f"{criteria.get('to_date') or ''}")]
        return ('dh.wallet.line', {}, domain,
            [('date', 'ASC'), ('id', 'ASC')], columns, fields_, row, pairs)

    @classmethod
    def _recharges_spec(cls, criteria):
        domain = cls._period_domain('date', criteria)
        columns = [Column('时间', 'datetime'), Column('交易号', width=24),
            Column('钱包', width=18), Column('表计', width=16),
            Column('渠道'), Column('本次缴费(元)', 'money'),
            Column('结算后购电量(度)', 'int'), Column('实缴费(元)', 'money'),
            Column('变比电量', 'number'), Column('钱包余额(本次充值后)',
                'money'), Column('状态')]
        fields_ = ['date', 'number', 'wallet.rec_name', 'meter.name',
            'channel', 'amount', 'kwh', 'paid', 'meter_energy',
            'wallet_after', 'state']

        def row(r):
            return [_local(r['date']), r['number'],
                r['wallet.']['rec_name'], (r.get('meter.') or {}).get(
                    'name'), CHANNEL_ZH.get(r['channel']), r['amount'],
                r['kwh'], r['paid'], r['meter_energy'], r['wallet_after'],
                STATE_ZH.get(r['state'])]
        period = (f"{criteria.get('from_date') or ''} 至 "
            f"{criteria.get('to_date') or ''}")
        return ('dh.recharge', {}, domain, [('date', 'ASC'), ('id', 'ASC')],
            columns, fields_, row, [('日期', period)])


class StatementStart(ModelView):
    __name__ = 'dh.wallet.statement.start'
    __string__ = "Export Statement"
    wallet = fields.Many2One('dh.wallet', "Wallet", required=True,
        readonly=True)
    meter = fields.Many2One('dh.meter', "Meter (room)",
        domain=[('wallet', '=', Eval('wallet', -1))],
        help="Leave empty for every meter of the wallet.")
    from_date = fields.Date("From")
    to_date = fields.Date("To")


class Statement(Wizard):
    "Export a wallet statement to Excel (per wallet, room or meter)"
    __name__ = 'dh.wallet.statement'
    __string__ = "Export Statement"
    start = StateView('dh.wallet.statement.start',
        'dh_billing.statement_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Export", 'export', 'tryton-ok', default=True),
            ])
    export = StateTransition()

    def default_start(self, fields):
        today = dt.date.today()
        return {'wallet': self.record.id if self.record else None,
            'from_date': today.replace(day=1), 'to_date': today}

    def transition_export(self):
        Job = Pool().get('dh.export.job')
        start = self.start
        criteria = {'wallet': start.wallet.id,
            'wallet_name': start.wallet.rec_name,
            'from_date': start.from_date.isoformat()
            if start.from_date else None,
            'to_date': start.to_date.isoformat() if start.to_date else None}
        if start.meter:
            criteria.update(meter=start.meter.id,
                meter_name=start.meter.rec_name)
        Job.create_job('statement', criteria)
        return 'end'


class ReconcileResult(ModelView):
    __name__ = 'dh.billing.reconcile.result'
    __string__ = "Reconciliation"
    wallets_total = fields.Numeric("Σ Wallet Balances", digits=(16, 2),
        readonly=True)
    ledger_total = fields.Numeric("Prepayment Account", digits=(16, 2),
        readonly=True)
    unposted_total = fields.Numeric("Not Yet in the Ledger",
        digits=(16, 2), readonly=True)
    balanced = fields.Boolean("Balanced", readonly=True)
    differences = fields.Text("Differences", readonly=True)


class Reconcile(Wizard):
    """Σ wallet balances against the prepayment account, party by party, and
    energy-mode meters' remaining energy against what was sold to them"""
    __name__ = 'dh.billing.reconcile'
    __string__ = "Reconciliation"
    start_state = 'result'
    result = StateView('dh.billing.reconcile.result',
        'dh_billing.reconcile_result_view_form', [
            Button("Close", 'end', 'tryton-close', default=True),
            ])

    def default_result(self, fields):
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        Party = pool.get('party.party')
        total, ledger, unposted, differences = Wallet.reconcile()
        lines = [gettext('dh_billing.msg_reconcile_party',
                party=Party(p).rec_name if p else '-', difference=d)
            for p, d in sorted(differences.items(), key=lambda i: i[0] or 0)]
        for meter, expected, remaining in energy_differences():
            lines.append(gettext('dh_billing.msg_reconcile_energy',
                    meter=meter.rec_name, expected=expected,
                    remaining=remaining))
        return {'wallets_total': total, 'ledger_total': ledger,
            'unposted_total': unposted,
            'balanced': not lines and total == ledger + unposted,
            'differences': '\n'.join(lines)}


def energy_differences():
    """(meter, energy sold to it − energy used since, remaining it reports)
    for energy-mode meters whose report disagrees by more than 0.01"""
    pool = Pool()
    Meter = pool.get('dh.meter')
    Recharge = pool.get('dh.recharge')
    cursor = Transaction().connection.cursor()
    from trytond import backend
    p = '%s' if backend.name == 'postgresql' else '?'
    result = []
    for meter in Meter.search([('billing_mode', '=', 'energy'),
                ('remaining', '!=', None)]):
        recharges = Recharge.search([('meter', '=', meter.id),
                ('state', '=', 'delivered')], order=[('date', 'ASC')])
        if not recharges:
            continue
        sold = sum((r.meter_energy or 0 for r in recharges), Decimal(0))
        first = recharges[0].date
        cursor.execute('SELECT value_e4 FROM dh_reading WHERE meter = '
            f'{p} AND register = {p} AND read_at <= {p} ORDER BY read_at '
            'DESC LIMIT 1', (meter.id, 'energy_total', first))
        start = cursor.fetchone()
        cursor.execute('SELECT value_e4 FROM dh_reading_last WHERE meter = '
            f'{p} AND register = {p}', (meter.id, 'energy_total'))
        last = cursor.fetchone()
        used = Decimal(0)
        if start and last:
            used = Decimal(last[0] - start[0]) / 10000
        expected = (sold - used).quantize(Decimal('0.01'))
        if abs(expected - Decimal(meter.remaining)) > Decimal('0.01'):
            result.append((meter, expected, meter.remaining))
    return result


class RechargeExportStart(ModelView):
    __name__ = 'dh.recharge.export.start'
    __string__ = "Export Recharges"
    from_date = fields.Date("From")
    to_date = fields.Date("To")


class RechargeExport(Wizard):
    "Export the recharge history (充值查询) to Excel"
    __name__ = 'dh.recharge.export'
    __string__ = "Export Recharges"
    start = StateView('dh.recharge.export.start',
        'dh_billing.recharge_export_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Export", 'export', 'tryton-ok', default=True),
            ])
    export = StateTransition()

    def default_start(self, fields):
        today = dt.date.today()
        return {'from_date': today.replace(day=1), 'to_date': today}

    def transition_export(self):
        Job = Pool().get('dh.export.job')
        Job.create_job('recharges', {
                'from_date': self.start.from_date.isoformat()
                if self.start.from_date else None,
                'to_date': self.start.to_date.isoformat()
                if self.start.to_date else None})
        return 'end'
