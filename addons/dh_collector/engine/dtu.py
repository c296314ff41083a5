"""DTUs and concentrators that dial in (the collector listens).

A device connects, sends its registration packet (``prefix`` + id, the id
as ASCII text or raw bytes shown as hex), then relays RS485 bytes both
ways and sends heartbeats (``heartbeat`` prefix + id) now and then. The
:class:`DtuServer` maps the id to a channel id through ``known_ids``,
strips heartbeats (and repeated registration packets) from the byte
stream and hands the connection to that channel's :class:`DtuTransport`.
An unknown id is logged and the connection dropped; a DTU that connects
again with the same id replaces its old connection (which is closed).
"""

import asyncio
import logging
from dataclasses import dataclass

from .transport import Link, NotConnected, Transport

log = logging.getLogger('dh.collector.dtu')


@dataclass
class RegistrationFormat:
    """How a DTU announces itself. ``id_encoding`` 'ascii': the id is
    text; 'hex': raw bytes, written as upper-case hex (``01020304``).
    ``id_length``: bytes of the id on the wire; ``None``: the rest of the
    first packet (trailing CR, LF and NUL stripped). ``heartbeat_has_id``:
    the heartbeat is ``heartbeat`` + the id bytes (else ``heartbeat``
    alone)."""
    prefix: bytes = b'REG:'
    id_encoding: str = 'ascii'
    heartbeat: bytes = b'HB:'
    id_length: int | None = None
    heartbeat_has_id: bool = True

    def __post_init__(self):
        if self.id_encoding not in ('ascii', 'hex'):
            raise ValueError("id_encoding must be 'ascii' or 'hex'")

    def id_text(self, raw: bytes) -> str:
        if self.id_encoding == 'hex':
            return raw.hex().upper()
        return raw.decode('ascii', 'replace')

    def id_bytes(self, ident: str) -> bytes:
        if self.id_encoding == 'hex':
            return bytes.fromhex(ident)
        return ident.encode('ascii')

    def normalize(self, ident: str) -> str:
        return ident.upper() if self.id_encoding == 'hex' else ident

    def parse(self, packet: bytes):
        """``(id, rest)`` from the start of a connection's bytes; ``None``:
        need more bytes; raises ``ValueError`` when it is no registration."""
        prefix = self.prefix
        if len(packet) < len(prefix):
            if not prefix.startswith(packet):
                raise ValueError(f'no registration prefix: {packet[:16]!r}')
            return None
        if not packet.startswith(prefix):
            raise ValueError(f'no registration prefix: {packet[:16]!r}')
        body = packet[len(prefix):]
        if self.id_length is not None:
            if len(body) < self.id_length:
                return None
            return (self.id_text(body[:self.id_length]),
                body[self.id_length:])
        if self.id_encoding == 'ascii':
            body = body.rstrip(b'\r\n\x00')
        if not body:
            return None
        return self.id_text(body), b''

    def tokens(self, ident: str) -> list[bytes]:
        """Byte strings to strip from the stream of DTU ``ident``."""
        raw = self.id_bytes(ident)
        tokens = []
        if self.heartbeat:
            tokens.append(self.heartbeat + raw if self.heartbeat_has_id
                else self.heartbeat)
        if self.prefix:
            tokens.append(self.prefix + raw)
        return tokens


class DtuTransport(Transport):
    """The transport of one DTU channel; the connection behind it comes
    and goes. ``exchange`` waits up to its timeout for the DTU to be
    connected, else raises :class:`NotConnected`."""

    def __init__(self, channel_id: int, *, inter_byte_gap: float = 0.5):
        super().__init__(f'dtu channel {channel_id}',
            inter_byte_gap=inter_byte_gap)
        self.channel_id = channel_id
        self.registration_id: str | None = None
        self._attached: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._attached is None:
            self._attached = asyncio.Event()
        return self._attached

    def attach(self, link: Link, registration_id: str):
        old, self._link = self._link, link
        self.registration_id = registration_id
        self.connects += 1
        if old is not None and old is not link and not old.closed:
            log.info('%s: DTU %s connected again, closing its old '
                'connection', self.name, registration_id)
            old.close()
        self._event().set()

    async def _get_link(self, timeout):
        event = self._event()
        link = self._link
        if link is None or link.closed:
            event.clear()
            try:
                async with asyncio.timeout(timeout):
                    await event.wait()
            except TimeoutError:
                raise NotConnected(f'{self.name}: DTU not connected'
                    ) from None
            link = self._link
        return link

    async def close(self):
        """Drop the current connection (the DTU will dial again)."""
        link = self._link
        if link is not None:
            link.close()


class _Connection(asyncio.Protocol):
    """One dialled-in connection: registration, then the byte stream."""

    #: a held partial heartbeat is released after this much silence
    HOLD = 0.05

    def __init__(self, server: 'DtuServer'):
        self.server = server
        self.transport = None
        self.link: Link | None = None
        self.peer = None
        self._buffer = bytearray()
        self._tokens: list[bytes] = []
        self._held = b''
        self._release = None
        self._timer = None

    def connection_made(self, transport):
        self.transport = transport
        self.peer = transport.get_extra_info('peername')
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.server.registration_timeout,
            self._no_registration)
        self.server._connections.add(self)

    def _no_registration(self):
        if self.link is None:
            log.warning('DTU %s: no registration within %g s, dropped',
                self.peer, self.server.registration_timeout)
            self.transport.close()

    def data_received(self, data: bytes):
        if self.link is not None:
            self._feed(data)
            return
        self._buffer += data
        try:
            parsed = self.server.registration.parse(bytes(self._buffer))
        except ValueError as exc:
            log.warning('DTU %s: %s; dropped', self.peer, exc)
            self.server.rejected.append((self.peer, None))
            self.transport.close()
            return
        if parsed is None:
            return
        ident, rest = parsed
        self._buffer.clear()
        self._register(ident, rest)

    def _register(self, ident: str, rest: bytes):
        server = self.server
        ident = server.registration.normalize(ident)
        channel_id = server.known_ids.get(ident)
        if channel_id is None:
            log.warning('DTU %s: unknown registration id %r; dropped',
                self.peer, ident)
            server.rejected.append((self.peer, ident))
            self.transport.close()
            return
        if self._timer is not None:
            self._timer.cancel()
        link = Link(f'dtu {ident}')
        link.connection_made(self.transport)
        self.link = link
        self._tokens = server.registration.tokens(ident)
        log.info('DTU %r from %s registered for channel %s', ident,
            self.peer, channel_id)
        server.registrations += 1
        server.transport(channel_id).attach(link, ident)
        if rest:
            self._feed(rest)

    def _feed(self, data: bytes):
        if self._release is not None:
            self._release.cancel()
            self._release = None
        data = self._held + data
        self._held = b''
        for token in self._tokens:
            if token in data:
                self.server.heartbeats += data.count(token)
                data = data.replace(token, b'')
        for token in self._tokens:     # a token split across packets
            for k in range(min(len(token) - 1, len(data)), 0, -1):
                if data.endswith(token[:k]):
                    self._held = data[-k:]
                    data = data[:-k]
                    self._release = asyncio.get_running_loop().call_later(
                        self.HOLD, self._flush_held)
                    break
            if self._held:
                break
        if data:
            self.link.data_received(data)

    def _flush_held(self):
        self._release = None
        held, self._held = self._held, b''
        if held and self.link is not None:
            self.link.data_received(held)

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if self._release is not None:
            self._release.cancel()
        if self.link is not None:
            self.link.connection_lost(exc)
            log.info('%s: connection closed', self.link.name)


class DtuServer:
    """Listens for DTUs on ``host:port`` (0: an ephemeral port, see
    :attr:`port` after :meth:`start`). ``known_ids``: registration id ->
    channel id (hex ids in upper case); :meth:`set_known_ids` replaces it
    (plan reload). ``rejected`` lists ``(peer, id)`` of dropped
    connections."""

    def __init__(self, host: str = '0.0.0.0', port: int = 0,
            registration: RegistrationFormat | None = None,
            known_ids: dict[str, int] | None = None, *,
            registration_timeout: float = 10.0,
            inter_byte_gap: float = 0.5):
        self.host = host
        self._port = port
        self.registration = registration or RegistrationFormat()
        self.known_ids: dict[str, int] = {}
        self.set_known_ids(known_ids or {})
        self.registration_timeout = registration_timeout
        self.inter_byte_gap = inter_byte_gap
        self.registrations = 0
        self.heartbeats = 0
        self.rejected: list[tuple] = []
        self._transports: dict[int, DtuTransport] = {}
        self._connections: set[_Connection] = set()
        self._server = None

    def set_known_ids(self, known_ids: dict[str, int]):
        self.known_ids = {self.registration.normalize(str(k)): v
            for k, v in known_ids.items()}

    def add_known_id(self, registration_id: str, channel_id: int):
        self.known_ids[self.registration.normalize(
            str(registration_id))] = channel_id

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    async def start(self) -> int:
        if self._server is None:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: _Connection(self), self.host, self._port,
                reuse_address=True)
        return self.port

    def transport(self, channel_id: int) -> DtuTransport:
        """The transport of ``channel_id`` (the same object across
        reconnections)."""
        found = self._transports.get(channel_id)
        if found is None:
            found = self._transports[channel_id] = DtuTransport(channel_id,
                inter_byte_gap=self.inter_byte_gap)
        return found

    async def disconnect(self, channel_id: int):
        """Close the DTU connection of ``channel_id`` (it will dial
        again)."""
        found = self._transports.get(channel_id)
        if found is not None:
            await found.close()

    async def close(self):
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.close()
