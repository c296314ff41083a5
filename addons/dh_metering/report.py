# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The product's reading reports: daily matrix (日用量) and usage report
(用量报表, by day, between two dates, by month or by year).  The current data
screen (当前数据) is a list view of dh.meter itself."""
import datetime as dt

from sql import Cast, Column, Lateral, Literal, Null, Table, Window
from sql.aggregate import Sum
from sql.conditionals import Case
from sql.functions import RowNumber

from trytond import backend
from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .reading import _float, local_timezone
from .usage import REGISTERS

REGISTER_UTILITIES = {
    'water_flow': ['water'],
    'ac_runtime': ['ac_indoor'],
    'ac_capacity': ['ac_indoor'],
    }
MONTHS = [(str(i), str(i)) for i in range(1, 13)]


def register_utilities(register):
    return REGISTER_UTILITIES.get(register, ['electricity', 'ac_outdoor'])


def month_bounds(year, month):
    start = dt.date(year, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


class _MeterColumns:
    "Meter columns shared by the report models"
    __slots__ = ()
    meter = fields.Many2One('dh.meter', "Meter", required=True, readonly=True)
    number = fields.Char("Number", readonly=True)
    level1 = fields.Char("Level 1", readonly=True)
    level2 = fields.Char("Level 2", readonly=True)
    level3 = fields.Char("Level 3", readonly=True)
    level4 = fields.Char("Level 4", readonly=True)
    name = fields.Char("User Name", readonly=True)
    address = fields.Char("Meter Address", readonly=True)
    multiplier = fields.Float("Multiplier", digits=(16, 2), readonly=True)
    register = fields.Selection(REGISTERS, "Register", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        cls._order = [('number', 'ASC'), ('id', 'ASC')]

    @classmethod
    def _meter_columns(cls, meter, register):
        return [meter.id.as_('id'), meter.id.as_('meter'),
            meter.number.as_('number'),
            meter.level1.as_('level1'), meter.level2.as_('level2'),
            meter.level3.as_('level3'), meter.level4.as_('level4'),
            meter.name.as_('name'), meter.address.as_('address'),
            Cast(meter.multiplier, "FLOAT").as_("multiplier"),
            Literal(register).as_('register')]

    @classmethod
    def _meter_where(cls, meter, register, since=None):
        """The meters a report lists: the active ones, and those replaced
        (换表) at or after ``since`` (the period's start), so a room's old
        and new meter both show for the period of the swap"""
        active = meter.active == Literal(True)
        if since is not None:
            # the period's local start as naive UTC, as replaced_at is
            start = dt.datetime.combine(since, dt.time()).replace(
                tzinfo=local_timezone()).astimezone(dt.timezone.utc).replace(
                tzinfo=None)
            active |= (meter.replaced_at != Null) & (
                meter.replaced_at > start)
        return meter.utility.in_(register_utilities(register)) & active


class MatrixContext(ModelView):
    __name__ = 'dh.report.matrix.context'
    __string__ = "Daily Matrix Context"
    year = fields.Integer("Year", required=True)
    month = fields.Selection(MONTHS, "Month", required=True, sort=False)
    register = fields.Selection(REGISTERS, "Register", required=True)

    @classmethod
    def default_year(cls):
        return Transaction().context.get('year') or dt.date.today().year

    @classmethod
    def default_month(cls):
        return Transaction().context.get('month') or str(dt.date.today().month)

    @classmethod
    def default_register(cls):
        return Transaction().context.get('register') or 'energy_total'


class DailyMatrix(_MeterColumns, ModelSQL, ModelView):
    "Daily usage of every meter over one month, one column a day (日用量)"
    __name__ = 'dh.report.daily_matrix'
    __string__ = "Daily Usage Matrix"
    total = fields.Float("Total", digits=(16, 2), readonly=True)
    for _day in range(1, 32):
        locals()[f'd{_day:02d}'] = fields.Float(
            f"Day {_day}", digits=(16, 2), readonly=True)
    del _day

    @classmethod
    def criteria(cls):
        context = Transaction().context
        today = dt.date.today()
        year = int(context.get('year') or today.year)
        month = int(context.get('month') or today.month)
        register = context.get('register') or 'energy_total'
        return year, month, register

    @classmethod
    def table_query(cls):
        Meter = Pool().get('dh.meter')
        meter = Meter.__table__()
        day = Table('dh_usage_day')
        year, month, register = cls.criteria()
        start, end = month_bounds(year, month)
        condition = ((day.meter == meter.id) & (day.register == register)
            & (day.period >= start) & (day.period < end))
        sums, names = [], []
        current = start
        while current < end:
            names.append(f'd{current.day:02d}')
            sums.append(Sum(Case((day.period == current, day.usage_e4),
                        else_=Null)).as_(names[-1]))
            current += dt.timedelta(days=1)
        names.append('total')
        sums.append(Sum(day.usage_e4).as_('total'))
        columns = cls._meter_columns(meter, register)
        if backend.name == 'postgresql':
            # one meter's month at a time (LATERAL), no GROUP BY over all
            # meters: ORDER BY number LIMIT 100 (the first page) walks the
            # number index and sums 100 meters' days, a filter on the
            # meter columns applies before any sum — the cost is that of
            # the rows shown, not of every meter (bench scale)
            days = Lateral(day.select(*sums, where=condition))
            join = meter.join(days, 'LEFT', condition=Literal(True))
            sums = [_float(Column(days, n)).as_(n) for n in names]
            group_by = None
        else:
            join = meter.join(day, 'LEFT', condition=condition)
            sums = [_float(s.expression).as_(n) for s, n in zip(sums, names)]
            group_by = [meter.id]
        columns += sums[:-1]
        for d in range((end - start).days + 1, 32):
            columns.append(Literal(None).as_(f'd{d:02d}'))
        columns.append(sums[-1])
        return join.select(*columns,
            where=cls._meter_where(meter, register, start),
            group_by=group_by)


class UsageContext(ModelView):
    __name__ = 'dh.report.usage.context'
    __string__ = "Usage Report Context"
    granularity = fields.Selection([
            ('day', "Days"),
            ('month', "Months"),
            ('year', "Years"),
            ], "By", required=True)
    from_date = fields.Date("From", required=True,
        domain=[('from_date', '<=', Eval('to_date'))])
    to_date = fields.Date("To", required=True,
        domain=[('to_date', '>=', Eval('from_date'))])
    register = fields.Selection(REGISTERS, "Register", required=True)

    @classmethod
    def default_granularity(cls):
        return Transaction().context.get('granularity') or 'day'

    @classmethod
    def default_from_date(cls):
        return (Transaction().context.get('from_date')
            or dt.date.today() - dt.timedelta(days=1))

    @classmethod
    def default_to_date(cls):
        return (Transaction().context.get('to_date')
            or dt.date.today() - dt.timedelta(days=1))

    @classmethod
    def default_register(cls):
        return Transaction().context.get('register') or 'energy_total'


class UsageReport(_MeterColumns, ModelSQL, ModelView):
    """本次读数 / 本次时间 / 用量 / 上次读数 / 上次时间 / 倍率 per meter for a
    day, two dates, months or years"""
    __name__ = 'dh.report.usage'
    __string__ = "Usage Report"
    current_value = fields.Float("Current Reading", digits=(16, 2),
        readonly=True)
    current_at = fields.DateTime("Current Time", readonly=True)
    usage = fields.Float("Usage", digits=(16, 2), readonly=True,
        help="Register difference × multiplier.")
    previous_value = fields.Float("Previous Reading", digits=(16, 2),
        readonly=True)
    previous_at = fields.DateTime("Previous Time", readonly=True)

    TABLES = {'day': 'dh_usage_day', 'month': 'dh_usage_month',
        'year': 'dh_usage_year'}
    LOOKBACK = {'day': 400, 'month': 800, 'year': 3700}

    @classmethod
    def criteria(cls):
        context = Transaction().context
        yesterday = dt.date.today() - dt.timedelta(days=1)
        granularity = context.get('granularity') or 'day'
        if granularity not in cls.TABLES:
            granularity = 'day'
        from_date = _date(context.get('from_date')) or yesterday
        to_date = _date(context.get('to_date')) or from_date
        if to_date < from_date:
            from_date, to_date = to_date, from_date
        register = context.get('register') or 'energy_total'
        if granularity == 'month':
            from_date, to_date = from_date.replace(day=1), to_date.replace(
                day=1)
        elif granularity == 'year':
            from_date = from_date.replace(month=1, day=1)
            to_date = to_date.replace(month=1, day=1)
        return granularity, from_date, to_date, register

    @classmethod
    def table_query(cls):
        Meter = Pool().get('dh.meter')
        meter = Meter.__table__()
        granularity, from_date, to_date, register = cls.criteria()
        table = cls.TABLES[granularity]
        lookback = from_date - dt.timedelta(days=cls.LOOKBACK[granularity])

        usage_t = Table(table)
        usage = usage_t.select(usage_t.meter.as_('meter'),
            Sum(usage_t.usage_e4).as_('usage_e4'),
            where=(usage_t.register == register)
            & (usage_t.period >= from_date) & (usage_t.period <= to_date),
            group_by=[usage_t.meter])

        def last_reading(upper, strict):
            t = Table(table)
            cond = (t.period < upper) if strict else (t.period <= upper)
            ranked = t.select(t.meter.as_('meter'), t.last_e4.as_('last_e4'),
                t.last_at.as_('last_at'),
                RowNumber(window=Window([t.meter],
                        order_by=[t.period.desc])).as_('rank'),
                where=(t.register == register) & cond
                & (t.period >= lookback) & (t.last_at != Null))
            return ranked.select(ranked.meter, ranked.last_e4,
                ranked.last_at, where=ranked.rank == 1)

        current = last_reading(to_date, False)
        previous = last_reading(from_date, True)
        join = (meter
            .join(usage, 'LEFT', condition=usage.meter == meter.id)
            .join(current, 'LEFT', condition=current.meter == meter.id)
            .join(previous, 'LEFT', condition=previous.meter == meter.id))
        return join.select(*cls._meter_columns(meter, register),
            _float(current.last_e4).as_('current_value'),
            current.last_at.as_('current_at'),
            _float(usage.usage_e4).as_('usage'),
            _float(previous.last_e4).as_('previous_value'),
            previous.last_at.as_('previous_at'),
            where=cls._meter_where(meter, register, from_date))


def _date(value):
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        return value.date()
    return value
