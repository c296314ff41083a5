# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Remote clear (远程清零) of a meter-side prepaid (energy mode) meter's
remaining energy, and the money side of it.

Only the DH administrator group may ask for it, with a reason; the request
(who, when, why) is a dh.meter.clear record and a 'clear' dh.command.  When
the meter confirms (it reads 0.00 kWh back), the energy it held just
before the clear — ``remaining_before`` × the meter's multiplier — is
credited back to the paying wallet at the price it was bought at (the unit
price of the meter's last delivered energy recharge, else its price now)
as one 'residual' line, with the move reversing the energy sale (Dr revenue
/ Cr prepayments).  A failed, cancelled or expired clear writes nothing; a
clear is credited once whatever the retries (docs/billing.md)."""
import datetime as dt
import json
import uuid
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, Unique, fields
from trytond.pool import Pool
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from . import rules
from .exceptions import BillingError
from .wallet import post_move

_money = dict(digits=(16, 2))


def check_administrator():
    """Raise unless the user is in the DH administrator group (the root
    user of crons and scripts is let through)"""
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    if Transaction().user == 0:
        return
    admin = ModelData.get_id('dh_metering', 'group_dh_admin')
    if admin not in User.get_groups():
        raise BillingError(gettext('dh_billing.msg_clear_admin_only'))


class MeterClear(ModelSQL, ModelView):
    "A remote clear (远程清零) of a prepaid meter's remaining energy"
    __name__ = 'dh.meter.clear'
    __string__ = "Remote Clear"
    number = fields.Char("Number", required=True, readonly=True)
    meter = fields.Many2One('dh.meter', "Meter", required=True,
        readonly=True, ondelete='RESTRICT')
    wallet = fields.Many2One('dh.wallet', "Wallet", required=True,
        readonly=True, ondelete='RESTRICT')
    reason = fields.Char("Reason", required=True, readonly=True)
    user = fields.Many2One('res.user', "Administrator", readonly=True)
    date = fields.DateTime("Date", required=True, readonly=True)
    state = fields.Selection([
            ('requested', "Requested"),
            ('confirmed', "Confirmed"),
            ('failed', "Failed"),
            ], "State", required=True, readonly=True)
    command = fields.Many2One('dh.command', "Command", readonly=True)
    meter_energy = fields.Numeric("Energy Cleared on Meter",
        digits=(16, 2), readonly=True,
        help="The remaining energy the meter showed just before the clear.")
    energy = fields.Numeric("Energy Cleared (kWh)", digits=(16, 2),
        readonly=True, help="Energy cleared on the meter × multiplier.")
    unit_price = fields.Numeric("Unit Price", digits=(16, 4), readonly=True,
        help="The price the energy was bought at.")
    amount = fields.Numeric("Amount Credited", **_money, readonly=True)
    uncertain_energy = fields.Numeric("Energy of an Unconfirmed Attempt",
        digits=(16, 2), readonly=True,
        help="An attempt's write went out but was neither acknowledged "
        "nor read back: what the meter had before it.")
    line = fields.Many2One('dh.wallet.line', "Wallet Line", readonly=True)
    move = fields.Many2One('account.move', "Move", readonly=True)
    error = fields.Char("Error", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'dh_billing.msg_clear_number_unique'),
            ]
        cls._order.insert(0, ('date', 'DESC'))

    @staticmethod
    def default_state():
        return 'requested'

    @classmethod
    def delete(cls, clears):
        raise BillingError(gettext('dh_billing.msg_no_delete'))

    @classmethod
    def request(cls, meter, reason, number=None):
        """Queue the remote clear of ``meter`` (administrators only, a
        reason needed); the same ``number`` again returns the first
        request."""
        pool = Pool()
        Command = pool.get('dh.command')
        check_administrator()
        number = (number or '').strip() or (
            f'CL{dt.datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}')
        existing = cls.search([('number', '=', number)])
        if existing:
            return existing[0]
        reason = (reason or '').strip()
        if not reason:
            raise BillingError(gettext('dh_billing.msg_clear_reason'))
        meter = pool.get('dh.meter')(meter.id)
        if meter.billing_mode != 'energy':
            raise BillingError(gettext('dh_billing.msg_clear_not_energy',
                    meter=meter.rec_name))
        wallet = meter.paying_wallet
        if not wallet:
            raise BillingError(gettext('dh_billing.msg_meter_no_wallet',
                    meter=meter.rec_name))
        if wallet.state != 'open':
            raise BillingError(gettext('dh_billing.msg_wallet_closed',
                    wallet=wallet.rec_name))
        if cls.search([('meter', '=', meter.id),
                    ('state', '=', 'requested')]):
            raise BillingError(gettext('dh_billing.msg_clear_pending',
                    meter=meter.rec_name))
        command, = Command.queue([meter], 'clear', {'clear': number},
            expires_in=24 * 3600, reference=f'dh.meter.clear:{number}',
            max_attempts=5)
        clear, = cls.create([{'number': number, 'meter': meter.id,
                    'wallet': wallet.id, 'reason': reason,
                    'user': Transaction().user or None,
                    'date': dt.datetime.now(), 'command': command.id}])
        return clear

    @classmethod
    def command_news(cls, command, result=None):
        """A report of the clear command: an attempt of unknown outcome is
        remembered; confirmed credits the wallet; failed / expired closes
        the request with nothing written"""
        for clear in cls.search([('command', '=', command.id),
                    ('state', '=', 'requested')]):
            if isinstance(result, dict) and result.get('unknown') \
                    and clear.uncertain_energy is None \
                    and result.get('remaining_before') is not None:
                clear.uncertain_energy = rules.energy(
                    result['remaining_before'])
                clear.save()
            if command.state == 'confirmed':
                clear._confirm(result if isinstance(result, dict)
                    else json.loads(command.result or '{}'))
            elif command.state in ('failed', 'expired'):
                cls.write([clear], {'state': 'failed',
                        'error': command.last_error})

    def _bought_price(self):
        "The unit price of the meter's last delivered energy recharge"
        Recharge = Pool().get('dh.recharge')
        recharges = Recharge.search([('meter', '=', self.meter.id),
                ('mode', '=', 'energy'), ('state', '=', 'delivered')],
            order=[('date', 'DESC'), ('id', 'DESC')], limit=1)
        if recharges and recharges[0].unit_price:
            return recharges[0].unit_price
        return self.meter.unit_price_now() or Decimal(0)

    def _confirm(self, result):
        pool = Pool()
        Config = pool.get('dh.billing.configuration')
        Wallet = pool.get('dh.wallet')
        Line = pool.get('dh.wallet.line')
        meter_energy = rules.energy(result.get('remaining_before') or 0)
        if not meter_energy and self.uncertain_energy:
            # an earlier attempt cleared it: what the meter had then
            meter_energy = self.uncertain_energy
        multiplier = Decimal(self.meter.multiplier or 1)
        energy = rules.energy(meter_energy * multiplier)
        price = self._bought_price()
        amount = rules.money(energy * price)
        values = {'state': 'confirmed', 'meter_energy': meter_energy,
            'energy': energy, 'unit_price': price, 'amount': amount}
        if amount:
            config = Config(1)
            wallet = Wallet(self.wallet.id)
            line, = Wallet.post_lines(wallet, [{'kind': 'residual',
                        'amount': amount, 'energy': energy,
                        'unit_price': price, 'meter': self.meter.id,
                        'utility': self.meter.utility,
                        'reference': self.number,
                        'description': self.reason}])
            values['line'] = line.id
            move = post_move(config.journal_revenue, dt.date.today(),
                f'清零 {self.number}', [
                    (config.revenue_account(self.meter.utility), amount, 0,
                        None),
                    (config.prepayment_account, 0, amount, wallet.party),
                    ], wallet.company, post=False)
            if move:
                Line.write([line], {'move': move.id})
                values['move'] = move.id
        self.write([self], values)


class ClearStart(ModelView):
    __name__ = 'dh.meter.clear.start'
    __string__ = "Remote Clear"
    number = fields.Char("Number", readonly=True)
    meter = fields.Many2One('dh.meter', "Meter", readonly=True)
    wallet = fields.Many2One('dh.wallet', "Wallet", readonly=True)
    remaining = fields.Numeric("Remaining (Last Read)", digits=(16, 2),
        readonly=True, help="The meter reads its own remaining energy "
        "again just before the clear: that is what is credited.")
    unit_price = fields.Numeric("Unit Price", digits=(16, 4), readonly=True)
    reason = fields.Char("Reason", required=True)


class Clear(Wizard):
    "Remote clear (远程清零)"
    __name__ = 'dh.meter.clear.wizard'
    __string__ = "Remote Clear"
    start = StateView('dh.meter.clear.start',
        'dh_billing.clear_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Remote Clear", 'clear', 'tryton-ok', default=True),
            ])
    clear = StateTransition()

    def default_start(self, fields):
        check_administrator()
        meter = self.record
        if not meter:
            return {}
        wallet = meter.paying_wallet
        return {'number': f'CL{dt.datetime.now():%Y%m%d%H%M%S}-'
            f'{uuid.uuid4().hex[:8]}', 'meter': meter.id,
            'wallet': wallet.id if wallet else None,
            'remaining': meter.remaining,
            'unit_price': meter.unit_price_now()}

    def transition_clear(self):
        Pool().get('dh.meter.clear').request(self.record, self.start.reason,
            number=self.start.number)
        return 'end'
