"""Collector engine: batching, the spool and replay while the database is
down (at-least-once delivery into an idempotent ingest)."""

import asyncio
import datetime as dt
import os
from decimal import Decimal

from trytond.modules.dh_collector.engine import (
    ChannelPoller, Reading, Spool, SpoolingSink, TcpBridgeTransport)
from trytond.modules.dh_collector.simulator import generate_specs

from .test_engine_support import (
    Database, FakeClock, make_bank, targets, tcp_spec)

T0 = dt.datetime(2025, 3, 2, 16, 0, 0)


def readings(n, start=0):
    return [Reading(1 + i % 7, 'energy_total',
        T0 + dt.timedelta(seconds=start + i), Decimal(start + i) / 100)
        for i in range(n)]


def test_batches_and_flush_interval(tmp_path):
    async def run():
        db = Database()
        sink = SpoolingSink(db, Spool(tmp_path / 'spool.jsonl'),
            batch_size=10, flush_interval=0.05)
        await sink(readings(5))
        assert db.calls == 0 and len(sink.pending) == 5    # not yet
        await sink(readings(20, 5))     # full batches go out at once
        assert len(db.received) == 25 and db.calls == 3
        assert sink.pending == []
        async with sink:        # background flushing
            await sink(readings(3, 100))
            await asyncio.sleep(0.15)
            assert len(db.rows) == 28
            await sink(readings(12, 200))      # a full batch wakes it
            await asyncio.sleep(0.01)
            assert len(db.rows) == 40
            await sink(readings(1, 300))
        assert len(db.rows) == 41 and sink.pending == []   # close flushed
    asyncio.run(run())


def test_sink_outage_spools_then_replays_in_order(tmp_path):
    path = tmp_path / 'spool' / 'readings.jsonl'

    async def run():
        db = Database()
        sink = SpoolingSink(db, Spool(path), batch_size=4,
            retry_interval=0.05)
        await sink(readings(6))
        await sink.flush()
        assert len(db.rows) == 6
        db.down = True
        await sink(readings(10, 10))
        await sink.flush()
        assert sink.spooled == 10 and len(sink.spool) == 10
        assert db.calls == 3     # one failed try, then straight to disk
        assert path.exists() and len(path.read_text().splitlines()) == 3
        await asyncio.sleep(0.06)
        await sink(readings(3, 30))
        await sink.flush()       # still down: tried once more, spooled
        assert len(sink.spool) == 13 and sink.failures == 2
        db.down = False
        await sink(readings(2, 40))
        await asyncio.sleep(0.2)
        await sink.flush()
        assert sink.replayed == 13 and len(sink.spool) == 0
        assert not path.exists() and not os.path.exists(f'{path}.pos')
        # oldest first: the spooled readings, then the new ones
        assert [r.read_at for r in db.received] == sorted(
            r.read_at for r in db.received)
        assert set(db.rows) == {r.key for r in readings(6)
            + readings(10, 10) + readings(3, 30) + readings(2, 40)}
        assert len(db.received) == len(db.rows)     # nothing twice
    asyncio.run(run())


def test_spool_survives_a_restart_and_a_torn_line(tmp_path):
    path = tmp_path / 'readings.jsonl'

    async def run():
        db = Database()
        db.down = True
        sink = SpoolingSink(db, Spool(path), batch_size=5)
        await sink(readings(12))
        await sink.close()              # the process stops
        assert len(Spool(path)) == 12
        # a crash while appending the next batch
        with open(path, 'ab') as f:
            f.write(b'{"readings": [[1, "energy_total", "2025')
        spool = Spool(path)             # a new process
        assert len(spool) == 12 and spool.batches == 3
        db.down = False
        restarted = SpoolingSink(db, spool, batch_size=5)
        # the database took the first batch but the acknowledgement was
        # lost: it comes again on replay (at-least-once, harmless)
        db.lose_ack = 1
        await restarted.flush(force=True)
        assert len(restarted.spool) == 12
        await restarted.flush(force=True)
        assert len(restarted.spool) == 0 and not path.exists()
        assert set(db.rows) == {r.key for r in readings(12)}
        repeated = len(db.received) - len(db.rows)
        assert repeated == len(db.acks_lost[0]) == 5
    asyncio.run(run())


def test_replay_position_survives_a_crash_mid_replay(tmp_path):
    path = tmp_path / 'readings.jsonl'
    spool = Spool(path)
    for n in range(3):
        spool.append(readings(4, 10 * n))
    spool.drop_first()
    assert int(open(f'{path}.pos').read()) > 0
    again = Spool(path)
    assert len(again) == 8 and again.first() == readings(4, 10)


def test_rounds_with_the_database_down_lose_nothing(tmp_path):
    async def run():
        buses = generate_specs(1, 8, start_address=410000000001,
            water_per_bus=2, fraction_1997=0.25)
        bank = make_bank(buses)
        db = Database()
        passed = []
        sink = SpoolingSink(db, Spool(tmp_path / 'spool.jsonl'),
            batch_size=7, retry_interval=0.01)

        async def recording(batch):
            passed.extend(batch)
            await sink(batch)

        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            spec = tcp_spec(1, ports[0])
            meters = targets(bank, 0, ['energy_total', 'energy_t1'])
            for m in meters:
                if m.protocol == 'cjt188':
                    m.registers = ['water_flow']
            poller = ChannelPoller(spec, meters,
                TcpBridgeTransport('127.0.0.1', ports[0]), recording,
                clock=FakeClock())
            for outage in (False, True, True, 'lose_ack', False):
                db.down = outage is True
                if outage == 'lose_ack':
                    db.lose_ack = 2     # the next two commits
                await poller.run_round()
                await asyncio.sleep(0.02)
                await sink.flush()
            await poller.close()
        await sink.close()
        for _ in range(3):
            await sink.flush(force=True)
        assert len(sink.spool) == 0 and sink.spooled > 0
        assert set(db.rows) == {r.key for r in passed}
        assert len(passed) == 5 * (6 * 2 + 2)
        # repeats only for the batches whose acknowledgement was lost
        repeats = len(db.received) - len(db.rows)
        assert len(db.acks_lost) == 2
        assert repeats == sum(len(b) for b in db.acks_lost) > 0
    asyncio.run(run())
