# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Meter-level permission assignment (权限分配): besides his areas, an
administrator ticks individual meters for a user.  The record rule on
dh.meter reads the relation in SQL (no ids in the user's context)."""
from trytond.model import Index, ModelSQL, ModelView, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .ir import clear_assigned_area_paths

LIST_LIMIT = 500


class MeterUser(ModelSQL):
    __name__ = 'dh.meter-res.user'
    __string__ = "Meter - User"
    meter = fields.Many2One(
        'dh.meter', "Meter", required=True, ondelete='CASCADE')
    user = fields.Many2One(
        'res.user', "User", required=True, ondelete='CASCADE')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.update({
                Index(t, (t.user, Index.Range()), (t.meter, Index.Range())),
                Index(t, (t.meter, Index.Range())),
                })

    @classmethod
    def create(cls, vlist):
        clear_assigned_area_paths()
        return super().create(vlist)

    @classmethod
    def write(cls, *args):
        clear_assigned_area_paths()
        super().write(*args)

    @classmethod
    def delete(cls, records):
        clear_assigned_area_paths()
        super().delete(records)


class AssignStart(ModelView):
    __name__ = 'dh.meter.assign.start'
    __string__ = "Assign Meters"
    user = fields.Many2One('res.user', "User", required=True)
    match = fields.Selection([
            ('fuzzy', "Fuzzy"),
            ('exact', "Exact"),
            ], "Match", required=True)
    text = fields.Char("Search",
        help="Name, number, meter address or area level.")
    show = fields.Selection([
            ('all', "All"),
            ('assigned', "Assigned"),
            ('unassigned', "Unassigned"),
            ], "Show", required=True)
    total = fields.Integer("Found", readonly=True)
    lines = fields.One2Many('dh.meter.assign.line', None, "Meters",
        states={'readonly': ~Eval('user')})


class AssignLine(ModelView):
    __name__ = 'dh.meter.assign.line'
    __string__ = "Assign Meters Line"
    selected = fields.Boolean("Assigned")
    meter = fields.Many2One('dh.meter', "Meter", readonly=True)
    number = fields.Char("Number", readonly=True)
    name = fields.Char("User Name", readonly=True)
    address = fields.Char("Meter Address", readonly=True)
    level1 = fields.Char("Level 1", readonly=True)
    level2 = fields.Char("Level 2", readonly=True)
    level3 = fields.Char("Level 3", readonly=True)
    level4 = fields.Char("Level 4", readonly=True)


def assigned_meter_ids(user_id):
    relation = Pool().get('dh.meter-res.user').__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*relation.select(
            relation.meter, where=relation.user == user_id))
    return {m for m, in cursor}


def meter_domain(match, text):
    "The search of the screen: exact or fuzzy on name, number, address, levels"
    names = ['name', 'number', 'address',
        'level1', 'level2', 'level3', 'level4']
    text = (text or '').strip()
    if not text:
        return []
    if match == 'exact':
        return ['OR'] + [(n, '=', text) for n in names]
    return ['OR'] + [(n, 'ilike', f'%{text}%') for n in names]


class Assign(Wizard):
    "权限分配: tick the meters a user sees besides his areas"
    __name__ = 'dh.meter.assign'
    __string__ = "Assign Meters"
    start = StateView('dh.meter.assign.start',
        'dh_metering.assign_start_view_form', [
            Button("Close", 'end', 'tryton-close'),
            Button("Search", 'search', 'tryton-search'),
            Button("Switch", 'switch', 'tryton-refresh'),
            Button("Save", 'save', 'tryton-save', default=True),
            ])
    search = StateTransition()
    switch = StateTransition()
    save = StateTransition()

    def default_start(self, fields):
        context = Transaction().context
        values = {'match': 'fuzzy', 'show': 'all', 'text': None,
            'user': None}
        if getattr(self.start, 'show', None):
            values.update(
                user=self.start.user.id if self.start.user else None,
                match=self.start.match, text=self.start.text,
                show=self.start.show)
        elif (context.get('active_model') == 'res.user'
                and context.get('active_id')):
            values['user'] = context['active_id']
        values['lines'], values['total'] = self.list_meters(
            values['user'], values['match'], values['text'], values['show'])
        return values

    @staticmethod
    def list_meters(user_id, match, text, show):
        "The lines of the screen and how many meters match"
        Meter = Pool().get('dh.meter')
        if not user_id:
            return [], 0
        assigned = assigned_meter_ids(user_id)
        domain = meter_domain(match, text)
        if show == 'assigned':
            domain = [domain, ('id', 'in', list(assigned))]
        elif show == 'unassigned':
            domain = [domain, ('id', 'not in', list(assigned))]
        total = Meter.search(domain, count=True)
        meters = Meter.search(domain, limit=LIST_LIMIT,
            order=[('level1', 'ASC'), ('level2', 'ASC'), ('level3', 'ASC'),
                ('level4', 'ASC'), ('name', 'ASC'), ('id', 'ASC')])
        return [{
                'selected': m.id in assigned, 'meter': m.id,
                'number': m.number, 'name': m.name, 'address': m.address,
                'level1': m.level1, 'level2': m.level2, 'level3': m.level3,
                'level4': m.level4,
                } for m in meters], total

    def transition_search(self):
        return 'start'

    def transition_switch(self):
        "切换: between the assigned and the unassigned meters"
        self.start.show = (
            'unassigned' if self.start.show == 'assigned' else 'assigned')
        return 'start'

    def transition_save(self):
        self.apply(self.start.user,
            [(l.meter.id, bool(l.selected)) for l in self.start.lines
                if l.meter])
        return 'start'

    @staticmethod
    def apply(user, ticks):
        "Write the ticks [(meter id, selected)] of the screen for the user"
        MeterUser = Pool().get('dh.meter-res.user')
        assigned = assigned_meter_ids(user.id)
        add = sorted({m for m, s in ticks if s} - assigned)
        remove = {m for m, s in ticks if not s} & assigned
        if remove:
            MeterUser.delete(MeterUser.search([
                        ('user', '=', user.id),
                        ('meter', 'in', sorted(remove)),
                        ]))
        if add:
            MeterUser.create([{'user': user.id, 'meter': m} for m in add])
        return len(add), len(remove)
