# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Readings: the bulk ingest API and read-only models over the SQL-owned
reading and usage tables (storage.py).  The arithmetic is in usage.py."""
import datetime as dt
import logging
import math
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

from sql import Cast, Table

from trytond.config import config
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.transaction import Transaction

from . import storage
from .exceptions import IngestError
from .usage import (
    CUMULATIVE, E4, REGISTER_NAMES, REGISTERS, periods, scale, to_e4,
    usage_changes)

logger = logging.getLogger(__name__)
UTC = dt.timezone.utc
AGG_TABLES = ('dh_usage_hour', 'dh_usage_day', 'dh_usage_month',
    'dh_usage_year')
AGG_COLUMNS = ('meter', 'register', 'period', 'usage_e4', 'last_e4',
    'last_at')
_NEWER = ('excluded.last_at IS NOT NULL AND '
    '(t.last_at IS NULL OR excluded.last_at > t.last_at)')
AGG_CONFLICT = (
    '(meter, register, period) DO UPDATE SET '
    'usage_e4 = t.usage_e4 + excluded.usage_e4, '
    f'last_e4 = CASE WHEN {_NEWER} THEN excluded.last_e4 ELSE t.last_e4 END, '
    f'last_at = CASE WHEN {_NEWER} THEN excluded.last_at ELSE t.last_at END')
LAST_CONFLICT = (
    '(meter, register) DO UPDATE SET read_at = excluded.read_at, '
    'value_e4 = excluded.value_e4 WHERE excluded.read_at > t.read_at')


def local_timezone():
    "The timezone that defines hours and days of usage (config [dh] timezone)"
    return ZoneInfo(config.get('dh', 'timezone', default='Asia/Shanghai'))


def _float(column):
    return (Cast(column, 'FLOAT') / E4)


class Reading(ModelSQL, ModelView):
    "A raw reading (read-only; written by ingest)"
    __name__ = 'dh.meter.reading'
    __string__ = "Reading"
    meter = fields.Many2One('dh.meter', "Meter", required=True, readonly=True)
    register = fields.Selection(REGISTERS, "Register", readonly=True)
    read_at = fields.DateTime("Read At", readonly=True)
    value = fields.Float("Value", digits=(16, 4), readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        cls._order = [('read_at', 'DESC'), ('id', 'DESC')]

    @classmethod
    def __register__(cls, module_name):
        super().__register__(module_name)
        storage.create_tables(Transaction().connection.cursor())

    @classmethod
    def table_query(cls):
        t = Table('dh_reading')
        meter_id = Transaction().context.get('meter')
        where = (t.meter == meter_id) if meter_id else None
        return t.select(t.id.as_('id'), t.meter.as_('meter'),
            t.register.as_('register'), t.read_at.as_('read_at'),
            _float(t.value_e4).as_('value'), where=where)

    # ---- ingest -----------------------------------------------------------
    @classmethod
    def ingest(cls, rows):
        """Store readings in bulk and keep usage aggregates current.

        ``rows``: iterable of (meter id, register, read_at, value); read_at a
        datetime (naive = UTC) or ISO string, value a number.  Idempotent on
        (meter, register, read_at): a reading sent again is counted as a
        duplicate, never stored twice.  Invalid input raises IngestError and
        writes nothing.  Returns counts."""
        transaction = Transaction()
        cursor = transaction.connection.cursor()
        clean, errors = cls._clean(rows)
        groups = defaultdict(dict)
        duplicates = 0
        for meter, register, read_at, value in clean:
            group = groups[meter, register]
            if read_at in group:
                duplicates += 1
                continue
            group[read_at] = value
        meter_ids = sorted({m for m, _ in groups})
        meters = cls._meter_info(cursor, meter_ids)
        for unknown in sorted(set(meter_ids) - set(meters))[:10]:
            errors.append(gettext('dh_metering.msg_ingest_unknown_meter',
                    meter=unknown))
        if errors:
            raise IngestError(gettext('dh_metering.msg_ingest_invalid',
                    count=len(errors), errors='\n'.join(errors[:10])))
        result = {'received': len(clean), 'inserted': 0,
            'duplicates': duplicates, 'resets': 0, 'rollovers': 0}
        if not groups:
            return result
        cls._lock_meters(cursor, meter_ids)
        last = cls._load_last(cursor, meter_ids)
        tz = local_timezone()
        period_cache = {}

        def period_keys(t):
            keys = period_cache.get(t)
            if keys is None:
                local = t.replace(tzinfo=UTC).astimezone(tz).replace(
                    tzinfo=None)
                hour, day, month, year = periods(local)
                # the hour is stored as the UTC instant it starts at
                hour = hour.replace(tzinfo=tz).astimezone(UTC).replace(
                    tzinfo=None)
                keys = period_cache[t] = (hour, day, month, year)
            return keys

        inserted = []
        aggregates = [dict() for _ in AGG_TABLES]
        last_updates = []
        main_updates = []
        # readings not newer than the last stored one: what is stored in
        # their time range, fetched for all of them at once
        late = {key: sorted(values) for key, values in groups.items()
            if key in last and min(values) <= last[key][0]}
        stored_inside = cls._load_inside(cursor, late)
        for (meter, register), values in groups.items():
            new = sorted(values.items())
            previous = last.get((meter, register))
            if (meter, register) not in late:
                window = [previous] if previous else []
            else:
                stored = stored_inside.get((meter, register), {})
                fresh = [(t, v) for t, v in new if t not in stored]
                duplicates += len(new) - len(fresh)
                new = fresh
                if not new:
                    continue
                window = cls._load_window(cursor, meter, register,
                    new[0][0], new[-1][0], stored)
            inserted.extend((meter, register, t, v) for t, v in new)
            if register in CUMULATIVE:
                multiplier, main_register = meters[meter]
                changes, events = usage_changes(window, new)
                for _, event in events:
                    result[event + 's'] += 1
                    logger.info('meter %s %s: %s', meter, register, event)
                for t, delta in changes.items():
                    delta = scale(delta, multiplier)
                    for agg, key in zip(aggregates, period_keys(t)):
                        entry = agg.get((meter, register, key))
                        if entry is None:
                            entry = agg[meter, register, key] = [0, None, None]
                        entry[0] += delta
                for t, v in new:
                    for agg, key in zip(aggregates, period_keys(t)):
                        entry = agg.get((meter, register, key))
                        if entry is None:
                            entry = agg[meter, register, key] = [0, None, None]
                        if entry[2] is None or t > entry[2]:
                            entry[1], entry[2] = v, t
            newest_t, newest_v = new[-1]
            if previous is None or newest_t > previous[0]:
                last_updates.append((meter, register, newest_t, newest_v))
                if register == meters[meter][1]:
                    main_updates.append(
                        (newest_v / E4, newest_t, meter, newest_t))
        result['duplicates'] = duplicates
        result['inserted'] = len(inserted)
        if not inserted:
            return result
        database = transaction.database.name
        db = storage.time_formatter()
        if storage.is_postgresql():
            storage.ensure_partitions(cursor, database, 'dh_reading',
                {storage.month_start(r[2]) for r in inserted})
            storage.ensure_partitions(cursor, database, 'dh_usage_hour',
                {storage.month_start(k[2]) for k in aggregates[0]})
        storage.bulk_upsert(cursor, 'dh_reading',
            ('meter', 'register', 'read_at', 'value_e4'),
            [(m, r, db(t), v) for m, r, t, v in inserted],
            '(meter, register, read_at) DO NOTHING')
        for table, agg in zip(AGG_TABLES, aggregates):
            storage.bulk_upsert(cursor, table, AGG_COLUMNS,
                [(m, r, db(p), u, v, db(t))
                    for (m, r, p), (u, v, t) in agg.items()], AGG_CONFLICT)
        storage.bulk_upsert(cursor, 'dh_reading_last',
            ('meter', 'register', 'read_at', 'value_e4'),
            [(m, r, db(t), v) for m, r, t, v in last_updates], LAST_CONFLICT)
        if main_updates:
            p = storage.param()
            cursor.executemany(
                f'UPDATE dh_meter SET last_value = {p}, last_read_at = {p} '
                f'WHERE id = {p} AND (last_read_at IS NULL '
                f'OR last_read_at <= {p})',
                [(v, db(t), m, db(t2)) for v, t, m, t2 in main_updates])
            storage.forget_records('dh.meter')
        cls.ingested(inserted)
        return result

    @classmethod
    def ingested(cls, rows):
        """Called after each ingest with the newly stored rows
        [(meter, register, read_at, value_e4)]: billing and alarms extend
        it."""

    @classmethod
    def _clean(cls, rows):
        clean, errors = [], []
        for index, row in enumerate(rows):
            try:
                meter, register, read_at, value = row
                if not isinstance(meter, int) or meter <= 0:
                    raise ValueError(f'meter {meter!r}')
                if register not in REGISTER_NAMES:
                    raise ValueError(f'register {register!r}')
                if isinstance(read_at, str):
                    read_at = dt.datetime.fromisoformat(read_at)
                if not isinstance(read_at, dt.datetime):
                    raise ValueError(f'time {read_at!r}')
                if read_at.tzinfo is not None:
                    read_at = read_at.astimezone(UTC).replace(tzinfo=None)
                read_at = read_at.replace(microsecond=0)
                if isinstance(value, bool) or value is None:
                    raise ValueError(f'value {value!r}')
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f'value {value!r}')
                value = to_e4(value)
                if register in CUMULATIVE and value < 0:
                    raise ValueError(f'negative {register} {value / E4}')
                clean.append((meter, register, read_at, value))
            except (ValueError, TypeError, ArithmeticError) as exception:
                errors.append(gettext('dh_metering.msg_ingest_row',
                        row=index + 1, reason=str(exception)))
        return clean, errors

    @classmethod
    def _meter_info(cls, cursor, meter_ids):
        from .meter import MAIN_REGISTER
        meter = Pool().get('dh.meter').__table__()
        info = {}
        for i in range(0, len(meter_ids), 1000):
            cursor.execute(*meter.select(meter.id, meter.multiplier,
                    meter.utility,
                    where=meter.id.in_(meter_ids[i:i + 1000])))
            for id_, multiplier, utility in cursor:
                if not isinstance(multiplier, Decimal):
                    multiplier = Decimal(str(multiplier or 1))
                if multiplier == multiplier.to_integral_value():
                    multiplier = int(multiplier)
                info[id_] = (multiplier, MAIN_REGISTER.get(utility))
        return info

    @classmethod
    def _lock_meters(cls, cursor, meter_ids):
        "Serialise concurrent ingests of the same meters (PostgreSQL)"
        if storage.is_postgresql():
            for i in range(0, len(meter_ids), 5000):
                cursor.execute('SELECT id FROM dh_meter WHERE id = ANY(%s) '
                    'ORDER BY id FOR UPDATE', (meter_ids[i:i + 5000],))

    @classmethod
    def _load_last(cls, cursor, meter_ids):
        last = {}
        p = storage.param()
        for i in range(0, len(meter_ids), 500):
            chunk = meter_ids[i:i + 500]
            cursor.execute(
                'SELECT meter, register, read_at, value_e4 '
                f'FROM dh_reading_last WHERE meter IN '
                f'({", ".join([p] * len(chunk))})', chunk)
            for meter, register, read_at, value in cursor:
                last[meter, register] = (_datetime(read_at), value)
        return last

    @classmethod
    def _load_inside(cls, cursor, groups):
        """{(meter, register): {read_at: value}} stored between the first
        and last time of each group (one query per 500 meters)"""
        result = defaultdict(dict)
        if not groups:
            return result
        p = storage.param()
        first = min(times[0] for times in groups.values())
        last = max(times[-1] for times in groups.values())
        meters = sorted({m for m, _ in groups})
        for i in range(0, len(meters), 500):
            chunk = meters[i:i + 500]
            cursor.execute(
                'SELECT meter, register, read_at, value_e4 FROM dh_reading '
                f'WHERE meter IN ({", ".join([p] * len(chunk))}) '
                f'AND read_at >= {p} AND read_at <= {p}',
                chunk + [first, last])
            for meter, register, read_at, value in cursor:
                key = (meter, register)
                times = groups.get(key)
                read_at = _datetime(read_at)
                if times and times[0] <= read_at <= times[-1]:
                    result[key][read_at] = value
        return result

    @classmethod
    def _load_window(cls, cursor, meter, register, first, last, inside):
        """Stored readings around [first, last] (see usage.usage_changes):
        those inside plus the one before and the one after"""
        p = storage.param()
        base = ('SELECT read_at, value_e4 FROM dh_reading '
            f'WHERE meter = {p} AND register = {p} AND ')
        cursor.execute(base + f'read_at < {p} ORDER BY read_at DESC LIMIT 1',
            (meter, register, first))
        before = [(_datetime(t), v) for t, v in cursor]
        cursor.execute(base + f'read_at > {p} ORDER BY read_at LIMIT 1',
            (meter, register, last))
        after = [(_datetime(t), v) for t, v in cursor]
        return sorted(before + list(inside.items()) + after)


def _datetime(value):
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


class _UsageMixin:
    __slots__ = ()
    _usage_table = None
    meter = fields.Many2One('dh.meter', "Meter", required=True, readonly=True)
    register = fields.Selection(REGISTERS, "Register", readonly=True)
    usage = fields.Float("Usage", digits=(16, 2), readonly=True,
        help="Register difference × multiplier.")
    last_value = fields.Float("Reading", digits=(16, 2), readonly=True,
        help="The last reading of the period.")
    last_at = fields.DateTime("Read At", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        cls._order = [('period', 'DESC'), ('id', 'DESC')]

    @classmethod
    def table_query(cls):
        t = Table(cls._usage_table)
        meter_id = Transaction().context.get('meter')
        where = (t.meter == meter_id) if meter_id else None
        return t.select(t.id.as_('id'), t.meter.as_('meter'),
            t.register.as_('register'), t.period.as_('period'),
            _float(t.usage_e4).as_('usage'),
            _float(t.last_e4).as_('last_value'),
            t.last_at.as_('last_at'), where=where)


class UsageHour(_UsageMixin, ModelSQL, ModelView):
    "Hourly usage"
    __name__ = 'dh.usage.hour'
    __string__ = "Hourly Usage"
    _usage_table = 'dh_usage_hour'
    period = fields.DateTime("Hour", readonly=True)


class UsageDay(_UsageMixin, ModelSQL, ModelView):
    "Daily usage"
    __name__ = 'dh.usage.day'
    __string__ = "Daily Usage"
    _usage_table = 'dh_usage_day'
    period = fields.Date("Day", readonly=True)


class UsageMonth(_UsageMixin, ModelSQL, ModelView):
    "Monthly usage"
    __name__ = 'dh.usage.month'
    __string__ = "Monthly Usage"
    _usage_table = 'dh_usage_month'
    period = fields.Date("Month", readonly=True)


class UsageYear(_UsageMixin, ModelSQL, ModelView):
    "Yearly usage"
    __name__ = 'dh.usage.year'
    __string__ = "Yearly Usage"
    _usage_table = 'dh_usage_year'
    period = fields.Date("Year", readonly=True)
