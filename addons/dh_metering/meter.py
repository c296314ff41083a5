# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Meters (表计), master/sub merges (合并 / 取消合并) and the status board."""
from sql import Literal
from sql.aggregate import Count

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, Index, ModelSQL, ModelView, Unique, fields)
from trytond.pool import Pool
from trytond.pyson import Bool, Eval, If
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import MergeError, MeterValidationError
from .ir import clear_assigned_area_paths

UTILITIES = [
    ('electricity', "Electricity"),
    ('water', "Water"),
    ('ac_indoor', "AC Indoor Unit"),
    ('ac_outdoor', "AC Outdoor Unit"),
    ]
PROTOCOLS = [
    ('dlt645_2007', "DL/T645-2007"),
    ('dlt645_1997', "DL/T645-1997"),
    ('cjt188', "CJ/T188"),
    ('modbus', "Modbus"),
    ]
ROLES = [
    ('normal', "Normal"),
    ('public', "Public"),
    ('master', "Master"),
    ]
STATES = [
    ('normal', "Normal"),
    ('alarm', "Alarm"),
    ('cutoff', "Cut Off"),
    ('fault', "Fault"),
    ('offline', "Offline"),
    ]
# the product's colours: white normal, yellow alarming, black cut off, red
# fault; offline meters are shown grey
STATE_COLOURS = {
    'normal': ('white', '○', None),
    'alarm': ('yellow', '◐', 'warning'),
    'cutoff': ('black', '●', 'muted'),
    'fault': ('red', '✖', 'danger'),
    'offline': ('grey', '◌', 'muted'),
    }
COLOURS = [
    ('white', "White"),
    ('yellow', "Yellow"),
    ('black', "Black"),
    ('red', "Red"),
    ('grey', "Grey"),
    ]
RELAY_STATES = [
    ('closed', "Closed"),
    ('open', "Open (tripped)"),
    ('unknown', "Unknown"),
    ]
# the register that is "the" reading of a meter of each utility
MAIN_REGISTER = {
    'electricity': 'energy_total',
    'water': 'water_flow',
    'ac_indoor': 'ac_runtime',
    'ac_outdoor': 'energy_total',
    }
ADDRESS_DIGITS = {
    'dlt645_2007': 12, 'dlt645_1997': 12, 'cjt188': 14,
    }


def status_visual():
    return If(Eval('state') == 'fault', 'danger',
        If(Eval('state') == 'alarm', 'warning',
            If(Eval('state').in_(['cutoff', 'offline']), 'muted', '')))


class Meter(DeactivableMixin, ModelSQL, ModelView):
    __name__ = 'dh.meter'
    __string__ = "Meter"
    _rec_name = 'name'
    number = fields.Char("Number", required=True,
        help="The meter's number in this system (编号).")
    name = fields.Char("User Name", required=True,
        help="The name shown to staff, e.g. 瀚15#601A (用户名).")
    address = fields.Char("Meter Address", required=True,
        help="The nameplate address the meter answers to (表计地址).")
    utility = fields.Selection(UTILITIES, "Utility", required=True, sort=False)
    protocol = fields.Selection(PROTOCOLS, "Protocol", required=True,
        sort=False)
    channel = fields.Char("Channel",
        help="The bus, bridge or concentrator the meter is wired to.")
    multiplier = fields.Numeric("Multiplier", digits=(16, 4), required=True,
        help="Voltage ratio × current ratio (倍率).")
    role = fields.Selection(ROLES, "Role", required=True, sort=False)
    master = fields.Many2One('dh.meter', "Master Meter", ondelete='RESTRICT',
        domain=[('role', '=', 'master'), ('id', '!=', Eval('id', -1))],
        readonly=True,
        help="Set by merging (合并) and cleared by unmerging (取消合并).")
    subs = fields.One2Many('dh.meter', 'master', "Sub Meters", readonly=True)
    state = fields.Selection(STATES, "Meter State", required=True,
        readonly=True, sort=False)
    state_symbol = fields.Function(fields.Char("Status Symbol",
            help="The product's colours: ○ white normal, ◐ yellow alarm, "
            "● black cut off, ✖ red fault, ◌ grey offline."),
        'get_state_symbol')
    relay = fields.Selection(RELAY_STATES, "Relay", required=True,
        readonly=True, sort=False)
    last_value = fields.Float("Last Reading", digits=(16, 2), readonly=True,
        help="The latest value of the meter's main register.")
    last_read_at = fields.DateTime("Last Read At", readonly=True)
    remaining = fields.Numeric("Remaining", digits=(16, 3), readonly=True,
        help="Remaining money or energy (filled by billing).")
    tenant = fields.Many2One('party.party', "Tenant", ondelete='RESTRICT')
    area = fields.Many2One('dh.area', "Area", required=True,
        ondelete='RESTRICT', help="Usually the room (level 4).")
    assigned_users = fields.Many2Many(
        'dh.meter-res.user', 'meter', 'user', "Assigned Users",
        help="Users who see this meter besides their areas (权限分配).")
    area_l1 = fields.Many2One('dh.area', "Level 1 Area", readonly=True)
    area_l2 = fields.Many2One('dh.area', "Level 2 Area", readonly=True)
    area_l3 = fields.Many2One('dh.area', "Level 3 Area", readonly=True)
    area_l4 = fields.Many2One('dh.area', "Level 4 Area", readonly=True)
    level1 = fields.Char("Level 1", readonly=True)
    level2 = fields.Char("Level 2", readonly=True)
    level3 = fields.Char("Level 3", readonly=True)
    level4 = fields.Char("Level 4", readonly=True)
    merge_logs = fields.One2Many(
        'dh.meter.merge.log', 'meter', "Merge Log", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('number_unique', Unique(t, t.number),
                'dh_metering.msg_meter_number_unique'),
            ('address_unique', Unique(t, t.protocol, t.address),
                'dh_metering.msg_meter_address_unique'),
            ]
        cls._sql_indexes.update({
            Index(t, (t.area, Index.Range())),
            Index(t, (t.area_l1, Index.Range())),
            Index(t, (t.area_l2, Index.Range())),
            Index(t, (t.area_l3, Index.Range())),
            Index(t, (t.area_l4, Index.Range())),
            Index(t, (t.master, Index.Range())),
            Index(t, (t.state, Index.Equality(cardinality='low'))),
            Index(t, (t.address, Index.Equality(cardinality='high'))),
            })
        cls._order.insert(0, ('number', 'ASC'))
        cls._buttons.update({
                'merge': {
                    'invisible': Eval('role') == 'master',
                    'readonly': Bool(Eval('master')),
                    'depends': ['role', 'master'],
                    },
                'unmerge': {
                    'invisible': ~Bool(Eval('master')),
                    'depends': ['master'],
                    },
                })

    @staticmethod
    def default_utility():
        return 'electricity'

    @staticmethod
    def default_protocol():
        return 'dlt645_2007'

    @staticmethod
    def default_multiplier():
        from decimal import Decimal
        return Decimal(1)

    @staticmethod
    def default_role():
        return 'normal'

    @staticmethod
    def default_state():
        return 'normal'

    @staticmethod
    def default_relay():
        return 'unknown'

    @fields.depends('utility', 'protocol')
    def on_change_utility(self):
        if self.utility == 'water' and self.protocol not in {'cjt188', 'modbus'}:
            self.protocol = 'cjt188'
        elif self.utility != 'water' and self.protocol == 'cjt188':
            self.protocol = 'dlt645_2007'

    @classmethod
    def view_attributes(cls):
        return super().view_attributes() + [
            ('/tree', 'visual', status_visual()),
            ]

    def get_state_symbol(self, name):
        colour, symbol, _ = STATE_COLOURS[self.state]
        return symbol

    @property
    def main_register(self):
        return MAIN_REGISTER[self.utility]

    def get_rec_name(self, name):
        return self.name

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, value = clause[:3]
        bool_op = 'AND' if operator.startswith(('!', 'not ')) else 'OR'
        return [bool_op,
            ('name', operator, value, *clause[3:]),
            ('number', operator, value, *clause[3:]),
            ('address', operator, value, *clause[3:]),
            ]

    @classmethod
    def validate_fields(cls, meters, field_names):
        super().validate_fields(meters, field_names)
        for meter in meters:
            if field_names & {'address', 'protocol'}:
                meter.check_address()
            if 'multiplier' in field_names and meter.multiplier <= 0:
                raise MeterValidationError(gettext(
                        'dh_metering.msg_meter_multiplier_positive',
                        meter=meter.rec_name))
            if field_names & {'utility', 'protocol'}:
                if meter.utility == 'water' and meter.protocol not in {
                        'cjt188', 'modbus'}:
                    raise MeterValidationError(gettext(
                            'dh_metering.msg_meter_water_protocol',
                            meter=meter.rec_name))

    def check_address(self):
        digits = ADDRESS_DIGITS.get(self.protocol)
        address = self.address or ''
        if digits:
            ok = address.isdigit() and len(address) == digits
        else:
            ok = address.isdigit() and 1 <= int(address) <= 247
        if not ok:
            raise MeterValidationError(gettext(
                    'dh_metering.msg_meter_address_format',
                    meter=self.rec_name, address=address,
                    digits=digits or '1-247'))

    @classmethod
    def create(cls, vlist):
        vlist = [cls._normalise(v.copy(), v.get('protocol') or (
                    'cjt188' if v.get('utility') == 'water'
                    else cls.default_protocol())) for v in vlist]
        meters = super().create(vlist)
        cls.update_area_paths(meter_ids=[m.id for m in meters])
        return meters

    @classmethod
    def write(cls, *args):
        args = list(args)
        for i in range(1, len(args), 2):
            records = args[i - 1]
            protocol = args[i].get('protocol') or (
                records[0].protocol if records else None)
            args[i] = cls._normalise(args[i].copy(), protocol)
        super().write(*args)
        actions = iter(args)
        moved = []
        for meters, values in zip(actions, actions):
            if 'area' in values:
                moved.extend(m.id for m in meters)
        if moved:
            cls.update_area_paths(meter_ids=moved)

    @classmethod
    def _normalise(cls, values, protocol):
        address = values.get('address')
        if isinstance(address, str):
            address = address.strip().replace(' ', '')
            digits = ADDRESS_DIGITS.get(protocol or '')
            if digits and address.isdigit() and len(address) < digits:
                address = address.zfill(digits)
            values['address'] = address
        return values

    @classmethod
    def update_area_paths(cls, area_ids=None, meter_ids=None):
        "Copy the area tree path (ids and names) onto meters"
        pool = Pool()
        Area = pool.get('dh.area')
        meter = cls.__table__()
        area = Area.__table__()
        cursor = Transaction().connection.cursor()
        if area_ids is not None:
            if not area_ids:
                return
            # meters whose area is one of these or below one of these
            where = None
            for column in [area.id, area.l1, area.l2, area.l3, area.l4]:
                cond = column.in_(list(area_ids))
                where = cond if where is None else (where | cond)
            cursor.execute(*area.select(area.id, where=where))
            affected = [a for a, in cursor]
            if not affected:
                return
            meter_where = meter.area.in_(affected)
        else:
            if not meter_ids:
                return
            meter_where = meter.id.in_(list(meter_ids))
        cursor.execute(*meter.select(meter.area, where=meter_where,
                group_by=[meter.area]))
        area_list = [a for a, in cursor]
        paths = {}
        for sub in _chunks(area_list, 500):
            cursor.execute(*area.select(area.id, area.l1, area.l2, area.l3,
                    area.l4, where=area.id.in_(sub)))
            for row in cursor:
                paths[row[0]] = row[1:]
        ancestor_ids = {a for p in paths.values() for a in p if a}
        names = {}
        for sub in _chunks(sorted(ancestor_ids), 500):
            cursor.execute(*area.select(area.id, area.name,
                    where=area.id.in_(sub)))
            names.update(cursor)
        for area_id, path in paths.items():
            level_names = [names.get(a) if a else None for a in path]
            where = meter.area == area_id
            if meter_ids is not None:
                where &= meter.id.in_(list(meter_ids))
            cursor.execute(*meter.update(
                    [meter.area_l1, meter.area_l2, meter.area_l3,
                        meter.area_l4, meter.level1, meter.level2,
                        meter.level3, meter.level4],
                    [*path, *level_names], where=where))
        for cache in Transaction().cache.values():
            cache.clear()
        clear_assigned_area_paths()

    @classmethod
    def delete(cls, meters):
        clear_assigned_area_paths()
        cursor = Transaction().connection.cursor()
        ids = [m.id for m in meters]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            cursor.execute('SELECT meter FROM dh_reading_last WHERE meter IN '
                f'({", ".join(["%s" if _pg() else "?"] * len(chunk))}) '
                'LIMIT 1', chunk)
            row = cursor.fetchone()
            if row:
                raise MeterValidationError(gettext(
                        'dh_metering.msg_meter_delete_readings',
                        meter=cls(row[0]).rec_name))
        super().delete(meters)

    @classmethod
    def copy(cls, meters, default=None):
        default = default.copy() if default else {}
        default.setdefault('number', lambda d: d['number'] + '-copy')
        default.setdefault('address', None)
        default.setdefault('merge_logs', None)
        default.setdefault('subs', None)
        default.setdefault('master', None)
        default.setdefault('last_value', None)
        default.setdefault('last_read_at', None)
        default.setdefault('remaining', None)
        return super().copy(meters, default=default)

    @classmethod
    @ModelView.button_action('dh_metering.wizard_merge')
    def merge(cls, meters):
        pass

    @classmethod
    @ModelView.button
    def unmerge(cls, meters):
        cls.do_unmerge(meters)

    @classmethod
    def do_merge(cls, meters, master, note=None):
        pool = Pool()
        Log = pool.get('dh.meter.merge.log')
        if master.role != 'master':
            raise MergeError(gettext('dh_metering.msg_merge_not_master',
                    master=master.rec_name))
        logs = []
        for meter in meters:
            if meter == master or meter.role == 'master':
                raise MergeError(gettext('dh_metering.msg_merge_self',
                        meter=meter.rec_name))
            if meter.master:
                raise MergeError(gettext('dh_metering.msg_merge_already',
                        meter=meter.rec_name, master=meter.master.rec_name))
            logs.append(Log.new(meter, master, 'merge', note))
        cls.write(list(meters), {'master': master.id})
        Log.save(logs)

    @classmethod
    def do_unmerge(cls, meters, note=None):
        pool = Pool()
        Log = pool.get('dh.meter.merge.log')
        logs = []
        for meter in meters:
            if not meter.master:
                raise MergeError(gettext('dh_metering.msg_unmerge_not_merged',
                        meter=meter.rec_name))
            logs.append(Log.new(meter, meter.master, 'unmerge', note))
        cls.write(list(meters), {'master': None})
        Log.save(logs)


def _pg():
    from trytond import backend
    return backend.name == 'postgresql'


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class MergeLog(ModelSQL, ModelView):
    __name__ = 'dh.meter.merge.log'
    __string__ = "Merge Log"
    meter = fields.Many2One('dh.meter', "Meter", required=True,
        readonly=True, ondelete='CASCADE')
    master = fields.Many2One('dh.meter', "Master Meter", required=True,
        readonly=True, ondelete='CASCADE')
    action = fields.Selection([
            ('merge', "Merge"),
            ('unmerge', "Unmerge"),
            ], "Action", required=True, readonly=True)
    operator = fields.Many2One('res.user', "Operator", readonly=True)
    date = fields.DateTime("Date", required=True, readonly=True)
    description = fields.Char("Description", readonly=True)
    note = fields.Char("Note", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('meter')
        cls._order.insert(0, ('date', 'DESC'))

    @classmethod
    def new(cls, meter, master, action, note=None):
        from datetime import datetime
        # 东2#301D取消合并从主表:东2#301公 / 东2#301D合并到主表:东2#301公
        if action == 'merge':
            description = f'{meter.name}合并到主表:{master.name}'
        else:
            description = f'{meter.name}取消合并从主表:{master.name}'
        user = Transaction().user
        return cls(meter=meter, master=master, action=action,
            operator=user if user else None, date=datetime.now(),
            description=description, note=note)


class MergeStart(ModelView):
    __name__ = 'dh.meter.merge.start'
    __string__ = "Merge Meters"
    master = fields.Many2One('dh.meter', "Master Meter", required=True,
        domain=[('role', '=', 'master')])
    note = fields.Char("Note")


class Merge(Wizard):
    __name__ = 'dh.meter.merge'
    __string__ = "Merge Meters"
    start = StateView('dh.meter.merge.start',
        'dh_metering.merge_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Merge", 'merge', 'tryton-ok', default=True),
            ])
    merge = StateTransition()

    def transition_merge(self):
        Meter = Pool().get('dh.meter')
        Meter.do_merge(self.records, self.start.master, self.start.note)
        return 'end'


class StatusCount(ModelSQL, ModelView):
    "Meters per state, for the status board (only the meters the user sees)"
    __name__ = 'dh.meter.status.count'
    __string__ = "Meter Status Count"
    state = fields.Selection(STATES, "Meter State", readonly=True)
    colour = fields.Selection(COLOURS, "Colour", readonly=True)
    count = fields.Integer("Count", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._order.insert(0, ('id', 'ASC'))

    @classmethod
    def table_query(cls):
        pool = Pool()
        Meter = pool.get('dh.meter')
        meter = Meter.__table__()
        visible = Meter.search([], query=True)
        from sql.conditionals import Case
        ids = Case(*[(meter.state == s, i + 1)
                for i, (s, _) in enumerate(STATES)], else_=0)
        colour = Case(*[(meter.state == s, STATE_COLOURS[s][0])
                for s, _ in STATES], else_='')
        return meter.select(
            ids.as_('id'), meter.state.as_('state'), colour.as_('colour'),
            Count(Literal(1)).as_('count'),
            where=meter.id.in_(visible),
            group_by=[meter.state])

    @classmethod
    def view_attributes(cls):
        return super().view_attributes() + [
            ('/tree', 'visual', status_visual()),
            ]
