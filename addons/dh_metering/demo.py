# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The demo plaza: areas, meters, tenants, users and 30 days of hourly
readings from plausible consumption profiles.  Deterministic (seeded) and
idempotent: run on a database that has it already, it changes nothing.

Each dh module has a ``demo.py`` with a ``DemoPart`` registered under the
``dh.demo`` entry point group; ``dh demo`` runs them in ``sequence`` order."""
import datetime as dt
import math
import random
from decimal import Decimal

from trytond.pool import Pool
from trytond.transaction import Transaction

PASSWORD = 'dhDemo-2026x'
SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾'
GIVEN = '伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志'
# district -> [(community, abbreviation, buildings, rooms per building)]
RESIDENTIAL = {
    '唐渠': [('瀚盛家园', '瀚', 7, 10), ('绿波城', '绿', 7, 10),
        ('幸福里', '幸', 7, 10), ('永华苑', '永', 7, 10),
        ('保利御樽苑', '御', 7, 10), ('鑫唐佳苑', '鑫', 7, 10)],
    '东政': [('东区', '东', 7, 10), ('西苑', '西', 7, 10)],
    }
WATER_COMMUNITIES = {'永华苑', '西苑'}
PLAZA = ('海景', '海景时代广场', ['E区', 'F区'], 100)
USERS = [
    # login, name, group, districts
    ('manager_tangqu', '唐渠片区经理', 'group_dh_manager', ['唐渠']),
    ('manager_dongzheng', '东政片区经理', 'group_dh_manager', ['东政']),
    ('clerk', '充值员', 'group_dh_clerk', ['唐渠', '东政', '海景']),
    ('finance', '财务', 'group_dh_finance', ['唐渠', '东政', '海景']),
    ('maint', '维保员', 'group_dh_maintenance', ['唐渠', '东政', '海景']),
    ]


class DemoPart:
    sequence = 10
    name = 'dh_metering'

    @classmethod
    def build(cls, options, log):
        pool = Pool()
        Meter = pool.get('dh.meter')
        summary = {}
        cls.setup_company(log)
        users = cls.setup_users(log)
        summary['users'] = users
        if Meter.search([], count=True):
            log('dh_metering: demo plaza present, kept as it is')
        else:
            scale = float(options.get('scale') or 1)
            days = int(options.get('days') or 30)
            meters = cls.build_plaza(scale, log)
            cls.build_readings(meters, days, log)
            cls.assign_users()
        return summary

    @classmethod
    def counts(cls):
        "The summary counts, taken once every part has built"
        cursor = Transaction().connection.cursor()
        summary = {}
        for name, table in [('areas', 'dh_area'), ('meters', 'dh_meter'),
                ('readings', 'dh_reading'), ('tenants', 'party_party')]:
            cursor.execute(f'SELECT COUNT(*) FROM {table}')
            summary[name] = cursor.fetchone()[0]
        return summary

    @classmethod
    def setup_company(cls, log):
        pool = Pool()
        Company = pool.get('company.company')
        Currency = pool.get('currency.currency')
        Party = pool.get('party.party')
        User = pool.get('res.user')
        Lang = pool.get('ir.lang')
        if Company.search([]):
            return Company.search([])[0]
        cny, = Currency.search([('code', '=', 'CNY')]) or Currency.create([{
                    'name': '人民币', 'code': 'CNY', 'symbol': '¥',
                    'rounding': Decimal('0.01'), 'digits': 2}])
        party, = Party.create([{'name': '海景时代广场物业管理有限公司'}])
        company, = Company.create([{'party': party.id, 'currency': cny.id,
                    'timezone': 'Asia/Shanghai'}])
        zh, = Lang.search([('code', '=', 'zh_CN')])
        admin, = User.search([('login', '=', 'admin')])
        User.write([admin], {'companies': [('add', [company.id])],
                'company': company.id, 'language': zh.id})
        log('dh_metering: company 海景时代广场物业管理有限公司 (CNY)')
        return company

    @classmethod
    def setup_users(cls, log):
        pool = Pool()
        User = pool.get('res.user')
        Group = pool.get('res.group')
        ModelData = pool.get('ir.model.data')
        Lang = pool.get('ir.lang')
        Company = pool.get('company.company')
        zh, = Lang.search([('code', '=', 'zh_CN')])
        company = Company.search([])[0]
        logins = [('admin', None, 'group_dh_admin')]
        for login, name, group, _ in USERS:
            logins.append((login, name, group))
            if User.search([('login', '=', login)]):
                continue
            group = Group(ModelData.get_id('dh_metering', group))
            User.create([{'login': login, 'name': name, 'password': PASSWORD,
                        'language': zh.id, 'groups': [('add', [group.id])],
                        'companies': [('add', [company.id])],
                        'company': company.id}])
        return [(login, PASSWORD if login != 'admin' else None, group)
            for login, _, group in logins]

    @classmethod
    def assign_users(cls):
        pool = Pool()
        User = pool.get('res.user')
        Area = pool.get('dh.area')
        for login, _, _, districts in USERS:
            user, = User.search([('login', '=', login)])
            areas = Area.search([('level', '=', '1'),
                    ('name', 'in', districts)])
            User.write([user], {'dh_areas': [('add', [a.id for a in areas])]})

    @classmethod
    def build_plaza(cls, scale, log):
        pool = Pool()
        Area = pool.get('dh.area')
        Meter = pool.get('dh.meter')
        Party = pool.get('party.party')
        rng = random.Random(20181)

        def scaled(n):
            return max(1, int(round(n * scale)))

        # areas, level by level (one create per level keeps it fast)
        tree = {}
        for district, communities in RESIDENTIAL.items():
            for community, abbr, buildings, rooms in communities:
                for b in range(1, scaled(buildings) + 1):
                    for r in range(rooms):
                        floor, unit = divmod(r, 2)
                        room = f'{(floor + 1) * 100 + unit + 1}'
                        tree[(district, community, str(b), room)] = (
                            'res', abbr)
        district, community, zones, shops = PLAZA
        for z, zone in enumerate(zones):
            for s in range(scaled(shops // len(zones))):
                number = 101 + 2 * s
                tree[(district, community, zone,
                        f'{zone[0]}{number}-{number + 1}')] = ('shop', None)
        areas = {}
        for level in range(1, 5):
            keys = sorted({k[:level] for k in tree} - set(areas))
            created = Area.create([{'name': k[-1], 'level': str(level),
                        'parent': areas[k[:-1]].id if level > 1 else None}
                    for k in keys])
            areas.update(zip(keys, created))
        log(f'dh_metering: {len(areas)} areas')

        # tenants
        tenant_count = scaled(450)
        names = set()
        while len(names) < tenant_count:
            names.add(rng.choice(SURNAMES) + ''.join(
                    rng.choice(GIVEN) for _ in range(rng.choice([1, 2]))))
        names = sorted(names)
        tenants = Party.create([{'name': n, 'contact_mechanisms': [
                        ('create', [{'type': 'mobile',
                                    'value': f'138{i:08d}'}])]}
                for i, n in enumerate(names)])
        free_tenants = list(tenants)
        rng.shuffle(free_tenants)

        meters = []
        number = 10000     # five digits: the product's meter 2001 stays free
        for path, (kind, abbr) in sorted(tree.items()):
            room = areas[path]
            if kind == 'res':
                b, r = path[2], path[3]
                prefix = f'{abbr}{b}#{r}'
                subs = 'ABCD'[:rng.choice([2, 3, 4])]
                role = 'master' if abbr == '东' and b == '2' else 'public'
                specs = [(f'{prefix}公', role, 'public', None)]
                for s in subs:
                    tenant = None
                    if free_tenants and rng.random() < 0.25:
                        tenant = free_tenants.pop()
                    specs.append((f'{prefix}{s}', 'normal',
                            rng.choice(['home', 'home', 'home', 'shop']),
                            tenant))
                if path[1] in WATER_COMMUNITIES:
                    specs.append((f'{prefix}水', 'normal', 'water', None))
            else:
                tenant = free_tenants.pop() if free_tenants else None
                specs = [(path[3], 'normal', 'shop', tenant)]
            for name, role, profile, tenant in specs:
                number += 1
                water = profile == 'water'
                meters.append({
                        'number': str(number), 'name': name,
                        'address': (f'{14000000 + number:014d}' if water
                            else f'{15085000 + number:012d}'),
                        'utility': 'water' if water else 'electricity',
                        'protocol': 'cjt188' if water else 'dlt645_2007',
                        'channel': f'485-{path[0]}-{path[1]}-{path[2]}',
                        'multiplier': Decimal(30) if profile == 'shop'
                        and rng.random() < 0.1 else Decimal(1),
                        'role': role, 'area': room.id,
                        'tenant': tenant.id if tenant else None,
                        '_profile': profile})
        # a few tenants rent several rooms (多间统一管理)
        renters = [m for m in meters if m['tenant']]
        for m in rng.sample([m for m in meters if not m['tenant']
                    and m['role'] == 'normal' and m['utility'] ==
                    'electricity'], min(40, len(renters))):
            m['tenant'] = rng.choice(renters[:20])['tenant']
        profiles = [m.pop('_profile') for m in meters]
        records = Meter.create(meters)
        log(f'dh_metering: {len(records)} meters, {len(tenants)} tenants')

        # statuses for the board
        special = rng.sample(range(len(records)), max(5, len(records) // 25))
        states = {}
        for i, index in enumerate(special):
            states[index] = ['cutoff', 'cutoff', 'fault', 'alarm',
                'offline'][i % 5]
        stagnant = set(rng.sample(range(len(records)),
                max(1, len(records) // 50)))
        for index, state in states.items():
            profiles[index] = (profiles[index], state)
        for index in stagnant:
            profile = profiles[index]
            profiles[index] = ('stagnant', profile[1] if isinstance(
                    profile, tuple) else None)
        # the night-usage suspect
        for index, record in enumerate(records):
            if record.name == '永10#1403A':
                profiles[index] = 'night'
                break
        else:
            profiles[len(records) // 3] = 'night'
        by_state = {}
        for index, state in states.items():
            by_state.setdefault(state, []).append(records[index])
        for state, group in by_state.items():
            Meter.write(group, {'state': state,
                    'relay': 'open' if state == 'cutoff' else 'closed'})
        Meter.write([r for i, r in enumerate(records) if i not in states],
            {'relay': 'closed'})

        # a master meter with merged subs and one unmerged (合并日志)
        master = [r for r in records if r.role == 'master']
        if master:
            master = master[0]
            subs = [r for r in records if r.area == master.area
                and r.role == 'normal' and r.utility == 'electricity']
            Meter.do_merge(subs, master, '演示：同一配电箱')
            if len(subs) > 1:
                Meter.do_unmerge([Meter(subs[-1].id)], '演示：租户分户')
        return list(zip(records, profiles))

    @classmethod
    def build_readings(cls, meters, days, log):
        Reading = Pool().get('dh.meter.reading')
        rng = random.Random(645)
        end = dt.datetime.utcnow().replace(minute=0, second=0, microsecond=0)
        start = end - dt.timedelta(days=days)
        state = []
        for meter, profile in meters:
            flag = None
            if isinstance(profile, tuple):
                profile, flag = profile
            value = rng.uniform(100, 8000) if profile != 'water' \
                else rng.uniform(10, 500)
            scale = rng.uniform(0.5, 1.6)
            stop = (end - dt.timedelta(days=5)) if flag == 'offline' else None
            state.append([meter.id, profile, value, scale, stop])
        total = 0
        hours = int((end - start).total_seconds() // 3600)
        batch = []
        for h in range(hours + 1):
            t = start + dt.timedelta(hours=h)
            local_hour = (t.hour + 8) % 24
            for entry in state:
                meter_id, profile, value, scale, stop = entry
                if stop and t > stop:
                    continue
                if h:
                    entry[2] = value = value + scale * _hourly(
                        profile, local_hour, rng)
                register = 'water_flow' if profile == 'water' \
                    else 'energy_total'
                batch.append((meter_id, register, t,
                        Decimal(str(round(value, 2)))))
            if len(batch) >= 50000 or h == hours:
                Reading.ingest(batch)
                total += len(batch)
                batch = []
        log(f'dh_metering: {total} readings over {days} days')


def _hourly(profile, hour, rng):
    "kWh (or m³ for water) used in one hour of local time ``hour``"
    noise = rng.random()
    if profile == 'stagnant':
        return 0.0
    if profile == 'home':
        base = 0.08
        if 7 <= hour < 9:
            base += 0.4
        elif 18 <= hour < 23:
            base += 0.9 + 0.6 * math.sin((hour - 18) / 5 * math.pi)
        return base * (0.5 + noise)
    if profile == 'shop':
        return (2.5 if 9 <= hour < 21 else 0.15) * (0.6 + 0.8 * noise)
    if profile == 'public':
        return (0.6 if hour >= 18 or hour < 6 else 0.25) * (0.8 + 0.4 * noise)
    if profile == 'water':
        return (0.04 if hour in (7, 8, 19, 20, 21) else 0.004) * noise
    if profile == 'night':
        return (4.5 if 1 <= hour < 5 else 0.1) * (0.7 + 0.6 * noise)
    return 0.1 * noise
