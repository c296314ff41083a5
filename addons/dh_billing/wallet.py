# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Prepaid wallets (dh.wallet) and their lines, recharges and refunds, with
their accounting moves.  Nothing financial is deleted: a wrong line is
reversed by another.  The balance is the sum of the lines, kept on the
wallet under a row lock (PostgreSQL FOR UPDATE) so concurrent operations
never lose an update."""
import datetime as dt
from decimal import Decimal

from trytond import backend
from trytond.i18n import gettext
from trytond.model import (
    Index, ModelSingleton, ModelSQL, ModelView, Unique, fields)
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.dh_metering import storage
from trytond.modules.dh_metering.storage import forget_records
from trytond.modules.dh_metering.usage import REGISTER_NAMES, REGISTERS

from . import rules
from .exceptions import BillingError

LINE_KINDS = [
    ('recharge', "Recharge"),
    ('energy', "Energy Purchase"),
    ('consumption', "Consumption"),
    ('allocation', "Allocation"),
    ('refund', "Refund"),
    ('subsidy', "Subsidy"),
    ('adjustment', "Adjustment"),
    ('reversal', "Reversal"),
    ('residual', "Residual Energy Credit"),
    ]
CHANNELS = [
    ('counter', "Counter"),
    ('wechat', "WeChat"),
    ('api', "API"),
    ]
_money = dict(digits=(16, 2))


class Configuration(ModelSingleton, ModelSQL, ModelView):
    "Billing configuration: the accounts the wallets post to"
    __name__ = 'dh.billing.configuration'
    __string__ = "Billing Configuration"
    prepayment_account = fields.Many2One('account.account',
        "Prepayment Account", help="Tenants' prepayments (a liability, by "
        "party): 预收账款—水电费.")
    cash_account_counter = fields.Many2One('account.account',
        "Cash Account (Counter)")
    cash_account_wechat = fields.Many2One('account.account',
        "Bank Account (WeChat)")
    cash_account_api = fields.Many2One('account.account',
        "Bank Account (API)")
    journal_counter = fields.Many2One('account.journal', "Journal (Counter)")
    journal_wechat = fields.Many2One('account.journal', "Journal (WeChat)")
    journal_api = fields.Many2One('account.journal', "Journal (API)")
    journal_revenue = fields.Many2One('account.journal', "Revenue Journal")
    revenue_electricity = fields.Many2One('account.account',
        "Revenue (Electricity)")
    revenue_water = fields.Many2One('account.account', "Revenue (Water)")
    revenue_ac = fields.Many2One('account.account', "Revenue (AC)")
    no_cut_start = fields.Char("No Cut-off From", help="HH:MM, local time: "
        "arrears do not cut supply between these hours (e.g. 22:00).")
    no_cut_end = fields.Char("No Cut-off Until", help="HH:MM (e.g. 07:00).")
    no_cut_holidays = fields.Text("No Cut-off Days",
        help="Dates (YYYY-MM-DD), one a line, when arrears do not cut "
        "supply.")

    def no_cut_windows(self):
        windows = []
        if self.no_cut_start and self.no_cut_end:
            windows.append((self.no_cut_start, self.no_cut_end))
        holidays = set()
        for line in (self.no_cut_holidays or '').split():
            try:
                holidays.add(dt.date.fromisoformat(line.strip()))
            except ValueError:
                continue
        return windows, holidays

    @classmethod
    def validate(cls, records):
        super().validate(records)
        for record in records:
            for value in [record.no_cut_start, record.no_cut_end]:
                if value:
                    try:
                        rules.in_no_cut_window(dt.datetime(2000, 1, 1),
                            [(value, value)])
                    except ValueError:
                        raise BillingError(gettext(
                                'dh_billing.msg_bad_time', value=value))

    def revenue_account(self, utility):
        account = {'water': self.revenue_water, 'ac_indoor': self.revenue_ac,
            'ac_outdoor': self.revenue_ac, 'ac': self.revenue_ac}.get(
            utility) or self.revenue_electricity
        return account

    def payment_accounts(self, channel):
        "(cash or bank account, journal) of a payment channel"
        return (getattr(self, f'cash_account_{channel}', None)
            or self.cash_account_counter,
            getattr(self, f'journal_{channel}', None)
            or self.journal_counter)

    def check(self):
        if not (self.prepayment_account and self.journal_revenue
                and self.revenue_electricity and self.cash_account_counter
                and self.journal_counter):
            raise BillingError(gettext('dh_billing.msg_not_configured'))


class Wallet(ModelSQL, ModelView):
    "A tenant's prepaid account"
    __name__ = 'dh.wallet'
    __string__ = "Wallet"
    code = fields.Char("Code", required=True, readonly=True)
    party = fields.Many2One('party.party', "Tenant", required=True,
        ondelete='RESTRICT', context={'company': Eval('company', -1)},
        depends={'company'})
    company = fields.Many2One('company.company', "Company", required=True)
    balance = fields.Numeric("Balance", **_money, readonly=True,
        help="The sum of the lines (never edited by hand).")
    emergency_credit = fields.Numeric("Emergency Credit", **_money,
        required=True, help="How far below zero before supply is cut "
        "(应急透支).")
    state = fields.Selection([
            ('open', "Open"),
            ('closed', "Closed"),
            ], "State", readonly=True, required=True)
    meters = fields.One2Many('dh.meter', 'wallet', "Meters", readonly=True)
    monthly_subsidy = fields.Numeric("Monthly Subsidy", **_money,
        help="Credited every month on the settlement day (月补).")
    settlement_day = fields.Integer("Settlement Day",
        domain=['OR', ('settlement_day', '=', None),
            [('settlement_day', '>=', 1), ('settlement_day', '<=', 28)]])
    last_subsidy = fields.Date("Last Subsidy", readonly=True)
    lines = fields.One2Many('dh.wallet.line', 'wallet', "Lines",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('code_unique', Unique(t, t.code),
                'dh_billing.msg_wallet_code_unique'),
            ]
        cls._order.insert(0, ('code', 'ASC'))

    @staticmethod
    def default_balance():
        return Decimal('0.00')

    @staticmethod
    def default_emergency_credit():
        return Decimal('0.00')

    @staticmethod
    def default_state():
        return 'open'

    @staticmethod
    def default_company():
        return Transaction().context.get('company')

    def get_rec_name(self, name):
        return f'{self.code} {self.party.rec_name}'

    @classmethod
    def search_rec_name(cls, name, clause):
        return ['OR', ('code',) + tuple(clause[1:]),
            ('party.rec_name',) + tuple(clause[1:])]

    @classmethod
    def create(cls, vlist):
        vlist = [v.copy() for v in vlist]
        next_id = cls._last_id() + 1
        for values in vlist:
            if not values.get('code'):
                values['code'] = f'W{next_id:06d}'
                next_id += 1
            values['balance'] = Decimal('0.00')
        return super().create(vlist)

    @classmethod
    def _last_id(cls):
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.id, order_by=[table.id.desc],
                limit=1))
        row = cursor.fetchone()
        return row[0] if row else 0

    @classmethod
    def delete(cls, wallets):
        raise BillingError(gettext('dh_billing.msg_no_delete'))

    @classmethod
    def lock_balance(cls, wallet_id):
        """Lock the wallet's row and return its balance as stored now (not
        from any cache): the start of every balance change"""
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        if backend.name == 'postgresql':
            # Tryton's record lock: the first time it restarts the
            # transaction with the row locked at its very start, so the
            # snapshot the balance is read from cannot be older than the
            # lock (a FOR UPDATE later in a REPEATABLE READ transaction
            # fails as soon as another payment committed meanwhile)
            cls.lock([cls(wallet_id)])
            cursor.execute(*table.select(table.balance,
                    where=table.id == wallet_id))
        else:
            # SQLite takes its write lock at the first write of the
            # transaction (BEGIN IMMEDIATE comes before DML, not SELECT):
            # write first, so the balance read next cannot be stale
            cursor.execute(*table.update([table.id], [table.id],
                    where=table.id == wallet_id))
            cursor.execute(*table.select(table.balance,
                    where=table.id == wallet_id))
        value, = cursor.fetchone()
        if isinstance(value, bytes):
            value = value.decode()
        return rules.money(value or 0)

    @classmethod
    def post_lines(cls, wallet, entries):
        """Add lines to the wallet: entries are dicts of dh.wallet.line
        values (amount signed).  Returns the created lines; the balance and
        each line's balance_after are updated under the lock."""
        pool = Pool()
        Line = pool.get('dh.wallet.line')
        if wallet.state != 'open':
            raise BillingError(gettext('dh_billing.msg_wallet_closed',
                    wallet=wallet.rec_name))
        balance = cls.lock_balance(wallet.id)
        now = dt.datetime.now()
        vlist = []
        for entry in entries:
            amount = rules.money(entry['amount'])
            balance = rules.money(balance + amount)
            vlist.append({'date': now, **entry, 'wallet': wallet.id,
                    'amount': amount, 'balance_after': balance})
        lines = Line.create(vlist)
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.update([table.balance], [balance],
                where=table.id == wallet.id))
        # 剩余 on the current data screen: the money left, for cash meters
        meter = pool.get('dh.meter').__table__()
        cursor.execute(*meter.update([meter.remaining], [balance],
                where=(meter.wallet == wallet.id)
                & (meter.billing_mode == 'cash')))
        forget_records('dh.wallet')
        return lines

    @classmethod
    def check_arrears(cls, wallets):
        """Queue trips / closes for the meters the wallets pay for (their
        own and the sub meters merged under them) as the balance says"""
        pool = Pool()
        Meter = pool.get('dh.meter')
        for wallet in storage.browse(cls, [w.id for w in wallets]):
            Meter.control_supply(wallet.paid_meters(), wallet.balance,
                wallet.emergency_credit)

    def paid_meters(self):
        "The wallet's meters and the sub meters merged into them (合并)"
        Meter = Pool().get('dh.meter')
        meters = list(self.meters)
        if meters:
            meters += Meter.search([('master', 'in', [m.id for m in meters]),
                    ('id', 'not in', [m.id for m in meters])])
        return meters

    @classmethod
    def cron_subsidy(cls, date=None):
        "Credit the monthly subsidies due on their settlement day"
        date = date or dt.date.today()
        done = []
        for wallet in cls.search([('monthly_subsidy', '>', 0),
                    ('state', '=', 'open')]):
            day = wallet.settlement_day or 1
            if date.day < day:
                continue
            if wallet.last_subsidy and (wallet.last_subsidy.year,
                    wallet.last_subsidy.month) == (date.year, date.month):
                continue
            cls.post_lines(wallet, [{'kind': 'subsidy',
                        'amount': wallet.monthly_subsidy,
                        'reference': f'{date:%Y-%m}',
                        'description': gettext(
                            'dh_billing.msg_subsidy_line',
                            month=f'{date:%Y-%m}')}])
            cls.write([wallet], {'last_subsidy': date})
            done.append(wallet)
        if done:
            cls.check_arrears(done)
        return done

    @classmethod
    def cron_bill(cls):
        "Safety net: bill every cash-mode meter that has a wallet"
        Meter = Pool().get('dh.meter')
        return len(Meter.bill(storage.browse(Meter, storage.search_ids(
                        Meter, [('billing_mode', '=', 'cash'),
                            ['OR', ('wallet', '!=', None),
                                ('master.wallet', '!=', None)]]))))

    @classmethod
    def cron_post_consumption(cls, until=None):
        """Post the unposted consumption, allocation, subsidy and reversal
        lines: one move per wallet, day and utility (Dr prepayments / Cr
        revenue, or the reverse for credits)"""
        pool = Pool()
        Line = pool.get('dh.wallet.line')
        Config = pool.get('dh.billing.configuration')
        config = Config(1)
        config.check()
        domain = [('move', '=', None),
            ('kind', 'in', ['consumption', 'allocation', 'subsidy',
                    'reversal'])]
        if until:
            domain.append(('date', '<', until))
        groups = {}
        for line in Line.search(domain, order=[('id', 'ASC')]):
            key = (line.wallet.id, line.date.date(), line.utility or
                'electricity')
            groups.setdefault(key, []).append(line)
        moves = []
        for (wallet_id, date, utility), lines in groups.items():
            wallet = cls(wallet_id)
            total = sum((l.amount for l in lines), Decimal(0))
            if not total:
                Line.write(lines, {'move': None})
                continue
            revenue = config.revenue_account(utility)
            if total < 0:
                entries = [(config.prepayment_account, -total, 0,
                        wallet.party), (revenue, 0, -total, None)]
            else:
                entries = [(revenue, total, 0, None),
                    (config.prepayment_account, 0, total, wallet.party)]
            move = post_move(config.journal_revenue, date,
                f'用电/用水 {wallet.code} {date}', entries, wallet.company)
            if move:
                Line.write(lines, {'move': move.id})
                moves.append(move)
        cls.post_draft_moves()
        return moves

    @classmethod
    def post_draft_moves(cls):
        "Post (number) the draft moves of recharges and refunds"
        pool = Pool()
        Move = pool.get('account.move')
        Line = pool.get('dh.wallet.line')
        moves = {l.move for l in Line.search([('move', '!=', None),
                    ('move.state', '=', 'draft')])}
        if moves:
            Move.post(sorted(moves, key=lambda m: m.id))
        return len(moves)

    @classmethod
    def reconcile(cls):
        """Σ wallet balances against the prepayment account (credit −
        debit): (wallets total, ledger total, unposted total, differences
        per party)"""
        pool = Pool()
        Config = pool.get('dh.billing.configuration')
        MoveLine = pool.get('account.move.line')
        Line = pool.get('dh.wallet.line')
        config = Config(1)
        wallets = cls.search([])
        per_party = {}
        for wallet in wallets:
            per_party.setdefault(wallet.party.id, Decimal(0))
            per_party[wallet.party.id] += wallet.balance or 0
        ledger = {}
        # draft moves are in the ledger too (numbered when posted)
        for line in MoveLine.search([
                    ('account', '=', config.prepayment_account.id)]):
            ledger.setdefault(line.party.id if line.party else None,
                Decimal(0))
            ledger[line.party.id if line.party else None] += (
                line.credit - line.debit)
        unposted = {}
        for line in Line.search([('move', '=', None)]):
            party = line.wallet.party.id
            unposted[party] = unposted.get(party, Decimal(0)) + line.amount
        differences = {}
        for party in set(per_party) | set(ledger):
            diff = (per_party.get(party, 0) - ledger.get(party, 0)
                - unposted.get(party, 0))
            if diff:
                differences[party] = diff
        return (sum(per_party.values(), Decimal(0)),
            sum(ledger.values(), Decimal(0)),
            sum(unposted.values(), Decimal(0)), differences)

    def statement(self, start=None, end=None, meter=None):
        "The wallet's lines for a period (and a meter), oldest first"
        Line = Pool().get('dh.wallet.line')
        domain = [('wallet', '=', self.id)]
        if start:
            domain.append(('date', '>=', start))
        if end:
            domain.append(('date', '<', end))
        if meter:
            domain.append(('meter', '=', meter.id))
        return Line.search(domain, order=[('date', 'ASC'), ('id', 'ASC')])


class WalletLine(ModelSQL, ModelView):
    "A movement of a wallet"
    __name__ = 'dh.wallet.line'
    __string__ = "Wallet Line"
    wallet = fields.Many2One('dh.wallet', "Wallet", required=True,
        readonly=True, ondelete='RESTRICT')
    date = fields.DateTime("Date", required=True, readonly=True)
    kind = fields.Selection(LINE_KINDS, "Kind", required=True,
        readonly=True)
    amount = fields.Numeric("Amount", **_money, required=True,
        readonly=True)
    balance_after = fields.Numeric("Balance After", **_money,
        readonly=True)
    energy = fields.Numeric("Energy", digits=(16, 2), readonly=True)
    unit_price = fields.Numeric("Unit Price", digits=(16, 4),
        readonly=True)
    register = fields.Char("Register / Band", readonly=True)
    # the register's name in the user's language for the lists (the key
    # itself, energy_total …, means nothing to a clerk)
    register_name = fields.Function(fields.Selection(
            [(None, '')] + REGISTERS, "Register"), 'get_register_name')
    meter = fields.Many2One('dh.meter', "Meter", readonly=True)
    utility = fields.Char("Utility", readonly=True)
    reference = fields.Char("Reference", readonly=True)
    description = fields.Char("Description", readonly=True)
    reversal_of = fields.Many2One('dh.wallet.line', "Reverses",
        readonly=True)
    move = fields.Many2One('account.move', "Move", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('wallet')
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.wallet, Index.Range()), (t.date, Index.Range())),
                Index(t, (t.move, Index.Range())),
                })
        cls._order = [('date', 'DESC'), ('id', 'DESC')]

    def get_register_name(self, name):
        return self.register if self.register in REGISTER_NAMES else None

    @classmethod
    def write(cls, *args):
        actions = iter(args)
        for lines, values in zip(actions, actions):
            if set(values) - {'move'}:
                raise BillingError(gettext('dh_billing.msg_no_edit'))
        super().write(*args)

    @classmethod
    def delete(cls, lines):
        raise BillingError(gettext('dh_billing.msg_no_delete'))

    @classmethod
    def reverse(cls, lines, reason):
        "Cancel lines by opposite lines (the only way to undo one)"
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        result = []
        for line in lines:
            if cls.search([('reversal_of', '=', line.id)]):
                raise BillingError(gettext('dh_billing.msg_already_reversed'))
            result += Wallet.post_lines(line.wallet, [{
                        'kind': 'reversal', 'amount': -line.amount,
                        'energy': -line.energy if line.energy else None,
                        'meter': line.meter.id if line.meter else None,
                        'utility': line.utility, 'reversal_of': line.id,
                        'description': reason}])
        return result


def _period(company, date):
    Period = Pool().get('account.period')
    return Period.find(company, date=date)


def post_move(journal, date, description, lines, company, post=True):
    """An account move with lines [(account, debit, credit, party)], posted
    unless ``post`` is False: recharges and refunds leave theirs in draft
    (in the ledger, numbered when the daily batch posts them) so concurrent
    payments do not queue on the journal's strict sequence"""
    pool = Pool()
    Move = pool.get('account.move')
    MoveLine = pool.get('account.move.line')
    lines = [l for l in lines if l[1] or l[2]]
    if not lines:
        return None
    move = Move(journal=journal, date=date, period=_period(company, date),
        description=description, company=company)
    move.lines = [MoveLine(account=account, debit=debit, credit=credit,
            party=party if account.party_required else None)
        for account, debit, credit, party in lines]
    move.save()
    if post:
        Move.post([move])
    return move


class Recharge(ModelSQL, ModelView):
    "A recharge (充值): idempotent on its transaction number"
    __name__ = 'dh.recharge'
    __string__ = "Recharge"
    number = fields.Char("Transaction Number", required=True, readonly=True,
        help="Unique: the same number twice credits once (唯一交易号).")
    wallet = fields.Many2One('dh.wallet', "Wallet", required=True,
        readonly=True)
    meter = fields.Many2One('dh.meter', "Meter", readonly=True,
        help="For energy-mode meters: the meter the energy goes to.")
    channel = fields.Selection(CHANNELS, "Channel", required=True,
        readonly=True)
    mode = fields.Selection([
            ('cash', "Cash (server-side money)"),
            ('energy', "Energy (meter-side prepaid)"),
            ('adjustment', "Adjustment"),
            ], "Mode", required=True, readonly=True)
    amount = fields.Numeric("Amount Paid In", **_money, required=True,
        readonly=True)
    unit_price = fields.Numeric("Unit Price", digits=(16, 4), readonly=True)
    multiplier = fields.Numeric("Multiplier", digits=(16, 4), readonly=True)
    kwh = fields.Integer("Energy Bought (kWh)", readonly=True)
    paid = fields.Numeric("Paid for Energy", **_money, readonly=True)
    meter_energy = fields.Numeric("Energy to Meter", digits=(16, 2),
        readonly=True, help="kWh / multiplier (变比电量).")
    wallet_before = fields.Numeric("Wallet Before", **_money, readonly=True)
    wallet_after = fields.Numeric("Wallet After", **_money, readonly=True)
    purchase_count = fields.Integer("Purchase Count", readonly=True)
    state = fields.Selection([
            ('paid', "Paid"),
            ('delivered', "Delivered to Meter"),
            ('failed', "Delivery Failed"),
            ], "State", required=True, readonly=True)
    command = fields.Many2One('dh.command', "Command", readonly=True)
    move = fields.Many2One('account.move', "Move", readonly=True)
    note = fields.Char("Note", readonly=True)
    date = fields.DateTime("Date", required=True, readonly=True)
    user = fields.Many2One('res.user', "Clerk", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('wallet')
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'dh_billing.msg_recharge_number_unique'),
            ]
        cls._order.insert(0, ('date', 'DESC'))

    @classmethod
    def recharge(cls, number, wallet, amount, channel='counter', meter=None,
            note=None, adjustment=False):
        """Recharge a wallet; the same transaction number again returns the
        first recharge and credits nothing.  Energy-mode meters get their
        energy pushed (a dh.command with the next purchase count)."""
        pool = Pool()
        Config = pool.get('dh.billing.configuration')
        Wallet = pool.get('dh.wallet')
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        number = (number or '').strip()
        if not number:
            raise BillingError(gettext('dh_billing.msg_recharge_number'))
        existing = cls.search([('number', '=', number)])
        if existing:
            return existing[0]
        amount = rules.money(amount)
        if adjustment:
            if not note:
                raise BillingError(gettext(
                        'dh_billing.msg_adjustment_reason'))
        elif amount <= 0:
            raise BillingError(gettext('dh_billing.msg_amount_positive'))
        config = Config(1)
        config.check()
        wallet = Wallet(wallet.id)
        # lock first: the balance read below is the one the lines build on
        before = Wallet.lock_balance(wallet.id)
        # a concurrent recharge with the same number may have won the lock
        existing = cls.search([('number', '=', number)])
        if existing:
            return existing[0]
        mode = 'adjustment' if adjustment else 'cash'
        values = {'number': number, 'wallet': wallet.id, 'channel': channel,
            'amount': amount, 'wallet_before': before, 'state': 'paid',
            'date': dt.datetime.now(), 'note': note,
            'user': Transaction().user or None}
        entries = [{'kind': 'adjustment' if adjustment else 'recharge',
                'amount': amount, 'reference': number,
                'description': note}]
        if meter and meter.billing_mode == 'energy' and not adjustment:
            mode = 'energy'
            price = meter.unit_price_now()
            purchase = rules.energy_recharge(amount, max(before, 0), price,
                meter.multiplier)
            if purchase.kwh:
                entries.append({'kind': 'energy', 'amount': -purchase.paid,
                        'energy': Decimal(purchase.kwh),
                        'unit_price': price, 'meter': meter.id,
                        'utility': meter.utility, 'reference': number})
            values.update(meter=meter.id, unit_price=price,
                multiplier=meter.multiplier, kwh=purchase.kwh,
                paid=purchase.paid, meter_energy=purchase.meter_energy)
        values['mode'] = mode
        lines = Wallet.post_lines(wallet, entries)
        values['wallet_after'] = lines[-1].balance_after
        if mode == 'energy' and values.get('kwh'):
            count = (meter.purchase_count or 0) + 1
            Meter.write([meter], {'purchase_count': count})
            command, = Command.queue([meter], 'recharge', {
                    'amount': str(values['meter_energy']), 'count': count},
                expires_in=24 * 3600, reference=f'dh.recharge:{number}',
                max_attempts=5)
            values.update(command=command.id, purchase_count=count)
        recharge, = cls.create([values])
        recharge._post(lines, config)
        if mode != 'energy':
            Wallet.check_arrears([wallet])
        return recharge

    def _post(self, lines, config):
        "Dr cash (journal of the channel) / Cr prepayments (party)"
        cash, journal = config.payment_accounts(self.channel)
        if self.mode == 'adjustment':
            # an adjustment is no cash: it corrects what was billed
            cash = config.revenue_electricity
            journal = config.journal_revenue
        party = self.wallet.party
        company = self.wallet.company
        date = self.date.date()
        move = post_move(journal, date, f'充值 {self.number}', [
                (cash, self.amount if self.amount > 0 else 0,
                    -self.amount if self.amount < 0 else 0, None),
                (config.prepayment_account,
                    -self.amount if self.amount < 0 else 0,
                    self.amount if self.amount > 0 else 0, party),
                ], company, post=False)
        Line = Pool().get('dh.wallet.line')
        if move:
            Line.write([lines[0]], {'move': move.id})
        if self.mode == 'energy' and len(lines) > 1:
            revenue = config.revenue_account(self.meter.utility)
            energy_move = post_move(config.journal_revenue, date,
                f'购电 {self.number}', [
                    (config.prepayment_account, self.paid, 0, party),
                    (revenue, 0, self.paid, None)], company, post=False)
            if energy_move:
                Line.write([lines[1]], {'move': energy_move.id})
        self.move = move
        self.save()

    @classmethod
    def command_done(cls, command):
        "The recharge push was confirmed or failed"
        for recharge in cls.search([('command', '=', command.id)]):
            state = {'confirmed': 'delivered', 'failed': 'failed',
                'expired': 'failed'}.get(command.state)
            if state and recharge.state != state:
                cls.write([recharge], {'state': state})


class Refund(ModelSQL, ModelView):
    "A refund (退费 / 彻底退费 / 不断电退费)"
    __name__ = 'dh.refund'
    __string__ = "Refund"
    number = fields.Char("Number", required=True, readonly=True)
    wallet = fields.Many2One('dh.wallet', "Wallet", required=True,
        readonly=True)
    kind = fields.Selection([
            ('partial', "Refund"),
            ('full', "Full Refund (move-out)"),
            ('no_cut', "Refund without Cut-off"),
            ], "Kind", required=True, readonly=True)
    channel = fields.Selection(CHANNELS, "Channel", required=True,
        readonly=True)
    amount = fields.Numeric("Amount", **_money, required=True,
        readonly=True)
    wallet_before = fields.Numeric("Wallet Before", **_money, readonly=True)
    wallet_after = fields.Numeric("Wallet After", **_money, readonly=True)
    move = fields.Many2One('account.move', "Move", readonly=True)
    note = fields.Char("Note", readonly=True)
    date = fields.DateTime("Date", required=True, readonly=True)
    user = fields.Many2One('res.user', "Clerk", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('wallet')
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'dh_billing.msg_refund_number_unique'),
            ]
        cls._order.insert(0, ('date', 'DESC'))

    @classmethod
    def refund(cls, number, wallet, kind='partial', amount=None,
            channel='counter', note=None):
        """Return money from the wallet.  'full' bills up to the last
        reading, returns everything, trips the meters and closes the wallet
        (move-out); 'partial' returns ``amount`` and cuts supply if the
        balance is then too low; 'no_cut' returns ``amount`` and keeps
        supply on.  Idempotent on ``number``."""
        pool = Pool()
        Config = pool.get('dh.billing.configuration')
        Wallet = pool.get('dh.wallet')
        Meter = pool.get('dh.meter')
        existing = cls.search([('number', '=', number)])
        if existing:
            return existing[0]
        config = Config(1)
        config.check()
        wallet = Wallet(wallet.id)
        if kind == 'full':
            Meter.bill(wallet.meters)
        before = Wallet.lock_balance(wallet.id)
        if kind == 'full':
            amount = max(before, Decimal(0))
        else:
            amount = rules.money(amount or 0)
            if amount <= 0:
                raise BillingError(gettext('dh_billing.msg_amount_positive'))
            if amount > before:
                raise BillingError(gettext('dh_billing.msg_refund_too_much',
                        amount=amount, balance=before))
        lines = []
        if amount:
            lines = Wallet.post_lines(Wallet(wallet.id), [{'kind': 'refund',
                        'amount': -amount, 'reference': number,
                        'description': note}])
        refund, = cls.create([{'number': number, 'wallet': wallet.id,
                    'kind': kind, 'channel': channel, 'amount': amount,
                    'wallet_before': before,
                    'wallet_after': before - amount, 'note': note,
                    'date': dt.datetime.now(),
                    'user': Transaction().user or None}])
        if amount:
            cash, journal = config.payment_accounts(channel)
            move = post_move(journal, refund.date.date(), f'退费 {number}', [
                    (config.prepayment_account, amount, 0, wallet.party),
                    (cash, 0, amount, None)], wallet.company, post=False)
            if move:
                pool.get('dh.wallet.line').write(lines, {'move': move.id})
                refund.move = move
                refund.save()
        wallet = Wallet(wallet.id)
        if kind == 'full':
            Meter.control_supply(wallet.meters, Decimal(0), Decimal(0),
                force_trip=True)
            Wallet.write([wallet], {'state': 'closed'})
        elif kind == 'partial':
            Wallet.check_arrears([wallet])
        return refund
