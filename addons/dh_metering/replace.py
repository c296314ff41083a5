# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Meter replacement (换表): the old meter's final reading and the new
meter's opening reading at one instant; the new meter inherits every
editable setting of the old one (room, wallet, tariff, channel, alarm
profile, ... whatever the modules add), the old one is archived and the
two are linked (replaces / replaced_by).  Usage stays continuous: the old
meter's usage ends with its final reading, the new one's starts from its
opening reading (its first reading, so it has no usage of its own); both
show in the reports for the periods they have usage in (docs/readings.md)."""
import datetime as dt
from decimal import Decimal

from trytond import backend
from trytond.i18n import gettext
from trytond.model import ModelSQL, ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction
from trytond.wizard import Button, StateTransition, StateView, Wizard

from .exceptions import ReplaceError
from .meter import MAIN_REGISTER, PROTOCOLS

E4 = Decimal(10000)
#: never copied to the new meter: identity, links, and what the meter
#: itself reports (state, relay, readings, remaining, purchase count)
NOT_INHERITED = {'id', 'number', 'address', 'protocol', 'active',
    'replaces', 'replaced_by', 'replaced_at', 'create_uid', 'create_date',
    'write_uid', 'write_date'}


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'
    replaces = fields.Many2One('dh.meter', "Replaces", readonly=True,
        ondelete='RESTRICT', help="The meter this one replaced (换表).")
    replaced_by = fields.Many2One('dh.meter', "Replaced By", readonly=True,
        ondelete='RESTRICT', help="The meter that replaced this one.")
    replaced_at = fields.DateTime("Replaced At", readonly=True)

    @classmethod
    def _inherited_values(cls, old):
        """The new meter's values copied from ``old``: every stored field
        a user can edit (and the master of a merged sub meter)"""
        values = {}
        for name, field in cls._fields.items():
            if name in NOT_INHERITED or isinstance(field, (fields.Function,
                        fields.One2Many)):
                continue
            if field.readonly and name != 'master':
                continue
            value = getattr(old, name)
            if isinstance(field, fields.Many2Many):
                if value:
                    values[name] = [('add', [r.id for r in value])]
                continue
            if isinstance(value, ModelSQL):
                value = value.id
            values[name] = value
        return values

    @classmethod
    def replace(cls, old, values, final, opening, at=None, note=None):
        """Replace ``old`` by a new meter made of ``values`` (number,
        address, protocol, ...) over the inherited ones.  ``final``: the
        old meter's last reading of its main register at ``at`` (naive
        UTC, default now); ``opening``: the new meter's reading then.
        Returns the new meter."""
        pool = Pool()
        Reading = pool.get('dh.meter.reading')
        Log = pool.get('dh.meter.replacement')
        old = cls(old.id)
        if old.replaced_by or not old.active:
            raise ReplaceError(gettext('dh_metering.msg_replace_archived',
                    meter=old.rec_name))
        at = (at or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            ).replace(microsecond=0)
        final, opening = Decimal(str(final)), Decimal(str(opening))
        if final < 0 or opening < 0:
            raise ReplaceError(gettext('dh_metering.msg_replace_negative'))
        register = MAIN_REGISTER[old.utility]
        last_at, last_value = cls._last_reading(old, register)
        if last_at is not None:
            if at <= last_at:
                raise ReplaceError(gettext(
                        'dh_metering.msg_replace_before_last',
                        meter=old.rec_name, at=at, last_at=last_at))
            if final < last_value:
                raise ReplaceError(gettext(
                        'dh_metering.msg_replace_final_low',
                        meter=old.rec_name, final=final, last=last_value))
        new_values = cls._inherited_values(old)
        new_values.update(values)
        new_values['replaces'] = old.id
        number = new_values.get('number') or old.number
        new_values['number'] = number
        if number == old.number:
            # the room keeps its number (编号): the archived meter's gets
            # the date of the swap
            cls.write([old], {'number': f'{old.number}/{at:%Y%m%d%H%M}'})
        # the old meter's final reading while it is still active (billing
        # bills it up to there)
        Reading.ingest([(old.id, register, at, final)])
        new, = cls.create([new_values])
        Reading.ingest([(new.id, register, at, opening)])
        if old.subs:
            cls.write(list(old.subs), {'master': new.id})
        cls.write([old], {'active': False, 'replaced_by': new.id,
                'replaced_at': at})
        Log.create([{'old_meter': old.id, 'new_meter': new.id, 'date': at,
                    'register': register,
                    'last_value': last_value, 'last_read_at': last_at,
                    'final_value': final, 'opening_value': opening,
                    'operator': Transaction().user or None, 'note': note}])
        return cls(new.id)

    @classmethod
    def _last_reading(cls, meter, register):
        cursor = Transaction().connection.cursor()
        p = '%s' if backend.name == 'postgresql' else '?'
        cursor.execute('SELECT read_at, value_e4 FROM dh_reading_last '
            f'WHERE meter = {p} AND register = {p}', (meter.id, register))
        row = cursor.fetchone()
        if not row:
            return None, None
        read_at = row[0]
        if isinstance(read_at, str):
            read_at = dt.datetime.fromisoformat(read_at)
        return read_at, (Decimal(row[1]) / E4).quantize(Decimal('0.01'))


class Replacement(ModelSQL, ModelView):
    "The record of a meter replacement (换表记录)"
    __name__ = 'dh.meter.replacement'
    __string__ = "Meter Replacement"
    old_meter = fields.Many2One('dh.meter', "Old Meter", required=True,
        readonly=True, ondelete='RESTRICT',
        context={'active_test': False})
    new_meter = fields.Many2One('dh.meter', "New Meter", required=True,
        readonly=True, ondelete='RESTRICT',
        context={'active_test': False})
    date = fields.DateTime("Date", required=True, readonly=True)
    register = fields.Char("Register", readonly=True)
    last_value = fields.Numeric("Old Meter Last Reading", digits=(16, 2),
        readonly=True)
    last_read_at = fields.DateTime("Old Meter Last Read At", readonly=True)
    final_value = fields.Numeric("Old Meter Final Reading", digits=(16, 2),
        required=True, readonly=True)
    opening_value = fields.Numeric("New Meter Opening Reading",
        digits=(16, 2), required=True, readonly=True)
    operator = fields.Many2One('res.user', "Operator", readonly=True)
    note = fields.Char("Note", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('new_meter')
        cls._order.insert(0, ('date', 'DESC'))


class ReplaceStart(ModelView):
    __name__ = 'dh.meter.replace.start'
    __string__ = "Replace Meter"
    meter = fields.Many2One('dh.meter', "Old Meter", readonly=True)
    last_value = fields.Numeric("Last Reading", digits=(16, 2),
        readonly=True)
    last_read_at = fields.DateTime("Last Read At", readonly=True)
    final_value = fields.Numeric("Final Reading", digits=(16, 2),
        required=True, help="The old meter's reading when it is removed.")
    date = fields.DateTime("Replaced At", required=True)
    number = fields.Char("New Number", required=True,
        help="The same number keeps the room's number on the new meter; "
        "the old one's gets the date appended.")
    address = fields.Char("New Meter Address", required=True)
    protocol = fields.Selection(PROTOCOLS, "New Meter Protocol",
        required=True)
    opening_value = fields.Numeric("Opening Reading", digits=(16, 2),
        required=True, help="The new meter's reading when it is fitted.")
    note = fields.Char("Note")


class Replace(Wizard):
    "Replace a meter (换表)"
    __name__ = 'dh.meter.replace'
    __string__ = "Replace Meter"
    start = StateView('dh.meter.replace.start',
        'dh_metering.replace_start_view_form', [
            Button("Cancel", 'end', 'tryton-cancel'),
            Button("Replace", 'replace', 'tryton-ok', default=True),
            ])
    replace = StateTransition()

    def default_start(self, fields):
        Meter = Pool().get('dh.meter')
        meter = self.record
        if not meter:
            return {}
        last_at, last_value = Meter._last_reading(meter,
            MAIN_REGISTER[meter.utility])
        return {'meter': meter.id, 'last_value': last_value,
            'last_read_at': last_at, 'final_value': last_value,
            'date': dt.datetime.now(dt.timezone.utc).replace(tzinfo=None,
                microsecond=0),
            'number': meter.number, 'protocol': meter.protocol,
            'opening_value': Decimal('0.00')}

    def _new_values(self):
        return {'number': self.start.number, 'address': self.start.address,
            'protocol': self.start.protocol}

    def transition_replace(self):
        Meter = Pool().get('dh.meter')
        Meter.replace(self.record, self._new_values(),
            self.start.final_value, self.start.opening_value,
            at=self.start.date, note=self.start.note)
        return 'end'
