"""``dh bench mqtt``: NB-IoT meter readings through a real Mosquitto into
the collector's MQTT subscriber.

A Mosquitto of its own (tests/mqtttools.py) on a free loopback port;
``--meters`` simulated NB meters (default 200, one MQTT connection each,
QoS 1, in a separate process so publisher and collector do not share a
core) publish ``--readings`` readings each (default 20; 3 registers per
reading) as fast as the broker takes them; the collector's
:class:`MqttChannel` (one connection, persistent session, manual PUBACK
after each flush) parses them into a counting sink. Figures per payload
format: ``<fmt>_messages_per_s`` and ``<fmt>_readings_per_s`` (from the
first message to the last, wall time) and ``<fmt>_cpu_per_message_us``
(the collector process's CPU). Every value is checked."""

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(
    __file__)), '..'))

DEFAULTS = {'meters': 200, 'readings': 20, 'formats': 'json,hex'}
START = 910000000001


def _options(args):
    if args is None:
        return argparse.Namespace(**DEFAULTS)
    if isinstance(args, dict):
        return argparse.Namespace(**{**DEFAULTS, **args})
    parser = argparse.ArgumentParser(prog='dh bench mqtt')
    for name, default in DEFAULTS.items():
        parser.add_argument('--' + name, type=type(default), default=default)
    return parser.parse_args(args)


async def _publish(port, meters, readings, fmt):
    from trytond.modules.dh_collector.nb_sim import NbMeter
    from trytond.modules.dh_collector.simulator import Clock, MeterSpec
    nbs = [NbMeter(MeterSpec(str(START + i), energy=1000 + i, remaining=50,
                rate=0), '127.0.0.1', port, fmt=fmt, interval=0,
            clock=Clock(speed=0, start=dt.datetime(2026, 11, 27, 9)))
        for i in range(meters)]
    tasks = [asyncio.ensure_future(m.run()) for m in nbs]
    for m in nbs:
        await asyncio.wait_for(m.connected.wait(), 60)
    print('READY', flush=True)
    sys.stdin.readline()

    async def one(meter):
        for _ in range(readings):
            await meter.publish_reading()
            meter.meter.clock.advance(60)
    await asyncio.gather(*(one(m) for m in nbs))
    print('DONE', flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _collect(port, meters, readings, fmt):
    from trytond.modules.dh_collector.engine import mqtt
    expected = meters * readings * 3
    got = []
    first = []
    done = asyncio.Event()

    class Sink:
        async def __call__(self, rows):
            if not first:
                first.append(time.monotonic())
            got.extend(rows)
            if len(got) >= expected:
                done.set()

        async def flush(self):
            pass
    spec = mqtt.MqttSpec(1, '127.0.0.1', port, payload_format=fmt,
        client_id=f'dh-bench-{fmt}')
    channel = mqtt.MqttChannel(spec, [mqtt.NbMeter(i + 1, str(START + i))
            for i in range(meters)], Sink())
    task = asyncio.ensure_future(channel.run())
    await asyncio.wait_for(channel.connected.wait(), 60)
    publisher = subprocess.Popen([sys.executable, __file__, '--publish',
            str(port), str(meters), str(readings), fmt],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert (await asyncio.to_thread(publisher.stdout.readline)).strip() \
        == 'READY'
    cpu0 = time.process_time()
    publisher.stdin.write('go\n')
    publisher.stdin.flush()
    await asyncio.wait_for(done.wait(), 600)
    end = time.monotonic()
    cpu = time.process_time() - cpu0
    await asyncio.to_thread(publisher.wait, 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    wrong = sum(1 for r in got if r.register == 'energy_total'
        and r.value != 1000 + r.meter_id - 1)
    seconds = end - first[0]
    messages = meters * readings
    return {f'{fmt}_messages': messages,
        f'{fmt}_messages_per_s': round(messages / seconds),
        f'{fmt}_readings_per_s': round(len(got) / seconds),
        f'{fmt}_cpu_per_message_us': round(cpu / messages * 1e6),
        f'{fmt}_wrong': wrong, f'{fmt}_rejected': channel.stats.rejected}


def run(args=None):
    import mqtttools
    options = _options(args)
    broker = mqtttools.Broker().start()
    figures = {'meters': options.meters, 'readings': options.readings}
    try:
        for fmt in options.formats.split(','):
            figures.update(asyncio.run(_collect(broker.port, options.meters,
                        options.readings, fmt)))
    finally:
        broker.close()
    return figures


if __name__ == '__main__' and sys.argv[1:2] == ['--publish']:
    port, meters, readings, fmt = sys.argv[2:6]
    asyncio.run(_publish(int(port), int(meters), int(readings), fmt))
