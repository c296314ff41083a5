# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The daemon's plan building (no database)"
from decimal import Decimal

from trytond.modules.dh_collector import collectd, engine
from trytond.modules.dh_collector.engine.modbus import ModbusTarget

CHANNEL = {'id': 7, 'kind': 'tcp', 'host': '127.0.0.1', 'port': 9100,
    'device': None, 'registration_id': None, 'baud': 9600, 'parity': 'N',
    'timeout': 0.5, 'retries': 1, 'backoff': 0.1, 'inter_byte_gap': 0.5,
    'modbus_framer': 'socket', 'collect_requested': False,
    'plans': [{'id': 1, 'registers': ['energy_total', 'energy_t1',
                'voltage'], 'interval': 60},
        {'id': 2, 'registers': ['water_flow'], 'interval': 1440}],
    'meters': [
        {'id': 1, 'address': '000015085381', 'protocol': 'dlt645_2007',
            'utility': 'electricity', 'vendor': 'standard',
            'password': '000000', 'modbus_map': None, 'ct': 1, 'pt': 1},
        {'id': 2, 'address': '14000000000501', 'protocol': 'cjt188',
            'utility': 'water', 'vendor': 'standard', 'password': '000000',
            'modbus_map': None, 'ct': 1, 'pt': 1},
        {'id': 3, 'address': '5', 'protocol': 'modbus',
            'utility': 'electricity', 'vendor': 'standard',
            'password': '000000', 'modbus_map': 'chint_dtsu666',
            'ct': Decimal(30), 'pt': Decimal(1)},
        {'id': 4, 'address': '6', 'protocol': 'modbus',
            'utility': 'electricity', 'vendor': 'standard',
            'password': '000000', 'modbus_map': 'no_such_map',
            'ct': 1, 'pt': 1},
        ]}


def test_targets_by_protocol_and_utility():
    spec = collectd.channel_spec(CHANNEL)
    assert spec.modbus_framer == 'socket' and spec.port == 9100
    targets = collectd.meter_targets(CHANNEL, {'energy_total', 'energy_t1',
            'voltage', 'water_flow'})
    by_id = {t.id: t for t in targets}
    assert set(by_id) == {1, 2, 3}          # the unknown map is left out
    assert by_id[1].registers == ['energy_t1', 'energy_total', 'voltage']
    assert by_id[2].registers == ['water_flow']
    assert isinstance(by_id[3], ModbusTarget)
    assert (by_id[3].unit_id, by_id[3].ct) == (5, Decimal(30))
    assert 'energy_t1' not in by_id[3].registers   # not in the map


def test_schedule_due_plans():
    schedule = collectd.Schedule()
    registers, plans = schedule.due(CHANNEL, now=1000.0)
    assert plans == [1, 2] and 'water_flow' in registers
    schedule.done(7, plans, 1000.0)
    assert schedule.due(CHANNEL, now=1000.0 + 59 * 60) == (set(), [])
    registers, plans = schedule.due(CHANNEL, now=1000.0 + 60 * 60)
    assert plans == [1] and 'water_flow' not in registers
    assert schedule.due(CHANNEL, now=1001.0, force=True)[1] == [1, 2]


def test_engine_rejects_mixed_bus():
    meters = collectd.meter_targets(CHANNEL, {'energy_total'})
    collector = engine.Collector([(collectd.channel_spec(CHANNEL), meters)],
        sink=None)
    assert collector.pollers == {}     # logged and left out, no crash
