"""One channel (one RS485 bus): read every register of every meter, verify
every reply, retry with back-off, hand readings to the sink, run queued
commands between meters.

Verification: the codec's framer rejects a bad checksum or end byte (the
attempt fails at once); a frame that is not the reply to the request in
flight — another address, another function or DI, another CJ/T188 SER, an
echo of the request — is skipped while waiting (it may be the late reply
to an earlier request) and, when no right reply follows within the
timeout, the attempt fails with that reason. Only a verified reply becomes
a :class:`Reading`; an abnormal reply (the meter refuses) is not retried.
"""

import asyncio
import logging
import time
from decimal import Decimal

from ..codec import AbnormalReply, CodecError, cjt188, dlt645
from .commands import CommandsMixin
from .model import (
    METER_UTC_OFFSET, MeterHealth, MeterTarget, Reading, RoundStats, utcnow)
from .registers import CJT188, DLT645_1997, UnsupportedRegister, di_for
from .transport import (
    BadReply, ConnectionLost, NotConnected, ReplyTimeout, TransportError)

log = logging.getLogger('dh.collector.poller')

_VERSIONS = {'dlt645_2007': dlt645.V2007, DLT645_1997: dlt645.V1997}


class ReadFailed(Exception):
    """A register could not be read (after the retries)."""


class ChannelPoller(CommandsMixin):
    """Polls the ``meters`` (:class:`MeterTarget`) of channel ``spec``
    through ``transport``. ``sink``: ``async sink(readings)`` (use a
    :class:`.spool.SpoolingSink`: an exception from the sink here is
    counted in ``RoundStats.sink_errors`` and the readings are lost);
    ``commands``: a :class:`.model.CommandSource` or ``None``; ``clock``:
    naive UTC, whole seconds; ``on_round``: called (or awaited) with the
    :class:`RoundStats` of each round of :meth:`run_forever`.

    ``health`` keeps per-meter success and failure across rounds; a meter
    silent for ``suspect_after`` rounds in a row gets one attempt instead
    of ``1 + retries`` until it answers again (a dead meter costs one
    timeout per round, not three)."""

    def __init__(self, spec, meters, transport, sink, commands=None,
            clock=utcnow, *, on_round=None, command_interval: float = 2.0,
            meter_utc_offset=METER_UTC_OFFSET, suspect_after: int = 3):
        self.spec = spec
        self.transport = transport
        self.sink = sink
        self.commands = commands
        self.clock = clock
        self.on_round = on_round
        self.command_interval = command_interval
        self.meter_utc_offset = meter_utc_offset
        self.suspect_after = suspect_after
        self.health: dict[int, MeterHealth] = {}
        self.last_stats: RoundStats | None = None
        self.meters = meters
        self._ser = 0
        self._init_commands()

    # the plan
    @property
    def meters(self) -> list[MeterTarget]:
        return self._meters

    @meters.setter
    def meters(self, meters):
        """A new list of meters (plan reload): used from the next meter
        on."""
        self._meters = list(meters)
        self._by_id = {m.id: m for m in self._meters}
        self._plans: dict[int, tuple] = {}

    def _plan(self, meter: MeterTarget, registers=None) -> list:
        """``[(register, di, request or None, request message or None)]``;
        CJ/T188 requests are built per attempt (SER)."""
        key = (meter.address, meter.protocol, meter.vendor,
            tuple(meter.registers))
        if registers is None:
            found = self._plans.get(meter.id)
            if found is not None and found[0] == key:
                return found[1]
        plan = []
        for register in (meter.registers if registers is None
                else registers):
            try:
                di = di_for(register, meter.protocol)
            except UnsupportedRegister as exc:
                plan.append((register, None, None, str(exc)))
                continue
            if meter.protocol == CJT188:
                plan.append((register, di, None, None))
                continue
            version = _VERSIONS[meter.protocol]
            request = dlt645.read_request(meter.address, di, version=version,
                vendor=_vendor(meter))
            plan.append((register, di, request,
                dlt645.decode(request, version, _vendor(meter))))
        if registers is None:
            self._plans[meter.id] = (key, plan)
        return plan

    def _next_ser(self) -> int:
        self._ser = (self._ser + 1) & 0xFF
        return self._ser

    # one request, verified, with retries
    async def _transact(self, meter: MeterTarget, request, stats, *,
            request_message=None, retries: int | None = None):
        """Send ``request`` (bytes, or for CJ/T188 a callable ``ser ->
        bytes``) and return the verified reply :class:`Message`. Raises
        :class:`AbnormalReply` (not retried), :class:`NotConnected` (the
        bus stayed unreachable for the channel's retries) or
        :class:`ReadFailed`."""
        spec = self.spec
        water = meter.protocol == CJT188
        decode_stream = (cjt188.decode_stream if water
            else dlt645.decode_stream)
        version = None if water else _VERSIONS[meter.protocol]
        vendor = _vendor(meter)
        retries = spec.retries if retries is None else retries
        # an unreachable bus gets the channel's retries even for a suspect
        # meter, then fails the round (NotConnected)
        link_retries = max(retries, spec.retries)
        error = None
        attempt = 0
        while True:
            if attempt:
                await asyncio.sleep(spec.backoff * 2 ** (attempt - 1))
            raw = request(self._next_ser()) if callable(request) else request
            wanted = request_message
            if wanted is None:
                wanted = (cjt188.decode(raw) if water
                    else dlt645.decode(raw, version, vendor))
            box = []

            def accept(frame, wanted=wanted, box=box):
                return _verify(frame, wanted, version, vendor, box)

            stats.attempts += 1
            try:
                await self.transport.exchange(raw, decode_stream,
                    spec.timeout, accept=accept)
            except NotConnected as exc:
                stats.count_error('not_connected')
                stats.last_error = str(exc)
                if attempt >= link_retries:
                    raise
                attempt += 1
                continue
            except TransportError as exc:
                stats.count_error(_error_kind(exc))
                error = str(exc)
                stats.last_error = f'meter {meter.address}: {error}'
                if attempt >= retries:
                    break
                attempt += 1
                continue
            reply = box[0]
            if reply.error_code is not None:
                stats.count_error('meter_refused')
                stats.last_error = (f'meter {meter.address}: '
                    f'{reply.error}')
                reply.raise_for_error()
            return reply
        raise ReadFailed(f'no valid reply from meter {meter.address} after '
            f'{retries + 1} attempt{"s" if retries else ""}: {error}')

    async def read_register(self, meter: MeterTarget, register: str, stats,
            *, plan_entry=None, retries=None) -> Reading:
        """One register, verified (raises :class:`ReadFailed`,
        :class:`AbnormalReply`, :class:`NotConnected`)."""
        if plan_entry is None:
            plan_entry = self._plan(meter, [register])[0]
        register, di, request, request_message = plan_entry
        if di is None:
            raise ReadFailed(request_message)
        if meter.protocol == CJT188:
            reply = await self._transact(meter, lambda ser: (
                cjt188.read_request(meter.address,
                    meter_type=meter.meter_type, di=di, ser=ser,
                    vendor=_vendor(meter))), stats, retries=retries)
            value = _flow(reply)
        else:
            reply = await self._transact(meter, request, stats,
                request_message=request_message, retries=retries)
            value = reply.value
            if type(value) is not Decimal:
                if isinstance(value, int) and not isinstance(value, bool):
                    value = Decimal(value)
                else:
                    raise ReadFailed(f'meter {meter.address}: DI {di} gave '
                        f'{value!r}, not a number')
        return Reading(meter.id, register, self.clock(), value)

    async def read_meter(self, meter: MeterTarget, stats,
            registers=None) -> tuple[list[Reading], dict[str, str]]:
        """Every register of ``meter`` (or ``registers``): the readings and
        ``{register: error}`` of the others. A meter that does not answer
        its first register at all is not asked for the rest."""
        health = self.health.setdefault(meter.id, MeterHealth())
        suspect = health.consecutive_failures >= self.suspect_after
        readings = []
        errors = {}
        answered = False
        plan = self._plan(meter, registers)
        if not plan:
            return readings, errors
        for entry in plan:
            register = entry[0]
            try:
                reading = await self.read_register(meter, register, stats,
                    plan_entry=entry,
                    retries=0 if suspect and not answered else None)
            except AbnormalReply as exc:
                answered = True
                errors[register] = 'meter refused: ' + (
                    '; '.join(exc.reasons) or exc.reason)
                continue
            except (ReadFailed, CodecError) as exc:
                errors[register] = str(exc)
                if not answered and entry[1] is not None:
                    for rest in plan[plan.index(entry) + 1:]:
                        errors[rest[0]] = 'skipped: meter not answering'
                    break
                continue
            readings.append(reading)
            answered = True
        self._record_health(health, answered, errors)
        return readings, errors

    def _record_health(self, health, answered, errors):
        "A meter's health after reading it: answered or not, and errors"
        now = self.clock()
        if answered:
            health.last_success = now
            health.consecutive_failures = 0
        else:
            health.last_failure = now
            health.consecutive_failures += 1
        if errors:
            health.last_error = next(iter(errors.values()))
            if answered:
                health.last_failure = now

    async def _deliver(self, readings, stats):
        if not readings:
            return
        try:
            await self.sink(readings)
        except Exception as exc:
            stats.sink_errors += 1
            stats.last_error = f'sink: {exc}'
            log.error('channel %s: sink failed, %d readings lost: %s',
                self.spec.id, len(readings), exc)

    # rounds
    async def run_round(self) -> RoundStats:
        """Read every register of every meter once."""
        stats = RoundStats(self.spec.id, meters=len(self._meters),
            started=self.clock())
        t0 = time.monotonic()
        await self.run_commands(stats, force=True)
        meters = list(self._meters)
        for index, meter in enumerate(meters):
            try:
                readings, errors = await self.read_meter(meter, stats)
            except NotConnected as exc:
                stats.last_error = str(exc)
                log.warning('channel %s: %s', self.spec.id, exc)
                for other in meters[index:]:
                    stats.failed_meters.append(other.id)
                    health = self.health.setdefault(other.id, MeterHealth())
                    health.last_failure = self.clock()
                    health.last_error = str(exc)
                break
            if self.health[meter.id].consecutive_failures:
                stats.failed_meters.append(meter.id)
            else:
                stats.meters_answering += 1
            if readings:
                stats.readings += len(readings)
                await self._deliver(readings, stats)
            await self.run_commands(stats)
        stats.finished = self.clock()
        stats.duration = time.monotonic() - t0
        self.last_stats = stats
        return stats

    async def run_forever(self, interval: float):
        """Rounds every ``interval`` seconds (a round longer than that is
        followed at once by the next); commands are looked for in between
        every ``command_interval`` seconds. Cancel the task to stop."""
        while True:
            t0 = time.monotonic()
            try:
                stats = await self.run_round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception('channel %s: round failed', self.spec.id)
            else:
                await self._notify(stats)
            idle = RoundStats(self.spec.id)
            while True:
                left = interval - (time.monotonic() - t0)
                if left <= 0:
                    break
                await asyncio.sleep(min(left, self.command_interval))
                if interval - (time.monotonic() - t0) > 0:
                    await self.run_commands(idle)

    async def _notify(self, stats):
        if self.on_round is None:
            return
        try:
            result = self.on_round(stats)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception('channel %s: on_round failed', self.spec.id)

    async def close(self):
        await self.transport.close()


def _error_kind(exc: TransportError) -> str:
    "A failed attempt's kind, for the error counters"
    for kind, name in ((ReplyTimeout, 'timeout'), (BadReply, 'bad_reply'),
            (ConnectionLost, 'connection_lost')):
        if isinstance(exc, kind):
            return name
    return 'transport'


def _vendor(meter: MeterTarget):
    return None if meter.vendor in (None, '', 'standard') else meter.vendor


def _verify(frame, wanted, version, vendor, box):
    """``None`` (and the reply message in ``box``) when ``frame`` answers
    the request ``wanted``; else why not."""
    if not frame.is_response:
        return 'a request frame (echo?)'
    if frame.address != wanted.address:
        return f'reply from {frame.address}, expected {wanted.address}'
    if frame.function != wanted.frame.function:
        return (f'reply function {frame.function:02X}, expected '
            f'{wanted.frame.function:02X}')
    try:
        if version is None:
            reply = cjt188.parse(frame)
            if reply.ser != wanted.ser:
                return f'reply SER {reply.ser}, expected {wanted.ser}'
        else:
            reply = dlt645.parse(frame, version, vendor)
    except CodecError as exc:
        return f'undecodable reply: {exc.reason}'
    if version is None:
        check_di = reply.di is not None     # abnormal L=3: no DI
    else:   # DL/T645: abnormal replies and write/control acks carry none
        check_di = reply.error_code is None and wanted.command == 'read'
    if check_di and reply.di != wanted.di:
        return f'reply DI {reply.di}, expected {wanted.di}'
    box.append(reply)
    return None


def _flow(reply) -> Decimal:
    fields = reply.fields
    flow = fields.get('flow')
    unit = fields.get('flow_unit')
    if flow is None:
        raise ReadFailed(f'meter {reply.address}: no cumulative flow')
    if unit == 'L':
        return (flow / 1000).quantize(Decimal('0.001'))
    if unit != 'm3':
        raise ReadFailed(f'meter {reply.address}: flow unit {unit}, '
            'expected m3 or L')
    return flow
