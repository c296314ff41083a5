"""Batching and the local spool that keeps readings while the database is
down.

Delivery is **at least once**: a batch goes to the sink; if the sink
raises, the batch is appended to the spool file (one JSON line per batch,
flushed and fsync'ed before :meth:`SpoolingSink.flush` returns) and the
spool is replayed, oldest batch first, before any new batch once the sink
works again. A batch whose first attempt raised *after* the database
committed it (a lost acknowledgement), or a replay interrupted by a crash
before the spool was trimmed, is delivered again: the database ingest is
idempotent on (meter, register, read_at), so a repeat is harmless. The
spool is read back when a :class:`Spool` is created, so it survives a
restart of the collector.

What is not covered: readings still in the in-memory batch (at most
``batch_size`` or ``flush_interval`` worth) when the process is killed
hard; :meth:`SpoolingSink.close` on a normal stop delivers or spools
them. The meters still hold their registers, so the next round reads them
again.
"""

import asyncio
import datetime as dt
import json
import logging
import os
import time
from collections import deque
from decimal import Decimal

from .model import Reading

log = logging.getLogger('dh.collector.spool')


def _encode(readings) -> str:
    return json.dumps({'readings': [[r.meter_id, r.register,
        r.read_at.isoformat(), str(r.value)] for r in readings]},
        separators=(',', ':'))


def _decode(line: str) -> list[Reading]:
    data = json.loads(line)
    return [Reading(int(m), str(reg), dt.datetime.fromisoformat(at),
        Decimal(value)) for m, reg, at, value in data['readings']]


class Spool:
    """Batches of readings in a JSON-lines file at ``path``; only their
    offsets are kept in memory. Replay progress is the byte offset of the
    first batch not yet delivered, in ``path + '.pos'`` (rewritten
    atomically after each delivered batch); both files are removed once
    the spool is empty. A torn last line (a crash while appending) is cut
    off with a warning when the file is read back."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.pos_path = self.path + '.pos'
        self._index: deque[tuple[int, int, int]] = deque()  # start, end, n
        self._count = 0
        self._first: list[Reading] | None = None
        self._load()

    def _load(self):
        try:
            with open(self.pos_path, encoding='ascii') as f:
                pos = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            pos = 0
        try:
            f = open(self.path, 'rb')
        except FileNotFoundError:
            return
        torn = None
        with f:
            offset = 0
            for line in f:
                end = offset + len(line)
                if not line.endswith(b'\n'):
                    torn = offset
                    break
                if offset >= pos and line.strip():
                    try:
                        count = len(_decode(line.decode('utf-8')))
                    except (ValueError, KeyError, TypeError) as exc:
                        log.warning('%s: unreadable spool line at byte %d '
                            'skipped (%s)', self.path, offset, exc)
                    else:
                        self._index.append((offset, end, count))
                        self._count += count
                offset = end
        if torn is not None:
            log.warning('%s: torn last line at byte %d cut off', self.path,
                torn)
            with open(self.path, 'r+b') as f:
                f.truncate(torn)
                f.flush()
                os.fsync(f.fileno())
        if not self._index:
            self._remove()
        elif self._count:
            log.info('%s: %d spooled readings to replay', self.path,
                self._count)

    def __len__(self) -> int:
        """Readings in the spool."""
        return self._count

    @property
    def batches(self) -> int:
        return len(self._index)

    def append(self, readings: list[Reading]):
        """Durably add a batch (flush + fsync)."""
        if not readings:
            return
        line = (_encode(readings) + '\n').encode('utf-8')
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(self.path, 'ab') as f:
            start = f.seek(0, os.SEEK_END)
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._index.append((start, start + len(line), len(readings)))
        self._count += len(readings)

    def first(self) -> list[Reading] | None:
        """The oldest batch not yet delivered."""
        if not self._index:
            return None
        if self._first is None:
            start, end, _ = self._index[0]
            with open(self.path, 'rb') as f:
                f.seek(start)
                self._first = _decode(f.read(end - start).decode('utf-8'))
        return self._first

    def drop_first(self):
        """The oldest batch was delivered: move the replay position past
        it."""
        if not self._index:
            return
        _, _, count = self._index.popleft()
        self._count -= count
        self._first = None
        if not self._index:
            self._remove()
            return
        tmp = self.pos_path + '.tmp'
        with open(tmp, 'w', encoding='ascii') as f:
            f.write(str(self._index[0][0]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.pos_path)

    def _remove(self):
        for path in (self.pos_path, self.path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


class SpoolingSink:
    """A sink that batches readings for ``sink`` and spools what it cannot
    deliver (see the module docstring: at-least-once).

    ``await spooling_sink(readings)`` only queues them; a batch goes out
    when ``batch_size`` readings are queued, on :meth:`flush`, every
    ``flush_interval`` seconds while :meth:`start`\\ed (or inside
    ``async with``), and on :meth:`close`. After a failure the sink is
    tried again after ``retry_interval`` seconds (doubling up to
    ``retry_max``); meanwhile new batches go straight to the spool."""

    def __init__(self, sink, spool: Spool, batch_size: int = 500,
            flush_interval: float = 1.0, *, retry_interval: float = 1.0,
            retry_max: float = 60.0):
        self.sink = sink
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.retry_max = retry_max
        self.pending: list[Reading] = []
        self.delivered = 0      # readings the sink accepted
        self.spooled = 0        # readings written to the spool
        self.replayed = 0       # spooled readings delivered later
        self.failures = 0
        self.last_error: str | None = None
        self._lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._retry_at = 0.0
        self._delay = retry_interval

    @property
    def healthy(self) -> bool:
        return self._retry_at == 0.0

    async def __call__(self, readings: list[Reading]):
        self.pending.extend(readings)
        if len(self.pending) >= self.batch_size:
            if self._task is not None and not self._task.done():
                self._wake.set()
            else:
                await self.flush()

    def _get_lock(self):
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def flush(self, *, force: bool = False):
        """Replay the spool, then send what is queued, in batches. While
        the sink is failing (before the retry time, unless ``force``: one
        try now) the queue goes to the spool without a try."""
        async with self._get_lock():
            failures = self.failures
            while self.pending:
                batch = self.pending[:self.batch_size]
                del self.pending[:self.batch_size]
                force = force and self.failures == failures
                if not (await self._replay(force) and self._may_try(force)
                        and await self._send(batch)):
                    self._spool(batch)
            await self._replay(force and self.failures == failures)

    def _may_try(self, force: bool) -> bool:
        return force or time.monotonic() >= self._retry_at

    async def _replay(self, force: bool) -> bool:
        """Deliver the spool, oldest first; False when it is not empty
        afterwards."""
        while True:
            batch = self.spool.first()
            if batch is None:
                return True
            if not self._may_try(force) or not await self._send(batch):
                return False
            self.spool.drop_first()
            self.replayed += len(batch)

    async def _send(self, batch) -> bool:
        try:
            await self.sink(batch)
        except Exception as exc:
            self.failures += 1
            self.last_error = f'{type(exc).__name__}: {exc}'
            self._retry_at = time.monotonic() + self._delay
            log.warning('sink failed (%s); spooling, next try in %.1f s',
                self.last_error, self._delay)
            self._delay = min(self._delay * 2, self.retry_max)
            return False
        if self._retry_at:
            log.info('sink works again')
        self._retry_at = 0.0
        self._delay = self.retry_interval
        self.delivered += len(batch)
        return True

    def _spool(self, batch):
        self.spool.append(batch)
        self.spooled += len(batch)

    # background flushing
    def start(self):
        """Flush every ``flush_interval`` seconds (and when a batch is
        full) in a task of the running loop."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            try:
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:       # the spool's disk, say
                log.exception('flushing readings failed')

    async def close(self):
        """Stop the background task; deliver or spool everything queued
        (one forced try of the sink)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.flush(force=True)

    async def __aenter__(self):
        self.start()
        return self

    async def __aexit__(self, *exc):
        await self.close()
