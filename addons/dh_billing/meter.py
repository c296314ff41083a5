# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Meters that bill: tariff and price, billing mode, wallet, supply control;
consumption billing on new readings (each interval exactly once, from a
per-meter watermark) and arrears control."""
import datetime as dt
from collections import defaultdict
from decimal import Decimal

from trytond import backend
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval
from trytond.transaction import Transaction

from trytond.modules.dh_metering import storage
from trytond.modules.dh_metering.reading import local_timezone
from trytond.modules.dh_metering.usage import E4, step

from . import rules

TOU_REGISTERS = ['energy_t1', 'energy_t2', 'energy_t3', 'energy_t4']
UTC = dt.timezone.utc


def billed_register(meter):
    return {'water': 'water_flow'}.get(meter.utility, 'energy_total')


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'
    wallet = fields.Many2One('dh.wallet', "Wallet", ondelete='RESTRICT',
        help="The prepaid account paying for this meter (one wallet may "
        "fund several rooms).")
    tariff = fields.Many2One('dh.tariff', "Tariff", ondelete='RESTRICT')
    unit_price = fields.Numeric("Unit Price Override", digits=(16, 4),
        help="This meter's own price (每台表计单价可设).")
    billing_mode = fields.Selection([
            ('cash', "Cash (server-side money)"),
            ('energy', "Energy (meter-side prepaid)"),
            ('postpaid', "Postpaid"),
            ], "Billing Mode", required=True)
    control_mode = fields.Selection([
            ('controlled', "Cut When Insufficient"),
            ('controlled_no_cut', "Never Cut (保电)"),
            ('always_on', "Unconditional Close"),
            ('always_off', "Unconditional Trip"),
            ], "Control Mode", required=True)
    purchase_count = fields.Integer("Purchase Count", readonly=True,
        help="购电次数: the replay guard of energy pushes.")
    floor_area = fields.Numeric("Floor Area (m²)", digits=(16, 2),
        help="Basis of public-meter allocation by area.")
    capacity_kw = fields.Numeric("Rated Capacity (kW)", digits=(16, 2),
        states={'invisible': Eval('utility') != 'ac_indoor'})
    ac_outdoor = fields.Many2One('dh.meter', "AC Outdoor Unit",
        domain=[('utility', '=', 'ac_outdoor')],
        states={'invisible': Eval('utility') != 'ac_indoor'})

    @staticmethod
    def default_billing_mode():
        return 'cash'

    @staticmethod
    def default_control_mode():
        return 'controlled'

    @staticmethod
    def default_purchase_count():
        return 0

    @property
    def paying_wallet(self):
        "A sub meter merged under a master is paid by the master's wallet"
        if self.master and self.master.wallet:
            return self.master.wallet
        return self.wallet

    def unit_price_now(self, band='energy_total'):
        if self.unit_price:
            return self.unit_price
        if not self.tariff:
            return None
        return self.tariff.price_of(band)

    @classmethod
    def __register__(cls, module_name):
        super().__register__(module_name)
        cursor = Transaction().connection.cursor()
        cursor.execute('CREATE TABLE IF NOT EXISTS dh_billing_mark ('
            'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
            'read_at TIMESTAMP NOT NULL, value_e4 BIGINT NOT NULL, '
            'PRIMARY KEY (meter, register))')

    # -- consumption billing ------------------------------------------------
    @classmethod
    def bill(cls, meters, until=None):
        """Bill every new reading interval of cash-mode meters to their
        wallets, once: a watermark per meter and register records what is
        billed.  Public meters (allocated) and postpaid meters are not
        billed here."""
        pool = Pool()
        Wallet = pool.get('dh.wallet')
        meters = [m for m in meters if m.billing_mode == 'cash'
            and m.paying_wallet and m.role != 'public'
            and m.paying_wallet.state == 'open'
            and (m.tariff or m.unit_price)]
        if not meters:
            return []
        cursor = Transaction().connection.cursor()
        p = '%s' if backend.name == 'postgresql' else '?'
        tz = local_timezone()
        by_wallet = defaultdict(list)
        marks = []
        for meter in meters:
            tariff = meter.tariff.to_rules() if meter.tariff else \
                rules.Tariff(kind='flat', price=meter.unit_price)
            registers = [billed_register(meter)]
            if tariff.kind == 'tou' and meter.utility != 'water':
                cursor.execute('SELECT COUNT(*) FROM dh_reading_last '
                    f'WHERE meter = {p} AND register = {p}',
                    (meter.id, 'energy_t1'))
                if cursor.fetchone()[0]:
                    registers = TOU_REGISTERS
            for register in registers:
                entries, mark = cls._bill_register(cursor, p, meter,
                    register, tariff, tz, until)
                by_wallet[meter.paying_wallet.id].extend(entries)
                if mark:
                    marks.append((meter.id, register, *mark))
        for meter_id, register, read_at, value in marks:
            cursor.execute('DELETE FROM dh_billing_mark WHERE meter = '
                f'{p} AND register = {p}', (meter_id, register))
            cursor.execute('INSERT INTO dh_billing_mark (meter, register, '
                f'read_at, value_e4) VALUES ({p}, {p}, {p}, {p})',
                (meter_id, register, read_at, value))
        lines = []
        paying = [w for w, entries in by_wallet.items() if entries]
        if paying and backend.name == 'postgresql':
            # all the wallets at once: one transaction restart at most
            Wallet.lock(storage.browse(Wallet, paying))
        for wallet_id in paying:
            lines += Wallet.post_lines(Wallet(wallet_id),
                by_wallet[wallet_id])
        if by_wallet:
            Wallet.check_arrears(storage.browse(Wallet, list(by_wallet)))
        return lines

    @classmethod
    def _bill_register(cls, cursor, p, meter, register, tariff, tz,
            until=None):
        """(wallet line values, new watermark) for one register; a meter
        without a watermark starts from its latest reading (nothing before
        it is billed: see start_billing)"""
        cursor.execute('SELECT read_at, value_e4 FROM dh_billing_mark '
            f'WHERE meter = {p} AND register = {p}', (meter.id, register))
        mark = cursor.fetchone()
        if not mark:
            cursor.execute('SELECT read_at, value_e4 FROM dh_reading_last '
                f'WHERE meter = {p} AND register = {p}',
                (meter.id, register))
            last = cursor.fetchone()
            return [], (_dt(last[0]), last[1]) if last else None
        if until is None:
            cursor.execute('SELECT read_at, value_e4 FROM dh_reading WHERE '
                f'meter = {p} AND register = {p} AND read_at > {p} '
                'ORDER BY read_at', (meter.id, register, mark[0]))
        else:
            cursor.execute('SELECT read_at, value_e4 FROM dh_reading WHERE '
                f'meter = {p} AND register = {p} AND read_at > {p} '
                f'AND read_at <= {p} ORDER BY read_at',
                (meter.id, register, mark[0], until))
        rows = [(_dt(t), v) for t, v in cursor]
        if not rows:
            return [], None
        sequence = [(_dt(mark[0]), mark[1])] + rows
        entries = cls._price_sequence(meter, register, tariff, sequence, tz)
        return entries, sequence[-1]

    @classmethod
    def start_billing(cls, meters, at):
        """Bill from the first reading at or after ``at`` (naive UTC): the
        watermark is set there"""
        cursor = Transaction().connection.cursor()
        p = '%s' if backend.name == 'postgresql' else '?'
        for meter in meters:
            registers = [billed_register(meter)] + (TOU_REGISTERS
                if meter.utility != 'water' else [])
            for register in registers:
                cursor.execute('SELECT read_at, value_e4 FROM dh_reading '
                    f'WHERE meter = {p} AND register = {p} AND read_at >= '
                    f'{p} ORDER BY read_at LIMIT 1', (meter.id, register, at))
                row = cursor.fetchone()
                cursor.execute('DELETE FROM dh_billing_mark WHERE meter = '
                    f'{p} AND register = {p}', (meter.id, register))
                if row:
                    cursor.execute('INSERT INTO dh_billing_mark (meter, '
                        'register, read_at, value_e4) VALUES '
                        f'({p}, {p}, {p}, {p})', (meter.id, register, *row))

    @classmethod
    def _price_sequence(cls, meter, register, tariff, sequence, tz):
        multiplier = Decimal(meter.multiplier or 1)
        totals = defaultdict(Decimal)
        for (t0, v0), (t1, v1) in zip(sequence, sequence[1:]):
            delta, _ = step(v0, v1)
            kwh = Decimal(delta) / E4 * multiplier
            if not kwh:
                continue
            if register in TOU_REGISTERS:
                totals[register] += kwh
            elif tariff.kind == 'tou':
                start = t0.replace(tzinfo=UTC).astimezone(tz).replace(
                    tzinfo=None)
                end = t1.replace(tzinfo=UTC).astimezone(tz).replace(
                    tzinfo=None)
                for band, part in rules.split_interval(tariff, start, end,
                        rules.energy(kwh)).items():
                    totals[band] += part
            else:
                totals[register] += kwh
        if not totals:
            return []
        override = meter.unit_price if meter.unit_price else None
        deltas = {k: rules.energy(v) for k, v in totals.items() if v}
        month_to_date = None
        if tariff.tiers and not override:
            month_to_date = max(Decimal(0), cls._month_usage(meter,
                    register, sequence[-1][0], tz) - sum(deltas.values()))
        lines = rules.bill_registers(tariff, deltas, override_price=override,
            month_to_date_kwh=month_to_date)
        end = sequence[-1][0]
        return [{'kind': 'consumption', 'amount': -line.amount,
                'energy': line.energy, 'unit_price': line.price,
                'register': line.register, 'meter': meter.id,
                'utility': meter.utility,
                'reference': f'{sequence[0][0]:%Y-%m-%d %H:%M}~'
                f'{end:%Y-%m-%d %H:%M}'}
            for line in lines if line.amount]

    @classmethod
    def _month_usage(cls, meter, register, at, tz):
        "The meter's usage this (local) month, from the monthly aggregate"
        cursor = Transaction().connection.cursor()
        p = '%s' if backend.name == 'postgresql' else '?'
        local = at.replace(tzinfo=UTC).astimezone(tz)
        month = local.date().replace(day=1)
        cursor.execute('SELECT usage_e4 FROM dh_usage_month WHERE meter = '
            f'{p} AND register = {p} AND period = {p}',
            (meter.id, register, month))
        row = cursor.fetchone()
        return Decimal(row[0]) / E4 if row else Decimal(0)

    # -- meter replacement (换表) ---------------------------------------------
    @classmethod
    def replace(cls, old, values, final, opening, at=None, note=None):
        """Billing stays continuous: the old meter is billed up to its
        final reading (once: its watermark), the new one from its opening
        reading on (its watermark is set there)"""
        new = super().replace(old, values, final, opening, at=at, note=note)
        old = cls(old.id)
        cls.bill([old])
        cls.start_billing([new], old.replaced_at)
        return new

    # -- supply control -----------------------------------------------------
    @classmethod
    def control_supply(cls, meters, balance, emergency_credit,
            force_trip=False):
        """Queue trip / close commands as the control mode and the balance
        say (a meter already in that relay state, or with that command
        open, gets nothing)."""
        pool = Pool()
        Command = pool.get('dh.command')
        Config = pool.get('dh.billing.configuration')
        windows, holidays = Config(1).no_cut_windows()
        now = dt.datetime.now(UTC).astimezone(local_timezone()).replace(
            tzinfo=None)
        trip, close = [], []
        for meter in meters:
            if meter.billing_mode != 'cash' and not force_trip:
                continue
            if force_trip:
                want_open = meter.control_mode != 'always_on'
            else:
                want_open = rules.trip_allowed(balance, emergency_credit,
                    meter.control_mode, now, windows, holidays)
                if meter.control_mode == 'always_on':
                    want_open = False
            if want_open and meter.relay != 'open':
                trip.append(meter)
            elif (not want_open and meter.relay == 'open'
                    and (balance > 0 or meter.control_mode in {
                            'always_on', 'controlled_no_cut'})):
                close.append(meter)
        if trip:
            Command.queue(trip, 'trip', reference='arrears')
        if close:
            Command.queue(close, 'close', reference='recharge')
        return trip, close


def _dt(value):
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


class Reading(metaclass=PoolMeta):
    __name__ = 'dh.meter.reading'

    @classmethod
    def ingested(cls, rows):
        "Bill the cash-mode meters that got new readings"
        super().ingested(rows)
        Meter = Pool().get('dh.meter')
        remaining = {r[0]: r[3] for r in rows if r[1] == 'remaining_energy'}
        if remaining:
            table = Meter.__table__()
            cursor = Transaction().connection.cursor()
            for meter_id, value in remaining.items():
                cursor.execute(*table.update([table.remaining],
                        [Decimal(value) / E4], where=(table.id == meter_id)
                        & (table.billing_mode == 'energy')))
        ids = sorted({r[0] for r in rows})
        if ids and not Transaction().context.get('dh_no_billing'):
            # ids, then records by chunks: a search or browse of a whole
            # batch (50,000 meters) is quadratic in Tryton
            meters = storage.browse(Meter, storage.search_ids(Meter, [
                        ('id', 'in', ids),
                        ('billing_mode', '=', 'cash'),
                        ['OR', ('wallet', '!=', None),
                            ('master.wallet', '!=', None)]]))
            Meter.bill(meters)


class Command(metaclass=PoolMeta):
    __name__ = 'dh.command'

    @classmethod
    def report(cls, command_id, state, error=None, result=None):
        new_state = super().report(command_id, state, error, result)
        command = cls(command_id)
        if command.kind == 'recharge' and new_state in {'confirmed',
                'failed'}:
            Pool().get('dh.recharge').command_done(command)
        elif command.kind == 'clear':
            Pool().get('dh.meter.clear').command_news(command, result)
        return new_state

    @classmethod
    @ModelView.button
    def cancel(cls, commands):
        super().cancel(commands)
        pool = Pool()
        for command in cls.browse(commands):
            if command.kind == 'recharge':
                pool.get('dh.recharge').command_done(command)
            elif command.kind == 'clear':
                pool.get('dh.meter.clear').command_news(command)

    @classmethod
    def cron_expire(cls):
        expired = cls.search([('state', 'in', ['queued', 'sent']),
                ('kind', 'in', ['recharge', 'clear']),
                ('expires_at', '<=', dt.datetime.now())])
        count = super().cron_expire()
        pool = Pool()
        for command in cls.browse(expired):
            if command.kind == 'recharge':
                pool.get('dh.recharge').command_done(command)
            else:
                pool.get('dh.meter.clear').command_news(command)
        return count
