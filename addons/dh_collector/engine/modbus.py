"""Modbus meters (Chint DDSU666 / DTSU666 …) through pymodbus: no Modbus
framing of our own. The register maps are data
(:mod:`..modbus_maps`); this module reads them over a 'tcp' channel.

* framer 'socket' (``modbus_tcp``): a Modbus TCP gateway (MBAP header,
  the unit id picks the RS485 meter behind it);
* framer 'rtu' (``modbus_rtu_over_tcp``): a transparent serial server
  (串口服务器) passing RTU frames (CRC) through unchanged.

:class:`ModbusTarget` is one meter; :func:`read_modbus_meter` reads one
meter once (no retries); :class:`ModbusChannelPoller` is a
:class:`.poller.ChannelPoller` for a bus of Modbus meters — same rounds,
statistics, health, suspect meters, sink delivery and 'read' commands —
with each request verified by pymodbus (CRC or MBAP, unit id, function,
length) and retried here with the channel's back-off. :func:`make_poller`
builds one for the :class:`.collector.Collector`.

Errors: an unreachable bus is :class:`.transport.NotConnected` (the round
fails like a DL/T645 one); silence, a gateway's 0x0A / 0x0B ("target did
not answer") or a busy meter (0x05 / 0x06) are retried; any other Modbus
exception reply is :class:`ModbusRefused` (the meter answered: not
retried).
"""

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import (
    ConnectionException, ModbusException, ModbusIOException)

from ..modbus_maps import (
    ModbusMapError, check_ratios, decode_value, get_map, plan_reads)
from .model import FAILED, ChannelSpec, MeterHealth, Reading, utcnow
from .poller import ChannelPoller, ReadFailed, _error_kind
from .transport import BadReply, NotConnected, ReplyTimeout, TransportError

log = logging.getLogger('dh.collector.modbus')

__all__ = ['FRAMERS', 'MODBUS', 'ModbusBusy', 'ModbusChannelPoller',
    'ModbusRefused', 'ModbusTarget', 'make_client', 'make_poller',
    'poller_kind', 'read_modbus_meter']

MODBUS = 'modbus'

#: framer setting -> pymodbus framer
FRAMERS = {
    'socket': FramerType.SOCKET,
    'modbus_tcp': FramerType.SOCKET,
    'rtu': FramerType.RTU,
    'modbus_rtu_over_tcp': FramerType.RTU,
    }

EXCEPTION_CODES = {
    0x01: 'illegal function', 0x02: 'illegal data address',
    0x03: 'illegal data value', 0x04: 'device failure',
    0x05: 'acknowledge (busy)', 0x06: 'device busy',
    0x08: 'memory parity error', 0x0A: 'gateway path unavailable',
    0x0B: 'gateway target did not respond',
    }
#: exception codes meaning "no answer" (gateway) or "try again"
_NO_ANSWER = {0x0A, 0x0B}
_BUSY = {0x05, 0x06}


class ModbusRefused(Exception):
    """The meter answered with a Modbus exception (not retried)."""

    def __init__(self, code, function_code=None):
        self.code = code
        self.function_code = function_code
        text = EXCEPTION_CODES.get(code, 'unknown exception')
        super().__init__(f'Modbus exception {code:#04x} ({text})'
            if isinstance(code, int) else f'Modbus exception ({text})')


class ModbusBusy(TransportError):
    """Exception 0x05 / 0x06: the meter is busy (retried)."""


@dataclass
class ModbusTarget:
    """One Modbus meter on a channel: ``unit_id`` (slave address, 1–247;
    up to 255 behind a TCP gateway), ``map_name`` (a key of
    :data:`..modbus_maps.MAPS`), ``registers`` (our names; one the map
    lacks is reported as an error when read), ``ct`` / ``pt``
    transformer ratios (primary / secondary; must be 1 for a map that
    takes none). Raises :class:`ValueError` for a bad unit id, map or
    ratio."""
    id: int
    unit_id: int
    map_name: str
    registers: list[str] = field(default_factory=lambda: ['energy_total'])
    ct: Decimal = Decimal(1)
    pt: Decimal = Decimal(1)

    protocol = MODBUS       # class attribute, as MeterTarget.protocol

    def __post_init__(self):
        if isinstance(self.unit_id, bool) or not isinstance(
                self.unit_id, int) or not 1 <= self.unit_id <= 255:
            raise ValueError(f'meter {self.id}: Modbus unit id '
                f'{self.unit_id!r} must be 1 to 247 (255 behind a gateway)')
        try:
            self.ct, self.pt = check_ratios(self.map_name, self.ct, self.pt)
        except ModbusMapError as exc:
            raise ValueError(f'meter {self.id}: {exc}') from None
        self.registers = list(self.registers)

    @property
    def address(self) -> str:
        """For messages (as MeterTarget.address)."""
        return f'unit {self.unit_id}'

    @property
    def map(self):
        return get_map(self.map_name)


def _check_client(client):
    if not hasattr(client, 'read_holding_registers'):
        raise TypeError(f'{client!r} is not a pymodbus client')


async def _read_words(client, function_code: int, address: int, count: int,
        unit_id: int, timeout: float) -> list[int]:
    """One FC03 / FC04 read, verified; raises :class:`NotConnected`,
    :class:`ReplyTimeout`, :class:`BadReply`, :class:`ModbusBusy` or
    :class:`ModbusRefused`."""
    if not client.connected:
        try:
            connected = await client.connect()
        except (OSError, ModbusException) as exc:
            raise NotConnected(f'{client}: connect failed: {exc}') from None
        if not connected:
            raise NotConnected(f'{client}: connect failed')
    read = (client.read_holding_registers if function_code == 3
        else client.read_input_registers)
    where = f'unit {unit_id} FC{function_code:02d} {address:#06x}+{count}'
    try:
        # pymodbus times the reply out itself; this is a safety net
        async with asyncio.timeout(timeout):
            response = await read(address, count=count, device_id=unit_id)
    except ConnectionException as exc:
        raise NotConnected(f'{client}: {exc}') from None
    except ModbusIOException as exc:
        if 'no response' in str(exc).lower():
            raise ReplyTimeout(f'{where}: no reply') from None
        raise BadReply(f'{where}: {exc}') from None
    except ModbusException as exc:
        raise BadReply(f'{where}: {exc}') from None
    except TimeoutError:
        raise ReplyTimeout(f'{where}: no reply within {timeout:g} s'
            ) from None
    if response is None:
        raise ReplyTimeout(f'{where}: no reply')
    if response.isError():
        code = getattr(response, 'exception_code', None)
        if code in _NO_ANSWER:
            raise ReplyTimeout(f'{where}: no reply (gateway exception '
                f'{code:#04x}: {EXCEPTION_CODES[code]})')
        if code in _BUSY:
            raise ModbusBusy(f'{where}: {EXCEPTION_CODES[code]}')
        raise ModbusRefused(code, function_code)
    words = list(getattr(response, 'registers', None) or ())
    if len(words) != count:
        raise BadReply(f'{where}: {len(words)} registers in the reply, '
            f'expected {count}')
    return words


def _decode(meter: ModbusTarget, block, words, errors) -> dict:
    values = {}
    for name, offset in block.items:
        width = meter.map.register(name).words
        try:
            values[name] = decode_value(meter.map, name,
                words[offset:offset + width], meter.ct, meter.pt)
        except ModbusMapError as exc:
            errors[name] = str(exc)
    return values


async def read_modbus_meter(client, meter: ModbusTarget, *, clock=utcnow,
        timeout: float = 5.0) -> list[Reading]:
    """Every register of ``meter`` once through the connected (or
    connectable) pymodbus ``client``: one attempt per read, the first
    failure raised (:class:`NotConnected`, :class:`ReplyTimeout`,
    :class:`BadReply`, :class:`ModbusBusy`, :class:`ModbusRefused`,
    :class:`..modbus_maps.ModbusMapError`)."""
    _check_client(client)
    modbus_map = meter.map
    for name in meter.registers:
        modbus_map.register(name)           # ModbusMapError
    values = {}
    read_at = {}
    for block in plan_reads(modbus_map, meter.registers):
        words = await _read_words(client, modbus_map.function_code,
            block.address, block.count, meter.unit_id, timeout)
        now = clock()
        errors = {}
        decoded = _decode(meter, block, words, errors)
        if errors:
            raise ModbusMapError('; '.join(errors.values()))
        values.update(decoded)
        read_at.update(dict.fromkeys(decoded, now))
    return [Reading(meter.id, name, read_at[name], values[name])
        for name in dict.fromkeys(meter.registers)]


class ModbusChannelPoller(ChannelPoller):
    """A :class:`ChannelPoller` for a bus of :class:`ModbusTarget` meters
    reached through a pymodbus ``client`` (see :func:`make_poller`).

    Inherited unchanged: :meth:`run_round` (a :class:`NotConnected` fails
    the rest of the round), :meth:`run_forever`, sink delivery, health and
    suspect meters, and the command loop; 'read' commands work, every
    other kind is reported failed. One request is in flight at a time
    (the round is sequential and pymodbus locks its transaction).

    A round in which nothing answered closes the connection so the next
    round starts on a fresh one (a half-open TCP link looks like dead
    meters)."""

    def __init__(self, spec, meters, client, sink, commands=None,
            clock=utcnow, *, framer: str | None = None, **options):
        if client is not None:
            _check_client(client)
        else:
            _framer_type(spec, _framer_of(spec, framer))
        self._client = client
        self._made_for = None       # a client passed in is kept as is
        self.framer = framer
        super().__init__(spec, meters, client, sink, commands, clock,
            **options)

    @property
    def client(self):
        """The pymodbus client, made on first use (pymodbus needs a
        running event loop to make one) and made again when a plan reload
        changed the channel's timeout (pymodbus fixes it per client)."""
        spec = self.spec
        key = (spec.host, spec.port, spec.timeout,
            _framer_of(spec, self.framer))
        if self._client is not None and self._made_for is not None and (
                self._made_for != key):
            self._client.close()
            self._client = None
        if self._client is None:
            self._client = make_client(spec, key[3])
            self._made_for = key
        return self._client

    @ChannelPoller.meters.setter
    def meters(self, meters):
        meters = list(meters)
        for meter in meters:
            if not isinstance(meter, ModbusTarget):
                raise TypeError(f'channel {self.spec.id}: {meter!r} is not '
                    'a ModbusTarget')
        ChannelPoller.meters.fset(self, meters)

    async def _request(self, meter: ModbusTarget, block, stats, *,
            retries: int | None = None) -> list[int]:
        """The words of one read, with the channel's retries and back-off
        (as ``ChannelPoller._transact``). Raises :class:`ModbusRefused`,
        :class:`NotConnected` or :class:`ReadFailed`."""
        spec = self.spec
        retries = spec.retries if retries is None else retries
        link_retries = max(retries, spec.retries)
        function_code = meter.map.function_code
        safety = spec.timeout + 1.0
        error = None
        attempt = 0
        while True:
            if attempt:
                await asyncio.sleep(spec.backoff * 2 ** (attempt - 1))
            stats.attempts += 1
            try:
                return await _read_words(self.client, function_code,
                    block.address, block.count, meter.unit_id, safety)
            except ModbusRefused as exc:
                stats.count_error('meter_refused')
                stats.last_error = f'meter {meter.address}: {exc}'
                raise
            except NotConnected as exc:
                stats.count_error('not_connected')
                stats.last_error = str(exc)
                if attempt >= link_retries:
                    raise
            except TransportError as exc:
                stats.count_error(_error_kind(exc))
                error = str(exc)
                stats.last_error = f'meter {meter.address}: {error}'
                if attempt >= retries:
                    break
            attempt += 1
        raise ReadFailed(f'no valid reply from meter {meter.address} after '
            f'{retries + 1} attempt{"s" if retries else ""}: {error}')

    async def read_register(self, meter, register, stats, *, retries=None,
            **_) -> Reading:
        """One register (raises :class:`ReadFailed`,
        :class:`ModbusRefused`, :class:`NotConnected`)."""
        try:
            blocks = plan_reads(meter.map, [register])
        except ModbusMapError as exc:
            raise ReadFailed(str(exc)) from None
        words = await self._request(meter, blocks[0], stats,
            retries=retries)
        errors = {}
        values = _decode(meter, blocks[0], words, errors)
        if errors:
            raise ReadFailed(errors[register])
        return Reading(meter.id, register, self.clock(), values[register])

    async def read_meter(self, meter: ModbusTarget, stats,
            registers=None) -> tuple[list[Reading], dict[str, str]]:
        """As :meth:`ChannelPoller.read_meter`: the readings and
        ``{register: error}``; a meter that does not answer its first read
        is not asked for the rest."""
        health = self.health.setdefault(meter.id, MeterHealth())
        suspect = health.consecutive_failures >= self.suspect_after
        names = list(dict.fromkeys(meter.registers if registers is None
            else registers))
        modbus_map = meter.map
        errors = {}
        for name in names:
            if name not in modbus_map.registers:
                errors[name] = (f'register {name!r} is not in Modbus map '
                    f'{modbus_map.name}')
        blocks = plan_reads(modbus_map, [n for n in names
            if n not in errors])
        values = {}
        read_at = {}
        answered = False
        for index, block in enumerate(blocks):
            in_block = [name for name, _ in block.items]
            try:
                words = await self._request(meter, block, stats,
                    retries=0 if suspect and not answered else None)
            except ModbusRefused as exc:
                answered = True
                for name in in_block:
                    errors[name] = f'meter refused: {exc}'
                continue
            except ReadFailed as exc:
                for name in in_block:
                    errors[name] = str(exc)
                if not answered:
                    for rest in blocks[index + 1:]:
                        for name, _ in rest.items:
                            errors[name] = 'skipped: meter not answering'
                    break
                continue
            answered = True
            now = self.clock()
            decoded = _decode(meter, block, words, errors)
            values.update(decoded)
            read_at.update(dict.fromkeys(decoded, now))
        readings = [Reading(meter.id, name, read_at[name], values[name])
            for name in names if name in values]
        errors = {name: errors[name] for name in names if name in errors}
        self._record_health(health, answered, errors)
        return readings, errors

    async def run_round(self):
        stats = await super().run_round()
        if (stats.meters and not stats.meters_answering and stats.attempts
                and self._client is not None):
            self._client.close()    # reconnect next round
        return stats

    async def execute(self, command, stats):
        """'read' commands as on any channel; every other kind is reported
        failed (Modbus meters here are read-only)."""
        if command.kind != 'read' and command.meter_id in self._by_id:
            stats.commands += 1
            error = f'{command.kind} is not supported on Modbus meters'
            await self._report(command.id, FAILED, error, {})
            return FAILED, error, {}
        return await super().execute(command, stats)

    async def close(self):
        if self._client is not None:
            self._client.close()


def _framer_of(spec, framer):
    return framer or getattr(spec, 'modbus_framer', None) or 'rtu'


def _framer_type(spec: ChannelSpec, framer: str) -> FramerType:
    if spec.kind != 'tcp':
        raise ValueError(f'channel {spec.id}: Modbus meters need a tcp '
            f'channel (gateway or RTU-over-TCP bridge), not {spec.kind!r}')
    try:
        return FRAMERS[framer]
    except KeyError:
        raise ValueError(f'channel {spec.id}: Modbus framer {framer!r} is '
            f'not one of {", ".join(FRAMERS)}') from None


def make_client(spec: ChannelSpec, framer: str = 'rtu'
        ) -> AsyncModbusTcpClient:
    """A pymodbus client for a 'tcp' channel (call it with an event loop
    running): ``framer`` 'rtu' (RTU over TCP, a transparent serial server)
    or 'socket' (a Modbus TCP gateway). pymodbus does no retries and no
    background reconnects (the poller does both) and keeps the connection
    through any number of silent meters."""
    framer_type = _framer_type(spec, framer)
    client = AsyncModbusTcpClient(spec.host, port=spec.port,
        framer=framer_type, timeout=spec.timeout, retries=0,
        reconnect_delay=0, name=f'channel {spec.id}')
    client.set_max_no_responses(1 << 30)
    return client


def make_poller(spec: ChannelSpec, meters, sink, commands=None,
        clock=utcnow, *, framer: str | None = None, client=None,
        **options) -> ModbusChannelPoller:
    """A :class:`ModbusChannelPoller` for channel ``spec`` and its
    :class:`ModbusTarget` ``meters`` (no event loop needed: the client is
    made on first use). ``framer``: 'rtu' / 'socket' (or
    'modbus_rtu_over_tcp' / 'modbus_tcp'); default ``spec.modbus_framer``
    when the spec has one, else 'rtu'. ``client``: a pymodbus client to
    use instead of :func:`make_client`'s. ``options``: the
    :class:`ChannelPoller` keywords (``on_round``, ``command_interval``,
    ``suspect_after`` …). Raises :class:`ValueError` for a channel that
    is not 'tcp' or an unknown framer."""
    return ModbusChannelPoller(spec, meters, client, sink, commands, clock,
        framer=framer, **options)


def poller_kind(meters) -> str:
    """'modbus' when every meter is a :class:`ModbusTarget`, 'codec' when
    none is (an empty channel is 'codec'); a bus mixing both raises
    :class:`ValueError` (one RS485 bus speaks one protocol family)."""
    meters = list(meters)
    modbus = sum(isinstance(m, ModbusTarget) for m in meters)
    if modbus and modbus != len(meters):
        raise ValueError('a channel cannot mix Modbus and DL/T645 / CJ/T188 '
            'meters')
    return MODBUS if modbus else 'codec'
