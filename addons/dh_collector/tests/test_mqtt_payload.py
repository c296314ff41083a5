# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""NB-IoT / 4G meters: payload parsing, topics and command frames (pure,
no broker); and the subscriber's handling of unreadable messages (logged,
counted, kept in the rejects file, nothing else lost)."""
import asyncio
import datetime as dt
import json
import logging
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import cjt188, dlt645
from trytond.modules.dh_collector.engine import Command, mqtt
from trytond.modules.dh_collector.engine.mqtt import PayloadError
from trytond.modules.dh_collector.nb_sim import NbMeter
from trytond.modules.dh_collector.simulator import Clock, MeterSpec

ADDRESS = '000015085381'
WATER = '14000000000501'
T0 = dt.datetime(2026, 1, 1)


def reading(**data):
    return json.dumps(data).encode()


# --- topics ---------------------------------------------------------------

def test_topics():
    template = 'dh/meter/{address}/up'
    assert mqtt.topic_for(template, ADDRESS) == f'dh/meter/{ADDRESS}/up'
    assert mqtt.topic_filter(template) == 'dh/meter/+/up'
    assert mqtt.address_from_topic(template, f'dh/meter/{ADDRESS}/up') \
        == ADDRESS
    assert mqtt.address_from_topic('nb/m-{address}', 'nb/m-42') == '42'
    for topic in ['dh/meter/1/down', 'dh/meter//up', 'dh/meter/1/up/x',
            'nb/meter/1/up']:
        assert mqtt.address_from_topic(template, topic) is None
    for bad in ['dh/meter/up', 'dh/+/{address}', 'dh/{address}/{address}',
            '']:
        with pytest.raises(ValueError):
            mqtt.check_template(bad)


# --- JSON -------------------------------------------------------------------

def test_json_reading():
    rows = mqtt.parse_reading(reading(meter=ADDRESS,
            time='2026-11-27T12:00:00',
            registers={'energy_total': '1234.56', 'voltage': 220.1}),
        'json', ADDRESS)
    # no offset: the meter's Beijing time
    at = dt.datetime(2026, 11, 27, 4)
    assert rows == [(ADDRESS, 'energy_total', at, Decimal('1234.56')),
        (ADDRESS, 'voltage', at, Decimal('220.1'))]


def test_json_times_and_topic_address():
    utc = dt.datetime(2026, 11, 27, 4)
    for when in ['2026-11-27T12:00:00+08:00', '2026-11-27T04:00:00Z',
            '2026-11-27T04:00:00.700+00:00',
            int((utc - dt.datetime(1970, 1, 1)).total_seconds())]:
        (_, _, at, _), = mqtt.parse_reading(reading(time=when,
                registers={'energy_total': 1}), 'json', ADDRESS)
        assert at == utc, when
    # the address may be left to the topic, or written without zeros
    (address, _, _, _), = mqtt.parse_reading(reading(meter='15085381',
            time=0, registers={'energy_total': 1}), 'json', ADDRESS)
    assert address == '15085381'


@pytest.mark.parametrize('payload, error', [
        (b'', 'not JSON'),
        (b'\xff\xfe', 'not JSON'),
        (b'[1, 2]', 'is an object'),
        (reading(registers={'energy_total': 1}), 'no "time"'),
        (reading(time='yesterday', registers={'energy_total': 1}),
            'not an ISO'),
        (reading(time=True, registers={'energy_total': 1}), 'not a time'),
        (reading(time=1e30, registers={'energy_total': 1}), 'out of range'),
        (reading(time=0), 'non-empty object'),
        (reading(time=0, registers={}), 'non-empty object'),
        (reading(time=0, registers={'energy_total': 'lots'}),
            'not a number'),
        (reading(time=0, registers={'energy_total': 'NaN'}),
            'not a number'),
        (reading(time=0, registers={'energy_total': None}), 'not a number'),
        (reading(time=0, registers={'energy_total': [1]}), 'not a number'),
        (reading(time=0, registers={'temperature': 1}), 'unknown register'),
        (reading(meter='000099999999', time=0,
                registers={'energy_total': 1}), 'on the topic of'),
        ])
def test_json_bad(payload, error):
    with pytest.raises(PayloadError, match=error):
        mqtt.parse_reading(payload, 'json', ADDRESS)


def test_json_without_any_address():
    with pytest.raises(PayloadError, match='no meter address'):
        mqtt.parse_reading(reading(time=0, registers={'energy_total': 1}),
            'json', None)


# --- raw frames -------------------------------------------------------------

def frames():
    return (dlt645.read_response(ADDRESS, '00010000', Decimal('123.45'))
        + dlt645.read_response(ADDRESS, '02010100', Decimal('220.1')))


@pytest.mark.parametrize('fmt', ['hex', 'binary'])
def test_frame_reading(fmt):
    raw = b'\xfe\xfe' + frames()
    payload = raw.hex().encode() if fmt == 'hex' else raw
    assert mqtt.parse_reading(payload, fmt, ADDRESS, {}, T0) == [
        (ADDRESS, 'energy_total', T0, Decimal('123.45')),
        (ADDRESS, 'voltage', T0, Decimal('220.1'))]
    # the meter's time property wins over the arrival time
    rows = mqtt.parse_reading(payload, fmt, ADDRESS, {}, T0,
        '2026-11-27T12:00:00')
    assert {r[2] for r in rows} == {dt.datetime(2026, 11, 27, 4)}


def test_hex_with_spaces_and_1997():
    raw = dlt645.read_response(ADDRESS, '9010', Decimal('7.5'),
        version=dlt645.V1997)
    text = ' '.join(f'{b:02x}' for b in raw).encode()
    assert mqtt.parse_reading(text, 'hex', ADDRESS,
        {ADDRESS: 'dlt645_1997'}, T0) == [
        (ADDRESS, 'energy_total', T0, Decimal('7.5'))]


def test_water_frame_uses_meter_time():
    raw = cjt188.read_response(WATER, flow=Decimal('12.5'),
        time=dt.datetime(2026, 11, 27, 8, 30))
    assert mqtt.parse_reading(raw, 'binary', WATER, {}, T0) == [
        (WATER, 'water_flow', dt.datetime(2026, 11, 27, 0, 30),
            Decimal('12.50'))]


@pytest.mark.parametrize('payload, error', [
        (b'', 'empty payload'),
        (b'\xfe\xfe', 'empty payload'),
        (b'hello', 'no complete frame'),
        (frames()[:-3], 'no complete frame'),
        (frames() + b'\x00', 'no complete frame'),
        (dlt645.read_request(ADDRESS, '00010000'), 'not a read reply'),
        (dlt645.error_response(ADDRESS, 0x11, 2), 'refused the read'),
        (dlt645.read_response(ADDRESS, '00000000', 1),
            'not a stored register'),
        (dlt645.read_response('000099999999', '00010000', 1),
            'on the topic of'),
        ])
def test_frame_bad(payload, error):
    with pytest.raises(PayloadError, match=error):
        mqtt.parse_reading(payload, 'binary', ADDRESS, {}, T0)


def test_bad_hex_and_format():
    with pytest.raises(PayloadError, match='not hex'):
        mqtt.parse_reading(b'68zz', 'hex', ADDRESS, {}, T0)
    with pytest.raises(PayloadError, match='not hex'):
        mqtt.parse_reading('六八'.encode(), 'hex', ADDRESS, {}, T0)
    with pytest.raises(PayloadError, match='unknown payload format'):
        mqtt.parse_reading(b'{}', 'xml', ADDRESS)


# --- commands and replies ---------------------------------------------------

def test_command_payloads():
    meter = mqtt.NbMeter(1, ADDRESS)
    trip = Command(5, 1, 'trip', {})
    data = json.loads(mqtt.command_payload(trip, meter, 'json'))
    assert data == {'id': 5, 'kind': 'trip', 'payload': {}}
    raw = mqtt.command_payload(trip, meter, 'binary')
    message = dlt645.decode(raw)
    assert message.command == 'control' and message.address == ADDRESS
    assert mqtt.command_payload(trip, meter, 'hex') == raw.hex().upper() \
        .encode()
    recharge = Command(6, 1, 'recharge', {'amount': '10.00', 'count': 3})
    assert dlt645.decode(mqtt.command_payload(recharge, meter, 'binary')) \
        .address == ADDRESS
    with pytest.raises(ValueError, match='raw frame'):
        mqtt.command_payload(Command(7, 1, 'param_read', {}), meter, 'hex')
    read = mqtt.command_payload(Command(9, 1, 'read',
            {'registers': ['energy_total', 'voltage']}), meter, 'binary')
    assert [dlt645.decode(f.to_bytes(0)).di
        for f in mqtt.split_frames(read)] == ['00010000', '02010100']
    with pytest.raises(ValueError, match='bad payload'):
        mqtt.command_payload(Command(8, 1, 'recharge', {}), meter, 'hex')


def test_replies():
    assert mqtt.parse_reply(b'{"id": 5, "ok": true, "result": {"a": 1}}',
        'json') == (5, 'confirmed', None, {'a': 1})
    assert mqtt.parse_reply(b'{"id": "6", "ok": false, "error": "no"}',
        'json') == (6, 'failed', 'no', None)
    for bad in [b'', b'[]', b'{"ok": true}', b'{"id": "x"}']:
        with pytest.raises(PayloadError):
            mqtt.parse_reply(bad, 'json')
    ack = dlt645.ack_response(ADDRESS, 0x1C)
    command_id, state, error, result = mqtt.parse_reply(ack.hex().encode(),
        'hex')
    assert (command_id, state, error) == (None, 'confirmed', None)
    refused = dlt645.error_response(ADDRESS, 0x1C, 4)
    _, state, error, _ = mqtt.parse_reply(refused, 'binary')
    assert state == 'failed' and 'refused' in error
    with pytest.raises(PayloadError):
        mqtt.parse_reply(b'junk', 'binary')


def test_spec_checks():
    spec = mqtt.MqttSpec(3, 'broker', 1883)
    assert spec.client_id == 'dh-collector-3'
    with pytest.raises(ValueError, match='payload format'):
        mqtt.MqttSpec(3, 'broker', 1883, payload_format='xml')
    with pytest.raises(ValueError, match='host and port'):
        mqtt.MqttSpec(3, '', 1883)
    with pytest.raises(ValueError, match='address'):
        mqtt.MqttSpec(3, 'b', 1883, reply_topic='dh/reply')


# --- the subscriber on bad input (no broker: messages handed in) -----------

class Message:
    def __init__(self, topic, payload, qos=1, mid=1):
        self.topic, self.payload, self.qos, self.mid = topic, payload, qos, mid
        self.properties = None


class Messages:
    def __init__(self, messages):
        self.messages = messages

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for message in self.messages:
            yield message


def test_bad_messages_logged_counted_kept(tmp_path, caplog):
    rejects = tmp_path / 'rejects.jsonl'
    received = []

    async def sink(readings):
        received.extend(readings)
    class Commands:
        async def fetch(self, channel_id):
            return []

        async def report(self, *args):
            raise AssertionError('no reply may be reported')
    spec = mqtt.MqttSpec(1, 'broker', 1883)
    channel = mqtt.MqttChannel(spec, [mqtt.NbMeter(9, ADDRESS)], sink,
        Commands(), rejects_path=str(rejects))
    good = reading(time='2026-11-27T12:00:00',
        registers={'energy_total': '5'})
    messages = [
        Message(f'dh/meter/{ADDRESS}/up', b'garbage', mid=1),
        Message(f'dh/meter/000099999999/up', reading(time=0,
                registers={'energy_total': 1}), mid=2),
        Message(f'dh/meter/{ADDRESS}/reply', b'{"ok": true}', mid=3),
        Message('dh/other', b'x', mid=4),
        Message(f'dh/meter/{ADDRESS}/up', good, mid=5),
        ]

    class Client:
        pass
    client = Client()
    client.messages = Messages(messages)
    with caplog.at_level(logging.ERROR, 'dh.collector.mqtt'):
        asyncio.run(channel._receive(client))
    assert [r.value for r in received] == [Decimal(5)]
    assert channel.stats.rejected == 4
    # every message is acknowledged: a redelivery would not mend them
    assert [mid for mid, _ in channel._unacked] == [1, 2, 3, 4, 5]
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [bytes.fromhex(line['payload']) for line in lines] == [
        m.payload for m in messages[:4]]
    assert 'not an NB meter' in lines[1]['error']
    assert 'with "id"' in lines[2]['error']
    assert 'neither' in lines[3]['error']
    assert len([r for r in caplog.records if 'rejected' in r.message]) == 4


# --- the simulated NB meter (no broker) -------------------------------------

@pytest.mark.parametrize('fmt', ['json', 'hex', 'binary'])
def test_simulated_meter_readings_parse(fmt):
    meter = NbMeter(MeterSpec(ADDRESS, energy=42, remaining=10, rate=0),
        'localhost', 1, fmt=fmt,
        clock=Clock(speed=0, start=dt.datetime(2026, 11, 27, 9)))
    payload, when = meter.reading()
    rows = mqtt.parse_reading(payload, fmt, ADDRESS, {}, T0, when)
    assert {(r[1], r[3]) for r in rows} >= {('energy_total', Decimal(42)),
        ('remaining_energy', Decimal(10))}
    assert {r[2] for r in rows} == {dt.datetime(2026, 11, 27, 1)}


def test_simulated_meter_commands():
    meter = NbMeter(MeterSpec(ADDRESS, remaining=10, purchase_count=1),
        'localhost', 1)
    reply = json.loads(meter.handle_command(
        b'{"id": 3, "kind": "trip", "payload": {}}'))
    assert reply['ok'] and reply['result']['relay'] == 'open'
    reply = json.loads(meter.handle_command(json.dumps({'id': 4,
                'kind': 'recharge', 'payload': {'amount': '5',
                    'count': 2}}).encode()))
    assert reply['ok'] and reply['result']['remaining_energy'] == '15.00'
    reply = json.loads(meter.handle_command(
        b'{"id": 5, "kind": "param_read", "payload": {}}'))
    assert not reply['ok'] and 'not supported' in reply['error']
    raw = NbMeter(MeterSpec(ADDRESS), 'localhost', 1, fmt='binary')
    frame = mqtt.command_payload(Command(6, 1, 'trip', {}),
        mqtt.NbMeter(1, ADDRESS), 'binary')
    assert mqtt.parse_reply(raw.handle_command(frame), 'binary')[1] == \
        'confirmed'
    assert raw.meter.relay_open
    read = mqtt.command_payload(Command(7, 1, 'read',
            {'registers': ['energy_total', 'voltage']}),
        mqtt.NbMeter(1, ADDRESS), 'binary')
    reply = raw.handle_command(read)
    assert mqtt.is_read_reply(reply, 'binary')
    assert not mqtt.is_read_reply(raw.handle_command(frame), 'binary')
    assert [r[1] for r in mqtt.parse_reading(reply, 'binary', ADDRESS, {},
            T0)] == ['energy_total', 'voltage']


def test_hub_takes_the_mqtt_channels(caplog):
    tcp = {'id': 1, 'kind': 'tcp', 'meters': []}
    nb = {'id': 2, 'kind': 'mqtt', 'host': 'broker', 'port': 1883,
        'mqtt_payload_format': 'hex', 'mqtt_client_id': None,
        'meters': [{'id': 5, 'address': '15085381',
                'protocol': 'dlt645_2007', 'vendor': 'standard',
                'password': '000000'}]}
    bad = {'id': 3, 'kind': 'mqtt', 'host': 'broker', 'port': 1883,
        'mqtt_reading_topic': 'dh/up', 'meters': []}

    async def go():
        hub = mqtt.MqttHub(sink=None)
        with caplog.at_level(logging.ERROR, 'dh.collector.mqtt'):
            rest = hub.update([tcp, nb, bad])
        assert rest == [tcp]
        assert list(hub.channels) == [2]
        channel = hub.channels[2]
        assert channel.spec.client_id == 'dh-collector-2'
        assert channel.spec.payload_format == 'hex'
        assert list(channel.meters) == ['000015085381']
        assert 'channel 3 left out' in caplog.text
        # same broker: the channel is kept, its meters follow the plan
        hub.update([dict(nb, meters=[])])
        assert hub.channels[2] is channel and channel.meters == {}
        # another format: a new subscriber
        hub.update([dict(nb, mqtt_payload_format='json')])
        assert hub.channels[2] is not channel
        hub.update([])
        assert hub.channels == {}
        await hub.close()
    asyncio.run(go())


def test_channel_health_per_period():
    async def sink(readings):
        pass

    async def go():
        channel = mqtt.MqttChannel(mqtt.MqttSpec(4, 'broker', 1883),
            [mqtt.NbMeter(9, ADDRESS), mqtt.NbMeter(10, '000015085382')],
            sink)
        message = Message(f'dh/meter/{ADDRESS}/up', reading(time=0,
                registers={'energy_total': 1, 'voltage': 220}))
        channel.stats.messages += 1
        await channel._reading(ADDRESS, message)
        channel._reject('t', b'x', 'bad')
        stats = channel.health()
        assert (stats.channel_id, stats.meters, stats.meters_answering,
            stats.readings, stats.errors) == (4, 2, 1, 2, 1)
        # not connected: the reason is the last error
        assert stats.last_error == 'bad'
        stats = channel.health()
        assert (stats.meters_answering, stats.readings, stats.errors) == (
            0, 0, 0)
        assert stats.last_error == 'bad'      # still not connected
        channel.connected.set()
        assert channel.health().last_error is None
    asyncio.run(go())


def test_reply_of_another_meter_refused():
    reports = []

    class Commands:
        async def report(self, *args):
            reports.append(args)

    async def go():
        other = '000015085382'
        channel = mqtt.MqttChannel(mqtt.MqttSpec(4, 'broker', 1883),
            [mqtt.NbMeter(9, ADDRESS), mqtt.NbMeter(10, other)], None,
            Commands())
        channel._inflight[77] = other
        channel._inflight_by_meter[other] = [77]
        with pytest.raises(PayloadError, match='answered command 77'):
            await channel._reply(ADDRESS, Message(
                    f'dh/meter/{ADDRESS}/reply', b'{"id": 77, "ok": true}'))
        assert reports == []
        await channel._reply(other, Message(f'dh/meter/{other}/reply',
                b'{"id": 77, "ok": true}'))
        assert reports == [(77, 'confirmed', None, None)]
        assert channel._inflight == {} and channel.stats.replies == 1
    asyncio.run(go())
