"""Per-vendor quirks, as data (dlms-cosem style settings objects).

Code never branches on a vendor's name: it reads the fields of the
:class:`VendorProfile` it is handed. A meter model points at a profile by
name; ``get_vendor(None)`` is the standard behaviour.

安全用电 (safety: alarm energy, load limits, trip records) parameters live
in DIs that differ between makers: a :class:`SafetyMap` names the DI of each
parameter, and a profile names its map (``VendorProfile.safety``). The DI
formats are the DI registry's (:mod:`.di`).
"""

from dataclasses import dataclass

from . import di as registry
from .errors import CodecError

#: the 安全用电 parameters, as the product names them: 报警电量 (kWh),
#: 应急透支电量 (kWh), 月补电量 (kWh), 最大用电负荷 (kW), 恶性负载起始功率
#: (kW), 功率变化记录阈值 (kW), 允许超负荷断电次数, 允许恶性负载断电次数,
#: 分时功率 ([(start HH:MM, kW), ...])
SAFETY_PARAMS = ('alarm_energy', 'overdraft_energy', 'monthly_topup',
    'max_load', 'malignant_power', 'power_change_threshold',
    'overload_trips_allowed', 'malignant_trips_allowed', 'tod_power_limits')


@dataclass(frozen=True)
class RecordScheme:
    """Event records as DL/T645 keeps them: ``count`` holds how many were
    ever made; the n-th last (n = 1 the latest … ``depth``) is at DI
    ``first + n - 1``."""
    count: str
    first: str
    depth: int = 10

    def record_di(self, n: int) -> str:
        if not 1 <= n <= self.depth:
            raise CodecError(f'record {n} is beyond the {self.depth} the '
                'meter keeps')
        return f'{int(self.first, 16) + n - 1:08X}'


@dataclass(frozen=True)
class SafetyMap:
    """Where one maker keeps the 安全用电 items. ``params``: (name, DI)
    pairs, names from :data:`SAFETY_PARAMS` (a map may lack some);
    ``load_reset``: the DI written with ``reset_value`` to clear a load
    lockout; ``load_status``: the DI of the lockout flag and trip counts;
    ``events``: the trip / power-step records."""
    name: str
    label: str
    params: tuple[tuple[str, str], ...]
    load_reset: str
    load_status: str
    events: RecordScheme
    reset_value: int = 1

    def __post_init__(self):
        for name, di in self.params:
            if name not in SAFETY_PARAMS:
                raise CodecError(f'safety map {self.name}: unknown parameter '
                    f'{name!r}')
        dis = [di for _, di in self.params] + [self.load_reset,
            self.load_status, self.events.count] + [
            self.events.record_di(n) for n in range(1, self.events.depth + 1)]
        for di in dis:
            if registry.lookup(di) is None:
                raise CodecError(f'safety map {self.name}: DI {di} is not in '
                    'the DI registry (register its format first)')

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params)

    def di(self, name: str) -> str:
        """The DI of parameter ``name``."""
        for param, di in self.params:
            if param == name:
                return di
        if name in SAFETY_PARAMS:
            raise CodecError(f'parameter {name} is not in the {self.name} '
                'safety map')
        raise CodecError(f'unknown parameter {name!r}; one of '
            f'{", ".join(SAFETY_PARAMS)}')

    def item(self, name: str):
        """The registry item (DI and data format) of parameter ``name``."""
        return registry.lookup(self.di(name))

    def name_of(self, di: str) -> str | None:
        for param, param_di in self.params:
            if param_di == di:
                return param
        return None


SAFETY_MAPS: dict[str, SafetyMap] = {}


def register_safety_map(safety: SafetyMap) -> SafetyMap:
    SAFETY_MAPS[safety.name] = safety
    return safety


#: DL/T645-2007 items where the standard has them (04000F01 报警电量1限值,
#: 04000F04 透支电量限值, 04000E01 正向有功功率上限值), the vendor range
#: 04A0xxxx / 04A1xxxx for the rest (see codec.di and docs/collection.md)
DH_SAFETY = register_safety_map(SafetyMap(
    'dh', 'standard DIs where they exist, vendor range 04A0/04A1 otherwise',
    params=(
        ('alarm_energy', '04000F01'),
        ('overdraft_energy', '04000F04'),
        ('monthly_topup', '04A00101'),
        ('max_load', '04000E01'),
        ('malignant_power', '04A00201'),
        ('power_change_threshold', '04A00202'),
        ('overload_trips_allowed', '04A00203'),
        ('malignant_trips_allowed', '04A00204'),
        ('tod_power_limits', '04A00301'),
        ),
    load_reset='04A00402', load_status='04A00401',
    events=RecordScheme('04A10000', '04A10001', 10)))

LITTLE = 'little'
BIG = 'big'


@dataclass(frozen=True)
class VendorProfile:
    name: str
    label: str
    #: DL/T645 password P0–P2 on the wire: 'little' (P0 = low byte, the
    #: standard: 123456 -> 56 34 12) or 'big' (12 34 56).
    password_order: str = LITTLE
    #: CJ/T188 DI byte order when sending ('big': 90 1F, 'little': 1F 90).
    #: Both orders are always accepted on receive.
    cjt188_di_order: str = BIG
    #: key of codec.recharge.DIALECTS
    recharge: str = 'plain-write'
    #: DL/T645 password level used for writes and remote control
    level: int = 0x02
    #: FE bytes sent before a request
    preamble: int = 4
    #: CJ/T188 valve control code (04 standard; some use vendor 2A)
    cjt188_valve_control: int = 0x04
    #: key of SAFETY_MAPS (安全用电 DIs); None: the meter has none
    safety: str | None = 'dh'
    #: DI through which the prepaid remaining energy is written (剩余电量
    #: 设置, format XXXXXX.XX kWh); the remote clear (远程清零) writes 0.00
    #: there. None: the meter has no such write (no remote clear)
    remaining_write: str | None = '04A00501'

    def __post_init__(self):
        if self.password_order not in (LITTLE, BIG):
            raise CodecError(f'{self.name}: password_order must be little '
                'or big')
        if self.cjt188_di_order not in (LITTLE, BIG):
            raise CodecError(f'{self.name}: cjt188_di_order must be little '
                'or big')
        if not 0 <= self.preamble <= 4:
            raise CodecError(f'{self.name}: preamble must be 0 to 4 FE')
        if self.remaining_write is not None and registry.lookup(
                self.remaining_write) is None:
            raise CodecError(f'{self.name}: remaining_write DI '
                f'{self.remaining_write} is not in the DI registry')
        if self.safety is not None and self.safety not in SAFETY_MAPS:
            raise CodecError(f'{self.name}: unknown safety map '
                f'{self.safety!r}')

    @property
    def safety_map(self) -> SafetyMap | None:
        return None if self.safety is None else SAFETY_MAPS[self.safety]


VENDORS: dict[str, VendorProfile] = {}


def register_vendor(profile: VendorProfile) -> VendorProfile:
    VENDORS[profile.name] = profile
    return profile


STANDARD = register_vendor(VendorProfile(
    'standard', 'DL/T645-2007 / CJ/T188-2004 as published'))
register_vendor(VendorProfile(
    'cjt188-2018', 'CJ/T188-2018 water meters (DI low byte first)',
    cjt188_di_order=LITTLE))
register_vendor(VendorProfile(
    'password-big-endian', 'meters expecting the password high byte first',
    password_order=BIG))
register_vendor(VendorProfile(
    'state-grid', 'State-Grid ESAM meters (recharge needs the key service)',
    recharge='esam', remaining_write=None))
register_vendor(VendorProfile(
    'cjt188-valve-2a', 'CJ/T188 meters with vendor valve code 2A',
    cjt188_valve_control=0x2A))


def get_vendor(vendor=None) -> VendorProfile:
    """A profile from its name, a profile itself, or the standard one."""
    if vendor is None:
        return STANDARD
    if isinstance(vendor, VendorProfile):
        return vendor
    try:
        return VENDORS[vendor]
    except (KeyError, TypeError):
        raise CodecError(f'unknown vendor profile {vendor!r}') from None
