"""Modbus register maps, as data (PROTOCOLS.md §5), and their decoding.

A :class:`ModbusMap` says which function code reads a meter and, for each
register name of ours (the names of :data:`.engine.registers.REGISTERS`),
where the value lives (:class:`RegisterDef`: start address, word count,
type), its scale to our unit and which transformer ratios multiply it.
Our units: energy kWh, voltage V, current A, power kW.

CT / PT ratios: a meter behind transformers measures the secondary side;
the primary value is ``secondary × ratio`` (voltage × PT, current × CT,
power and energy × CT × PT). A map whose registers take no ratio (the
DDSU666, direct connected) refuses a ratio other than 1 rather than
silently ignoring it.

:func:`decode_value` turns the words of one register into a rounded
:class:`~decimal.Decimal`; :func:`plan_reads` groups a meter's registers
into as few reads as the map allows. Pure: no I/O, no pymodbus.
"""

import math
import struct
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping, Sequence

__all__ = ['MAPS', 'ModbusMap', 'ModbusMapError', 'ReadBlock', 'RegisterDef',
    'TYPES', 'check_ratios', 'decode_value', 'get_map', 'plan_reads',
    'split_block']


class ModbusMapError(ValueError):
    """Unknown map or register, words of the wrong length, a value that
    is not a number, a ratio the map cannot take."""


#: type -> (struct format, words); big-endian bytes inside each word
TYPES: Mapping[str, tuple[str, int]] = MappingProxyType({
    'float32': ('>f', 2),
    'int16': ('>h', 1),
    'uint16': ('>H', 1),
    'int32': ('>i', 2),
    'uint32': ('>I', 2),
    })

#: rounding of each of our registers (our unit)
QUANTUM: Mapping[str, Decimal] = MappingProxyType({
    'energy_total': Decimal('0.01'),
    'energy_reverse': Decimal('0.01'),
    'voltage': Decimal('0.1'),
    'current': Decimal('0.001'),
    'power': Decimal('0.0001'),
    })

#: Modbus allows at most 125 registers in one FC03 / FC04 read
MAX_WORDS = 125


@dataclass(frozen=True)
class RegisterDef:
    """One value: ``address`` (0-based, as on the wire), ``words``,
    ``type`` (a :data:`TYPES` key), ``scale`` (raw × scale = our unit, on
    the secondary side), ``ct`` / ``pt``: multiplied by the CT / PT ratio;
    ``quantum``: rounding step."""
    address: int
    type: str = 'float32'
    scale: Decimal = Decimal(1)
    ct: bool = False
    pt: bool = False
    quantum: Decimal = Decimal('0.01')
    words: int = 0          # 0: the type's width

    def __post_init__(self):
        if self.type not in TYPES:
            raise ModbusMapError(f'unknown type {self.type!r}')
        width = TYPES[self.type][1]
        if self.words == 0:
            object.__setattr__(self, 'words', width)
        elif self.words != width:
            raise ModbusMapError(f'{self.type} takes {width} words, not '
                f'{self.words}')
        if not 0 <= self.address <= 0xFFFF - self.words + 1:
            raise ModbusMapError(f'address {self.address:#x} out of range')
        object.__setattr__(self, 'scale', Decimal(self.scale))
        object.__setattr__(self, 'quantum', Decimal(self.quantum))


@dataclass(frozen=True)
class ModbusMap:
    """A meter model: ``function_code`` 3 (holding) or 4 (input
    registers); ``word_order`` of 32-bit values ('big': high word first);
    ``merge_gap``: the most unwanted words one read may span to fetch two
    registers together (only over registers the documentation lists:
    some meters refuse a read that touches an undefined address)."""
    name: str
    title: str
    function_code: int
    registers: Mapping[str, RegisterDef]
    word_order: str = 'big'
    merge_gap: int = 0
    notes: str = ''

    def __post_init__(self):
        if self.function_code not in (3, 4):
            raise ModbusMapError(f'map {self.name}: function code must be 3 '
                f'or 4, not {self.function_code}')
        if self.word_order not in ('big', 'little'):
            raise ModbusMapError(f'map {self.name}: word order '
                f'{self.word_order!r}')
        object.__setattr__(self, 'registers',
            MappingProxyType(dict(self.registers)))

    def register(self, name: str) -> RegisterDef:
        try:
            return self.registers[name]
        except KeyError:
            raise ModbusMapError(f'register {name!r} is not in map '
                f'{self.name} (it has {", ".join(self.registers)})'
                ) from None

    @property
    def takes_ct(self) -> bool:
        return any(r.ct for r in self.registers.values())

    @property
    def takes_pt(self) -> bool:
        return any(r.pt for r in self.registers.values())


def _map(name, title, function_code, registers, **options) -> ModbusMap:
    for register, definition in registers.items():
        if register in QUANTUM:
            registers[register] = RegisterDef(**{**definition,
                'quantum': QUANTUM[register]})
        else:
            registers[register] = RegisterDef(**definition)
    return ModbusMap(name, title, function_code, registers, **options)


#: map name -> :class:`ModbusMap`
MAPS: Mapping[str, ModbusMap] = MappingProxyType({m.name: m for m in (
    # PROTOCOLS.md §5: FC04, IEEE-754 float32 high word first, values in
    # V / A / kW / kWh already. Direct connected: no transformer ratios.
    _map('chint_ddsu666', 'Chint DDSU666 (single-phase)', 4, {
        'voltage': dict(address=0x2000),            # U
        'current': dict(address=0x2002),            # I
        'power': dict(address=0x2004),              # P, kW
        'energy_total': dict(address=0x4000),       # import kWh
        'energy_reverse': dict(address=0x400A),     # export kWh
        }, notes='Some sources read it with FC03.'),
    # PROTOCOLS.md §5: float32; the 0x2000 block is in raw units on the
    # secondary side (0.1 V, 0.001 A, 0.1 W); primary = × CT / PT ratio.
    # FC03 (not stated in PROTOCOLS.md: the vendor map lists FC 03/16).
    # merge_gap 4: Ua..Pt is read at once over Ub, Uc, Ib, Ic.
    _map('chint_dtsu666', 'Chint DTSU666 (three-phase)', 3, {
        'voltage': dict(address=0x2006, scale=Decimal('0.1'), pt=True),
        'current': dict(address=0x200C, scale=Decimal('0.001'), ct=True),
        'power': dict(address=0x2012, scale=Decimal('0.0001'), ct=True,
            pt=True),                               # Pt, 0.1 W -> kW
        'energy_total': dict(address=0x401E, ct=True, pt=True),
        'energy_reverse': dict(address=0x4028, ct=True, pt=True),
        }, merge_gap=4, notes='Scaling differs between community sources: '
        'verify on hardware.'),
    )})


def get_map(name) -> ModbusMap:
    """The map called ``name`` (a :class:`ModbusMap` is returned as is)."""
    if isinstance(name, ModbusMap):
        return name
    try:
        return MAPS[name]
    except (KeyError, TypeError):
        raise ModbusMapError(f'unknown Modbus map {name!r} (known: '
            f'{", ".join(MAPS)})') from None


def _ratio(value, what) -> Decimal:
    try:
        ratio = Decimal(str(value)) if isinstance(value, float) else (
            Decimal(value))
    except (ArithmeticError, TypeError, ValueError):
        raise ModbusMapError(f'{what} ratio {value!r} is not a number'
            ) from None
    if not ratio.is_finite() or ratio <= 0:
        raise ModbusMapError(f'{what} ratio must be positive, not {value!r}')
    return ratio


def check_ratios(map_name, ct=1, pt=1) -> tuple[Decimal, Decimal]:
    """``(ct, pt)`` as Decimals; :class:`ModbusMapError` when one is not
    positive or the map takes no such ratio but it is not 1."""
    modbus_map = get_map(map_name)
    ct, pt = _ratio(ct, 'CT'), _ratio(pt, 'PT')
    if ct != 1 and not modbus_map.takes_ct:
        raise ModbusMapError(f'map {modbus_map.name} takes no CT ratio '
            f'(values are primary already): CT must be 1, not {ct}')
    if pt != 1 and not modbus_map.takes_pt:
        raise ModbusMapError(f'map {modbus_map.name} takes no PT ratio '
            f'(values are primary already): PT must be 1, not {pt}')
    return ct, pt


def _raw(definition: RegisterDef, words: Sequence[int], word_order: str):
    fmt, _ = TYPES[definition.type]
    if word_order == 'little':
        words = list(reversed(words))
    data = b''.join(w.to_bytes(2, 'big') for w in words)
    return struct.unpack(fmt, data)[0]


def decode_value(map_name, register: str, registers: Sequence[int], ct=1,
        pt=1) -> Decimal:
    """The value of ``register`` (one of ours, e.g. 'voltage') from its
    ``registers`` (the 16-bit words read, exactly the register's width),
    scaled, multiplied by the ratios that apply and rounded (energy 0.01,
    voltage 0.1, current 0.001, power 0.0001)."""
    modbus_map = get_map(map_name)
    definition = modbus_map.register(register)
    ct, pt = check_ratios(modbus_map, ct, pt)
    words = list(registers)
    if len(words) != definition.words:
        raise ModbusMapError(f'{modbus_map.name} {register}: '
            f'{definition.words} words expected, got {len(words)}')
    for word in words:
        if not isinstance(word, int) or not 0 <= word <= 0xFFFF:
            raise ModbusMapError(f'{modbus_map.name} {register}: '
                f'{word!r} is not a 16-bit word')
    raw = _raw(definition, words, modbus_map.word_order)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ModbusMapError(f'{modbus_map.name} {register}: the meter '
            f'gave {raw} ({" ".join(f"{w:04X}" for w in words)})')
    with localcontext() as context:
        context.prec = 80       # float32 reaches 3.4e38: never round early
        value = Decimal(raw) * definition.scale
        if definition.ct:
            value *= ct
        if definition.pt:
            value *= pt
        value = value.quantize(definition.quantum, rounding=ROUND_HALF_EVEN)
    if value.is_zero():
        value = value.copy_abs()    # no -0.00
    return value


@dataclass(frozen=True)
class ReadBlock:
    """One read: ``count`` words from ``address``; ``items``: (register,
    offset of its first word in the block)."""
    address: int
    count: int
    items: tuple[tuple[str, int], ...] = field(default=())


@lru_cache(maxsize=256)
def _cached_plan(map_name: str, names: tuple[str, ...]
        ) -> tuple[ReadBlock, ...]:
    return _plan(MAPS[map_name], names)


def _plan(modbus_map: ModbusMap, names: tuple[str, ...]
        ) -> tuple[ReadBlock, ...]:
    wanted = sorted({name: modbus_map.register(name) for name in names
        }.items(), key=lambda item: item[1].address)
    blocks = []
    start = end = None
    items = []
    for name, definition in wanted:
        last = definition.address + definition.words
        if start is not None and (definition.address - end
                <= modbus_map.merge_gap) and max(last, end) - start <= (
                MAX_WORDS):
            items.append((name, definition.address - start))
            end = max(end, last)
            continue
        if start is not None:
            blocks.append(ReadBlock(start, end - start, tuple(items)))
        start, end, items = definition.address, last, [(name, 0)]
    if start is not None:
        blocks.append(ReadBlock(start, end - start, tuple(items)))
    # in the order the caller asked for (the first block decides whether
    # the meter answers at all)
    first = {name: index for index, name in enumerate(names)}
    blocks.sort(key=lambda b: min(first[name] for name, _ in b.items))
    return tuple(blocks)


def plan_reads(map_name, names: Sequence[str]) -> tuple[ReadBlock, ...]:
    """The reads that fetch ``names`` (registers of ours) from a meter of
    map ``map_name``: adjacent registers, or registers at most the map's
    ``merge_gap`` apart, share one read."""
    modbus_map = get_map(map_name)
    names = tuple(dict.fromkeys(names))
    if MAPS.get(modbus_map.name) is modbus_map:
        return _cached_plan(modbus_map.name, names)
    return _plan(modbus_map, names)


def split_block(map_name, block: ReadBlock, words: Sequence[int], ct=1,
        pt=1) -> dict[str, Decimal]:
    """``{register: value}`` from the ``words`` a ``block`` read gave."""
    if len(words) != block.count:
        raise ModbusMapError(f'{block.count} words expected from '
            f'{block.address:#06x}, got {len(words)}')
    modbus_map = get_map(map_name)
    values = {}
    for name, offset in block.items:
        width = modbus_map.register(name).words
        values[name] = decode_value(modbus_map, name,
            words[offset:offset + width], ct, pt)
    return values
