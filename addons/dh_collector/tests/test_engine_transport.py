"""Collector engine transports: frames delimited by L (not silence),
inter-byte gaps, garbage, echoes, stale replies, reconnects."""

import asyncio
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import dlt645
from trytond.modules.dh_collector.engine import (
    BadReply, ConnectionLost, NotConnected, ReplyTimeout, TcpBridgeTransport)

ADDRESS = '000000000001'
REQUEST = dlt645.read_request(ADDRESS, '00010000')
REPLY = dlt645.read_response(ADDRESS, '00010000', Decimal('12.34'),
    preamble=2)


async def scripted(script):
    """A bridge that plays ``script(request, writer)`` for each request
    (one request per read)."""
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        while True:
            data = await reader.read(1024)
            if not data:
                break
            await script(data, writer)
        writer.close()
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    return server, server.sockets[0].getsockname()[1], connections


def only_replies(frame):
    return None if frame.is_response else 'echo'


def run_with(script, body):
    async def run():
        server, port, connections = await scripted(script)
        async with server:
            transport = TcpBridgeTransport('127.0.0.1', port,
                inter_byte_gap=0.1, backoff=0.01)
            try:
                return await body(transport, connections)
            finally:
                await transport.close()
    return asyncio.run(run())


def test_a_reply_in_pieces_with_short_pauses_is_one_frame():
    async def script(request, writer):
        writer.write(b'\x00\x13garbage' + REPLY[:3])
        await writer.drain()
        for piece in (REPLY[3:9], REPLY[9:-1], REPLY[-1:]):
            await asyncio.sleep(0.06)   # under the 0.1 s gap each time
            writer.write(piece)
            await writer.drain()

    async def body(transport, _):
        frame = await transport.exchange(REQUEST, dlt645.decode_stream, 0.5)
        return dlt645.parse(frame).value
    assert run_with(script, body) == Decimal('12.34')


def test_a_reply_that_stops_mid_frame_times_out_on_the_gap():
    async def script(request, writer):
        writer.write(REPLY[:10])
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(REPLY[10:])

    async def body(transport, _):
        with pytest.raises(ReplyTimeout, match='reply stopped after'):
            await transport.exchange(REQUEST, dlt645.decode_stream, 1.0)
    run_with(script, body)


def test_echo_and_stale_replies_are_skipped_bad_checksum_fails_at_once():
    stale = dlt645.read_response(ADDRESS, '00010100', Decimal('1.00'))
    bad = bytearray(REPLY)
    bad[-3] ^= 0x01

    async def script(request, writer):
        if len(request) > 30:       # the bad-checksum case
            writer.write(bytes(bad))
            return
        writer.write(request + stale)       # an echo, a late reply
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(REPLY)

    async def body(transport, _):
        def accept(frame):
            if not frame.is_response:
                return 'echo'
            if dlt645.parse(frame).di != '00010000':
                return 'stale'
            return None
        frame = await transport.exchange(REQUEST, dlt645.decode_stream, 0.5,
            accept=accept)
        assert dlt645.parse(frame).value == Decimal('12.34')
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(BadReply, match='checksum'):
            await transport.exchange(REQUEST + b'\xfe' * 20,
                dlt645.decode_stream, 2.0)
        assert loop.time() - started < 0.5
    run_with(script, body)


def test_leftover_bytes_of_an_earlier_exchange_are_dropped():
    calls = []

    def reply(value):
        return dlt645.read_response(ADDRESS, '00010000', Decimal(value))

    async def script(request, writer):
        calls.append(request)
        if len(calls) == 1:
            writer.write(reply('1.00'))
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(reply('99.99'))    # late: stays in the buffer
        else:
            writer.write(reply('2.00'))
        await writer.drain()

    async def body(transport, _):
        values = []
        for _ in range(2):
            frame = await transport.exchange(REQUEST, dlt645.decode_stream,
                0.5)
            values.append(dlt645.parse(frame).value)
            await asyncio.sleep(0.05)
        assert transport._link.buffer == bytearray()
        return values
    assert run_with(script, body) == [Decimal('1.00'), Decimal('2.00')]


def test_disconnect_mid_frame_then_reconnect():
    calls = []

    async def script(request, writer):
        calls.append(request)
        if len(calls) == 2:
            writer.write(REPLY[:8])
            await writer.drain()
            writer.close()
            return
        writer.write(REPLY)

    async def body(transport, connections):
        await transport.exchange(REQUEST, dlt645.decode_stream, 0.5)
        with pytest.raises(ConnectionLost, match='after 6 bytes of a reply'):
            await transport.exchange(REQUEST, dlt645.decode_stream, 0.5)
        frame = await transport.exchange(REQUEST, dlt645.decode_stream, 0.5)
        assert frame.address == ADDRESS
        return transport.connects, len(connections)
    assert run_with(script, body) == (2, 2)


def test_connect_refused_backs_off():
    async def run():
        server = await asyncio.start_server(lambda r, w: None, '127.0.0.1',
            0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        transport = TcpBridgeTransport('127.0.0.1', port, backoff=10)
        with pytest.raises(NotConnected, match='connect failed'):
            await transport.exchange(REQUEST, dlt645.decode_stream, 0.2)
        with pytest.raises(NotConnected, match='next try in'):
            await transport.exchange(REQUEST, dlt645.decode_stream, 0.2)
    asyncio.run(run())
