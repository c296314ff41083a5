"""The collector's plain data: what to read (:class:`ChannelSpec`,
:class:`MeterTarget`), what it produces (:class:`Reading`,
:class:`RoundStats`, :class:`MeterHealth`) and the command interface
(:class:`Command`, :class:`CommandSource`). No I/O, no ORM."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Awaitable, Callable, Protocol, runtime_checkable

CHANNEL_KINDS = ('tcp', 'serial', 'dtu')
PROTOCOLS = ('dlt645_2007', 'dlt645_1997', 'cjt188')
COMMAND_KINDS = ('read', 'trip', 'close', 'recharge', 'time_sync',
    'valve_open', 'valve_close', 'param_write', 'param_read', 'event_read',
    'load_reset')
SENT, CONFIRMED, FAILED = 'sent', 'confirmed', 'failed'

#: meters keep local (Beijing) time; the collector works in naive UTC
METER_UTC_OFFSET = dt.timedelta(hours=8)


def utcnow() -> dt.datetime:
    """The collector clock: naive UTC, truncated to seconds."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None,
        microsecond=0)


@dataclass
class ChannelSpec:
    """One RS485 bus and how to reach it.

    ``kind`` 'tcp': a transparent serial server (串口服务器) at
    ``host:port`` the collector connects to; 'serial': a local port
    ``device`` at ``baud`` / ``parity`` (8 data bits, 1 stop bit);
    'dtu': a DTU or concentrator that dials in and announces
    ``registration_id``. ``timeout``: seconds to wait for a reply to start;
    ``retries``: further attempts after a failed one, ``backoff`` seconds
    apart (doubling); ``inter_byte_gap``: the longest silence allowed
    inside a reply once it has started (Tb, up to 0.5 s by the standard)."""
    id: int
    kind: str
    host: str | None = None
    port: int | None = None
    device: str | None = None
    baud: int = 2400
    parity: str = 'E'
    registration_id: str | None = None
    timeout: float = 1.0
    retries: int = 2
    backoff: float = 0.5
    inter_byte_gap: float = 0.5
    #: Modbus meters on a 'tcp' channel: 'rtu' (RTU over a transparent
    #: bridge) or 'socket' (a Modbus TCP gateway)
    modbus_framer: str | None = None

    def __post_init__(self):
        if self.kind not in CHANNEL_KINDS:
            raise ValueError(f'channel {self.id}: kind {self.kind!r} is not '
                f'one of {", ".join(CHANNEL_KINDS)}')
        if self.kind == 'tcp' and (not self.host or not self.port):
            raise ValueError(f'channel {self.id}: tcp needs host and port')
        if self.kind == 'serial' and not self.device:
            raise ValueError(f'channel {self.id}: serial needs a device')
        if self.kind == 'dtu' and not self.registration_id:
            raise ValueError(f'channel {self.id}: dtu needs a '
                'registration_id')
        if self.retries < 0 or self.timeout <= 0:
            raise ValueError(f'channel {self.id}: retries must be >= 0 and '
                'timeout > 0')

    def transport_key(self) -> tuple:
        """What identifies the physical link: a reload that changes it
        needs a new transport."""
        return (self.kind, self.host, self.port, self.device, self.baud,
            self.parity, self.registration_id, self.modbus_framer)


@dataclass
class MeterTarget:
    """One meter on a channel. ``address``: nameplate digits (12 for
    DL/T645, 14 for CJ/T188; shorter is left-padded with 0);
    ``registers``: names from :data:`.registers.REGISTERS`; ``vendor``: a
    codec vendor profile name; ``password``: 6 hex digits for remote
    control, recharge and writes; ``meter_type``: the CJ/T188 T byte
    (0x10 cold water)."""
    id: int
    address: str
    protocol: str
    registers: list[str] = field(default_factory=lambda: ['energy_total'])
    vendor: str = 'standard'
    password: str = '000000'
    meter_type: int = 0x10

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f'meter {self.id}: protocol {self.protocol!r} is '
                f'not one of {", ".join(PROTOCOLS)}')
        digits = str(self.address).strip()
        width = 14 if self.protocol == 'cjt188' else 12
        if not digits.isdigit() or len(digits) > width:
            raise ValueError(f'meter {self.id}: address {self.address!r} '
                f'must be at most {width} digits')
        self.address = digits.rjust(width, '0')


@dataclass(frozen=True)
class Reading:
    """One verified value. ``read_at`` is the collector's clock (naive UTC,
    whole seconds) when the reply arrived; (meter_id, register, read_at) is
    the natural key the database ingest is idempotent on."""
    meter_id: int
    register: str
    read_at: dt.datetime
    value: Decimal

    @property
    def key(self) -> tuple:
        return (self.meter_id, self.register, self.read_at)


@dataclass
class Command:
    """A queued command for one meter.

    Payloads by kind: ``read`` {'registers': [...]} (default: the meter's
    registers); ``trip`` / ``close`` {} ({'direct': True}: close-direct 1C
    instead of close-allowed 1B; 'valid_minutes', default 30);
    ``recharge`` {'amount': '100.00', 'count': N} with N the meter's
    purchase count *after* this purchase (the replay guard: re-sending is
    harmless), optional 'security_off': True for vendor meters that need
    049F0000=0004 first; ``time_sync`` {} (optional 'tolerance' seconds,
    default 10); ``valve_open`` / ``valve_close`` {}; ``param_write``
    {'di': '04001001', 'value': '20.00'} or {'di': ..., 'data': 'hex'}, or
    named 安全用电 parameters {'params': {'max_load': '8', ...}};
    ``param_read`` {'params': ['max_load', ...]} (default: all);
    ``event_read`` {'last': N}; ``load_reset`` {} (docs/collection.md)."""
    id: int
    meter_id: int
    kind: str
    payload: dict = field(default_factory=dict)


@runtime_checkable
class CommandSource(Protocol):
    """Where commands come from and where their outcome goes (the
    database's dh.command queue)."""

    async def fetch(self, channel_id: int) -> list[Command]:
        """Pending commands of a channel's meters (each returned once: the
        'sent' report takes it off the queue)."""

    async def report(self, command_id: int, state: str, error: str | None,
            result: dict | None) -> None:
        """``state``: 'sent' (about to go on the wire), 'confirmed' or
        'failed' (with ``error``)."""


Sink = Callable[[list[Reading]], Awaitable[None]]


@dataclass
class MeterHealth:
    """Per-meter outcome kept by a poller across rounds."""
    last_success: dt.datetime | None = None
    last_failure: dt.datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None


@dataclass
class RoundStats:
    """One round of one channel. ``attempts`` counts requests sent,
    ``errors`` failed attempts; ``meters_answering`` the meters that gave
    at least one verified reply; ``failed_meters`` the ids of the others;
    ``commands`` the commands executed."""
    channel_id: int
    meters: int = 0
    meters_answering: int = 0
    readings: int = 0
    attempts: int = 0
    errors: int = 0
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    last_error: str | None = None
    failed_meters: list[int] = field(default_factory=list)
    commands: int = 0
    sink_errors: int = 0
    duration: float = 0.0     # seconds, monotonic clock
    # failed attempts by kind: 'not_connected', 'timeout', 'bad_reply',
    # 'connection_lost', 'transport', 'meter_refused' (for the metrics)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def count_error(self, kind: str):
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
