# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The counter screen (电量充值): the product's recharge form on a meter,
with its buttons 充值 / 调整电费充值 / 读取剩余电量 / 彻底退费 / 退费 /
不断电退费.  The transaction number is made when the form opens, so a
double click credits once."""
import datetime as dt
import uuid
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.pool import Pool
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import rules
from .exceptions import BillingError


class CounterStart(ModelView):
    __name__ = 'dh.counter.start'
    __string__ = "Recharge"
    meter = fields.Many2One('dh.meter', "Meter", readonly=True)
    number = fields.Char("Transaction Number", readonly=True)
    level1 = fields.Char("Level 1", readonly=True)
    level2 = fields.Char("Level 2", readonly=True)
    level3 = fields.Char("Level 3", readonly=True)
    level4 = fields.Char("Level 4", readonly=True)
    name = fields.Char("User Name", readonly=True)
    address = fields.Char("Meter Address", readonly=True)
    wallet = fields.Many2One('dh.wallet', "Wallet", readonly=True)
    mode = fields.Selection([
            ('cash', "Cash"),
            ('energy', "Energy"),
            ], "Recharge Mode", readonly=True)
    amount = fields.Numeric("Amount Paid In", digits=(16, 2))
    unit_price = fields.Numeric("Unit Price", digits=(16, 4), readonly=True)
    multiplier = fields.Numeric("Multiplier", digits=(16, 4), readonly=True)
    kwh = fields.Integer("Energy Bought (kWh)", readonly=True)
    paid = fields.Numeric("Paid for Energy", digits=(16, 2), readonly=True)
    meter_energy = fields.Numeric("Energy to Meter", digits=(16, 2),
        readonly=True)
    wallet_before = fields.Numeric("Wallet After Last Recharge",
        digits=(16, 4), readonly=True)
    wallet_after = fields.Numeric("Wallet After This Recharge",
        digits=(16, 2), readonly=True)
    note = fields.Char("Note")

    @fields.depends('amount', 'mode', 'unit_price', 'multiplier',
        'wallet_before')
    def on_change_amount(self):
        self.kwh = self.paid = self.meter_energy = self.wallet_after = None
        if not self.amount or self.amount <= 0:
            return
        before = self.wallet_before or Decimal(0)
        if self.mode == 'energy' and self.unit_price and self.multiplier:
            try:
                purchase = rules.energy_recharge(self.amount,
                    max(rules.money(before), Decimal(0)), self.unit_price,
                    self.multiplier)
            except ValueError:
                return
            self.kwh = purchase.kwh
            self.paid = purchase.paid
            self.meter_energy = purchase.meter_energy
            self.wallet_after = purchase.wallet_after
        else:
            self.wallet_after = rules.money(before + self.amount)


class Counter(Wizard):
    "Recharge and refund at the counter"
    __name__ = 'dh.counter'
    __string__ = "Recharge"
    start = StateView('dh.counter.start',
        'dh_billing.counter_start_view_form', [
            Button("Close", 'end', 'tryton-close'),
            Button("Read Remaining", 'read_remaining', 'tryton-refresh'),
            Button("Refund without Cut-off", 'refund_no_cut', 'tryton-undo'),
            Button("Refund", 'refund', 'tryton-undo'),
            Button("Full Refund", 'refund_full', 'tryton-cancel'),
            Button("Adjustment Recharge", 'adjust', 'tryton-launch'),
            Button("Recharge", 'recharge', 'tryton-ok', default=True),
            ])
    recharge = StateTransition()
    adjust = StateTransition()
    refund = StateTransition()
    refund_full = StateTransition()
    refund_no_cut = StateTransition()
    read_remaining = StateTransition()

    def default_start(self, fields):
        meter = self.record
        if not meter:
            return {}
        if not meter.paying_wallet:
            raise BillingError(gettext('dh_billing.msg_meter_no_wallet',
                    meter=meter.rec_name))
        mode = 'energy' if meter.billing_mode == 'energy' else 'cash'
        return {
            'meter': meter.id,
            'number': f'CT{dt.datetime.now():%Y%m%d%H%M%S}-'
            f'{uuid.uuid4().hex[:8]}',
            'level1': meter.level1, 'level2': meter.level2,
            'level3': meter.level3, 'level4': meter.level4,
            'name': meter.name, 'address': meter.address,
            'wallet': meter.paying_wallet.id, 'mode': mode,
            'unit_price': meter.unit_price_now(),
            'multiplier': meter.multiplier,
            'wallet_before': meter.paying_wallet.balance,
            }

    def _recharge(self, adjustment):
        Recharge = Pool().get('dh.recharge')
        meter = self.record
        Recharge.recharge(self.start.number, meter.paying_wallet,
            self.start.amount, channel='counter', meter=meter,
            note=self.start.note, adjustment=adjustment)
        return 'end'

    def transition_recharge(self):
        return self._recharge(False)

    def transition_adjust(self):
        return self._recharge(True)

    def _refund(self, kind):
        Refund = Pool().get('dh.refund')
        Refund.refund(self.start.number, self.record.paying_wallet, kind=kind,
            amount=self.start.amount, note=self.start.note)
        return 'end'

    def transition_refund(self):
        return self._refund('partial')

    def transition_refund_full(self):
        return self._refund('full')

    def transition_refund_no_cut(self):
        return self._refund('no_cut')

    def transition_read_remaining(self):
        Command = Pool().get('dh.command')
        Command.queue([self.record], 'read',
            {'registers': ['remaining_energy']}, reference='counter')
        return 'end'
