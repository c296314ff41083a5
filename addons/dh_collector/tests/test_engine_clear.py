"""Collector engine: the remote clear (远程清零) of a prepaid meter's
remaining energy, over a real socket to the simulator."""

import asyncio
import datetime as dt
from decimal import Decimal

from trytond.modules.dh_collector.codec.vendors import get_vendor
from trytond.modules.dh_collector.engine import (
    ChannelPoller, Command, MeterTarget, RoundStats, TcpBridgeTransport)
from trytond.modules.dh_collector.simulator import MeterSpec

from .test_engine_support import FakeClock, MemorySink, Queue, make_bank, \
    tcp_spec

E1 = '410000000011'      # prepaid 50.00 kWh, password 123456
E2 = '410000000012'      # post-paid (no remaining energy)
OLD = '410000000013'     # DL/T645-1997
E4 = '410000000014'      # prepaid, an ESAM (state-grid) profile
E5 = '410000000015'      # prepaid, in overdraft


def bus():
    return [
        MeterSpec(E1, energy='100.00', password='123456', remaining='50.00',
            purchase_count=4),
        MeterSpec(E2, energy='20.00'),
        MeterSpec(OLD, 'dlt645_1997', energy='5.00'),
        MeterSpec(E4, energy='7.00', remaining='9.00',
            vendor='state-grid'),
        MeterSpec(E5, energy='8.00', remaining='-3.00',
            overdraft_energy='10.00'),
        ]


def meters(password='123456'):
    return [
        MeterTarget(1, E1, 'dlt645_2007', ['energy_total'],
            password=password),
        MeterTarget(2, E2, 'dlt645_2007', ['energy_total']),
        MeterTarget(3, OLD, 'dlt645_1997', ['energy_total']),
        MeterTarget(4, E4, 'dlt645_2007', ['energy_total'],
            vendor='state-grid'),
        MeterTarget(5, E5, 'dlt645_2007', ['energy_total']),
        ]


async def run_commands(bank, commands, password='123456'):
    queue = Queue(commands)
    ports = await bank.serve_tcp('127.0.0.1', 0)
    spec = tcp_spec(1, ports[0], timeout=0.2)
    poller = ChannelPoller(spec, meters(password),
        TcpBridgeTransport('127.0.0.1', ports[0]), MemorySink(), queue,
        clock=FakeClock(dt.datetime.now(dt.timezone.utc).replace(
            tzinfo=None, microsecond=0)))
    await poller.run_commands(RoundStats(1), force=True)
    await poller.close()
    return queue


def test_clear_writes_zero_and_is_confirmed_by_reading_back():
    async def run():
        bank = make_bank([bus()])
        async with bank:
            queue = await run_commands(bank, [Command(1, 1, 'clear'),
                Command(2, 1, 'clear')])
            meter = bank.meter(E1)
            assert meter.remaining == Decimal('0.00')
            # the energy registers and the purchase count are kept: the
            # readings after a clear are not a reset
            assert meter.energy == Decimal('100.00')
            assert meter.purchase_count == 4
            assert meter.clears == 2
        state, error, result = queue.final(1)[1:]
        assert (state, error) == ('confirmed', None)
        assert result == {'remaining_before': '50.00',
            'remaining_after': '0.00', 'acknowledged': True}
        # a second clear finds nothing left: confirmed, 0.00 cleared
        state, error, result = queue.final(2)[1:]
        assert state == 'confirmed'
        assert result['remaining_before'] == '0.00'
    asyncio.run(run())


def test_clear_needs_the_password_and_a_prepaid_2007_meter():
    async def run():
        bank = make_bank([bus()])
        async with bank:
            queue = await run_commands(bank, [Command(1, 1, 'clear'),
                Command(2, 2, 'clear'), Command(3, 3, 'clear'),
                Command(4, 4, 'clear')], password='000000')
            assert bank.meter(E1).remaining == Decimal('50.00')
            assert bank.meter(E1).clears == 0
            assert bank.meter(E4).remaining == Decimal('9.00')
        state, error, result = queue.final(1)[1:]
        assert state == 'failed'
        assert error.startswith(f'meter {E1} refused the clear '
            '(04A00501): wrong password')
        assert result == {'remaining_before': '50.00'}
        state, error, _ = queue.final(2)[1:]
        assert state == 'failed' and 'refused to read the remaining ' \
            'energy (00900100) before the clear' in error
        assert queue.final(3)[2] == ('remote clear is not possible on a '
            'dlt645_1997 meter')
        assert queue.final(4)[2] == ('remote clear: vendor profile '
            'state-grid has no remaining-energy write')
        # nothing went on the wire for the last two
        sent = {r[0] for r in queue.reports if r[1] == 'sent'}
        assert sent == {1, 2, 3, 4}
    asyncio.run(run())


def test_clear_of_a_meter_in_overdraft_and_only_zero_is_written():
    async def run():
        bank = make_bank([bus()])
        async with bank:
            # a raw write of another value to the clear DI is refused: a
            # top-up goes through the purchase and its count only
            queue = await run_commands(bank, [
                Command(1, 1, 'param_write', {'di': '04A00501',
                    'value': '10.00'}),
                Command(2, 5, 'clear')])
            assert bank.meter(E1).remaining == Decimal('50.00')
            assert bank.meter(E5).remaining == Decimal('0.00')
        state, error, _ = queue.final(1)[1:]
        assert state == 'failed' and 'refused the write' in error
        # 00900100 reads 0.00 in overdraft: nothing to credit back
        state, _, result = queue.final(2)[1:]
        assert state == 'confirmed'
        assert result['remaining_before'] == '0.00'
    asyncio.run(run())


def test_vendor_profiles_name_the_clear_di():
    assert get_vendor(None).remaining_write == '04A00501'
    assert get_vendor('state-grid').remaining_write is None


def test_a_clear_whose_outcome_is_unseen_says_so_and_a_retry_confirms():
    "the meter goes silent just after applying the clear (its reply lost)"
    async def run():
        bank = make_bank([bus()])
        meter = bank.meter(E1)
        apply = meter.clear_remaining

        def clear_then_fall_silent():
            apply()
            bank.options.drop = 1.0
        meter.clear_remaining = clear_then_fall_silent
        async with bank:
            first = await run_commands(bank, [Command(1, 1, 'clear')])
            assert meter.remaining == Decimal('0.00')
            bank.options.drop = 0.0
            meter.clear_remaining = apply
            again = await run_commands(bank, [Command(1, 1, 'clear')])
        state, error, result = first.final(1)[1:]
        assert state == 'failed'
        assert error.startswith('clear not acknowledged: no valid reply')
        assert 'remaining energy unreadable' in error
        # billing keeps this figure: the retry finds nothing left
        assert result == {'remaining_before': '50.00', 'unknown': True}
        state, _, result = again.final(1)[1:]
        assert state == 'confirmed' and result['remaining_before'] == '0.00'
    asyncio.run(run())
