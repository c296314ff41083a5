# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""`dh collect`: the collector daemon (抄表前置机) on the database.

The engine (engine/) does the I/O; this module feeds it from Tryton: the
channels, meters and read plans configured in the backend (reloaded every
minute), the command queue (dh.command), the readings sink (the bulk ingest
of dh_metering, behind a durable local spool so a database outage loses
nothing) and each channel's health after every round.  Database calls run
in worker threads (one Tryton transaction each) so the event loop keeps
polling the buses."""
import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import random
import signal
import sys
import time

from . import engine
from .engine.mqtt import MqttHub

log = logging.getLogger('dh.collect')

# which registers each kind of meter can answer
UTILITY_REGISTERS = {
    'electricity': {'energy_total', 'energy_t1', 'energy_t2', 'energy_t3',
        'energy_t4', 'energy_reverse', 'voltage', 'current', 'power'},
    'ac_outdoor': {'energy_total', 'energy_t1', 'energy_t2', 'energy_t3',
        'energy_t4', 'energy_reverse', 'voltage', 'current', 'power'},
    'water': {'water_flow'},
    'ac_indoor': set(),
    }


def _conflict(error):
    "Is this error a conflict between transactions (worth a retry)?"
    sqlstate = getattr(error, 'sqlstate', None)
    if sqlstate:
        # serialization_failure, deadlock_detected, lock_not_available
        return sqlstate in {'40001', '40P01', '55P03'}
    return 'locked' in str(error) or 'busy' in str(error)


def run_in_transaction(database, func, pool, readonly=False,
        context=None):
    """func(pool) in a transaction, retried as Tryton's own dispatcher does:
    with the locks a TransactionError asks for, and on a serialisation
    failure of the database (up to [database] retry times)"""
    from trytond import backend
    from trytond.config import config
    from trytond.transaction import Transaction, TransactionError
    extras = {}
    retry = config.getint('database', 'retry')
    for attempt in range(retry + 1):
        try:
            with Transaction().start(database, 0, readonly=readonly,
                    context=context or {'language': 'zh_CN'},
                    **extras) as transaction:
                try:
                    return func(pool)
                except TransactionError as error:
                    transaction.rollback()
                    error.fix(extras)
                    continue
        except backend.DatabaseOperationalError as error:
            # a serialisation failure, or a lock not had at the start of
            # the transaction: back off with jitter so contenders do not
            # retry in step; anything else (the database is down) is for
            # the caller (the collector spools)
            if attempt >= retry or not _conflict(error):
                raise
            time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
    raise RuntimeError(f'transaction not done after {retry + 1} attempts')


class Database:
    "Synchronous access to one Tryton database (each call a transaction)"

    def __init__(self, config_file, database):
        from trytond import config
        if config_file:
            config.update_etc(config_file)
        from trytond.pool import Pool
        from trytond.transaction import Transaction
        Pool.start()
        self.name = database
        self.pool = Pool(database)
        with Transaction().start(database, 0, readonly=True):
            self.pool.init()

    def _run(self, func, readonly=False):
        return run_in_transaction(self.name, func, self.pool, readonly)

    def plan(self):
        return self._run(lambda pool: pool.get('dh.channel')
            .plan_for_collector(), readonly=True)

    def ingest(self, readings):
        rows = [(r.meter_id, r.register, r.read_at, r.value)
            for r in readings]
        return self._run(lambda pool: pool.get('dh.meter.reading')
            .ingest(rows))

    def pending(self, channel_id):
        def fetch(pool):
            Command = pool.get('dh.command')
            return [engine.Command(c.id, c.meter.id, c.kind,
                    json.loads(c.payload or '{}'))
                for c in Command.pending(channel_id)]
        return self._run(fetch, readonly=True)

    def report(self, command_id, state, error, result):
        return self._run(lambda pool: pool.get('dh.command').report(
                command_id, state, error, result))

    def record_round(self, channel_id, stats):
        values = {'finished': stats.finished or dt.datetime.utcnow(),
            'meters': stats.meters, 'meters_answering': stats.meters_answering,
            'readings': stats.readings, 'attempts': stats.attempts,
            'errors': stats.errors, 'last_error': stats.last_error}
        return self._run(lambda pool: pool.get('dh.channel').record_round(
                channel_id, values))


class DatabaseCommands:
    "The engine's CommandSource on dh.command"

    def __init__(self, db, metrics=None):
        self.db = db
        self.metrics = metrics

    async def fetch(self, channel_id):
        return await asyncio.to_thread(self.db.pending, channel_id)

    async def report(self, command_id, state, error=None, result=None):
        await asyncio.to_thread(self.db.report, command_id, state, error,
            result)
        if self.metrics is not None:
            self.metrics.command(state)


def channel_spec(data):
    return engine.ChannelSpec(id=data['id'], kind=data['kind'],
        host=data['host'], port=data['port'], device=data['device'],
        baud=data['baud'], parity=data['parity'],
        registration_id=data['registration_id'], timeout=data['timeout'],
        retries=data['retries'], backoff=data['backoff'],
        inter_byte_gap=data['inter_byte_gap'],
        modbus_framer=data.get('modbus_framer'))


def meter_targets(data, registers):
    "The channel's meters, each with the due registers it can answer"
    from .engine.modbus import ModbusTarget
    from .modbus_maps import MAPS
    targets = []
    for meter in data['meters']:
        usable = UTILITY_REGISTERS.get(meter['utility'], set())
        try:
            if meter['protocol'] == 'modbus':
                known = set(MAPS[meter['modbus_map']].registers)
                wanted = sorted(set(registers) & usable & known)
                if wanted:
                    targets.append(ModbusTarget(meter['id'],
                            int(meter['address']), meter['modbus_map'],
                            wanted, ct=meter['ct'], pt=meter['pt']))
                continue
            wanted = sorted(set(registers) & usable & set(
                    engine.registers_for(meter['protocol'])))
            if wanted:
                targets.append(engine.MeterTarget(meter['id'],
                        meter['address'], meter['protocol'], wanted,
                        vendor=meter['vendor'], password=meter['password']))
        except (ValueError, KeyError) as exception:
            log.error('meter %s left out of the plan: %s', meter['id'],
                exception)
    return targets


class Schedule:
    "Which read plans are due on which channel"

    def __init__(self):
        self.last_run = {}      # (channel id, plan id) -> monotonic time

    def due(self, data, now, force=False):
        registers, plans = set(), []
        for plan in data['plans']:
            last = self.last_run.get((data['id'], plan['id']))
            if force or last is None or now - last >= plan['interval'] * 60:
                registers.update(plan['registers'])
                plans.append(plan['id'])
        return registers, plans

    def done(self, channel_id, plans, now):
        for plan in plans:
            self.last_run[channel_id, plan] = now


class Daemon:
    """Runs every channel in its own task: a round whenever one of its plans
    is due or 'collect now' was pressed, the channel's queued commands in
    between; the plan is reloaded every ``reload_interval`` seconds.

    ``sharing`` (a :class:`.sharing.Sharing`, PostgreSQL): several daemons
    share the channels; this one polls only the channels it holds the
    lease of.  ``metrics``: a :class:`.metrics.Metrics` to count into."""

    def __init__(self, db, spool_path, dtu=None, tick=2.0,
            reload_interval=60.0, sharing=None, metrics=None):
        self.db = db
        self.tick = tick
        self.reload_interval = reload_interval
        self.schedule = Schedule()
        self.spool = engine.Spool(spool_path)
        self.sink = engine.SpoolingSink(self._ingest, self.spool)
        self.metrics = metrics
        self.commands = DatabaseCommands(db, metrics)
        self.dtu = dtu
        self.sharing = sharing
        # NB-IoT / 4G meters: the 'mqtt' channels subscribe to their broker
        self.mqtt = MqttHub(self.sink, self.commands,
            rejects_path=spool_path + '.rejected.jsonl',
            record=self._record_mqtt)
        self.collector = None
        self.plan_data = {}
        self.mqtt_plan = []     # the 'mqtt' channels (the hub's)
        self.channels = []      # the whole plan: [(ChannelSpec, targets)]
        self.tasks = {}
        self.releasing = set()  # channels finishing their round to go
        # one lease operation at a time: a renewal running in its thread
        # must not revive a lease being given back
        self._lease_lock = asyncio.Lock()
        self.rounds = 0
        if metrics is not None:
            metrics.spool_depth.set_function(lambda: len(self.spool))

    async def _record_mqtt(self, channel_id, stats):
        await asyncio.to_thread(self.db.record_round, channel_id, stats)

    async def _ingest(self, readings):
        await asyncio.to_thread(self.db.ingest, readings)

    async def load(self):
        plan = await asyncio.to_thread(self.db.plan)
        self.mqtt_plan = [c for c in plan if c.get('kind') == 'mqtt']
        self._update_mqtt()
        plan = [c for c in plan if c.get('kind') != 'mqtt']
        self.plan_data = {c['id']: c for c in plan}
        self.channels = [(channel_spec(c), meter_targets(c, {
                        r for p in c['plans'] for r in p['registers']}))
            for c in plan]
        await self._apply_plan()
        return plan

    def _update_mqtt(self):
        """The MQTT hub subscribes for the 'mqtt' channels this collector
        holds (all of them without sharing): one subscriber per channel,
        as its broker session is the channel's"""
        plan = self.mqtt_plan
        if self.sharing is not None:
            plan = [c for c in plan if self.sharing.valid(c['id'])
                and c['id'] not in self.releasing]
        self.mqtt.update(plan)

    # sharing the channels with other collectors (sharing.py)
    def _engine_plan(self):
        """The channels the engine keeps pollers for: all of them alone;
        with sharing the leased ones, and every DTU channel (a DTU may
        dial in here whichever collector polls it now)"""
        if self.sharing is None:
            return self.channels
        owned = self.sharing.owned
        return [(spec, meters) for spec, meters in self.channels
            if spec.id in owned or spec.kind == 'dtu']

    async def _apply_plan(self):
        if self.collector is None:
            self.collector = engine.Collector(self._engine_plan(), self.sink,
                self.commands, dtu_server=self.dtu)
        else:
            old = dict(self.collector.pollers)
            _, stopped = self.collector._set_plan(self._engine_plan())
            for channel_id in stopped:
                await self._stop(channel_id)
                await old[channel_id].close()
        self._update_mqtt()
        if self.metrics is not None and self.sharing is None:
            self.metrics.channels_owned.set(len(self.collector.pollers)
                + len(self.mqtt.channels))
            self.metrics.live_collectors.set(1)

    def polled(self):
        "The channels this daemon polls now"
        if self.collector is None:
            return set()
        ids = set(self.collector.pollers)
        if self.sharing is not None:
            ids = {c for c in ids if self.sharing.valid(c)}
        return ids

    def _shareable(self):
        """(shared, pinned) channel ids: TCP bridges are shared fairly;
        a DTU connected here and a serial port present here are pinned"""
        shared = [c['id'] for c in self.mqtt_plan]
        pinned = []
        for spec, _ in self.channels:
            if spec.kind == 'tcp':
                shared.append(spec.id)
            elif spec.kind == 'serial':
                if spec.device and os.path.exists(spec.device):
                    pinned.append(spec.id)
            elif self.dtu is not None:
                transport = self.dtu._transports.get(spec.id)
                if transport is not None and transport.connected:
                    pinned.append(spec.id)
        return shared, pinned

    async def _stop(self, channel_id, close=True):
        """Stop polling a channel now: cancel its task (mid-round if need
        be) and drop its link, so nobody else can find it busy"""
        task = self.tasks.pop(channel_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if channel_id in self.mqtt.channels:
            self._update_mqtt()
        poller = self.collector.pollers.get(channel_id) \
            if self.collector else None
        if close and poller is not None and poller.spec.kind != 'dtu':
            # a fresh poller is made if the channel comes back
            self.collector.pollers.pop(channel_id, None)
            try:
                await poller.close()
            except Exception:
                log.exception('closing channel %s', channel_id)
        if self.metrics is not None:
            self.metrics.forget_channel(channel_id)

    async def _release(self, channel_id):
        "Give a channel back at its round boundary (rebalance)"
        try:
            task = self.tasks.get(channel_id)
            if task is not None:
                # the channel task ends after its round (see _channel_task)
                await asyncio.wait([task], timeout=self.sharing.lease)
            await self._stop(channel_id)
            async with self._lease_lock:
                await asyncio.to_thread(self.sharing.release, {channel_id})
            log.info('channel %s released to the other collectors',
                channel_id)
            await self._apply_plan()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception('channel %s: release failed (its lease will '
                'expire)', channel_id)
            if self.metrics is not None:
                self.metrics.error('lease')
        finally:
            self.releasing.discard(channel_id)

    async def _share_cycle(self, once=False):
        "One heartbeat of the leases; returns the channels taken or lost"
        before = self.sharing.owned
        if once:
            shared, pinned = [], [c for c, _ in self.channels]
        else:
            shared, pinned = self._shareable()
        try:
            async with self._lease_lock:
                release = await asyncio.to_thread(self.sharing.cycle,
                    shared, pinned, set(self.releasing))
        except Exception as exc:
            log.warning('lease renewal failed (%s); the channels stop '
                'when their leases run out', exc)
            if self.metrics is not None:
                self.metrics.error('lease')
            release = set()
        if not once:
            for channel_id in release - self.releasing:
                self.releasing.add(channel_id)
                asyncio.ensure_future(self._release(channel_id))
        after = self.sharing.owned
        if after != before:
            log.info('collector %s: %d channels (live collectors %d, '
                'share %d)', self.sharing.name, len(after),
                self.sharing.live, self.sharing.target)
        await self._apply_plan()
        if self.metrics is not None:
            self.metrics.channels_owned.set(len(after))
            self.metrics.live_collectors.set(self.sharing.live)

    async def _share_loop(self, once=False):
        while True:
            await self._share_cycle(once)
            await asyncio.sleep(self.sharing.renew_interval)

    async def _watchdog(self):
        """Stop a channel the moment its lease can no longer be trusted
        (renewals failing, or another collector holds it now)"""
        while True:
            now = time.monotonic()
            for channel_id in list(self.tasks) + list(self.mqtt.channels):
                if not self.sharing.valid(channel_id, now):
                    log.warning('channel %s: lease lost, polling stopped',
                        channel_id)
                    await self._stop(channel_id)
            await asyncio.sleep(min(0.1, self.sharing.guard / 4))

    async def run_channel_round(self, channel_id, force=False):
        data = self.plan_data.get(channel_id)
        poller = self.collector.pollers.get(channel_id)
        if data is None or poller is None:
            return None
        now = time.monotonic()
        registers, plans = self.schedule.due(data, now,
            force=force or data.get('collect_requested'))
        if not plans:
            return None
        poller.meters = meter_targets(data, registers)
        stats = await poller.run_round()
        if self.metrics is not None:
            self.metrics.round(channel_id, stats)
        await self.sink.flush()
        self.schedule.done(channel_id, plans, now)
        data['collect_requested'] = False
        await asyncio.to_thread(self.db.record_round, channel_id, stats)
        self.rounds += 1
        log.info('channel %s: %d/%d meters, %d readings, %d errors in %.1fs',
            channel_id, stats.meters_answering, stats.meters, stats.readings,
            stats.errors, stats.duration)
        return stats

    async def run_once(self):
        """One round of every channel, whatever is due (dh collect --once);
        with sharing, of every channel no other collector holds"""
        await self.load()
        if self.dtu is not None:
            await self.dtu.start()
        helpers = []
        if self.sharing is not None:
            await self._share_cycle(once=True)
            helpers = [asyncio.ensure_future(self._share_loop(once=True)),
                asyncio.ensure_future(self._watchdog())]
        try:
            for channel_id in self.polled():
                self.tasks[channel_id] = asyncio.ensure_future(
                    self.run_channel_round(channel_id, True))
            results = await asyncio.gather(*self.tasks.values(),
                return_exceptions=True)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self.tasks.clear()
            await self.close()
            if self.sharing is not None:
                await asyncio.to_thread(self.sharing.leave)
        return [r for r in results
            if r is not None and not isinstance(r, BaseException)]

    async def _channel_task(self, channel_id):
        while channel_id not in self.releasing:
            try:
                stats = await self.run_channel_round(channel_id)
                if stats is None:
                    poller = self.collector.pollers.get(channel_id)
                    if poller is not None:
                        await poller.run_commands(engine.RoundStats(
                                channel_id), force=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception('channel %s: round failed', channel_id)
                if self.metrics is not None:
                    self.metrics.error('round')
            if channel_id in self.releasing:
                break       # a round boundary: the channel goes
            await asyncio.sleep(self.tick)

    async def run_forever(self):
        await self.load()
        if self.dtu is not None:
            await self.dtu.start()
        self.sink.start()
        self.mqtt.start()
        last_reload = time.monotonic()
        helpers = []
        if self.sharing is not None:
            await self._share_cycle()
            helpers = [asyncio.create_task(self._share_loop()),
                asyncio.create_task(self._watchdog())]
        try:
            while True:
                self._start_tasks()
                await asyncio.sleep(self.tick)
                if time.monotonic() - last_reload >= self.reload_interval:
                    last_reload = time.monotonic()
                    try:
                        await self.load()
                    except Exception:
                        log.exception('plan reload failed (database down?)')
                else:
                    # 'collect now' requests show up within a tick
                    try:
                        await self._refresh_requests()
                    except Exception:
                        log.debug('request check failed', exc_info=True)
        finally:
            for task in helpers + list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*helpers, *self.tasks.values(),
                return_exceptions=True)
            await self.close()
            if self.sharing is not None:
                try:
                    await asyncio.to_thread(self.sharing.leave)
                except Exception:
                    log.warning('could not give the leases back (they '
                        'expire)', exc_info=True)

    def _start_tasks(self):
        "A task for every channel polled here, none for the others"
        polled = self.polled()
        for channel_id in polled:
            task = self.tasks.get(channel_id)
            if task is not None and task.done():
                self.tasks.pop(channel_id)
                task = None
            if task is None and channel_id not in self.releasing:
                self.tasks[channel_id] = asyncio.create_task(
                    self._channel_task(channel_id))
        for channel_id in list(self.tasks):
            if channel_id not in polled:
                asyncio.ensure_future(self._stop(channel_id))

    async def _refresh_requests(self):
        def requested(pool):
            Channel = pool.get('dh.channel')
            return [c.id for c in Channel.search([
                        ('collect_requested', '=', True)])]
        ids = await asyncio.to_thread(self.db._run, requested, True)
        for channel_id in ids:
            if channel_id in self.plan_data:
                self.plan_data[channel_id]['collect_requested'] = True

    async def close(self):
        await self.mqtt.close()
        if self.collector is not None:
            await self.collector.close()


DEFAULT_LEASE = 15.0


def _lock_spool(path):
    "An exclusive lock on the spool (two collectors must not share one)"
    import fcntl
    handle = open(path + '.lock', 'a')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _sharing(options, db):
    "The leases (sharing.py) if this collector shares its channels"
    from trytond import backend
    from trytond.config import config
    from . import sharing
    share = options.share
    if share is None:
        share = backend.name == 'postgresql'
    if not share:
        return None
    if backend.name != 'postgresql':
        raise SystemExit('dh collect: --share needs PostgreSQL')
    lease = options.lease or config.getfloat('dh_collector', 'lease',
        default=DEFAULT_LEASE)
    return sharing.Sharing(sharing.LeaseStore(db.name), lease=lease,
        name=options.name)


def _metrics(options):
    "The Prometheus endpoint (metrics.py) when a port is configured"
    from trytond.config import config
    port = options.metrics_port
    if port is None:
        port = config.getint('dh_collector', 'metrics_port', default=None)
    if port is None:
        return None
    from .metrics import Metrics
    metrics = Metrics()
    host = options.metrics_host or config.get('dh_collector',
        'metrics_host', default='0.0.0.0')
    port = metrics.serve(port, host)
    print(f'METRICS http://{host}:{port}/metrics', flush=True)
    return metrics


def main(argv):
    parser = argparse.ArgumentParser(prog='dh collect',
        description='the collector daemon (抄表前置机)')
    parser.add_argument('-c', '--config', required=True,
        help='trytond configuration file')
    parser.add_argument('-d', '--database', required=True)
    parser.add_argument('--spool', default=None,
        help='local spool file (default var/spool/<database>.jsonl)')
    parser.add_argument('--dtu-port', type=int, default=None,
        help='listen for DTUs dialling in on this port')
    parser.add_argument('--dtu-host', default='0.0.0.0')
    parser.add_argument('--once', action='store_true',
        help='one round of every channel, then exit')
    parser.add_argument('--tick', type=float, default=2.0)
    share = parser.add_mutually_exclusive_group()
    share.add_argument('--share', dest='share', action='store_true',
        default=None, help='share the channels with the other collectors '
        'of the database through leases (the default on PostgreSQL)')
    share.add_argument('--no-share', dest='share', action='store_false',
        help='poll every channel (one collector only)')
    parser.add_argument('--lease', type=float, default=None,
        help='seconds a channel lease lasts: a dead collector\'s channels '
        'are taken over within about 4/3 of it (default [dh_collector] '
        f'lease, else {DEFAULT_LEASE:g})')
    parser.add_argument('--name', default=None,
        help='this collector\'s name among the sharing ones (default '
        'host:pid:random)')
    parser.add_argument('--metrics-port', type=int, default=None,
        help='serve Prometheus metrics on this port (default '
        '[dh_collector] metrics_port; 0: a free port, printed)')
    parser.add_argument('--metrics-host', default=None,
        help='address of the metrics endpoint (default 0.0.0.0)')
    parser.add_argument('-v', '--verbose', action='store_true')
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if options.verbose
        else logging.WARNING, format='%(asctime)s %(name)s %(message)s')
    # pymodbus logs an ERROR for every silent meter; our rounds report them
    logging.getLogger('pymodbus').setLevel(logging.CRITICAL)
    spool = options.spool or os.path.join('var', 'spool',
        f'{options.database}.jsonl')
    os.makedirs(os.path.dirname(os.path.abspath(spool)), exist_ok=True)
    spool_lock = _lock_spool(spool)
    if spool_lock is None:
        print(f'dh collect: the spool {spool} is used by another '
            'collector; give each collector its own --spool', file=sys.stderr)
        return 2
    db = Database(options.config, options.database)
    dtu = None
    if options.dtu_port:
        dtu = engine.DtuServer(options.dtu_host, options.dtu_port)
    sharing = _sharing(options, db)
    metrics = _metrics(options)
    daemon = Daemon(db, spool, dtu=dtu, tick=options.tick, sharing=sharing,
        metrics=metrics)
    if options.once:
        stats = asyncio.run(daemon.run_once())
        for s in stats:
            print(f'CHANNEL {s.channel_id} meters={s.meters} '
                f'answering={s.meters_answering} readings={s.readings} '
                f'errors={s.errors}')
        return 0

    async def forever():
        task = asyncio.create_task(daemon.run_forever())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
    asyncio.run(forever())
    return 0
