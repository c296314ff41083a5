# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The demo's collection: one TCP-bridge channel per bus of the plaza, the
simulator standing in for the meters (continuing from their last reading),
and the collector daemon reading them live."""
import json
import os
import subprocess
import sys
import time

from trytond.pool import Pool

SIM_PORT_OFFSET = 1100      # web port 8000 -> buses on 9100, 9101, …


class DemoPart:
    sequence = 20
    name = 'dh_collector'

    @classmethod
    def build(cls, options, log):
        pool = Pool()
        Meter = pool.get('dh.meter')
        Channel = pool.get('dh.channel')
        Plan = pool.get('dh.read.plan')
        ModelData = pool.get('ir.model.data')
        base = int(options.get('port') or 8000) + SIM_PORT_OFFSET
        channels = Channel.search([], order=[('id', 'ASC')])
        if not channels:
            hourly = Plan(ModelData.get_id('dh_collector',
                    'plan_hourly_energy'))
            water = Plan(ModelData.get_id('dh_collector', 'plan_water_daily'))
            labels = sorted({m.channel for m in Meter.search([])
                    if m.channel})
            channels = Channel.create([{'name': label, 'kind': 'tcp',
                        'host': '127.0.0.1', 'port': base + i,
                        'timeout': 0.5, 'retries': 2, 'backoff': 0.2,
                        'plans': [('add', [hourly.id, water.id])]}
                    for i, label in enumerate(labels)])
            by_label = {c.name: c for c in channels}
            meters = Meter.search([('channel', 'in', labels)])
            for label, channel in by_label.items():
                Meter.write([m for m in meters if m.channel == label],
                    {'bus': channel.id, 'password': '000000'})
            log(f'dh_collector: {len(channels)} channels (TCP bridges on '
                f'127.0.0.1:{base}…)')
        else:
            for i, channel in enumerate(channels):
                if channel.kind == 'tcp' and channel.host == '127.0.0.1' \
                        and channel.port != base + i:
                    Channel.write([channel], {'port': base + i})
        return {'channels': len(channels)}

    @classmethod
    def write_specs(cls, path):
        """The simulator's meter bank: bus i = the i-th channel, each meter
        starting from its last stored reading"""
        pool = Pool()
        Channel = pool.get('dh.channel')
        specs = []
        for bus, channel in enumerate(Channel.search([('kind', '=', 'tcp')],
                    order=[('id', 'ASC')])):
            for meter in channel.meters:
                if meter.protocol not in {'dlt645_2007', 'dlt645_1997',
                        'cjt188'}:
                    continue
                specs.append({'bus': bus, 'address': meter.address,
                        'protocol': meter.protocol,
                        'energy': str(round(meter.last_value or 0, 2)),
                        'rate': 0.02 if meter.utility == 'water' else 0.6,
                        'relay_open': meter.relay == 'open'})
        with open(path, 'w') as handle:
            json.dump(specs, handle)
        return len(specs)


    @classmethod
    def _specs(cls, ctx):
        path = os.path.join(ctx['db_dir'], 'simulator-meters.json')
        ctx['in_transaction'](lambda: cls.write_specs(path))
        return path

    @classmethod
    def demo_once(cls, ctx, log):
        "dh demo --no-serve: the simulator and one collection round"
        base = ctx['port'] + SIM_PORT_OFFSET
        simulator = start_simulator(ctx['bin'], cls._specs(ctx), base)
        try:
            return run_collector_once(ctx['bin'], ctx['config'],
                ctx['database'], log)
        finally:
            simulator.terminate()
            simulator.wait(10)

    @classmethod
    def demo_services(cls, ctx, log):
        "dh demo: the simulator and the collector daemon, live"
        base = ctx['port'] + SIM_PORT_OFFSET
        simulator = start_simulator(ctx['bin'], cls._specs(ctx), base)
        collector = subprocess.Popen([os.path.join(ctx['bin'], 'dh'),
                'collect', '-c', ctx['config'], '-d', ctx['database'],
                '--spool', os.path.join(ctx['db_dir'],
                    f"{ctx['database']}-spool.jsonl")])
        log(f'SIMULATOR: meters on 127.0.0.1:{base}… (dh sim)')
        return [simulator, collector]


def start_simulator(bin_dir, spec_file, port, speed=1):
    "Start `dh sim` on the spec file; returns the process once it listens"
    process = subprocess.Popen([os.path.join(bin_dir, 'dh'), 'sim',
            '--spec-file', spec_file, '--port', str(port),
            '--speed', str(speed)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith('BUS'):
            # the first bus is up; the others start in the same loop
            time.sleep(0.5)
            return process
    process.terminate()
    raise RuntimeError('the simulator did not start')


def run_collector_once(bin_dir, config, database, log):
    out = subprocess.run([os.path.join(bin_dir, 'dh'), 'collect', '-c',
            config, '-d', database, '--once'], capture_output=True,
        text=True, timeout=600)
    if out.returncode:
        log(f'dh_collector: collection round failed: {out.stderr[-500:]}')
        return {}
    channels = readings = answering = meters = 0
    for line in out.stdout.splitlines():
        if line.startswith('CHANNEL'):
            values = dict(i.split('=') for i in line.split()[2:])
            channels += 1
            readings += int(values['readings'])
            answering += int(values['answering'])
            meters += int(values['meters'])
    log(f'dh_collector: one round: {answering}/{meters} meters answered, '
        f'{readings} readings on {channels} channels')
    return {'collected': readings}


def python_bin():
    return os.path.dirname(os.path.abspath(sys.executable))
