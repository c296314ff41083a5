"""NB-IoT / 4G meters (NB采集) through an MQTT broker.

Such a meter has its own cellular modem and no RS485 bus: it publishes its
readings to the broker and takes commands from it.  One
:class:`MqttChannel` per broker configuration (a dh.channel of kind
'mqtt') subscribes to the readings and replies of its meters, feeds the
readings to the same sink as the polled buses (the durable
:class:`.spool.SpoolingSink` in front of the idempotent ingest) and
publishes their queued commands.

Topics are templates with ``{address}`` (the meter's nameplate address);
the collector subscribes with ``+`` in its place.  Payloads
(docs/collection.md):

* ``json``: ``{"meter": "000015085381", "time": "2026-11-27T12:00:00+08:00",
  "registers": {"energy_total": "1234.56"}}``; ``meter`` defaults to the
  topic's address; a time without offset is the meter's local (Beijing)
  time; a number is Unix seconds.
* ``hex`` / ``binary``: one or more DL/T645 / CJ/T188 read replies (hex
  text, or the bytes), decoded by the codec.  The reading time is the MQTT
  v5 user property ``time`` when the meter sets one, else the CJ/T188
  frame's meter time, else the arrival time.

Delivery: QoS 1 with a persistent session (fixed client id, clean start
off, a session expiry), so the broker keeps what it acknowledged while the
collector is away.  A message is acknowledged (PUBACK) only after its
readings went to the database or the fsync'ed spool; a crash before that
makes the broker deliver it again, and the ingest ignores the repeat —
(meter, register, time) is its key, and the time comes from the payload.
A payload that cannot be read is logged, counted, kept in the rejects file
and acknowledged (redelivering it would not make it readable).

Commands go to the meter's command topic with QoS 1 (the broker queues
them while an NB meter sleeps); one is confirmed only by the meter's reply
on the reply topic: JSON ``{"id": 12, "ok": true, "result": {...}}``
(``"ok": false, "error": "..."`` fails it), or in raw formats the reply
frame — correlated by the MQTT v5 correlation data (the command id) when
the meter echoes it, else by the meter's oldest unanswered command.  A
command nobody answers stays 'sent' until the command expiry (cron)
expires it.
"""

import asyncio
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..codec import (
    AbnormalReply, CodecError, auto, cjt188, dlt645, recharge)
from ..codec.bcd import parse_hex
from .model import CONFIRMED, FAILED, METER_UTC_OFFSET, SENT, Reading
from .registers import REGISTERS, CJT188

log = logging.getLogger('dh.collector.mqtt')

FORMATS = ('json', 'hex', 'binary')
DEFAULT_TOPICS = {
    'reading': 'dh/meter/{address}/up',
    'command': 'dh/meter/{address}/down',
    'reply': 'dh/meter/{address}/reply',
    }
RECEIVE_MAXIMUM = 2000
#: raw-frame commands (JSON carries every kind)
RAW_KINDS = ('read', 'trip', 'close', 'recharge', 'hold', 'hold_release')
#: DI of each register per protocol, reversed
_BY_DI = {(protocol, di): register for register, dis in REGISTERS.items()
    for protocol, di in dis.items()}


_CODEC_PROTOCOL = {'dlt645_2007': auto.DLT645_2007,
    'dlt645_1997': auto.DLT645_1997}


class PayloadError(ValueError):
    "A message that cannot be read (the reason is the text)"


# --- topics -------------------------------------------------------------

def topic_for(template: str, address: str) -> str:
    return template.replace('{address}', address)


def topic_filter(template: str) -> str:
    return template.replace('{address}', '+')


def address_from_topic(template: str, topic: str) -> str | None:
    """The ``{address}`` part of ``topic``, or None if it does not match
    ``template``."""
    t_parts, parts = template.split('/'), str(topic).split('/')
    if len(t_parts) != len(parts):
        return None
    address = None
    for t, p in zip(t_parts, parts):
        if '{address}' in t:
            prefix, _, suffix = t.partition('{address}')
            if not (p.startswith(prefix) and p.endswith(suffix)) \
                    or len(p) <= len(prefix) + len(suffix):
                return None
            address = p[len(prefix):len(p) - len(suffix)]
        elif t != p:
            return None
    return address


def check_template(template: str):
    "A topic template with one ``{address}`` and no wildcard, or ValueError"
    if not template or template.count('{address}') != 1:
        raise ValueError(f'topic {template!r} needs {{address}} once')
    if any(c in template for c in '+#'):
        raise ValueError(f'topic {template!r} must not contain + or #')


# --- payloads -----------------------------------------------------------

def parse_time(value, default: dt.datetime | None = None) -> dt.datetime:
    """Naive UTC, whole seconds, from ISO text (no offset: the meter's
    local time, UTC+8) or Unix seconds."""
    if value is None:
        if default is None:
            raise PayloadError('no time')
        return default
    if isinstance(value, bool):
        raise PayloadError(f'time {value!r} is not a time')
    if isinstance(value, (int, float)):
        try:
            when = dt.datetime.fromtimestamp(value, dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f'time {value!r} is out of range') from None
        return when.replace(tzinfo=None, microsecond=0)
    if not isinstance(value, str):
        raise PayloadError(f'time {value!r} is not a time')
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f'time {value!r} is not an ISO date-time') \
            from None
    if when.tzinfo is None:
        when = when - METER_UTC_OFFSET
    else:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.replace(microsecond=0)


def _value(register, value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value,
            (str, int, float, Decimal)):
        raise PayloadError(f'{register}: {value!r} is not a number')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise PayloadError(f'{register}: {value!r} is not a number') \
            from None
    if not number.is_finite():
        raise PayloadError(f'{register}: {value!r} is not a number')
    return number


def parse_json_reading(payload: bytes, topic_address: str | None):
    """``[(address, register, read_at, value)]`` of a JSON reading, or
    PayloadError."""
    try:
        data = json.loads(bytes(payload).decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f'not JSON: {exc}') from None
    if not isinstance(data, dict):
        raise PayloadError('a JSON reading is an object')
    address = data.get('meter', topic_address)
    if address is None:
        raise PayloadError('no meter address (neither "meter" nor topic)')
    address = str(address).strip()
    if topic_address is not None and address.lstrip('0') != \
            str(topic_address).lstrip('0'):
        raise PayloadError(f'meter {address} published on the topic of '
            f'{topic_address}')
    if 'time' not in data:
        raise PayloadError('no "time"')
    read_at = parse_time(data['time'])
    registers = data.get('registers')
    if not isinstance(registers, dict) or not registers:
        raise PayloadError('"registers" must be a non-empty object')
    rows = []
    for register, value in registers.items():
        if register not in REGISTERS:
            raise PayloadError(f'unknown register {register!r}')
        rows.append((address, register, read_at, _value(register, value)))
    return rows


def split_frames(raw: bytes) -> list:
    """The frames of a raw payload (FE preambles allowed), or
    PayloadError; trailing garbage is an error too."""
    frames, used_total = [], 0
    buffer = bytearray(raw)
    while buffer:
        if all(b == 0xFE for b in buffer):
            break
        used, frame = auto.decode_stream(buffer)
        if frame is None:
            raise PayloadError(f'no complete frame at byte {used_total}')
        frames.append(frame)
        del buffer[:used]
        used_total += used
    if not frames:
        raise PayloadError('empty payload')
    return frames


def raw_payload(payload: bytes, fmt: str) -> bytes:
    if fmt == 'hex':
        try:
            return parse_hex(bytes(payload).decode('ascii'))
        except (UnicodeDecodeError, CodecError, ValueError) as exc:
            raise PayloadError(f'not hex text: {exc}') from None
    return bytes(payload)


def parse_frame_reading(payload: bytes, fmt: str, topic_address,
        protocols: dict, received_at: dt.datetime, time_property=None):
    """``[(address, register, read_at, value)]`` of raw read replies;
    ``protocols``: {address: protocol} of the known meters (a DL/T645
    1997 reply is read with its meter's version)."""
    rows = []
    when = (parse_time(time_property) if time_property is not None
        else None)
    for frame in split_frames(raw_payload(payload, fmt)):
        raw = frame.to_bytes(0)
        address = frame.address
        protocol = protocols.get(address)
        try:
            if protocol in _CODEC_PROTOCOL:
                message = auto.decode(raw, _CODEC_PROTOCOL[protocol])
            else:
                message = auto.decode(raw)
        except CodecError as exc:
            raise PayloadError(f'frame of {address}: {exc}') from None
        if topic_address is not None and address.lstrip('0') != \
                str(topic_address).lstrip('0'):
            raise PayloadError(f'frame of meter {address} on the topic of '
                f'{topic_address}')
        if not message.is_response or message.command != 'read':
            raise PayloadError(f'frame of {address} is not a read reply '
                f'({message.command})')
        if message.error_code is not None:
            raise PayloadError(f'meter {address} refused the read: '
                f'{message.error}')
        if protocol is None:
            protocol = (CJT188 if isinstance(frame, cjt188.Frame)
                else 'dlt645_2007')
        register = _BY_DI.get((protocol, message.di))
        if register is None:
            raise PayloadError(f'frame of {address}: DI {message.di} is '
                f'not a stored register')
        read_at = when
        if read_at is None and protocol == CJT188:
            meter_time = (message.fields or {}).get('time')
            if meter_time:
                read_at = parse_time(meter_time)
        rows.append((address, register, read_at or received_at,
                _value(register, message.value)))
    return rows


def parse_reading(payload, fmt, topic_address=None, protocols=None,
        received_at=None, time_property=None):
    "Dispatch on the format; PayloadError on anything unreadable"
    if fmt == 'json':
        return parse_json_reading(payload, topic_address)
    if fmt in ('hex', 'binary'):
        return parse_frame_reading(payload, fmt, topic_address,
            protocols or {}, received_at or _utcnow(), time_property)
    raise PayloadError(f'unknown payload format {fmt!r}')


def _utcnow():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None,
        microsecond=0)


# --- commands -----------------------------------------------------------

def command_payload(command, meter, fmt, now=None) -> bytes:
    """What goes on the command topic: JSON ``{"id", "kind", "payload"}``
    or the DL/T645 request frame (hex text / bytes); ValueError for a kind
    a raw-frame meter cannot take."""
    if fmt == 'json':
        return json.dumps({'id': command.id, 'kind': command.kind,
                'payload': command.payload}, sort_keys=True,
            separators=(',', ':'), default=str).encode('utf-8')
    if command.kind not in RAW_KINDS:
        raise ValueError(f'{command.kind} cannot be sent as a raw frame '
            f'(one of {", ".join(RAW_KINDS)}); use the JSON format')
    if command.kind == 'read':
        frame = read_frames(meter, (command.payload or {}).get('registers'))
        return frame.hex().upper().encode('ascii') if fmt == 'hex' \
            else frame
    if meter.protocol != 'dlt645_2007':
        raise ValueError(f'{command.kind} needs a DL/T645-2007 meter')
    payload = command.payload or {}
    now = now or _utcnow()
    try:
        if command.kind == 'recharge':
            frame = recharge.purchase_request(meter.address,
                Decimal(str(payload['amount'])), int(payload['count']),
                vendor=meter.vendor, password=meter.password)
        else:
            action = {'trip': 'trip', 'hold': 'hold',
                'hold_release': 'hold-release'}.get(command.kind,
                'close-direct' if payload.get('direct') else 'close')
            minutes = int(payload.get('valid_minutes', 30))
            frame = dlt645.control_request(meter.address, action,
                valid_until=now + METER_UTC_OFFSET
                + dt.timedelta(minutes=minutes),
                password=meter.password, vendor=meter.vendor)
    except (KeyError, ValueError, TypeError, ArithmeticError,
            CodecError) as exc:
        raise ValueError(f'{command.kind}: bad payload ({exc})') from None
    if fmt == 'hex':
        return frame.hex().upper().encode('ascii')
    return frame


def read_frames(meter, registers=None) -> bytes:
    "The read requests of ``registers`` (default: total energy), joined"
    from .registers import di_for
    if meter.protocol == CJT188:
        return cjt188.read_request(meter.address)
    version = (dlt645.V1997 if meter.protocol == 'dlt645_1997'
        else dlt645.V2007)
    registers = registers or ['energy_total']
    if isinstance(registers, str):
        registers = [registers]
    return b''.join(dlt645.read_request(meter.address,
            di_for(register, meter.protocol), version=version)
        for register in registers)


def parse_reply(payload, fmt, meter=None):
    """``(command id or None, state, error, result)`` of a reply; state is
    CONFIRMED or FAILED; PayloadError when unreadable."""
    if fmt == 'json':
        try:
            data = json.loads(bytes(payload).decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f'reply not JSON: {exc}') from None
        if not isinstance(data, dict) or 'id' not in data:
            raise PayloadError('a JSON reply is an object with "id"')
        try:
            command_id = int(data['id'])
        except (TypeError, ValueError):
            raise PayloadError(f'reply id {data["id"]!r} is not a '
                'number') from None
        result = data.get('result')
        if data.get('ok') is True:
            return command_id, CONFIRMED, None, result
        return command_id, FAILED, str(data.get('error') or
            'the meter refused the command')[:250], result
    frames = split_frames(raw_payload(payload, fmt))
    try:
        message = auto.decode(frames[0].to_bytes(0),
            vendor=getattr(meter, 'vendor', None))
    except CodecError as exc:
        raise PayloadError(f'reply frame: {exc}') from None
    result = {'reply': frames[0].to_bytes(0).hex().upper()}
    if message.error_code is not None:
        try:
            message.raise_for_error()
        except AbnormalReply as exc:
            if any('duplicate' in r for r in exc.reasons):
                result['duplicate'] = True
                return None, CONFIRMED, None, result
            return None, FAILED, str(exc)[:250], result
    return None, CONFIRMED, None, result


def is_read_reply(payload, fmt) -> bool:
    try:
        frame = split_frames(raw_payload(payload, fmt))[0]
        message = auto.decode(frame.to_bytes(0))
    except (PayloadError, CodecError):
        return False
    return message.command == 'read' and message.error_code is None


# --- the channel ----------------------------------------------------------

@dataclass
class NbMeter:
    "One NB-IoT / 4G meter of an MQTT channel"
    id: int
    address: str
    protocol: str = 'dlt645_2007'
    vendor: str | None = None
    password: str = '000000'


@dataclass
class MqttSpec:
    """The broker connection and topics of one 'mqtt' channel"""
    id: int
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    reading_topic: str = DEFAULT_TOPICS['reading']
    command_topic: str = DEFAULT_TOPICS['command']
    reply_topic: str = DEFAULT_TOPICS['reply']
    payload_format: str = 'json'
    session_expiry: int = 7 * 86400
    keepalive: int = 30

    def __post_init__(self):
        if not self.host or not self.port:
            raise ValueError(f'channel {self.id}: mqtt needs host and port')
        if self.payload_format not in FORMATS:
            raise ValueError(f'channel {self.id}: payload format '
                f'{self.payload_format!r} is not one of {", ".join(FORMATS)}')
        for template in (self.reading_topic, self.command_topic,
                self.reply_topic):
            check_template(template)
        if not self.client_id:
            self.client_id = f'dh-collector-{self.id}'

    def key(self):
        return (self.host, self.port, self.username, self.password,
            self.client_id, self.reading_topic, self.command_topic,
            self.reply_topic, self.payload_format, self.session_expiry)


@dataclass
class MqttStats:
    messages: int = 0
    readings: int = 0
    rejected: int = 0
    replies: int = 0
    commands_sent: int = 0
    connects: int = 0
    last_error: str | None = None


def _user_property(message, name):
    properties = getattr(message, 'properties', None)
    for key, value in getattr(properties, 'UserProperty', None) or ():
        if key == name:
            return value
    return None


def _correlation(message):
    properties = getattr(message, 'properties', None)
    data = getattr(properties, 'CorrelationData', None)
    if data:
        try:
            return int(bytes(data).decode('ascii'))
        except (UnicodeDecodeError, ValueError):
            return None
    return None


class MqttChannel:
    """Subscribes to one broker for a channel's NB meters: readings to
    ``sink``, commands from and outcomes to ``commands`` (a
    :class:`.model.CommandSource`).  :meth:`run` until cancelled;
    reconnects with back-off."""

    def __init__(self, spec: MqttSpec, meters: list[NbMeter], sink,
            commands=None, rejects_path=None, command_interval=2.0,
            flush_interval=0.2, retry_max=30.0):
        self.spec = spec
        self.sink = sink
        self.commands = commands
        self.rejects_path = rejects_path
        self.command_interval = command_interval
        self.flush_interval = flush_interval
        self.retry_max = retry_max
        self.stats = MqttStats()
        self.set_meters(meters)
        self.client = None
        self.connected = asyncio.Event()
        self._unacked = []          # (mid, qos) once their readings flush
        self._inflight = {}         # command id -> meter address
        self._inflight_by_meter = {}    # address -> [command ids], FIFO
        self._answering = set()     # meters heard from since health()
        self._since = (0, 0, 0, _utcnow())  # messages, readings, rejected

    def health(self):
        """A :class:`.model.RoundStats` of the period since the last call
        (the channel's health in the backend: meters heard from, readings,
        messages as attempts, rejected ones as errors)"""
        from .model import RoundStats
        messages, readings, rejected, started = self._since
        now = _utcnow()
        stats = RoundStats(self.spec.id, meters=len(self.meters),
            meters_answering=len(self._answering),
            readings=self.stats.readings - readings,
            attempts=self.stats.messages - messages,
            errors=self.stats.rejected - rejected, started=started,
            finished=now, last_error=None if self.connected.is_set()
            else (self.stats.last_error or 'not connected to the broker'))
        if stats.errors and not stats.last_error:
            stats.last_error = self.stats.last_error
        self._answering = set()
        self._since = (self.stats.messages, self.stats.readings,
            self.stats.rejected, now)
        return stats

    def set_meters(self, meters):
        self.meters = {m.address: m for m in meters}
        self.protocols = {m.address: m.protocol for m in meters}

    # the connection
    def _client(self):
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = int(self.spec.session_expiry)
        # messages in flight to us (not yet acknowledged: not yet flushed);
        # beyond it the broker waits, so a slow database holds the
        # readings at the broker instead of in our memory
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        client = aiomqtt.Client(self.spec.host, self.spec.port,
            username=self.spec.username or None,
            password=self.spec.password or None,
            identifier=self.spec.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
            properties=properties, keepalive=self.spec.keepalive,
            timeout=10)
        # acknowledge only what is in the database or the spool (aiomqtt
        # 2.5 has no option for it: the paho client below it does)
        client._client.manual_ack_set(True)
        return client

    async def run(self):
        import aiomqtt
        delay = 1.0
        while True:
            try:
                async with self._client() as client:
                    self.client = client
                    self.stats.connects += 1
                    delay = 1.0
                    await self._subscribe(client)
                    self.connected.set()
                    log.info('channel %s: connected to %s:%s as %s',
                        self.spec.id, self.spec.host, self.spec.port,
                        self.spec.client_id)
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._receive(client))
                        group.create_task(self._flusher(client))
                        if self.commands is not None:
                            group.create_task(self._send_commands(client))
            except* (aiomqtt.MqttError, OSError) as errors:
                self._lost(errors.exceptions[0])
            except* Exception as errors:
                # the spool's disk, say: log it, reconnect, carry on (what
                # was not acknowledged comes again)
                log.error('channel %s: subscriber failed', self.spec.id,
                    exc_info=errors.exceptions[0])
                self.stats.last_error = repr(errors.exceptions[0])
            finally:
                self.client = None
                self.connected.clear()
                self._unacked.clear()   # the broker sends them again
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    def _lost(self, error):
        self.stats.last_error = f'{type(error).__name__}: {error}'
        log.warning('channel %s: broker %s:%s: %s', self.spec.id,
            self.spec.host, self.spec.port, self.stats.last_error)

    async def _subscribe(self, client):
        await client.subscribe([
                (topic_filter(self.spec.reading_topic), 1),
                (topic_filter(self.spec.reply_topic), 1)])

    async def _receive(self, client):
        async for message in client.messages:
            self.stats.messages += 1
            topic = str(message.topic)
            try:
                address = address_from_topic(self.spec.reading_topic, topic)
                if address is not None:
                    await self._reading(address, message)
                else:
                    address = address_from_topic(self.spec.reply_topic,
                        topic)
                    if address is None:
                        raise PayloadError('topic matches neither the '
                            'reading nor the reply topic')
                    await self._reply(address, message)
            except PayloadError as exc:
                self._reject(topic, message.payload, str(exc))
            except Exception:
                # the database is down for a reply's report, say: not
                # acknowledged, so the broker sends it again on reconnect
                log.exception('channel %s: message on %s not handled',
                    self.spec.id, topic)
                continue
            if message.qos:
                self._unacked.append((message.mid, message.qos))

    async def _reading(self, address, message):
        rows = parse_reading(message.payload, self.spec.payload_format,
            address, self.protocols, _utcnow(),
            _user_property(message, 'time'))
        readings = []
        for meter_address, register, read_at, value in rows:
            meter = self._meter(meter_address)
            if meter is None:
                raise PayloadError(f'meter {meter_address} is not an NB '
                    f'meter of channel {self.spec.id}')
            readings.append(Reading(meter.id, register, read_at, value))
        await self.sink(readings)
        self.stats.readings += len(readings)
        self._answering.update(r.meter_id for r in readings)

    def _meter(self, address):
        meter = self.meters.get(address)
        if meter is None:
            for width in (12, 14):
                meter = self.meters.get(str(address).rjust(width, '0'))
                if meter is not None:
                    break
        return meter

    async def _flush_and_ack(self, client):
        "Readings to the database or the spool, then their PUBACKs"
        acks, self._unacked = self._unacked, []
        flush = getattr(self.sink, 'flush', None)
        if flush is not None:
            await flush()
        for mid, qos in acks:
            client._client.ack(mid, qos)

    async def _flusher(self, client):
        while True:
            await asyncio.sleep(self.flush_interval)
            if self._unacked:
                await self._flush_and_ack(client)

    async def drain(self):
        "On a clean stop: deliver or spool what came in, and PUBACK it"
        if self.client is not None and self._unacked:
            await self._flush_and_ack(self.client)

    def _reject(self, topic, payload, error):
        self.stats.rejected += 1
        self.stats.last_error = error
        log.error('channel %s: message on %s rejected: %s', self.spec.id,
            topic, error)
        if self.rejects_path:
            line = json.dumps({'at': _utcnow().isoformat(),
                    'channel': self.spec.id, 'topic': topic,
                    'payload': bytes(payload).hex(), 'error': error},
                separators=(',', ':'))
            directory = os.path.dirname(self.rejects_path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            with open(self.rejects_path, 'a', encoding='utf-8') as f:
                f.write(line + '\n')
                f.flush()
                os.fsync(f.fileno())

    # commands
    async def _send_commands(self, client):
        while True:
            try:
                pending = await self.commands.fetch(self.spec.id)
            except Exception as exc:
                log.warning('channel %s: commands not fetched: %s',
                    self.spec.id, exc)
                pending = []
            for command in pending:
                await self._send(client, command)
            await asyncio.sleep(self.command_interval)

    async def _send(self, client, command):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        meter = next((m for m in self.meters.values()
                if m.id == command.meter_id), None)
        if meter is None:
            # an attempt that fails (the attempts count, up to the max)
            await self.commands.report(command.id, SENT, None, None)
            await self.commands.report(command.id, FAILED,
                f'meter {command.meter_id} is not an NB meter of channel '
                f'{self.spec.id}', None)
            return
        try:
            payload = command_payload(command, meter,
                self.spec.payload_format)
        except ValueError as exc:
            await self.commands.report(command.id, SENT, None, None)
            await self.commands.report(command.id, FAILED, str(exc), None)
            return
        await self.commands.report(command.id, SENT, None, None)
        self._inflight[command.id] = meter.address
        self._inflight_by_meter.setdefault(meter.address, []).append(
            command.id)
        properties = Properties(PacketTypes.PUBLISH)
        properties.CorrelationData = str(command.id).encode('ascii')
        try:
            await client.publish(topic_for(self.spec.command_topic,
                    meter.address), payload, qos=1, properties=properties,
                timeout=30)
        except Exception as exc:
            self._forget(command.id)
            await self.commands.report(command.id, FAILED,
                f'not published: {exc}', None)
            raise
        self.stats.commands_sent += 1

    def _forget(self, command_id):
        address = self._inflight.pop(command_id, None)
        ids = self._inflight_by_meter.get(address) or []
        if command_id in ids:
            ids.remove(command_id)

    async def _reply(self, address, message):
        if self.commands is None:
            raise PayloadError('a reply, but this collector sends no '
                'commands')
        meter = self._meter(address)
        command_id, state, error, result = parse_reply(message.payload,
            self.spec.payload_format, meter)
        if self.spec.payload_format != 'json' and state == CONFIRMED \
                and is_read_reply(message.payload, self.spec.payload_format):
            # the answer to a 'read' command: its readings go to the sink
            await self._reading(address, message)
            result['readings'] = True
        if command_id is None:
            command_id = _correlation(message)
        if command_id is None:
            ids = self._inflight_by_meter.get(
                meter.address if meter else address) or []
            if not ids:
                raise PayloadError(f'reply of meter {address} matches no '
                    'command in flight')
            command_id = ids[0]
        sent_to = self._inflight.get(command_id)
        if sent_to is not None and sent_to != (meter.address if meter
                else address):
            raise PayloadError(f'meter {address} answered command '
                f'{command_id} of meter {sent_to}')
        self._forget(command_id)
        self.stats.replies += 1
        await self.commands.report(command_id, state, error, result)


class MqttHub:
    """Every 'mqtt' channel of the plan, each in its own task: the hook
    the collector daemon calls on each plan (re)load."""

    def __init__(self, sink, commands=None, rejects_path=None, record=None,
            health_interval=60.0, **options):
        self.sink = sink
        self.commands = commands
        self.rejects_path = rejects_path
        #: async record(channel_id, RoundStats): the channel's health
        self.record = record
        self.health_interval = health_interval
        self.options = options
        self.channels = {}      # id -> MqttChannel
        self.tasks = {}

    def update(self, plan):
        """Take the 'mqtt' channels of ``plan`` (collectd's plain data),
        start / restart / stop their tasks; returns the other channels."""
        rest, wanted = [], {}
        for data in plan:
            if data.get('kind') != 'mqtt':
                rest.append(data)
                continue
            try:
                spec = spec_from_plan(data)
            except (ValueError, KeyError) as exc:
                log.error('channel %s left out: %s', data.get('id'), exc)
                continue
            wanted[spec.id] = (spec, meters_from_plan(data))
        for channel_id in list(self.channels):
            old = self.channels[channel_id]
            if channel_id not in wanted or \
                    wanted[channel_id][0].key() != old.spec.key():
                self._stop(channel_id)
        for channel_id, (spec, meters) in wanted.items():
            if channel_id in self.channels:
                self.channels[channel_id].set_meters(meters)
                continue
            self.channels[channel_id] = MqttChannel(spec, meters, self.sink,
                self.commands, self.rejects_path, **self.options)
            if self._running:
                self._start(channel_id)
        return rest

    _running = False

    def start(self):
        self._running = True
        for channel_id in self.channels:
            if channel_id not in self.tasks:
                self._start(channel_id)

    def _start(self, channel_id):
        self.tasks[channel_id] = asyncio.ensure_future(
            self._run(self.channels[channel_id]))

    async def _run(self, channel):
        async with asyncio.TaskGroup() as group:
            group.create_task(channel.run())
            if self.record is not None:
                group.create_task(self._health(channel))

    async def _health(self, channel):
        while True:
            await asyncio.sleep(self.health_interval)
            try:
                await self.record(channel.spec.id, channel.health())
            except Exception as exc:
                log.warning('channel %s: health not recorded: %s',
                    channel.spec.id, exc)

    def _stop(self, channel_id):
        self.channels.pop(channel_id, None)
        task = self.tasks.pop(channel_id, None)
        if task is not None:
            task.cancel()

    async def close(self):
        self._running = False
        for channel in self.channels.values():
            try:
                await channel.drain()
            except Exception:
                log.exception('channel %s: draining failed', channel.spec.id)
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # what was received is delivered or spooled by the sink's close


def spec_from_plan(data) -> MqttSpec:
    return MqttSpec(id=data['id'], host=data['host'],
        port=data['port'] or 1883,
        username=data.get('mqtt_username'),
        password=data.get('mqtt_password'),
        client_id=data.get('mqtt_client_id'),
        reading_topic=data.get('mqtt_reading_topic')
        or DEFAULT_TOPICS['reading'],
        command_topic=data.get('mqtt_command_topic')
        or DEFAULT_TOPICS['command'],
        reply_topic=data.get('mqtt_reply_topic') or DEFAULT_TOPICS['reply'],
        payload_format=data.get('mqtt_payload_format') or 'json',
        session_expiry=data.get('mqtt_session_expiry') or 7 * 86400)


def meters_from_plan(data) -> list[NbMeter]:
    meters = []
    for m in data['meters']:
        width = 14 if m['protocol'] == CJT188 else 12
        meters.append(NbMeter(m['id'], str(m['address']).strip().rjust(
                    width, '0'), m['protocol'],
                None if m.get('vendor') in (None, 'standard')
                else m['vendor'], m.get('password') or '000000'))
    return meters
