# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The four-level area tree: 片区 / 小区·楼宇 / 栋 / 室.

Every area keeps the ids of its ancestors at each level (``l1`` … ``l4``,
itself included) so that record rules and reports filter with plain
equality instead of walking the tree.
"""
from trytond.i18n import gettext
from trytond.model import Index, ModelSQL, ModelView, Unique, fields
from trytond.pool import Pool
from trytond.pyson import Eval
from trytond.transaction import Transaction

from .exceptions import AreaValidationError

LEVELS = [
    (1, "District"),              # 片区
    (2, "Community / Building group"),  # 小区/楼宇
    (3, "Building / Block"),      # 栋/区
    (4, "Room"),                  # 室
    ]


class Area(ModelSQL, ModelView):
    __name__ = 'dh.area'
    __string__ = "Area"
    name = fields.Char("Name", required=True)
    level = fields.Selection(
        [(str(l), s) for l, s in LEVELS], "Level", required=True, sort=False)
    parent = fields.Many2One(
        'dh.area', "Parent", ondelete='RESTRICT',
        domain=[('level', '=', Eval('parent_level', ''))],
        states={
            'required': Eval('level') != '1',
            'invisible': Eval('level') == '1',
            })
    parent_level = fields.Function(
        fields.Char("Parent Level"), 'on_change_with_parent_level')
    children = fields.One2Many('dh.area', 'parent', "Children")
    full_name = fields.Char("Full Name", readonly=True)
    l1 = fields.Many2One('dh.area', "Level 1", readonly=True, ondelete='CASCADE')
    l2 = fields.Many2One('dh.area', "Level 2", readonly=True, ondelete='CASCADE')
    l3 = fields.Many2One('dh.area', "Level 3", readonly=True, ondelete='CASCADE')
    l4 = fields.Many2One('dh.area', "Level 4", readonly=True, ondelete='CASCADE')
    managers = fields.Many2Many(
        'dh.area-res.user', 'area', 'user', "Managers",
        help="Users who manage this area: they receive its alarms and "
        "see the meters below it.")
    meters = fields.One2Many('dh.meter', 'area', "Meters", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('name_parent_unique', Unique(t, t.parent, t.name, t.level),
                'dh_metering.msg_area_name_unique'),
            ]
        cls._sql_indexes.update({
            Index(t, (t.l1, Index.Range())),
            Index(t, (t.l2, Index.Range())),
            Index(t, (t.l3, Index.Range())),
            Index(t, (t.parent, Index.Range())),
            })
        cls._order.insert(0, ('full_name', 'ASC'))

    @staticmethod
    def default_level():
        return '1'

    @fields.depends('level')
    def on_change_with_parent_level(self, name=None):
        if self.level and self.level != '1':
            return str(int(self.level) - 1)
        return ''

    def get_rec_name(self, name):
        return self.full_name or self.name

    @classmethod
    def search_rec_name(cls, name, clause):
        _, operator, value = clause[:3]
        if operator.startswith('!') or operator.startswith('not '):
            bool_op = 'AND'
        else:
            bool_op = 'OR'
        return [bool_op,
            ('full_name', operator, value, *clause[3:]),
            ('name', operator, value, *clause[3:]),
            ]

    @classmethod
    def validate_fields(cls, areas, field_names):
        super().validate_fields(areas, field_names)
        if field_names & {'level', 'parent'}:
            for area in areas:
                if area.level == '1':
                    if area.parent:
                        raise AreaValidationError(gettext(
                                'dh_metering.msg_area_district_parent',
                                area=area.name))
                elif (not area.parent
                        or int(area.parent.level) != int(area.level) - 1):
                    raise AreaValidationError(gettext(
                            'dh_metering.msg_area_level_parent',
                            area=area.name))

    @classmethod
    def create(cls, vlist):
        areas = super().create(vlist)
        cls._update_paths(areas)
        return areas

    @classmethod
    def write(cls, *args):
        super().write(*args)
        actions = iter(args)
        changed = []
        for records, values in zip(actions, actions):
            if {'name', 'parent', 'level'} & set(values):
                changed.extend(records)
        if changed:
            cls._update_paths(changed)

    @classmethod
    def _update_paths(cls, areas):
        """Recompute full name and ancestor ids of areas and their subtrees
        (raw SQL, parents before children), then the denormalised copies on
        the meters below them."""
        pool = Pool()
        Meter = pool.get('dh.meter')
        table = cls.__table__()
        cursor = Transaction().connection.cursor()
        columns = [table.id, table.name, table.level, table.parent,
            table.full_name, table.l1, table.l2, table.l3, table.l4]

        def fetch(where):
            cursor.execute(*table.select(*columns, where=where))
            return {r[0]: list(r) for r in cursor}

        rows = fetch(table.id.in_([a.id for a in areas]))
        updated = []
        while rows:
            parent_ids = {r[3] for r in rows.values() if r[3]}
            parents = fetch(table.id.in_(list(parent_ids))) if parent_ids else {}
            for id_, row in sorted(rows.items(), key=lambda i: int(i[1][2])):
                _, name, level, parent_id = row[:4]
                if parent_id:
                    parent = rows.get(parent_id) or parents[parent_id]
                    full_name = f'{parent[4]}/{name}'
                    path = list(parent[5:9])
                else:
                    full_name, path = name, [None] * 4
                level = int(level)
                path[level - 1] = id_
                path[level:] = [None] * (4 - level)
                row[4:9] = [full_name, *path]
                cursor.execute(*table.update(
                        [table.full_name, table.l1, table.l2, table.l3,
                            table.l4],
                        [full_name, *path],
                        where=table.id == id_))
                updated.append(id_)
            rows = fetch(table.parent.in_(list(rows)))
        cls._reset_cache()
        Meter.update_area_paths(updated)

    @classmethod
    def _reset_cache(cls):
        # the transaction's record cache does not know the raw UPDATEs
        for cache in Transaction().cache.values():
            cache.clear()

    @classmethod
    def copy(cls, areas, default=None):
        default = default.copy() if default else {}
        default.setdefault('children', None)
        default.setdefault('meters', None)
        return super().copy(areas, default=default)


class AreaUser(ModelSQL):
    __name__ = 'dh.area-res.user'
    __string__ = "Area - User"
    area = fields.Many2One(
        'dh.area', "Area", required=True, ondelete='CASCADE')
    user = fields.Many2One(
        'res.user', "User", required=True, ondelete='CASCADE')

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_indexes.add(Index(t, (t.user, Index.Range())))
