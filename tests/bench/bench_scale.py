"""A million meters on PostgreSQL (issue 8): size of the stored history
and the cost of the daily operations at that size.

  dh bench scale [--meters 1000000] [--days 31] [--hourly-days N]
                 [--per-wallet 100] [--bill 2000,10000] [--clients 50]
                 [--seconds 20] [--name dh_bench_scale] [--keep]
                 [--max-gb 35] [--build-only | --reuse]
                 [--phases ingest,billing,report,api] [--ingest-meters N]

Builds a fresh database (dh_api and what it depends on): meters spread
over communities (level-2 areas) of 10,000 meters, 10 buildings each, 100
meters a room; a month (``--days``) of daily, monthly and yearly aggregates
for every meter, and hourly readings (dh_reading plus the hourly aggregate
dh_usage_hour, monthly partitions) for the first ``--hourly-days`` days
(default: all of them).  The history is generated inside PostgreSQL
(INSERT … SELECT over generate_series, meter-major as a bulk import would
load it) — it is the setup, not a measured figure.  Then it measures:

* storage per meter-day: bytes of the hourly history (readings + hourly
  aggregate, heap + indexes) and of the daily aggregate, per meter and day;
* one more hourly round for every meter through ``dh.meter.reading.ingest``
  in batches of 50,000 (what the collector does), readings/s;
* billing that hour for the first ``--bill`` meters (two sizes: the
  per-meter cost and whether it stays flat), extrapolated to all;
* the daily matrix (日用量): the first page of 100 rows for all meters and
  every row of one level-2 area through the ORM, and the whole matrix as
  one SQL aggregate;
* the API balance query under ``--clients`` closed-loop clients (p99).

The history needs ~280 B per meter-hour (reading + hourly aggregate) and
~220 B per meter-day: 1M meters × 31 days of hours is ~215 GB.
``--max-gb`` refuses a run whose estimate is larger.  The database is
dropped at the end unless --keep (or --build-only, then measure with
--reuse).  Wall times depend on what else runs on the machine: the CPU
seconds of this process and of its PostgreSQL backends are reported next to
them and are what to compare between sizes.

Here (2 shared cores, ~80 GB of disk): ``dh bench scale --meters 1000000
--hourly-days 2`` (~20 GB, ~1 h to build).  See BENCHMARKS.md and
docs/sizing.md."""
import argparse
import datetime as dt
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_api  # noqa: E402
import dbutil  # noqa: E402

START = dt.datetime(2026, 10, 1)
PER_COMMUNITY = 10000
PER_ROOM = 100
HOUR_BYTES, DAY_BYTES = 280, 220  # measured, for --max-gb


def parse(args):
    parser = argparse.ArgumentParser(prog='dh bench scale')
    parser.add_argument('--meters', type=int, default=1000000)
    parser.add_argument('--days', type=int, default=31)
    parser.add_argument('--hourly-days', type=int, default=None)
    parser.add_argument('--per-wallet', type=int, default=100)
    parser.add_argument('--bill', default='2000,10000',
        help='two sizes of the billing run (meters), comma separated')
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--seconds', type=float, default=20)
    parser.add_argument('--name', default='dh_bench_scale')
    parser.add_argument('--max-gb', type=float, default=35)
    parser.add_argument('--keep', action='store_true')
    parser.add_argument('--skip-api', action='store_true')
    parser.add_argument('--phases', default='ingest,billing,report,api',
        help='measurements to run (billing needs the ingest before it)')
    parser.add_argument('--ingest-meters', type=int, default=None,
        help='ingest the new hour for the first N meters only (default: '
        'all; the rate is per reading either way)')
    parser.add_argument('--profile', metavar='PATH',
        help='cProfile the billing runs into PATH.billN')
    parser.add_argument('--build-only', action='store_true',
        help='build the database, report its size and keep it')
    parser.add_argument('--reuse', action='store_true',
        help='measure on the database a --build-only run left (same '
        '--meters, --days, --hourly-days)')
    options = parser.parse_args(args)
    if options.hourly_days is None:
        options.hourly_days = options.days
    options.hourly_days = min(options.hourly_days, options.days)
    options.bill = sorted(min(int(b), options.meters)
        for b in options.bill.split(',') if b)
    return options


def estimate_gb(options):
    return (options.meters * options.hourly_days * 24 * HOUR_BYTES
        + options.meters * options.days * DAY_BYTES) / 1e9


def run(args):
    options = parse(args)
    estimate = estimate_gb(options)
    if estimate > options.max_gb:
        raise SystemExit(f'dh bench scale: ~{estimate:.0f} GB needed, more '
            f'than --max-gb {options.max_gb:g}: lower --hourly-days')
    name = options.name
    port = bench_api.free_port()
    figures = {'meters': options.meters, 'days': options.days,
        'hourly_days': options.hourly_days, 'estimate_gb': round(estimate, 1),
        'date': dt.datetime.utcnow().isoformat(timespec='minutes'),
        'load_average_start': os.getloadavg()}
    t0 = time.perf_counter()
    extra = f'[web]\nlisten = 127.0.0.1:{port}\n'
    if options.reuse:
        folder = os.path.join(dbutil.VAR, 'bench')
        config = os.path.join(folder, f'{name}.conf')
        bench_api.write_config(config, dbutil.PG_URI, folder, extra)
        pool = dbutil.pool(config, name)
    else:
        config = bench_api.create('postgresql', name, extra)
        pool = dbutil.pool(config, name)
    keep = options.keep or options.build_only
    try:
        if options.reuse:
            meters = meter_ids(name)
        else:
            meters = seed(name, pool, options)
            figures['seed_seconds'] = round(time.perf_counter() - t0)
            t1 = time.perf_counter()
            history(name, options)
            figures['history_seconds'] = round(time.perf_counter() - t1)
        figures['storage'] = storage(name, options)
        phases = set(options.phases.split(','))
        if options.skip_api:
            phases.discard('api')
        if not options.build_only:
            if 'ingest' in phases:
                figures['ingest'] = ingest(name, pool, options, meters)
            if 'billing' in phases:
                figures['billing'] = billing(name, pool, options, meters)
            if 'report' in phases:
                figures['report'] = report(name, pool, options)
            if 'api' in phases:
                figures['api_balance'] = api(name, config, port, options)
            figures['storage_after'] = storage(name, options)
    except BaseException:
        keep = keep or options.reuse
        raise
    finally:
        if not keep:
            drop(name)
            for path in (config, os.path.join(os.path.dirname(config),
                        f'{name}.server.log')):
                if os.path.exists(path):
                    os.unlink(path)
    figures['load_average_end'] = os.getloadavg()
    figures['total_seconds'] = round(time.perf_counter() - t0)
    return figures


def drop(name):
    import psycopg
    from trytond.pool import Pool
    Pool.stop(name)
    from trytond import backend
    backend.Database(name).close()
    with psycopg.connect(dbutil.PG_URI + 'postgres', autocommit=True) as c:
        c.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
            'WHERE datname = %s AND pid <> pg_backend_pid()', (name,))
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')


class CPU:
    """CPU seconds spent by this process and by the database's server
    processes (PostgreSQL on this machine) between start and stop: a figure
    that other work on the same cores does not inflate, unlike wall time"""
    def __init__(self, name):
        self.name = name

    def backends(self):
        import psycopg
        with psycopg.connect(dbutil.PG_URI + 'postgres',
                autocommit=True) as conn:
            pids = [p for p, in conn.execute('SELECT pid FROM '
                    'pg_stat_activity WHERE datname = %s', (self.name,))]
        tick = os.sysconf('SC_CLK_TCK')
        result = {}
        for pid in pids:
            try:
                with open(f'/proc/{pid}/stat') as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
                result[pid] = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return result

    def __enter__(self):
        self.server0 = self.backends()
        self.client0 = time.process_time()
        self.wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.client = time.process_time() - self.client0
        after = self.backends()
        self.server = sum(v - self.server0.get(p, 0)
            for p, v in after.items())

    def figures(self, count=None, unit='row'):
        result = {'wall_s': round(self.wall, 2),
            'client_cpu_s': round(self.client, 2),
            'server_cpu_s': round(self.server, 2)}
        if count:
            result[f'cpu_ms_per_{unit}'] = round(
                (self.client + self.server) * 1000 / count, 4)
        return result


def meter_ids(name):
    from trytond.transaction import Transaction
    with Transaction().start(name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute("SELECT id FROM dh_meter WHERE number LIKE 'M%' "
            'ORDER BY id')
        return [i for i, in cursor]


def next_hour(name):
    "the hour after the last stored reading, as hours since START"
    from trytond.transaction import Transaction
    with Transaction().start(name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute('SELECT max(read_at) FROM dh_reading_last')
        last, = cursor.fetchone()
    return int((last - START).total_seconds() // 3600) + 1


# -- setup ------------------------------------------------------------------
def chunked_create(Model, values, size=500):
    "ORM create by chunks (one create of thousands is quadratic)"
    records = []
    for i in range(0, len(values), size):
        records += Model.create(values[i:i + size])
    return records


def seed(name, pool, options):
    """Areas, meters (SQL), wallets, a flat tariff and the API token;
    returns the meter ids in number order"""
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_api.token import hash_key
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_collector.collectd import run_in_transaction
    from trytond.transaction import Transaction
    company_id = run_in_transaction(name,
        lambda pool: setup_accounting().id, pool)
    n = options.meters
    communities = max(1, -(-n // PER_COMMUNITY))
    rooms_per_building = max(1, PER_COMMUNITY // PER_ROOM // 10)
    with Transaction().start(name, 0) as transaction:
        company = pool.get('company.company')(company_id)
        with set_company(company):
            Area = pool.get('dh.area')
            district, = Area.create([{'name': '规模片区', 'level': '1'}])
            l2 = chunked_create(Area, [{'name': f'小区{c:03d}', 'level': '2',
                        'parent': district.id} for c in range(communities)])
            l3 = chunked_create(Area, [{'name': f'{b + 1}栋', 'level': '3',
                        'parent': c.id} for c in l2 for b in range(10)])
            chunked_create(Area, [{'name': f'{r + 101}', 'level': '4',
                        'parent': b.id} for b in l3
                    for r in range(rooms_per_building)])
            tariff = flat_tariff('1.2')
            Party = pool.get('party.party')
            Wallet = pool.get('dh.wallet')
            n_wallets = max(1, n // options.per_wallet)
            parties = chunked_create(Party, [{'name': f'住户{i}'}
                    for i in range(n_wallets)])
            wallets = chunked_create(Wallet, [{'party': p.id,
                        'company': company_id} for p in parties])
            cursor = transaction.connection.cursor()
            cursor.execute('UPDATE dh_wallet SET balance = 1000')
            # room i of the ordered level-4 areas holds meters
            # i * PER_ROOM … (i + 1) * PER_ROOM - 1
            cursor.execute(
                'CREATE TEMP TABLE scale_room AS SELECT row_number() OVER '
                '(ORDER BY l2.name, l3.id, a.id) - 1 AS i, a.id, '
                'a.parent AS l3, l3.parent AS l2, l2.parent AS l1, '
                'l1.name AS n1, l2.name AS n2, l3.name AS n3, a.name AS n4 '
                'FROM dh_area a JOIN dh_area l3 ON l3.id = a.parent '
                'JOIN dh_area l2 ON l2.id = l3.parent '
                'JOIN dh_area l1 ON l1.id = l2.parent '
                "WHERE a.level = '4'")
            cursor.execute('SELECT count(*) FROM scale_room')
            n_rooms, = cursor.fetchone()
            wallet_ids = sorted(w.id for w in wallets)
            extra = {'billing_mode': 'cash', 'control_mode': 'controlled',
                'purchase_count': 0}
            extra = {k: v for k, v in extra.items()
                if k in pool.get('dh.meter')._fields}
            columns = ', '.join(extra)
            values = ', '.join(f"'{v}'" if isinstance(v, str) else str(v)
                for v in extra.values())
            cursor.execute(
                'INSERT INTO dh_meter (number, name, address, utility, '
                'protocol, multiplier, role, state, relay, active, area, '
                'area_l1, area_l2, area_l3, area_l4, level1, level2, level3, '
                f'level4, wallet, tariff, create_uid, create_date, {columns}) '
                "SELECT 'M' || g, 'M#' || g, lpad(g::text, 12, '0'), "
                "'electricity', 'dlt645_2007', 1, 'normal', 'normal', "
                "'closed', true, r.id, r.l1, r.l2, r.l3, r.id, r.n1, r.n2, "
                "r.n3, r.n4, (%s::int[])[g / %s %% %s + 1], %s, 0, "
                f"now(), {values} FROM generate_series(0, %s - 1) g "
                'JOIN scale_room r ON r.i = (g / %s) %% %s ORDER BY g',
                (wallet_ids, options.per_wallet, len(wallet_ids), tariff.id,
                    n, PER_ROOM, n_rooms))
            Token = pool.get('dh.api.token')
            token, = Token.create([{'name': 'bench', 'all_areas': True,
                        'scopes': ['read', 'recharge', 'control']}])
            Token.write([token], {'key_hash': hash_key(bench_api.KEY),
                    'state': 'active', 'prefix': bench_api.KEY[:8]})
            cursor.execute("SELECT id FROM dh_meter WHERE number LIKE 'M%%' "
                'ORDER BY id')
            meters = [i for i, in cursor]
    return meters


# value of meter m at hour h of the month, in 1/10,000 kWh: 0.1–1.3 kWh/h
RATE = '((m.id %% 13) + 1) * 1000'
BASE = '(100000000 + (m.id %% 97) * 1000000)'


def history(name, options):
    """Hourly readings and hourly aggregates for the first hourly_days,
    daily aggregates for every day, the month and the year, the last
    reading; by slices of meters (meter-major, as a bulk import)"""
    from trytond.modules.dh_metering import storage
    from trytond.transaction import Transaction
    hours = options.hourly_days * 24
    end = START + dt.timedelta(hours=hours)
    with Transaction().start(name, 0) as transaction:
        cursor = transaction.connection.cursor()
        months = sorted({storage.month_start(START + dt.timedelta(days=d))
                for d in range(options.days + 1)})
        for table in storage.PARTITIONED:
            storage.ensure_partitions(cursor, name, table, months)
        cursor.execute('SELECT min(id), max(id) FROM dh_meter')
        low, high = cursor.fetchone()
    step = 50000
    for first in range(low, high + 1, step):
        with Transaction().start(name, 0) as transaction:
            cursor = transaction.connection.cursor()
            slice_ = (first, first + step)
            where = 'm.id >= %s AND m.id < %s'
            if hours:
                cursor.execute(
                    'INSERT INTO dh_reading (meter, register, read_at, '
                    "value_e4) SELECT m.id, 'energy_total', "
                    "%s + h * interval '1 hour', "
                    f'{BASE} + h * {RATE} FROM dh_meter m, '
                    f'generate_series(0, %s - 1) h WHERE {where} '
                    'ORDER BY m.id, h', (START, hours, *slice_))
                cursor.execute(
                    'INSERT INTO dh_usage_hour (meter, register, period, '
                    "usage_e4, last_e4, last_at) SELECT m.id, 'energy_total', "
                    "%s + h * interval '1 hour', "
                    f'{RATE}, {BASE} + h * {RATE}, '
                    "%s + h * interval '1 hour' FROM dh_meter m, "
                    f'generate_series(0, %s - 1) h WHERE {where} '
                    'ORDER BY m.id, h', (START, START, hours, *slice_))
            cursor.execute(
                'INSERT INTO dh_usage_day (meter, register, period, usage_e4, '
                "last_e4, last_at) SELECT m.id, 'energy_total', "
                "%s + d, 24 * {rate}, {base} + (24 * d + 23) * {rate}, "
                "%s + (24 * d + 23) * interval '1 hour' FROM dh_meter m, "
                'generate_series(0, %s - 1) d WHERE {where} '
                'ORDER BY m.id, d'.format(rate=RATE, base=BASE, where=where),
                (START.date(), START, options.days, *slice_))
            for table in ('dh_usage_month', 'dh_usage_year'):
                period = START.date() if table == 'dh_usage_month' else \
                    START.date().replace(month=1)
                cursor.execute(
                    f'INSERT INTO {table} (meter, register, period, '
                    "usage_e4, last_e4, last_at) SELECT m.id, 'energy_total', "
                    f'%s, %s * 24 * {RATE}, {BASE} + (%s * 24 - 1) * {RATE}, '
                    f'%s FROM dh_meter m WHERE {where}',
                    (period, options.days, options.days,
                        START + dt.timedelta(days=options.days, hours=-1),
                        *slice_))
            last = max(hours, 1) - 1
            cursor.execute(
                'INSERT INTO dh_reading_last (meter, register, read_at, '
                "value_e4) SELECT m.id, 'energy_total', %s, "
                f'{BASE} + %s * {RATE} FROM dh_meter m WHERE {where}',
                (START + dt.timedelta(hours=last), last, *slice_))
            cursor.execute(
                'UPDATE dh_meter m SET last_read_at = %s, last_value = '
                f'({BASE} + %s * {RATE}) / 10000.0 WHERE {where}',
                (START + dt.timedelta(hours=last), last, *slice_))
    with Transaction().start(name, 0) as transaction:
        transaction.connection.cursor().execute('ANALYZE')


TABLES = ('dh_reading', 'dh_usage_hour', 'dh_usage_day', 'dh_usage_month',
    'dh_usage_year', 'dh_reading_last', 'dh_meter')


def storage(name, options):
    """Bytes (heap, indexes) of each history table, summed over its
    partitions, and the bytes per meter-day"""
    from trytond.transaction import Transaction
    sizes = {}
    with Transaction().start(name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        for table in TABLES:
            cursor.execute(
                'SELECT coalesce(sum(pg_table_size(c.oid)), 0), '
                'coalesce(sum(pg_indexes_size(c.oid)), 0), '
                "coalesce(sum(c.reltuples) FILTER (WHERE c.relkind <> 'p'), "
                '0) FROM pg_class c '
                'WHERE c.oid = %s::regclass OR c.oid IN (SELECT inhrelid '
                'FROM pg_inherits WHERE inhparent = %s::regclass)',
                (table, table))
            heap, index, rows = map(float, cursor.fetchone())
            sizes[table] = {'heap_mb': round(heap / 2**20),
                'index_mb': round(index / 2**20), 'rows': int(rows),
                'bytes_per_row': round((heap + index) / rows, 1)
                if rows > 0 else None, '_bytes': heap + index}
        cursor.execute('SELECT pg_database_size(%s)', (name,))
        database = float(cursor.fetchone()[0])
    meter_days = options.meters * options.days
    hourly = sizes['dh_reading']['_bytes'] + sizes['dh_usage_hour']['_bytes']
    per_hourly_day = hourly / (options.meters * options.hourly_days) \
        if options.hourly_days else 0
    per_day_row = sizes['dh_usage_day']['_bytes'] / meter_days
    per_meter_month = 31 * (per_hourly_day + per_day_row) + (
        sizes['dh_usage_month']['_bytes'] / options.meters)
    for value in sizes.values():
        del value['_bytes']
    return {'tables': sizes, 'database_gb': round(database / 1e9, 2),
        'hourly_bytes_per_meter_day': round(per_hourly_day),
        'daily_bytes_per_meter_day': round(per_day_row, 1),
        'bytes_per_meter_month': round(per_meter_month),
        'gb_per_million_meters_year': round(
            per_meter_month * 12 * 1e6 / 1e9)}


# -- measurements -----------------------------------------------------------
def ingest(name, pool, options, meters):
    "one more hourly round for every meter, batches of 50,000"
    from trytond.transaction import Transaction
    Reading = pool.get('dh.meter.reading')
    hour = next_hour(name)
    at = START + dt.timedelta(hours=hour)
    rows = [(m, 'energy_total', at,
            (100000000 + (m % 97) * 1000000 + hour * ((m % 13) + 1) * 1000)
            / 10000) for m in meters[:options.ingest_meters]]
    inserted = 0
    batches = []
    with CPU(name) as cpu:
        for i in range(0, len(rows), 50000):
            t1 = time.perf_counter()
            with Transaction().start(name, 0,
                    context={'dh_no_billing': True}):
                inserted += Reading.ingest(rows[i:i + 50000])['inserted']
            batches.append(time.perf_counter() - t1)
    return {'readings': len(rows), 'inserted': inserted,
        'readings_per_s': round(len(rows) / cpu.wall),
        'readings_per_cpu_s': round(len(rows) / (cpu.client + cpu.server)),
        **cpu.figures(len(rows), 'reading'),
        'first_batch_s': round(batches[0], 2),
        'last_batch_s': round(batches[-1], 2)}


def billing(name, pool, options, meters):
    """Bill the new hour of the first N meters (each size of --bill, on
    meters not billed yet); per-meter cost and the extrapolation to all"""
    from trytond.modules.dh_collector.collectd import run_in_transaction
    from trytond.transaction import Transaction
    Meter = pool.get('dh.meter')
    company = run_in_transaction(name, lambda pool: pool.get(
            'company.company').search([])[0].id, pool)
    context = {'company': company, 'language': 'en'}
    hour = next_hour(name) - 1
    before = START + dt.timedelta(hours=hour - 1)
    with Transaction().start(name, 0) as transaction:
        # the watermark one hour back: the ingested hour is due
        transaction.connection.cursor().execute(
            'INSERT INTO dh_billing_mark (meter, register, read_at, '
            "value_e4) SELECT m.id, 'energy_total', %s, "
            f'{BASE} + %s * {RATE} FROM dh_meter m WHERE m.id = ANY(%s) '
            'ON CONFLICT (meter, register) DO UPDATE SET read_at = '
            'EXCLUDED.read_at, value_e4 = EXCLUDED.value_e4',
            (before, hour - 1, meters[:sum(options.bill)]))
    result = []
    offset = 0
    for size in options.bill:
        ids = meters[offset:offset + size]
        offset += size

        def bill(pool):
            t1 = time.perf_counter()
            from trytond.modules.dh_metering import storage
            lines = Meter.bill(storage.browse(Meter, ids))
            return len(lines), time.perf_counter() - t1
        with CPU(name) as cpu:
            if options.profile:
                import cProfile
                profile = cProfile.Profile()
                lines, seconds = profile.runcall(run_in_transaction, name,
                    bill, pool, context=context)
                profile.dump_stats(f'{options.profile}.bill{size}')
            else:
                lines, seconds = run_in_transaction(name, bill, pool,
                    context=context)
        result.append({'meters': size, 'wallet_lines': lines,
                'seconds': round(seconds, 2),
                'ms_per_meter': round(seconds * 1000 / size, 2),
                **cpu.figures(size, 'meter')})
    last = result[-1]
    return {'runs': result, 'extrapolated_all_meters_seconds': round(
            last['seconds'] / last['meters'] * options.meters),
        'extrapolated_all_meters_cpu_s': round(
            last['cpu_ms_per_meter'] * options.meters / 1000)}


def report(name, pool, options):
    "the daily matrix: first page of all, one level-2 area, all in SQL"
    from trytond.transaction import Transaction
    Matrix = pool.get('dh.report.daily_matrix')
    fields = ['number', 'level1', 'level2', 'level3', 'level4', 'name'] + [
        f'd{d:02d}' for d in range(1, 32)] + ['total']
    context = {'year': START.year, 'month': str(START.month),
        'register': 'energy_total'}
    figures = {}

    def best(function, times=2):
        timings = []
        for _ in range(times):
            with Transaction().start(name, 0, readonly=True,
                    context=context):
                t0 = time.perf_counter()
                value = function()
                timings.append(time.perf_counter() - t0)
        return round(min(timings), 3), value

    def first_page():
        records = Matrix.search([], limit=100, order=[('number', 'ASC')])
        return len(Matrix.read([r.id for r in records], fields))
    figures['all_first_page_100_s'], _ = best(first_page)

    with Transaction().start(name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute("SELECT id, name FROM dh_area WHERE level = '2' "
            'ORDER BY name LIMIT 1')
        area_id, area_name = cursor.fetchone()

    def area_rows(domain):
        # ids from the search query, rows read in pages, as the export
        # does (a search returning 10,000 records is quadratic in Tryton)
        def read():
            cursor = Transaction().connection.cursor()
            cursor.execute(*Matrix.search(domain, order=[('number', 'ASC')],
                    query=True))
            ids = [i for i, in cursor]
            rows = []
            for i in range(0, len(ids), 2000):
                rows += Matrix.read(ids[i:i + 2000], fields)
            return len(rows)
        return read
    def area_page():
        records = Matrix.search([('level2', '=', area_name)], limit=100,
            order=[('number', 'ASC')])
        return len(Matrix.read([r.id for r in records], fields))
    figures['area_first_page_100_s'], _ = best(area_page)
    figures['area_by_meter_area_all_rows_s'], n = best(
        area_rows([('meter.area_l2', '=', area_id)]))
    figures['area_rows'] = n
    figures['area_by_level2_name_all_rows_s'], n2 = best(
        area_rows([('level2', '=', area_name)]))
    assert n2 == n, (n, n2)

    def whole():
        query = Matrix.table_query()
        cursor = Transaction().connection.cursor()
        sql, params = tuple(query)
        cursor.execute(f'SELECT count(*), sum(total) FROM ({sql}) q', params)
        return cursor.fetchone()
    figures['all_sql_aggregate_s'], (rows, _) = best(whole, 1)
    figures['all_rows'] = rows
    return figures


def api(name, config, port, options):
    "the balance query under load, then with 2 clients"
    class Settings:
        server = 'trytond'
    folder = os.path.join(dbutil.VAR, 'bench')
    log = open(os.path.join(folder, f'{name}.server.log'), 'wb')
    server = bench_api.start_server(Settings, config, name, port, log)
    count = options.meters

    def body(rng, index, n):
        return '{"device_id":"M%d"}' % rng.randrange(count)
    try:
        bench_api.load(port, name, options.clients, 3, body, 'balance')
        loaded = bench_api.figures(*bench_api.load(port, name,
                options.clients, options.seconds, body, 'balance'))
        light = bench_api.figures(*bench_api.load(port, name, 2,
                options.seconds / 2, body, 'balance'))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except Exception:
            server.kill()
        log.close()
    return {'clients': options.clients, 'loaded': loaded,
        'two_clients': light}
