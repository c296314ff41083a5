# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The wall status board's data: the user's record rules, counts, filter, alarms"
import unittest
from decimal import Decimal

from trytond.modules.company.tests import set_company
from trytond.modules.dh_billing.tests.tools import setup_accounting
from trytond.modules.dh_metering.tests.tools import (
    create_areas, create_meter, utc)
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

D = Decimal


def build():
    """唐渠 (two rooms, three meters) and 东政 (one meter); a manager of
    唐渠 and a DH administrator"""
    pool = Pool()
    User = pool.get('res.user')
    Group = pool.get('res.group')
    ModelData = pool.get('ir.model.data')
    Profile = pool.get('dh.alarm.profile')
    areas = create_areas({'唐渠': {'瀚盛家园': {'15': ['601', '602']},
                '培元新苑': {'19': ['1404']}},
            '东政': {'东政': {'东政': ['E108']}}})
    Profile.create([{'name': '居民', 'voltage_max': D(240),
                'areas': [('add', [areas['唐渠', ].id])]}])
    a = create_meter(areas['唐渠', '瀚盛家园', '15', '601'], '202', '瀚15#601A',
        '15085381')
    b = create_meter(areas['唐渠', '瀚盛家园', '15', '602'], '203', '瀚15#602A',
        '15085377')
    c = create_meter(areas['唐渠', '培元新苑', '19', '1404'], '204',
        '培元新苑19#1404A', '15085390')
    d = create_meter(areas['东政', '东政', '东政', 'E108'], '2001',
        '赵敏 E108-109', '16005628')
    manager = Group(ModelData.get_id('dh_metering', 'group_dh_manager'))
    admin_group = Group(ModelData.get_id('dh_metering', 'group_dh_admin'))
    bob, boss = User.create([
            {'login': 'bob', 'name': 'Bob', 'groups': [('add', [manager.id])],
                'dh_areas': [('add', [areas['唐渠', ].id])]},
            {'login': 'boss', 'name': 'Boss',
                'groups': [('add', [admin_group.id])]}])
    return areas, (a, b, c, d), bob, boss


class DhAlarmBoardTestCase(unittest.TestCase):
    "状态报警界面"

    @classmethod
    def setUpClass(cls):
        activate_module(['dh_alarm'])

    def as_user(self, user):
        transaction = Transaction()
        return transaction.set_user(user.id), transaction.set_context(
            _check_access=True)

    @with_transaction()
    def test_tiles_follow_record_rules(self):
        "An area manager gets exactly his meters, an administrator all"
        from trytond.modules.dh_alarm import board
        pool = Pool()
        Meter = pool.get('dh.meter')
        company = setup_accounting()
        with set_company(company):
            areas, (a, b, c, d), bob, boss = build()
            Meter.write([b], {'state': 'cutoff'})
            Meter.write([d], {'state': 'fault'})
            pool.get('dh.meter.reading').ingest(
                [(a.id, 'voltage', utc(2026, 11, 20, 10), D(250))])
            transaction = Transaction()
            with transaction.set_user(bob.id), transaction.set_context(
                    _check_access=True):
                mine = board.tiles()
            with transaction.set_user(boss.id), transaction.set_context(
                    _check_access=True):
                everything = board.tiles()
        self.assertEqual({t[0] for t in mine['tiles']}, {a.id, b.id, c.id})
        self.assertEqual({t[0] for t in everything['tiles']},
            {a.id, b.id, c.id, d.id})
        self.assertEqual(mine['total'], 3)
        tiles = {t[0]: t for t in everything['tiles']}
        self.assertEqual(tiles[a.id][1:], ['瀚15#601A', 'alarm', 1])
        self.assertEqual(tiles[b.id][2:], ['cutoff', 0])
        self.assertEqual(tiles[d.id][1:], ['赵敏 E108-109', 'fault', 0])
        counts = {s['state']: s['count'] for s in mine['states']}
        self.assertEqual(counts, {'normal': 1, 'alarm': 1, 'cutoff': 1,
                'fault': 0, 'offline': 0})
        colours = {s['state']: (s['colour'], s['name'])
            for s in mine['states']}
        self.assertEqual(colours['cutoff'], ('black', '断电'))
        self.assertEqual(colours['alarm'], ('yellow', '报警'))
        self.assertEqual(colours['fault'], ('red', '故障'))
        self.assertEqual(colours['normal'], ('white', '正常'))
        self.assertEqual(colours['offline'], ('grey', '离线'))
        counts = {s['state']: s['count'] for s in everything['states']}
        self.assertEqual(counts['fault'], 1)

    @with_transaction()
    def test_filter_by_area(self):
        "Level 1 and 2 filters; a manager's filter cannot reach other areas"
        from trytond.modules.dh_alarm import board
        company = setup_accounting()
        with set_company(company):
            areas, (a, b, c, d), bob, boss = build()
            transaction = Transaction()
            with transaction.set_user(boss.id), transaction.set_context(
                    _check_access=True):
                district = board.tiles(areas['唐渠', ].id)
                community = board.tiles(areas['唐渠', '培元新苑'].id)
                choices = board.areas()
            with transaction.set_user(bob.id), transaction.set_context(
                    _check_access=True):
                other = board.tiles(areas['东政', ].id)
                his_choices = board.areas()
        self.assertEqual({t[0] for t in district['tiles']}, {a.id, b.id, c.id})
        self.assertEqual([t[0] for t in community['tiles']], [c.id])
        self.assertEqual(other['tiles'], [])
        self.assertEqual({x['name'] for x in choices}, {'唐渠', '东政',
                '唐渠/瀚盛家园', '唐渠/培元新苑', '东政/东政'})
        self.assertNotIn('东政', {x['name'] for x in his_choices})

    @with_transaction()
    def test_meter_alarms(self):
        "A tile's open alarms, in Chinese; another area's meter is hidden"
        from trytond.modules.dh_alarm import board
        company = setup_accounting()
        with set_company(company):
            areas, (a, b, c, d), bob, boss = build()
            pool = Pool()
            pool.get('dh.meter.reading').ingest(
                [(a.id, 'voltage', utc(2026, 11, 20, 10), D('251.5'))])
            transaction = Transaction()
            with transaction.set_user(bob.id), transaction.set_context(
                    _check_access=True):
                result = board.meter_alarms(a.id)
                none = board.meter_alarms(b.id)
                hidden = board.meter_alarms(d.id)
        self.assertEqual(result['meter']['name'], '瀚15#601A')
        self.assertEqual(result['meter']['state_name'], '报警')
        alarm, = result['alarms']
        self.assertEqual((alarm['kind'], alarm['kind_name'], alarm['value'],
                alarm['threshold'], alarm['state_name']),
            ('over_voltage', '过压', '251.5', '240', '未处理'))
        self.assertEqual(alarm['start'], '2026-11-20 10:00')  # local
        self.assertEqual(none['alarms'], [])
        self.assertIsNone(hidden)

    @with_transaction()
    def test_board_action_url(self):
        "The menu's wizard opens the page of this database"
        pool = Pool()
        Wizard = pool.get('dh.alarm.board.open', type='wizard')
        session_id, _, _ = Wizard.create()
        result = Wizard(session_id).execute(session_id, {}, 'open_')
        action, = result['actions']
        self.assertEqual(action[0]['type'], 'ir.action.url')
        self.assertEqual(action[0]['url'],
            f'/{Transaction().database.name}/dh/board')
