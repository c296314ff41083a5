# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""安全用电 in the simulator: parameters over DL/T645 (0x14 write with the
password, 0x11 read) and load protection on the simulated clock."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from trytond.modules.dh_collector.codec import dlt645
from trytond.modules.dh_collector.simulator import (
    Bank, MeterSpec, SimOptions, load_spec_file)

START = dt.datetime(2025, 3, 3, 0, 0, 0)   # a Monday, 00:00
E1 = '000000000001'
PASSWORD = '123456'
UNTIL = dt.datetime(2099, 1, 1)


def make(**spec):
    spec.setdefault('rate', 1.0)
    spec.setdefault('password', PASSWORD)
    bank = Bank([[MeterSpec(E1, **spec)]], SimOptions(speed=0, start=START))
    return bank, bank.buses[0], bank.meter(E1)


def read(bus, di):
    message = dlt645.decode(bus.handle(dlt645.read_request(E1, di)))
    return message.error if message.error else message.value


def write(bus, di, value, password=PASSWORD):
    message = dlt645.decode(bus.handle(dlt645.write_request(E1, di, value,
        password=password)))
    return message.error or 'ok'


def control(bus, action):
    message = dlt645.decode(bus.handle(dlt645.control_request(E1, action,
        valid_until=UNTIL, password=PASSWORD)))
    return message.error or 'ok'


def relay(bus):
    return read(bus, '04000503')['relay']


def test_parameters_are_written_with_the_password_and_read_back():
    bank, bus, meter = make()
    values = {
        '04000F01': Decimal('20.00'),       # alarm energy
        '04000F04': Decimal('5.00'),        # overdraft energy
        '04A00101': Decimal('30.00'),       # monthly top-up
        '04000E01': Decimal('8.0000'),      # max load
        '04A00201': Decimal('2.5000'),      # malignant-load start power
        '04A00202': Decimal('0.5000'),      # power-change threshold
        '04A00203': 20, '04A00204': 5,
        '04A00301': [['08:00', Decimal('5.0000')],
            ['22:00', Decimal('1.5000')]],
        }
    # defaults: limits off, 20 trips allowed, no bands
    assert read(bus, '04000E01') == Decimal('0.0000')
    assert read(bus, '04A00203') == 20
    assert read(bus, '04A00301') == []
    for di, value in values.items():
        assert write(bus, di, value, password='000000') == \
            'wrong password or not authorised'
        assert write(bus, di, value) == 'ok'
        assert read(bus, di) == value
    assert meter.max_load == Decimal('8.0000')
    assert meter.alarm_limit == 2000
    # the alarm energy is the pre-trip alarm threshold of status word 3
    meter.remaining = '19.99'
    assert read(bus, '04000503')['pre_trip_alarm'] is True
    # write-only and read-only items
    assert read(bus, '04A00402') == 'no requested data'
    assert write(bus, '04A00401', {'lockout': False, 'overload_trips': 0,
        'malignant_trips': 0}) == 'other error'
    # the reset takes only its value
    assert write(bus, '04A00402', 2) == 'other error'
    assert write(bus, '04A00402', 1) == 'ok'


def test_over_max_load_trips_within_3_s_for_180_s():
    bank, bus, meter = make(max_load='5')
    clock = bank.clock
    meter.rate = 5          # exactly the limit: not over it
    clock.advance(60)
    assert relay(bus) == 'closed'
    meter.rate = 5.0001
    clock.advance(1.9)
    assert relay(bus) == 'closed'
    clock.advance(1.1)      # 3 s after the step
    status = read(bus, '04000503')
    assert status['relay'] == 'open'
    assert status['relay_command'] == 'close'     # not a remote trip
    assert read(bus, '02030000') == Decimal('0.0000')
    assert read(bus, '04A00401') == {'lockout': False, 'load_trip': True,
        'overload_trips': 1, 'malignant_trips': 0}
    energy = meter.energy
    clock.advance(178)      # 179 s after the trip (at +2 s)
    assert relay(bus) == 'open' and meter.energy == energy
    meter.rate = 1          # the tenant unplugs the heater
    clock.advance(1)
    assert relay(bus) == 'closed'
    assert read(bus, '04A00401')['load_trip'] is False
    clock.advance(3600)
    assert relay(bus) == 'closed'
    assert meter.energy == energy + Decimal('1.00')
    # one trip record: overload at 5.0001 kW, the step that caused it
    assert read(bus, '04A10000') == 1
    assert read(bus, '04A10001') == {'at': '2025-03-03T00:01:02',
        'kind': 'overload', 'power': Decimal('5.0001'),
        'step': Decimal('0.0001'), 'lockout': False}
    assert read(bus, '04A10002') == 'no requested data'


def test_a_short_surge_does_not_trip():
    bank, bus, meter = make(max_load='5')
    meter.rate = 7
    bank.clock.advance(1)
    meter.rate = 4
    bank.clock.advance(10)
    assert relay(bus) == 'closed' and meter.event_count == 0


def test_lockout_after_the_allowed_trips_until_reset():
    bank, bus, meter = make(max_load='5', overload_trips_allowed=2)
    clock = bank.clock
    meter.rate = 6
    for trip in (1, 2):     # the load stays: it trips again after closing
        clock.advance(2)
        assert relay(bus) == 'open'
        assert read(bus, '04A00401')['overload_trips'] == trip
        clock.advance(180)
        assert relay(bus) == 'closed'
    clock.advance(2)        # the third trip exceeds the two allowed
    assert read(bus, '04A00401') == {'lockout': True, 'load_trip': True,
        'overload_trips': 3, 'malignant_trips': 0}
    clock.advance(86400)
    assert relay(bus) == 'open'
    records = [read(bus, f'04A1000{n}') for n in (1, 2, 3)]
    assert [r['lockout'] for r in records] == [True, False, False]
    assert [r['at'][11:] for r in records] == ['00:06:06', '00:03:04',
        '00:00:02']
    # a remote close is acknowledged but does not end the lockout; nor
    # does power-hold or a purchase
    meter.rate = 1
    assert control(bus, 'close') == 'ok'
    assert control(bus, 'hold') == 'ok'
    clock.advance(600)
    status = read(bus, '04000503')
    assert status['relay'] == 'open' and status['relay_command'] == 'close'
    assert read(bus, '04A00401')['lockout'] is True
    # the manager's reset clears the lockout and the counts, and closes
    assert write(bus, '04A00402', 1) == 'ok'
    assert relay(bus) == 'closed'
    assert read(bus, '04A00401') == {'lockout': False, 'load_trip': False,
        'overload_trips': 0, 'malignant_trips': 0}
    # records stay
    assert read(bus, '04A10000') == 3


def test_reset_with_the_load_still_on_trips_again():
    bank, bus, meter = make(max_load='5', overload_trips_allowed=0)
    meter.rate = 6
    bank.clock.advance(2)
    assert meter.lockout    # none allowed: the first trip locks
    meter.load_reset()
    assert relay(bus) == 'closed'
    bank.clock.advance(2)
    assert meter.lockout and relay(bus) == 'open'


def test_malignant_load_step():
    bank, bus, meter = make(malignant_power='2.5', malignant_trips_allowed=1)
    clock = bank.clock
    meter.rate = 3.4999     # a step of 2.4999 kW: below the start power
    clock.advance(10)
    assert relay(bus) == 'closed'
    meter.rate = 1
    clock.advance(10)
    meter.rate = 3.5        # +2.5 kW: a malignant load
    clock.advance(1)
    meter.rate = 1          # unplugged at once: the meter saw it anyway
    clock.advance(1)
    assert relay(bus) == 'open'
    assert read(bus, '04A10001') == {'at': '2025-03-03T00:00:22',
        'kind': 'malignant', 'power': Decimal('1.0000'),
        'step': Decimal('2.5000'), 'lockout': False}
    clock.advance(180)
    assert relay(bus) == 'closed'
    # a reclose with the heater still plugged in is not a step
    meter.rate = 4
    clock.advance(2)
    assert meter.malignant_trips == 2 and meter.lockout   # 1 allowed
    assert read(bus, '04A00401') == {'lockout': True, 'load_trip': True,
        'overload_trips': 0, 'malignant_trips': 2}


def test_an_overload_step_trips_as_overload():
    bank, bus, meter = make(max_load='5', malignant_power='2.5')
    meter.rate = 6      # a 5 kW step that is also over the max load
    bank.clock.advance(2)
    assert read(bus, '04A10001')['kind'] == 'overload'
    assert (meter.overload_trips, meter.malignant_trips) == (1, 0)


def test_power_steps_are_recorded():
    bank, bus, meter = make(power_change_threshold='1')
    clock = bank.clock
    meter.rate = 1.9999     # +0.9999: not recorded
    clock.advance(5)
    meter.rate = 3          # +1.0001
    clock.advance(5)
    meter.rate = 2          # -1: recorded too
    clock.advance(5)
    meter.relay_open = True
    meter.rate = 9          # not seen while the relay is open
    assert read(bus, '04A10000') == 2
    assert read(bus, '04A10001') == {'at': '2025-03-03T00:00:10',
        'kind': 'step', 'power': Decimal('2.0000'),
        'step': Decimal('-1.0000'), 'lockout': False}
    assert read(bus, '04A10002')['step'] == Decimal('1.0001')
    assert relay(bus) == 'open'     # steps alone never trip


def goto(bank, day, hour, minute, second=0):
    """Advance the simulated clock to START + day days, hh:mm:ss."""
    when = START + dt.timedelta(days=day, hours=hour, minutes=minute,
        seconds=second)
    bank.clock.advance((when - bank.clock.datetime()).total_seconds())


def test_time_of_day_limits_across_midnight():
    bank, bus, meter = make(tod_power_limits=[['08:00', '5'],
        ['22:00', '1']], rate=0.5)
    goto(bank, 0, 21, 0)                # limit 5
    meter.rate = 2
    goto(bank, 0, 21, 59, 59)
    assert relay(bus) == 'closed'
    goto(bank, 0, 22, 0, 3)             # the 22:00 band: limit 1
    assert relay(bus) == 'open'
    assert read(bus, '04A10001') == {'at': '2025-03-03T22:00:02',
        'kind': 'tod', 'power': Decimal('2.0000'),
        'step': Decimal('0.0000'), 'lockout': False}
    meter.rate = 0.5
    goto(bank, 1, 0, 30)                # 00:30 the next day
    assert relay(bus) == 'closed'
    meter.rate = 1                      # equal to the limit: not over
    goto(bank, 1, 0, 31)
    assert relay(bus) == 'closed'
    meter.rate = 1.5                    # the 22:00 band runs past midnight
    goto(bank, 1, 0, 31, 2)
    assert relay(bus) == 'open'
    assert read(bus, '04A10001')['at'] == '2025-03-04T00:31:02'
    meter.rate = 0.5
    goto(bank, 1, 7, 59, 58)
    assert relay(bus) == 'closed'
    meter.rate = 4                      # over 1 until 08:00, then under 5:
    goto(bank, 1, 8, 5)                 # the trip due at 08:00:00 is off
    assert relay(bus) == 'closed'
    goto(bank, 1, 21, 59, 59)
    assert relay(bus) == 'closed'
    goto(bank, 1, 22, 0, 1)             # not yet: 2 s over the limit
    assert relay(bus) == 'closed'
    goto(bank, 1, 22, 0, 2)
    assert relay(bus) == 'open'
    assert meter.overload_trips == 3 and meter.event_count == 3
    # a day at a limit never exceeded: nothing
    meter.rate = 1
    goto(bank, 3, 0, 0)
    assert relay(bus) == 'closed' and meter.event_count == 3


def test_tod_limit_on_the_meter_clock():
    """The bands follow the meter's own clock (local time)."""
    bank, bus, meter = make(tod_power_limits=[['00:00', '1'],
        ['06:00', '5']], rate=2, clock_offset=6 * 3600)
    bank.clock.advance(10)
    assert relay(bus) == 'closed'       # meter clock 06:00:10
    bank, bus, meter = make(tod_power_limits=[['00:00', '1'],
        ['06:00', '5']], rate=2)
    bank.clock.advance(10)
    assert relay(bus) == 'open'         # 00:00:10


def test_a_limit_written_under_the_load_trips():
    bank, bus, meter = make(rate=6)
    assert write(bus, '04000E01', Decimal('5')) == 'ok'
    bank.clock.advance(2)
    assert relay(bus) == 'open'
    # raising the limit does not end a trip in progress; the reclose does
    assert write(bus, '04000E01', Decimal('7')) == 'ok'
    bank.clock.advance(180)
    assert relay(bus) == 'closed'
    bank.clock.advance(60)
    assert relay(bus) == 'closed'


def test_load_trips_ignore_power_hold_and_remote_commands_keep_theirs():
    bank, bus, meter = make(max_load='5', power_hold=True)
    meter.rate = 6
    bank.clock.advance(2)
    assert relay(bus) == 'open'         # 保电 does not stop a safety trip
    assert control(bus, 'trip') == 'other error'    # but a remote trip
    meter.power_hold = False
    meter.rate = 1
    assert control(bus, 'trip') == 'ok'     # during the timed trip
    bank.clock.advance(180)
    assert relay(bus) == 'open'         # the remote trip holds it open
    assert control(bus, 'close') == 'ok'
    assert relay(bus) == 'closed'


def test_nothing_is_measured_while_the_relay_is_open():
    bank, bus, meter = make(max_load='5', relay_open=True, rate=6)
    bank.clock.advance(600)
    assert relay(bus) == 'open' and meter.event_count == 0
    assert control(bus, 'close') == 'ok'   # now the load is measured
    bank.clock.advance(2)
    assert relay(bus) == 'open' and meter.event_count == 1
    assert read(bus, '04A10001')['step'] == Decimal('0.0000')


def test_overdraft_energy_lets_the_credit_go_below_zero():
    bank, bus, meter = make(remaining='1.00', overdraft_energy='2.00',
        rate=1.0)
    bank.clock.advance(hours=2)
    assert relay(bus) == 'closed'
    assert read(bus, '00900100') == Decimal('0.00')
    assert read(bus, '00900101') == Decimal('1.00')
    assert meter.remaining == Decimal('-1.00')
    bank.clock.advance(hours=5)
    assert relay(bus) == 'open'
    assert read(bus, '00900101') == Decimal('2.00')
    assert meter.energy == Decimal('3.00')


def test_spec_file_with_safety_parameters(tmp_path):
    path = tmp_path / 'meters.json'
    path.write_text(json.dumps([{'address': '7', 'max_load': '8',
        'malignant_power': '2.5', 'overload_trips_allowed': 3,
        'tod_power_limits': [['07:00', '6'], ['23:00', '2']]}]))
    spec = load_spec_file(path)[0][0]
    assert spec.to_dict()['tod_power_limits'] == [['07:00', '6.0000'],
        ['23:00', '2.0000']]
    assert MeterSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()
    json.dumps(spec.to_dict())
    bank = Bank([[spec]], SimOptions(speed=0, start=START))
    meter = bank.meter('7')
    assert meter.safety_param('tod_power_limits') == [
        ['07:00', Decimal('6.0000')], ['23:00', Decimal('2.0000')]]
    with pytest.raises(ValueError, match='tod_power_limits'):
        MeterSpec('8', tod_power_limits=[['23:00', '1'], ['07:00', '2']])
    with pytest.raises(ValueError, match='load_trip_delay'):
        MeterSpec('8', load_trip_delay=5)
