# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Usage arithmetic on readings: pure functions, no database.

Values are integers in ten-thousandths (``e4``) so sums are exact on every
backend.  The rules (see docs/readings.md):

* the usage of a reading is its value minus the previous reading's value of
  the same meter and register, multiplied by the meter's multiplier;
* that usage belongs to the period that contains the instant just before the
  reading, so a reading taken at exactly 00:00 closes the previous day;
* a value lower than the previous one is a register **rollover** when the
  previous value was in the top tenth of the register's range and the new one
  in the bottom tenth (usage = what was left to the wrap + the new value);
  otherwise it is a **reset or replacement**: the reading becomes the new
  baseline and contributes zero usage (never a huge negative).
"""
import datetime as dt
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal

E4 = 10000
# XXXXXX.XX registers (DL/T645 energy, CJ/T188 flow) wrap at 1,000,000
ROLLOVER_E4 = 1_000_000 * E4

REGISTERS = [
    ('energy_total', "Forward Active Total Energy"),
    ('energy_t1', "Forward Active Energy T1 (Sharp)"),
    ('energy_t2', "Forward Active Energy T2 (Peak)"),
    ('energy_t3', "Forward Active Energy T3 (Flat)"),
    ('energy_t4', "Forward Active Energy T4 (Valley)"),
    ('energy_reverse', "Reverse Active Total Energy"),
    ('water_flow', "Cumulative Flow"),
    ('ac_runtime', "AC Runtime"),
    ('ac_capacity', "AC Capacity Level"),
    ('voltage', "Voltage"),
    ('current', "Current"),
    ('power', "Active Power"),
    ('remaining_energy', "Remaining Energy"),
    ('remaining_money', "Remaining Money"),
    ]
REGISTER_NAMES = dict(REGISTERS)
CUMULATIVE = frozenset({
        'energy_total', 'energy_t1', 'energy_t2', 'energy_t3', 'energy_t4',
        'energy_reverse', 'water_flow', 'ac_runtime'})

ONE_US = dt.timedelta(microseconds=1)


def to_e4(value):
    "A reading value (int, float, str or Decimal) as integer ten-thousandths"
    if isinstance(value, int):
        return value * E4
    if isinstance(value, float):
        return int(round(value * E4))
    return int((Decimal(str(value)) * E4).quantize(
            Decimal(1), rounding=ROUND_HALF_UP))


def from_e4(value_e4, digits=4):
    if value_e4 is None:
        return None
    return (Decimal(value_e4) / E4).quantize(Decimal(1).scaleb(-digits))


def step(prev_e4, value_e4):
    """Usage between two consecutive readings, and the event it reveals
    (None, 'rollover' or 'reset')."""
    delta = value_e4 - prev_e4
    if delta >= 0:
        return delta, None
    if prev_e4 >= ROLLOVER_E4 * 9 // 10 and value_e4 < ROLLOVER_E4 // 10:
        return ROLLOVER_E4 - prev_e4 + value_e4, 'rollover'
    return 0, 'reset'


def contributions(sequence):
    "[(time, usage_e4, event)] for consecutive pairs of a sorted sequence"
    result = []
    for (t0, v0), (t1, v1) in zip(sequence, sequence[1:]):
        delta, event = step(v0, v1)
        result.append((t1, delta, event))
    return result


def usage_changes(window, new):
    """How the usage per reading time changes when ``new`` readings join the
    stored ones.

    ``window`` are the stored readings (time, value_e4), sorted, from the last
    one before the earliest new reading to the first one after the latest new
    reading (both included when they exist).  ``new`` are readings not yet
    stored, sorted, none at a time already in ``window``.
    Returns (changes: {time: usage_delta_e4}, events: [(time, event)]) where
    events are those revealed by the new readings.
    """
    changes = Counter()
    for t, delta, _ in contributions(window):
        changes[t] -= delta
    new_times = {t for t, _ in new}
    events = []
    merged = sorted(window + new)
    for (t0, v0), (t1, v1) in zip(merged, merged[1:]):
        delta, event = step(v0, v1)
        changes[t1] += delta
        if event and (t0 in new_times or t1 in new_times):
            events.append((t1, event))
    return {t: d for t, d in changes.items() if d}, events


def scale(usage_e4, multiplier):
    "Usage in register units × multiplier, rounded half-up to e4"
    if multiplier == 1:
        return usage_e4
    return int((Decimal(usage_e4) * Decimal(multiplier)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP))


def periods(local_time):
    """The (hour, day, month, year) keys of the period a reading taken at
    ``local_time`` closes (the instant just before it)."""
    t = local_time - ONE_US
    day = t.date()
    return (t.replace(minute=0, second=0, microsecond=0), day,
        day.replace(day=1), day.replace(month=1, day=1))
