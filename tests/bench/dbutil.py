"""Benchmark databases: a fresh SQLite file or PostgreSQL database with the
dh modules activated (trytond-admin), then a pool ready in this process."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from dh.paths import ADMIN_PASSWORD, BIN, VAR, dh_modules  # noqa: E402

PG_URI = os.environ.get('DH_POSTGRES_URI',
    'postgresql://postgres@127.0.0.1:5432/')


def create(backend, name):
    "Returns the path of a config file for a fresh database ``name``"
    folder = os.path.join(VAR, 'bench')
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, f'{name}.conf')
    if backend == 'postgresql':
        uri = PG_URI
        import psycopg
        with psycopg.connect(PG_URI + 'postgres', autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        uri = 'sqlite://'
        path = os.path.join(folder, f'{name}.sqlite')
        if os.path.exists(path):
            os.unlink(path)
        open(path, 'a').close()
    with open(config, 'w') as handle:
        handle.write(f'[database]\nuri = {uri}\npath = {folder}\n'
            '[queue]\nworker = False\n')
    with tempfile.NamedTemporaryFile('w', delete=False) as pw:
        pw.write(ADMIN_PASSWORD)
    try:
        subprocess.run([os.path.join(BIN, 'trytond-admin'), '-c', config,
                '-d', name, '-u', *dh_modules(), '--activate-dependencies',
                '--email', 'admin@example.com'], check=True,
            env=dict(os.environ, TRYTONPASSFILE=pw.name),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    finally:
        os.unlink(pw.name)
    return config


def pool(config, name):
    from trytond import config as tconfig
    tconfig.update_etc(config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    Pool.start()
    p = Pool(name)
    with Transaction().start(name, 0, readonly=True):
        p.init()
    return p


def make_meters(count, prefix='B'):
    "count meters under one room each level; returns their ids"
    from decimal import Decimal
    from trytond.pool import Pool
    pool = Pool()
    Area = pool.get('dh.area')
    Meter = pool.get('dh.meter')
    a1, = Area.create([{'name': f'{prefix}片区', 'level': '1'}])
    a2, = Area.create([{'name': '小区', 'level': '2', 'parent': a1.id}])
    a3, = Area.create([{'name': '1', 'level': '3', 'parent': a2.id}])
    rooms = Area.create([{'name': str(i), 'level': '4', 'parent': a3.id}
            for i in range(max(1, count // 10))])
    ids = []
    step = 5000
    for start in range(0, count, step):
        meters = Meter.create([{'number': f'{prefix}{i}',
                    'name': f'{prefix}#{i}', 'address': f'{i:012d}',
                    'multiplier': Decimal(1),
                    'area': rooms[i % len(rooms)].id}
                for i in range(start, min(count, start + step))])
        ids.extend(m.id for m in meters)
    return ids


def bulk_meters(count, prefix='M'):
    """count meters spread over 1 district / 10 communities / 100 buildings /
    1,000 rooms, inserted with one executemany (the ORM creates ~4k rows/s:
    too slow to set up 100,000 meters for every benchmark run)"""
    import datetime as dt
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool()
    Area = pool.get('dh.area')
    district, = Area.create([{'name': f'{prefix}片区', 'level': '1'}])
    communities = Area.create([{'name': f'小区{i}', 'level': '2',
                'parent': district.id} for i in range(10)])
    buildings = Area.create([{'name': str(b), 'level': '3',
                'parent': c.id} for c in communities for b in range(10)])
    rooms = Area.create([{'name': str(100 + r), 'level': '4',
                'parent': b.id} for b in buildings for r in range(10)])
    rooms = Area.browse([r.id for r in rooms])
    cursor = Transaction().connection.cursor()
    from trytond import backend
    p = '%s' if backend.name == 'postgresql' else '?'
    now = dt.datetime.now()
    rows = []
    for i in range(count):
        room = rooms[i % len(rooms)]
        rows.append((f'{prefix}{i}', f'{prefix}#{i}', f'{i:012d}',
                'electricity', 'dlt645_2007', 1, 'normal', 'normal',
                'closed', True, room.id, room.l1.id, room.l2.id, room.l3.id,
                room.id, room.l1.name, room.l2.name, room.l3.name, room.name,
                0, now))
    columns = ['number', 'name', 'address', 'utility', 'protocol',
        'multiplier', 'role', 'state', 'relay', 'active', 'area', 'area_l1',
        'area_l2', 'area_l3', 'area_l4', 'level1', 'level2', 'level3',
        'level4', 'create_uid', 'create_date']
    # required fields other modules add (billing)
    extra = {'billing_mode': 'postpaid', 'control_mode': 'controlled',
        'purchase_count': 0}
    extra = {k: v for k, v in extra.items()
        if k in pool.get('dh.meter')._fields}
    columns += list(extra)
    rows = [row + tuple(extra.values()) for row in rows]
    cursor.executemany(
        f'INSERT INTO dh_meter ({", ".join(columns)}) '
        f'VALUES ({", ".join([p] * len(columns))})', rows)
    cursor.execute('SELECT id FROM dh_meter WHERE number LIKE ' + p +
        ' ORDER BY id', (f'{prefix}%',))
    return [i for i, in cursor]
