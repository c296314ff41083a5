"""The collector engine (抄表前置机): pure asyncio, no Tryton.

* :mod:`.model` — :class:`ChannelSpec`, :class:`MeterTarget`,
  :class:`Reading`, :class:`Command`, :class:`CommandSource`,
  :class:`RoundStats`, :class:`MeterHealth`.
* :mod:`.registers` — register names to DIs per protocol.
* :mod:`.transport` — :class:`TcpBridgeTransport`,
  :class:`SerialTransport` (and the ``exchange`` contract).
* :mod:`.dtu` — :class:`DtuServer` for DTUs that dial in.
* :mod:`.poller` — :class:`ChannelPoller`: one bus, verified reads,
  retries, commands (:mod:`.commands`).
* :mod:`.spool` — :class:`Spool`, :class:`SpoolingSink` (at-least-once
  delivery through a local spool).
* :mod:`.collector` — :class:`Collector`, :func:`collect_once`.
"""

from .collector import Collector, collect_once
from .dtu import DtuServer, DtuTransport, RegistrationFormat
from .model import (
    CONFIRMED, FAILED, SENT, ChannelSpec, Command, CommandSource,
    MeterHealth, MeterTarget, Reading, RoundStats, utcnow)
from .poller import ChannelPoller, ReadFailed
from .registers import REGISTERS, di_for, registers_for
from .spool import Spool, SpoolingSink
from .transport import (
    BadReply, ConnectionLost, NotConnected, ReplyTimeout, SerialTransport,
    TcpBridgeTransport, Transport, TransportError)

__all__ = [
    'BadReply', 'CONFIRMED', 'ChannelPoller', 'ChannelSpec', 'Collector',
    'Command', 'CommandSource', 'ConnectionLost', 'DtuServer',
    'DtuTransport', 'FAILED', 'MeterHealth', 'MeterTarget', 'NotConnected',
    'REGISTERS', 'Reading', 'ReadFailed', 'RegistrationFormat',
    'ReplyTimeout', 'RoundStats', 'SENT', 'SerialTransport', 'Spool',
    'SpoolingSink', 'TcpBridgeTransport', 'Transport', 'TransportError',
    'collect_once', 'di_for', 'registers_for', 'utcnow',
    ]
