# This file is part of DH metering.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""Pins the billing arithmetic of DESIGN.md section 5 (rules.py).

Run: PYTHONPATH=addons/dh_billing .venv/bin/python -m pytest \
         addons/dh_billing/tests/test_rules.py -q
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import rules
except ImportError:     # installed as a Tryton module
    from trytond.modules.dh_billing import rules

import datetime as dt
from decimal import Decimal as D

import pytest
from hypothesis import given, settings, strategies as st

AcSplit, IndoorUnit, Line, Tariff = (
    rules.AcSplit, rules.IndoorUnit, rules.Line, rules.Tariff)
ac_split, allocate, allocate_equal = (
    rules.ac_split, rules.allocate, rules.allocate_equal)
band_at, bill_registers, bill_tiers = (
    rules.band_at, rules.bill_registers, rules.bill_tiers)
close_needed, cutoff_needed, in_no_cut_window, trip_allowed = (
    rules.close_needed, rules.cutoff_needed, rules.in_no_cut_window,
    rules.trip_allowed)
energy, energy_recharge, money, price_for = (
    rules.energy, rules.energy_recharge, rules.money, rules.price_for)
resale_excess, split_interval, validate_tariff = (
    rules.resale_excess, rules.split_interval, rules.validate_tariff)

FAST = settings(max_examples=150, deadline=None)


def exact(d):
    "Decimal equality that also pins the exponent (2 decimals)."
    return d, d.as_tuple().exponent


# ----------------------------------------------------------------- numbers

@pytest.mark.parametrize('x, want', [
    ('0.005', '0.01'), ('0.004', '0.00'), ('-0.005', '-0.01'),
    ('2.675', '2.68'), (2.675, '2.68'), (1, '1.00'), (D('999.595'), '999.60'),
])
def test_money_energy_half_up(x, want):
    assert exact(money(x)) == exact(D(want))
    assert exact(energy(x)) == exact(D(want))


@pytest.mark.parametrize('bad', [None, 'abc', float('nan'), D('Infinity'),
                                 True])
def test_money_rejects(bad):
    with pytest.raises(ValueError):
        money(bad)


# ---------------------------------------------------- energy-mode recharge

def test_worked_example_multiplier_1():
    r = energy_recharge(D('1000'), D('0.40'), D('1.2'), D('1.0'))
    assert r.kwh == 833 and isinstance(r.kwh, int)
    assert exact(r.paid) == exact(D('999.60'))
    assert exact(r.wallet_after) == exact(D('0.80'))
    assert exact(r.meter_energy) == exact(D('833.00'))


def test_worked_example_multiplier_30():
    r = energy_recharge(D('1000'), D('0.40'), D('1.2'), D('30'))
    assert (r.kwh, r.paid, r.wallet_after) == (833, D('999.60'), D('0.80'))
    assert exact(r.meter_energy) == exact(D('27.77'))   # 833/30 = 27.7666…


def test_worked_example_floats_and_strings():
    assert energy_recharge(1000, 0.4, 1.2, 1) == energy_recharge(
        '1000.00', '0.40', '1.2', '1.0')


def test_change_is_spent_next_time():
    first = energy_recharge(D('1000'), D('0.40'), D('1.2'), 1)
    second = energy_recharge(D('100'), first.wallet_after, D('1.2'), 1)
    # 100.80 / 1.2 = 84 exactly: the change is used up
    assert (second.kwh, second.paid, second.wallet_after) == (
        84, D('100.80'), D('0.00'))


def test_less_than_one_kwh_goes_to_wallet():
    r = energy_recharge(D('1.00'), D('0.10'), D('1.2'), 1)
    assert (r.kwh, r.paid, r.wallet_after, r.meter_energy) == (
        0, D('0.00'), D('1.10'), D('0.00'))


def test_price_with_four_decimals_never_overdraws():
    r = energy_recharge(D('1.00'), D('0'), D('0.3333'), 1)
    assert (r.kwh, r.paid, r.wallet_after) == (3, D('1.00'), D('0.00'))


@pytest.mark.parametrize('amount, wallet, price, mult, msg', [
    (0, 0, '1.2', 1, 'amount'), (-5, 0, '1.2', 1, 'amount'),
    (100, 0, 0, 1, 'price'), (100, 0, '-1.2', 1, 'price'),
    (100, 0, '1.2', 0, 'multiplier'), (100, 0, '1.2', -1, 'multiplier'),
    (100, '-0.01', '1.2', 1, 'wallet'),
    ('100.001', 0, '1.2', 1, 'fen'), (100, '0.005', '1.2', 1, 'fen'),
])
def test_energy_recharge_rejects(amount, wallet, price, mult, msg):
    with pytest.raises(ValueError, match=msg):
        energy_recharge(amount, wallet, price, mult)


cents = st.integers(min_value=1, max_value=10**8).map(lambda c: D(c) / 100)
wallets = st.integers(min_value=0, max_value=10**5).map(lambda c: D(c) / 100)
prices = st.integers(min_value=1, max_value=50000).map(lambda p: D(p) / 10000)
multipliers = st.sampled_from([D(1), D('1.0'), D(5), D(30), D(40), D(200),
                               D('1.5')])


@FAST
@given(cents, wallets, prices, multipliers)
def test_energy_recharge_properties(amount, wallet, price, mult):
    r = energy_recharge(amount, wallet, price, mult)
    assert r.kwh == int((amount + wallet) // price)
    assert r.paid == money(r.kwh * price)
    assert r.paid + r.wallet_after == amount + wallet
    assert D(0) <= r.wallet_after
    # the change cannot buy another whole kWh
    assert (r.kwh + 1) * price > amount + wallet
    assert r.meter_energy == energy(D(r.kwh) / mult)
    assert r.paid.as_tuple().exponent == -2


# ------------------------------------------------------------------ tariffs

TOU_PRICES = {'t1': D('1.3'), 't2': D('1.1'), 't3': D('0.7'),
              't4': D('0.35')}
BANDS = [('00:00', '08:00', 't4'), ('08:00', '10:00', 't3'),
         ('10:00', '12:00', 't2'), ('12:00', '14:00', 't3'),
         ('14:00', '17:00', 't2'), ('17:00', '19:00', 't1'),
         ('19:00', '22:00', 't2'), ('22:00', '24:00', 't3')]
# valley crossing midnight 23:00-07:00
NIGHT = [('23:00', '07:00', 't4'), ('07:00', '10:00', 't3'),
         ('10:00', '15:00', 't2'), ('15:00', '18:00', 't3'),
         ('18:00', '21:00', 't1'), ('21:00', '23:00', 't2')]
HOLIDAY = dt.date(2025, 10, 1)


def tou(bands=BANDS, **kw):
    t = Tariff(kind='tou', tou_prices=dict(TOU_PRICES), bands=bands, **kw)
    validate_tariff(t)
    return t


@pytest.mark.parametrize('hhmm, band', [
    ('00:00', 't4'), ('07:59', 't4'), ('08:00', 't3'), ('11:59', 't2'),
    ('17:00', 't1'), ('18:59', 't1'), ('19:00', 't2'), ('23:59', 't3')])
def test_band_at(hhmm, band):
    h, m = map(int, hhmm.split(':'))
    assert band_at(tou(), dt.time(h, m)) == band


@pytest.mark.parametrize('hhmm, band', [
    ('23:00', 't4'), ('23:59', 't4'), ('00:00', 't4'), ('06:59', 't4'),
    ('07:00', 't3'), ('22:59', 't2'), ('18:30', 't1')])
def test_band_at_crossing_midnight(hhmm, band):
    h, m = map(int, hhmm.split(':'))
    t = tou(NIGHT)
    assert band_at(t, dt.time(h, m)) == band
    assert band_at(t, dt.datetime(2025, 3, 3, h, m, 59)) == band


def test_band_at_holiday():
    t = tou(NIGHT, holidays={HOLIDAY}, holiday_band='t3')
    assert band_at(t, dt.datetime(2025, 10, 1, 18, 30)) == 't3'
    assert band_at(t, dt.datetime(2025, 10, 2, 18, 30)) == 't1'
    assert band_at(t, dt.time(18, 30)) == 't1'     # a bare time: no date


def test_single_band_whole_day():
    t = Tariff(kind='tou', tou_prices={'t3': D('0.7')},
               bands=[('06:00', '06:00', 't3')])
    validate_tariff(t)
    assert band_at(t, dt.time(5, 59)) == band_at(t, dt.time(6)) == 't3'


@pytest.mark.parametrize('tariff, msg', [
    (Tariff(kind='tou', tou_prices=TOU_PRICES,
            bands=BANDS[:-1]), 'gap at 22:00'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES,
            bands=BANDS + [('21:30', '22:30', 't1')]), 'overlap at 21:30'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES,
            bands=NIGHT[:1] + [('06:00', '10:00', 't3')] + NIGHT[2:]),
     'overlap at 06:00'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES,
            bands=[('00:00', '24:00', 't5')]), 'unknown band'),
    (Tariff(kind='tou', tou_prices={'t1': D(1)},
            bands=[('00:00', '24:00', 't2')]), 'no price'),
    (Tariff(kind='tou', tou_prices={'t1': D('-0.1')},
            bands=[('00:00', '24:00', 't1')]), 'negative'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES,
            bands=[('00:00', '25:00', 't1')]), 'range'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES,
            bands=[('0000', '2400', 't1')]), 'HH:MM'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES, bands=[]), 'bands'),
    (Tariff(kind='tou', tou_prices=TOU_PRICES, bands=BANDS,
            holidays={HOLIDAY}), 'holiday_band'),
    (Tariff(kind='flat', price=D('-1')), 'negative'),
    (Tariff(kind='flat'), 'price or tiers'),
    (Tariff(kind='zone', price=D(1)), 'kind'),
    (Tariff(kind='flat', tiers=[(D(200), D('0.5')), (D(100), D('0.6')),
                                (None, D(1))]), 'increase'),
    (Tariff(kind='flat', tiers=[(D(200), D('0.5'))]), 'unbounded'),
    (Tariff(kind='flat', tiers=[(None, D('0.5')), (D(9), D(1))]),
     'unbounded'),
    (Tariff(kind='flat', tiers=[(D(200), D('-0.5')), (None, D(1))]),
     'negative'),
])
def test_validate_tariff_rejects(tariff, msg):
    with pytest.raises(ValueError, match=msg):
        validate_tariff(tariff)


def test_price_for():
    flat = Tariff(price=D('1.2'))
    assert price_for(flat, 'energy_total') == D('1.2')
    assert price_for(flat, 'energy_total', override=D('1.5')) == D('1.5')
    t = tou()
    assert price_for(t, 't1') == price_for(t, 'energy_t1') == D('1.3')
    assert price_for(t, 'energy_t4', override=D('0.9')) == D('0.9')
    assert price_for(t, 't2', override={'t2': D('2')}) == D('2')
    with pytest.raises(ValueError):
        price_for(t, 'energy_total')
    with pytest.raises(ValueError):
        price_for(flat, 'energy_total', override=D('-1'))


def test_bill_registers_flat():
    lines = bill_registers(Tariff(price=D('1.2')),
                           {'energy_total': D('12.345')})
    # energy rounded first (12.35), amount from the rounded energy
    assert lines == [Line('energy_total', D('12.35'), D('1.2'),
                          D('14.82'))]
    lines = bill_registers(Tariff(price=D('1.2')),
                           {'energy_total': D('10')}, override_price='0.5')
    assert lines == [Line('energy_total', D('10.00'), D('0.5'), D('5.00'))]
    assert bill_registers(Tariff(price=D(1)), {'energy_total': 0}) == []


def test_bill_registers_tou_from_registers():
    deltas = {'energy_total': D('10'), 'energy_t1': D('1.005'),
              'energy_t2': D('3'), 'energy_t3': D('0'),
              'energy_t4': D('6')}
    lines = bill_registers(tou(), deltas)
    assert lines == [
        Line('energy_t1', D('1.01'), D('1.3'), D('1.31')),
        Line('energy_t2', D('3.00'), D('1.1'), D('3.30')),
        Line('energy_t4', D('6.00'), D('0.35'), D('2.10')),
    ]


def test_bill_registers_tou_without_registers_needs_split():
    with pytest.raises(ValueError, match='split_interval'):
        bill_registers(tou(), {'energy_total': D('5')})
    with pytest.raises(ValueError, match='negative'):
        bill_registers(tou(), {'energy_t1': D('-1')})


def test_split_then_bill():
    t = tou()
    parts = split_interval(t, dt.datetime(2025, 3, 3, 16),
                           dt.datetime(2025, 3, 3, 18), D('10'))
    assert parts == {'t1': D('5.00'), 't2': D('5.00')}
    assert [ln.amount for ln in bill_registers(t, parts)] == [
        D('6.50'), D('5.50')]


def test_split_interval_crossing_midnight_and_days():
    t = tou(NIGHT)
    # 22:00 -> 08:00: 1 h t2, 8 h t4, 1 h t3
    parts = split_interval(t, dt.datetime(2025, 3, 3, 22),
                           dt.datetime(2025, 3, 4, 8), D('10'))
    assert parts == {'t2': D('1.00'), 't3': D('1.00'), 't4': D('8.00')}
    assert list(parts) == ['t2', 't3', 't4']
    # two whole days: 3 h t1, 7 h t2, 6 h t3, 8 h t4 per day
    parts = split_interval(t, dt.datetime(2025, 3, 3),
                           dt.datetime(2025, 3, 5), D('48'))
    assert parts == {'t1': D('6.00'), 't2': D('14.00'), 't3': D('12.00'),
                     't4': D('16.00')}


def test_split_interval_holiday():
    t = tou(NIGHT, holidays={HOLIDAY}, holiday_band='t4')
    parts = split_interval(t, dt.datetime(2025, 9, 30, 21),
                           dt.datetime(2025, 10, 1, 3), D('6'))
    # 21-23 t2 (2 h), 23-24 t4, then the holiday: all t4
    assert parts == {'t2': D('2.00'), 't4': D('4.00')}


def test_split_interval_remainder():
    # three equal thirds of 0.10: 0.04 to the first band, deterministic
    t = Tariff(kind='tou', tou_prices=TOU_PRICES,
               bands=[('00:00', '08:00', 't3'), ('08:00', '16:00', 't1'),
                      ('16:00', '24:00', 't2')])
    validate_tariff(t)
    parts = split_interval(t, dt.datetime(2025, 1, 1),
                           dt.datetime(2025, 1, 2), D('0.10'))
    assert parts == {'t1': D('0.04'), 't2': D('0.03'), 't3': D('0.03')}
    # tiny energy over four equal bands never goes negative
    t4 = Tariff(kind='tou', tou_prices=TOU_PRICES, bands=[
        ('00:00', '06:00', 't1'), ('06:00', '12:00', 't2'),
        ('12:00', '18:00', 't3'), ('18:00', '24:00', 't4')])
    parts = split_interval(t4, dt.datetime(2025, 1, 1),
                           dt.datetime(2025, 1, 2), D('0.02'))
    assert parts == {'t1': D('0.01'), 't2': D('0.01'), 't3': D('0.00'),
                     't4': D('0.00')}


def test_split_interval_errors():
    t = tou()
    a = dt.datetime(2025, 1, 1, 12)
    assert split_interval(t, a, a, 0) == {}
    with pytest.raises(ValueError):
        split_interval(t, a, a, D(1))
    with pytest.raises(ValueError):
        split_interval(t, a, a - dt.timedelta(minutes=1), D(1))
    with pytest.raises(ValueError):
        split_interval(Tariff(price=D(1)), a, a + dt.timedelta(hours=1), 1)


@FAST
@given(st.datetimes(min_value=dt.datetime(2024, 1, 1),
                    max_value=dt.datetime(2026, 1, 1)),
       st.integers(min_value=1, max_value=4 * 24 * 3600),
       st.integers(min_value=0, max_value=10**7),
       st.booleans())
def test_split_interval_sums_exactly(start, seconds, centi_kwh, night):
    t = tou(NIGHT if night else BANDS,
            holidays={HOLIDAY, dt.date(2025, 2, 1)}, holiday_band='t4')
    total = D(centi_kwh) / 100
    end = start + dt.timedelta(seconds=seconds)
    parts = split_interval(t, start, end, total)
    assert sum(parts.values()) == total
    assert all(v >= 0 for v in parts.values())
    assert set(parts) <= {band_at(t, start + dt.timedelta(seconds=s))
                          for s in range(0, seconds, 60)} | {
        band_at(t, end - dt.timedelta(microseconds=1))}
    assert split_interval(t, start, end, total) == parts


TIERED = Tariff(kind='flat', tiers=[(D('200'), D('0.5')),
                                    (D('400'), D('0.55')),
                                    (None, D('0.8'))])


def test_bill_tiers_across_boundaries():
    validate_tariff(TIERED)
    assert bill_tiers(TIERED, D('150'), D('100')) == [
        Line('tier1', D('50.00'), D('0.5'), D('25.00')),
        Line('tier2', D('50.00'), D('0.55'), D('27.50'))]
    assert bill_tiers(TIERED, D('150'), D('300')) == [
        Line('tier1', D('50.00'), D('0.5'), D('25.00')),
        Line('tier2', D('200.00'), D('0.55'), D('110.00')),
        Line('tier3', D('50.00'), D('0.8'), D('40.00'))]
    assert bill_tiers(TIERED, D('200'), D('0.01')) == [
        Line('tier2', D('0.01'), D('0.55'), D('0.01'))]   # 0.0055 -> 0.01
    assert bill_tiers(TIERED, D('199.99'), D('0.02')) == [
        Line('tier1', D('0.01'), D('0.5'), D('0.01')),
        Line('tier2', D('0.01'), D('0.55'), D('0.01'))]
    assert bill_tiers(TIERED, D('500'), D('10')) == [
        Line('tier3', D('10.00'), D('0.8'), D('8.00'))]
    assert bill_tiers(TIERED, D('0'), D('0')) == []


def test_bill_registers_tiered():
    assert bill_registers(TIERED, {'energy_total': D('100')},
                          month_to_date_kwh=D('150')) == bill_tiers(
        TIERED, D('150'), D('100'))
    with pytest.raises(ValueError, match='month_to_date'):
        bill_registers(TIERED, {'energy_total': D('100')})
    # the meter's own price overrides the tiers
    assert bill_registers(TIERED, {'energy_total': D('100')},
                          override_price=D('1')) == [
        Line('energy_total', D('100.00'), D('1'), D('100.00'))]


@FAST
@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_bill_tiers_energy_conserved(done, use):
    done, use = D(done) / 100, D(use) / 100
    lines = bill_tiers(TIERED, done, use)
    assert sum((ln.energy for ln in lines), D(0)) == use
    # running the same energy in two halves lands in the same tiers
    half = energy(use / 2)
    a = bill_tiers(TIERED, done, half)
    b = bill_tiers(TIERED, done + half, use - half)
    per = {}
    for ln in a + b:
        per[ln.register] = per.get(ln.register, D(0)) + ln.energy
    assert per == {ln.register: ln.energy for ln in lines}


# --------------------------------------------------------------- allocation

def test_allocate_equal_100_over_3():
    # the extra cent goes to the key that sorts first
    assert allocate_equal(D('100.00'), ['b', 'c', 'a']) == {
        'a': D('33.34'), 'b': D('33.33'), 'c': D('33.33')}
    assert allocate_equal(D('100.00'), [103, 101, 102]) == {
        101: D('33.34'), 102: D('33.33'), 103: D('33.33')}


def test_allocate_examples():
    assert allocate(D('10'), {'a': D(1), 'b': D(3)}) == {
        'a': D('2.50'), 'b': D('7.50')}
    # largest remainder beats key order: 0.666… > 0.333…
    assert allocate(D('0.03'), {'a': D(1), 'b': D(2)}) == {
        'a': D('0.01'), 'b': D('0.02')}
    assert allocate(D('0.01'), {'a': D(1), 'b': D(2)}) == {
        'a': D('0.00'), 'b': D('0.01')}
    assert allocate(D('1'), {'a': 0, 'b': 0}) == {
        'a': D('0.50'), 'b': D('0.50')}
    assert allocate(D('1'), {'a': 0, 'b': 1, 'c': 0}) == {
        'a': D('0.00'), 'b': D('1.00'), 'c': D('0.00')}
    assert allocate(D('-0.10'), {'a': 1, 'b': 1, 'c': 1}) == {
        'a': D('-0.04'), 'b': D('-0.03'), 'c': D('-0.03')}
    assert allocate(D('7'), {'a': 1, 'b': 1}, quantum=D('1')) == {
        'a': D('4'), 'b': D('3')}
    assert allocate(D('0.015'), {'a': 1}) == {'a': D('0.02')}
    assert allocate(0, {}) == {}


@pytest.mark.parametrize('total, weights, msg', [
    (D(1), {'a': D(-1), 'b': D(2)}, 'negative'),
    (D(1), {}, 'nothing'),
    (D(1), {'a': 1, 2: 1}, 'orderable'),
])
def test_allocate_rejects(total, weights, msg):
    with pytest.raises(ValueError, match=msg):
        allocate(total, weights)


keys = st.lists(st.text('abcdefgh', min_size=1, max_size=3), min_size=1,
                max_size=12, unique=True)
weight = st.one_of(
    st.just(D(0)),
    st.integers(0, 10**6).map(D),
    st.decimals(min_value=0, max_value=10**4, places=4))


@st.composite
def allocations(draw):
    ks = draw(keys)
    weights = {k: draw(weight) for k in ks}
    total = D(draw(st.integers(0, 10**9))) / 100
    return total, weights


@FAST
@given(allocations())
def test_allocate_properties(case):
    total, weights = case
    shares = allocate(total, weights)
    assert set(shares) == set(weights)
    assert sum(shares.values()) == total                     # exact
    assert all(v >= 0 for v in shares.values())              # never negative
    assert all(v.as_tuple().exponent == -2 for v in shares.values())
    wsum = sum(weights.values())
    for k, w in weights.items():
        if wsum:
            ideal = total * w / wsum
            assert abs(shares[k] - ideal) < D('0.01')        # within a cent
            if w == 0:
                assert shares[k] == 0
    for a in weights:                                        # monotone
        for b in weights:
            if weights[a] > weights[b]:
                assert shares[a] >= shares[b]
            if weights[a] == weights[b]:
                assert abs(shares[a] - shares[b]) <= D('0.01')
    # deterministic and independent of the mapping's order
    assert allocate(total, dict(reversed(list(weights.items())))) == shares
    assert allocate(total, weights) == shares


@FAST
@given(allocations())
def test_allocate_energy_quantum(case):
    total, weights = case
    shares = allocate(total * 10, weights, quantum=D('0.1'))
    assert sum(shares.values()) == total * 10


# ---------------------------------------------------------------- central AC

UNITS = [
    IndoorUnit('room101', D('2.8'), D('10'),
               {'low': D('4'), 'mid': D('4'), 'high': D('2')}),
    IndoorUnit('room102', D('5.6'), D('5'), {'high': D('5')}),
    IndoorUnit('room103', D('3.6'), D('0'), {}),
]


def test_ac_capacity_runtime():
    s = ac_split(D('100'), UNITS)
    assert isinstance(s, AcSplit) and s.basis == 'capacity_runtime'
    # weights 28, 28, 0
    assert s.inputs['room101']['weight'] == D('28.0')
    assert s.inputs['room101']['capacity_kw'] == D('2.8')
    assert s.inputs['room101']['runtime_h'] == D('10')
    assert s.inputs['room101']['formula'] == '2.8 kW × 10 h = 28'
    assert s.shares == {'room101': D('50.00'), 'room102': D('50.00'),
                        'room103': D('0.00')}
    assert s.outdoor_energy == D('100.00')


def test_ac_runtime():
    s = ac_split(D('10'), UNITS, basis='runtime')
    assert {k: v['weight'] for k, v in s.inputs.items()} == {
        'room101': D(10), 'room102': D(5), 'room103': D(0)}
    assert s.shares == {'room101': D('6.67'), 'room102': D('3.33'),
                        'room103': D('0.00')}
    assert sum(s.shares.values()) == D('10')


def test_ac_capacity_speed():
    s = ac_split(D('50'), UNITS, basis='capacity_speed')
    # room101: (0.6×4 + 0.8×4 + 1.0×2) × 2.8 = 7.6 × 2.8 = 21.28
    # room102: 1.0×5 × 5.6 = 28
    r1 = s.inputs['room101']
    assert r1['weight'] == D('21.28')
    assert r1['speed_runtime'] == {'low': D(4), 'mid': D(4), 'high': D(2)}
    assert r1['speed_weights'] == {'low': D('0.6'), 'mid': D('0.8'),
                                   'high': D('1.0')}
    assert r1['formula'] == \
        '(0.6 × 4 h + 0.8 × 4 h + 1 × 2 h) × 2.8 kW = 21.28'
    assert s.inputs['room102']['weight'] == D('28.0')
    assert s.inputs['room103']['weight'] == D(0)
    # 50 × 21.28 / 49.28 = 21.5909… ; 50 × 28 / 49.28 = 28.4090…
    assert s.shares == {'room101': D('21.59'), 'room102': D('28.41'),
                        'room103': D('0.00')}
    custom = ac_split(D('50'), UNITS, basis='capacity_speed',
                      speed_weights={'low': 1, 'mid': 1, 'high': 1})
    assert custom.inputs['room101']['weight'] == D('28.0')


def test_ac_errors():
    idle = [IndoorUnit('a', D('2'), D('0')), IndoorUnit('b', D('3'), D(0))]
    with pytest.raises(ValueError, match='no indoor unit ran'):
        ac_split(D('5'), idle)
    assert ac_split(D('0'), idle).shares == {'a': D('0.00'), 'b': D('0.00')}
    with pytest.raises(ValueError, match='basis'):
        ac_split(D('5'), UNITS, basis='area')
    with pytest.raises(ValueError, match='fan-speed'):
        ac_split(D('5'), [IndoorUnit('a', 1, 1)], basis='capacity_speed')
    with pytest.raises(ValueError, match='fan speed'):
        ac_split(D('5'), [IndoorUnit('a', 1, 1, {'turbo': 1})],
                 basis='capacity_speed')
    with pytest.raises(ValueError, match='negative'):
        ac_split(D('5'), [IndoorUnit('a', 1, -1)])
    with pytest.raises(ValueError, match='negative'):
        ac_split(D('-5'), UNITS)
    with pytest.raises(ValueError, match='twice'):
        ac_split(D('5'), [IndoorUnit('a', 1, 1), IndoorUnit('a', 1, 1)])


@FAST
@given(st.integers(0, 10**7),
       st.lists(st.tuples(st.integers(0, 200), st.integers(0, 2400),
                          st.integers(0, 2400), st.integers(0, 2400)),
                min_size=1, max_size=8),
       st.sampled_from(['capacity_runtime', 'runtime', 'capacity_speed']))
def test_ac_sums_exactly(centi, raw, basis):
    units = [IndoorUnit(f'u{i:02d}', D(c) / 10, D(lo + mi + hi) / 100,
                        {'low': D(lo) / 100, 'mid': D(mi) / 100,
                         'high': D(hi) / 100})
             for i, (c, lo, mi, hi) in enumerate(raw)]
    total = D(centi) / 100
    try:
        s = ac_split(total, units, basis=basis)
    except ValueError as e:
        assert str(e) == 'no indoor unit ran' and total
        return
    assert sum(s.shares.values()) == total
    assert set(s.inputs) == set(s.shares) == {u.key for u in units}
    for k, item in s.inputs.items():
        if item['weight'] == 0:
            assert s.shares[k] == 0


# --------------------------------------------------------- arrears control

@pytest.mark.parametrize('mode, balance, credit, cut', [
    ('controlled', D('0.01'), 0, False),
    ('controlled', D('0'), 0, True),
    ('controlled', D('-3'), 0, True),
    ('controlled', D('-9.99'), D('10'), False),
    ('controlled', D('-10'), D('10'), True),
    ('controlled', D('-10.01'), D('10'), True),
    ('controlled', D('-1'), None, True),
    ('controlled_no_cut', D('-1000'), 0, False),
    ('controlled_no_cut', D('5'), 0, False),
    ('always_on', D('-1000'), 0, False),
    ('always_on', D('5'), 0, False),
    ('always_off', D('1000'), 0, True),
    ('always_off', D('-1000'), 0, True),
])
def test_cutoff_truth_table(mode, balance, credit, cut):
    assert cutoff_needed(balance, credit, mode) is cut


@pytest.mark.parametrize('mode, before, after, close', [
    ('controlled', D('-5'), D('0.01'), True),
    ('controlled', D('0'), D('10'), True),
    ('controlled', D('-5'), D('0'), False),       # not above zero
    ('controlled', D('-5'), D('-1'), False),
    ('controlled', D('5'), D('10'), False),       # was never cut
    ('controlled', D('10'), D('-1'), False),
    ('controlled_no_cut', D('-5'), D('5'), True),  # harmless re-close
    ('controlled_no_cut', D('5'), D('10'), False),
    ('always_on', D('5'), D('10'), True),
    ('always_on', D('-5'), D('-10'), True),
    ('always_off', D('-5'), D('10'), False),
])
def test_close_truth_table(mode, before, after, close):
    assert close_needed(before, after, mode) is close


def test_control_errors():
    with pytest.raises(ValueError, match='control mode'):
        cutoff_needed(D(0), 0, 'sometimes')
    with pytest.raises(ValueError, match='control mode'):
        close_needed(D(0), D(1), 'sometimes')
    with pytest.raises(ValueError, match='emergency'):
        cutoff_needed(D(0), D(-1), 'controlled')


NIGHTS = [('22:00', '07:00'), ('12:00', '13:30')]
HOLIDAYS = {dt.date(2025, 10, 1)}


@pytest.mark.parametrize('when, inside', [
    (dt.datetime(2025, 3, 3, 21, 59), False),
    (dt.datetime(2025, 3, 3, 22, 0), True),
    (dt.datetime(2025, 3, 3, 23, 59), True),
    (dt.datetime(2025, 3, 4, 0, 0), True),
    (dt.datetime(2025, 3, 4, 6, 59), True),
    (dt.datetime(2025, 3, 4, 7, 0), False),
    (dt.datetime(2025, 3, 4, 12, 0), True),
    (dt.datetime(2025, 3, 4, 13, 30), False),
    (dt.datetime(2025, 10, 1, 15, 0), True),      # holiday, all day
    (dt.datetime(2025, 10, 2, 15, 0), False),
])
def test_no_cut_windows(when, inside):
    assert in_no_cut_window(when, NIGHTS, HOLIDAYS) is inside


def test_no_cut_window_edge_cases():
    noon = dt.datetime(2025, 3, 3, 12)
    assert in_no_cut_window(noon, [], set()) is False
    assert in_no_cut_window(noon, [('06:00', '06:00')], set()) is True
    assert in_no_cut_window(noon, [('00:00', '24:00')], set()) is True
    assert in_no_cut_window(noon, [('18:00', '24:00')], set()) is False


def test_trip_allowed():
    night = dt.datetime(2025, 3, 3, 23)
    day = dt.datetime(2025, 3, 3, 15)
    assert trip_allowed(D(-1), 0, 'controlled', day, NIGHTS) is True
    assert trip_allowed(D(-1), 0, 'controlled', night, NIGHTS) is False
    assert trip_allowed(D(-1), 0, 'controlled', dt.datetime(2025, 10, 1, 15),
                        NIGHTS, HOLIDAYS) is False
    assert trip_allowed(D(1), 0, 'controlled', day, NIGHTS) is False
    assert trip_allowed(D(1), 0, 'always_off', night, NIGHTS) is True
    assert trip_allowed(D(-1), 0, 'controlled_no_cut', day) is False


# ------------------------------------------------------- resale price check

@pytest.mark.parametrize('price, catalogue, limit, want', [
    ('1.38', '1.2', '0.15', None),          # exactly at the cap
    ('1.2', '1.2', '0.15', None),
    ('1.39', '1.2', '0.15', D('0.01')),
    ('1.3801', '1.2', '0.15', D('0.0001')),
    ('2', '1', '0.15', D('0.85')),
    ('1.1', '1', '0', D('0.1')),
    ('0', '1', '0.15', None),
])
def test_resale_excess(price, catalogue, limit, want):
    assert resale_excess(D(price), D(catalogue), D(limit)) == want


def test_resale_excess_default_limit_and_errors():
    assert resale_excess(D('1.39'), D('1.2')) == D('0.01')
    with pytest.raises(ValueError):
        resale_excess(D('-1'), D('1'))
    with pytest.raises(ValueError):
        resale_excess(D('1'), D('1'), D('-0.1'))
