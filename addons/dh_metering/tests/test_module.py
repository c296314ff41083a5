# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
import datetime as dt
import io
import json

import openpyxl

from trytond.exceptions import UserError
from trytond.model.exceptions import AccessError, ValidationError
from trytond.modules.company.tests import CompanyTestMixin
from trytond.pool import Pool
from trytond.tests.test_tryton import (
    ModuleTestCase, TestCase, activate_module, drop_db, with_transaction)
from trytond.transaction import Transaction

from .tools import create_areas, create_meter, d, utc

PLAZA = {
    '唐渠': {'瀚盛家园': {'15': ['601', '602']}},
    '东政': {'东区': {'2': ['301']}},
    }


def setup_plaza():
    areas = create_areas(PLAZA)
    room_a = areas['唐渠', '瀚盛家园', '15', '601']
    room_b = areas['唐渠', '瀚盛家园', '15', '602']
    room_c = areas['东政', '东区', '2', '301']
    m1 = create_meter(room_a, '201', '瀚15#601A', '15085381')
    m2 = create_meter(room_b, '202', '瀚15#602A', '15085377',
        multiplier=d(30))
    m3 = create_meter(room_c, '301', '东2#301D', '16005628')
    return areas, m1, m2, m3


def ingest(rows):
    return Pool().get('dh.meter.reading').ingest(rows)


def usage(table, meter, register='energy_total'):
    cursor = Transaction().connection.cursor()
    cursor.execute(f'SELECT period, usage_e4, last_e4 FROM {table} '
        'WHERE meter = %s AND register = %s ORDER BY period'.replace(
            '%s', '?' if _sqlite() else '%s'), (meter.id, register))
    return [(_as_str(p), u / 10000, (l / 10000) if l is not None else None)
        for p, u, l in cursor]


def _as_str(value):
    return value if isinstance(value, str) else value.isoformat(' ') \
        if isinstance(value, dt.datetime) else value.isoformat()


def _sqlite():
    from trytond import backend
    return backend.name == 'sqlite'


class DhMeteringTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the dh_metering module"
    module = 'dh_metering'

    @with_transaction()
    def test_area_paths(self):
        "Areas keep their full name and ancestors; meters copy them"
        pool = Pool()
        Area = pool.get('dh.area')
        areas, m1, m2, m3 = setup_plaza()
        room = areas['唐渠', '瀚盛家园', '15', '601']
        self.assertEqual(room.full_name, '唐渠/瀚盛家园/15/601')
        self.assertEqual(room.l1, areas['唐渠',])
        self.assertEqual(room.l3, areas['唐渠', '瀚盛家园', '15'])
        self.assertEqual((m1.level1, m1.level2, m1.level3, m1.level4),
            ('唐渠', '瀚盛家园', '15', '601'))
        self.assertEqual(m1.area_l1, areas['唐渠',])

        Area.write([areas['唐渠', '瀚盛家园']], {'name': '瀚盛'})
        m1 = m1.__class__(m1.id)
        self.assertEqual(m1.level2, '瀚盛')
        self.assertEqual(Area(room.id).full_name, '唐渠/瀚盛/15/601')

        with self.assertRaises(ValidationError):
            Area.create([{'name': 'x', 'level': '3',
                        'parent': areas['唐渠',].id}])
        with self.assertRaises(ValidationError):
            Area.create([{'name': 'y', 'level': '2'}])

    @with_transaction()
    def test_meter_validation(self):
        "Addresses are padded and checked; multiplier must be positive"
        areas, m1, m2, m3 = setup_plaza()
        room = areas['东政', '东区', '2', '301']
        meter = create_meter(room, '900', 'x', '123')
        self.assertEqual(meter.address, '000000000123')
        with self.assertRaises(ValidationError):
            create_meter(room, '901', 'y', '12AB')
        with self.assertRaises(ValidationError):
            create_meter(room, '902', 'z', '555', multiplier=d(0))
        with self.assertRaises(ValidationError):
            create_meter(room, '903', 'w', '556', utility='water',
                protocol='dlt645_2007')
        with self.assertRaises(UserError):
            create_meter(room, '904', 'dup', '16005628')

    @with_transaction()
    def test_ingest_idempotent_and_aggregates(self):
        "Ingest stores once, keeps usage aggregates and the last reading"
        areas, m1, m2, m3 = setup_plaza()
        rows = [(m1.id, 'energy_total', utc(2026, 10, 31, h), 80 + h)
            for h in range(20, 24)]
        rows += [(m1.id, 'energy_total', utc(2026, 11, 1, h), 104 + h * 2)
            for h in range(0, 3)]
        result = ingest(rows)
        self.assertEqual(result['inserted'], 7)
        self.assertEqual(result['duplicates'], 0)
        # the same rows again (and one twice in the batch): nothing changes
        again = ingest(rows + rows[:1])
        self.assertEqual(again['inserted'], 0)
        self.assertEqual(again['duplicates'], 8)

        # readings 100,101,102,103 (Oct 31 20:00-23:00), 104 (Nov 1 00:00
        # closes Oct 31), 106 (01:00), 108 (02:00)
        self.assertEqual(usage('dh_usage_day', m1), [
                ('2026-10-31', 4.0, 104.0), ('2026-11-01', 4.0, 108.0)])
        self.assertEqual(usage('dh_usage_month', m1), [
                ('2026-10-01', 4.0, 104.0), ('2026-11-01', 4.0, 108.0)])
        self.assertEqual(usage('dh_usage_year', m1), [
                ('2026-01-01', 8.0, 108.0)])
        hours = usage('dh_usage_hour', m1)
        # the first reading opens its hour with zero usage
        self.assertEqual(len(hours), 7)
        self.assertEqual(sum(u for _, u, _ in hours), 8.0)
        meter = m1.__class__(m1.id)
        self.assertEqual(meter.last_value, 108.0)
        self.assertEqual(meter.last_read_at, utc(2026, 11, 1, 2))

    @with_transaction()
    def test_ingest_multiplier_and_late_reading(self):
        "Usage is scaled by the multiplier; a late reading splits usage"
        areas, m1, m2, m3 = setup_plaza()
        ingest([(m2.id, 'energy_total', utc(2026, 11, 1, 10), d('10.00')),
                (m2.id, 'energy_total', utc(2026, 11, 3, 10), d('12.50'))])
        self.assertEqual(usage('dh_usage_day', m2), [
                ('2026-11-01', 0.0, 10.0), ('2026-11-03', 75.0, 12.5)])
        # a reading of Nov 2 arrives late: the 2.5 × 30 are split
        result = ingest([(m2.id, 'energy_total', utc(2026, 11, 2, 10),
                    d('11.00'))])
        self.assertEqual(result['inserted'], 1)
        self.assertEqual(usage('dh_usage_day', m2), [
                ('2026-11-01', 0.0, 10.0), ('2026-11-02', 30.0, 11.0),
                ('2026-11-03', 45.0, 12.5)])
        meter = m2.__class__(m2.id)
        self.assertEqual(meter.last_value, 12.5)

    @with_transaction()
    def test_ingest_reset_and_rollover(self):
        "A reset is a new baseline, a rollover wraps; never hugely negative"
        areas, m1, m2, m3 = setup_plaza()
        result = ingest([
                (m1.id, 'energy_total', utc(2026, 11, 1, 1), d('5000.00')),
                (m1.id, 'energy_total', utc(2026, 11, 1, 2), d('5002.00')),
                # meter replaced: the new one starts at 3
                (m1.id, 'energy_total', utc(2026, 11, 1, 3), d('3.00')),
                (m1.id, 'energy_total', utc(2026, 11, 1, 4), d('4.50')),
                (m3.id, 'energy_total', utc(2026, 11, 1, 1),
                    d('999998.00')),
                (m3.id, 'energy_total', utc(2026, 11, 1, 2), d('1.25')),
                ])
        self.assertEqual(result['resets'], 1)
        self.assertEqual(result['rollovers'], 1)
        self.assertEqual(usage('dh_usage_day', m1),
            [('2026-11-01', 3.5, 4.5)])
        self.assertEqual(usage('dh_usage_day', m3),
            [('2026-11-01', 3.25, 1.25)])

    @with_transaction()
    def test_ingest_rejects_bad_input(self):
        "Bad rows raise a clear error and nothing is stored"
        pool = Pool()
        Reading = pool.get('dh.meter.reading')
        areas, m1, m2, m3 = setup_plaza()
        for bad in [
                [(m1.id, 'energy_total', utc(2026, 11, 1), 1),
                    (m1.id, 'no_such_register', utc(2026, 11, 1), 1)],
                [(m1.id, 'energy_total', 'yesterday', 1)],
                [(m1.id, 'energy_total', utc(2026, 11, 1), float('nan'))],
                [(m1.id, 'energy_total', utc(2026, 11, 1), -5)],
                [(999999, 'energy_total', utc(2026, 11, 1), 1)],
                [('x',)],
                ]:
            with self.assertRaises(UserError):
                ingest(bad)
        self.assertEqual(Reading.search([], count=True), 0)

    @with_transaction()
    def test_reports(self):
        "Daily matrix and usage report give the product's figures"
        pool = Pool()
        Matrix = pool.get('dh.report.daily_matrix')
        Report = pool.get('dh.report.usage')
        areas, m1, m2, m3 = setup_plaza()
        rows = []
        for day in range(1, 31):
            rows.append((m1.id, 'energy_total', utc(2026, 11, day, 0, 45),
                    d(1000) + day * d('1.5')))
            rows.append((m2.id, 'energy_total', utc(2026, 11, day, 0, 45),
                    d(10) + day * d('0.1')))
        rows.append((m1.id, 'energy_total', utc(2026, 10, 31, 0, 45),
                d(1000)))
        ingest(rows)
        with Transaction().set_context(year=2026, month='11',
                register='energy_total'):
            row, = Matrix.search([('name', '=', '瀚15#601A')])
            self.assertEqual(row.d01, 1.5)
            self.assertEqual(row.d15, 1.5)
            self.assertIsNone(row.d31)
            self.assertAlmostEqual(row.total, 45.0)
            row2, = Matrix.search([('name', 'ilike', '%602%')])
            self.assertAlmostEqual(row2.d02, 3.0)   # 0.1 × 30
            self.assertEqual(row2.d01, 0.0)         # first reading: no usage
            self.assertEqual(len(Matrix.search([])), 3)
        with Transaction().set_context(granularity='day',
                from_date=dt.date(2026, 11, 10),
                to_date=dt.date(2026, 11, 20), register='energy_total'):
            row, = Report.search([('number', '=', '201')])
            self.assertAlmostEqual(row.usage, 16.5)
            self.assertAlmostEqual(row.current_value, 1030.0)
            self.assertEqual(row.current_at, utc(2026, 11, 20, 0, 45))
            self.assertAlmostEqual(row.previous_value, 1013.5)
            self.assertEqual(row.previous_at, utc(2026, 11, 9, 0, 45))
            self.assertEqual(row.multiplier, 1.0)
            fuzzy = Report.search([('level1', 'ilike', '%唐%')])
            self.assertEqual(len(fuzzy), 2)
        with Transaction().set_context(granularity='month',
                from_date=dt.date(2026, 11, 1),
                to_date=dt.date(2026, 11, 30), register='energy_total'):
            row, = Report.search([('number', '=', '201')])
            self.assertAlmostEqual(row.usage, 45.0)
            self.assertAlmostEqual(row.previous_value, 1000.0)

    @with_transaction()
    def test_record_rules(self):
        "An area manager sees only the meters, readings and reports below "
        "his areas"
        pool = Pool()
        User = pool.get('res.user')
        Group = pool.get('res.group')
        Meter = pool.get('dh.meter')
        Reading = pool.get('dh.meter.reading')
        Matrix = pool.get('dh.report.daily_matrix')
        Area = pool.get('dh.area')
        ModelData = pool.get('ir.model.data')
        areas, m1, m2, m3 = setup_plaza()
        ingest([(m.id, 'energy_total', utc(2026, 11, 1, h), h)
                for m in [m1, m2, m3] for h in range(3)])
        manager = Group(ModelData.get_id('dh_metering', 'group_dh_manager'))
        admin_group = Group(ModelData.get_id('dh_metering', 'group_dh_admin'))
        bob, alice, boss = User.create([
                {'login': 'bob', 'name': 'Bob', 'groups': [('add',
                                [manager.id])],
                    'dh_areas': [('add', [areas['唐渠', '瀚盛家园'].id])]},
                {'login': 'alice', 'name': 'Alice', 'groups': [('add',
                                [manager.id])],
                    'dh_areas': [('add', [areas['东政',].id])]},
                {'login': 'boss', 'name': 'Boss', 'groups': [('add',
                                [admin_group.id])]},
                ])
        transaction = Transaction()
        with transaction.set_user(bob.id), transaction.set_context(
                _check_access=True):
            self.assertEqual(Meter.search([]), [m1, m2])
            self.assertEqual(Reading.search([], count=True), 6)
            with transaction.set_context(year=2026, month='11'):
                self.assertEqual(
                    {r.meter for r in Matrix.search([])}, {m1, m2})
            with self.assertRaises(AccessError):
                Meter.read([m3.id], ['name'])
            # he sees the way up to his area, not the other district
            visible = {a.full_name for a in Area.search([])}
            self.assertIn('唐渠', visible)
            self.assertIn('唐渠/瀚盛家园/15/601', visible)
            self.assertNotIn('东政', visible)
            with self.assertRaises(AccessError):
                Meter.write([m1], {'name': 'hacked'})
        with transaction.set_user(alice.id), transaction.set_context(
                _check_access=True):
            self.assertEqual(Meter.search([]), [m3])
            self.assertEqual(Reading.search([], count=True), 3)
        with transaction.set_user(boss.id), transaction.set_context(
                _check_access=True):
            self.assertEqual(Meter.search([]), [m1, m2, m3])

    @with_transaction()
    def test_record_rules_assigned_meters(self):
        "权限分配: a manager sees his areas' meters or the meters ticked "
        "for him, and the way up to them"
        pool = Pool()
        User = pool.get('res.user')
        Group = pool.get('res.group')
        Meter = pool.get('dh.meter')
        Reading = pool.get('dh.meter.reading')
        Area = pool.get('dh.area')
        ModelData = pool.get('ir.model.data')
        Assign = pool.get('dh.meter.assign', type='wizard')
        areas, m1, m2, m3 = setup_plaza()
        m4 = create_meter(areas['东政', '东区', '2', '301'], '302',
            '东2#301E', '16005629')
        m5 = create_meter(areas['东政', '东区', '2', '301'], '303',
            '东2#301F', '16005630')
        ingest([(m.id, 'energy_total', utc(2026, 11, 1, h), h)
                for m in [m1, m2, m3, m4, m5] for h in range(2)])
        manager = Group(ModelData.get_id('dh_metering', 'group_dh_manager'))
        bob, = User.create([{'login': 'bob', 'name': 'Bob',
                    'groups': [('add', [manager.id])],
                    'dh_areas': [('add', [areas['唐渠', '瀚盛家园'].id])]}])
        transaction = Transaction()

        def visible():
            with transaction.set_user(bob.id), transaction.set_context(
                    _check_access=True):
                return Meter.search([])
        self.assertEqual(visible(), [m1, m2])
        # the screen: exact / fuzzy search, unassigned / assigned, save
        self.assertEqual(Assign.list_meters(bob.id, 'exact', '东2#301',
                'unassigned')[1], 0)
        lines, total = Assign.list_meters(bob.id, 'fuzzy', '东2#301',
            'unassigned')
        self.assertEqual(total, 3)
        self.assertEqual([l['meter'] for l in lines], [m3.id, m4.id, m5.id])
        self.assertFalse(any(l['selected'] for l in lines))
        self.assertEqual(Assign.apply(bob, [(m3.id, True), (m4.id, True),
                    (m5.id, False)]), (2, 0))
        lines, total = Assign.list_meters(bob.id, 'fuzzy', '东区',
            'assigned')
        self.assertEqual([l['meter'] for l in lines], [m3.id, m4.id])
        self.assertTrue(all(l['selected'] for l in lines))
        self.assertEqual(Assign.list_meters(bob.id, 'exact', '东2#301D',
                'assigned')[1], 1)
        self.assertEqual(visible(), [m1, m2, m3, m4])
        self.assertEqual(User(bob.id).dh_meters, (m3, m4))
        with transaction.set_user(bob.id), transaction.set_context(
                _check_access=True):
            self.assertEqual(Reading.search([], count=True), 8)
            with self.assertRaises(AccessError):
                Meter.read([m5.id], ['name'])
            # the way up to his ticked meters, not their neighbours
            self.assertEqual(
                [r['area.'] for r in Meter.read([m3.id], ['area.rec_name'])],
                [{'id': areas['东政', '东区', '2', '301'].id,
                        'rec_name': '东政/东区/2/301'}])
            self.assertIn('东政/东区/2/301',
                {a.full_name for a in Area.search([])})
            # no write through the assignment
            with self.assertRaises(AccessError):
                Meter.write([Meter(m3.id)], {'name': 'hacked'})
        # unticking takes them away again
        self.assertEqual(Assign.apply(bob, [(m3.id, False)]), (0, 1))
        self.assertEqual(visible(), [m1, m2, m4])
        with transaction.set_user(bob.id), transaction.set_context(
                _check_access=True):
            self.assertEqual(Reading.search([], count=True), 6)
            self.assertIn('东政', {a.full_name for a in Area.search([])})
        # the way up goes with the last ticked meter (cached paths cleared)
        User.write([bob], {'dh_meters': [('remove', [m4.id])]})
        self.assertEqual(visible(), [m1, m2])
        with transaction.set_user(bob.id), transaction.set_context(
                _check_access=True):
            self.assertNotIn('东政', {a.full_name for a in Area.search([])})

    @with_transaction()
    def test_merge_unmerge_log(self):
        "Merging and unmerging write the log the product shows"
        pool = Pool()
        Meter = pool.get('dh.meter')
        Log = pool.get('dh.meter.merge.log')
        areas, m1, m2, m3 = setup_plaza()
        master = create_meter(areas['东政', '东区', '2', '301'], '300',
            '东2#301公', '16005600', role='master')
        Meter.do_merge([m3], master)
        self.assertEqual(Meter(m3.id).master, master)
        with self.assertRaises(UserError):
            Meter.do_merge([m3], master)
        with self.assertRaises(UserError):
            Meter.do_merge([m1], m2)
        Meter.do_unmerge([Meter(m3.id)])
        self.assertIsNone(Meter(m3.id).master)
        logs = Log.search([], order=[('id', 'ASC')])
        self.assertEqual([l.description for l in logs], [
                '东2#301D合并到主表:东2#301公',
                '东2#301D取消合并从主表:东2#301公'])
        self.assertEqual(logs[0].operator.id, Transaction().user)

    @with_transaction()
    def test_status_count(self):
        "The status board counts meters per state"
        pool = Pool()
        Meter = pool.get('dh.meter')
        Count = pool.get('dh.meter.status.count')
        areas, m1, m2, m3 = setup_plaza()
        Meter.write([m1], {'state': 'cutoff'})
        counts = {c.state: (c.count, c.colour) for c in Count.search([])}
        self.assertEqual(counts, {'cutoff': (1, 'black'),
                'normal': (2, 'white')})

    @with_transaction()
    def test_exports(self):
        "Every report exports to an xlsx that reads back right"
        pool = Pool()
        Job = pool.get('dh.export.job')
        Log = pool.get('dh.meter.merge.log')
        areas, m1, m2, m3 = setup_plaza()
        ingest([(m.id, 'energy_total', utc(2026, 11, day, 0, 45),
                    d(100) + day) for m in [m1, m2, m3]
                for day in range(1, 6)])

        def run(report, criteria):
            job = Job.create_job(report, criteria)
            Job.run([job])
            job = Job(job.id)
            self.assertEqual(job.state, 'done', job.error)
            self.assertEqual(job.progress, 100)
            book = openpyxl.load_workbook(io.BytesIO(job.file))
            return job, book.active

        job, sheet = run('current', {'match': 'fuzzy', 'level1': '唐'})
        self.assertEqual(job.rows, 2)
        self.assertEqual(sheet['A1'].value, '当前数据 · level1~唐')
        self.assertEqual([c.value for c in sheet[2]][:8], ['编号', 'level1',
                'level2', 'level3', 'level4', '用户名', '表计地址',
                '正向有功总电能'])
        self.assertEqual(sheet['A3'].value, '201')
        self.assertEqual(sheet['H3'].value, 105.0)
        self.assertIsInstance(sheet['K3'].value, dt.datetime)
        self.assertEqual(sheet['K3'].value, dt.datetime(2026, 11, 5, 0, 45))
        self.assertEqual(sheet.freeze_panes, 'A3')
        self.assertTrue(sheet.auto_filter.ref)

        job, sheet = run('matrix', {'year': 2026, 'month': '11',
                'register': 'energy_total', 'match': 'exact',
                'name': '瀚15#602A'})
        self.assertEqual(job.rows, 1)
        self.assertEqual(sheet['I2'].value, '1日')
        self.assertEqual(sheet['I3'].value, 0)
        self.assertEqual(sheet['J3'].value, 30.0)   # 1 × multiplier 30

        job, sheet = run('usage', {'granularity': 'day',
                'from_date': '2026-11-03', 'to_date': '2026-11-04',
                'register': 'energy_total', 'match': 'fuzzy'})
        self.assertEqual(job.rows, 3)
        header = [c.value for c in sheet[2]]
        self.assertEqual(header[7:], ['倍率', '抄表项', '本次读数', '本次时间',
                '用量', '上次读数', '上次时间'])
        self.assertEqual([c.value for c in sheet[3]][9:], [104.0,
                dt.datetime(2026, 11, 4, 0, 45), 2.0, 102.0,
                dt.datetime(2026, 11, 2, 0, 45)])

        job, sheet = run('raw', {'meter': m1.id, 'meter_name': m1.name})
        self.assertEqual(job.rows, 5)
        job, sheet = run('hourly', {'meter': m1.id})
        self.assertEqual(job.rows, 5)
        with self.assertRaises(UserError):
            Job.create_job('raw', {})
        self.assertIsNotNone(json.loads(job.criteria))
        pool.get('dh.meter').do_merge([m3], create_meter(
                areas['东政', '东区', '2', '301'], '300', '东2#301公',
                '16005600', role='master'))
        job, sheet = run('merge_log', {})
        self.assertEqual(sheet['F3'].value, Log.search([])[0].description)

    @with_transaction()
    def test_tree_views_have_client_widgets(self):
        "Every list column has a widget the web client can draw"
        from lxml import etree
        pool = Pool()
        View = pool.get('ir.ui.view')
        # sao 8.0 Sao.View.TreeXMLViewParser.WIDGETS (no datetime: use
        # widget="date" and widget="time" columns)
        sao_tree = {'binary', 'boolean', 'callto', 'char', 'date', 'dict',
            'email', 'float', 'image', 'integer', 'many2many', 'many2one',
            'numeric', 'one2many', 'one2one', 'progressbar', 'reference',
            'selection', 'multiselection', 'sip', 'text', 'time',
            'timedelta', 'url'}
        views = View.search([('module', '=', 'dh_metering'),
                ('type', '=', 'tree')])
        self.assertTrue(views)
        for view in views:
            Model = pool.get(view.model)
            result = Model.fields_view_get(view.id, 'tree')
            for node in etree.fromstring(result['arch']).iter('field'):
                widget = node.get('widget') or result['fields'][
                    node.get('name')]['type']
                self.assertIn(widget, sao_tree,
                    f'{view.name}: {node.get("name")}')

    @with_transaction()
    def test_archive_import(self):
        "An archive with one bad row imports nothing; a good one imports all"
        pool = Pool()
        Meter = pool.get('dh.meter')
        Area = pool.get('dh.area')
        Party = pool.get('party.party')
        from ..archive import import_archive
        areas, m1, m2, m3 = setup_plaza()
        header = ['片区', '小区/楼宇', '栋', '室', '编号', '用户名', '表计地址',
            '类型', '协议', '倍率', '角色', '租户', '租户电话']
        good = [
            ['唐渠', '瀚盛家园', '15', '603', '501', '瀚15#603A', '15085999',
                '电', '', 30, '普通', '张伟', '13812345678'],
            ['唐渠', '瀚盛家园', '15', '603', '502', '瀚15#603水',
                '14000000000502', '水', 'CJ/T188', 1, '普通', '张伟', ''],
            ['海景', '海景时代广场', 'E区', 'E108-109', '503', 'E108-109',
                '15086001', '电', 'DL/T645-2007', 1, '公共表', '', ''],
            ]
        bad = good + [
            ['唐渠', '瀚盛家园', '15', '604', '504', 'x', '12AB', '电', '',
                1, '普通', '', ''],
            ['唐渠', '瀚盛家园', '15', '604', '505', 'y', '15085381', '电',
                '', 0, '普通', '', ''],
            ]

        def workbook(rows):
            book = openpyxl.Workbook()
            sheet = book.active
            sheet.append(header)
            for row in rows:
                sheet.append(row)
            output = io.BytesIO()
            book.save(output)
            return output.getvalue()

        before = Meter.search([], count=True), Area.search([], count=True)
        imported, summary = import_archive(workbook(bad))
        self.assertFalse(imported)
        self.assertIn('第 5 行', summary)
        self.assertIn('第 6 行', summary)
        self.assertEqual(
            (Meter.search([], count=True), Area.search([], count=True)),
            before)
        imported, summary = import_archive(b'not an excel file')
        self.assertFalse(imported)

        imported, summary = import_archive(workbook(good))
        self.assertTrue(imported, summary)
        meter, = Meter.search([('number', '=', '501')])
        self.assertEqual(meter.multiplier, d(30))
        self.assertEqual(meter.address, '000015085999')
        self.assertEqual(meter.level4, '603')
        self.assertEqual(meter.tenant.name, '张伟')
        water, = Meter.search([('number', '=', '502')])
        self.assertEqual((water.utility, water.protocol, water.tenant),
            ('water', 'cjt188', meter.tenant))
        shop, = Meter.search([('number', '=', '503')])
        self.assertEqual((shop.role, shop.level1), ('public', '海景'))
        self.assertEqual(len(Party.search([('name', '=', '张伟')])), 1)

        imported, summary = import_archive(workbook(good),
            create_areas=False)
        self.assertFalse(imported)   # now duplicates


class DhMeteringZhCNTestCase(TestCase):
    "The module in Simplified Chinese"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        drop_db()
        activate_module(['dh_metering'], lang='zh_CN')

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        drop_db()

    @with_transaction(context={'language': 'zh_CN'})
    def test_translated(self):
        "Field labels, selections and messages are in Chinese"
        pool = Pool()
        Meter = pool.get('dh.meter')
        fields = Meter.fields_get(['state', 'multiplier', 'address'])
        self.assertEqual(fields['state']['string'], '电表状态')
        self.assertEqual(fields['multiplier']['string'], '倍率')
        self.assertEqual(fields['address']['string'], '表计地址')
        self.assertIn(('cutoff', '断电'), fields['state']['selection'])
        # 权限分配
        start = pool.get('dh.meter.assign.start').fields_get(
            ['match', 'show'])
        self.assertIn(('exact', '精确查询'), start['match']['selection'])
        self.assertIn(('unassigned', '未分配'), start['show']['selection'])
        self.assertEqual(pool.get('res.user').fields_get(
                ['dh_meters'])['dh_meters']['string'], '分配表计')
        areas, m1, m2, m3 = setup_plaza()
        with self.assertRaises(UserError) as cm:
            Pool().get('dh.meter').do_unmerge([m1])
        self.assertIn('瀚15#601A', cm.exception.message)
        self.assertNotIn('is not merged', cm.exception.message)


del ModuleTestCase
