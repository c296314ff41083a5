"""Streaming framer shared by DL/T645 and CJ/T188 (pymodbus style).

Both protocols start a frame with ``68`` and give its length in L, so a
frame is delimited by L, never by silence. A *probe* looks at a buffer at
the index of a ``68`` and answers one of:

* ``(NEED, None)``: consistent so far, more bytes needed;
* ``(NOISE, None)``: this ``68`` does not start a frame;
* ``(BAD, reason)``: a frame header whose end byte or checksum is wrong;
* ``(OK, (length, frame))``.

:func:`scan` returns ``(used, frame_or_None)``: ``used`` bytes of the buffer
are consumed (garbage, a rejected frame, or the frame returned);
``used == 0`` means "need more bytes". Call it again until ``used == 0``.
"""

from typing import Callable

START = 0x68
END = 0x16
PREAMBLE = 0xFE

NEED, NOISE, BAD, OK = range(4)


def scan(buffer, probes, on_reject: Callable[[str], None] | None = None):
    pending = None
    i = buffer.find(START)
    while i >= 0:
        bad = None
        need = False
        for probe in probes:
            status, result = probe(buffer, i)
            if status == OK:
                length, frame = result
                return i + length, frame
            if status == NEED:
                need = True
            elif status == BAD and bad is None:
                bad = result
        if need:
            if pending is None:
                pending = i
        elif bad is not None and pending is None and on_reject is not None:
            on_reject(bad)
        i = buffer.find(START, i + 1)
    if pending is not None:
        return pending, None
    return len(buffer), None


class StreamDecoder:
    """Buffering wrapper for a transport: ``feed(bytes) -> [frames]``.

    ``rejected`` keeps the reasons of frames dropped for a bad checksum or
    end byte, so a caller can retry at once instead of waiting for a
    timeout.
    """

    def __init__(self, decode):
        self._decode = decode
        self.buffer = bytearray()
        self.rejected: list[str] = []

    def feed(self, data: bytes) -> list:
        self.buffer += data
        frames = []
        while self.buffer:
            used, frame = self._decode(self.buffer, self.rejected.append)
            if not used:
                break
            del self.buffer[:used]
            if frame is not None:
                frames.append(frame)
        return frames

    def reset(self):
        self.buffer.clear()
        self.rejected.clear()


class MessageBase:
    """What a decoded DL/T645 or CJ/T188 message shares: the frame's
    address, control and direction, and its abnormal-reply error"""
    __slots__ = ()

    @property
    def address(self) -> str:
        return self.frame.address

    @property
    def control(self) -> int:
        return self.frame.control

    @property
    def direction(self) -> str:
        return self.frame.direction

    @property
    def is_response(self) -> bool:
        return self.frame.is_response

    @property
    def error(self):
        if self.error_code is None:
            return None
        return '; '.join(self.error_reasons)

    def raise_for_error(self):
        if self.error_code is not None:
            from .errors import AbnormalReply
            raise AbnormalReply(f'meter {self.address} refused '
                f'{self.command}: {self.error}', self.error_code,
                self.error_reasons)
        return self
