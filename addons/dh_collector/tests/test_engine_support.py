"""Helpers shared by the collector engine tests (no tests here)."""

import datetime as dt
import itertools
from decimal import Decimal

from trytond.modules.dh_collector.engine import (
    ChannelSpec, Command, MeterTarget)
from trytond.modules.dh_collector.simulator import Bank, SimOptions

START = dt.datetime(2025, 3, 3, 0, 0, 0)
ELECTRIC = ['energy_total', 'energy_t1', 'energy_t2', 'energy_t3',
    'energy_t4', 'energy_reverse', 'voltage', 'current', 'power']
FAST = dict(timeout=0.2, retries=2, backoff=0.01, inter_byte_gap=0.1)


def make_bank(buses, **options) -> Bank:
    """A bank with the simulated clock frozen (speed 0): register values
    do not move, so every reading can be checked exactly."""
    options.setdefault('speed', 0)
    options.setdefault('start', START)
    return Bank(buses, SimOptions(**options))


def targets(bank: Bank, bus: int, registers=None, first_id=None):
    """MeterTargets for the meters of simulator bus ``bus`` (electricity
    meters read ``registers``, all by default; water meters water_flow);
    meter ids are ``bus * 1000 + index`` unless ``first_id``."""
    result = []
    for index, meter in enumerate(bank.buses[bus].meters):
        if meter.protocol == 'cjt188':
            regs = ['water_flow']
        else:
            regs = list(ELECTRIC if registers is None else registers)
        meter_id = (bus * 1000 if first_id is None else first_id) + index
        result.append(MeterTarget(meter_id, meter.address, meter.protocol,
            regs, password=meter.password, meter_type=meter.meter_type))
    return result


def tcp_spec(channel_id, port, **options):
    return ChannelSpec(channel_id, 'tcp', host='127.0.0.1', port=port,
        **{**FAST, **options})


def expected(sim_meter, register):
    """The simulator's value of ``register`` (None: instantaneous values
    that jitter; check those with :func:`plausible`)."""
    if register == 'energy_total' or register == 'water_flow':
        return sim_meter.energy
    if register.startswith('energy_t'):
        return sim_meter.tariffs[int(register[-1]) - 1]
    if register == 'energy_reverse':
        return Decimal('0.00')
    if register == 'power':     # the simulator sums rounded phases
        phases = max(1, min(sim_meter.spec.phases, 3))
        return (sim_meter.power / phases).quantize(Decimal('0.0001')) \
            * phases
    return None


def plausible(sim_meter, register, value) -> bool:
    voltage = Decimal(str(sim_meter.spec.voltage))
    if register == 'voltage':
        return voltage - 4 <= value <= voltage + 4
    if register == 'current':
        # power per phase / (voltage * pf), with the voltage jitter
        phases = max(1, min(sim_meter.spec.phases, 3))
        nominal = sim_meter.power / phases * 1000 / (voltage * Decimal(
            str(sim_meter.spec.power_factor)))
        return abs(value - nominal) <= nominal * Decimal('0.03') + 1
    raise AssertionError(register)


def check_reading(bank, address_of, reading):
    """True when ``reading`` carries the simulator's value."""
    sim_meter = bank.meter(address_of[reading.meter_id])
    want = expected(sim_meter, reading.register)
    if want is None:
        return plausible(sim_meter, reading.register, reading.value)
    return reading.value == want


class FakeClock:
    """Naive UTC, one second later at every call (so readings of
    successive rounds never share a read_at)."""

    def __init__(self, start=dt.datetime(2025, 3, 2, 16, 0, 0)):
        self._counter = itertools.count()
        self.start = start

    def __call__(self):
        return self.start + dt.timedelta(seconds=next(self._counter))


class Database:
    """A sink that behaves like the readings table: idempotent on (meter,
    register, read_at). ``down``: raise before storing; ``lose_ack``:
    store, then raise (the commit happened, the acknowledgement was
    lost)."""

    def __init__(self):
        self.rows: dict[tuple, Decimal] = {}
        self.calls = 0
        self.received: list = []     # every reading passed, repeats too
        self.down = False
        self.lose_ack = 0
        self.acks_lost: list[list] = []

    async def __call__(self, readings):
        self.calls += 1
        if self.down:
            raise ConnectionError('database is down')
        self.received.extend(readings)
        for r in readings:
            old = self.rows.setdefault(r.key, r.value)
            assert old == r.value, f'{r.key}: {old} then {r.value}'
        if self.lose_ack:
            self.lose_ack -= 1
            self.acks_lost.append(list(readings))
            raise TimeoutError('commit acknowledgement lost')


class MemorySink:
    def __init__(self):
        self.readings = []

    async def __call__(self, readings):
        self.readings.extend(readings)


class Queue:
    """A CommandSource in memory: ``reports`` lists (id, state, error,
    result); ``fail_reports`` makes the next reports raise."""

    def __init__(self, commands=()):
        self.pending: list[Command] = list(commands)
        self.reports: list[tuple] = []
        self.fail_reports = 0

    def add(self, *commands):
        self.pending.extend(commands)

    async def fetch(self, channel_id):
        found, self.pending = self.pending, []
        return found

    async def report(self, command_id, state, error, result):
        if self.fail_reports:
            self.fail_reports -= 1
            raise ConnectionError('database is down')
        self.reports.append((command_id, state, error, result))

    def final(self, command_id):
        states = [r for r in self.reports if r[0] == command_id
            and r[1] != 'sent']
        assert len(states) == 1, self.reports
        return states[0]
