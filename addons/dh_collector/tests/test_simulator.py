"""The meter simulator: the synchronous bus core, then the transports (TCP
bridge, DTU dial-in, pty), faults, wire timing and ``dh sim``."""

import asyncio
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from trytond.modules.dh_collector import simulator as sim
from trytond.modules.dh_collector.codec import (
    CodecError, StreamDecoder, auto, cjt188, dlt645, recharge)
from trytond.modules.dh_collector.simulator import (
    Bank, MeterSpec, SimOptions)

START = dt.datetime(2025, 3, 3, 0, 0, 0)   # a Monday, 00:00
E1 = '000000000001'
E2 = '000000000002'
OLD = '000000000097'
WATER = '00000000000088'
UNTIL = dt.datetime(2099, 1, 1)


def specs():
    return [
        MeterSpec(E1, energy='1000.00', rate=2.0, password='123456',
            remaining='100.00', purchase_count=5),
        MeterSpec(E2, energy='12.34', rate=0.5),
        MeterSpec(OLD, sim.DLT645_1997, energy='500.00', rate=1.0),
        MeterSpec(WATER, sim.CJT188, energy='10.00', rate=0.1),
        ]


def make_bank(buses=None, **options):
    options.setdefault('speed', 0)
    options.setdefault('start', START)
    return Bank(buses or [specs()], SimOptions(**options))


def read(bus, address, di, version=dlt645.V2007):
    reply = bus.handle(dlt645.read_request(address, di, version=version))
    assert reply is not None
    message = dlt645.decode(reply, version)
    assert message.address == address.rjust(12, '0')
    return message


# --- the synchronous core ---------------------------------------------------

def test_energy_total_and_tou_registers_sum():
    bank = make_bank()
    bus = bank.buses[0]
    meter = bank.meter(E1)
    assert read(bus, E1, '00010000').value == Decimal('1000.00')
    for hours in (0.25, 7, 3.5, 13, 49.75):
        bank.clock.advance(hours=hours)
        total = read(bus, E1, '00010000').value
        tariffs = [read(bus, E1, f'00010{n}00').value for n in range(1, 5)]
        assert sum(tariffs) == total == meter.energy
        block = read(bus, E1, '0001FF00').value
        assert block['00010000'] == total
        assert [block[f'00010{n}00'] for n in range(1, 5)] == tariffs
        assert read(bus, E1, '00000000').value == total
    # 73.5 h at 2 kWh/h, but the prepaid credit (100 kWh) ran out first
    assert meter.energy == Decimal('1100.00')
    assert meter.remaining == 0 and meter.relay_open


def test_tou_bands_follow_the_meter_clock():
    bank = make_bank()
    meter = bank.meter(E2)
    before = meter.tariffs
    bank.clock.advance(hours=1)      # 00:00-01:00: valley (T4)
    after = meter.tariffs
    assert after[3] - before[3] == Decimal('0.50')
    assert after[:3] == before[:3]
    bank.clock.advance(hours=10)     # 01:00-11:00: T4 6h, T3 1h, T2 2h, T1 1h
    final = meter.tariffs
    assert [f - a for f, a in zip(final, after)] == [
        Decimal('0.50'), Decimal('1.00'), Decimal('0.50'), Decimal('3.00')]


def test_instantaneous_values():
    bank = make_bank()
    bus = bank.buses[0]
    voltage = read(bus, E2, '02010100').value
    assert Decimal('215') < voltage < Decimal('225')
    assert read(bus, E2, '02030000').value == Decimal('0.5000')
    current = read(bus, E2, '02020100').value
    assert Decimal('2.0') < current < Decimal('2.6')
    assert set(read(bus, E2, '0201FF00').value) == {'02010100'}
    assert read(bus, E2, '02010200').error == 'no requested data'
    assert read(bus, E2, '02800002').value == Decimal('50.00')
    assert read(bus, E2, '04000401').value == E2
    assert read(bus, E2, '0400010C').value == START.isoformat()


def test_status_word_3_and_remote_control():
    bank = make_bank()
    bus = bank.buses[0]
    meter = bank.meter(E1)
    status = read(bus, E1, '04000503').value
    assert status['relay'] == 'closed'
    assert status['meter_type'] == 'energy-prepaid'

    wrong = bus.handle(dlt645.control_request(E1, 'trip',
        valid_until=UNTIL, password='000000'))
    message = dlt645.decode(wrong)
    assert message.control == 0xDC
    assert message.error_code & 0x04        # ERR bit2: password
    assert not meter.relay_open

    ok = bus.handle(dlt645.control_request(E1, 'trip', valid_until=UNTIL,
        password='123456'))
    assert ok == dlt645.ack_response(E1, dlt645.CONTROL)   # 9C 00
    assert meter.relay_open
    word = int(read(bus, E1, '04000503').value['word'], 16)
    assert word & 0x10 and word & 0x40      # relay open, command trip
    assert read(bus, E1, '02030000').value == 0
    energy = meter.energy
    bank.clock.advance(hours=5)
    assert meter.energy == energy           # no load while open

    ok = bus.handle(dlt645.control_request(E1, 'close', valid_until=UNTIL,
        password='123456'))
    assert dlt645.decode(ok).control == 0x9C
    assert not meter.relay_open
    assert not int(read(bus, E1, '04000503').value['word'], 16) & 0x50

    meter.relay_open = True                 # settable from tests
    assert read(bus, E1, '04000503').value['relay'] == 'open'


def test_read_address_needs_a_single_meter():
    single = make_bank([[MeterSpec('123456789012'),
        MeterSpec(WATER, sim.CJT188)]])
    reply = single.buses[0].handle(dlt645.read_address_request())
    assert dlt645.decode(reply).value == '123456789012'
    # several meters answer at once: noise the codec rejects
    bus = make_bank().buses[0]
    noise = bus.handle(dlt645.read_address_request())
    assert noise is None or not StreamDecoder(auto.decode_stream).feed(noise)


def test_dlt645_1997():
    bus = make_bank().buses[0]
    assert read(bus, OLD, '9010', dlt645.V1997).value == Decimal('500.00')
    block = read(bus, OLD, '901F', dlt645.V1997).value
    assert sum(block[f'901{n}'] for n in range(1, 5)) == block['9010']
    assert 215 <= read(bus, OLD, 'B611', dlt645.V1997).value <= 225
    assert read(bus, OLD, '9999', dlt645.V1997).control == 0xC1
    # a 1997 meter ignores 2007 frames and the other way round
    assert bus.handle(dlt645.read_request(OLD, '00010000')) is None
    assert bus.handle(dlt645.read_request(E1, '9010',
        version=dlt645.V1997)) is None


def test_purchase_count_plus_one_applies_and_duplicate_does_not():
    bank = make_bank()
    bus = bank.buses[0]
    meter = bank.meter(E1)
    assert read(bus, E1, recharge.COUNT_DI).value == 5
    frame = recharge.purchase_request(E1, '50.00', 6, password='123456')
    reply = bus.handle(frame)
    assert dlt645.decode(reply).control == 0x94
    assert meter.remaining == Decimal('150.00')
    assert meter.purchase_count == 6 and meter.last_purchase == 'apply'
    # the same push again (a retry): a duplicate, nothing changes
    reply = bus.handle(frame)
    assert dlt645.decode(reply).control == 0x94
    assert meter.last_purchase == recharge.DUPLICATE
    assert meter.remaining == Decimal('150.00')
    assert read(bus, E1, recharge.COUNT_DI).value == 6
    assert read(bus, E1, '00900100').value == Decimal('150.00')
    # a gap in the count is refused
    reply = bus.handle(recharge.purchase_request(E1, '5', 9,
        password='123456'))
    assert dlt645.decode(reply).control == 0xD4
    assert meter.last_purchase == recharge.INVALID
    # a wrong password is refused
    reply = bus.handle(recharge.purchase_request(E1, '5', 7))
    assert dlt645.decode(reply).error_code & 0x04
    assert meter.purchase_count == 6


def test_remaining_decrements_and_trips_at_zero_then_recharge_closes():
    bank = make_bank()
    meter = bank.meter(E1)
    bank.clock.advance(hours=10)
    assert meter.remaining == Decimal('80.00')
    assert meter.energy == Decimal('1020.00')
    bank.clock.advance(hours=45)
    assert meter.remaining == 0 and meter.relay_open
    assert meter.energy == Decimal('1100.00')
    status = meter.status3()
    assert status & 0x10 and status & 0x80          # open, pre-trip alarm
    reply = bank.buses[0].handle(recharge.purchase_request(E1, '20', 6,
        password='123456'))
    assert dlt645.decode(reply).control == 0x94
    assert not meter.relay_open
    bank.clock.advance(hours=1)
    assert meter.remaining == Decimal('18.00')


def test_cjt188_read_both_di_orders_and_valve():
    bank = make_bank()
    bus = bank.buses[0]
    meter = bank.meter(WATER)
    bank.clock.advance(hours=10)
    for order in ('big', 'little'):
        reply = bus.handle(cjt188.read_request(WATER, ser=7,
            di_order=order))
        message = cjt188.decode(reply)
        assert message.di == '901F' and message.di_order == order
        assert message.ser == 7
        assert message.value == Decimal('11.00') == meter.flow
        assert message.fields['status']['valve'] == 'open'
    reply = bus.handle(cjt188.valve_request(WATER, False, ser=8))
    message = cjt188.decode(reply)
    assert message.control == 0x84 and message.ser == 8
    assert message.fields['status']['valve'] == 'closed'
    assert not meter.valve_open
    bank.clock.advance(hours=10)
    assert meter.flow == Decimal('11.00')           # no flow when closed
    reply = bus.handle(cjt188.valve_request(WATER, True, ser=9,
        di_order='little'))
    assert cjt188.decode(reply).fields['status']['valve'] == 'open'
    # wrong meter type or address: silence
    assert bus.handle(cjt188.read_request(WATER, meter_type=0x30)) is None
    assert bus.handle(cjt188.read_request('1')) is None
    reply = bus.handle(cjt188.read_address_request())
    assert cjt188.decode(reply).address == WATER


def test_broadcast_time_sync_has_no_reply_and_sets_the_clock():
    bank = make_bank()
    bus = bank.buses[0]
    when = dt.datetime(2025, 6, 1, 12, 30, 0)
    assert bus.handle(dlt645.time_sync_request(when)) is None
    for address in (E1, E2, OLD):
        meter = bank.meter(address)
        assert meter.meter_datetime() == when and meter.time_syncs == 1
    assert read(bus, E1, '0400010C').value == when.isoformat()


def test_unknown_addresses_and_garbage_get_no_reply():
    bus = make_bank().buses[0]
    assert bus.handle(dlt645.read_request('999', '00010000')) is None
    assert bus.handle(b'') is None
    assert bus.handle(b'\x68\x16') is None
    good = bytearray(dlt645.read_request(E1, '00010000'))
    good[-2] ^= 1
    assert bus.handle(bytes(good)) is None           # bad checksum
    assert bus.handle(dlt645.read_response(E1, '00010000', 1)) is None
    rng = random.Random(5)
    for _ in range(3000):
        size = rng.randrange(1, 40)
        raw = bytes(rng.randrange(256) for _ in range(size))
        if rng.random() < 0.5:
            raw = b'\x68' + raw[1:]
        bus.handle(raw)                               # never raises


def test_malformed_request_to_a_meter_is_an_abnormal_reply():
    bus = make_bank().buses[0]
    frame = dlt645.Frame(E1, dlt645.READ, b'\x00').to_bytes()
    assert dlt645.decode(bus.handle(frame)).control == 0xD1
    assert dlt645.decode(bus.handle(dlt645.read_request(E1,
        '12345678'))).error == 'no requested data'


def test_generated_specs_and_spec_file(tmp_path):
    buses = sim.generate_specs(2, 4, start_address=100, step=10,
        fraction_1997=0.5, water_per_bus=1, prepaid=1.0, seed=3)
    addresses = [m.address for bus in buses for m in bus]
    assert addresses[0] == '000000000100' and addresses[1] == '000000000110'
    assert [m.protocol for m in buses[0]] == [sim.DLT645_2007,
        sim.DLT645_1997, sim.DLT645_2007, sim.CJT188]
    assert buses[0][3].address == '00000000000130'
    assert buses[0][0].remaining is not None
    assert sim.generate_specs(2, 4, seed=3)[1][2].rate == \
        sim.generate_specs(2, 4, seed=3)[1][2].rate
    path = tmp_path / 'meters.json'
    path.write_text(json.dumps([
        {'bus': 1, 'address': '5', 'protocol': 'dlt645_1997'},
        {'bus': 0, 'address': '7', 'energy': '3.5', 'remaining': 10,
            'purchase_count': 2, 'password': '123456'}]))
    loaded = sim.load_spec_file(path)
    assert [len(b) for b in loaded] == [1, 1]
    assert loaded[0][0].purchase_count == 2
    bank = make_bank(loaded)
    assert bank.meter('7').remaining == Decimal('10.00')
    with pytest.raises(ValueError):
        MeterSpec('1', 'modbus')


# --- transports -------------------------------------------------------------

async def exchange(reader, writer, request, timeout=2.0):
    """Send one request, return the first frame decoded (or None)."""
    writer.write(request)
    await writer.drain()
    decoder = StreamDecoder(auto.decode_stream)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            data = await asyncio.wait_for(reader.read(1024), left)
        except asyncio.TimeoutError:
            return None
        if not data:
            return None
        frames = decoder.feed(data)
        if frames:
            return frames[0]


def test_tcp_bus():
    async def run():
        bank = make_bank([specs(), [MeterSpec('5', energy='7')]])
        async with bank:
            ports = await bank.serve_tcp('127.0.0.1', 0)
            assert len(ports) == 2
            reader, writer = await asyncio.open_connection('127.0.0.1',
                ports[0])
            frame = await exchange(reader, writer,
                dlt645.read_request(E1, '00010000'))
            assert dlt645.parse(frame).value == Decimal('1000.00')
            # two frames in one write, and one split in two writes
            both = (dlt645.read_request(E2, '00010000')
                + cjt188.read_request(WATER, ser=3))
            writer.write(both)
            decoder = StreamDecoder(auto.decode_stream)
            got = []
            while len(got) < 2:
                got += decoder.feed(await reader.read(1024))
            assert got[0].address == E2 and got[1].address == WATER
            request = dlt645.read_request(OLD, '9010',
                version=dlt645.V1997)
            writer.write(request[:5])
            await writer.drain()
            await asyncio.sleep(0.05)
            frame = await exchange(reader, writer, request[5:])
            assert dlt645.parse(frame, '1997').value == Decimal('500.00')
            # the meter of bus 1 is not on bus 0
            assert await exchange(reader, writer, dlt645.read_request('5',
                '00010000'), timeout=0.2) is None
            writer.close()
            r1, w1 = await asyncio.open_connection('127.0.0.1', ports[1])
            frame = await exchange(r1, w1, dlt645.read_request('5',
                '00010000'))
            assert dlt645.parse(frame).value == Decimal('7.00')
            w1.close()
    asyncio.run(run())


def test_a_partial_request_is_forgotten_after_silence():
    async def run():
        bank, reader, writer = await _one_bus(frame_timeout=0.1)
        async with bank:
            # a header announcing L=200 that never completes
            writer.write(bytes.fromhex('68 01 00 00 00 00 00 68 11 C8 33'))
            await asyncio.sleep(0.2)
            frame = await exchange(reader, writer,
                dlt645.read_request(E1, '00010000'))
            assert frame is not None and frame.address == E1
            writer.close()
    asyncio.run(run())


def test_dtu_dials_registers_answers_and_reconnects():
    async def run():
        connections = asyncio.Queue()

        async def collector(reader, writer):
            await connections.put((reader, writer))

        server = await asyncio.start_server(collector, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        bank = make_bank([specs(), [MeterSpec('5')]], heartbeat=0.1,
            reconnect_delay=0.05)
        async with bank:
            dtus = await bank.dial('127.0.0.1', port, ['dtu-0', '0A0B'])
            assert len(dtus) == 2
            seen = {}
            for _ in range(2):
                reader, writer = await asyncio.wait_for(connections.get(), 2)
                registration = await asyncio.wait_for(reader.read(64), 2)
                seen[registration] = (reader, writer)
            assert set(seen) == {b'REG:dtu-0', b'REG:0A0B'}
            reader, writer = seen[b'REG:dtu-0']
            frame = await exchange(reader, writer,
                dlt645.read_request(E1, '00010000'))
            assert dlt645.parse(frame).value == Decimal('1000.00')
            # the collector drops the connection: the DTU comes back
            writer.close()
            reader, writer = await asyncio.wait_for(connections.get(), 2)
            data = await asyncio.wait_for(reader.read(64), 2)
            assert data.startswith(b'REG:dtu-0')
            assert dtus[0].connects == 2
            frame = await exchange(reader, writer,
                dlt645.read_request(E2, '00010000'))
            assert dlt645.parse(frame).address == E2
            writer.close()
            for _, w in seen.values():
                w.close()
        server.close()
        await server.wait_closed()
    asyncio.run(run())


def test_dtu_hex_id_and_heartbeat():
    async def run():
        connections = asyncio.Queue()

        async def collector(reader, writer):
            await connections.put((reader, writer))

        server = await asyncio.start_server(collector, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        bank = make_bank(reg_prefix=b'', hb_prefix=b'\xfa', id_format='hex',
            heartbeat=0.05)
        async with bank:
            await bank.dial('127.0.0.1', port, ['01020304'])
            reader, writer = await asyncio.wait_for(connections.get(), 2)
            assert await asyncio.wait_for(reader.readexactly(4), 2) == \
                b'\x01\x02\x03\x04'
            assert await asyncio.wait_for(reader.readexactly(10), 2) == \
                b'\xfa\x01\x02\x03\x04' * 2
            writer.close()
        server.close()
        await server.wait_closed()
    asyncio.run(run())


def test_pty_bus_with_pyserial():
    serial = pytest.importorskip('serial')

    async def run():
        bank = make_bank()
        async with bank:
            paths = bank.open_ptys()
            assert list(paths) == [0] and paths[0].startswith('/dev/')
            loop = asyncio.get_running_loop()

            def client():
                with serial.Serial(paths[0], 2400, parity='E',
                        timeout=1) as port:
                    port.write(dlt645.read_request(E1, '00010000'))
                    decoder = StreamDecoder(auto.decode_stream)
                    deadline = time.monotonic() + 2
                    while time.monotonic() < deadline:
                        frames = decoder.feed(port.read(1) +
                            port.read(port.in_waiting or 0))
                        if frames:
                            return frames[0]
            frame = await loop.run_in_executor(None, client)
            assert frame is not None
            assert dlt645.parse(frame).value == Decimal('1000.00')
    asyncio.run(run())


async def _one_bus(**options):
    bank = make_bank(**options)
    ports = await bank.serve_tcp('127.0.0.1', 0)
    reader, writer = await asyncio.open_connection('127.0.0.1', ports[0])
    return bank, reader, writer


def test_fault_drop_never_answers():
    async def run():
        bank, reader, writer = await _one_bus(drop=1.0, seed=7)
        async with bank:
            for _ in range(3):
                assert await exchange(reader, writer, dlt645.read_request(
                    E1, '00010000'), timeout=0.15) is None
            assert bank.buses[0].stats['drop'] == 3
            writer.close()
    asyncio.run(run())


def test_fault_corrupt_gives_frames_the_codec_rejects():
    async def run():
        bank, reader, writer = await _one_bus(corrupt=1.0, seed=7)
        async with bank:
            cases = [(dlt645.read_request(E1, '00010000'), dlt645),
                (cjt188.read_request(WATER), cjt188)] * 10
            for request, codec in cases:
                writer.write(request)
                await writer.drain()
                await asyncio.sleep(0.02)
                raw = await asyncio.wait_for(reader.read(1024), 1)
                assert raw
                decoder = StreamDecoder(codec.decode_stream)
                assert decoder.feed(raw) == []
                assert any('checksum' in r for r in decoder.rejected)
                with pytest.raises(CodecError):
                    auto.decode(raw)
            writer.close()
    asyncio.run(run())


def test_fault_disconnect_closes_mid_frame():
    async def run():
        bank, reader, writer = await _one_bus(disconnect=1.0, seed=7)
        async with bank:
            writer.write(dlt645.read_request(E1, '00010000'))
            data = await asyncio.wait_for(reader.read(), 2)   # to EOF
            full = dlt645.read_response(E1, '00010000', Decimal('1000.00'))
            assert 0 < len(data) < len(full) and full.startswith(data)
            writer.close()
    asyncio.run(run())


def test_faults_are_seeded_and_reproducible():
    def run(seed):
        bank = make_bank(drop=0.1, delay=0.1, corrupt=0.1, garble=0.1,
            disconnect=0.1, seed=seed)
        bus = bank.buses[0]
        request = dlt645.read_request(E2, '00010000')
        frame = dlt645.Frame.from_bytes(request)
        return [bus.plan(frame, len(request)) for _ in range(300)]
    first = run(11)
    faults = [p.fault for p in first]
    for name in ('drop', 'delay', 'corrupt', 'garble', 'disconnect'):
        assert 10 < faults.count(name) < 60
    assert 60 < faults.count(None) < 240
    assert run(11) == first
    assert [p.fault for p in run(12)] != faults


def test_fault_delay_answers_late():
    async def run():
        bank, reader, writer = await _one_bus(delay=1.0, late_by=0.3)
        async with bank:
            started = time.monotonic()
            assert await exchange(reader, writer, dlt645.read_request(E2,
                '00010000'), timeout=0.15) is None
            frame = await exchange(reader, writer, b'', timeout=1)
            assert frame.address == E2
            assert time.monotonic() - started >= 0.3
            writer.close()
    asyncio.run(run())


def test_wire_timing():
    async def run():
        bank, reader, writer = await _one_bus(wire_timing=True, baud=9600,
            reply_delay=0.02)
        async with bank:
            request = dlt645.read_request(E1, '00010000')
            started = time.monotonic()
            frame = await exchange(reader, writer, request)
            elapsed = time.monotonic() - started
            expected = (len(request) + len(frame.to_bytes(0))) * 11 / 9600 \
                + 0.02
            assert expected <= elapsed < expected + 0.5
            writer.close()
    asyncio.run(run())


def test_half_duplex_bus_serialises_connections():
    async def run():
        bank = make_bank(wire_timing=True, baud=2400, reply_delay=0.05)
        ports = await bank.serve_tcp('127.0.0.1', 0)
        async with bank:
            clients = [await asyncio.open_connection('127.0.0.1', ports[0])
                for _ in range(3)]
            started = time.monotonic()
            frames = await asyncio.gather(*(exchange(r, w,
                dlt645.read_request(E1, '00010000')) for r, w in clients))
            elapsed = time.monotonic() - started
            assert all(f is not None for f in frames)
            request = dlt645.read_request(E1, '00010000')
            one = (len(request) + len(frames[0].to_bytes(0))) * 11 / 2400 \
                + 0.05
            assert 3 * one <= elapsed < 3 * one + 0.5
            for _, w in clients:
                w.close()
    asyncio.run(run())


def test_speed_accelerates_consumption():
    bank = Bank([[MeterSpec(E2, rate=1.0)]], SimOptions(speed=36000,
        start=START))
    meter = bank.meter(E2)
    time.sleep(0.2)      # two simulated hours
    assert Decimal('1.50') < meter.energy < Decimal('3.00')


def test_sim_command(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, '-c',
        'import sys\nfrom trytond.modules.dh_collector.sim_cli import main\n'
        'sys.exit(main(sys.argv[1:]))', '--buses', '2',
        '--meters-per-bus', '3', '--port', '0', '--pty', '1',
        '--start-address', '410000000001', '--water-per-bus', '1'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert lines[0].startswith('BUS 0 tcp://127.0.0.1:')
        assert lines[0].endswith('meters=3 first=410000000001')
        assert lines[1].startswith('BUS 1 ') and 'first=410000000004' \
            in lines[1]
        assert lines[2].startswith('PTY 0 /dev/')
        port = int(lines[1].split()[2].rsplit(':', 1)[1])

        async def ask():
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            frame = await exchange(reader, writer,
                dlt645.read_request('410000000004', '00010000'))
            writer.close()
            return frame
        assert asyncio.run(ask()).address == '410000000004'
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_sim_command_usage_error(capsys):
    from trytond.modules.dh_collector.sim_cli import main
    assert main(['--drop', '2']) == 2
    assert main(['--dial', '127.0.0.1:1']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 2
