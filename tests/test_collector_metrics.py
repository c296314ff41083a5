"""The collector's Prometheus endpoint, scraped over HTTP while the daemon
collects from the simulator over TCP (SQLite file, or PostgreSQL in the
PostgreSQL pass): reads by result, errors by kind, round durations, spool
depth and commands move as the rounds go."""
import asyncio
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal

import pytest

from trytond.modules.dh_collector import collectd
from trytond.modules.dh_collector.metrics import Metrics
from trytond.modules.dh_collector.simulator import Bank, MeterSpec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

NAME = 'dh_collect_metrics'
ADDRESSES = [f'{15085390 + i:012d}' for i in range(3)]
OFFLINE = '000099999998'   # configured, silent on the bus


@pytest.fixture(scope='module')
def database():
    folder, config = dbtools.create(NAME, 'dh_collector')
    db = collectd.Database(config, NAME)

    def setup(pool):
        from trytond.modules.dh_metering.tests.tools import (
            create_areas, create_meter)
        Channel = pool.get('dh.channel')
        ModelData = pool.get('ir.model.data')
        areas = create_areas({'唐渠': {'瀚盛家园': {'16': ['701']}}})
        room = areas['唐渠', '瀚盛家园', '16', '701']
        plan = ModelData.get_id('dh_collector', 'plan_hourly_energy')
        channel, = Channel.create([{'name': 'bus-m', 'kind': 'tcp',
                    'host': '127.0.0.1', 'port': 1, 'timeout': 0.3,
                    'retries': 0, 'backoff': 0.05,
                    'plans': [('add', [plan])]}])
        ids = {}
        for i, address in enumerate(ADDRESSES + [OFFLINE]):
            ids[address] = create_meter(room, f'N{i}', f'瀚16#701{i}',
                address, bus=channel.id, password='000000').id
        return channel.id, ids
    channel_id, ids = db._run(setup)
    yield db, channel_id, ids
    shutil.rmtree(folder, ignore_errors=True)
    if dbtools.PG:
        import psycopg
        from trytond import backend
        backend.Database(NAME).close()
        with psycopg.connect(dbtools.PG_URI + 'postgres',
                autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


def scrape(url):
    "The exposition text as {sample with labels: value}"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers['Content-Type'].startswith('text/plain')
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            values[name] = float(value)
    return values


def test_metrics_move_with_the_rounds(database):
    db, channel_id, ids = database
    spool = tempfile.mktemp(suffix='.jsonl')
    metrics = Metrics()
    port = metrics.serve(0, '127.0.0.1')
    url = f'http://127.0.0.1:{port}/metrics'

    async def main():
        bank = Bank([[MeterSpec(a, energy=Decimal(100), rate=3600)
                    for a in ADDRESSES]])
        ports = await bank.serve_tcp('127.0.0.1', 0)

        def point(pool):
            Channel = pool.get('dh.channel')
            Channel.write([Channel(channel_id)], {'port': ports[0],
                    'collect_requested': False})
        await asyncio.to_thread(db._run, point)
        daemon = collectd.Daemon(db, spool, tick=0.2, metrics=metrics)
        task = asyncio.ensure_future(daemon.run_forever())

        async def until(what, predicate, timeout=60):
            end = time.monotonic() + timeout
            while True:
                values = await asyncio.to_thread(scrape, url)
                if predicate(values):
                    return values
                assert time.monotonic() < end, f'not within {timeout}s: ' \
                    f'{what}: {values}'
                await asyncio.sleep(0.2)
        try:
            # the first round starts at once (every plan is due)
            first = await until('a round', lambda v: v.get(
                    'dh_collector_rounds_total', 0) >= 1)
            assert first['dh_collector_reads_total{result="ok"}'] == 3
            assert first['dh_collector_reads_total{result="failed"}'] == 1
            assert first['dh_collector_readings_total'] >= 3
            # the silent meter: its attempts timed out
            assert first['dh_collector_errors_total{kind="timeout"}'] >= 1
            assert first['dh_collector_round_duration_seconds'
                f'{{channel="{channel_id}"}}'] > 0
            assert first['dh_collector_round_seconds_count'] >= 1
            assert first['dh_collector_spool_depth'] == 0
            # one collector alone polls its every channel
            assert first['dh_collector_channels_owned'] == 1

            # a command and 'collect now': the counters move on
            def queue(pool):
                Meter = pool.get('dh.meter')
                Meter.trip([Meter(ids[ADDRESSES[0]])])
                Channel = pool.get('dh.channel')
                Channel.collect_now([Channel(channel_id)])
            await asyncio.to_thread(db._run, queue)
            second = await until('the command and a second round',
                lambda v: v.get('dh_collector_rounds_total', 0) >= 2
                and v.get('dh_collector_commands_total'
                    '{state="confirmed"}', 0) >= 1)
            assert second['dh_collector_reads_total{result="ok"}'] >= 6
            assert second['dh_collector_errors_total{kind="timeout"}'] > \
                first['dh_collector_errors_total{kind="timeout"}']
            assert bank.meter(ADDRESSES[0]).relay_open
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await bank.stop()
    try:
        asyncio.run(main())
    finally:
        metrics.close()

