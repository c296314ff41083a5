# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import ModelView, fields
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool, PoolMeta
from trytond.pyson import Eval

from .modbus_maps import MAPS, ModbusMapError, check_ratios

_modbus = {'invisible': Eval('protocol') != 'modbus'}


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'
    bus = fields.Many2One('dh.channel', "Collector Channel",
        ondelete='RESTRICT',
        help="The channel the collector reads this meter through.")
    nb_iot = fields.Boolean("NB-IoT / 4G Meter",
        help="The meter has its own cellular modem and reports through an "
        "MQTT broker: its collector channel is of kind MQTT Broker.")
    vendor = fields.Char("Vendor Profile",
        help="Codec quirks of the meter's maker (password byte order, "
        "CJ/T188 DI order…); empty for the standard.")
    password = fields.Char("Control Password",
        help="Password for trip / close (6 digits).")
    commands = fields.One2Many('dh.command', 'meter', "Commands",
        readonly=True)
    modbus_map = fields.Selection([(None, '')] + [
            (name, m.title) for name, m in MAPS.items()], "Modbus Map",
        states={**_modbus, 'required': Eval('protocol') == 'modbus'},
        help="The register map of the meter model; the meter address is "
        "its Modbus unit id.")
    ct_ratio = fields.Numeric("CT Ratio", digits=(16, 4), states=_modbus,
        help="Current transformer ratio the meter does not apply itself.")
    pt_ratio = fields.Numeric("PT Ratio", digits=(16, 4), states=_modbus,
        help="Voltage transformer ratio the meter does not apply itself.")

    @staticmethod
    def default_ct_ratio():
        return Decimal(1)

    @staticmethod
    def default_pt_ratio():
        return Decimal(1)

    @staticmethod
    def default_nb_iot():
        return False

    @classmethod
    def validate_fields(cls, meters, field_names):
        super().validate_fields(meters, field_names)
        if field_names & {'nb_iot', 'bus'}:
            for meter in meters:
                if meter.bus and bool(meter.nb_iot) != (
                        meter.bus.kind == 'mqtt'):
                    raise ValidationError(gettext(
                            'dh_collector.msg_meter_nb_channel',
                            meter=meter.rec_name, channel=meter.bus.rec_name))
        if field_names & {'protocol', 'modbus_map', 'ct_ratio', 'pt_ratio'}:
            for meter in meters:
                if meter.protocol != 'modbus':
                    continue
                try:
                    if not meter.modbus_map:
                        raise ModbusMapError('no register map')
                    check_ratios(meter.modbus_map, meter.ct_ratio or 1,
                        meter.pt_ratio or 1)
                except ModbusMapError as exception:
                    raise ValidationError(gettext(
                            'dh_collector.msg_meter_modbus',
                            meter=meter.rec_name, error=str(exception)))

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


class ReplaceStart(metaclass=PoolMeta):
    "换表: the new meter's vendor profile and password"
    __name__ = 'dh.meter.replace.start'
    vendor = fields.Char("New Meter Vendor Profile",
        help="Empty for the standard.")
    password = fields.Char("New Meter Control Password")


class Replace(metaclass=PoolMeta):
    __name__ = 'dh.meter.replace'

    def default_start(self, fields):
        values = super().default_start(fields)
        if self.record:
            values.update(vendor=self.record.vendor,
                password=self.record.password)
        return values

    def _new_values(self):
        values = super()._new_values()
        values.update(vendor=self.start.vendor or None,
            password=self.start.password)
        return values
