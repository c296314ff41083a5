# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The alarm rules as plain functions (no database): thresholds, the night
window, stagnant and offline meters, and the low-balance staging of both
product modes.  alarm.py feeds them the figures and stores what they say.

Conventions: a limit is crossed only when the value is strictly over it
(equal to the limit is not an alarm); a remaining amount is low when it is
at or below the threshold ("one message at the threshold")."""
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

# the alarm kinds and whether a later evaluation closes them when the
# condition is gone ('condition') or when their period ends ('period');
# 'event' kinds are records of something that happened (closed at once
# unless they need a person: see LOCKOUT)
CONDITION, PERIOD, EVENT = 'condition', 'period', 'event'
KINDS = {
    'over_voltage': CONDITION,
    'over_current': CONDITION,
    'over_load': CONDITION,
    'day_usage': PERIOD,
    'month_usage': PERIOD,
    'night_usage': PERIOD,
    'low_remaining': CONDITION,
    'stagnant': CONDITION,
    'offline': CONDITION,
    'relay_mismatch': CONDITION,
    'reverse_energy': PERIOD,
    'load_trip': EVENT,
    'load_lockout': CONDITION,
    }
# kinds that make the meter red (fault) rather than yellow (alarm)
FAULT_KINDS = frozenset({'relay_mismatch', 'load_lockout'})


def over(value, limit):
    "True when a limit is set and the value is strictly over it"
    if value is None or limit is None or limit <= 0:
        return False
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    if not isinstance(limit, Decimal):
        limit = Decimal(str(limit))
    return value > limit


def parse_hhmm(text):
    "'07:30' → time(7, 30); ValueError on anything else"
    text = (text or '').strip()
    hours, _, minutes = text.partition(':')
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f'{text!r} is not HH:MM')
    return dt.time(int(hours), int(minutes))


def night_window(local, start, end):
    """The night (start → end, local naive datetimes) that contains
    ``local`` or, outside the night, the last one that ended before it.
    ``start`` and ``end`` are times; a night may run across midnight
    (23:00 → 06:00) or not (01:00 → 05:00)."""
    day = local.date()
    one = dt.timedelta(days=1)

    def night_of(date):
        begin = dt.datetime.combine(date, start)
        finish = dt.datetime.combine(date, end)
        if finish <= begin:
            finish += one
        return begin, finish

    for date in (day, day - one):
        begin, finish = night_of(date)
        if begin <= local < finish:
            return begin, finish
    # not inside a night: the latest night that has ended
    for date in (day, day - one, day - 2 * one):
        begin, finish = night_of(date)
        if finish <= local:
            return begin, finish
    raise AssertionError('unreachable')


def offline(last_read_at, now, cycles, cycle_minutes):
    """No reading for ``cycles`` read cycles: last_read_at (or never) is at
    least cycles × cycle before now"""
    if not cycles or cycles <= 0:
        return False
    if last_read_at is None:
        return True
    return now - last_read_at >= dt.timedelta(
        minutes=cycles * (cycle_minutes or 60))


def stagnant(occupied, days_read, usage, days):
    """静止状态报警: the room has a tenant and the meter's main register did
    not move over the last ``days`` days.  ``days_read`` is how many of
    those days had readings and ``usage`` their total; a meter without
    readings every day is offline, not stagnant."""
    if not occupied or not days or days <= 0:
        return False
    return days_read >= days and not usage


@dataclass(frozen=True)
class Staging:
    "What to send for a low remaining amount"
    stage: int          # 0 above the threshold, 1..3 the stages reached
    send: bool          # a message is due now


def low_stage(remaining, threshold, ratios=(Decimal('0.5'), Decimal('0.2'))):
    """0 above the threshold, 1 at or below it, 2 at or below threshold ×
    ratios[0], 3 at or below threshold × ratios[1]"""
    if remaining is None or threshold is None or threshold <= 0:
        return 0
    remaining = Decimal(str(remaining))
    threshold = Decimal(str(threshold))
    if remaining > threshold:
        return 0
    stage = 1
    for ratio in ratios:
        if remaining <= threshold * Decimal(str(ratio)):
            stage += 1
    return stage


def staged(previous_stage, stage):
    """Mode b (分级): one message at the threshold, one below the first
    ratio, one below the second — three in all.  A drop over several
    stages at once sends one message (for the deepest); going back up
    without a recharge over the threshold sends nothing."""
    return Staging(max(stage, previous_stage),
        stage > previous_stage and stage > 0)


def daily(stage, now_local, send_at, last_sent):
    """Mode a (每日): while below the threshold, one message a day at the
    set time (the first at the first set time after the crossing)."""
    if stage <= 0:
        return Staging(0, False)
    due = now_local.time() >= send_at and last_sent != now_local.date()
    return Staging(stage, due)


def settlement_date(year, month, settlement_day):
    "The settlement day of a month (its last day when the month is shorter)"
    first = dt.date(year, month, 1)
    next_month = (first + dt.timedelta(days=32)).replace(day=1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return first.replace(day=min(settlement_day, last_day))


def settlement_period(today, settlement_day):
    """On the settlement day (月底结算日): the period (first day, day after
    the last) the monthly-usage message (月用量短信) reports — from the
    previous settlement day to this one.  None on any other day."""
    if not settlement_day:
        return None
    this = settlement_date(today.year, today.month, settlement_day)
    if today != this:
        return None
    previous = previous_month(today)
    return (settlement_date(previous.year, previous.month, settlement_day),
        this)


def previous_month(today):
    first = today.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


def meter_state(relay, current_state, open_kinds):
    """The status-board state of a meter from its relay and open alarms:
    cut off (black) wins, then offline (grey), fault (red), alarm
    (yellow), normal (white)"""
    if relay == 'open' and current_state == 'cutoff':
        return 'cutoff'
    if 'offline' in open_kinds:
        return 'offline'
    if open_kinds & FAULT_KINDS:
        return 'fault'
    if open_kinds:
        return 'alarm'
    return 'normal'


def parse_power_bands(text):
    """分时功率: lines 'HH:MM kW' (from that time on, the limit is kW) →
    sorted [(time, Decimal)].  ValueError naming the bad line."""
    bands = []
    for number, line in enumerate((text or '').splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.replace(',', ' ').replace('，', ' ').split()
        try:
            if len(parts) != 2:
                raise ValueError
            start = parse_hhmm(parts[0])
            limit = Decimal(parts[1])
            if not limit.is_finite() or limit <= 0:
                raise ValueError
        except (ValueError, ArithmeticError):
            raise ValueError(f'line {number}: {line!r}') from None
        bands.append((start, limit))
    bands.sort()
    if len({b[0] for b in bands}) != len(bands):
        raise ValueError('two bands start at the same time')
    return bands


def power_limit_at(bands, local_time, default=None):
    "The time-of-day power limit in force at a local time (across midnight)"
    if not bands:
        return default
    limit = bands[-1][1]
    for start, value in bands:
        if start <= local_time:
            limit = value
    return limit
