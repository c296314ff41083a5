# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The alarm rules on fixed figures (no database)"
import datetime as dt
from decimal import Decimal as D

import pytest

from trytond.modules.dh_alarm import rules

T = dt.time


def test_over_is_strict():
    assert not rules.over(D('240'), D('240'))
    assert rules.over(D('240.1'), D('240'))
    assert not rules.over(None, D(1))
    assert not rules.over(D(5), None)
    assert not rules.over(D(5), D(0))      # 0 = not set


@pytest.mark.parametrize('local, window', [
    # inside, before midnight
    ((2026, 11, 20, 23, 30), ((2026, 11, 20, 23), (2026, 11, 21, 6))),
    # inside, after midnight: the night that started yesterday
    ((2026, 11, 21, 5, 59), ((2026, 11, 20, 23), (2026, 11, 21, 6))),
    # the end is not inside: the last night that ended
    ((2026, 11, 21, 6, 0), ((2026, 11, 20, 23), (2026, 11, 21, 6))),
    ((2026, 11, 21, 22, 59), ((2026, 11, 20, 23), (2026, 11, 21, 6))),
    # month end
    ((2026, 12, 1, 2, 0), ((2026, 11, 30, 23), (2026, 12, 1, 6))),
    ])
def test_night_window_across_midnight(local, window):
    begin, end = rules.night_window(dt.datetime(*local), T(23), T(6))
    assert (begin, end) == (dt.datetime(*window[0]), dt.datetime(*window[1]))


def test_night_window_same_day():
    begin, end = rules.night_window(dt.datetime(2026, 11, 21, 3), T(1), T(5))
    assert (begin, end) == (dt.datetime(2026, 11, 21, 1),
        dt.datetime(2026, 11, 21, 5))
    begin, end = rules.night_window(dt.datetime(2026, 11, 21, 0, 30), T(1),
        T(5))
    assert begin == dt.datetime(2026, 11, 20, 1)


@pytest.mark.parametrize('remaining, stage', [
    ('20.01', 0), ('20', 1), ('10.01', 1), ('10', 2), ('4.01', 2), ('4', 3),
    ('-3', 3)])
def test_low_stage_boundaries(remaining, stage):
    assert rules.low_stage(D(remaining), D(20)) == stage


def test_staged_sends_three_at_most():
    stage, messages = 0, 0
    for remaining in ['25', '20', '15', '10', '9', '4', '1', '0']:
        step = rules.staged(stage, rules.low_stage(D(remaining), D(20)))
        messages += step.send
        stage = step.stage
    assert (stage, messages) == (3, 3)
    # a drop straight past 20 % is one message
    assert rules.staged(0, 3) == rules.Staging(3, True)
    # back up without a recharge over the threshold: nothing
    assert rules.staged(3, 1) == rules.Staging(3, False)


def test_daily_once_a_day_at_the_set_time():
    at = T(9)
    day = dt.datetime(2026, 11, 20)
    assert not rules.daily(1, day.replace(hour=8, minute=59), at, None).send
    assert rules.daily(1, day.replace(hour=9), at, None).send
    assert not rules.daily(1, day.replace(hour=10), at, day.date()).send
    assert rules.daily(1, day.replace(day=21, hour=9), at, day.date()).send
    assert not rules.daily(0, day.replace(hour=10), at, None).send


@pytest.mark.parametrize('today, day, period', [
    ((2026, 11, 1), 1, ((2026, 10, 1), (2026, 11, 1))),
    ((2026, 11, 2), 1, None),
    ((2026, 2, 28), 31, ((2026, 1, 31), (2026, 2, 28))),
    ((2026, 3, 31), 31, ((2026, 2, 28), (2026, 3, 31))),
    ((2026, 3, 30), 31, None),
    ((2026, 1, 15), 15, ((2025, 12, 15), (2026, 1, 15))),
    ])
def test_settlement_period_month_end(today, day, period):
    result = rules.settlement_period(dt.date(*today), day)
    if period is None:
        assert result is None
    else:
        assert result == (dt.date(*period[0]), dt.date(*period[1]))


def test_offline_cycles():
    now = dt.datetime(2026, 11, 20, 12)
    assert rules.offline(None, now, 3, 60)
    assert not rules.offline(now - dt.timedelta(minutes=179), now, 3, 60)
    assert rules.offline(now - dt.timedelta(minutes=180), now, 3, 60)
    assert not rules.offline(None, now, 0, 60)


def test_stagnant():
    assert rules.stagnant(True, 3, 0, 3)
    assert not rules.stagnant(False, 3, 0, 3)          # no tenant
    assert not rules.stagnant(True, 2, 0, 3)           # too few days read
    assert not rules.stagnant(True, 3, 5, 3)           # it moved
    assert not rules.stagnant(True, 3, 0, 0)           # off


def test_meter_state_priorities():
    assert rules.meter_state('open', 'cutoff', {'offline'}) == 'cutoff'
    assert rules.meter_state('closed', 'normal', {'offline', 'stagnant'}) \
        == 'offline'
    assert rules.meter_state('closed', 'normal', {'relay_mismatch',
                'over_voltage'}) == 'fault'
    assert rules.meter_state('closed', 'alarm', {'over_voltage'}) == 'alarm'
    assert rules.meter_state('closed', 'alarm', set()) == 'normal'


def test_power_bands():
    bands = rules.parse_power_bands('23:00 2\n07:00, 8\n\n')
    assert bands == [(T(7), D(8)), (T(23), D(2))]
    assert rules.power_limit_at(bands, T(6, 59)) == D(2)    # across midnight
    assert rules.power_limit_at(bands, T(7)) == D(8)
    assert rules.power_limit_at(bands, T(23, 30)) == D(2)
    assert rules.power_limit_at([], T(1), D(9)) == D(9)
    for bad in ['7 8', '07:00', '07:00 -1', '07:00 2\n07:00 3', '24:00 1']:
        with pytest.raises(ValueError):
            rules.parse_power_bands(bad)
