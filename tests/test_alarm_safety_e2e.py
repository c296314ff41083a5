"""安全用电 end to end: an alarm profile's limits are written to a simulated
meter by the collector daemon (over TCP, through dh.command), the meter
trips on an overload within 3 s, closes after 3 minutes, locks out after
the allowed count; its trip records come back into the alarm list, the
meter turns red, and a manager's reset lifts the lockout."""
import asyncio
import datetime as dt
import os
import shutil
import sys
import tempfile
from decimal import Decimal

import pytest

from trytond.modules.dh_collector import collectd
from trytond.modules.dh_collector.simulator import Bank, MeterSpec, SimOptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbtools  # noqa: E402

NAME = 'dh_alarm_safety'
ADDRESS = '000015085381'


@pytest.fixture(scope='module')
def database():
    folder, config = dbtools.create(NAME, 'dh_alarm')
    db = collectd.Database(config, NAME)

    def setup(pool):
        from trytond.modules.dh_metering.tests.tools import (
            create_areas, create_meter)
        Channel = pool.get('dh.channel')
        Profile = pool.get('dh.alarm.profile')
        areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601']}}})
        room = areas['唐渠', '瀚盛家园', '15', '601']
        Plan = pool.get('dh.read.plan')
        ModelData = pool.get('ir.model.data')
        plan = Plan(ModelData.get_id('dh_collector', 'plan_hourly_energy'))
        channel, = Channel.create([{'name': 'bus-1', 'kind': 'tcp',
                    'host': '127.0.0.1', 'port': 1, 'timeout': 0.5,
                    'retries': 1, 'backoff': 0.05,
                    'plans': [('add', [plan.id])]}])
        profile, = Profile.create([{'name': '公寓安全用电',
                    'max_load': Decimal(5), 'overload_trips_allowed': 1,
                    'malignant_power': Decimal('2.5'),
                    'power_change_threshold': Decimal(1),
                    'offline_cycles': 0, 'stagnant_days': 0,
                    'areas': [('add', [areas['唐渠', ].id])]}])
        meter = create_meter(room, '202', '瀚15#601A', ADDRESS,
            bus=channel.id, password='000000')
        return channel.id, profile.id, meter.id
    ids = db._run(setup)
    yield db, ids
    shutil.rmtree(folder, ignore_errors=True)


def test_limits_trip_lockout_and_reset(database):
    db, (channel_id, profile_id, meter_id) = database
    spool = tempfile.mktemp(suffix='.jsonl')

    def call(method, *args):
        def run(pool):
            model, name = method
            records = {'dh.alarm.profile': [profile_id],
                'dh.meter': [meter_id]}[model]
            Model = pool.get(model)
            getattr(Model, name)(Model.browse(records), *args)
        db._run(run)

    def commands():
        def run(pool):
            Command = pool.get('dh.command')
            return [(c.kind, c.state, c.last_error) for c in Command.search(
                    [('meter', '=', meter_id)], order=[('id', 'ASC')])]
        return db._run(run, readonly=True)

    def alarms():
        def run(pool):
            Alarm = pool.get('dh.alarm')
            Meter = pool.get('dh.meter')
            return ([(a.kind, a.state, a.value) for a in Alarm.search(
                        [('meter', '=', meter_id)], order=[('id', 'ASC')])],
                Meter(meter_id).state, Meter(meter_id).relay)
        return db._run(run, readonly=True)

    async def main():
        bank = Bank([[MeterSpec(ADDRESS, energy=Decimal(100), rate=1.0)]],
            SimOptions(speed=0, start=dt.datetime(2026, 11, 20, 10)))
        ports = await bank.serve_tcp('127.0.0.1', 0)

        def point(pool):
            Channel = pool.get('dh.channel')
            Channel.write([Channel(channel_id)], {'port': ports[0]})
        await asyncio.to_thread(db._run, point)
        daemon = collectd.Daemon(db, spool)
        meter = bank.meter(ADDRESS)
        try:
            # 设置: the profile's limits go to the meter
            await asyncio.to_thread(call, ('dh.alarm.profile',
                    'write_safety'))
            await daemon.run_once()
            written = commands()
            # a heater: over 5 kW trips within 3 s, closes after 3 minutes,
            # and the second trip (one allowed) locks it out
            meter.rate = 5.5
            bank.clock.advance(3)
            tripped = meter.relay_open
            bank.clock.advance(180)
            bank.clock.advance(3)
            locked = meter.relay_open
            # 报警记录 into the alarm list
            await asyncio.to_thread(call, ('dh.meter', 'read_trip_records'))
            await daemon.run_once()
            after_read = alarms()
            # the manager checks the room and resets it
            meter.rate = 1.0
            await asyncio.to_thread(call, ('dh.meter', 'reset_lockout'))
            await daemon.run_once()
            return written, tripped, locked, after_read, alarms(), \
                meter.relay_open
        finally:
            await bank.stop()

    written, tripped, locked, after_read, after_reset, still_open = \
        asyncio.run(main())
    assert written == [('param_write', 'confirmed', None)]
    assert tripped and locked
    events, state, relay = after_read
    trips = [e for e in events if e[0] == 'load_trip']
    assert [(k, s) for k, s, _ in trips] == [('load_trip', 'closed')] * 2
    assert all(v == Decimal('5.5') for _, _, v in trips)
    assert ('load_lockout', 'open', None) in events
    assert state == 'fault'
    events, state, relay = after_reset
    assert ('load_lockout', 'closed', None) in events
    assert state != 'fault' and relay == 'closed'
    assert not still_open
