"""Collector engine: one channel against the simulator over a TCP bridge
and a pty; faults; replies that must be rejected."""

import asyncio
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import StreamDecoder, dlt645
from trytond.modules.dh_collector.engine import (
    ChannelPoller, ChannelSpec, MeterTarget, SerialTransport,
    TcpBridgeTransport, di_for, registers_for)
from trytond.modules.dh_collector.simulator import MeterSpec, generate_specs

from .test_engine_support import (
    ELECTRIC, FAST, FakeClock, MemorySink, check_reading, expected,
    make_bank, plausible, targets, tcp_spec)


def mixed_bus():
    return [
        MeterSpec('410000000001', energy='1206.42', rate=2.0),
        MeterSpec('410000000002', energy='12.34', rate=0.5, phases=3),
        MeterSpec('410000000003', 'dlt645_1997', energy='500.00'),
        MeterSpec('410000000004', 'dlt645_1997', energy='0.07', rate=0.2),
        MeterSpec('41000000000005', 'cjt188', energy='10.25', rate=0.1),
        MeterSpec('41000000000006', 'cjt188', energy='999.99', rate=0.1),
        ]


def poller_for(bank, port, sink, bus=0, **options):
    spec = tcp_spec(1, port, **options)
    meters = targets(bank, bus)
    transport = TcpBridgeTransport('127.0.0.1', port,
        inter_byte_gap=spec.inter_byte_gap, backoff=0.01)
    return ChannelPoller(spec, meters, transport, sink, clock=FakeClock())


def test_register_map():
    assert di_for('energy_total', 'dlt645_2007') == '00010000'
    assert di_for('energy_t3', 'dlt645_1997') == '9013'
    assert di_for('voltage', 'dlt645_1997') == 'B611'
    assert di_for('water_flow', 'cjt188') == '901F'
    assert registers_for('cjt188') == ['water_flow']
    assert set(registers_for('dlt645_2007')) == set(ELECTRIC) | {
        'remaining_energy', 'remaining_money'}
    assert di_for('remaining_energy', 'dlt645_2007') == '00900100'
    assert 'remaining_energy' not in registers_for('dlt645_1997')
    with pytest.raises(ValueError, match='cannot be read'):
        di_for('water_flow', 'dlt645_2007')
    with pytest.raises(ValueError, match='unknown register'):
        di_for('nope', 'cjt188')


def test_bridge_round_reads_every_register_of_2007_1997_and_cjt188():
    async def run():
        bank = make_bank([mixed_bus()])
        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            sink = MemorySink()
            poller = poller_for(bank, ports[0], sink)
            stats = await poller.run_round()
            await poller.close()
        meters = poller.meters
        wanted = sum(len(m.registers) for m in meters)
        assert stats.meters == stats.meters_answering == 6
        assert stats.readings == len(sink.readings) == wanted == 4 * 9 + 2
        assert stats.attempts == wanted and stats.errors == 0
        assert stats.failed_meters == [] and stats.last_error is None
        address_of = {m.id: m.address for m in meters}
        for reading in sink.readings:
            assert check_reading(bank, address_of, reading), reading
            assert type(reading.value) is Decimal
            assert reading.read_at.microsecond == 0
        values = {(r.meter_id, r.register): r.value for r in sink.readings}
        assert values[0, 'energy_total'] == Decimal('1206.42')
        assert values[2, 'energy_total'] == Decimal('500.00')
        assert values[4, 'water_flow'] == Decimal('10.25')
        assert values[5, 'water_flow'] == Decimal('999.99')
        assert sum(values[1, f'energy_t{n}'] for n in range(1, 5)) == \
            values[1, 'energy_total']
        assert values[2, 'voltage'] == values[2, 'voltage'].to_integral()
        for meter_id in range(4):
            assert poller.health[meter_id].consecutive_failures == 0
    asyncio.run(run())


def test_pty_serial_bus():
    pytest.importorskip('serial')

    async def run():
        bank = make_bank([mixed_bus()])
        async with bank:
            paths = bank.open_ptys()
            spec = ChannelSpec(7, 'serial', device=paths[0], baud=2400,
                parity='E', **FAST)
            sink = MemorySink()
            transport = SerialTransport(paths[0], 2400, 'E',
                inter_byte_gap=spec.inter_byte_gap)
            poller = ChannelPoller(spec, targets(bank, 0), transport, sink,
                clock=FakeClock())
            first = await poller.run_round()
            second = await poller.run_round()
            await poller.close()
            assert transport.connects == 1
        for stats in (first, second):
            assert stats.meters_answering == 6 and stats.errors == 0
        address_of = {m.id: m.address for m in poller.meters}
        assert len(sink.readings) == 2 * (4 * 9 + 2)
        assert all(check_reading(bank, address_of, r) for r in sink.readings)
    asyncio.run(run())


def collect_until_complete(bank, poller, sink, rounds=12, at_least=3):
    """Rounds (``at_least`` of them) until every (meter, register) was
    read; the stats."""
    async def run():
        wanted = {(m.id, r) for m in poller.meters for r in m.registers}
        history = []
        for _ in range(rounds):
            history.append(await poller.run_round())
            if len(history) >= at_least and {(r.meter_id, r.register)
                    for r in sink.readings} >= wanted:
                break
        await poller.close()
        return wanted, history
    return run


def test_dropped_and_corrupted_replies_never_give_a_wrong_value():
    async def run():
        buses = generate_specs(1, 10, start_address=410000000001,
            fraction_1997=0.3, water_per_bus=2)
        bank = make_bank(buses, drop=0.1, corrupt=0.1, seed=20)
        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            sink = MemorySink()
            poller = poller_for(bank, ports[0], sink, timeout=0.1)
            for meter in poller.meters:
                if meter.protocol != 'cjt188':
                    meter.registers = ['energy_total', 'energy_t1', 'power']
            wanted, history = await collect_until_complete(
                bank, poller, sink, at_least=5)()
            faults = dict(bank.buses[0].stats)
        got = {(r.meter_id, r.register) for r in sink.readings}
        assert got == wanted
        address_of = {m.id: m.address for m in poller.meters}
        wrong = [r for r in sink.readings
            if not check_reading(bank, address_of, r)]
        assert wrong == []
        assert faults['drop'] > 5 and faults['corrupt'] > 5
        assert sum(s.errors for s in history) >= faults['drop'] + \
            faults['corrupt']
        assert sum(s.errors for s in history) == sum(
            s.attempts for s in history) - len(sink.readings)
    asyncio.run(run())


def test_garbled_replies_and_a_bridge_that_disconnects_mid_frame():
    async def run():
        buses = generate_specs(1, 6, start_address=410000000001,
            water_per_bus=1)
        bank = make_bank(buses, garble=0.1, disconnect=0.15, seed=5)
        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            sink = MemorySink()
            poller = poller_for(bank, ports[0], sink)
            for meter in poller.meters:
                if meter.protocol != 'cjt188':
                    meter.registers = ['energy_total', 'energy_t2']
            wanted, history = await collect_until_complete(
                bank, poller, sink)()
            faults = dict(bank.buses[0].stats)
        assert {(r.meter_id, r.register) for r in sink.readings} == wanted
        address_of = {m.id: m.address for m in poller.meters}
        assert all(check_reading(bank, address_of, r) for r in sink.readings)
        assert faults['disconnect'] >= 2 and faults['garble'] >= 2
        # every cut connection was replaced (reconnect after the loss)
        assert poller.transport.connects >= faults['disconnect']
    asyncio.run(run())


async def fake_bus(answer):
    """A bridge whose 'meters' answer through ``answer(frame) -> bytes``."""
    async def handle(reader, writer):
        decoder = StreamDecoder(dlt645.decode_stream)
        while True:
            data = await reader.read(1024)
            if not data:
                break
            for frame in decoder.feed(data):
                reply = answer(frame)
                if reply:
                    writer.write(reply)
                    await writer.drain()
        writer.close()
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    return server, server.sockets[0].getsockname()[1]


def test_reply_from_another_address_or_for_another_di_is_rejected():
    good, impostor, confused = '000000000001', '000000000002', \
        '000000000003'

    def answer(frame):
        message = dlt645.parse(frame)
        if frame.address == good:
            return dlt645.read_response(good, message.di, Decimal('1.00'))
        if frame.address == impostor:     # answers for someone else
            return dlt645.read_response('000000000099', message.di,
                Decimal('666.66'))
        if frame.address == confused:     # gives the wrong item
            return dlt645.read_response(confused, '00020000',
                Decimal('777.77'))
        return None

    async def run():
        server, port = await fake_bus(answer)
        async with server:
            sink = MemorySink()
            spec = tcp_spec(1, port, timeout=0.1)
            meters = [MeterTarget(i, address, 'dlt645_2007',
                ['energy_total']) for i, address in enumerate(
                (good, impostor, confused))]
            poller = ChannelPoller(spec, meters,
                TcpBridgeTransport('127.0.0.1', port), sink)
            stats = await poller.run_round()
            await poller.close()
        assert [(r.meter_id, r.value) for r in sink.readings] == [
            (0, Decimal('1.00'))]
        assert stats.failed_meters == [1, 2]
        assert stats.attempts == 1 + 3 + 3 and stats.errors == 6
        assert 'reply from 000000000099, expected 000000000002' in \
            poller.health[1].last_error
        assert 'reply DI 00020000, expected 00010000' in \
            poller.health[2].last_error
    asyncio.run(run())


def test_abnormal_reply_is_not_retried_and_silent_meter_is_skipped():
    async def run():
        bank = make_bank([[MeterSpec('1', energy='5'), MeterSpec('2')]])
        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            sink = MemorySink()
            spec = tcp_spec(1, ports[0], timeout=0.1)
            meters = [
                # 00900100 is prepaid-only: the meter refuses it
                MeterTarget(1, '1', 'dlt645_2007', ['energy_total']),
                MeterTarget(2, '777', 'dlt645_2007', ['energy_total',
                    'energy_t1', 'power']),   # absent
                MeterTarget(3, '2', 'dlt645_2007', ['water_flow',
                    'energy_total']),
                ]
            poller = ChannelPoller(spec, meters,
                TcpBridgeTransport('127.0.0.1', ports[0]), sink,
                suspect_after=1)
            stats = await poller.run_round()
            second = await poller.run_round()
            await poller.close()
        assert stats.failed_meters == [2] and stats.meters_answering == 2
        # the absent meter: 3 attempts on its first register, the rest
        # skipped; the next round only one (a suspect meter)
        assert stats.attempts == 1 + 3 + 1
        assert second.attempts == 1 + 1 + 1
        assert poller.health[2].consecutive_failures == 2
        assert 'no reply' in poller.health[2].last_error
        assert 'cannot be read' in poller.health[3].last_error
        assert sorted(r.meter_id for r in sink.readings) == [1, 1, 3, 3]
    asyncio.run(run())


def test_unreachable_bridge_fails_the_round_fast_and_backs_off():
    async def run():
        server = await asyncio.start_server(lambda r, w: None, '127.0.0.1',
            0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        spec = tcp_spec(1, port)
        meters = [MeterTarget(i, str(i), 'dlt645_2007') for i in range(5)]
        transport = TcpBridgeTransport('127.0.0.1', port, backoff=5)
        poller = ChannelPoller(spec, meters, transport, MemorySink())
        stats = await poller.run_round()
        again = await poller.run_round()
        # the first meter's attempts, then the round gives up
        assert stats.failed_meters == [0, 1, 2, 3, 4]
        assert stats.attempts == 3 and 'next try in' in stats.last_error
        assert again.attempts == 3 and 'next try in' in again.last_error
        assert transport.connects == 0
    asyncio.run(run())


def test_expected_values_helper_matches_the_simulator():
    bank = make_bank([mixed_bus()])
    meter = bank.meter('410000000002')
    assert expected(meter, 'energy_total') == Decimal('12.34')
    assert plausible(meter, 'voltage', Decimal('221.5'))
