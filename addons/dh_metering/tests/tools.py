# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"Helpers shared by the tests of the dh modules (and the demo)."
import datetime as dt
from decimal import Decimal

from trytond.pool import Pool

# every dh test database activates the same module list, so that the
# (slow) database build is done once and reused through DB_CACHE
MODULES = ['dh_metering']


def create_areas(spec):
    """spec: {'唐渠': {'瀚盛家园': {'15': ['601', '602']}}} -> {path: area}"""
    Area = Pool().get('dh.area')
    result = {}

    def walk(node, parent, level, path):
        items = node.items() if isinstance(node, dict) else [
            (n, None) for n in node]
        for name, children in items:
            area, = Area.create([{'name': name, 'level': str(level),
                        'parent': parent.id if parent else None}])
            key = path + (name,)
            result[key] = area
            if children:
                walk(children, area, level + 1, key)
    walk(spec, None, 1, ())
    return result


def create_meter(area, number, name, address=None, **values):
    Meter = Pool().get('dh.meter')
    values.setdefault('utility', 'electricity')
    if values['utility'] == 'water':
        values.setdefault('protocol', 'cjt188')
    meter, = Meter.create([{
                'number': number, 'name': name,
                'address': address or number.zfill(12),
                'area': area.id, **values}])
    return meter


def utc(*args):
    "A naive UTC datetime from local (Asia/Shanghai, UTC+8) wall time"
    return dt.datetime(*args) - dt.timedelta(hours=8)


def d(value):
    return Decimal(str(value))
