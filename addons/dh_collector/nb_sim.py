# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Simulated NB-IoT / 4G meters for ``dh sim --mqtt``: each one is a
:class:`.simulator.Meter` with its own MQTT connection (fixed client id,
persistent session, QoS 1) that publishes its readings every ``interval``
seconds — JSON, or its own DL/T645 / CJ/T188 read replies as hex text or
bytes — and answers the commands published to its command topic on its
reply topic (the topics and payloads of engine/mqtt.py)."""
import asyncio
import json
import logging

from .codec import cjt188, dlt645
from .engine.model import METER_UTC_OFFSET, utcnow
from .engine.mqtt import DEFAULT_TOPICS, FORMATS, topic_for
from .simulator import CJT188, Bus, Clock, Meter, MeterSpec, SimOptions

log = logging.getLogger('dh.sim.nb')

ELECTRICITY = ['energy_total', 'voltage']
PREPAID = ['remaining_energy']
_DI = {'energy_total': '00010000', 'voltage': '02010100',
    'remaining_energy': '00900100'}
_CONTROL = {'trip': 'trip', 'close': 'close', 'hold': 'hold',
    'hold_release': 'hold-release'}


class NbMeter:
    """One NB meter and its broker connection; :meth:`run` until
    cancelled (reconnects).  ``answer`` False: commands are received and
    ignored (a meter that never replies)."""

    def __init__(self, spec: MeterSpec, host: str, port: int, *,
            fmt: str = 'json', interval: float = 60.0, clock=None,
            topics=None, username=None, password=None,
            session_expiry: int = 86400, answer: bool = True,
            options: SimOptions | None = None):
        if fmt not in FORMATS:
            raise ValueError(f'format {fmt!r} is not one of '
                f'{", ".join(FORMATS)}')
        if clock is None:
            # the meter keeps Beijing time whatever the machine's zone
            clock = Clock(options.speed if options else 1.0,
                start=utcnow() + METER_UTC_OFFSET)
        self.meter = Meter(spec, clock)
        self.bus = Bus(0, [self.meter], options or SimOptions())
        self.host, self.port = host, port
        self.fmt = fmt
        self.interval = interval
        self.topics = {**DEFAULT_TOPICS, **(topics or {})}
        self.username, self.password = username, password
        self.session_expiry = session_expiry
        self.answer = answer
        self.client_id = f'dh-nb-{self.meter.address}'
        self.client = None
        self.connected = asyncio.Event()
        self.connects = 0
        self.published = 0          # readings acknowledged by the broker
        self.commands = []          # (kind or 'frame', outcome)

    @property
    def address(self):
        return self.meter.address

    def registers(self):
        if self.meter.protocol == CJT188:
            return ['water_flow']
        names = list(ELECTRICITY)
        if self.meter.protocol == 'dlt645_2007' and self.meter.prepaid:
            names += PREPAID
        return names

    def _reply_frames(self) -> bytes:
        "The meter's own replies to reads of its registers"
        if self.meter.protocol == CJT188:
            return self.bus.handle(cjt188.read_request(self.address,
                    meter_type=self.meter.meter_type)) or b''
        version = (dlt645.V1997 if self.meter.protocol == 'dlt645_1997'
            else dlt645.V2007)
        frames = b''
        for name in self.registers():
            di = _DI[name] if version == dlt645.V2007 else {
                'energy_total': '9010', 'voltage': 'B611'}[name]
            frames += self.bus.handle(dlt645.read_request(self.address, di,
                    version=version)) or b''
        return frames

    def reading(self):
        """(payload, meter time as ISO text) of a reading now"""
        self.meter.advance()
        when = self.meter.meter_datetime().replace(microsecond=0)
        frames = self._reply_frames()
        if self.fmt == 'json':
            from .codec import auto
            from .engine.mqtt import split_frames
            registers = {}
            for name, frame in zip(self.registers(), split_frames(frames)):
                message = auto.decode(frame.to_bytes(0), {
                        'dlt645_2007': auto.DLT645_2007,
                        'dlt645_1997': auto.DLT645_1997}.get(
                        self.meter.protocol))
                registers[name] = str(message.value)
            payload = json.dumps({'meter': self.address,
                    'time': when.isoformat(), 'registers': registers},
                separators=(',', ':')).encode('utf-8')
        elif self.fmt == 'hex':
            payload = frames.hex().upper().encode('ascii')
        else:
            payload = frames
        return payload, when.isoformat()

    def _properties(self, packet, **values):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        properties = Properties(getattr(PacketTypes, packet))
        for name, value in values.items():
            setattr(properties, name, value)
        return properties

    async def publish_reading(self):
        """Publish one reading (QoS 1); returns when the broker
        acknowledged it.  The time goes in the user property ``time``
        too, so a redelivered raw frame keeps its time."""
        payload, when = self.reading()
        await self.client.publish(topic_for(self.topics['reading'],
                self.address), payload, qos=1,
            properties=self._properties('PUBLISH',
                UserProperty=[('time', when)]), timeout=30)
        self.published += 1
        return payload

    def _client(self):
        import aiomqtt
        return aiomqtt.Client(self.host, self.port, username=self.username,
            password=self.password, identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False,
            properties=self._properties('CONNECT',
                SessionExpiryInterval=self.session_expiry),
            keepalive=30, timeout=10)

    async def run(self):
        import aiomqtt
        delay = 0.5
        while True:
            try:
                async with self._client() as client:
                    self.client = client
                    self.connects += 1
                    delay = 0.5
                    await client.subscribe(topic_for(self.topics['command'],
                            self.address), qos=1)
                    self.connected.set()
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._commands(client))
                        if self.interval:
                            group.create_task(self._report(client))
            except* (aiomqtt.MqttError, OSError) as errors:
                log.debug('meter %s: broker: %s', self.address,
                    errors.exceptions[0])
            finally:
                self.client = None
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _report(self, client):
        while True:
            await self.publish_reading()
            await asyncio.sleep(self.interval)

    async def _commands(self, client):
        async for message in client.messages:
            if not self.answer:
                self.commands.append(('ignored', None))
                continue
            correlation = getattr(message.properties, 'CorrelationData',
                None)
            try:
                reply = self.handle_command(bytes(message.payload))
            except Exception as exc:   # never crash on a bad command
                log.warning('meter %s: bad command: %s', self.address, exc)
                continue
            if reply is None:
                continue
            values = {'CorrelationData': correlation} if correlation else {}
            await client.publish(topic_for(self.topics['reply'],
                    self.address), reply, qos=1,
                properties=self._properties('PUBLISH', **values),
                timeout=30)

    def handle_command(self, payload: bytes) -> bytes | None:
        "A command payload to the reply payload (None: no reply)"
        if self.fmt != 'json':
            from .engine.mqtt import split_frames
            raw = (bytes.fromhex(payload.decode('ascii'))
                if self.fmt == 'hex' else payload)
            reply = b''.join(self.bus.handle(frame.to_bytes(0)) or b''
                for frame in split_frames(raw))
            self.commands.append(('frame', bool(reply)))
            if not reply:
                return None
            return reply.hex().upper().encode('ascii') \
                if self.fmt == 'hex' else reply
        data = json.loads(payload.decode('utf-8'))
        kind, args = data['kind'], data.get('payload') or {}
        ok, error = True, None
        if kind in _CONTROL:
            code = self.meter.control('close-direct' if kind == 'close'
                and args.get('direct') else _CONTROL[kind])
            if code is not None:
                ok, error = False, f'refused (ERR {code:#04x})'
        elif kind == 'recharge':
            from decimal import Decimal
            verdict = self.meter.purchase(Decimal(str(args['amount'])),
                int(args['count']))
            if verdict == 'invalid':
                ok, error = False, (f'purchase count {args["count"]} '
                    f'refused (meter count {self.meter.purchase_count})')
        elif kind == 'read':
            loop = asyncio.get_running_loop()
            loop.create_task(self.publish_reading())
        else:
            ok, error = False, f'{kind} is not supported by this meter'
        result = {'relay': 'open' if self.meter.relay_open else 'closed',
            'purchase_count': self.meter.purchase_count}
        if self.meter.remaining is not None:
            result['remaining_energy'] = str(self.meter.remaining)
        self.commands.append((kind, ok))
        reply = {'id': data['id'], 'ok': ok, 'result': result}
        if error:
            reply['error'] = error
        return json.dumps(reply, separators=(',', ':')).encode('utf-8')


class NbFleet:
    "Several NB meters, each in its own task"

    def __init__(self, meters: list[NbMeter]):
        self.meters = meters
        self.tasks = []

    def start(self):
        self.tasks = [asyncio.ensure_future(m.run()) for m in self.meters]

    async def stop(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
