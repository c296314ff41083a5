"""Three `dh collect` processes share the channels of one PostgreSQL
database, against `dh sim` over real TCP: every channel is polled by one
collector at a time, a collector killed with SIGKILL mid-round has its
channels taken over (readings keep flowing, none lost, none doubled), and
when it comes back the channels are shared fairly again.

PostgreSQL only (the leases live there; SQLite has one collector): the
SQLite pass deselects it (conftest.py), the PostgreSQL pass runs it."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

pytestmark = pytest.mark.postgresql_only

NAME = 'dh_collect_failover'
BUSES, PER_BUS = 6, 2
LEASE = 4           # seconds: takeover within ~LEASE * 4/3
WAIT = 120          # generous bound of every wait below


def _connect():
    import psycopg
    return psycopg.connect(dbtools.PG_URI + NAME, autocommit=True)


def _query(sql, params=()):
    with _connect() as conn:
        return conn.execute(sql, params).fetchall()


def _wait(what, predicate, timeout=WAIT, every=0.5):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f'not within {timeout}s: {what}')
        time.sleep(every)


class Collectors:
    "The `dh collect` subprocesses, by index"

    def __init__(self, config, folder):
        self.config, self.folder = config, folder
        self.procs = {}
        self.metrics_url = None

    def start(self, index, metrics=False):
        log = open(os.path.join(self.folder, f'collect{index}.log'), 'ab')
        args = [os.path.join(dbtools.BIN, 'dh'), 'collect', '-c',
            self.config, '-d', NAME, '--share', '--lease', str(LEASE),
            '--tick', '0.3', '--name', f'c{index}', '-v', '--spool',
            os.path.join(self.folder, f'spool{index}.jsonl')]
        if metrics:
            args += ['--metrics-port', '0', '--metrics-host', '127.0.0.1']
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
            stdin=subprocess.DEVNULL, cwd=self.folder)
        self.procs[index] = proc
        if metrics:
            line = proc.stdout.readline().decode()
            self.metrics_url = line.split()[1]
        return proc

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def owners():
    "{owner name: {channel ids}} of the live leases"
    result = {}
    for channel, owner in _query('SELECT channel, owner FROM '
            'dh_channel_lease WHERE expires > now()'):
        result.setdefault(owner, set()).add(channel)
    return result


def latest_readings():
    "{meter id: last read_at} of energy_total"
    return dict(_query("SELECT meter, max(read_at) FROM dh_reading "
            "WHERE register = 'energy_total' GROUP BY meter"))


def _scrape(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            values[name] = float(value)
    return values


@pytest.fixture
def plant():
    folder, config = dbtools.create(NAME, 'dh_collector')
    sim = subprocess.Popen([os.path.join(dbtools.BIN, 'dh'), 'sim',
            '--buses', str(BUSES), '--meters-per-bus', str(PER_BUS),
            '--port', '0'], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    ports = {}
    for _ in range(BUSES):
        line = sim.stdout.readline().decode()
        match = re.match(r'BUS (\d+) tcp://[\d.]+:(\d+)', line)
        assert match, line
        ports[int(match.group(1))] = int(match.group(2))

    from trytond.modules.dh_collector import collectd
    db = collectd.Database(config, NAME)

    def setup(pool):
        from trytond.modules.dh_metering.tests.tools import (
            create_areas, create_meter)
        Channel = pool.get('dh.channel')
        ModelData = pool.get('ir.model.data')
        areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601']}}})
        room = areas['唐渠', '瀚盛家园', '15', '601']
        plan = ModelData.get_id('dh_collector', 'plan_hourly_energy')
        meters = {}
        for bus in range(BUSES):
            channel, = Channel.create([{'name': f'bus-{bus}', 'kind': 'tcp',
                        'host': '127.0.0.1', 'port': ports[bus],
                        'timeout': 0.5, 'retries': 1, 'backoff': 0.05,
                        'plans': [('add', [plan])]}])
            for k in range(PER_BUS):
                number = bus * PER_BUS + k + 1
                meter = create_meter(room, f'M{number}', f'表{number}',
                    f'{number:012d}', bus=channel.id, password='000000')
                meters[meter.id] = channel.id
        return meters
    meters = db._run(setup)
    from trytond import backend
    backend.Database(NAME).close()
    collectors = Collectors(config, folder)
    try:
        yield collectors, sim, meters
    finally:
        collectors.stop()
        if sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            sim.wait(30)
        import psycopg
        with psycopg.connect(dbtools.PG_URI + 'postgres',
                autocommit=True) as conn:
            conn.execute('SELECT pg_terminate_backend(pid) FROM '
                'pg_stat_activity WHERE datname = %s', (NAME,))
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}"')
        shutil.rmtree(folder, ignore_errors=True)


def _keep_requesting(stop):
    "Press 'collect now' on every channel, again and again: busy rounds"
    while not stop.wait(1.0):
        try:
            _query('UPDATE dh_channel SET collect_requested = true '
                'RETURNING id')
        except Exception:
            pass


def _fresh_readings(meters, since):
    "Every meter has an energy reading read after ``since``"
    latest = latest_readings()
    return all(latest.get(m) is not None and latest[m] > since
        for m in meters)


def _db_now():
    return _query('SELECT (now() at time zone \'utc\')::timestamp')[0][0]


def test_three_collectors_failover_and_rebalance(plant):
    collectors, sim, meters = plant
    channels = set(meters.values())
    stop = threading.Event()
    requester = threading.Thread(target=_keep_requesting, args=(stop,),
        daemon=True)
    requester.start()
    try:
        collectors.start(0, metrics=True)
        collectors.start(1)
        collectors.start(2)

        def fair():
            found = owners()
            counts = sorted(len(c) for c in found.values())
            covered = set().union(*found.values()) if found else set()
            return (len(found) == 3 and counts == [2, 2, 2]
                and covered == channels and found)
        shares = _wait('three collectors with two channels each', fair)
        start = _db_now()
        _wait('readings of every meter', lambda: _fresh_readings(meters,
                start))

        # metrics of collector c0, scraped over HTTP while it collects
        first = _scrape(collectors.metrics_url)
        assert first['dh_collector_channels_owned'] == len(shares['c0'])
        assert first['dh_collector_live_collectors'] == 3
        _wait('collector c0 reads on', lambda: _scrape(
                collectors.metrics_url)['dh_collector_reads_total'
                '{result="ok"}'] > first['dh_collector_reads_total'
                '{result="ok"}'])

        # SIGKILL c1 mid-round (its channels are polled continuously)
        victim = shares['c1']
        collectors.procs[1].send_signal(signal.SIGKILL)
        collectors.procs[1].wait()
        killed = _db_now()
        taken = _wait('c1 channels taken over by c0 and c2',
            lambda: (lambda o: 'c1' not in o and set().union(*o.values())
                == channels and o)(owners()))
        assert set(taken) == {'c0', 'c2'}
        assert sorted(len(c) for c in taken.values()) == [3, 3]
        _wait('every meter read after the takeover', lambda:
            _fresh_readings(meters, killed))
        assert all(meters[m] in channels for m in meters) and victim

        # c1 comes back (same spool: anything it had spooled is replayed)
        collectors.start(1)
        back = _wait('fair shares again', fair)
        assert set(back) == {'c0', 'c1', 'c2'}
        rebalanced = _db_now()
        _wait('every meter read after the rebalance', lambda:
            _fresh_readings(meters, rebalanced))
        _wait('c0 metrics show the new share', lambda: _scrape(
                collectors.metrics_url)['dh_collector_channels_owned'] == 2)
    finally:
        stop.set()
        requester.join()
        collectors.stop()

    # a graceful stop gives the leases back and leaves nothing spooled
    assert owners() == {}
    for index in range(3):
        from trytond.modules.dh_collector.engine import Spool
        path = os.path.join(collectors.folder, f'spool{index}.jsonl')
        if os.path.exists(path):
            assert len(Spool(path)) == 0
    assert _query('SELECT meter, register, read_at FROM dh_reading '
        'GROUP BY 1, 2, 3 HAVING count(*) > 1') == []

    # the simulator: no bus was ever polled by two collectors at once
    sim.send_signal(signal.SIGTERM)
    out, _ = sim.communicate(timeout=30)
    activity = re.findall(r'ACTIVITY (\d+) clients=(\d+) '
        r'max_concurrency=(\d+)', out.decode())
    assert len(activity) == BUSES
    for bus, clients, concurrency in activity:
        assert int(clients) >= 1, f'bus {bus} never polled'
        assert int(concurrency) == 1, f'bus {bus} polled by ' \
            f'{concurrency} collectors at once'
    # the taken-over and rebalanced buses saw more than one collector
    assert sum(int(c) > 1 for _, c, _ in activity) >= 2


def test_lease_holder_stops_before_its_lease_can_expire():
    """The database goes away under a collector: its renewals fail, and it
    stops polling its channel before the lease could expire in the
    database (so another collector could never poll at the same time);
    when the database is back it takes the channel again"""
    import asyncio
    import psycopg
    from decimal import Decimal
    from trytond import backend
    from trytond.modules.dh_collector import collectd, sharing
    from trytond.modules.dh_collector.simulator import Bank, MeterSpec
    name = NAME + '_cut'
    folder, config = dbtools.create(name, 'dh_collector')
    db = collectd.Database(config, name)
    address = '000015085400'

    def setup(pool):
        from trytond.modules.dh_metering.tests.tools import (
            create_areas, create_meter)
        Channel = pool.get('dh.channel')
        ModelData = pool.get('ir.model.data')
        plan = ModelData.get_id('dh_collector', 'plan_hourly_energy')
        areas = create_areas({'唐渠': {'瀚盛家园': {'17': ['801']}}})
        channel, = Channel.create([{'name': 'bus-cut', 'kind': 'tcp',
                    'host': '127.0.0.1', 'port': 1, 'timeout': 0.3,
                    'retries': 0, 'backoff': 0.05,
                    'plans': [('add', [plan])]}])
        create_meter(areas['唐渠', '瀚盛家园', '17', '801'], 'C1', '瀚17#801',
            address, bus=channel.id, password='000000')
        return channel.id
    channel_id = db._run(setup)
    watcher = psycopg.connect(dbtools.PG_URI + name, autocommit=True)

    def cut(allow):
        with psycopg.connect(dbtools.PG_URI + 'postgres',
                autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS '
                f'{"true" if allow else "false"}')
            if not allow:
                conn.execute('SELECT pg_terminate_backend(pid) FROM '
                    'pg_stat_activity WHERE datname = %s AND pid <> %s',
                    (name, watcher.info.backend_pid))

    async def main():
        bank = Bank([[MeterSpec(address, energy=Decimal(10), rate=3600)]])
        ports = await bank.serve_tcp('127.0.0.1', 0)
        bus = bank.buses[0]
        watcher.execute('UPDATE dh_channel SET port = %s', (ports[0],))
        share = sharing.Sharing(sharing.LeaseStore(name), lease=3,
            name='cut')
        daemon = collectd.Daemon(db, tempfile.mktemp(suffix='.jsonl'),
            tick=0.1, sharing=share)
        task = asyncio.ensure_future(daemon.run_forever())

        async def until(what, predicate, timeout=WAIT):
            end = time.monotonic() + timeout
            while not predicate():
                assert time.monotonic() < end, f'not within {timeout}s: ' \
                    f'{what}'
                await asyncio.sleep(0.1)

        def keep_busy():
            # 'collect now' every round: the bus is polled continuously
            watcher.execute('UPDATE dh_channel SET collect_requested = '
                'true')
            return False
        try:
            await until('the channel polled', lambda: keep_busy()
                or bus.stats['requests'] >= 3)
            await asyncio.to_thread(cut, False)
            remaining, = watcher.execute('SELECT extract(epoch FROM '
                'expires - now()) FROM dh_channel_lease WHERE channel = %s',
                (channel_id,)).fetchone()
            expiry = time.monotonic() + float(remaining)
            await until('polling stopped', lambda: not daemon.tasks)
            stopped = time.monotonic()
            requests = bus.stats['requests']
            last = max(last for _, last in bus.activity.values())
            assert last < expiry and stopped < expiry
            await asyncio.sleep(max(expiry - time.monotonic(), 0) + 1)
            assert bus.stats['requests'] == requests, 'polled after stop'
            await asyncio.to_thread(cut, True)
            await until('polling again', lambda: keep_busy()
                or bus.stats['requests'] > requests + 2)
            assert bus.max_concurrency() == 1
        finally:
            await asyncio.to_thread(cut, True)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await bank.stop()
    try:
        asyncio.run(main())
    finally:
        watcher.close()
        backend.Database(name).close()
        with psycopg.connect(dbtools.PG_URI + 'postgres',
                autocommit=True) as conn:
            conn.execute('SELECT pg_terminate_backend(pid) FROM '
                'pg_stat_activity WHERE datname = %s', (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        shutil.rmtree(folder, ignore_errors=True)
