"""Modbus meters: the register maps (PROTOCOLS.md §5) and the pymodbus
poller against a real pymodbus server on loopback, Modbus TCP (MBAP) and
RTU over TCP. The datastores below are filled from the addresses in
PROTOCOLS.md written out here, not from the maps under test, with decoy
values around them so an address that is off by a register shows."""

import asyncio
import socket
import struct
from decimal import Decimal

import pytest
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from trytond.modules.dh_collector.engine import ChannelSpec, Command
from trytond.modules.dh_collector.engine.modbus import (
    ModbusChannelPoller, ModbusRefused, ModbusTarget, make_client,
    make_poller, poller_kind, read_modbus_meter)
from trytond.modules.dh_collector.engine.model import MeterTarget
from trytond.modules.dh_collector.modbus_maps import (
    MAPS, ModbusMapError, decode_value, plan_reads)

from .test_engine_support import FakeClock, MemorySink, Queue

ALL = ['energy_total', 'energy_reverse', 'voltage', 'current', 'power']
FRAMERS = {'socket': FramerType.SOCKET, 'rtu': FramerType.RTU}
D = Decimal

# PROTOCOLS.md §5, DDSU666 (FC04, values in V / A / kW / kWh)
DDSU666 = {0x2000: 230.2, 0x2002: 5.123, 0x2004: 1.1787, 0x2006: 0.25,
    0x200A: 0.98, 0x200E: 50.0, 0x4000: 1234.56, 0x400A: 7.5}
# PROTOCOLS.md §5, DTSU666 (FC03, the 0x2000 block raw: 0.1 V, 0.001 A,
# 0.1 W); Ua 230.15 V, Ia 1.5 A, Pt 1035 W on the secondary side
DTSU666 = {0x2000: 3990.0, 0x2002: 3991.0, 0x2004: 3992.0,
    0x2006: 2301.5, 0x2008: 2310.0, 0x200A: 2320.0,
    0x200C: 1500.0, 0x200E: 1600.0, 0x2010: 1700.0,
    0x2012: 10350.0, 0x2014: 3450.0, 0x2016: 3460.0, 0x2018: 3440.0,
    0x201A: 120.0, 0x202A: 0.99, 0x2044: 50.0,
    0x401C: 11.0, 0x401E: 100.25, 0x4020: 33.0, 0x4026: 44.0,
    0x4028: 0.5, 0x402A: 55.0}


def words(value: float) -> list[int]:
    return list(struct.unpack('>HH', struct.pack('>f', value)))


def crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, 'little')


def device(unit, function_code, values, *, blocks=(0x2000, 0x4000),
        action=None):
    """A meter: float32 ``values`` {address: value} in input (FC04) or
    holding (FC03) registers, 0x30 registers from each of ``blocks``."""
    regs = []
    for base in blocks:
        data = [0] * 0x30
        for address, value in values.items():
            if base <= address < base + 0x30:
                data[address - base:address - base + 2] = words(value)
        regs.append(SimData(base, values=data, datatype=DataType.REGISTERS))
    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    other = [SimData(0, values=[0], datatype=DataType.REGISTERS)]
    return SimDevice(unit, simdata=(bits, bits,
        regs if function_code == 3 else other,
        regs if function_code == 4 else other), action=action)


class Bus:
    """A pymodbus server on 127.0.0.1; ``silent``: unit ids whose replies
    are dropped (a dead meter on the RS485 side)."""

    def __init__(self, devices, framer='rtu', silent=()):
        self.devices = devices
        self.framer = framer
        self.silent = set(silent)
        self.server = None
        self.port = 0

    def _trace(self, sending, data):
        if sending and data:
            unit = data[0] if self.framer == 'rtu' else data[6]
            if unit in self.silent:
                return b''
        return data

    async def start(self):
        self.server = ModbusTcpServer(self.devices,
            framer=FRAMERS[self.framer], address=('127.0.0.1', self.port),
            trace_packet=self._trace)
        await self.server.serve_forever(background=True)
        self.port = self.server.transport.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        await self.server.shutdown()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()


def spec_for(port, **options):
    options = {'timeout': 0.2, 'retries': 1, 'backoff': 0.01, **options}
    return ChannelSpec(1, 'tcp', host='127.0.0.1', port=port, **options)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def by_key(readings):
    return {(r.meter_id, r.register): r.value for r in readings}


# the maps
def test_maps_are_data_from_protocols_md():
    ddsu, dtsu = MAPS['chint_ddsu666'], MAPS['chint_dtsu666']
    assert ddsu.function_code == 4 and dtsu.function_code == 3
    assert {n: r.address for n, r in ddsu.registers.items()} == {
        'voltage': 0x2000, 'current': 0x2002, 'power': 0x2004,
        'energy_total': 0x4000, 'energy_reverse': 0x400A}
    assert {n: r.address for n, r in dtsu.registers.items()} == {
        'voltage': 0x2006, 'current': 0x200C, 'power': 0x2012,
        'energy_total': 0x401E, 'energy_reverse': 0x4028}
    for modbus_map in (ddsu, dtsu):
        assert modbus_map.word_order == 'big'
        assert all(r.type == 'float32' and r.words == 2
            for r in modbus_map.registers.values())
    assert not ddsu.takes_ct and not ddsu.takes_pt
    ratios = {n: (r.ct, r.pt) for n, r in dtsu.registers.items()}
    assert ratios == {'voltage': (False, True), 'current': (True, False),
        'power': (True, True), 'energy_total': (True, True),
        'energy_reverse': (True, True)}
    with pytest.raises(TypeError):
        MAPS['chint_ddsu666'].registers['voltage'] = None


def test_protocols_md_sample_frame_is_230_2_volts():
    frame = bytes.fromhex('01 04 04 43 66 33 34 1B 38')
    assert crc16(frame[:-2]) == frame[-2:]
    unit, function, count = frame[0], frame[1], frame[2]
    assert (unit, function, count) == (1, 4, 4)
    registers = [int.from_bytes(frame[3 + i:5 + i], 'big')
        for i in range(0, count, 2)]
    assert registers == [0x4366, 0x3334]
    assert decode_value('chint_ddsu666', 'voltage', registers) == D('230.2')
    assert str(decode_value('chint_ddsu666', 'voltage', registers)) == (
        '230.2')


def test_decode_scaling_ratios_and_rounding():
    assert decode_value('chint_ddsu666', 'energy_total',
        words(1234.56)) == D('1234.56')
    assert decode_value('chint_ddsu666', 'current', words(5.1234)) == (
        D('5.123'))
    assert decode_value('chint_ddsu666', 'power', words(-1.23456)) == (
        D('-1.2346'))
    assert str(decode_value('chint_ddsu666', 'power', words(-0.0))) == (
        '0.0000')
    # DTSU666: raw secondary units; voltage × PT, current × CT,
    # power and energy × CT × PT
    dtsu = 'chint_dtsu666'
    assert decode_value(dtsu, 'voltage', words(2301.5)) == D('230.2')
    assert decode_value(dtsu, 'voltage', words(2301.5), ct=30) == D('230.2')
    assert decode_value(dtsu, 'voltage', words(1000.0), pt=100) == (
        D('10000.0'))
    assert decode_value(dtsu, 'current', words(1500.0), ct=30) == D('45.000')
    assert decode_value(dtsu, 'current', words(1500.0), pt=100) == (
        D('1.500'))
    assert decode_value(dtsu, 'power', words(10350.0)) == D('1.0350')
    assert decode_value(dtsu, 'power', words(10350.0), ct=30, pt=2) == (
        D('62.1000'))
    assert decode_value(dtsu, 'energy_total', words(100.25), ct=30,
        pt='1.5') == D('4511.25')
    assert decode_value(MAPS[dtsu], 'energy_reverse', words(0.5),
        ct=D(40)) == D('20.00')


@pytest.mark.parametrize('call, message', [
    (lambda: decode_value('nope', 'voltage', [0, 0]), 'unknown Modbus map'),
    (lambda: decode_value('chint_ddsu666', 'water_flow', [0, 0]),
        "register 'water_flow' is not in map chint_ddsu666"),
    (lambda: decode_value('chint_ddsu666', 'voltage', [0x4366]),
        '2 words expected, got 1'),
    (lambda: decode_value('chint_ddsu666', 'voltage', [0, 0, 0]),
        '2 words expected, got 3'),
    (lambda: decode_value('chint_ddsu666', 'voltage', [0x10000, 0]),
        'not a 16-bit word'),
    (lambda: decode_value('chint_ddsu666', 'voltage', [0x7FC0, 0]),
        'the meter gave nan'),
    (lambda: decode_value('chint_ddsu666', 'voltage', [0x7F80, 0]),
        'the meter gave inf'),
    (lambda: decode_value('chint_ddsu666', 'current', words(5.0), ct=30),
        'takes no CT ratio'),
    (lambda: decode_value('chint_ddsu666', 'voltage', words(5.0), pt=10),
        'takes no PT ratio'),
    (lambda: decode_value('chint_dtsu666', 'current', words(5.0), ct=0),
        'CT ratio must be positive'),
    (lambda: decode_value('chint_dtsu666', 'current', words(5.0), pt='x'),
        'PT ratio'),
    ])
def test_decode_errors(call, message):
    with pytest.raises(ModbusMapError, match=message):
        call()


def test_plan_reads_merges_documented_neighbours_only():
    blocks = plan_reads('chint_ddsu666', ALL)
    assert [(b.address, b.count) for b in blocks] == [
        (0x4000, 2), (0x400A, 2), (0x2000, 6)]
    assert blocks[2].items == (('voltage', 0), ('current', 2), ('power', 4))
    blocks = plan_reads('chint_dtsu666', ['voltage', 'power', 'current',
        'energy_total', 'energy_reverse'])
    assert [(b.address, b.count) for b in blocks] == [
        (0x2006, 14), (0x401E, 2), (0x4028, 2)]
    # without Ia, Ua and Pt are 10 registers apart: two reads
    blocks = plan_reads('chint_dtsu666', ['power', 'voltage'])
    assert [(b.address, b.count) for b in blocks] == [
        (0x2012, 2), (0x2006, 2)]
    assert plan_reads('chint_dtsu666', ['current']) == plan_reads(
        'chint_dtsu666', ['current', 'current'])
    with pytest.raises(ModbusMapError):
        plan_reads('chint_dtsu666', ['energy_t1'])


def test_target_validation_and_factory():
    target = ModbusTarget(1, 3, 'chint_dtsu666', ALL, ct=30, pt='1')
    assert (target.ct, target.pt) == (D(30), D(1))
    assert target.protocol == 'modbus' and target.address == 'unit 3'
    for bad in (dict(unit_id=0), dict(unit_id=256), dict(unit_id='1'),
            dict(map_name='nope'), dict(map_name='chint_ddsu666', ct=30),
            dict(pt=-1)):
        options = {'id': 1, 'unit_id': 1, 'map_name': 'chint_dtsu666',
            **bad}
        with pytest.raises(ValueError):
            ModbusTarget(**options)
    assert poller_kind([target]) == 'modbus'
    assert poller_kind([MeterTarget(2, '1', 'dlt645_2007')]) == 'codec'
    with pytest.raises(ValueError, match='cannot mix'):
        poller_kind([target, MeterTarget(2, '1', 'dlt645_2007')])
    serial = ChannelSpec(2, 'serial', device='/dev/ttyUSB0')
    with pytest.raises(ValueError, match='need a tcp channel'):
        make_poller(serial, [target], MemorySink())
    with pytest.raises(ValueError, match='framer'):
        make_client(spec_for(502), 'ascii-ish')
    poller = make_poller(spec_for(502), [target], MemorySink(),
        framer='modbus_tcp')
    assert isinstance(poller, ModbusChannelPoller)
    with pytest.raises(TypeError, match='not a ModbusTarget'):
        poller.meters = [MeterTarget(2, '1', 'dlt645_2007')]


# against a pymodbus server
def standard_bus():
    return [device(1, 4, DDSU666), device(2, 3, DTSU666),
        device(3, 3, {0x2006: 1000.0, 0x200C: 2000.0, 0x2012: 20000.0,
            0x401E: 10.0, 0x4028: 1.0})]


def standard_meters():
    return [
        ModbusTarget(11, 1, 'chint_ddsu666', ALL),
        ModbusTarget(12, 2, 'chint_dtsu666', ALL, ct=30, pt=1),
        # 10 kV / 100 V PT, 150 / 5 CT
        ModbusTarget(13, 3, 'chint_dtsu666', ALL, ct=30, pt=100),
        ]


EXPECTED = {
    (11, 'voltage'): D('230.2'), (11, 'current'): D('5.123'),
    (11, 'power'): D('1.1787'), (11, 'energy_total'): D('1234.56'),
    (11, 'energy_reverse'): D('7.50'),
    (12, 'voltage'): D('230.2'), (12, 'current'): D('45.000'),
    (12, 'power'): D('31.0500'), (12, 'energy_total'): D('3007.50'),
    (12, 'energy_reverse'): D('15.00'),
    (13, 'voltage'): D('10000.0'), (13, 'current'): D('60.000'),
    (13, 'power'): D('6000.0000'), (13, 'energy_total'): D('30000.00'),
    (13, 'energy_reverse'): D('3000.00'),
    }


@pytest.mark.parametrize('framer', ['rtu', 'socket'])
def test_round_decodes_ddsu666_and_dtsu666(framer):
    async def run():
        async with Bus(standard_bus(), framer) as bus:
            sink = MemorySink()
            poller = make_poller(spec_for(bus.port), standard_meters(),
                sink, clock=FakeClock(), framer=framer)
            stats = await poller.run_round()
            await poller.close()
        return stats, sink.readings
    stats, readings = asyncio.run(run())
    assert by_key(readings) == EXPECTED
    assert len(readings) == 15
    assert (stats.meters, stats.meters_answering, stats.failed_meters) == (
        3, 3, [])
    # DDSU666 3 reads, each DTSU666 3 reads (Ua..Pt at once)
    assert (stats.attempts, stats.errors, stats.readings) == (9, 0, 15)
    assert stats.last_error is None
    assert [r.register for r in readings[:5]] == ALL


def test_rtu_over_tcp_bridge_gives_the_protocols_md_frame():
    """A transparent bridge that answers the DDSU666 voltage request with
    the exact bytes of PROTOCOLS.md §5."""
    request = bytes.fromhex('01 04 20 00 00 02')
    request += crc16(request)
    seen = []

    async def bridge(reader, writer):
        try:
            while True:
                data = await reader.readexactly(8)
                seen.append(data)
                if data == request:
                    writer.write(bytes.fromhex('01 04 04 43 66 33 34 1B 38'))
                    await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    async def run():
        server = await asyncio.start_server(bridge, '127.0.0.1', 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            client = make_client(spec_for(port), 'rtu')
            try:
                readings = await read_modbus_meter(client,
                    ModbusTarget(5, 1, 'chint_ddsu666', ['voltage']),
                    clock=FakeClock())
            finally:
                client.close()
        return readings
    readings = asyncio.run(run())
    assert seen == [request]
    assert [(r.meter_id, r.register, r.value) for r in readings] == [
        (5, 'voltage', D('230.2'))]


@pytest.mark.parametrize('framer', ['rtu', 'socket'])
def test_silent_unit_fails_its_meter_not_the_round(framer):
    async def run():
        async with Bus(standard_bus() + [device(9, 4, DDSU666)], framer,
                silent={9}) as bus:
            sink = MemorySink()
            meters = standard_meters()
            meters.insert(1, ModbusTarget(19, 9, 'chint_ddsu666', ALL))
            poller = make_poller(spec_for(bus.port, retries=1), meters,
                sink, clock=FakeClock(), framer=framer, suspect_after=1)
            first = await poller.run_round()
            second = await poller.run_round()
            await poller.close()
        return first, second, sink.readings, poller.health
    first, second, readings, health = asyncio.run(run())
    assert first.failed_meters == [19] and second.failed_meters == [19]
    assert first.meters_answering == 3
    assert 'meter unit 9' in first.last_error
    assert 'no reply' in first.last_error
    # 1 + 1 retry on its first read, the rest skipped; once suspect a
    # single attempt
    assert first.errors == 2 and second.errors == 1
    assert first.attempts == 9 + 2
    assert health[19].consecutive_failures == 2
    assert 'no valid reply from meter unit 9 after 1 attempt' in (
        health[19].last_error)
    assert health[11].consecutive_failures == 0
    assert len(readings) == 30
    assert {k: v for k, v in by_key(readings).items()} == EXPECTED


def test_gateway_exception_0x0b_is_retried_other_exceptions_refuse():
    calls = []

    async def gateway_lost(function_code, *args):
        calls.append(function_code)
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def run():
        devices = [device(1, 4, DDSU666, blocks=(0x2000,)),
            device(4, 4, DDSU666, action=gateway_lost)]
        async with Bus(devices, 'socket') as bus:
            sink = MemorySink()
            poller = make_poller(spec_for(bus.port, retries=2), [
                ModbusTarget(11, 1, 'chint_ddsu666', ALL),
                ModbusTarget(14, 4, 'chint_ddsu666', ALL)], sink,
                clock=FakeClock(), framer='socket')
            stats = await poller.run_round()
            await poller.close()
        return stats, sink.readings, poller.health
    stats, readings, health = asyncio.run(run())
    # unit 1 has no 0x4000 block: illegal address, refused once each
    assert by_key(readings) == {k: v for k, v in EXPECTED.items()
        if k[0] == 11 and k[1] in ('voltage', 'current', 'power')}
    assert 'meter refused: Modbus exception 0x02' in health[11].last_error
    # unit 4: the gateway says the target did not answer: 3 attempts
    assert len(calls) == 3
    assert stats.failed_meters == [14]
    assert 'gateway' in health[14].last_error
    assert stats.attempts == 3 + 3 and stats.errors == 2 + 3


def test_server_down_fails_the_round_with_a_clear_error():
    async def run():
        sink = MemorySink()
        poller = make_poller(spec_for(free_port(), retries=1),
            standard_meters(), sink, clock=FakeClock())
        stats = await poller.run_round()
        await poller.close()
        return stats, sink.readings, poller.health
    stats, readings, health = asyncio.run(run())
    assert readings == []
    assert stats.failed_meters == [11, 12, 13]
    assert stats.meters_answering == 0
    assert 'connect failed' in stats.last_error
    assert '127.0.0.1' in stats.last_error
    assert stats.attempts == 2      # the channel's retries, then give up
    assert all('connect failed' in health[i].last_error
        for i in (11, 12, 13))


def test_link_lost_then_back():
    async def run():
        bus = await Bus(standard_bus(), 'rtu').start()
        sink = MemorySink()
        poller = make_poller(spec_for(bus.port), standard_meters(), sink,
            clock=FakeClock())
        rounds = [await poller.run_round()]
        await bus.stop()
        rounds.append(await poller.run_round())
        await bus.start()           # same port
        rounds.append(await poller.run_round())
        # a plan reload that changes the timeout: a new client
        client = poller.client
        poller.spec = spec_for(bus.port, timeout=0.3)
        assert poller.client is not client
        assert poller.client is poller.client
        await poller.close()
        await bus.stop()
        return rounds, sink.readings
    rounds, readings = asyncio.run(run())
    assert [r.meters_answering for r in rounds] == [3, 0, 3]
    assert rounds[1].failed_meters == [11, 12, 13]
    assert len(readings) == 30


def test_read_command_and_unsupported_commands():
    async def run():
        async with Bus(standard_bus(), 'rtu') as bus:
            sink = MemorySink()
            queue = Queue([
                Command(1, 12, 'read', {'registers': ['current', 'nope']}),
                Command(2, 11, 'read'),
                Command(3, 11, 'trip'),
                Command(4, 99, 'read'),
                ])
            poller = make_poller(spec_for(bus.port), standard_meters()[:2],
                sink, queue, clock=FakeClock())
            stats = await poller.run_round()
            await poller.close()
        return stats, queue, sink.readings
    stats, queue, readings = asyncio.run(run())
    state, error, result = queue.final(1)[1:]
    assert state == 'failed' and "'nope' is not in Modbus map" in error
    assert result['values'] == {'current': '45.000'}
    state, error, result = queue.final(2)[1:]
    assert state == 'confirmed' and result['values']['voltage'] == '230.2'
    assert queue.final(3)[1:3] == ('failed',
        'trip is not supported on Modbus meters')
    assert queue.final(4)[1] == 'failed'
    assert stats.commands == 4
    assert len(readings) == 1 + 5 + 10


def test_read_modbus_meter_raises_on_failure():
    async def run():
        async with Bus([device(1, 4, DDSU666, blocks=(0x2000,))],
                'socket') as bus:
            client = make_client(spec_for(bus.port), 'socket')
            try:
                ok = await read_modbus_meter(client, ModbusTarget(11, 1,
                    'chint_ddsu666', ['power', 'voltage']))
                with pytest.raises(ModbusRefused, match='0x02'):
                    await read_modbus_meter(client, ModbusTarget(11, 1,
                        'chint_ddsu666', ['energy_total']))
                with pytest.raises(ModbusMapError):
                    await read_modbus_meter(client, ModbusTarget(11, 1,
                        'chint_ddsu666', ['water_flow']))
            finally:
                client.close()
        return ok
    readings = asyncio.run(run())
    assert [(r.register, r.value) for r in readings] == [
        ('power', D('1.1787')), ('voltage', D('230.2'))]
