# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Allocation: a public meter's consumption over the meters of its room
(公摊), and a central-AC outdoor unit's energy over its indoor units
(计量的方式要有依据).  Each run stores its basis, every input and every
share, and bills the shares to the wallets."""
import datetime as dt
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.dh_metering.usage import E4

from . import rules
from .exceptions import BillingError

BASES = [
    ('equal', "Equal Shares"),
    ('area', "Floor Area"),
    ('consumption', "Own Consumption"),
    ('capacity_runtime', "Capacity × Runtime"),
    ('runtime', "Runtime"),
    ('capacity_speed', "Capacity × Fan-speed Runtime"),
    ]


def period_usage(meter_ids, register, start, end):
    """{meter id: energy (× multiplier)} from the daily aggregates over
    [start, end) (local dates)"""
    cursor = Transaction().connection.cursor()
    from trytond import backend
    p = '%s' if backend.name == 'postgresql' else '?'
    usage = {m: Decimal(0) for m in meter_ids}
    for i in range(0, len(meter_ids), 500):
        chunk = list(meter_ids)[i:i + 500]
        cursor.execute('SELECT meter, SUM(usage_e4) FROM dh_usage_day WHERE '
            f'register = {p} AND period >= {p} AND period < {p} AND meter '
            f'IN ({", ".join([p] * len(chunk))}) GROUP BY meter',
            [register, start, end] + chunk)
        for meter, total in cursor:
            usage[meter] = Decimal(int(total or 0)) / E4
    return usage


class Allocation(ModelSQL, ModelView):
    "An allocation run"
    __name__ = 'dh.allocation'
    __string__ = "Allocation"
    kind = fields.Selection([
            ('public', "Public Meter"),
            ('ac', "Central AC"),
            ], "Kind", required=True, readonly=True)
    source = fields.Many2One('dh.meter', "Public Meter / Outdoor Unit",
        required=True, readonly=True)
    start = fields.Date("From", required=True, readonly=True)
    end = fields.Date("To (excluded)", required=True, readonly=True)
    basis = fields.Selection(BASES, "Basis", required=True, readonly=True)
    energy = fields.Numeric("Energy", digits=(16, 2), readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)
    lines = fields.One2Many('dh.allocation.line', 'allocation', "Shares",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('start', 'DESC'))

    @classmethod
    def allocate_public(cls, public, start, end, basis='equal',
            members=None):
        """Split the public meter's usage over [start, end) over the normal
        meters of its room (or ``members``) and bill each share"""
        pool = Pool()
        Meter = pool.get('dh.meter')
        if cls.search([('source', '=', public.id), ('start', '<', end),
                    ('end', '>', start)]):
            raise BillingError(gettext('dh_billing.msg_allocation_overlap',
                    meter=public.rec_name))
        if members is None:
            members = Meter.search([('area', '=', public.area.id),
                    ('role', '=', 'normal'), ('id', '!=', public.id),
                    ('utility', '=', public.utility)])
        if not members:
            raise BillingError(gettext('dh_billing.msg_allocation_members',
                    meter=public.rec_name))
        register = 'water_flow' if public.utility == 'water' \
            else 'energy_total'
        total = rules.energy(period_usage([public.id], register, start,
                end)[public.id])
        if basis == 'area':
            weights = {m.id: m.floor_area or Decimal(0) for m in members}
        elif basis == 'consumption':
            weights = period_usage([m.id for m in members], register,
                start, end)
        else:
            basis = 'equal'
            weights = {m.id: Decimal(1) for m in members}
        shares = rules.allocate(total, weights)
        inputs = {m: {'weight': str(w)} for m, w in weights.items()}
        return cls._bill(public, 'public', start, end, basis, total,
            shares, inputs)

    @classmethod
    def allocate_ac(cls, outdoor, start, end, basis='capacity_runtime',
            speed_runtime=None):
        """Split the outdoor unit's energy over its indoor units by rated
        capacity × runtime (runtime from their ac_runtime register), or
        runtime only, or capacity × fan-speed-weighted runtime"""
        pool = Pool()
        Meter = pool.get('dh.meter')
        units = Meter.search([('ac_outdoor', '=', outdoor.id)])
        if not units:
            raise BillingError(gettext('dh_billing.msg_allocation_members',
                    meter=outdoor.rec_name))
        total = rules.energy(period_usage([outdoor.id], 'energy_total',
                start, end)[outdoor.id])
        runtime = period_usage([u.id for u in units], 'ac_runtime', start,
            end)
        indoor = [rules.IndoorUnit(u.id, u.capacity_kw or Decimal(0),
                runtime[u.id], (speed_runtime or {}).get(u.id))
            for u in units]
        split = rules.ac_split(total, indoor, basis=basis)
        inputs = {k: {key: str(value) for key, value in v.items()}
            for k, v in split.inputs.items()}
        return cls._bill(outdoor, 'ac', start, end, basis, total,
            split.shares, inputs)

    @classmethod
    def _bill(cls, source, kind, start, end, basis, total, shares, inputs):
        pool = Pool()
        Meter = pool.get('dh.meter')
        Wallet = pool.get('dh.wallet')
        Line = pool.get('dh.allocation.line')
        allocation, = cls.create([{'kind': kind, 'source': source.id,
                    'start': start, 'end': end, 'basis': basis,
                    'energy': total}])
        amount_total = Decimal(0)
        vlist = []
        for meter_id, energy in sorted(shares.items()):
            meter = Meter(meter_id)
            price = meter.unit_price_now() or (source.unit_price_now()
                or Decimal(0))
            amount = rules.money(energy * price)
            wallet_line = None
            if meter.wallet and amount and meter.wallet.state == 'open':
                wallet_line, = Wallet.post_lines(meter.wallet, [{
                            'kind': 'allocation', 'amount': -amount,
                            'energy': energy, 'unit_price': price,
                            'meter': meter.id, 'utility': meter.utility,
                            'reference': f'{source.name} {start}~{end}',
                            'description': gettext(
                                'dh_billing.msg_allocation_line',
                                source=source.name, basis=basis)}])
            amount_total += amount
            vlist.append({'allocation': allocation.id, 'meter': meter.id,
                    'inputs': repr(inputs.get(meter_id, {})),
                    'energy': energy, 'unit_price': price, 'amount': amount,
                    'wallet_line': wallet_line.id if wallet_line else None})
        Line.create(vlist)
        allocation.amount = amount_total
        allocation.save()
        wallets = {Meter(m).wallet for m in shares if Meter(m).wallet}
        Wallet.check_arrears(list(wallets))
        return allocation


class AllocationLine(ModelSQL, ModelView):
    "One meter's share of an allocation, with the figures behind it"
    __name__ = 'dh.allocation.line'
    __string__ = "Allocation Share"
    allocation = fields.Many2One('dh.allocation', "Allocation",
        required=True, ondelete='CASCADE', readonly=True)
    meter = fields.Many2One('dh.meter', "Meter", required=True,
        readonly=True)
    inputs = fields.Char("Basis Inputs", readonly=True)
    energy = fields.Numeric("Energy", digits=(16, 2), readonly=True)
    unit_price = fields.Numeric("Unit Price", digits=(16, 4), readonly=True)
    amount = fields.Numeric("Amount", digits=(16, 2), readonly=True)
    wallet_line = fields.Many2One('dh.wallet.line', "Wallet Line",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('allocation')


def today():
    return dt.date.today()
