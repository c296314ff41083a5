"""The collector (抄表前置机): every channel in parallel, one task each.

``Collector(plan, sink, commands, dtu_server)`` where ``plan`` is a list of
``(ChannelSpec, [MeterTarget])``. ``await run_round()`` reads everything
once (returns ``{channel_id: RoundStats}``); ``await run_forever(interval,
reload)`` keeps every channel polling on its own schedule and reloads the
plan. From synchronous code: :func:`collect_once`.
"""

import asyncio
import logging

from .dtu import DtuServer
from .model import RoundStats, utcnow
from . import modbus
from .poller import ChannelPoller
from .spool import Spool, SpoolingSink
from .transport import SerialTransport, TcpBridgeTransport

log = logging.getLogger('dh.collector')


class Collector:
    """``sink``: ``async sink(readings)``, best a :class:`SpoolingSink`
    (or pass ``spool=`` a path / :class:`Spool` and the sink is wrapped in
    one). ``dtu_server``: needed for 'dtu' channels; their registration
    ids are added to its ``known_ids``. ``on_round(stats)`` is called (or
    awaited) after every channel round of :meth:`run_forever`."""

    def __init__(self, channels, sink, commands=None, dtu_server=None, *,
            spool=None, clock=utcnow, on_round=None, poller_options=None):
        if spool is not None and not isinstance(sink, SpoolingSink):
            if not isinstance(spool, Spool):
                spool = Spool(spool)
            sink = SpoolingSink(sink, spool)
        self.sink = sink
        self.commands = commands
        self.dtu_server: DtuServer | None = dtu_server
        self.clock = clock
        self.on_round = on_round
        self.poller_options = dict(poller_options or {})
        self.pollers: dict[int, ChannelPoller] = {}
        self._tasks: dict[int, asyncio.Task] = {}
        self._set_plan(channels)

    # the plan
    def _transport(self, spec):
        if spec.kind == 'tcp':
            return TcpBridgeTransport(spec.host, spec.port,
                inter_byte_gap=spec.inter_byte_gap, backoff=spec.backoff)
        if spec.kind == 'serial':
            return SerialTransport(spec.device, spec.baud, spec.parity,
                inter_byte_gap=spec.inter_byte_gap, backoff=spec.backoff)
        if self.dtu_server is None:
            raise ValueError(f'channel {spec.id}: a dtu channel needs a '
                'DtuServer')
        self.dtu_server.add_known_id(spec.registration_id, spec.id)
        transport = self.dtu_server.transport(spec.id)
        transport.inter_byte_gap = spec.inter_byte_gap
        return transport

    def _set_plan(self, channels) -> tuple[list, list]:
        """Apply a plan; returns (started, stopped) channel ids (for
        :meth:`run_forever` to manage tasks)."""
        wanted = {spec.id: (spec, list(meters)) for spec, meters in channels}
        stopped = []
        for channel_id in list(self.pollers):
            poller = self.pollers[channel_id]
            if channel_id not in wanted or (wanted[channel_id][0]
                    .transport_key() != poller.spec.transport_key()):
                stopped.append(channel_id)
        for channel_id in stopped:
            self.pollers.pop(channel_id)
            if self.dtu_server is not None:
                self.dtu_server.known_ids = {k: v for k, v in
                    self.dtu_server.known_ids.items() if v != channel_id}
        started = []
        for channel_id, (spec, meters) in wanted.items():
            poller = self.pollers.get(channel_id)
            try:
                kind = modbus.poller_kind(meters)
            except ValueError as exc:
                log.error('channel %s: %s', channel_id, exc)
                continue
            if poller is not None and kind != getattr(poller, 'kind',
                    'codec'):
                self.pollers.pop(channel_id)
                stopped.append(channel_id)
                poller = None
            if poller is None:
                try:
                    if kind == modbus.MODBUS:
                        poller = modbus.make_poller(spec, meters, self.sink,
                            self.commands, self.clock,
                            on_round=self.on_round, **self.poller_options)
                    else:
                        poller = ChannelPoller(spec, meters,
                            self._transport(spec), self.sink, self.commands,
                            self.clock, on_round=self.on_round,
                            **self.poller_options)
                except ValueError as exc:
                    log.error('channel %s: %s', channel_id, exc)
                    continue
                poller.kind = kind
                self.pollers[channel_id] = poller
                started.append(channel_id)
            else:
                poller.spec = spec
                poller.meters = meters
        return started, stopped

    # one round
    async def run_round(self) -> dict[int, RoundStats]:
        """Every channel once, in parallel; then the sink is flushed.
        A channel whose round crashed gets stats with ``last_error``."""
        if self.dtu_server is not None:
            await self.dtu_server.start()
        ids = list(self.pollers)
        results = await asyncio.gather(*(self.pollers[i].run_round()
            for i in ids), return_exceptions=True)
        stats = {}
        for channel_id, result in zip(ids, results):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                log.error('channel %s: round crashed: %r', channel_id,
                    result)
                result = RoundStats(channel_id,
                    meters=len(self.pollers[channel_id].meters),
                    last_error=f'{type(result).__name__}: {result}')
            stats[channel_id] = result
        if isinstance(self.sink, SpoolingSink):
            await self.sink.flush()
        return stats

    # forever
    async def run_forever(self, interval: float, reload=None,
            reload_interval: float = 60.0):
        """Poll every channel every ``interval`` seconds, each in its own
        task; every ``reload_interval`` seconds call ``reload()`` (plain
        or async) for a new plan: new channels start, removed ones stop,
        changed meters apply from the next meter on, a changed link
        (host, port, device …) restarts its channel. Cancel to stop;
        transports are closed and the sink flushed."""
        if self.dtu_server is not None:
            await self.dtu_server.start()
        if isinstance(self.sink, SpoolingSink):
            self.sink.start()
        for channel_id in self.pollers:
            self._start(channel_id, interval)
        try:
            while True:
                if reload is None:
                    await asyncio.Event().wait()
                await asyncio.sleep(reload_interval)
                try:
                    plan = reload()
                    if asyncio.iscoroutine(plan):
                        plan = await plan
                except Exception:
                    log.exception('reloading the plan failed; keeping the '
                        'current one')
                    continue
                if plan is None:
                    continue
                await self._apply(plan, interval)
        finally:
            await self.close()

    def _start(self, channel_id, interval):
        poller = self.pollers[channel_id]
        self._tasks[channel_id] = asyncio.ensure_future(
            poller.run_forever(interval))

    async def _apply(self, plan, interval):
        old = dict(self.pollers)
        started, stopped = self._set_plan(plan)
        for channel_id in stopped:
            task = self._tasks.pop(channel_id, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await old[channel_id].close()
        for channel_id in started:
            self._start(channel_id, interval)
        if started or stopped:
            log.info('plan reloaded: %d channels started, %d stopped',
                len(started), len(stopped))

    async def close(self):
        """Stop the channel tasks, close transports, flush the sink."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for poller in self.pollers.values():
            try:
                await poller.close()
            except Exception:
                log.exception('closing channel %s', poller.spec.id)
        if isinstance(self.sink, SpoolingSink):
            await self.sink.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


def collect_once(channels, sink, commands=None, **options):
    """Synchronous: one round of every channel (a fresh event loop),
    transports closed and the sink flushed afterwards; returns
    ``{channel_id: RoundStats}``. ``options``: :class:`Collector`
    keywords (``spool``, ``clock``, ``dtu_server`` …)."""
    async def main():
        collector = Collector(channels, sink, commands, **options)
        try:
            return await collector.run_round()
        finally:
            await collector.close()
    return asyncio.run(main())
