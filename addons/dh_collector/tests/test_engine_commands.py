"""Collector engine: queued commands, confirmed by what the meter says."""

import asyncio
import datetime as dt
from decimal import Decimal

from trytond.modules.dh_collector.engine import (
    ChannelPoller, Command, MeterTarget, RoundStats, TcpBridgeTransport)
from trytond.modules.dh_collector.simulator import MeterSpec

from .test_engine_support import (
    FakeClock, MemorySink, Queue, make_bank, tcp_spec)

E1 = '410000000001'      # prepaid, password 123456
E2 = '410000000002'
OLD = '410000000003'     # DL/T645-1997
WATER = '41000000000004'


def bus():
    return [
        MeterSpec(E1, energy='100.00', password='123456', remaining='50.00',
            purchase_count=4),
        MeterSpec(E2, energy='20.00'),
        MeterSpec(OLD, 'dlt645_1997', energy='5.00'),
        MeterSpec(WATER, 'cjt188', energy='1.50'),
        ]


def meters():
    return [
        MeterTarget(1, E1, 'dlt645_2007', ['energy_total'],
            password='123456'),
        MeterTarget(2, E2, 'dlt645_2007', ['energy_total']),
        MeterTarget(3, OLD, 'dlt645_1997', ['energy_total']),
        MeterTarget(4, WATER, 'cjt188', ['water_flow']),
        MeterTarget(5, '410000000099', 'dlt645_2007', ['energy_total']),
        ]


async def setup(bank, queue, **options):
    ports = await bank.serve_tcp('127.0.0.1', 0)
    spec = tcp_spec(1, ports[0], **{'timeout': 0.1, **options})
    sink = MemorySink()
    poller = ChannelPoller(spec, meters(),
        TcpBridgeTransport('127.0.0.1', ports[0]), sink, queue,
        clock=FakeClock(dt.datetime.now(dt.timezone.utc).replace(
            tzinfo=None, microsecond=0)))
    return poller, sink


def test_trip_and_close_are_confirmed_by_status_word_3():
    async def run():
        bank = make_bank([bus()])
        queue = Queue([Command(1, 2, 'trip'), Command(2, 2, 'close'),
            Command(3, 1, 'trip')])
        async with bank:
            poller, sink = await setup(bank, queue)
            stats = await poller.run_round()
            tripped = queue.final(1)
            closed = queue.final(2)
            assert not bank.meter(E2).relay_open
            queue.add(Command(4, 2, 'trip'))
            await poller.run_round()
            assert bank.meter(E2).relay_open
            await poller.close()
        assert [r[1] for r in queue.reports[:2]] == ['sent', 'confirmed']
        assert tripped[1:3] == ('confirmed', None)
        assert tripped[3]['relay'] == 'open' and tripped[3]['acknowledged']
        assert int(tripped[3]['status_word_3'], 16) & 0x10
        assert closed[1] == 'confirmed' and closed[3]['relay'] == 'closed'
        assert queue.final(3)[1] == 'confirmed' and bank.meter(E1).relay_open
        assert queue.final(4)[1] == 'confirmed'
        assert stats.commands == 3
        # the round itself went on: 4 meters answered, 1 is absent
        assert stats.meters_answering == 4 and stats.failed_meters == [5]
    asyncio.run(run())


def test_commands_to_an_offline_meter_are_retried_then_fail_clearly():
    async def run():
        bank = make_bank([bus()])
        queue = Queue([Command(1, 5, 'trip'), Command(2, 2, 'recharge',
            {'amount': '10.00', 'count': 1})])
        async with bank:
            poller, sink = await setup(bank, queue)
            stats = RoundStats(1)
            await poller.run_commands(stats, force=True)
            # the whole bus dropping every reply
            bank.options.drop = 1.0
            queue.add(Command(3, 2, 'close'))
            await poller.run_commands(stats, force=True)
            bank.options.drop = 0.0
            await poller.close()
        state, error = queue.final(1)[1:3]
        assert state == 'failed'
        assert error.startswith('trip not confirmed: no valid reply from '
            'meter 410000000099 after 3 attempts: no reply within 0.1 s')
        assert 'status word 3 unreadable' in error
        # E2 is not prepaid here but the simulator takes the purchase
        assert queue.final(2)[1] == 'confirmed'
        state, error = queue.final(3)[1:3]
        assert state == 'failed' and 'close not confirmed' in error
        # 3 attempts for the control frame, then 3 for one status read (a
        # silent meter is not asked again) - for each of the two; the
        # purchase and its count read-back
        assert stats.attempts == 2 * (3 + 3) + 2
    asyncio.run(run())


def test_wrong_password_and_protocol_mismatch_fail():
    async def run():
        bank = make_bank([bus()])
        wrong = meters()
        wrong[0].password = '000000'
        queue = Queue([Command(1, 1, 'trip'), Command(2, 4, 'trip'),
            Command(3, 1, 'valve_close'), Command(4, 99, 'trip'),
            Command(5, 1, 'explode'), Command(6, 1, 'recharge', {})])
        async with bank:
            poller, sink = await setup(bank, queue)
            poller.meters = wrong
            await poller.run_round()
            await poller.close()
        assert queue.final(1)[1] == 'failed'
        assert 'refused trip: wrong password' in queue.final(1)[2]
        assert not bank.meter(E1).relay_open
        assert queue.final(2)[2] == ('remote control is not possible on a '
            'cjt188 meter')
        assert 'valve control is not possible' in queue.final(3)[2]
        assert queue.final(4)[2] == 'meter 99 is not on channel 1'
        assert queue.final(5)[2] == "unknown command kind 'explode'"
        assert 'recharge needs amount and count' in queue.final(6)[2]
        # commands never reached the wire are not reported 'sent'
        sent = {r[0] for r in queue.reports if r[1] == 'sent'}
        assert sent == {1, 2, 3, 6}
    asyncio.run(run())


def test_valve_recharge_time_sync_param_write_and_read():
    async def run():
        bank = make_bank([bus()], speed=0)
        queue = Queue([
            Command(1, 4, 'valve_close'),
            Command(2, 1, 'recharge', {'amount': '25.00', 'count': 5}),
            Command(3, 1, 'recharge', {'amount': '25.00', 'count': 5}),
            Command(4, 1, 'recharge', {'amount': '25.00', 'count': 9}),
            Command(5, 2, 'time_sync'),
            Command(6, 3, 'time_sync'),
            Command(7, 2, 'param_write', {'di': '04000102',
                'value': '08:30:00'}),
            Command(8, 3, 'read', {'registers': ['energy_total',
                'voltage']}),
            Command(9, 4, 'valve_open'),
            ])
        async with bank:
            poller, sink = await setup(bank, queue)
            water = bank.meter(WATER)
            stats = await poller.run_round()
            await poller.close()
        valve = queue.final(1)
        assert valve[1] == 'confirmed' and valve[3]['valve'] == 'closed'
        assert queue.final(9)[1] == 'confirmed' and water.valve == 'open'
        # the purchase applies once; the same count again is a duplicate
        assert queue.final(2)[1:3] == ('confirmed', None)
        assert queue.final(2)[3]['purchase_count'] == 5
        assert queue.final(3)[1] == 'confirmed'
        meter = bank.meter(E1)
        assert meter.purchase_count == 5
        assert meter.remaining == Decimal('75.00')
        state, error, result = queue.final(4)[1:]
        assert state == 'failed' and 'refused the purchase' in error
        assert result == {'meter_count': 5}
        for command_id in (5, 6):
            state, error, result = queue.final(command_id)[1:]
            assert state == 'confirmed', error
            assert abs(result['drift']) <= 10
        assert bank.meter(E2).time_syncs == 1
        assert bank.meter(OLD).time_syncs == 1
        write = queue.final(7)
        assert write[1] == 'confirmed' and write[3]['value'] == '08:30:00'
        assert bank.meter(E2).meter_datetime().time() == dt.time(8, 30)
        read = queue.final(8)
        assert read[1] == 'confirmed'
        assert read[3]['values']['energy_total'] == '5.00'
        assert stats.commands == 9
        # the read command's readings went to the sink with the round's
        assert len(sink.readings) == 4 + 2
    asyncio.run(run())


def test_reports_are_kept_while_the_database_is_down():
    async def run():
        bank = make_bank([bus()])
        queue = Queue([Command(1, 2, 'trip')])
        queue.fail_reports = 100
        async with bank:
            poller, sink = await setup(bank, queue)
            await poller.run_round()
            assert queue.reports == [] and len(poller._unreported) == 2
            assert bank.meter(E2).relay_open     # executed all the same
            queue.fail_reports = 0
            await poller.run_round()
            await poller.close()
        assert [r[:2] for r in queue.reports] == [(1, 'sent'),
            (1, 'confirmed')]
    asyncio.run(run())
