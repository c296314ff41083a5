"""The meter simulator (``dh sim``): a bank of virtual meters on RS485 buses.

Pure asyncio, no database. Layers, each usable alone:

* :class:`Meter` — the state of one DL/T645-2007/1997 electricity meter
  (TOU registers T1–T4 summing exactly into the total, voltage / current /
  power, relay with status word 3, prepaid remaining energy and purchase
  count, 安全用电 load protection) or CJ/T188 water meter (cumulative
  flow, valve). Energy grows with the simulated :class:`Clock` at the
  meter's rate (kWh/h or m³/h).
* :class:`Bus` — the meters of one RS485 segment. ``Bus.handle(bytes)`` is
  the synchronous core: which meter answers a request frame, and with what
  (``None``: nobody answers). ``Bus.plan()`` adds faults and wire timing.
* :class:`Bank` — the buses behind transports: TCP ports in bridge mode
  (串口服务器, ``serve_tcp``), DTUs dialling a collector (``dial``) and
  pseudo-terminals (``open_ptys``).

Bus behaviour, like a half-duplex RS485 segment: one request at a time
(a lock per bus, shared by every transport of the bus); requests are
delimited by L, never by silence, and a partial request is forgotten after
``frame_timeout`` seconds without bytes (a meter's inter-byte timeout);
meters answer only to their own address; ``99…99`` broadcasts (time sync,
freeze) get no reply; a wildcard (``AA``) request answered by more than one
meter gives collision noise the codec rejects. Garbage and malformed frames
are ignored and logged at debug level (logger ``dh.sim``).
"""

import asyncio
import datetime as dt
import json
import logging
import os
import random
import socket
import termios
import time
import tty
from dataclasses import asdict, dataclass, fields
from decimal import Decimal

from .codec import CodecError, auto, cjt188, di as registry, dlt645, recharge
from .codec.framing import StreamDecoder
from .codec.vendors import SAFETY_PARAMS, get_vendor

log = logging.getLogger('dh.sim')

DLT645_2007 = 'dlt645_2007'
DLT645_1997 = 'dlt645_1997'
CJT188 = 'cjt188'
PROTOCOLS = (DLT645_2007, DLT645_1997, CJT188)
_VERSION = {DLT645_2007: dlt645.V2007, DLT645_1997: dlt645.V1997}

EPOCH = dt.datetime(1970, 1, 1)
HOUR = 3600.0
DAY = 86400.0

#: TOU band (0 = T1 尖 … 3 = T4 谷) of each local hour of the meter clock.
#: T1 尖 10–12, 14–17; T2 峰 08–10, 17–21; T3 平 07–08, 12–14, 21–23;
#: T4 谷 23–07.
TOU_BANDS = (3, 3, 3, 3, 3, 3, 3, 2, 1, 1, 0, 0, 2, 2, 0, 0, 0, 1, 1, 1, 1,
    2, 2, 3)
_BAND_HOURS = tuple(TOU_BANDS.count(b) for b in range(4))

ERR_OTHER = dlt645.ERR_CODES['other']
ERR_NO_DATA = dlt645.ERR_CODES['no-data']
ERR_PASSWORD = dlt645.ERR_CODES['password']
ERR_BAUD = dlt645.ERR_CODES['baud']
ERR97_ILLEGAL = 0x01
ERR97_DI = 0x02
ERR97_PASSWORD = 0x04


def _decimal(value, places=2):
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places))


def _hund(value) -> int:
    return int(_decimal(value).scaleb(2))


def _from_hund(n: int) -> Decimal:
    return Decimal(n).scaleb(-2)


_EPSILON = 1e-3     # s: clock arithmetic slack at time-of-day band starts
_EVENTS_KEPT = 100  # load event records a simulated meter keeps


# --- time -------------------------------------------------------------------

class Clock:
    """Simulated local time as seconds since 1970-01-01 *local* (naive, no
    DST: China). ``speed`` accelerates real time (0 freezes it);
    :meth:`advance` jumps ahead (tests)."""

    def __init__(self, speed: float = 1.0, start: dt.datetime | None = None):
        self.speed = float(speed)
        if start is None:
            start = dt.datetime.now().replace(microsecond=0)
        start = start.replace(tzinfo=None)
        self._sim0 = (start - EPOCH).total_seconds()
        self._real0 = time.monotonic()
        self.offset = 0.0

    def now(self) -> float:
        return (self._sim0 + (time.monotonic() - self._real0) * self.speed
            + self.offset)

    def advance(self, seconds: float = 0, *, hours: float = 0,
            days: float = 0):
        self.offset += seconds + hours * HOUR + days * DAY

    def datetime(self) -> dt.datetime:
        return to_datetime(self.now())


def to_datetime(seconds: float) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=int(seconds))


def to_seconds(when: dt.datetime) -> float:
    return (when.replace(tzinfo=None) - EPOCH).total_seconds()


# --- specs ------------------------------------------------------------------

@dataclass
class MeterSpec:
    """One simulated meter. ``energy`` is the initial total (kWh; m³ for
    CJ/T188), ``rate`` the consumption in kWh/h (= kW; m³/h), ``remaining``
    the prepaid remaining energy in kWh (``None``: post-paid),
    ``purchase_count`` the 购电次数 after the last purchase."""
    address: str
    protocol: str = DLT645_2007
    energy: Decimal | float | str = 0
    rate: float = 1.0
    password: str = '000000'
    remaining: Decimal | float | str | None = None
    purchase_count: int = 0
    relay_open: bool = False
    power_hold: bool = False
    #: 2007 vendor scheme: purchases refused until 049F0000 = 0004 is written
    require_security_off: bool = False
    alarm_limit: Decimal | float | str = 10     # pre-trip alarm, kWh left
    price: Decimal | float | str | None = None  # yuan/kWh: 00900200
    voltage: float = 220.0
    power_factor: float = 0.95
    phases: int = 1
    clock_offset: float = 0.0   # meter clock minus simulated time, seconds
    vendor: str | None = None   # codec.vendors profile name
    # CJ/T188
    meter_type: int = 0x10
    valve_open: bool = True
    battery_low: bool = False
    unit: str = 'm3'
    # 安全用电 (DL/T645 meters; a limit of 0 is no limit). ``alarm_limit``
    # above is the alarm energy (报警电量)
    overdraft_energy: Decimal | float | str = 0     # kWh below zero
    monthly_topup: Decimal | float | str = 0        # kWh, held only
    max_load: Decimal | float | str = 0             # kW
    malignant_power: Decimal | float | str = 0      # kW step
    power_change_threshold: Decimal | float | str = 0   # kW step
    overload_trips_allowed: int = 20
    malignant_trips_allowed: int = 20
    #: [['HH:MM', kW], ...]: from each start the limit holds until the next
    #: band's start (the last band runs over midnight into the first)
    tod_power_limits: list | None = None
    load_trip_delay: float = 2.0    # s over a limit until the relay opens
    load_trip_seconds: float = 180.0    # s a timed load trip lasts

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f'unknown protocol {self.protocol!r}; one of '
                f'{", ".join(PROTOCOLS)}')
        length = (cjt188.ADDRESS_LEN if self.protocol == CJT188
            else dlt645.ADDRESS_LEN)
        digits = str(self.address).strip()
        if not digits.isdigit() or len(digits) > 2 * length:
            raise ValueError(f'address {self.address!r} must be at most '
                f'{2 * length} decimal digits')
        self.address = digits.rjust(2 * length, '0')
        password = str(self.password).strip().upper()
        if len(password) > 6 or not all(c in '0123456789ABCDEF'
                for c in password):
            raise ValueError(f'password {self.password!r} must be 6 hex '
                'digits')
        self.password = password.rjust(6, '0')
        get_vendor(self.vendor)   # validates the name
        if not 0 <= float(self.load_trip_delay) <= 3:
            raise ValueError('load_trip_delay is 0 to 3 seconds')
        if float(self.load_trip_seconds) <= 0:
            raise ValueError('load_trip_seconds must be positive')
        if self.tod_power_limits is not None:
            _band_table(self.tod_power_limits)      # validates

    @classmethod
    def from_dict(cls, data: dict) -> 'MeterSpec':
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names - {'bus'}
        if unknown:
            raise ValueError(f'unknown meter spec keys: '
                f'{", ".join(sorted(unknown))}')
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        data = {k: (str(v) if isinstance(v, Decimal) else v)
            for k, v in asdict(self).items()}
        if self.tod_power_limits is not None:
            data['tod_power_limits'] = [[start, str(power)]
                for start, power in registry.decode_bands(
                    _bands_wire(self.tod_power_limits), _BANDS_MAX)]
        return data


_BANDS_MAX = registry.BAND_SIZE * registry.MAX_BANDS


def _bands_wire(bands) -> bytes:
    try:
        return registry.encode_bands(bands, _BANDS_MAX)
    except CodecError as exc:
        raise ValueError(f'tod_power_limits: {exc.reason}') from None


def _band_table(bands) -> tuple[tuple[int, Decimal], ...]:
    """Bands as ((start minute of the day, kW limit), ...) in order."""
    decoded = registry.decode_bands(_bands_wire(bands), _BANDS_MAX)
    return tuple((int(start[:2]) * 60 + int(start[3:]), power)
        for start, power in decoded)


def generate_specs(buses: int, meters_per_bus: int, *, start_address=1,
        step: int = 1, fraction_1997: float = 0.0, water_per_bus: int = 0,
        prepaid: float = 0.0, seed=1) -> list[list[MeterSpec]]:
    """Buses of generated meters. Meter k (counting over all buses) has
    address ``start_address + k * step``; the last ``water_per_bus`` meters
    of each bus are CJ/T188 water meters, ``fraction_1997`` of the others
    (spread evenly) DL/T645-1997, ``prepaid`` of the 2007 ones prepaid.
    Initial energy and rate come from ``seed``."""
    result = []
    start = int(start_address)
    k = 0
    for b in range(buses):
        bus = []
        electric = max(meters_per_bus - water_per_bus, 0)
        for j in range(meters_per_bus):
            number = start + k * step
            k += 1
            rng = random.Random(f'{seed}:meter:{number}')
            if j >= electric:
                bus.append(MeterSpec(str(number), CJT188,
                    energy=_decimal(rng.uniform(0, 900)),
                    rate=round(rng.uniform(0.005, 0.08), 4)))
                continue
            protocol = (DLT645_1997 if int((j + 1) * fraction_1997)
                > int(j * fraction_1997) else DLT645_2007)
            remaining = None
            if protocol == DLT645_2007 and int((j + 1) * prepaid) > int(
                    j * prepaid):
                remaining = _decimal(rng.uniform(50, 500))
            bus.append(MeterSpec(str(number), protocol,
                energy=_decimal(rng.uniform(0, 20000)),
                rate=round(rng.uniform(0.2, 3.0), 4), remaining=remaining))
        result.append(bus)
    return result


def load_spec_file(path) -> list[list[MeterSpec]]:
    """``[{"bus": i, "address": "...", "protocol": "...", ...}]`` (keys
    of :class:`MeterSpec`; ``bus`` defaults to 0) to buses."""
    with open(path, encoding='utf-8') as f:
        entries = json.load(f)
    if not isinstance(entries, list):
        raise ValueError('a spec file is a JSON list of meters')
    buses: dict[int, list[MeterSpec]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError('each meter spec is a JSON object')
        bus = int(entry.get('bus', 0))
        if bus < 0:
            raise ValueError('bus must be >= 0')
        buses.setdefault(bus, []).append(MeterSpec.from_dict(entry))
    if not buses:
        return []
    return [buses.get(i, []) for i in range(max(buses) + 1)]


# --- options ----------------------------------------------------------------

@dataclass
class SimOptions:
    speed: float = 1.0              # simulated seconds per real second
    start: dt.datetime | None = None  # simulated start (local), now if None
    seed: int | str = 1
    # wire timing (8E1: 11 bits per byte)
    wire_timing: bool = False
    baud: int = 2400
    reply_delay: float = 0.020      # Td
    reply_preamble: int = 0         # FE bytes before each reply
    # faults, as rates 0..1 of the replies
    drop: float = 0.0
    delay: float = 0.0
    corrupt: float = 0.0
    garble: float = 0.0
    disconnect: float = 0.0
    late_by: float = 1.5            # a delayed reply comes this much late
    frame_timeout: float = 0.5      # forget a partial request after this
    # DTU mode
    reg_prefix: bytes = b'REG:'
    id_format: str = 'ascii'        # 'ascii' or 'hex'
    hb_prefix: bytes = b'HB:'
    heartbeat: float = 30.0         # seconds, 0 disables
    reconnect_delay: float = 1.0
    reconnect_max: float = 30.0
    # remote control: refuse commands whose valid-until is past the meter
    # clock (real meters do; off by default since --speed moves the
    # simulated clock away from the collector's)
    enforce_valid_until: bool = False

    def __post_init__(self):
        for name in ('drop', 'delay', 'corrupt', 'garble', 'disconnect'):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise ValueError(f'{name} must be a rate between 0 and 1')
        if self.id_format not in ('ascii', 'hex'):
            raise ValueError("id_format must be 'ascii' or 'hex'")
        if self.baud <= 0:
            raise ValueError('baud must be positive')

    def byte_time(self, count: int) -> float:
        return count * 11 / self.baud


# --- meters -----------------------------------------------------------------

class Meter:
    """State of one simulated meter; read and set it from tests.

    Registers are kept in hundredths (0.01 kWh / 0.01 m³) so the tariffs
    T1–T4 always sum exactly into the total."""

    def __init__(self, spec: MeterSpec, clock: Clock):
        self.spec = spec
        self.clock = clock
        self.address = spec.address
        self.protocol = spec.protocol
        self.version = _VERSION.get(spec.protocol)
        self.vendor = get_vendor(spec.vendor)
        self._rate = float(spec.rate)
        self.password = spec.password
        self.clock_offset = float(spec.clock_offset)
        self.purchase_count = int(spec.purchase_count)
        self.power_hold = bool(spec.power_hold)
        self.relay_command_trip = bool(spec.relay_open)
        self._relay_open = bool(spec.relay_open)
        self._valve = 'open' if spec.valve_open else 'closed'
        self.battery_low = bool(spec.battery_low)
        self.alarm_limit = _hund(spec.alarm_limit)
        self.price = _decimal(spec.price, 4)
        self.security_off = not spec.require_security_off
        self.meter_type = spec.meter_type
        self.last_purchase: str | None = None    # apply/duplicate/invalid
        self.time_syncs = 0
        self.clears = 0     # remote clears (远程清零) applied
        self.requests = 0
        self._rng = random.Random(f'values:{spec.address}')
        total = _hund(spec.energy)
        if total < 0:
            raise ValueError('initial energy must not be negative')
        self._registers = self._split(total)
        self._frac = [0.0] * len(self._registers)
        self._remaining = (None if spec.remaining is None
            else _hund(spec.remaining))
        self._last = clock.now()
        self._settlement = total
        # 安全用电
        self.safety = self.vendor.safety_map if self.protocol == \
            DLT645_2007 else None
        self.overdraft_limit = _hund(spec.overdraft_energy)
        self.monthly_topup = _decimal(spec.monthly_topup)
        self.max_load = _decimal(spec.max_load, 4)
        self.malignant_power = _decimal(spec.malignant_power, 4)
        self.power_change_threshold = _decimal(spec.power_change_threshold,
            4)
        self.overload_trips_allowed = int(spec.overload_trips_allowed)
        self.malignant_trips_allowed = int(spec.malignant_trips_allowed)
        self.tod_bands = _band_table(spec.tod_power_limits or [])
        self.load_trip_delay = float(spec.load_trip_delay)
        self.load_trip_seconds = float(spec.load_trip_seconds)
        self._lockout = False
        self._overload_trips = 0        # counted since the last reset
        self._malignant_trips = 0
        self.events: list[tuple] = []   # (meter seconds, kind, kW, step
        self._event_count = 0           # kW, lockout), oldest first
        self._load_open = False     # relay held open by load protection
        self._pending = None        # (clock time, kind, step): a trip due
        self._reclose_at = None     # clock time a timed load trip ends
        self._evaluate_load(self._last)

    def _split(self, total: int) -> list[int]:
        if self.protocol == CJT188:
            return [total]
        parts = [total * h // 24 for h in _BAND_HOURS]
        parts[3] += total - sum(parts)
        return parts

    # time
    def meter_time(self) -> float:
        """The meter's own clock (local seconds)."""
        return self.clock.now() + self.clock_offset

    def meter_datetime(self) -> dt.datetime:
        return to_datetime(self.meter_time())

    def set_time(self, when: dt.datetime):
        self.advance()
        self.clock_offset = to_seconds(when) - self.clock.now()
        self._evaluate_load(self._last)

    # consumption
    @property
    def consuming(self) -> bool:
        if self.protocol == CJT188:
            return self._valve == 'open'
        return not self._relay_open

    @property
    def rate(self) -> float:
        """The load: kWh/h = kW (m³/h for water meters)."""
        return self._rate

    @rate.setter
    def rate(self, value):
        """Change the load now: a step the meter sees while its relay is
        closed (power-change records, malignant-load and overload
        trips)."""
        self.advance()
        before = self._measured()
        self._rate = float(value)
        if self.protocol == CJT188 or self._relay_open:
            return
        now = self._last
        step = self._measured() - before
        if self.power_change_threshold > 0 and \
                abs(step) >= self.power_change_threshold:
            self._record(now, 'step', self._measured(), step, False)
        if self.malignant_power > 0 and step >= self.malignant_power \
                and self._pending is None:
            self._pending = (now + self.load_trip_delay, 'malignant', step)
        self._evaluate_load(now, step)

    def advance(self):
        """Integrate consumption up to the simulated now, applying the
        load-protection events (trips, recloses, time-of-day band changes)
        at their times on the way."""
        now = self.clock.now()
        while self._pending is not None or self._reclose_at is not None \
                or self.tod_bands:
            at = self._next_load_event(now)
            if at is None:
                break
            start, self._last = self._last, at
            self._integrate(start, at)
            self._load_event(at)
        start, self._last = self._last, now
        self._integrate(start, now)

    def _integrate(self, start: float, now: float):
        if now <= start or not self.consuming or self._rate <= 0:
            return
        x = start + self.clock_offset
        end = now + self.clock_offset
        if len(self._registers) == 1:
            self._add(0, (end - x) / HOUR)
            return
        whole_days = int((end - x) // DAY) - 1
        if whole_days > 0:
            for band, hours in enumerate(_BAND_HOURS):
                if not self._add(band, hours * whole_days):
                    return
            x += whole_days * DAY
        while x < end:
            boundary = min((x // HOUR + 1) * HOUR, end)
            band = TOU_BANDS[int(x % DAY // HOUR)]
            if not self._add(band, (boundary - x) / HOUR):
                return
            x = boundary

    def _add(self, register: int, hours: float) -> bool:
        """Add ``hours`` of consumption; False once the credit ran out."""
        self._frac[register] += hours * self.rate * 100
        whole = int(self._frac[register])
        if not whole:
            return True
        self._frac[register] -= whole
        if self._remaining is not None:
            # the relay opens when the credit and the overdraft are spent
            floor = -self.overdraft_limit
            if whole >= self._remaining - floor:
                whole = max(self._remaining - floor, 0)
                self._registers[register] += whole
                self._remaining = min(self._remaining, floor)
                self._frac = [0.0] * len(self._frac)
                self._relay_open = True
                self.relay_command_trip = True
                log.debug('meter %s: credit exhausted, relay open',
                    self.address)
                return False
            self._remaining -= whole
        self._registers[register] += whole
        return True

    # 安全用电: load protection
    #
    # The meter measures the load (``rate``) while its relay is closed.
    # Over max_load, or over the limit of the time-of-day band in force, for
    # load_trip_delay seconds (power equal to a limit is not over it): an
    # overload ('overload' / 'tod') trip. A step up of at least
    # malignant_power while closed: a malignant-load trip load_trip_delay
    # seconds later (when the power is then also over a limit, the trip is
    # an overload one). A trip opens the relay for load_trip_seconds, then
    # it closes again (unless a remote trip or spent credit holds it open);
    # the trip that takes a count past its allowance (overload and tod
    # trips count against overload_trips_allowed) locks the meter out: open
    # until load_reset is written. Power-hold (保电) does not stop these
    # safety trips; a remote close does not end them. A reclose is not a
    # step. Every trip and every step of at least power_change_threshold
    # is an event record.

    def _measured(self) -> Decimal:
        """The active power the meter measures now, kW."""
        if self._relay_open or self._rate <= 0:
            return Decimal('0.0000')
        return _decimal(min(self._rate, 79.9999), 4)

    def _band_limit(self, at: float) -> Decimal:
        """The time-of-day limit in force at clock time ``at`` (0: none)."""
        if not self.tod_bands:
            return Decimal(0)
        minute = int((at + self.clock_offset + _EPSILON) % DAY // 60)
        limit = self.tod_bands[-1][1]   # the last band runs past midnight
        for start, power in self.tod_bands:
            if start > minute:
                break
            limit = power
        return limit

    def _next_band_start(self, after: float) -> float:
        """Clock time of the first band start after ``after``."""
        meter = after + self.clock_offset
        second = meter % DAY
        day = meter - second
        for start, _ in self.tod_bands:
            if start * 60 > second + _EPSILON:
                return day + start * 60 - self.clock_offset
        return day + DAY + self.tod_bands[0][0] * 60 - self.clock_offset

    def _over(self, at: float) -> str | None:
        power = self._measured()
        if self.max_load > 0 and power > self.max_load:
            return 'overload'
        limit = self._band_limit(at)
        if limit > 0 and power > limit:
            return 'tod'
        return None

    def _evaluate_load(self, at: float, step=Decimal('0.0000')):
        """Schedule an overload trip when the power is over a limit at
        ``at``; cancel a scheduled one when it no longer is."""
        if self.protocol == CJT188:
            return
        kind = None if self._relay_open else self._over(at)
        if kind is not None:
            if self._pending is None:
                self._pending = (at + self.load_trip_delay, kind, step)
        elif self._pending is not None and self._pending[1] != 'malignant':
            self._pending = None

    def _next_load_event(self, now: float) -> float | None:
        times = []
        if self._pending is not None:
            times.append(self._pending[0])
        if self._reclose_at is not None:
            times.append(self._reclose_at)
        if self.tod_bands and not self._relay_open and self._rate > 0:
            times.append(self._next_band_start(self._last))
        if not times:
            return None
        at = min(times)
        return None if at > now else max(at, self._last)

    def _load_event(self, at: float):
        if self._pending is not None and self._pending[0] <= at:
            self._load_trip(at)
        if self._reclose_at is not None and self._reclose_at <= at:
            self._reclose_at = None
            self._load_open = False
            if not self.relay_command_trip and not self._lockout:
                self._relay_open = False
                log.debug('meter %s: load trip over, relay closed',
                    self.address)
        self._evaluate_load(at)

    def _load_trip(self, at: float):
        _, kind, step = self._pending
        self._pending = None
        if self._relay_open:    # opened meanwhile (remote trip, credit)
            return
        over = self._over(at)
        if kind != 'malignant' or over is not None:
            kind = over
        if kind is None:
            return
        power = self._measured()
        if kind == 'malignant':
            self._malignant_trips += 1
            locked = self._malignant_trips > self.malignant_trips_allowed
        else:
            self._overload_trips += 1
            locked = self._overload_trips > self.overload_trips_allowed
        self._relay_open = True
        self._load_open = True
        if locked:
            self._lockout = True
            self._reclose_at = None
        else:
            self._reclose_at = at + self.load_trip_seconds
        self._record(at, kind, power, step, locked)
        log.debug('meter %s: %s trip at %s kW%s', self.address, kind, power,
            ', locked out' if locked else '')

    def _record(self, at: float, kind: str, power: Decimal, step: Decimal,
            lockout: bool):
        self.events.append((at + self.clock_offset, kind, power, step,
            lockout))
        del self.events[:-_EVENTS_KEPT]
        self._event_count += 1

    def load_reset(self):
        """A manager's reset (load_reset written): the lockout and the trip
        counts are cleared and the relay closes, unless a remote trip or
        spent credit holds it open. A load still over a limit trips again
        (counting from zero)."""
        self.advance()
        self._lockout = False
        self._overload_trips = self._malignant_trips = 0
        self._pending = self._reclose_at = None
        if self._load_open:
            self._load_open = False
            if not self.relay_command_trip:
                self._relay_open = False
        self._evaluate_load(self._last)

    @property
    def lockout(self) -> bool:
        """Locked out by load protection (open until load_reset)."""
        self.advance()
        return self._lockout

    @property
    def overload_trips(self) -> int:
        self.advance()
        return self._overload_trips

    @property
    def malignant_trips(self) -> int:
        self.advance()
        return self._malignant_trips

    @property
    def event_count(self) -> int:
        """Load event records made so far."""
        self.advance()
        return self._event_count

    def load_status(self) -> dict:
        self.advance()
        return {'lockout': self._lockout, 'load_trip': self._load_open,
            'overload_trips': self._overload_trips,
            'malignant_trips': self._malignant_trips}

    def event_records(self) -> list[dict]:
        """The kept records, latest first (as record DIs 1, 2, … give
        them)."""
        self.advance()
        return [{'at': to_datetime(at), 'kind': kind, 'power': power,
                'step': step, 'lockout': lockout}
            for at, kind, power, step, lockout in reversed(self.events)]

    def safety_param(self, name: str):
        """A 安全用电 parameter, as the codec encodes it."""
        if name == 'alarm_energy':
            return _from_hund(self.alarm_limit)
        if name == 'overdraft_energy':
            return _from_hund(self.overdraft_limit)
        if name == 'tod_power_limits':
            return [[f'{m // 60:02d}:{m % 60:02d}', power]
                for m, power in self.tod_bands]
        if name not in SAFETY_PARAMS:
            raise ValueError(f'unknown parameter {name!r}')
        return getattr(self, name)

    def set_safety_param(self, name: str, value):
        if name not in SAFETY_PARAMS:
            raise ValueError(f'unknown parameter {name!r}')
        self.advance()
        if name == 'alarm_energy':
            self.alarm_limit = _hund(value)
        elif name == 'overdraft_energy':
            self.overdraft_limit = _hund(value)
        elif name == 'tod_power_limits':
            self.tod_bands = _band_table(value)
        elif name in ('overload_trips_allowed', 'malignant_trips_allowed'):
            setattr(self, name, int(value))
        elif name == 'monthly_topup':
            self.monthly_topup = _decimal(value)
        else:
            setattr(self, name, _decimal(value, 4))
        self._evaluate_load(self._last)

    def _read_safety(self, di: str):
        safety = self.safety
        name = safety.name_of(di)
        if name is not None:
            self.advance()
            return self.safety_param(name)
        if di == safety.load_status:
            return self.load_status()
        events = safety.events
        if di == events.count:
            return self.event_count
        try:
            n = int(di, 16) - int(events.first, 16) + 1
        except ValueError:
            return None
        if 1 <= n <= events.depth:
            records = self.event_records()
            if n <= len(records):
                return records[n - 1]
        return None

    # inspection and setting
    @property
    def energy(self) -> Decimal:
        """Total (kWh, or m³ for CJ/T188) = sum of the tariff registers."""
        self.advance()
        return _from_hund(sum(self._registers))

    @energy.setter
    def energy(self, value):
        self.advance()
        self._registers = self._split(_hund(value))
        self._frac = [0.0] * len(self._frac)

    flow = energy

    @property
    def tariffs(self) -> list[Decimal]:
        """T1..T4 (尖峰平谷); one register for water meters."""
        self.advance()
        return [_from_hund(r) for r in self._registers]

    @property
    def remaining(self) -> Decimal | None:
        self.advance()
        return None if self._remaining is None else _from_hund(
            self._remaining)

    @remaining.setter
    def remaining(self, value):
        self.advance()
        self._remaining = None if value is None else _hund(value)

    @property
    def prepaid(self) -> bool:
        return self._remaining is not None

    @property
    def relay_open(self) -> bool:
        self.advance()
        return self._relay_open

    @relay_open.setter
    def relay_open(self, value: bool):
        self.advance()
        self._relay_open = bool(value)
        self.relay_command_trip = bool(value)
        self._evaluate_load(self._last)

    @property
    def valve(self) -> str:
        return self._valve

    @valve.setter
    def valve(self, value: str):
        if value not in ('open', 'closed', 'abnormal'):
            raise ValueError('valve is open, closed or abnormal')
        self.advance()
        self._valve = value

    @property
    def valve_open(self) -> bool:
        return self._valve == 'open'

    @valve_open.setter
    def valve_open(self, value: bool):
        self.valve = 'open' if value else 'closed'

    @property
    def power(self) -> Decimal:
        """Active power, kW (the rate while the relay is closed)."""
        if self.relay_open:
            return Decimal('0.0000')
        return _decimal(min(self.rate, 79.9999), 4)

    def status3(self) -> int:
        self.advance()
        alarm = (self._remaining is not None
            and self._remaining < self.alarm_limit)
        return registry.status3_word(relay_open=self._relay_open,
            relay_command_trip=self.relay_command_trip,
            pre_trip_alarm=alarm, power_hold=self.power_hold,
            meter_type='energy-prepaid' if self.prepaid else 'post-paid',
            remote_account_opened=True)

    def snapshot(self) -> dict:
        data = {'address': self.address, 'protocol': self.protocol,
            'energy': self.energy, 'tariffs': self.tariffs,
            'time': self.meter_datetime().isoformat()}
        if self.protocol == CJT188:
            data['valve'] = self._valve
        else:
            data.update(relay_open=self._relay_open,
                remaining=self.remaining,
                purchase_count=self.purchase_count,
                status3=f'{self.status3():04X}', lockout=self._lockout)
        return data

    def __repr__(self):
        return f'<Meter {self.protocol} {self.address}>'

    # instantaneous values
    def _voltage(self) -> float:
        return self.spec.voltage + self._rng.uniform(-3, 3)

    def _phase_values(self):
        power = self.power
        voltage = _decimal(self._voltage(), 1)
        pf = _decimal(self.spec.power_factor, 3)
        phases = max(1, min(self.spec.phases, 3))
        per_phase = power / phases
        current = _decimal(per_phase * 1000 / (voltage * pf), 3) \
            if voltage and pf else Decimal('0.000')
        return voltage, current, _decimal(per_phase, 4), pf, phases

    # DL/T645-2007 items
    def read_2007(self, di: str):
        """Value for ``di`` (anything the codec registry encodes), or None:
        no such data."""
        kind, tariff = di[:4], di[4:6]
        if di[6:] == '00' and kind in ('0000', '0001'):
            registers = self.tariffs
            total = sum(registers)
            if tariff == '00':
                return total
            if tariff in ('01', '02', '03', '04'):
                return registers[int(tariff) - 1]
            if tariff == 'FF':
                values = {f'{kind}0000': total}
                for n, value in enumerate(registers, 1):
                    values[f'{kind}{n:02d}00'] = value
                return values
            return None
        if di[6:] == '00' and kind == '0002' and tariff in (
                '00', '01', '02', '03', '04'):
            return Decimal('0.00')
        if di.startswith('02'):
            return self._instant(di)
        if di in ('04000101', '04000102', '0400010C'):
            return self.meter_datetime()
        if di in ('04000401', '04000402'):
            return self.address
        if di == '04000503':
            return self.status3()
        if di == '040005FF':
            return {f'0400050{n}': self.status3() if n == 3 else 0
                for n in range(1, 8)}
        if di == '03330201':
            return self.purchase_count
        if self.prepaid:
            if di == '00900100':
                return max(self.remaining, Decimal('0.00'))
            if di == '00900101':    # overdraft in use
                return max(-self.remaining, Decimal('0.00'))
            if di == '04001001':
                return _from_hund(self.alarm_limit)
            if di in ('00900200', '00900201') and self.price is not None:
                if di == '00900201':
                    return _decimal(max(-self.remaining, 0) * self.price)
                return _decimal(max(self.remaining, 0) * self.price)
        if self.safety is not None:
            return self._read_safety(di)
        return None

    def _instant(self, di: str):
        voltage, current, power, pf, phases = self._phase_values()
        family, phase = di[2:4], di[4:6]
        values = {'01': voltage, '02': current, '03': power, '06': pf}
        if family not in values or di[6:] != '00':
            if di == '02800002':
                return Decimal('50.00')
            return None
        value = values[family]
        with_total = family in ('03', '06')
        total = (power * phases) if family == '03' else pf
        members = [f'{n:02d}' for n in range(1, phases + 1)]
        if phase == 'FF':
            out = {f'02{family}0000': total} if with_total else {}
            out.update({f'02{family}{m}00': value for m in members})
            return out
        if phase == '00' and with_total:
            return total
        if phase in members:
            return value
        return None

    # DL/T645-1997 items
    def read_1997(self, di: str):
        if di[:2] == '90' and di[2] == '1':
            registers = self.tariffs
            total = sum(registers)
            if di[3] == '0':
                return total
            if di[3] in '1234':
                return registers[int(di[3]) - 1]
            if di[3] == 'F':
                values = {'9010': total}
                values.update({f'901{n}': r
                    for n, r in enumerate(registers, 1)})
                return values
            return None
        if di[:3] == '902' and di[3] in '01234':
            return Decimal('0.00')
        voltage, current, power, pf, phases = self._phase_values()
        phase = di[3]
        members = [str(n) for n in range(1, phases + 1)]
        if di[:3] == 'B61' and phase in members:
            return int(voltage.to_integral_value())
        if di[:3] == 'B62' and phase in members:
            return _decimal(min(current, Decimal('79.99')), 2)
        if di[:3] == 'B63':
            if phase == '0':
                return power * phases
            if phase in members:
                return power
        if di[:3] == 'B65' and (phase == '0' or phase in members):
            return pf
        if di in ('C010', 'C011'):
            return self.meter_datetime()
        if di in ('C032', 'C034'):
            return self.address
        return None

    # prepaid
    def purchase(self, amount: Decimal, count: int) -> str:
        """Vendor scheme: apply when ``count`` is the meter count + 1,
        ``duplicate`` when equal (nothing changes), else ``invalid``."""
        self.advance()
        verdict = recharge.classify(self.purchase_count, count)
        if verdict == recharge.APPLY:
            self.purchase_count = count
            self._remaining = (self._remaining or 0) + _hund(amount)
            if self._relay_open and self._remaining > 0 \
                    and self.relay_command_trip and not self.power_hold \
                    and not self._load_open:
                # credit restored: close again (energy-prepaid meters do)
                self._relay_open = False
                self.relay_command_trip = False
                self._evaluate_load(self._last)
        self.last_purchase = verdict
        log.debug('meter %s: purchase %s count %s: %s', self.address,
            amount, count, verdict)
        return verdict

    def clear_remaining(self):
        """Remote clear (远程清零): the remaining energy (and any
        overdraft in use) set to 0.00; the energy registers and the
        purchase count are kept."""
        self.advance()
        self._remaining = 0
        self.clears += 1
        log.debug('meter %s: remaining energy cleared', self.address)

    def control(self, action: str) -> int | None:
        """Apply a remote-control action; an ERR code when refused."""
        self.advance()
        if action == 'trip':
            if self.power_hold:
                return ERR_OTHER
            self._relay_open = True
            self.relay_command_trip = True
        elif action in ('close', 'close-direct', 'hold'):
            if action == 'hold':
                self.power_hold = True
            elif self.prepaid and self._remaining <= 0:
                return ERR_OTHER
            self.relay_command_trip = False
            # a load trip (timed or locked out) keeps the relay open
            if not self._load_open:
                self._relay_open = False
                self._evaluate_load(self._last)
        elif action == 'hold-release':
            self.power_hold = False
        elif action in ('alarm', 'alarm-release'):
            pass
        else:
            return ERR_OTHER
        return None

    # CJ/T188
    def st(self) -> bytes:
        return cjt188.encode_st(valve=self._valve,
            battery_low=self.battery_low)


# --- the bus (synchronous core) ---------------------------------------------

@dataclass
class Plan:
    """What a transport does after a request: wait ``wait`` seconds, send
    ``data`` (None: nothing), then close the connection if ``disconnect``."""
    data: bytes | None
    wait: float = 0.0
    disconnect: bool = False
    fault: str | None = None


def _matches(pattern: str, address: str) -> bool:
    """``AA`` pairs of ``pattern`` are wildcards."""
    return all(p == 'AA' or p == a for p, a in zip(
        (pattern[i:i + 2] for i in range(0, len(pattern), 2)),
        (address[i:i + 2] for i in range(0, len(address), 2))))


class Bus:
    """The meters on one RS485 segment."""

    def __init__(self, index: int, meters: list[Meter],
            options: SimOptions):
        self.index = index
        self.meters = meters
        self.options = options
        self.lock = asyncio.Lock()
        self.by_address = {}
        for meter in meters:
            key = (meter.protocol == CJT188, meter.address)
            if key in self.by_address:
                raise ValueError(f'bus {index}: address {meter.address} '
                    'appears twice')
            self.by_address[key] = meter
        self.dlt = [m for m in meters if m.protocol != CJT188]
        self.water = [m for m in meters if m.protocol == CJT188]
        self._faults = random.Random(f'{options.seed}:faults:{index}')
        self.stats = {'requests': 0, 'replies': 0, 'ignored': 0,
            'drop': 0, 'delay': 0, 'corrupt': 0, 'garble': 0,
            'disconnect': 0}
        # TCP clients: connection number -> [first, last] request time
        # (monotonic), to tell whether two clients polled it at once
        self.activity: dict[int, list[float]] = {}
        self.connections = 0        # open TCP connections now
        self.max_connections = 0

    def note_request(self, connection: int):
        now = time.monotonic()
        span = self.activity.setdefault(connection, [now, now])
        span[1] = now

    def max_concurrency(self) -> int:
        """The most TCP clients that polled the bus at once: clients whose
        spans (first to last request) overlap"""
        events = sorted([(first, 1) for first, _ in self.activity.values()]
            + [(last, -1) for _, last in self.activity.values()],
            key=lambda e: (e[0], e[1]))
        current = peak = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak

    def meter(self, address: str) -> Meter | None:
        for water in (False, True):
            found = self.by_address.get((water, address.rjust(
                2 * (cjt188.ADDRESS_LEN if water else dlt645.ADDRESS_LEN),
                '0')))
            if found is not None:
                return found
        return None

    # frames
    def handle(self, raw: bytes) -> bytes | None:
        """One request frame (FE preamble allowed) to the reply bytes, or
        None when no meter answers. Never raises on bad input."""
        try:
            raw = bytes(raw)
            family = auto.detect(raw)
            frame = (cjt188.Frame.from_bytes(raw) if family == 'cjt188'
                else dlt645.Frame.from_bytes(raw))
        except (CodecError, TypeError, ValueError) as exc:
            log.debug('bus %d: ignoring input: %s', self.index, exc)
            return None
        return self.handle_frame(frame)

    def handle_frame(self, frame) -> bytes | None:
        self.stats['requests'] += 1
        try:
            if isinstance(frame, cjt188.Frame):
                reply = self._cjt188(frame)
            else:
                reply = self._dlt645(frame)
        except CodecError as exc:   # never crash on what the codec dislikes
            log.debug('bus %d: ignoring frame: %s', self.index, exc)
            reply = None
        if reply is None:
            self.stats['ignored'] += 1
        else:
            self.stats['replies'] += 1
        return reply

    def _collide(self, replies: list[bytes]) -> bytes:
        """Two meters talking at once: the bytes AND-ed (noise that no
        codec accepts)."""
        size = max(len(r) for r in replies)
        out = bytearray(b'\xff' * size)
        for reply in replies:
            for i, byte in enumerate(reply):
                out[i] &= byte
        while StreamDecoder(auto.decode_stream).feed(bytes(out)):
            out[-2] ^= 0x5A     # never let the noise pass as a frame
        log.debug('bus %d: collision of %d replies', self.index,
            len(replies))
        return bytes(out)

    def _answer(self, candidates, respond):
        replies = [r for r in (respond(m) for m in candidates)
            if r is not None]
        if not replies:
            return None
        if len(replies) > 1:
            return self._collide(replies)
        return replies[0]

    # DL/T645
    def _dlt645(self, frame: dlt645.Frame) -> bytes | None:
        if frame.is_response:
            log.debug('bus %d: ignoring a reply frame', self.index)
            return None
        address = frame.address
        if address == dlt645.BROADCAST:
            self._broadcast(frame)
            return None
        if 'A' in address:
            candidates = [m for m in self.dlt if _matches(address,
                m.address)]
        else:
            meter = self.by_address.get((False, address))
            candidates = [meter] if meter is not None else []
        if not candidates:
            return None
        return self._answer(candidates,
            lambda m: self._dlt645_meter(m, frame))

    def _broadcast(self, frame: dlt645.Frame):
        if frame.function == dlt645.TIME_SYNC:
            message = dlt645.parse(frame, dlt645.V2007)
            when = dt.datetime.fromisoformat(message.value)
            for meter in self.dlt:
                meter.set_time(when)
                meter.time_syncs += 1
            log.debug('bus %d: broadcast time %s', self.index, when)
        else:
            log.debug('bus %d: broadcast %02X, no reply', self.index,
                frame.control)

    def _dlt645_meter(self, meter: Meter, frame) -> bytes | None:
        meter.requests += 1
        pre = self.options.reply_preamble
        address = meter.address
        function = frame.function
        version = meter.version
        if version == dlt645.V1997:
            return self._dlt1997(meter, frame)
        if function not in dlt645.COMMANDS[dlt645.V2007]:
            log.debug('meter %s: unknown function %02X', address, function)
            return None
        try:
            message = dlt645.parse(frame, dlt645.V2007, meter.vendor)
        except CodecError as exc:
            log.debug('meter %s: malformed %02X: %s', address, function, exc)
            if function == dlt645.SECURITY:
                return dlt645.error_response(address, function,
                    dlt645.SERR_CODES['other'], preamble=pre)
            return dlt645.error_response(address, function, ERR_OTHER,
                preamble=pre)

        def error(code):
            return dlt645.error_response(address, function, code,
                preamble=pre)

        if function == dlt645.READ:
            value = meter.read_2007(message.di)
            if value is None:
                return error(ERR_NO_DATA)
            return dlt645.read_response(address, message.di, value,
                preamble=pre)
        if function == dlt645.READ_ADDRESS:
            return dlt645.read_address_response(address, preamble=pre)
        if function == dlt645.CONTROL:
            if message.fields.get('encrypted') or \
                    message.fields['password'] != meter.password:
                return error(ERR_PASSWORD)
            if self.options.enforce_valid_until:
                until = to_seconds(dt.datetime.fromisoformat(
                    message.fields['valid_until']))
                if until < meter.meter_time():
                    return error(ERR_OTHER)
            code = meter.control(message.value)
            if code is not None:
                return error(code)
            return dlt645.ack_response(address, function, preamble=pre)
        if function == dlt645.WRITE:
            return self._write_2007(meter, message, error)
        if function == dlt645.TIME_SYNC:
            meter.set_time(dt.datetime.fromisoformat(message.value))
            meter.time_syncs += 1
            return None     # time sync is never answered
        if function in (dlt645.FREEZE, dlt645.OUTPUT):
            return dlt645.ack_response(address, function, preamble=pre)
        if function == dlt645.READ_NEXT:
            return error(ERR_NO_DATA)
        if function == dlt645.BAUD:
            return error(ERR_BAUD)
        if function == dlt645.SECURITY:
            return dlt645.error_response(address, function,
                dlt645.SERR_CODES['esam'], preamble=pre)
        return error(ERR_OTHER)

    def _write_2007(self, meter: Meter, message, error) -> bytes:
        address = meter.address
        if message.fields.get('password') != meter.password or \
                message.fields.get('level') == f'{dlt645.ESAM_LEVEL:02X}':
            return error(ERR_PASSWORD)
        di = message.di
        ack = dlt645.ack_response(address, dlt645.WRITE,
            preamble=self.options.reply_preamble)
        if di == recharge.PURCHASE_DI:
            if not meter.security_off:
                return error(ERR_PASSWORD)
            purchase = recharge.parse_purchase(message, vendor=meter.vendor)
            verdict = meter.purchase(purchase.amount, purchase.count)
            if verdict == recharge.INVALID:
                return error(ERR_OTHER)
            return ack     # applied, or a duplicate: idempotent, no change
        if di == recharge.SECURITY_DI:
            if message.value == recharge.SECURITY_OFF:
                meter.security_off = True
            elif message.value == recharge.SECURITY_ON:
                meter.security_off = not meter.spec.require_security_off
            return ack
        if di in ('04000101', '04000102', '0400010C'):
            now = meter.meter_datetime()
            value = message.value
            if di == '04000101':
                date = dt.date.fromisoformat(value['date'])
                meter.set_time(dt.datetime.combine(date, now.time()))
            elif di == '04000102':
                meter.set_time(dt.datetime.combine(now.date(),
                    dt.time.fromisoformat(value)))
            else:
                meter.set_time(dt.datetime.fromisoformat(value))
            return ack
        if di == meter.vendor.remaining_write and meter.version == \
                dlt645.V2007:
            # 剩余电量设置: only the remote clear (0.00) is taken; a top-up
            # goes through the purchase and its count, never here
            if not meter.prepaid:
                return error(ERR_NO_DATA)
            if message.value != 0:
                return error(ERR_OTHER)
            meter.clear_remaining()
            return ack
        safety = meter.safety
        if safety is not None:
            name = safety.name_of(di)
            if name is not None:
                try:
                    meter.set_safety_param(name, message.value)
                except (ValueError, TypeError, ArithmeticError):
                    return error(ERR_OTHER)
                return ack
            if di == safety.load_reset:
                if message.value != safety.reset_value:
                    return error(ERR_OTHER)
                meter.load_reset()
                return ack
        return error(ERR_OTHER)

    def _dlt1997(self, meter: Meter, frame) -> bytes | None:
        address = meter.address
        function = frame.function
        pre = self.options.reply_preamble

        def error(code):
            return dlt645.error_response(address, function, code,
                version=dlt645.V1997, preamble=pre)

        if function not in dlt645.COMMANDS[dlt645.V1997] or \
                function == dlt645.READ_ADDRESS:
            log.debug('meter %s (1997): unknown function %02X', address,
                function)
            return None
        try:
            message = dlt645.parse(frame, dlt645.V1997, meter.vendor)
        except CodecError as exc:
            log.debug('meter %s: malformed 1997 frame: %s', address, exc)
            return error(ERR97_ILLEGAL)
        if function == dlt645.READ_97:
            value = meter.read_1997(message.di)
            if value is None:
                return error(ERR97_DI)
            return dlt645.read_response(address, message.di, value,
                version=dlt645.V1997, preamble=pre)
        if function == dlt645.TIME_SYNC_97:
            meter.set_time(dt.datetime.fromisoformat(message.value))
            meter.time_syncs += 1
            return None
        if function == dlt645.WRITE_97:
            if message.fields.get('password') != meter.password:
                return error(ERR97_PASSWORD)
            return error(ERR97_DI)
        return error(ERR97_ILLEGAL)

    # CJ/T188
    def _cjt188(self, frame: cjt188.Frame) -> bytes | None:
        if frame.is_response:
            return None
        address = frame.address
        if 'A' in address:
            candidates = [m for m in self.water if _matches(address,
                m.address)]
        else:
            meter = self.by_address.get((True, address))
            candidates = [meter] if meter is not None else []
        candidates = [m for m in candidates if frame.meter_type in (
            m.meter_type, cjt188.BROADCAST_TYPE)]
        if not candidates:
            return None
        return self._answer(candidates,
            lambda m: self._cjt188_meter(m, frame))

    def _cjt188_meter(self, meter: Meter, frame) -> bytes | None:
        meter.requests += 1
        pre = self.options.reply_preamble
        function = frame.function
        common = dict(meter_type=meter.meter_type, preamble=pre)
        ser = frame.data[2] if len(frame.data) >= 3 else 0
        try:
            message = cjt188.parse(frame)
        except CodecError as exc:
            log.debug('meter %s: malformed CJ/T188 frame: %s',
                meter.address, exc)
            return cjt188.error_response(meter.address, function,
                st=meter.st(), ser=ser, **common)
        order = message.di_order or 'big'
        if function == cjt188.READ and message.di == cjt188.DI_METERING:
            flow = meter.flow
            return cjt188.read_response(meter.address, flow=flow,
                settlement_flow=_from_hund(meter._settlement),
                time=meter.meter_datetime(), unit=meter.spec.unit,
                valve=meter.valve, battery_low=meter.battery_low,
                ser=message.ser, di_order=order, **common)
        if function == cjt188.READ_ADDRESS and \
                message.di == cjt188.DI_ADDRESS:
            return cjt188.read_address_response(meter.address,
                ser=message.ser, di_order=order, **common)
        if message.di == cjt188.DI_VALVE and not frame.control & 0x80 and (
                frame.control in (cjt188.WRITE,
                meter.vendor.cjt188_valve_control)):
            if meter.valve != 'abnormal':
                meter.valve = 'open' if message.value == 'open' \
                    else 'closed'
            return cjt188.valve_response(meter.address, valve=meter.valve,
                battery_low=meter.battery_low, ser=message.ser,
                di_order=order, control=frame.control, **common)
        return cjt188.error_response(meter.address, function,
            st=meter.st(), ser=message.ser, **common)

    # faults and timing
    def plan(self, frame, request_length: int) -> Plan:
        """:meth:`handle_frame` plus wire timing and faults (seeded)."""
        reply = self.handle_frame(frame)
        options = self.options
        wait = 0.0
        if options.wire_timing:
            wait = options.byte_time(request_length)
        if reply is None:
            return Plan(None, wait)
        if options.wire_timing:
            wait += options.reply_delay + options.byte_time(len(reply))
        fault = self._fault()
        if fault is None:
            return Plan(reply, wait)
        self.stats[fault] += 1
        log.debug('bus %d: fault %s', self.index, fault)
        if fault == 'drop':
            return Plan(None, wait, fault=fault)
        if fault == 'delay':
            return Plan(reply, wait + options.late_by, fault=fault)
        if fault == 'corrupt':
            return Plan(self._corrupt(reply, isinstance(frame, cjt188.Frame)),
                wait, fault=fault)
        if fault == 'garble':
            return Plan(bytes(self._faults.randrange(256)
                for _ in range(len(reply))), wait, fault=fault)
        cut = self._faults.randrange(1, max(len(reply) - 1, 2))
        return Plan(reply[:cut], wait, disconnect=True, fault=fault)

    def _fault(self) -> str | None:
        options = self.options
        rates = ((n, getattr(options, n)) for n in (
            'drop', 'delay', 'corrupt', 'garble', 'disconnect'))
        rates = [(n, r) for n, r in rates if r]
        if not rates:
            return None
        draw = self._faults.random()
        for name, rate in rates:
            if draw < rate:
                return name
            draw -= rate
        return None

    def _corrupt(self, reply: bytes, water: bool) -> bytes:
        """Flip one bit of an address or data byte: the checksum no longer
        matches."""
        out = bytearray(reply)
        start = out.index(0x68)
        if not water:
            positions = list(range(start + 1, start + 7)) + list(range(
                start + 10, len(out) - 2))
        else:
            positions = list(range(start + 2, start + 9)) + list(range(
                start + 11, len(out) - 2))
        i = self._faults.choice(positions)
        out[i] ^= 1 << self._faults.randrange(8)
        return bytes(out)


# --- transports -------------------------------------------------------------

class _StreamLink:
    can_disconnect = True

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        sock = writer.get_extra_info('socket')
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    async def read(self) -> bytes:
        try:
            return await self.reader.read(4096)
        except (ConnectionError, OSError):
            return b''

    async def send(self, data: bytes):
        self.writer.write(data)
        await self.writer.drain()

    def close(self):
        self.writer.close()


class _PtyLink:
    can_disconnect = False

    def __init__(self, master: int):
        self.master = master
        self.queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)

    def _readable(self):
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError:     # EIO: nobody has the slave side open
            data = b''
        if data:
            self.queue.put_nowait(data)

    async def read(self) -> bytes:
        return await self.queue.get()

    async def send(self, data: bytes):
        view = memoryview(data)
        deadline = time.monotonic() + 1.0
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:     # nobody reads the slave side
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.01)
            except OSError:
                return

    def close(self):
        pass


class Dtu:
    """A DTU dialling a collector for bus ``bus`` with registration id
    ``id``; ``connects`` counts the successful connections."""

    def __init__(self, id: str, bus: Bus, options: SimOptions):
        self.id = id
        self.bus = bus
        self.options = options
        self.connects = 0
        self.connected = asyncio.Event()
        self.task: asyncio.Task | None = None

    def _id_bytes(self) -> bytes:
        if self.options.id_format == 'hex':
            return bytes.fromhex(self.id)
        return self.id.encode('ascii')

    @property
    def registration(self) -> bytes:
        return bytes(self.options.reg_prefix) + self._id_bytes()

    @property
    def heartbeat(self) -> bytes:
        return bytes(self.options.hb_prefix) + self._id_bytes()


class Bank:
    """Buses of simulated meters behind TCP ports, DTUs and ptys."""

    def __init__(self, buses: list[list[MeterSpec]],
            options: SimOptions | None = None):
        self.options = options or SimOptions()
        self.clock = Clock(self.options.speed, self.options.start)
        self.buses = [Bus(i, [Meter(spec, self.clock) for spec in specs],
                self.options) for i, specs in enumerate(buses)]
        self.servers: list[asyncio.base_events.Server] = []
        self.ports: dict[int, int] = {}
        self.ptys: dict[int, str] = {}
        self.dtus: list[Dtu] = []
        self._pty_fds: list[tuple[int, int, _PtyLink]] = []
        self._tasks: set[asyncio.Task] = set()
        self._links: set = set()
        self._stopping = False
        self._connection_count = 0

    @classmethod
    def generate(cls, buses: int, meters_per_bus: int,
            options: SimOptions | None = None, **kwargs) -> 'Bank':
        options = options or SimOptions()
        return cls(generate_specs(buses, meters_per_bus, seed=options.seed,
            **kwargs), options)

    def meter(self, address: str) -> Meter | None:
        for bus in self.buses:
            found = bus.meter(address)
            if found is not None:
                return found
        return None

    @property
    def meters(self) -> list[Meter]:
        return [m for bus in self.buses for m in bus.meters]

    # the pump shared by every transport
    async def _pump(self, bus: Bus, link, name: str) -> str:
        """Serve ``link`` until EOF ('eof') or a disconnect fault
        ('disconnect')."""
        buffer = bytearray()
        timeout = self.options.frame_timeout
        self._links.add(link)
        try:
            while True:
                if buffer:
                    try:
                        data = await asyncio.wait_for(link.read(), timeout)
                    except asyncio.TimeoutError:
                        log.debug('%s: forgetting %d bytes of an incomplete '
                            'frame', name, len(buffer))
                        buffer.clear()
                        continue
                else:
                    data = await link.read()
                if not data:
                    return 'eof'
                buffer += data
                while buffer:
                    used, frame = auto.decode_stream(buffer, lambda reason:
                        log.debug('%s: rejected: %s', name, reason))
                    if not used:
                        break
                    del buffer[:used]
                    if frame is None:
                        continue
                    number = getattr(link, 'number', None)
                    if number is not None:
                        bus.note_request(number)
                    async with bus.lock:
                        plan = bus.plan(frame, used)
                        if plan.wait:
                            await asyncio.sleep(plan.wait)
                        if plan.data:
                            await link.send(plan.data)
                    if plan.disconnect and link.can_disconnect:
                        link.close()
                        return 'disconnect'
                if len(buffer) > 1024:      # a held bogus header
                    del buffer[:-256]
        except (ConnectionError, OSError) as exc:
            log.debug('%s: %s', name, exc)
            return 'eof'
        finally:
            self._links.discard(link)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # TCP bridge mode
    async def serve_tcp(self, host: str = '127.0.0.1',
            base_port: int = 9100) -> dict[int, int]:
        """Bus i listens on ``base_port + i`` (every bus on an ephemeral
        port when ``base_port`` is 0). Returns {bus: port}."""
        for bus in self.buses:
            port = base_port + bus.index if base_port else 0
            server = await asyncio.start_server(
                lambda r, w, bus=bus: self._accept(bus, r, w), host, port,
                reuse_address=True)
            self.servers.append(server)
            self.ports[bus.index] = server.sockets[0].getsockname()[1]
        return dict(self.ports)

    async def _accept(self, bus: Bus, reader, writer):
        peer = writer.get_extra_info('peername')
        link = _StreamLink(reader, writer)
        self._connection_count += 1
        link.number = self._connection_count
        bus.connections += 1
        bus.max_connections = max(bus.max_connections, bus.connections)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._pump(bus, link, f'bus {bus.index} tcp {peer}')
        except asyncio.CancelledError:
            pass        # stop(); asyncio would log a cancelled handler
        finally:
            bus.connections -= 1
            self._tasks.discard(task)
            writer.close()

    # DTU mode
    async def dial(self, host: str, port: int,
            registration_ids: list[str]) -> list[Dtu]:
        """Registration id i dials for bus i; returns at once (the DTUs
        keep reconnecting until :meth:`stop`)."""
        if len(registration_ids) > len(self.buses):
            raise ValueError(f'{len(registration_ids)} DTU ids for '
                f'{len(self.buses)} buses')
        dtus = []
        for bus, ident in zip(self.buses, registration_ids):
            dtu = Dtu(str(ident), bus, self.options)
            dtu._id_bytes()     # validates a hex id early
            dtu.task = self._spawn(self._dtu(dtu, host, port))
            dtus.append(dtu)
        self.dtus += dtus
        return dtus

    async def _dtu(self, dtu: Dtu, host: str, port: int):
        options = self.options
        backoff = options.reconnect_delay
        name = f'dtu {dtu.id}'
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                log.debug('%s: connect %s:%s failed: %s', name, host, port,
                    exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, options.reconnect_max)
                continue
            backoff = options.reconnect_delay
            link = _StreamLink(reader, writer)
            heartbeat = None
            try:
                await link.send(dtu.registration)
                dtu.connects += 1
                dtu.connected.set()
                log.debug('%s: registered with %s:%s', name, host, port)
                if options.heartbeat > 0:
                    heartbeat = asyncio.ensure_future(
                        self._heartbeat(dtu, link))
                await self._pump(dtu.bus, link, name)
            except (ConnectionError, OSError) as exc:
                log.debug('%s: %s', name, exc)
            finally:
                dtu.connected.clear()
                if heartbeat is not None:
                    heartbeat.cancel()
                writer.close()
            if not self._stopping:
                await asyncio.sleep(options.reconnect_delay)

    async def _heartbeat(self, dtu: Dtu, link):
        while True:
            await asyncio.sleep(self.options.heartbeat)
            async with dtu.bus.lock:      # never inside a reply
                try:
                    await link.send(dtu.heartbeat)
                except (ConnectionError, OSError):
                    return

    # pseudo-terminals
    def open_ptys(self, count: int | None = None) -> dict[int, str]:
        """The first ``count`` buses (all by default) also on a pty; the
        simulator owns the master side. Returns {bus: slave path}. Call
        from inside the running event loop."""
        buses = self.buses if count is None else self.buses[:count]
        for bus in buses:
            if bus.index in self.ptys:
                continue
            master, slave = os.openpty()
            tty.setraw(slave, termios.TCSANOW)
            os.set_blocking(master, False)
            path = os.ttyname(slave)
            link = _PtyLink(master)
            self._pty_fds.append((master, slave, link))
            self.ptys[bus.index] = path
            self._spawn(self._pump(bus, link, f'bus {bus.index} pty {path}'))
        return dict(self.ptys)

    async def stop(self):
        """Close every server, connection, DTU and pty."""
        self._stopping = True
        for server in self.servers:
            server.close()
        for link in list(self._links):
            link.close()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()
        loop = asyncio.get_running_loop()
        for master, slave, _ in self._pty_fds:
            loop.remove_reader(master)
            for fd in (master, slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._pty_fds.clear()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.stop()
