"""``dh bench collect``: the collector engine against the simulator.

``run(args) -> dict``; ``args`` may be ``None``, a list of command-line
words, an ``argparse.Namespace`` or a dict (names below). The simulator
(``dh sim``) runs in a separate process so the two do not share a core;
the collector runs here, in one event loop (one core).

(a) zero latency — ``--channels`` TCP bridges (default 200) with
    ``--meters-per-bus`` meters each (25): 5,000 DL/T645-2007 meters, one
    round of energy_total. A first round connects every bridge; the
    figures are of the following ``--rounds`` rounds (best and median):
    ``zero_reads_per_s`` (verified readings per second of wall time) and
    ``zero_reads_per_cpu_s`` (per second of this process's CPU time, the
    collector's own cost). Goal: >= 3,000 reads/s on one core.
(b) wire timing — the simulator replies as a 2400-baud 8E1 bus would
    (request bytes + Td + reply bytes; ``--reply-delay`` Td = 20 ms),
    ``--wire-buses`` buses (4) x ``--wire-meters`` meters (16), one round.
    Ideal per bus = meters x (request + reply bytes) x 11 / baud + Td per
    exchange; ``wire_ratio`` = the slowest channel's round time / ideal,
    ``wire_round_ratio`` = the whole round's wall time / ideal. Goal:
    <= 1.15.

Every reading is checked against the simulator's starting energy (the
simulated clock is frozen with ``--speed 0``), so a fast wrong answer does
not count.
"""

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal

from trytond.modules.dh_collector.codec import dlt645
from trytond.modules.dh_collector.engine import (
    ChannelPoller, ChannelSpec, MeterTarget, TcpBridgeTransport)
from trytond.modules.dh_collector.simulator import generate_specs

DEFAULTS = {'channels': 200, 'meters_per_bus': 25, 'rounds': 3,
    'wire_buses': 4, 'wire_meters': 16, 'baud': 2400, 'reply_delay': 0.020,
    'seed': 1}
START_ADDRESS = 410000000001


def _options(args) -> argparse.Namespace:
    if args is None:
        return argparse.Namespace(**DEFAULTS)
    if isinstance(args, dict):
        return argparse.Namespace(**{**DEFAULTS, **args})
    if isinstance(args, argparse.Namespace):
        return argparse.Namespace(**{**DEFAULTS, **{k: v for k, v in
            vars(args).items() if v is not None and k in DEFAULTS}})
    parser = argparse.ArgumentParser(prog='dh bench collect')
    for name, default in DEFAULTS.items():
        parser.add_argument('--' + name.replace('_', '-'),
            type=type(default), default=default)
    return parser.parse_args(list(args))


class _Simulator:
    """``dh sim`` in a child process; ``ports`` {bus: port}."""

    def __init__(self, *words):
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        self.proc = subprocess.Popen([sys.executable, '-c',
            'import sys\nfrom trytond.modules.dh_collector.sim_cli import '
            'main\nsys.exit(main(sys.argv[1:]))', '--port', '0',
            '--speed', '0', *map(str, words)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            text=True)
        self.ports = {}

    def start(self, buses: int):
        while len(self.ports) < buses:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError('dh sim stopped: '
                    + self.proc.stderr.read().strip())
            if line.startswith('BUS '):
                _, index, url = line.split()[:3]
                self.ports[int(index)] = int(url.rsplit(':', 1)[1])
        return self

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class _Sink:
    def __init__(self, expected):
        self.expected = expected
        self.count = 0
        self.wrong = 0

    async def __call__(self, readings):
        for r in readings:
            self.count += 1
            if r.value != self.expected[r.meter_id]:
                self.wrong += 1


def _plan(buses, meters_per_bus, seed, ports, timeout):
    specs = generate_specs(buses, meters_per_bus,
        start_address=START_ADDRESS, seed=seed)
    plan = []
    expected = {}
    meter_id = 0
    for index, bus in enumerate(specs):
        spec = ChannelSpec(index + 1, 'tcp', host='127.0.0.1',
            port=ports[index], timeout=timeout, retries=2, backoff=0.1)
        meters = []
        for m in bus:
            meter_id += 1
            meters.append(MeterTarget(meter_id, m.address, m.protocol,
                ['energy_total']))
            expected[meter_id] = Decimal(str(m.energy)).quantize(
                Decimal('0.01'))
        plan.append((spec, meters))
    return plan, expected


async def _rounds(plan, sink, rounds: int):
    pollers = [ChannelPoller(spec, meters, TcpBridgeTransport(spec.host,
        spec.port), sink) for spec, meters in plan]
    results = []
    try:
        for number in range(rounds + 1):
            gc.collect()
            cpu = time.process_time()
            wall = time.perf_counter()
            before = sink.count
            stats = await asyncio.gather(*(p.run_round() for p in pollers))
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            results.append({'wall': wall, 'cpu': cpu,
                'readings': sink.count - before,
                'errors': sum(s.errors for s in stats),
                'durations': [s.duration for s in stats]})
    finally:
        for p in pollers:
            await p.close()
    return results


def _zero_latency(opts) -> dict:
    sim = _Simulator('--buses', opts.channels, '--meters-per-bus',
        opts.meters_per_bus, '--start-address', START_ADDRESS, '--seed',
        opts.seed).start(opts.channels)
    try:
        plan, expected = _plan(opts.channels, opts.meters_per_bus,
            opts.seed, sim.ports, timeout=2.0)
        sink = _Sink(expected)
        results = asyncio.run(_rounds(plan, sink, opts.rounds))
    finally:
        sim.stop()
    first, timed = results[0], results[1:]
    rates = [r['readings'] / r['wall'] for r in timed]
    cpu_rates = [r['readings'] / r['cpu'] for r in timed if r['cpu']]
    meters = opts.channels * opts.meters_per_bus
    return {
        'zero_meters': meters,
        'zero_channels': opts.channels,
        'zero_first_round_s': round(first['wall'], 3),
        'zero_round_s': round(min(r['wall'] for r in timed), 3),
        'zero_reads_per_s': round(max(rates)),
        'zero_reads_per_s_median': round(statistics.median(rates)),
        'zero_reads_per_cpu_s': round(max(cpu_rates)) if cpu_rates
            else None,
        'zero_complete': all(r['readings'] == meters for r in results),
        'zero_wrong_values': sink.wrong,
        'zero_errors': sum(r['errors'] for r in results),
        'zero_goal_reads_per_s': 3000,
        }


def _wire_timing(opts) -> dict:
    sim = _Simulator('--buses', opts.wire_buses, '--meters-per-bus',
        opts.wire_meters, '--start-address', START_ADDRESS, '--seed',
        opts.seed, '--wire-timing', '--baud', opts.baud, '--reply-delay',
        opts.reply_delay).start(opts.wire_buses)
    try:
        plan, expected = _plan(opts.wire_buses, opts.wire_meters, opts.seed,
            sim.ports, timeout=1.0)
        sink = _Sink(expected)
        # connect first (a TCP connect is not bus time), then one round
        results = asyncio.run(_rounds(plan, sink, 1))
    finally:
        sim.stop()
    address = plan[0][1][0].address
    request = len(dlt645.read_request(address, '00010000'))
    reply = len(dlt645.read_response(address, '00010000', Decimal('1.00')))
    exchange = (request + reply) * 11 / opts.baud + opts.reply_delay
    ideal = opts.wire_meters * exchange
    timed = results[1]
    slowest = max(timed['durations'])
    return {
        'wire_buses': opts.wire_buses,
        'wire_meters_per_bus': opts.wire_meters,
        'wire_baud': opts.baud,
        'wire_td_s': opts.reply_delay,
        'wire_exchange_bytes': request + reply,
        'wire_ideal_exchange_s': round(exchange, 4),
        'wire_ideal_round_s': round(ideal, 3),
        'wire_slowest_channel_s': round(slowest, 3),
        'wire_round_s': round(timed['wall'], 3),
        'wire_ratio': round(slowest / ideal, 4),
        'wire_round_ratio': round(timed['wall'] / ideal, 4),
        'wire_reads_per_s': round(timed['readings'] / timed['wall'], 1),
        'wire_complete': timed['readings'] == opts.wire_buses
            * opts.wire_meters,
        'wire_wrong_values': sink.wrong,
        'wire_goal_ratio': 1.15,
        }


def run(args=None) -> dict:
    opts = _options(args)
    figures = {}
    figures.update(_zero_latency(opts))
    figures.update(_wire_timing(opts))
    return figures


if __name__ == '__main__':
    import json
    print(json.dumps(run(sys.argv[1:]), indent=1))
