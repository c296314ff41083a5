# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.model import ModelView, fields
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'
    bus = fields.Many2One('dh.channel', "Collector Channel",
        ondelete='RESTRICT',
        help="The channel the collector reads this meter through.")
    vendor = fields.Char("Vendor Profile",
        help="Codec quirks of the meter's maker (password byte order, "
        "CJ/T188 DI order…); empty for the standard.")
    password = fields.Char("Control Password",
        help="Password for trip / close (6 digits).")
    commands = fields.One2Many('dh.command', 'meter', "Commands",
        readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._buttons.update({
                'read_now': {},
                'trip': {
                    'invisible': Eval('utility') == 'water',
                    'depends': ['utility']},
                'close': {
                    'invisible': Eval('utility') == 'water',
                    'depends': ['utility']},
                'valve_open': {
                    'invisible': Eval('utility') != 'water',
                    'depends': ['utility']},
                'valve_close': {
                    'invisible': Eval('utility') != 'water',
                    'depends': ['utility']},
                })

    @classmethod
    def copy(cls, meters, default=None):
        default = default.copy() if default else {}
        default.setdefault('commands', None)
        return super().copy(meters, default=default)

    @classmethod
    def _queue(cls, meters, kind):
        Command = Pool().get('dh.command')
        return Command.queue(meters, kind)

    @classmethod
    @ModelView.button
    def read_now(cls, meters):
        cls._queue(meters, 'read')

    @classmethod
    @ModelView.button
    def trip(cls, meters):
        cls._queue(meters, 'trip')

    @classmethod
    @ModelView.button
    def close(cls, meters):
        cls._queue(meters, 'close')

    @classmethod
    @ModelView.button
    def valve_open(cls, meters):
        cls._queue(meters, 'valve_open')

    @classmethod
    @ModelView.button
    def valve_close(cls, meters):
        cls._queue(meters, 'valve_close')
