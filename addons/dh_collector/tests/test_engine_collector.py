"""Collector engine: every channel in parallel, plan reloads, the
synchronous entry point."""

import asyncio
import threading

from trytond.modules.dh_collector.engine import (
    ChannelSpec, Collector, DtuServer, SpoolingSink, collect_once)
from trytond.modules.dh_collector.simulator import generate_specs

from .test_engine_support import (
    Database, FakeClock, MemorySink, check_reading, make_bank, targets,
    tcp_spec)


class Watch:
    """Wraps transports to see how many exchanges are in flight at once."""

    def __init__(self):
        self.active = 0
        self.most = 0

    def wrap(self, transport):
        exchange = transport.exchange

        async def watched(*args, **kwargs):
            self.active += 1
            self.most = max(self.most, self.active)
            try:
                return await exchange(*args, **kwargs)
            finally:
                self.active -= 1
        transport.exchange = watched


def buses(count, first):
    return generate_specs(count, 4, start_address=first, water_per_bus=1,
        fraction_1997=0.25)


def test_round_runs_every_channel_in_parallel_tcp_and_dtu(tmp_path):
    async def run():
        timing = dict(wire_timing=True, baud=19200, reply_delay=0.005)
        bridges = make_bank(buses(2, 410000000001), **timing)
        dialler = make_bank(buses(1, 420000000001), reconnect_delay=0.05,
            **timing)
        db = Database()
        server = DtuServer('127.0.0.1', 0)
        async with bridges, dialler, server:
            ports = await bridges.serve_tcp('127.0.0.1', 0)
            await dialler.dial('127.0.0.1', server.port, ['dtu-2'])
            plan = [(tcp_spec(10, ports[0]), targets(bridges, 0)),
                (tcp_spec(11, ports[1]), targets(bridges, 1, first_id=500)),
                (ChannelSpec(12, 'dtu', registration_id='dtu-2', timeout=1),
                    targets(dialler, 0, first_id=900))]
            collector = Collector(plan, db, dtu_server=server,
                spool=tmp_path / 'spool.jsonl', clock=FakeClock())
            assert isinstance(collector.sink, SpoolingSink)
            assert server.known_ids == {'dtu-2': 12}
            watch = Watch()
            for poller in collector.pollers.values():
                watch.wrap(poller.transport)
            stats = await collector.run_round()
            await collector.close()
        assert sorted(stats) == [10, 11, 12]
        assert all(s.meters_answering == 4 and s.errors == 0
            for s in stats.values())
        assert watch.most == 3        # the three buses were read at once
        assert len(db.rows) == 3 * (3 * 9 + 1)     # flushed after the round
        for bank, channels in ((bridges, (10, 11)), (dialler, (12,))):
            address_of = {m.id: m.address for c in channels
                for m in collector.pollers[c].meters}
            assert all(check_reading(bank, address_of, r)
                for r in db.received if r.meter_id in address_of)
    asyncio.run(run())


def test_run_forever_reloads_the_plan():
    async def run():
        bank = make_bank(buses(2, 410000000001))
        sink = MemorySink()
        rounds = []
        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            first = (tcp_spec(1, ports[0]), targets(bank, 0,
                ['energy_total']))
            second = (tcp_spec(2, ports[1]), targets(bank, 1,
                ['energy_total']))
            plans = [[first, second], [second]]

            def reload():
                return plans.pop(0) if plans else None

            collector = Collector([first], sink, on_round=rounds.append)
            task = asyncio.ensure_future(collector.run_forever(0.05, reload,
                reload_interval=0.2))
            await asyncio.sleep(0.7)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        channels = [s.channel_id for s in rounds]
        # channel 1 alone, then both, then channel 2 alone
        assert channels[:2] == [1, 1] and channels[-2:] == [2, 2]
        assert 1 in channels[channels.index(2):]
        assert sorted(collector.pollers) == [2]
        assert all(s.meters_answering == 4 for s in rounds), rounds
        assert len(sink.readings) == 4 * len(rounds)
    asyncio.run(run())


def test_collect_once_from_synchronous_code():
    loop = asyncio.new_event_loop()
    bank = make_bank(buses(2, 410000000001))
    ports = loop.run_until_complete(bank.serve_tcp('127.0.0.1', 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        sink = MemorySink()
        plan = [(tcp_spec(c + 1, ports[c]), targets(bank, c))
            for c in range(2)]
        stats = collect_once(plan, sink)
        assert {c: s.readings for c, s in stats.items()} == {1: 28, 2: 28}
        assert len(sink.readings) == 56
    finally:
        asyncio.run_coroutine_threadsafe(bank.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
