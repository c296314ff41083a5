# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""SQL-owned tables for readings and usage aggregates.

Tryton ORM tables have an ``id`` primary key, so PostgreSQL cannot partition
them by time.  Readings and hourly usage therefore live in tables this module
creates itself: range-partitioned by month on PostgreSQL (partitions created
on demand, BRIN index on time), plain tables on SQLite.  Read-only
``table_query`` models expose them to Tryton (reading.py), always for one
meter: their ``id`` column is not indexed (a read by id without the meter in
the context scans the table).
"""
import datetime as dt
import zlib

from trytond import backend

# table -> (period column, partitioned on PostgreSQL)
AGGREGATES = {
    'dh_usage_hour': ('TIMESTAMP', True),
    'dh_usage_day': ('DATE', False),
    'dh_usage_month': ('DATE', False),
    'dh_usage_year': ('DATE', False),
    }
PARTITIONED = ('dh_reading', 'dh_usage_hour')



def forget_records(*model_names):
    """Drop the transaction's cached records of these models: after their
    table was written with SQL, the next read must see the new values"""
    from trytond.transaction import Transaction
    for cache in Transaction().cache.values():
        for name in model_names:
            if name in cache:
                cache[name].clear()


def browse(Model, ids, size=500):
    """Records of ``ids``, browsed by chunks of ``size``: every record
    Tryton's browse makes checks the whole id list it was browsed with
    (``assert id in _ids``), so one browse of N ids costs N² — minutes for
    100,000 meters"""
    ids = list(ids)
    records = []
    for i in range(0, len(ids), size):
        records.extend(Model.browse(ids[i:i + size]))
    return records


def search_ids(Model, domain):
    "The ids matching ``domain`` (rules applied), without browsing them"
    from trytond.transaction import Transaction
    cursor = Transaction().connection.cursor()
    cursor.execute(*Model.search(domain, query=True))
    return [i for i, in cursor]


def is_postgresql():
    return backend.name == 'postgresql'


def param():
    return '%s' if is_postgresql() else '?'


def create_tables(cursor):
    if is_postgresql():
        _create_postgresql(cursor)
    else:
        _create_sqlite(cursor)


def _create_sqlite(cursor):
    cursor.execute(
        'CREATE TABLE IF NOT EXISTS dh_reading ('
        'id INTEGER PRIMARY KEY AUTOINCREMENT, '
        'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
        'read_at TIMESTAMP NOT NULL, value_e4 BIGINT NOT NULL, '
        'UNIQUE (meter, register, read_at))')
    cursor.execute(
        'CREATE TABLE IF NOT EXISTS dh_reading_last ('
        'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
        'read_at TIMESTAMP NOT NULL, value_e4 BIGINT NOT NULL, '
        'PRIMARY KEY (meter, register))')
    for table, (period_type, _) in AGGREGATES.items():
        cursor.execute(
            f'CREATE TABLE IF NOT EXISTS {table} ('
            'id INTEGER PRIMARY KEY AUTOINCREMENT, '
            'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
            f'period {period_type} NOT NULL, '
            'usage_e4 BIGINT NOT NULL DEFAULT 0, '
            'last_e4 BIGINT, last_at TIMESTAMP, '
            'UNIQUE (meter, register, period))')
        if table != 'dh_usage_hour':
            # reports across meters by period; hours are read per meter
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS {table}_period_idx '
                f'ON {table} (register, period)')


def _create_postgresql(cursor):
    cursor.execute('CREATE SEQUENCE IF NOT EXISTS dh_reading_id_seq')
    cursor.execute(
        'CREATE TABLE IF NOT EXISTS dh_reading ('
        "id BIGINT NOT NULL DEFAULT nextval('dh_reading_id_seq'), "
        'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
        'read_at TIMESTAMP NOT NULL, value_e4 BIGINT NOT NULL, '
        'PRIMARY KEY (meter, register, read_at)) '
        'PARTITION BY RANGE (read_at)')
    cursor.execute(
        'CREATE INDEX IF NOT EXISTS dh_reading_read_at_brin '
        'ON dh_reading USING brin (read_at)')
    cursor.execute(
        'CREATE TABLE IF NOT EXISTS dh_reading_last ('
        'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
        'read_at TIMESTAMP NOT NULL, value_e4 BIGINT NOT NULL, '
        'PRIMARY KEY (meter, register))')
    for table, (period_type, partitioned) in AGGREGATES.items():
        cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS {table}_id_seq')
        columns = (
            f"id BIGINT NOT NULL DEFAULT nextval('{table}_id_seq'), "
            'meter INTEGER NOT NULL, register VARCHAR NOT NULL, '
            f'period {period_type} NOT NULL, '
            'usage_e4 BIGINT NOT NULL DEFAULT 0, '
            'last_e4 BIGINT, last_at TIMESTAMP, '
            'PRIMARY KEY (meter, register, period)')
        if partitioned:
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS {table} ({columns}) '
                'PARTITION BY RANGE (period)')
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS {table}_period_brin '
                f'ON {table} USING brin (period)')
        else:
            cursor.execute(f'CREATE TABLE IF NOT EXISTS {table} ({columns})')
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS {table}_period_idx '
                f'ON {table} (register, period, meter)')
    # No index on id: the ORM reaches these tables only through the
    # table_query models, always for one meter (context 'meter', see
    # reading.py), where the primary key (meter, …) finds the rows.  An id
    # index cost ~22 B a row (a sixth of a reading) and one more index
    # write per row on ingest (bench scale, BENCHMARKS.md).
    for table in ('dh_reading', *AGGREGATES):
        cursor.execute(f'DROP INDEX IF EXISTS {table}_id_idx')


def time_formatter():
    """A function giving a date / datetime as the backend stores it: on
    SQLite the ISO text Tryton's adapters write, computed once per distinct
    value (a batch repeats the same hours for every meter); PostgreSQL takes
    the objects as they are."""
    if is_postgresql():
        return lambda value: value
    cache = {None: None}

    def format_(value):
        try:
            return cache[value]
        except KeyError:
            text = cache[value] = (value.isoformat(' ')
                if isinstance(value, dt.datetime) else value.isoformat())
            return text
    return format_


def month_start(value):
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.replace(day=1)


def ensure_partitions(cursor, database_name, table, months):
    """Create the monthly partitions of ``table`` for the given month starts.

    The catalogue is asked every time (one query a batch): a cache in the
    process would outlive a rolled-back transaction that created one."""
    if not is_postgresql() or not months:
        return
    names = {f'{table}_p{m:%Y%m}': m for m in months}
    cursor.execute('SELECT relname FROM pg_class WHERE relname = ANY(%s)',
        (list(names),))
    missing = set(names) - {n for n, in cursor}
    for name in sorted(missing):
        month = names[name]
        end = (month + dt.timedelta(days=32)).replace(day=1)
        # serialise concurrent creators of the same partition
        cursor.execute('SELECT pg_advisory_xact_lock(%s)',
            (zlib.crc32(name.encode()),))
        cursor.execute(
            f'CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} '
            f"FOR VALUES FROM ('{month:%Y-%m-%d}') TO ('{end:%Y-%m-%d}')")


def bulk_upsert(cursor, table, columns, rows, conflict):
    """Insert rows (list of tuples) into ``table``; ``conflict`` is the SQL
    after ``ON CONFLICT`` (``(…) DO NOTHING`` or ``(…) DO UPDATE SET …``).

    SQLite: executemany.  PostgreSQL: COPY into a temporary staging table,
    then one INSERT … SELECT … ON CONFLICT."""
    if not rows:
        return
    cols = ', '.join(columns)
    if is_postgresql():
        stage = f'dh_stage_{table}'
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS {stage} '
            f'(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS')
        cursor.execute(f'TRUNCATE {stage}')
        with cursor.copy(f'COPY {stage} ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f'INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {stage} '
            f'ON CONFLICT {conflict}')
    else:
        marks = ', '.join('?' * len(columns))
        cursor.executemany(
            f'INSERT INTO {table} AS t ({cols}) VALUES ({marks}) '
            f'ON CONFLICT {conflict}', rows)
