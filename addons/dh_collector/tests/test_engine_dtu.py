"""Collector engine: DTUs dialling in to the DtuServer."""

import asyncio
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import dlt645
from trytond.modules.dh_collector.engine import (
    ChannelPoller, ChannelSpec, DtuServer, RegistrationFormat)
from trytond.modules.dh_collector.engine.dtu import _Connection
from trytond.modules.dh_collector.engine.transport import Link
from trytond.modules.dh_collector.simulator import MeterSpec

from .test_engine_support import (
    FAST, FakeClock, MemorySink, check_reading, make_bank, targets)


def bus(first):
    return [MeterSpec(str(first), energy='100.50', rate=1.0),
        MeterSpec(str(first + 1), 'dlt645_1997', energy='7.00'),
        MeterSpec(str(first + 2), 'cjt188', energy='3.21')]


def dtu_poller(server, bank, channel_id, bus_index, sink, **options):
    spec = ChannelSpec(channel_id, 'dtu', registration_id='x',
        **{**FAST, 'timeout': 0.5, **options})
    return ChannelPoller(spec, targets(bank, bus_index),
        server.transport(channel_id), sink, clock=FakeClock())


async def wait_for(condition, timeout=3.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError('condition not reached')
        await asyncio.sleep(0.01)


def test_dtu_registers_is_polled_reconnects_and_replaces_its_connection():
    async def run():
        server = DtuServer('127.0.0.1', 0, known_ids={'dtu-0': 1,
            'dtu-1': 2})
        async with server:
            bank = make_bank([bus(1), bus(11)], heartbeat=0.01,
                reconnect_delay=0.05)
            async with bank:
                dtus = await bank.dial('127.0.0.1', server.port,
                    ['dtu-0', 'dtu-1'])
                sink = MemorySink()
                first = dtu_poller(server, bank, 1, 0, sink)
                second = dtu_poller(server, bank, 2, 1, sink)
                stats = await asyncio.gather(first.run_round(),
                    second.run_round())
                assert [s.meters_answering for s in stats] == [3, 3]
                assert sum(s.errors for s in stats) == 0
                assert server.registrations == 2
                # heartbeats came in between the replies and were stripped
                await wait_for(lambda: server.heartbeats >= 4)
                assert (await first.run_round()).errors == 0

                # the collector side drops the connection: the DTU dials
                # again with the same id and polling goes on
                await server.disconnect(1)
                await wait_for(lambda: dtus[0].connects == 2)
                again = await first.run_round()
                assert again.meters_answering == 3 and again.errors == 0
                assert server.transport(1).connects == 2

                # another connection announcing the same id replaces the
                # old one (which is closed: the simulator dials again and
                # replaces it in turn)
                reader, writer = await asyncio.open_connection('127.0.0.1',
                    server.port)
                writer.write(b'REG:dtu-0')
                await writer.drain()
                await wait_for(lambda: dtus[0].connects == 3)
                assert await asyncio.wait_for(reader.read(100), 2) == b''
                writer.close()
                third = await first.run_round()
                assert third.meters_answering == 3 and third.errors == 0
        address_of = {m.id: m.address for p in (first, second)
            for m in p.meters}
        assert all(check_reading(bank, address_of, r) for r in sink.readings)
        # 4 rounds of the first DTU's bus, 1 of the second: 19 readings each
        assert len(sink.readings) == 5 * 19
    asyncio.run(run())


def test_unknown_dtu_is_dropped_and_an_absent_dtu_fails_the_round():
    async def run():
        server = DtuServer('127.0.0.1', 0, known_ids={'dtu-0': 1})
        async with server:
            # a stranger: logged, connection dropped
            reader, writer = await asyncio.open_connection('127.0.0.1',
                server.port)
            writer.write(b'REG:stranger')
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 2) == b''
            writer.close()
            # not a registration at all
            reader, writer = await asyncio.open_connection('127.0.0.1',
                server.port)
            writer.write(dlt645.read_request('1', '00010000'))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 2) == b''
            writer.close()
            # a simulated DTU with an unknown id keeps being dropped
            bank = make_bank([bus(1)], reconnect_delay=0.05)
            async with bank:
                await bank.dial('127.0.0.1', server.port, ['nobody'])
                await wait_for(lambda: sum(1 for _, i in server.rejected
                    if i == 'nobody') >= 2)
                # the known DTU never dialled: its channel fails fast
                sink = MemorySink()
                poller = dtu_poller(server, bank, 1, 0, sink, timeout=0.1)
                stats = await poller.run_round()
        assert ('stranger' in [i for _, i in server.rejected])
        assert (None in [i for _, i in server.rejected])
        assert stats.attempts == 3 and stats.failed_meters == [0, 1, 2]
        assert 'DTU not connected' in stats.last_error
        assert server.registrations == 0 and sink.readings == []
    asyncio.run(run())


def test_hex_ids_and_split_heartbeats():
    fmt = RegistrationFormat(prefix=b'', id_encoding='hex',
        heartbeat=b'\xfa', id_length=4)
    assert fmt.parse(b'\x01\x02') is None
    assert fmt.parse(b'\x01\x02\x03\x04\x68') == ('01020304', b'\x68')
    with pytest.raises(ValueError):
        RegistrationFormat().parse(b'XYZ:1')
    assert RegistrationFormat().parse(b'REG:dtu-7\r\n') == ('dtu-7', b'')

    async def run():
        server = DtuServer('127.0.0.1', 0, registration=fmt,
            known_ids={'0a0b0c0d': 5})
        async with server:
            bank = make_bank([bus(1)], reg_prefix=b'', hb_prefix=b'\xfa',
                id_format='hex', heartbeat=0.01)
            async with bank:
                await bank.dial('127.0.0.1', server.port, ['0A0B0C0D'])
                sink = MemorySink()
                poller = dtu_poller(server, bank, 5, 0, sink)
                await wait_for(lambda: server.registrations == 1)
                await wait_for(lambda: server.heartbeats >= 3)
                stats = await poller.run_round()
                assert stats.errors == 0 and stats.readings == 9 + 9 + 1
            # a heartbeat split across packets never reaches the framer
            connection = _Connection(server)
            connection.link = Link('test')
            connection._tokens = fmt.tokens('0A0B0C0D')
            reply = dlt645.read_response('1', '00010000', Decimal('1.00'))
            connection._feed(reply[:5])
            connection._feed(reply[5:] + b'\xfa\x0a')
            assert bytes(connection.link.buffer) == reply
            connection._feed(b'\x0b\x0c\x0d' + b'\xfa\x0a')
            assert bytes(connection.link.buffer) == reply
            await asyncio.sleep(0.1)    # a held prefix is released
            assert bytes(connection.link.buffer) == reply + b'\xfa\x0a'
            assert server.heartbeats >= 4
    asyncio.run(run())
