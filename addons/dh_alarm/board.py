# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The wall status board (状态报警界面): every meter the user may see as a
tile, coloured by its state, with the counts per state and the open alarms
of a meter.  The data is read with one SQL query over the ids the ORM
allows (``Meter.search(domain, query=True)`` under ``_check_access``, so the
record rules of the signed-in user apply); the page and its JSON are served
by routes.py."""
import datetime as dt

from sql import Literal
from sql.aggregate import Count
from sql.conditionals import Coalesce

from trytond.pool import Pool
from trytond.transaction import Transaction
from trytond.wizard import StateAction, Wizard

from trytond.modules.dh_metering.meter import STATE_COLOURS, STATES
from trytond.modules.dh_metering.reading import local_timezone

from .alarm import KIND_NAMES_ZH

UTC = dt.timezone.utc
STATE_NAMES_ZH = {'normal': '正常', 'alarm': '报警', 'cutoff': '断电',
    'fault': '故障', 'offline': '离线'}
ALARM_STATES_ZH = {'open': '未处理', 'acknowledged': '已确认',
    'closed': '已关闭'}
LEVEL_NAMES_ZH = {'1': '片区', '2': '小区'}


def areas():
    "The level 1 and 2 areas the user sees, for the filter"
    Area = Pool().get('dh.area')
    result = []
    for area in Area.search([('level', 'in', ['1', '2'])],
            order=[('level', 'ASC'), ('full_name', 'ASC'), ('id', 'ASC')]):
        result.append({'id': area.id, 'name': area.full_name or area.name,
                'level': area.level,
                'parent': area.parent.id if area.parent else None})
    return result


def tiles(area=None):
    """{'counts': {state: n}, 'tiles': [[id, name, state, open alarms]],
    ...} of the active meters the user sees, under ``area`` (a level 1 or 2
    area id) when given"""
    pool = Pool()
    Meter = pool.get('dh.meter')
    Alarm = pool.get('dh.alarm')
    meter = Meter.__table__()
    alarm = Alarm.__table__()
    domain = []
    if area:
        domain = ['OR', ('area_l1', '=', area), ('area_l2', '=', area)]
    visible = Meter.search(domain, query=True)
    open_ = alarm.select(alarm.meter, Count(Literal(1)).as_('n'),
        where=alarm.state != 'closed', group_by=[alarm.meter])
    query = meter.join(open_, 'LEFT', condition=open_.meter == meter.id
        ).select(meter.id, meter.name, meter.state, Coalesce(open_.n, 0),
        where=meter.id.in_(visible),
        order_by=[meter.level1, meter.level2, meter.name, meter.id])
    cursor = Transaction().connection.cursor()
    cursor.execute(*query)
    rows = [[i, n, s, a] for i, n, s, a in cursor]
    counts = {s: 0 for s, _ in STATES}
    for row in rows:
        counts[row[2]] = counts.get(row[2], 0) + 1
    return {
        'states': [{'state': s, 'name': STATE_NAMES_ZH.get(s, s),
                'colour': STATE_COLOURS[s][0], 'count': counts[s]}
            for s, _ in STATES],
        'total': len(rows),
        'fields': ['id', 'name', 'state', 'alarms'],
        'tiles': rows,
        'at': dt.datetime.now(local_timezone()).strftime('%Y-%m-%d %H:%M:%S'),
        }


def _local(value):
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).astimezone(local_timezone()).strftime(
        '%Y-%m-%d %H:%M')


def _number(value):
    if value is None:
        return None
    return format(value.normalize(), 'f') if hasattr(value, 'normalize') \
        else str(value)


def meter_alarms(meter_id):
    """The meter (if the user sees it) and its open alarms, newest first;
    None when the meter is not visible"""
    pool = Pool()
    Meter = pool.get('dh.meter')
    Alarm = pool.get('dh.alarm')
    meters = Meter.search([('id', '=', meter_id)], limit=1)
    if not meters:
        return None
    meter, = meters
    alarms = Alarm.search([('meter', '=', meter.id),
            ('state', '!=', 'closed')])
    return {
        'meter': {'id': meter.id, 'name': meter.name, 'number': meter.number,
            'state': meter.state,
            'state_name': STATE_NAMES_ZH.get(meter.state, meter.state),
            'area': ' / '.join(filter(None, [meter.level1, meter.level2,
                        meter.level3, meter.level4])),
            'relay': meter.relay,
            'last_read_at': _local(meter.last_read_at)},
        'alarms': [{'id': a.id, 'kind': a.kind,
                'kind_name': KIND_NAMES_ZH.get(a.kind, a.kind),
                'state': a.state,
                'state_name': ALARM_STATES_ZH.get(a.state, a.state),
                'start': _local(a.start), 'value': _number(a.value),
                'threshold': _number(a.threshold),
                'period': a.period, 'description': a.description}
            for a in alarms],
        }


def board_url(database_name):
    return f'/{database_name}/dh/board'


class OpenBoard(Wizard):
    "Opens the wall status board page in the browser"
    __name__ = 'dh.alarm.board.open'
    __string__ = "Status Board"
    start_state = 'open_'
    open_ = StateAction('dh_alarm.url_board')

    def do_open_(self, action):
        # the page's address carries the database name
        action['url'] = board_url(Transaction().database.name)
        return action, {}

