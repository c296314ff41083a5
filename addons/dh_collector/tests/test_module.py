# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
import datetime as dt
import json

from trytond.modules.company.tests import CompanyTestMixin
from trytond.modules.dh_metering.tests.tools import create_areas, create_meter
from trytond.pool import Pool
from trytond.tests.test_tryton import ModuleTestCase, with_transaction


def setup_bus():
    pool = Pool()
    Channel = pool.get('dh.channel')
    Plan = pool.get('dh.read.plan')
    areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601']}}})
    room = areas['唐渠', '瀚盛家园', '15', '601']
    plan, = Plan.search([('registers', 'in', ['energy_total'])], limit=1)
    channel, = Channel.create([{'name': '485-1', 'kind': 'tcp',
                'host': '127.0.0.1', 'port': 9100,
                'plans': [('add', [plan.id])]}])
    m1 = create_meter(room, '201', '瀚15#601A', '15085381', bus=channel.id)
    m2 = create_meter(room, '202', '瀚15#601水', '14000000000202',
        utility='water', bus=channel.id)
    return channel, m1, m2


class DhCollectorTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the dh_collector module"
    module = 'dh_collector'

    @with_transaction()
    def test_plan_for_collector(self):
        "The daemon gets channels, plans and meters as plain data"
        pool = Pool()
        Channel = pool.get('dh.channel')
        channel, m1, m2 = setup_bus()
        plan, = Channel.plan_for_collector()
        self.assertEqual(plan['id'], channel.id)
        self.assertEqual(plan['port'], 9100)
        self.assertEqual([m['address'] for m in plan['meters']],
            ['000015085381', '14000000000202'])
        self.assertIn('energy_total', plan['plans'][0]['registers'])
        now = dt.datetime(2026, 11, 1, 10)
        due = channel.due_registers(now, {})
        self.assertTrue(due)
        plan_id = list(due)[0]
        self.assertEqual(channel.due_registers(now, {plan_id: now}), {})

    @with_transaction()
    def test_command_queue(self):
        "Commands are queued once, retried, confirmed, failed and expired"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        channel, m1, m2 = setup_bus()
        Meter.trip([m1])
        Meter.trip([m1])     # the same open command is not doubled
        trip, = Command.search([('kind', '=', 'trip')])
        self.assertEqual((trip.state, trip.channel), ('queued', channel))
        self.assertEqual(Command.pending(channel.id), [trip])
        self.assertEqual(Command.report(trip.id, 'sent'), 'sent')
        self.assertEqual(Command.pending(channel.id), [])   # in flight
        self.assertEqual(Command.report(trip.id, 'failed', 'timeout'),
            'queued')
        self.assertEqual(Command.pending(channel.id), [trip])
        Command.report(trip.id, 'sent')
        self.assertEqual(Command.report(trip.id, 'confirmed', None,
                {'relay': 'open'}), 'confirmed')
        self.assertEqual(Command(trip.id).attempts, 2)
        m1 = Meter(m1.id)
        self.assertEqual((m1.relay, m1.state), ('open', 'cutoff'))
        self.assertEqual(json.loads(Command(trip.id).result),
            {'relay': 'open'})

        Meter.close([m1])
        close, = Command.search([('kind', '=', 'close')])
        for _ in range(3):
            Command.report(close.id, 'sent')
            state = Command.report(close.id, 'failed', 'no answer')
        self.assertEqual(state, 'failed')
        self.assertEqual(Command(close.id).attempts, 3)

        Meter.read_now([m2])
        read, = Command.search([('kind', '=', 'read')])
        Command.write([read], {'expires_at': dt.datetime.now()
                - dt.timedelta(seconds=1)})
        self.assertEqual(Command.pending(channel.id), [])
        self.assertEqual(Command.cron_expire(), 1)
        read = Command(read.id)
        self.assertEqual(read.state, 'expired')
        self.assertIn('0', read.last_error)

    @with_transaction()
    def test_safety_commands(self):
        "Safety commands queue; a confirmed load reset records the relay"
        pool = Pool()
        Command = pool.get('dh.command')
        Meter = pool.get('dh.meter')
        channel, m1, m2 = setup_bus()
        Meter.write([m1], {'relay': 'open'})
        write, = Command.queue([m1], 'param_write',
            {'params': {'max_load': '8', 'overload_trips_allowed': 20}})
        reset, = Command.queue([m1], 'load_reset')
        events, = Command.queue([m1], 'event_read', {'last': 10})
        read, = Command.queue([m1], 'param_read', {'params': ['max_load']})
        self.assertEqual(json.loads(write.payload)['params']['max_load'],
            '8')
        self.assertEqual([c.kind for c in Command.pending(channel.id)],
            ['param_write', 'load_reset', 'event_read', 'param_read'])
        Command.report(reset.id, 'sent')
        Command.report(reset.id, 'confirmed', None, {'lockout': False,
                'relay': 'closed'})
        self.assertEqual(Meter(m1.id).relay, 'closed')
        Command.report(events.id, 'sent')
        Command.report(events.id, 'confirmed', None, {'events': [],
                'lockout': False})
        self.assertEqual(Meter(m1.id).relay, 'closed')

    @with_transaction()
    def test_collect_now_and_health(self):
        "Collect now is a request the daemon clears with the round's figures"
        pool = Pool()
        Channel = pool.get('dh.channel')
        channel, m1, m2 = setup_bus()
        Channel.collect_now([channel])
        self.assertTrue(Channel(channel.id).collect_requested)
        now = dt.datetime(2026, 11, 1, 10)
        Channel.record_round(channel.id, {'finished': now, 'meters': 2,
                'meters_answering': 1, 'readings': 5, 'attempts': 10,
                'errors': 3, 'last_error': 'timeout 000000000202'})
        channel = Channel(channel.id)
        self.assertFalse(channel.collect_requested)
        self.assertEqual(channel.error_rate, 30.0)
        self.assertEqual(channel.last_success_at, now)
        self.assertEqual(channel.meters_answering, 1)


del ModuleTestCase
