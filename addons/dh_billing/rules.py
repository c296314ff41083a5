# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Billing arithmetic (DESIGN.md section 5) as pure functions.

Nothing here imports trytond: the Tryton models call these functions and
store what they return.  All money is ``Decimal`` rounded half-up to 0.01
yuan on every line, all energy ``Decimal`` rounded half-up to 0.01 kWh.

Rounding and remainder rules (pinned by tests/test_rules.py):

* A billing line rounds its energy first, then ``amount = money(energy *
  price)`` so that a printed line always re-multiplies to its amount.
* Whenever a whole must be split into parts that sum exactly (public-meter
  allocation, central AC, TOU interval split) the largest-remainder method
  is used: every part gets the floor of its exact share in quanta, then the
  leftover quanta go one each to the largest fractional remainders; ties
  go to the key that sorts first (``sorted(keys)``; TOU bands in the order
  t1, t2, t3, t4).  Parts are never negative, a zero weight gets zero, and
  the result does not depend on the order of the input mapping.
"""
import datetime as _dt
import math
from collections import namedtuple
from dataclasses import dataclass, field
from decimal import Decimal, ROUND_FLOOR, ROUND_HALF_UP, localcontext
from fractions import Fraction

__all__ = [
    'CENT', 'MONEY_QUANTUM', 'ENERGY_QUANTUM', 'BANDS', 'CONTROL_MODES',
    'AC_BASES', 'DEFAULT_SPEED_WEIGHTS',
    'to_decimal', 'money', 'energy',
    'EnergyRecharge', 'energy_recharge',
    'Tariff', 'Line', 'validate_tariff', 'band_at', 'price_for',
    'bill_registers', 'split_interval', 'bill_tiers',
    'allocate', 'allocate_equal',
    'IndoorUnit', 'AcSplit', 'ac_split',
    'cutoff_needed', 'close_needed', 'in_no_cut_window', 'trip_allowed',
    'resale_excess',
    ]

MONEY_QUANTUM = CENT = Decimal('0.01')
ENERGY_QUANTUM = Decimal('0.01')
BANDS = ('t1', 't2', 't3', 't4')     # 尖 / 峰 / 平 / 谷
TOTAL_REGISTER = 'energy_total'
CONTROL_MODES = ('controlled', 'controlled_no_cut', 'always_on', 'always_off')
AC_BASES = ('capacity_runtime', 'runtime', 'capacity_speed')
DEFAULT_SPEED_WEIGHTS = {
    'low': Decimal('0.6'), 'mid': Decimal('0.8'), 'high': Decimal('1.0')}
_DAY = 24 * 60


# ---------------------------------------------------------------- numbers

def to_decimal(x, what='value'):
    """Convert int/str/Decimal/float to a finite Decimal.

    Floats go through ``str`` so that 1.2 becomes Decimal('1.2'), not its
    binary expansion."""
    if isinstance(x, bool) or x is None:
        raise ValueError(f"{what} must be a number, not {x!r}")
    if isinstance(x, float):
        x = repr(x)
    try:
        d = x if isinstance(x, Decimal) else Decimal(x)
    except Exception:
        raise ValueError(f"{what} must be a number, not {x!r}") from None
    if not d.is_finite():
        raise ValueError(f"{what} must be finite, not {x!r}")
    return d


def _round(x, quantum, what):
    return to_decimal(x, what).quantize(quantum, rounding=ROUND_HALF_UP)


def money(x):
    "Money in yuan, half-up to 0.01."
    return _round(x, MONEY_QUANTUM, 'money')


def energy(x):
    "Energy in kWh, half-up to 0.01."
    return _round(x, ENERGY_QUANTUM, 'energy')


def _whole_cents(x, what):
    d = to_decimal(x, what)
    if d != d.quantize(CENT):
        raise ValueError(f"{what} must be whole fen (0.01 yuan), got {d}")
    return d.quantize(CENT)


# ---------------------------------------------------- energy-mode recharge

EnergyRecharge = namedtuple(
    'EnergyRecharge', ['kwh', 'paid', 'wallet_after', 'meter_energy'])
EnergyRecharge.__doc__ = (
    "kwh: whole kWh bought (结算后购电量); paid: kwh × price (实缴费); "
    "wallet_after: change kept for the next recharge (钱包余额); "
    "meter_energy: kwh / multiplier, 0.01 (变比电量).")


def energy_recharge(amount, wallet, price, multiplier):
    """Energy-mode (电度方式) recharge, DESIGN.md section 5.

    kwh = floor((amount + wallet) / price); paid = kwh × price;
    wallet_after = amount + wallet − paid; meter_energy = kwh / multiplier.
    ``amount`` and ``wallet`` must be whole fen; ``price`` may have more
    decimals (paid is then rounded half-up, which can never exceed the
    money available because that is a whole number of fen)."""
    amount = _whole_cents(amount, 'amount')
    wallet = _whole_cents(wallet, 'wallet')
    price = to_decimal(price, 'price')
    multiplier = to_decimal(multiplier, 'multiplier')
    if amount <= 0:
        raise ValueError(f"recharge amount must be positive, got {amount}")
    if price <= 0:
        raise ValueError(f"unit price must be positive, got {price}")
    if multiplier <= 0:
        raise ValueError(f"multiplier must be positive, got {multiplier}")
    if wallet < 0:
        raise ValueError(
            f"wallet must not be negative in energy mode, got {wallet}")
    available = amount + wallet
    with localcontext() as ctx:
        ctx.prec = 60
        kwh = int((available / price).to_integral_value(rounding=ROUND_FLOOR))
        paid = money(kwh * price)
        meter_energy = energy(Decimal(kwh) / multiplier)
    wallet_after = available - paid
    assert Decimal(0) <= wallet_after
    return EnergyRecharge(kwh, paid, wallet_after, meter_energy)


# ------------------------------------------------------------------ tariffs

@dataclass
class Tariff:
    """A tariff as plain data.

    kind 'flat': ``price`` (and/or ``tiers`` [(upto_kwh, price), ...], the
    last upto None; upto is monthly cumulative kWh, inclusive).
    kind 'tou': ``tou_prices`` {'t1'..'t4': price} and ``bands``
    [('HH:MM', 'HH:MM', band)], start inclusive, end exclusive, end <= start
    crosses midnight, '24:00' allowed as an end, start == end is 24 h;
    the bands must cover the day exactly once.  On a date in ``holidays``
    the whole day is billed at ``holiday_band``."""
    kind: str = 'flat'
    price: Decimal = None
    tou_prices: dict = field(default_factory=dict)
    bands: list = field(default_factory=list)
    tiers: list = field(default_factory=list)
    holidays: set = field(default_factory=set)
    holiday_band: str = None


@dataclass(frozen=True)
class Line:
    "One billing line: energy (0.01 kWh) × price = amount (0.01 yuan)."
    register: str
    energy: Decimal
    price: Decimal
    amount: Decimal


def _minutes(hhmm, end=False):
    try:
        hh, mm = str(hhmm).split(':')
        h, m = int(hh), int(mm)
    except Exception:
        raise ValueError(f"time must be 'HH:MM', got {hhmm!r}") from None
    if end and h == 24 and m == 0:
        return _DAY
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"time out of range: {hhmm!r}")
    return h * 60 + m


def _hhmm(minutes):
    return '%02d:%02d' % divmod(minutes, 60)


def _spans(start, end):
    """[start, end) in minutes of the day as non-wrapping spans."""
    s, e = _minutes(start), _minutes(end, end=True)
    if e == _DAY:
        e = 0 if s else _DAY
    if s == e:
        return [(0, _DAY)] if s == 0 else [(s, _DAY), (0, s)]
    if s < e:
        return [(s, e)]
    return [(s, _DAY)] + ([(0, e)] if e else [])


def _check_price(p, what):
    p = to_decimal(p, what)
    if p < 0:
        raise ValueError(f"{what} must not be negative, got {p}")
    return p


def validate_tariff(tariff):
    """Raise ValueError unless the tariff is complete and consistent."""
    if tariff.kind not in ('flat', 'tou'):
        raise ValueError(f"unknown tariff kind {tariff.kind!r}")
    if tariff.price is not None:
        _check_price(tariff.price, 'price')
    if tariff.kind == 'flat':
        if tariff.price is None and not tariff.tiers:
            raise ValueError("flat tariff needs a price or tiers")
    if tariff.tiers:
        if tariff.kind != 'flat':
            raise ValueError("tiers (阶梯) are only supported on flat tariffs")
        previous = Decimal(0)
        for i, (upto, price) in enumerate(tariff.tiers):
            _check_price(price, f"tier {i + 1} price")
            last = i == len(tariff.tiers) - 1
            if upto is None:
                if not last:
                    raise ValueError("only the last tier may be unbounded")
                continue
            upto = to_decimal(upto, f"tier {i + 1} limit")
            if upto <= previous:
                raise ValueError(
                    f"tier limits must increase: {upto} after {previous}")
            previous = upto
        if tariff.tiers[-1][0] is not None:
            raise ValueError("the last tier must be unbounded (upto None)")
    if tariff.kind == 'tou':
        for band, p in tariff.tou_prices.items():
            if band not in BANDS:
                raise ValueError(f"unknown band {band!r} (use t1..t4)")
            _check_price(p, f"{band} price")
        if not tariff.bands:
            raise ValueError("TOU tariff needs time bands")
        cover = [None] * _DAY
        for start, end, band in tariff.bands:
            if band not in BANDS:
                raise ValueError(f"unknown band {band!r} (use t1..t4)")
            if band not in tariff.tou_prices:
                raise ValueError(f"band {band} has no price")
            for s, e in _spans(start, end):
                for m in range(s, e):
                    if cover[m] is not None:
                        raise ValueError(
                            f"bands overlap at {_hhmm(m)} "
                            f"({cover[m]} and {band})")
                    cover[m] = band
        for m in range(_DAY):
            if cover[m] is None:
                raise ValueError(f"bands leave a gap at {_hhmm(m)}")
        if tariff.holidays:
            if tariff.holiday_band not in BANDS:
                raise ValueError(
                    "holidays need a holiday_band (t1..t4), got "
                    f"{tariff.holiday_band!r}")
            if tariff.holiday_band not in tariff.tou_prices:
                raise ValueError(f"band {tariff.holiday_band} has no price")
    return True


def _day_segments(tariff, day=None):
    """Sorted [(start_min, end_min, band)] covering the day."""
    if (day is not None and tariff.holidays and day in tariff.holidays):
        return [(0, _DAY, tariff.holiday_band)]
    segments = []
    for start, end, band in tariff.bands:
        for s, e in _spans(start, end):
            segments.append((s, e, band))
    segments.sort()
    return segments


def band_at(tariff, local_time):
    """The band ('t1'..'t4') in force at a local ``time`` or ``datetime``
    (a datetime on a holiday gives the holiday band)."""
    if tariff.kind != 'tou':
        raise ValueError("band_at needs a TOU tariff")
    if isinstance(local_time, _dt.datetime):
        day, t = local_time.date(), local_time.time()
    elif isinstance(local_time, _dt.time):
        day, t = None, local_time
    else:
        raise ValueError(f"need a time or datetime, got {local_time!r}")
    m = t.hour * 60 + t.minute
    for s, e, band in _day_segments(tariff, day):
        if s <= m < e:
            return band
    raise ValueError(f"no band covers {t} (run validate_tariff)")


def _band_of(register):
    if register in BANDS:
        return register
    if isinstance(register, str) and register.startswith('energy_') \
            and register[len('energy_'):] in BANDS:
        return register[len('energy_'):]
    return None


def price_for(tariff, register_or_band, override=None):
    """Unit price for a register ('energy_total', 'energy_t1'...) or band
    ('t1'...).  ``override`` (the meter's own price, 每台表计单价) wins; it
    may be one price or a {band: price} mapping for TOU."""
    band = _band_of(register_or_band)
    if override is not None:
        if isinstance(override, dict):
            if band is None or band not in override:
                raise ValueError(
                    f"override has no price for {register_or_band!r}")
            return _check_price(override[band], 'override price')
        return _check_price(override, 'override price')
    if tariff.kind == 'flat':
        if tariff.price is None:
            raise ValueError("tiered tariff: use bill_tiers")
        return _check_price(tariff.price, 'price')
    if band is None:
        raise ValueError(
            f"TOU tariff has no price for register {register_or_band!r}")
    if band not in tariff.tou_prices:
        raise ValueError(f"band {band} has no price")
    return _check_price(tariff.tou_prices[band], f"{band} price")


def _line(register, kwh, price):
    kwh = energy(kwh)
    return Line(register, kwh, price, money(kwh * price))


def bill_registers(tariff, deltas, override_price=None,
                   month_to_date_kwh=None):
    """Bill register deltas (already × multiplier) -> [Line].

    Flat: one line for 'energy_total' (tiered flat tariffs without an
    override go through bill_tiers and need ``month_to_date_kwh``).
    TOU: one line per band register present ('energy_t1'..'energy_t4', or
    't1'..'t4' as returned by split_interval), in band order; a TOU tariff
    given only 'energy_total' raises (use split_interval first).
    Negative deltas raise; lines whose energy rounds to 0.00 are omitted."""
    for register, delta in deltas.items():
        if to_decimal(delta, f"delta of {register}") < 0:
            raise ValueError(f"negative delta for {register}: {delta}")
    if tariff.kind == 'flat':
        if TOTAL_REGISTER not in deltas:
            raise ValueError("flat tariff bills 'energy_total'")
        kwh = energy(deltas[TOTAL_REGISTER])
        if kwh == 0:
            return []
        if tariff.tiers and override_price is None:
            if month_to_date_kwh is None:
                raise ValueError("tiered tariff needs month_to_date_kwh")
            return bill_tiers(tariff, month_to_date_kwh, kwh)
        return [_line(TOTAL_REGISTER, kwh,
                      price_for(tariff, TOTAL_REGISTER, override_price))]
    by_band = {}
    for register, delta in deltas.items():
        band = _band_of(register)
        if band is not None:
            if band in by_band:
                raise ValueError(f"band {band} given twice")
            by_band[band] = (register, delta)
    if not by_band:
        if TOTAL_REGISTER in deltas and energy(deltas[TOTAL_REGISTER]) == 0:
            return []
        raise ValueError(
            "TOU tariff needs T1-T4 deltas; split interval energy with "
            "split_interval first")
    lines = []
    for band in BANDS:
        if band in by_band:
            register, delta = by_band[band]
            if energy(delta) == 0:
                continue
            lines.append(_line(
                register, delta, price_for(tariff, band, override_price)))
    return lines


def split_interval(tariff, start_local, end_local, energy_):
    """Spread an interval's energy over the TOU bands in proportion to the
    time spent in each (to the microsecond) -> {band: energy}, bands in
    t1..t4 order, only bands the interval touches.  The parts sum exactly to
    ``energy(energy_)``; the remainder is placed by allocate()'s
    largest-remainder rule (ties to the earlier band)."""
    if tariff.kind != 'tou':
        raise ValueError("split_interval needs a TOU tariff")
    total = energy(energy_)
    if total < 0:
        raise ValueError(f"negative interval energy {total}")
    if end_local < start_local:
        raise ValueError("interval ends before it starts")
    if end_local == start_local:
        if total:
            raise ValueError("energy over an empty interval")
        return {}
    one = _dt.timedelta(microseconds=1)
    time_in = {}
    day = start_local.date()
    while True:
        midnight = _dt.datetime.combine(day, _dt.time(), start_local.tzinfo)
        if midnight >= end_local:
            break
        for s, e, band in _day_segments(tariff, day):
            a = max(start_local, midnight + _dt.timedelta(minutes=s))
            b = min(end_local, midnight + _dt.timedelta(minutes=e))
            if b > a:
                time_in[band] = time_in.get(band, 0) + (b - a) // one
        day += _dt.timedelta(days=1)
    weights = {b: Decimal(time_in[b]) for b in BANDS if b in time_in}
    return allocate(total, weights, ENERGY_QUANTUM)


def bill_tiers(tariff, month_to_date_kwh, energy_):
    """Bill energy on a tiered (阶梯) flat tariff, given the month's
    cumulative kWh already billed -> [Line('tier1'...)] split at the tier
    limits (upto inclusive, monthly cumulative)."""
    if not tariff.tiers:
        raise ValueError("tariff has no tiers")
    done = energy(month_to_date_kwh)
    rest = energy(energy_)
    if done < 0 or rest < 0:
        raise ValueError("tier energies must not be negative")
    lines = []
    lower = Decimal(0)
    for i, (upto, price) in enumerate(tariff.tiers):
        price = _check_price(price, f"tier {i + 1} price")
        if rest == 0:
            break
        if upto is not None:
            upto = to_decimal(upto, 'tier limit')
            room = upto - max(done, lower)
            lower = upto
            if room <= 0:
                continue
            part = min(rest, energy(room))
        else:
            part = rest
        if part > 0:
            lines.append(_line(f'tier{i + 1}', part, price))
            rest -= part
            done += part
    if rest > 0:
        raise ValueError("the last tier must be unbounded (upto None)")
    return lines


# --------------------------------------------------------------- allocation

def _ordered(keys):
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:
        raise ValueError(
            "allocation keys must be mutually orderable (ties are broken "
            "by sorted key order)") from None


def allocate(total, weights, quantum=Decimal('0.01')):
    """Split ``total`` (money or energy) over ``weights`` {key: weight} in
    proportion, so the shares sum EXACTLY to ``total`` rounded half-up to
    ``quantum``.  Largest-remainder method: each key gets the floor of its
    exact share, leftover quanta go one by one to the largest fractional
    remainders, ties to the key that sorts first.  All weights zero -> equal
    split.  Negative weight -> ValueError.  A negative total is split as
    the negation of the split of its absolute value."""
    quantum = to_decimal(quantum, 'quantum')
    if quantum <= 0:
        raise ValueError("quantum must be positive")
    total = _round(total, quantum, 'total')
    keys = _ordered(weights)
    if not keys:
        if total:
            raise ValueError("nothing to allocate over")
        return {}
    w = {}
    for k in keys:
        wk = to_decimal(weights[k], f"weight of {k!r}")
        if wk < 0:
            raise ValueError(f"negative weight for {k!r}: {wk}")
        w[k] = Fraction(wk)
    if total < 0:
        return {k: -v for k, v in
                allocate(-total, weights, quantum).items()}
    wsum = sum(w.values())
    if wsum == 0:
        w = {k: Fraction(1) for k in keys}
        wsum = Fraction(len(keys))
    units = int(total / quantum)
    base, remainders = {}, {}
    for k in keys:
        exact = units * w[k] / wsum
        base[k] = math.floor(exact)
        remainders[k] = exact - base[k]
    leftover = units - sum(base.values())
    # stable sort: equal remainders keep the sorted key order
    for k in sorted(keys, key=lambda k: -remainders[k])[:leftover]:
        base[k] += 1
    return {k: (base[k] * quantum).quantize(quantum) for k in keys}


def allocate_equal(total, keys, quantum=Decimal('0.01')):
    """Equal shares; the extra quanta go to the first keys in sorted order
    (100.00 over a, b, c -> a 33.34, b 33.33, c 33.33)."""
    return allocate(total, {k: Decimal(1) for k in keys}, quantum)


# ---------------------------------------------------------------- central AC

@dataclass(frozen=True)
class IndoorUnit:
    key: object
    capacity_kw: Decimal
    runtime_h: Decimal
    speed_runtime: dict = None     # {'low'|'mid'|'high': hours}


@dataclass(frozen=True)
class AcSplit:
    """basis; inputs {key: {'capacity_kw', 'runtime_h', 'speed_runtime',
    'speed_weights' (capacity_speed only), 'weight', 'formula'}};
    shares {key: energy}; outdoor_energy as split."""
    basis: str
    inputs: dict
    shares: dict
    outdoor_energy: Decimal = None


def _fmt(d):
    d = to_decimal(d)
    s = format(d.normalize(), 'f') if d == d.to_integral_value() \
        else format(d, 'f')
    return s


def ac_split(outdoor_energy, units, basis='capacity_runtime',
             speed_weights=None):
    """Split an outdoor unit's energy over its indoor units.

    capacity_runtime: weight = capacity_kw × runtime_h
    runtime:          weight = runtime_h
    capacity_speed:   weight = Σ speed_weights[s] × speed_runtime[s] ×
                      capacity_kw (Panasonic-style equivalent)
    Shares come from allocate() and sum exactly to the outdoor energy."""
    if basis not in AC_BASES:
        raise ValueError(f"unknown AC basis {basis!r}; use one of {AC_BASES}")
    if speed_weights is None:
        speed_weights = DEFAULT_SPEED_WEIGHTS
    speed_weights = {s: _check_price(v, f"speed weight {s}")
                     for s, v in speed_weights.items()}
    total = energy(outdoor_energy)
    if total < 0:
        raise ValueError(f"negative outdoor energy {total}")
    inputs, weights = {}, {}
    for u in units:
        if u.key in inputs:
            raise ValueError(f"indoor unit {u.key!r} given twice")
        cap = to_decimal(u.capacity_kw, f"capacity of {u.key!r}")
        run = to_decimal(u.runtime_h, f"runtime of {u.key!r}")
        if cap < 0 or run < 0:
            raise ValueError(
                f"capacity and runtime of {u.key!r} must not be negative")
        item = {'capacity_kw': cap, 'runtime_h': run,
                'speed_runtime': None}
        if basis == 'capacity_runtime':
            weight = cap * run
            formula = f"{_fmt(cap)} kW × {_fmt(run)} h"
        elif basis == 'runtime':
            weight = run
            formula = f"{_fmt(run)} h"
        else:
            if u.speed_runtime is None:
                raise ValueError(
                    f"indoor unit {u.key!r} has no fan-speed runtime")
            speeds = {}
            for s, h in u.speed_runtime.items():
                if s not in speed_weights:
                    raise ValueError(f"unknown fan speed {s!r}")
                h = to_decimal(h, f"{s} runtime of {u.key!r}")
                if h < 0:
                    raise ValueError(
                        f"{s} runtime of {u.key!r} must not be negative")
                speeds[s] = h
            order = [s for s in speed_weights if s in speeds]
            weight = sum((speed_weights[s] * speeds[s] for s in order),
                         Decimal(0)) * cap
            item['speed_runtime'] = speeds
            item['speed_weights'] = {s: speed_weights[s] for s in order}
            formula = '(%s) × %s kW' % (' + '.join(
                f"{_fmt(speed_weights[s])} × {_fmt(speeds[s])} h"
                for s in order) or '0', _fmt(cap))
        item['weight'] = weight
        item['formula'] = f"{formula} = {_fmt(weight)}"
        inputs[u.key] = item
        weights[u.key] = weight
    if not inputs:
        raise ValueError("no indoor units")
    if all(w == 0 for w in weights.values()):
        if total:
            raise ValueError("no indoor unit ran")
        shares = {k: Decimal('0.00') for k in _ordered(weights)}
    else:
        shares = allocate(total, weights, ENERGY_QUANTUM)
    return AcSplit(basis, inputs, shares, total)


# --------------------------------------------------------- arrears control

def _mode(control_mode):
    if control_mode not in CONTROL_MODES:
        raise ValueError(
            f"unknown control mode {control_mode!r}; use {CONTROL_MODES}")
    return control_mode


def cutoff_needed(balance, emergency_credit, control_mode):
    """Should the meter be tripped now?  controlled: balance <=
    −emergency_credit; controlled_no_cut (欠费不断电/保电) and always_on:
    never; always_off: always.  (No-cut windows: see trip_allowed.)"""
    mode = _mode(control_mode)
    balance = to_decimal(balance, 'balance')
    credit = to_decimal(emergency_credit or 0, 'emergency credit')
    if credit < 0:
        raise ValueError(f"emergency credit must not be negative: {credit}")
    if mode == 'always_off':
        return True
    if mode == 'controlled':
        return balance <= -credit
    return False


def close_needed(balance_before, balance_after, control_mode):
    """Should a close command be queued after a balance change?
    always_on: always; always_off: never; controlled and controlled_no_cut:
    when the change brings the balance from <= 0 to > 0 (for no-cut meters
    this re-closes a meter cut before its mode changed; closing a closed
    meter is harmless)."""
    mode = _mode(control_mode)
    before = to_decimal(balance_before, 'balance before')
    after = to_decimal(balance_after, 'balance after')
    if mode == 'always_on':
        return True
    if mode == 'always_off':
        return False
    return before <= 0 < after


def in_no_cut_window(local_dt, windows, holidays=()):
    """True on a holiday or inside any [start, end) window; a window whose
    end <= start crosses midnight; start == end is the whole day."""
    if holidays and local_dt.date() in holidays:
        return True
    m = local_dt.hour * 60 + local_dt.minute
    for start, end in windows or ():
        for s, e in _spans(start, end):
            if s <= m < e:
                return True
    return False


def trip_allowed(balance, emergency_credit, control_mode, local_dt,
                 windows=(), holidays=()):
    """cutoff_needed and not inside a no-cut window (always_off ignores the
    windows: it is an operator's unconditional trip)."""
    if not cutoff_needed(balance, emergency_credit, control_mode):
        return False
    if control_mode == 'always_off':
        return True
    return not in_no_cut_window(local_dt, windows, holidays)


# ------------------------------------------------------- resale price check

def resale_excess(price, catalogue_price, limit=Decimal('0.15')):
    """转供电加价上限: the amount per kWh above catalogue × (1 + limit),
    exact (not rounded), or None when price <= that cap."""
    price = _check_price(price, 'price')
    catalogue = _check_price(catalogue_price, 'catalogue price')
    limit = _check_price(limit, 'limit')
    cap = catalogue * (1 + limit)
    if price > cap:
        return price - cap
    return None
