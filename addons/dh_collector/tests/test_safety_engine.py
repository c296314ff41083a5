# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""安全用电 commands end to end: the engine against the simulator over a
real TCP socket (param_write with named parameters, param_read, event_read,
load_reset)."""

import asyncio
import datetime as dt
from decimal import Decimal

from trytond.modules.dh_collector.codec import di as registry, vendors
from trytond.modules.dh_collector.engine import (
    ChannelPoller, Command, MeterTarget, RoundStats, TcpBridgeTransport)
from trytond.modules.dh_collector.simulator import MeterSpec

from .test_engine_support import (
    FakeClock, MemorySink, Queue, make_bank, tcp_spec)

E1 = '420000000001'      # password 123456
OTHER = '420000000002'   # a maker keeping max_load in its own DI
OLD = '420000000003'     # DL/T645-1997
ABSENT = '420000000099'


def _other_profile():
    """A vendor profile whose safety map puts max_load and the lockout
    reset elsewhere (registered once; the codec has the DIs' formats)."""
    if 'test-safety-other' in vendors.VENDORS:
        return
    registry.register_items(
        registry.Item('04A90001', 'test_max_load', 'XX.XXXX', 3, 'kW', 4),
        registry.Item('04A90002', 'test_load_reset', 'NN', 1))
    vendors.register_safety_map(vendors.SafetyMap(
        'test-safety-other', 'max load and reset in other DIs',
        params=(('max_load', '04A90001'), ('alarm_energy', '04000F01')),
        load_reset='04A90002', load_status='04A00401', reset_value=55,
        events=vendors.RecordScheme('04A10000', '04A10001', 5)))
    vendors.register_vendor(vendors.VendorProfile('test-safety-other',
        'test profile', safety='test-safety-other'))


def bus():
    _other_profile()
    return [
        MeterSpec(E1, energy='100.00', password='123456', rate=1.0),
        MeterSpec(OTHER, rate=1.0, vendor='test-safety-other'),
        MeterSpec(OLD, 'dlt645_1997'),
        ]


def targets():
    return [
        MeterTarget(1, E1, 'dlt645_2007', ['energy_total'],
            password='123456'),
        MeterTarget(2, OTHER, 'dlt645_2007', ['energy_total'],
            vendor='test-safety-other'),
        MeterTarget(3, OLD, 'dlt645_1997', ['energy_total']),
        MeterTarget(4, ABSENT, 'dlt645_2007', ['energy_total']),
        ]


async def start(bank, queue):
    ports = await bank.serve_tcp('127.0.0.1', 0)
    poller = ChannelPoller(tcp_spec(1, ports[0], timeout=0.1), targets(),
        TcpBridgeTransport('127.0.0.1', ports[0]), MemorySink(), queue,
        clock=FakeClock(dt.datetime(2025, 3, 2, 16, 0, 0)))
    return poller


async def run_commands(poller, queue, *commands):
    queue.add(*commands)
    await poller.run_commands(RoundStats(1), force=True)
    return [queue.final(c.id) for c in commands]


LIMITS = {
    'alarm_energy': '20',
    'overdraft_energy': '5.5',
    'monthly_topup': 30,
    'max_load': '8',
    'malignant_power': '2.5',
    'power_change_threshold': '0.5',
    'overload_trips_allowed': 2,
    'malignant_trips_allowed': '20',
    'tod_power_limits': [['08:00', '6'], ['22:00', '2.5']],
    }
READ_BACK = {
    'alarm_energy': '20.00',
    'overdraft_energy': '5.50',
    'monthly_topup': '30.00',
    'max_load': '8.0000',
    'malignant_power': '2.5000',
    'power_change_threshold': '0.5000',
    'overload_trips_allowed': 2,
    'malignant_trips_allowed': 20,
    'tod_power_limits': [['08:00', '6.0000'], ['22:00', '2.5000']],
    }


def test_write_and_read_named_parameters():
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            write, = await run_commands(poller, queue,
                Command(1, 1, 'param_write', {'params': LIMITS}))
            read_all, read_some = await run_commands(poller, queue,
                Command(2, 1, 'param_read', {}),
                Command(3, 1, 'param_read', {'params': ['max_load',
                    'tod_power_limits']}))
            meter = bank.meter(E1)
            await poller.close()
        state, error, result = write[1:]
        assert (state, error) == ('confirmed', None)
        assert result == {'params': READ_BACK}
        assert read_all[1] == 'confirmed'
        assert read_all[3] == {'params': READ_BACK}
        assert read_some[3] == {'params': {'max_load': '8.0000',
            'tod_power_limits': READ_BACK['tod_power_limits']}}
        assert meter.max_load == Decimal('8.0000')
        assert meter.overload_trips_allowed == 2
        assert meter.safety_param('alarm_energy') == Decimal('20.00')
        assert meter.tod_bands == ((480, Decimal('6.0000')),
            (1320, Decimal('2.5000')))
    asyncio.run(run())


def test_refusals_name_the_parameter():
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            poller.meters[0].password = '000000'
            wrong, = await run_commands(poller, queue,
                Command(1, 1, 'param_write', {'params': {'max_load': '8'}}))
            poller.meters[0].password = '123456'
            results = await run_commands(poller, queue,
                Command(2, 1, 'param_write', {'params': {'max_lod': '8'}}),
                Command(3, 1, 'param_write', {'params': {
                    'alarm_energy': '10', 'max_load': 'eight'}}),
                Command(4, 1, 'param_write', {'params': {
                    'tod_power_limits': [['22:00', '1'], ['08:00', '2']]}}),
                Command(5, 1, 'param_write', {'params': {}}),
                Command(6, 1, 'param_write', {'di': '04000E01',
                    'params': {'max_load': '8'}}),
                Command(7, 3, 'param_read', {}),
                Command(8, 1, 'param_read', {'params': ['max_lod']}),
                Command(9, 2, 'param_read', {'params': ['monthly_topup']}),
                Command(10, 3, 'event_read', {}),
                Command(11, 1, 'event_read', {'last': -1}),
                )
            meter = bank.meter(E1)
            await poller.close()
        state, error, result = wrong[1:]
        assert state == 'failed'
        assert error == ('meter 420000000001 refused the write of max_load '
            '(04000E01): wrong password or not authorised')
        assert result == {'params': {}}
        errors = {r[0]: r[2] for r in results}
        assert all(r[1] == 'failed' for r in results)
        assert errors[2].startswith("unknown parameter 'max_lod'; one of "
            'alarm_energy, ')
        assert errors[3] == ("max_load: 'eight' cannot be written: "
            "'eight' is not a number")
        assert errors[4].startswith("tod_power_limits: [['22:00', '1'], "
            "['08:00', '2']] cannot be written: time-of-day bands must "
            'start in increasing order')
        assert 'non-empty' in errors[5]
        assert 'not both' in errors[6]
        assert errors[7] == ('parameter read is not possible on a '
            'dlt645_1997 meter')
        assert errors[8].startswith("unknown parameter 'max_lod'")
        assert errors[9] == ('parameter monthly_topup is not in the '
            'test-safety-other safety map')
        assert errors[10] == ('event read is not possible on a dlt645_1997 '
            'meter')
        assert 'must not be negative' in errors[11]
        # nothing was written by the commands refused before sending
        assert meter.max_load == 0 and meter.alarm_limit == 1000
    asyncio.run(run())


def test_a_silent_meter_is_not_asked_for_every_parameter():
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            stats = RoundStats(1)
            queue.add(Command(1, 4, 'param_read', {'params': ['max_load',
                'alarm_energy', 'monthly_topup']}))
            await poller.run_commands(stats, force=True)
            await poller.close()
        state, error, result = queue.final(1)[1:]
        assert state == 'failed'
        assert result['params'] == {}
        assert result['errors']['max_load'].startswith('no valid reply')
        assert result['errors']['monthly_topup'] == ('not read (the meter '
            'did not answer)')
        assert stats.attempts == 3      # one read, with its retries
    asyncio.run(run())


def test_trips_events_lockout_and_reset():
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            meter = bank.meter(E1)
            clock = bank.clock
            setup, = await run_commands(poller, queue,
                Command(1, 1, 'param_write', {'params': {'max_load': '5',
                    'overload_trips_allowed': 1,
                    'power_change_threshold': '1'}}))
            assert setup[1] == 'confirmed'
            none, = await run_commands(poller, queue,
                Command(2, 1, 'event_read', {'last': 10}))
            meter.rate = 5.123              # a heater on: over 5 kW
            clock.advance(3)                # tripped within 3 s
            clock.advance(180)              # closed again, tripped again:
            clock.advance(3)                # the second trip locks it out
            events, few = await run_commands(poller, queue,
                Command(3, 1, 'event_read', {'last': 10}),
                Command(4, 1, 'event_read', {'last': 2}))
            meter.rate = 1                  # unplugged
            close, = await run_commands(poller, queue, Command(5, 1, 'close'))
            still_open = meter.relay_open
            reset, = await run_commands(poller, queue,
                Command(6, 1, 'load_reset'))
            after, = await run_commands(poller, queue,
                Command(7, 1, 'event_read', {}))
            closed = not meter.relay_open
            await poller.close()
        assert none[1] == 'confirmed'
        assert none[3] == {'events': [], 'count': 0, 'lockout': False,
            'load_trip': False, 'overload_trips': 0, 'malignant_trips': 0}
        state, error, result = events[1:]
        assert (state, error) == ('confirmed', None)
        # oldest first: the step, the timed trip, the locking trip
        assert result['events'] == [
            {'at': '2025-03-03T00:00:00', 'kind': 'step', 'power': '5.1230',
                'step': '4.1230', 'lockout': False},
            {'at': '2025-03-03T00:00:02', 'kind': 'overload',
                'power': '5.1230', 'step': '4.1230', 'lockout': False},
            {'at': '2025-03-03T00:03:04', 'kind': 'overload',
                'power': '5.1230', 'step': '0.0000', 'lockout': True},
            ]
        assert result['lockout'] is True and result['count'] == 3
        assert result['overload_trips'] == 2
        assert few[3]['events'] == result['events'][1:]
        # a remote close does not clear the lockout, and says why
        assert close[1] == 'failed' and still_open
        assert close[2].endswith('shows the relay open (relay command: '
            'close); load protection: locked out, a load_reset is needed')
        state, error, result = reset[1:]
        assert (state, error) == ('confirmed', None)
        assert result == {'lockout': False, 'load_trip': False,
            'acknowledged': True, 'relay': 'closed',
            'status_word_3': result['status_word_3']}
        assert closed
        assert after[3]['lockout'] is False and after[3]['count'] == 3
        assert after[3]['overload_trips'] == 0
    asyncio.run(run())


def test_another_profile_is_followed_through_its_dis():
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            meter = bank.meter(OTHER)
            write, = await run_commands(poller, queue,
                Command(1, 2, 'param_write', {'params': {'max_load': '3',
                    'alarm_energy': '7'}}))
            raw, = await run_commands(poller, queue,
                Command(2, 2, 'param_write', {'di': '04000E01',
                    'value': '9'}))
            meter.rate = 4
            bank.clock.advance(2)
            locked_before = meter.lockout
            bank.clock.advance(180)     # 20 trips allowed: closed again
            meter.rate = 1
            reset, = await run_commands(poller, queue,
                Command(3, 2, 'load_reset', {}))
            await poller.close()
        assert write[1] == 'confirmed'
        assert write[3] == {'params': {'max_load': '3.0000',
            'alarm_energy': '7.00'}}
        # the standard DI is not this maker's max load
        assert raw[1] == 'failed' and 'refused the write of 04000E01' in \
            raw[2]
        assert meter.max_load == Decimal('3.0000')
        assert not locked_before and meter.event_count == 1
        assert reset[1] == 'confirmed' and reset[3]['relay'] == 'closed'
    asyncio.run(run())


def test_load_reset_refused_or_unanswered():
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            poller.meters[0].password = '000000'
            results = await run_commands(poller, queue,
                Command(1, 1, 'load_reset'),
                Command(2, 4, 'load_reset'),
                Command(3, 3, 'load_reset'))
            await poller.close()
        errors = {r[0]: r[2] for r in results}
        assert all(r[1] == 'failed' for r in results)
        assert errors[1] == ('meter 420000000001 refused the load reset '
            '(04A00402): wrong password or not authorised')
        assert errors[2].startswith('load reset not confirmed: no valid '
            'reply')
        assert errors[3] == ('load reset is not possible on a dlt645_1997 '
            'meter')
    asyncio.run(run())


def test_power_hold_and_release():
    "保电 / 保电解除 (3A / 3B), confirmed by status word 3's power-hold bit"
    async def run():
        bank = make_bank([bus()])
        queue = Queue()
        async with bank:
            poller = await start(bank, queue)
            meter = bank.meter(E1)
            hold, = await run_commands(poller, queue,
                Command(1, 1, 'hold'))
            held = meter.power_hold
            trip, = await run_commands(poller, queue, Command(2, 1, 'trip'))
            release, = await run_commands(poller, queue,
                Command(3, 1, 'hold_release'))
            released = meter.power_hold
            old, = await run_commands(poller, queue, Command(4, 3, 'hold'))
            await poller.close()
        assert hold[1:3] == ('confirmed', None) and held
        assert hold[3]['power_hold'] is True
        # a meter on power hold refuses the remote trip
        assert trip[1] == 'failed' and 'refused trip' in trip[2]
        assert release[1] == 'confirmed' and not released
        assert old[1:3] == ('failed',
            'power hold is not possible on a dlt645_1997 meter')
    asyncio.run(run())
