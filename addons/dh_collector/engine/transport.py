"""Transports: how request bytes reach an RS485 bus and reply bytes come
back. All of them expose ``exchange``; a poller never sees sockets.

* :class:`TcpBridgeTransport` — a transparent serial server (串口服务器)
  the collector connects to; reconnects after errors with back-off.
* :class:`SerialTransport` — a local serial port through pyserial (POSIX:
  the port's file descriptor is watched by the event loop, no thread).
* :class:`.dtu.DtuTransport` — a DTU that dialled in (see :mod:`.dtu`).

``exchange`` keeps one request in flight per bus (a lock: RS485 is half
duplex), drops bytes left over from an earlier exchange, sends the
request, and reads until the codec's framer (``decode_stream``) yields a
frame the caller ``accept``\\s. Frames are delimited by their L byte, never
by silence: ``timeout`` bounds the wait for the reply to start, then each
silence inside a frame may last up to ``inter_byte_gap`` (Tb). Garbage is
skipped by the framer; a frame rejected for its checksum or end byte ends
the attempt at once (:class:`BadReply`) so the caller can retry without
waiting for the timeout.
"""

import asyncio
import logging
import os
import time

log = logging.getLogger('dh.collector.transport')


class TransportError(Exception):
    """A failed exchange; ``str()`` says why."""


class NotConnected(TransportError):
    """No link to the bus (connect failed, DTU not dialled in)."""


class ConnectionLost(TransportError):
    """The link closed during the exchange."""


class ReplyTimeout(TransportError):
    """No acceptable reply in time."""


class BadReply(TransportError):
    """The reply was rejected by the framer (checksum, end byte)."""


class Link(asyncio.Protocol):
    """Bytes from a stream collected in ``buffer``; ``wait`` for more.

    Used as the asyncio protocol of TCP connections and fed by hand for
    serial ports and DTUs."""

    def __init__(self, name: str = ''):
        self.name = name
        self.buffer = bytearray()
        self.closed = False
        self.transport = None
        self.frames = 0          # accepted frames delivered on this link
        self._waiter: asyncio.Future | None = None

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.buffer += data
        self._wake()

    def eof_received(self):
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc):
        self.closed = True
        self._wake()

    # for the transports
    def _wake(self):
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, timeout: float) -> bool:
        """True when bytes arrived or the link closed, False after
        ``timeout`` seconds of silence."""
        if self.buffer or self.closed:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        handle = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            handle.cancel()
            self._waiter = None

    def write(self, data: bytes):
        if self.closed or self.transport is None:
            raise ConnectionLost(f'{self.name}: connection closed')
        self.transport.write(data)

    def close(self):
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()


def _expire(waiter):
    if not waiter.done():
        waiter.set_result(False)


class Transport:
    """Base of the transports: the exchange loop over a :class:`Link`
    that subclasses provide through ``_get_link``."""

    #: after the reply started, it must be complete this long after the
    #: ``timeout`` (a 216-byte frame takes 1 s at 2400 baud)
    max_frame_time = 3.0

    def __init__(self, name: str, *, inter_byte_gap: float = 0.5):
        self.name = name
        self.inter_byte_gap = inter_byte_gap
        self._lock = asyncio.Lock()
        self._link: Link | None = None
        self.exchanges = 0
        self.connects = 0

    def __repr__(self):
        return f'<{type(self).__name__} {self.name}>'

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    async def _get_link(self, timeout: float) -> Link:
        raise NotImplementedError

    async def exchange(self, request: bytes, decode_stream, timeout: float,
            *, accept=None):
        """Send ``request`` and return the first frame ``decode_stream``
        (a codec framer: ``(buffer, on_reject) -> (used, frame)``) finds
        that ``accept(frame)`` accepts (returns ``None``; a string is the
        reason to skip it and keep listening, e.g. the late reply to an
        earlier request). Raises :class:`TransportError`."""
        async with self._lock:
            link = await self._get_link(timeout)
            self.exchanges += 1
            return await self._exchange(link, request, decode_stream,
                timeout, accept)

    async def send(self, request: bytes, timeout: float = 1.0):
        """Send without waiting for a reply (broadcasts); holds the bus
        for the bytes' sake only."""
        async with self._lock:
            link = await self._get_link(timeout)
            link.buffer.clear()
            link.write(request)

    async def _exchange(self, link: Link, request, decode_stream, timeout,
            accept):
        loop = asyncio.get_running_loop()
        link.buffer.clear()         # stale bytes of an earlier exchange
        link.write(request)
        buf = bytearray()
        rejected: list[str] = []
        skipped: list[str] = []
        deadline = loop.time() + timeout
        hard = deadline + self.max_frame_time
        gap = self.inter_byte_gap
        while True:
            if link.buffer:
                buf += link.buffer
                link.buffer.clear()
                while buf:
                    used, frame = decode_stream(buf, rejected.append)
                    if not used:
                        break
                    del buf[:used]
                    if frame is None:
                        continue
                    reason = accept(frame) if accept is not None else None
                    if reason is None:
                        link.frames += 1
                        return frame
                    skipped.append(reason)
                    log.debug('%s: skipped a frame: %s', self.name, reason)
                if rejected and not buf:
                    raise BadReply(f'bad reply: {rejected[-1]}')
            if link.closed:
                raise ConnectionLost('connection closed'
                    + (f' after {len(buf)} bytes of a reply' if buf else ''))
            now = loop.time()
            wait = min(gap, hard - now) if buf else deadline - now
            if wait <= 0 or not await link.wait(wait):
                if link.buffer:
                    continue
                if buf:
                    raise ReplyTimeout(f'reply stopped after {len(buf)} '
                        f'bytes (silence over {gap:g} s)')
                if skipped:
                    raise ReplyTimeout(f'no valid reply within {timeout:g} '
                        f's; rejected: {skipped[-1]}')
                raise ReplyTimeout(f'no reply within {timeout:g} s')

    async def close(self):
        link, self._link = self._link, None
        if link is not None:
            link.close()


class _Backoff:
    """Reconnect pacing: the first reconnect after a loss is immediate
    unless the lost link never delivered a frame; failed connects double
    the delay up to ``maximum``."""

    def __init__(self, initial: float, maximum: float = 30.0):
        self.initial = max(initial, 0.01)
        self.maximum = maximum
        self.delay = self.initial
        self.retry_at = 0.0
        self.last_error: str | None = None

    async def check(self, name, limit: float):
        """Wait out a short back-off (up to ``limit`` seconds); raise
        :class:`NotConnected` during a longer one."""
        wait = self.retry_at - time.monotonic()
        if wait > limit:
            raise NotConnected(f'{name}: {self.last_error}; next try in '
                f'{wait:.1f} s')
        if wait > 0:
            await asyncio.sleep(wait)

    def failed(self, error: str):
        self.last_error = error
        self.retry_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, self.maximum)

    def succeeded(self):
        self.delay = self.initial
        self.retry_at = 0.0


class TcpBridgeTransport(Transport):
    """A transparent TCP-to-RS485 bridge at ``host:port``."""

    def __init__(self, host: str, port: int, *, inter_byte_gap: float = 0.5,
            connect_timeout: float = 3.0, backoff: float = 0.5,
            backoff_max: float = 30.0):
        super().__init__(f'tcp://{host}:{port}',
            inter_byte_gap=inter_byte_gap)
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._backoff = _Backoff(backoff, backoff_max)

    async def _get_link(self, timeout):
        link = self._link
        if link is not None:
            if not link.closed:
                return link
            self._link = None
            if not link.frames:     # lost before it ever worked
                self._backoff.failed('connection lost')
        await self._backoff.check(self.name, timeout)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, link = await loop.create_connection(
                    lambda: Link(self.name), self.host, self.port)
        except (OSError, TimeoutError) as exc:
            self._backoff.failed(f'connect failed: {exc or "timeout"}')
            raise NotConnected(f'{self.name}: connect failed: '
                f'{exc or "timeout"}') from None
        self._backoff.succeeded()
        self.connects += 1
        log.debug('%s: connected', self.name)
        self._link = link
        return link


class _SerialLink(Link):
    """A :class:`Link` on a pyserial port's file descriptor."""

    def __init__(self, name, port):
        super().__init__(name)
        self.port = port
        self.fd = port.fileno()
        self._out = bytearray()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._readable)

    def _readable(self):
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning('%s: read failed: %s', self.name, exc)
            self.close()
            return
        if data:
            self.data_received(data)

    def write(self, data: bytes):
        if self.closed:
            raise ConnectionLost(f'{self.name}: port closed')
        if self._out:
            self._out += data
            return
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            n = 0
        except OSError as exc:
            self.close()
            raise ConnectionLost(f'{self.name}: write failed: {exc}') \
                from None
        if n < len(data):
            self._out += data[n:]
            self._loop.add_writer(self.fd, self._writable)

    def _writable(self):
        try:
            n = os.write(self.fd, self._out)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning('%s: write failed: %s', self.name, exc)
            self.close()
            return
        del self._out[:n]
        if not self._out:
            self._loop.remove_writer(self.fd)

    def close(self):
        if not self.closed or self.port is not None:
            try:
                self._loop.remove_reader(self.fd)
                self._loop.remove_writer(self.fd)
            except (ValueError, OSError):
                pass
            port, self.port = self.port, None
            if port is not None:
                try:
                    port.close()
                except OSError:
                    pass
        self.closed = True
        self._wake()


class SerialTransport(Transport):
    """A local RS485 port (USB adapter, pty) through pyserial, 8 data bits,
    1 stop bit, ``parity`` 'E', 'N' or 'O'. Reopened with back-off after
    errors (an unplugged adapter)."""

    def __init__(self, device: str, baud: int = 2400, parity: str = 'E', *,
            inter_byte_gap: float = 0.5, backoff: float = 0.5,
            backoff_max: float = 30.0):
        super().__init__(f'serial:{device}', inter_byte_gap=inter_byte_gap)
        self.device = device
        self.baud = baud
        self.parity = parity
        self._backoff = _Backoff(backoff, backoff_max)

    def _open(self):
        import serial
        port = serial.Serial()
        port.port = self.device
        port.baudrate = self.baud
        port.parity = self.parity
        port.bytesize = serial.EIGHTBITS
        port.stopbits = serial.STOPBITS_ONE
        port.timeout = 0
        port.write_timeout = 0
        port.open()
        os.set_blocking(port.fileno(), False)
        try:
            port.reset_input_buffer()
        except Exception:
            pass
        return port

    async def _get_link(self, timeout):
        link = self._link
        if link is not None:
            if not link.closed:
                return link
            self._link = None
            self._backoff.failed('port closed')
        await self._backoff.check(self.name, timeout)
        try:
            port = self._open()
        except Exception as exc:    # serial.SerialException is an OSError
            self._backoff.failed(f'open failed: {exc}')
            raise NotConnected(f'{self.name}: open failed: {exc}') from None
        self._backoff.succeeded()
        self.connects += 1
        self._link = _SerialLink(self.name, port)
        return self._link
