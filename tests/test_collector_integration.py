"""The collector daemon on a real database (SQLite file, or PostgreSQL in
the PostgreSQL pass) against the simulator over TCP: a round stores every
meter's verified readings through the ingest, commands are executed and
confirmed, a database outage mid-round loses nothing and doubles nothing."""
import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from decimal import Decimal

import pytest

from trytond.modules.dh_collector import collectd, engine
from trytond.modules.dh_collector.simulator import Bank, MeterSpec, SimOptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

PG = dbtools.PG
PG_URI = dbtools.PG_URI
NAME = 'dh_collect_it'
ADDRESSES = [f'{15085380 + i:012d}' for i in range(6)]
WATER = '14000000000501'
OFFLINE = '000099999999'   # configured, but no such meter on the bus


@pytest.fixture(scope='module')
def database():
    folder, config = dbtools.create(NAME, 'dh_collector')
    db = collectd.Database(config, NAME)

    def setup(pool):
        from trytond.modules.dh_metering.tests.tools import (
            create_areas, create_meter)
        Channel = pool.get('dh.channel')
        Plan = pool.get('dh.read.plan')
        ModelData = pool.get('ir.model.data')
        areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601']}}})
        room = areas['唐渠', '瀚盛家园', '15', '601']
        plans = [Plan(ModelData.get_id('dh_collector', p)).id
            for p in ['plan_hourly_energy', 'plan_water_daily']]
        channel, = Channel.create([{'name': 'bus-1', 'kind': 'tcp',
                    'host': '127.0.0.1', 'port': 1, 'timeout': 0.3,
                    'retries': 1, 'backoff': 0.05,
                    'plans': [('add', plans)]}])
        ids = {}
        for i, address in enumerate(ADDRESSES + [OFFLINE]):
            ids[address] = create_meter(room, f'M{i}', f'瀚15#601{i}',
                address, bus=channel.id, password='000000').id
        ids[WATER] = create_meter(room, 'W1', '瀚15#601水', WATER,
            utility='water', bus=channel.id).id
        return channel.id, ids
    channel_id, ids = db._run(setup)
    yield db, channel_id, ids, config
    shutil.rmtree(folder, ignore_errors=True)


def run(db, channel_id, coro_factory, faults=None):
    """Start the simulator bus, point the channel at it, run the coroutine"""
    async def main():
        specs = [MeterSpec(a, energy=Decimal(1000 + i), rate=3600)
            for i, a in enumerate(ADDRESSES)]
        specs.append(MeterSpec(WATER, protocol='cjt188', energy=Decimal(50),
                rate=36))
        bank = Bank([specs], SimOptions(**(faults or {})))
        ports = await bank.serve_tcp('127.0.0.1', 0)

        def point(pool):
            Channel = pool.get('dh.channel')
            Channel.write([Channel(channel_id)], {'port': ports[0]})
        await asyncio.to_thread(db._run, point)
        try:
            return await coro_factory(bank)
        finally:
            await bank.stop()
    return asyncio.run(main())


def stored(db, meter_id, register='energy_total'):
    def query(pool):
        Reading = pool.get('dh.meter.reading')
        return [(r.read_at, r.value) for r in Reading.search([
                    ('meter', '=', meter_id), ('register', '=', register)],
                order=[('read_at', 'ASC')])]
    return db._run(query, readonly=True)


def test_round_stores_verified_readings(database):
    db, channel_id, ids, _ = database
    spool = tempfile.mktemp(suffix='.jsonl')

    async def go(bank):
        daemon = collectd.Daemon(db, spool)
        stats = await daemon.run_once()
        return stats, {a: bank.meter(a).energy for a in ADDRESSES}, \
            bank.meter(WATER).flow
    (stats,), energies, flow = run(db, channel_id, go)
    assert (stats.meters, stats.meters_answering) == (8, 7)
    for address in ADDRESSES:
        (read_at, value), = stored(db, ids[address])[-1:]
        # the simulator advances in real time: the value read lies between
        # the start value and the value at the end of the round
        assert Decimal(1000) <= Decimal(str(value)) <= energies[address]
        t1 = stored(db, ids[address], 'energy_t1')
        assert t1, 'TOU registers are read too'
    (_, water), = stored(db, ids[WATER], 'water_flow')[-1:]
    assert Decimal(50) <= Decimal(str(water)) <= flow
    assert stored(db, ids[OFFLINE]) == []

    def health(pool):
        Channel = pool.get('dh.channel')
        c = Channel(channel_id)
        return c.meters_total, c.meters_answering, c.last_error
    total, answering, error = db._run(health, readonly=True)
    assert (total, answering) == (8, 7)
    assert error and OFFLINE in error or 'timeout' in (error or '').lower()


def test_outage_spools_and_replays(database):
    """The database goes away mid-round: readings spool to disk and are
    replayed when it is back — none lost, none stored twice"""
    db, channel_id, ids, _ = database
    spool = tempfile.mktemp(suffix='.jsonl')
    # readings are keyed to the second: make sure this round's times are
    # not the previous test's
    time.sleep(1.1)
    before = {a: len(stored(db, ids[a])) for a in ADDRESSES}

    async def go(bank):
        daemon = collectd.Daemon(db, spool)
        real_ingest = db.ingest
        calls = []

        def broken(readings):
            calls.extend(readings)
            if PG:
                return _with_database_down(lambda: real_ingest(readings))
            raise ConnectionError('database unreachable')
        db.ingest = broken
        try:
            await daemon.run_once()
        finally:
            db.ingest = real_ingest
        spooled = len(engine.Spool(spool))
        # the database is back: the next flush replays the spool
        daemon2 = collectd.Daemon(db, spool)
        await daemon2.sink.flush(force=True)
        return calls, spooled, len(engine.Spool(spool))
    calls, spooled, left = run(db, channel_id, go)
    assert calls and spooled > 0 and left == 0
    by_meter = {}
    for reading in calls:
        if reading.register == 'energy_total':
            by_meter[reading.meter_id] = reading
    for address in ADDRESSES:
        rows = stored(db, ids[address])
        # the reading that met the outage is there, once, with its value
        reading = by_meter[ids[address]]
        assert (reading.read_at, float(reading.value)) in rows
        assert len({t for t, _ in rows}) == len(rows)
        assert before[address] <= len(rows) <= before[address] + 1


def _with_database_down(func):
    """PostgreSQL: refuse connections to the database and cut the open ones
    (a real outage for the collector), then call func (which must fail)"""
    import psycopg
    with psycopg.connect(PG_URI + 'postgres', autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{NAME}" ALLOW_CONNECTIONS false')
        conn.execute('SELECT pg_terminate_backend(pid) FROM '
            'pg_stat_activity WHERE datname = %s AND pid <> '
            'pg_backend_pid()', (NAME,))
    try:
        from trytond import backend
        backend.Database(NAME).close()   # drop the pooled connections
        return func()
    finally:
        with psycopg.connect(PG_URI + 'postgres', autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{NAME}" ALLOW_CONNECTIONS true')


def test_trip_close_and_offline_command(database):
    db, channel_id, ids, _ = database
    spool = tempfile.mktemp(suffix='.jsonl')

    def queue(pool):
        Meter = pool.get('dh.meter')
        Meter.trip([Meter(ids[ADDRESSES[0]]), Meter(ids[OFFLINE])])
    db._run(queue)

    async def go(bank):
        daemon = collectd.Daemon(db, spool)
        await daemon.run_once()
        return bank.meter(ADDRESSES[0]).relay_open

    assert run(db, channel_id, go) is True

    def outcome(pool):
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        result = {}
        for command in Command.search([('kind', '=', 'trip')]):
            result[command.meter.address] = (command.state, command.attempts,
                command.last_error)
        return result, Meter(ids[ADDRESSES[0]]).relay
    result, relay = db._run(outcome, readonly=True)
    assert result[ADDRESSES[0]][0] == 'confirmed' and relay == 'open'
    state, attempts, error = result[OFFLINE]
    assert state in {'queued', 'failed'} and attempts >= 1 and error

    def expire(pool):
        Command = pool.get('dh.command')
        commands = Command.search([('state', 'in', ['queued', 'sent'])])
        Command.write(commands, {'expires_at': dt.datetime.now()})
        Command.cron_expire()
        return [(c.state, c.last_error) for c in Command.browse(commands)]
    for state, error in db._run(expire):
        assert state == 'expired' and error
