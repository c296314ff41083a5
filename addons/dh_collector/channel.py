# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Channels (buses): a serial port, a TCP transparent bridge (串口服务器) the
collector connects to, or a DTU / concentrator that dials in and announces
itself with a registration id; and read plans (which registers, how often)."""
import datetime as dt

from trytond.i18n import gettext
from trytond.model import (
    DeactivableMixin, ModelSQL, ModelView, Unique, fields)
from trytond.model.exceptions import ValidationError
from trytond.pool import Pool
from trytond.pyson import Eval

from trytond.modules.dh_metering.usage import REGISTERS

KINDS = [
    ('tcp', "TCP Bridge"),
    ('serial', "Serial RS485"),
    ('dtu', "DTU Dial-in"),
    ('mqtt', "MQTT Broker (NB-IoT / 4G)"),
    ]
_mqtt = {'invisible': Eval('kind') != 'mqtt'}
_mqtt_required = {**_mqtt, 'required': Eval('kind') == 'mqtt'}


class ReadPlan(DeactivableMixin, ModelSQL, ModelView):
    "What to read and how often"
    __name__ = 'dh.read.plan'
    __string__ = "Read Plan"
    name = fields.Char("Name", required=True, translate=True)
    registers = fields.MultiSelection(REGISTERS, "Registers", required=True)
    interval = fields.Integer("Interval (minutes)", required=True,
        domain=[('interval', '>', 0)])

    @staticmethod
    def default_interval():
        return 60


class ChannelPlan(ModelSQL):
    __name__ = 'dh.channel-dh.read.plan'
    __string__ = "Channel - Read Plan"
    channel = fields.Many2One('dh.channel', "Channel", required=True,
        ondelete='CASCADE')
    plan = fields.Many2One('dh.read.plan', "Plan", required=True,
        ondelete='CASCADE')


class Channel(DeactivableMixin, ModelSQL, ModelView):
    "A bus the collector reads meters through"
    __name__ = 'dh.channel'
    __string__ = "Channel"
    name = fields.Char("Name", required=True)
    kind = fields.Selection(KINDS, "Kind", required=True)
    host = fields.Char("Host", states={
            'invisible': ~Eval('kind').in_(['tcp', 'mqtt']),
            'required': Eval('kind').in_(['tcp', 'mqtt'])})
    port = fields.Integer("Port", states={
            'invisible': ~Eval('kind').in_(['tcp', 'mqtt']),
            'required': Eval('kind').in_(['tcp', 'mqtt'])})
    device = fields.Char("Device", states={
            'invisible': Eval('kind') != 'serial',
            'required': Eval('kind') == 'serial'},
        help="e.g. /dev/ttyUSB0")
    registration_id = fields.Char("Registration ID", states={
            'invisible': Eval('kind') != 'dtu',
            'required': Eval('kind') == 'dtu'},
        help="The id the DTU announces when it connects.")
    baud = fields.Integer("Baud Rate", required=True)
    parity = fields.Selection([
            ('E', "Even"),
            ('N', "None"),
            ('O', "Odd"),
            ], "Parity", required=True)
    timeout = fields.Float("Reply Timeout (s)", required=True)
    inter_byte_gap = fields.Float("Inter-byte Gap (s)", required=True)
    retries = fields.Integer("Retries", required=True)
    backoff = fields.Float("Back-off (s)", required=True)
    modbus_framer = fields.Selection([
            ('rtu', "RTU over TCP"),
            ('socket', "Modbus TCP"),
            ], "Modbus Framing", states={'invisible': Eval('kind') != 'tcp'},
        help="For Modbus meters: RTU frames through a transparent bridge, "
        "or a Modbus TCP gateway.")
    # NB-IoT / 4G meters: the broker they publish to (engine/mqtt.py)
    mqtt_username = fields.Char("Broker User", states=_mqtt)
    mqtt_password = fields.Char("Broker Password", states=_mqtt)
    mqtt_client_id = fields.Char("Client ID", states=_mqtt,
        help="The collector's fixed client id: the broker keeps its "
        "session (subscriptions, unacknowledged messages) under it. "
        "Empty: dh-collector-<channel id>.")
    mqtt_reading_topic = fields.Char("Reading Topic", states=_mqtt_required,
        help="Where the meters publish readings; {address} is the meter "
        "address.")
    mqtt_command_topic = fields.Char("Command Topic", states=_mqtt_required,
        help="Where the collector publishes commands to a meter; "
        "{address} is the meter address.")
    mqtt_reply_topic = fields.Char("Reply Topic", states=_mqtt_required,
        help="Where the meters answer commands; {address} is the meter "
        "address.")
    mqtt_payload_format = fields.Selection([
            ('json', "JSON"),
            ('hex', "DL/T645 Frame (Hex Text)"),
            ('binary', "DL/T645 Frame (Binary)"),
            ], "Payload Format", states=_mqtt_required)
    mqtt_session_expiry = fields.Integer("Session Expiry (s)",
        states=_mqtt_required,
        help="How long the broker keeps the collector's session and "
        "queued messages while it is disconnected.")
    plans = fields.Many2Many('dh.channel-dh.read.plan', 'channel', 'plan',
        "Read Plans")
    meters = fields.One2Many('dh.meter', 'bus', "Meters", readonly=True)
    collect_requested = fields.Boolean("Collect Requested", readonly=True)
    last_round_at = fields.DateTime("Last Round", readonly=True)
    last_success_at = fields.DateTime("Last Success", readonly=True)
    meters_total = fields.Integer("Meter Count", readonly=True)
    meters_answering = fields.Integer("Meters Answering", readonly=True)
    readings_last_round = fields.Integer("Readings (Last Round)",
        readonly=True)
    attempts = fields.Integer("Attempts (Last Round)", readonly=True)
    errors = fields.Integer("Errors (Last Round)", readonly=True)
    error_rate = fields.Function(fields.Float("Error Rate (%)",
            digits=(16, 1)), 'get_error_rate')
    last_error = fields.Char("Last Error", readonly=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        t = cls.__table__()
        cls._sql_constraints += [
            ('registration_unique', Unique(t, t.registration_id),
                'dh_collector.msg_channel_registration_unique'),
            ]
        cls._buttons.update({
                'collect_now': {},
                })

    @classmethod
    def __register__(cls, module_name):
        super().__register__(module_name)
        from trytond import backend
        from trytond.transaction import Transaction
        from .sharing import create_tables
        if backend.name == 'postgresql':
            # the leases of collectors sharing the channels (sharing.py)
            create_tables(Transaction().connection.cursor())

    @staticmethod
    def default_kind():
        return 'tcp'

    @staticmethod
    def default_modbus_framer():
        return 'rtu'

    @staticmethod
    def default_mqtt_reading_topic():
        return 'dh/meter/{address}/up'

    @staticmethod
    def default_mqtt_command_topic():
        return 'dh/meter/{address}/down'

    @staticmethod
    def default_mqtt_reply_topic():
        return 'dh/meter/{address}/reply'

    @staticmethod
    def default_mqtt_payload_format():
        return 'json'

    @staticmethod
    def default_mqtt_session_expiry():
        return 7 * 86400

    @staticmethod
    def default_baud():
        return 2400

    @staticmethod
    def default_parity():
        return 'E'

    @staticmethod
    def default_timeout():
        return 1.0

    @staticmethod
    def default_inter_byte_gap():
        return 0.5

    @staticmethod
    def default_retries():
        return 2

    @staticmethod
    def default_backoff():
        return 0.5

    def get_error_rate(self, name):
        if not self.attempts:
            return None
        return round(100.0 * (self.errors or 0) / self.attempts, 1)

    @classmethod
    def validate_fields(cls, channels, field_names):
        super().validate_fields(channels, field_names)
        for channel in channels:
            if channel.kind in {'tcp', 'mqtt'} and channel.port is not None \
                    and not (0 < channel.port < 65536):
                raise ValidationError(gettext(
                        'dh_collector.msg_channel_port', channel=channel.name))
            if channel.kind == 'mqtt':
                from .engine.mqtt import check_template
                for name in ['mqtt_reading_topic', 'mqtt_command_topic',
                        'mqtt_reply_topic']:
                    try:
                        check_template(getattr(channel, name) or '')
                    except ValueError:
                        raise ValidationError(gettext(
                                'dh_collector.msg_channel_mqtt_topic',
                                channel=channel.name,
                                topic=getattr(channel, name) or ''))

    @classmethod
    @ModelView.button
    def collect_now(cls, channels):
        cls.write(list(channels), {'collect_requested': True})

    @classmethod
    def record_round(cls, channel_id, stats):
        "Store the health figures of a finished round (called by the daemon)"
        channel = cls(channel_id)
        values = {
            'collect_requested': False,
            'last_round_at': stats['finished'],
            'meters_total': stats['meters'],
            'meters_answering': stats['meters_answering'],
            'readings_last_round': stats['readings'],
            'attempts': stats['attempts'],
            'errors': stats['errors'],
            'last_error': (stats.get('last_error') or '')[:250] or None,
            }
        if stats['meters_answering']:
            values['last_success_at'] = stats['finished']
        cls.write([channel], values)

    def due_registers(self, now, last_runs):
        """{plan id: registers} of the plans due at ``now`` given the last
        run of each plan ({plan id: datetime})"""
        due = {}
        for plan in self.plans:
            if not plan.active:
                continue
            last = last_runs.get(plan.id)
            if last is None or now - last >= dt.timedelta(
                    minutes=plan.interval):
                due[plan.id] = list(plan.registers)
        return due

    @classmethod
    def plan_for_collector(cls, kinds=None):
        """Channels with their meters, as plain data for the collector
        daemon: [{channel fields…, 'plans': [...], 'meters': [...]}]"""
        pool = Pool()
        Meter = pool.get('dh.meter')
        domain = [('active', '=', True)]
        if kinds:
            domain.append(('kind', 'in', kinds))
        result = []
        for channel in cls.search(domain):
            meters = Meter.search([('bus', '=', channel.id),
                    ('active', '=', True)], order=[('id', 'ASC')])
            result.append({
                    'id': channel.id, 'name': channel.name,
                    'kind': channel.kind, 'host': channel.host,
                    'port': channel.port, 'device': channel.device,
                    'registration_id': channel.registration_id,
                    'baud': channel.baud, 'parity': channel.parity,
                    'timeout': channel.timeout,
                    'inter_byte_gap': channel.inter_byte_gap,
                    'retries': channel.retries, 'backoff': channel.backoff,
                    'modbus_framer': channel.modbus_framer,
                    'collect_requested': channel.collect_requested,
                    'mqtt_username': channel.mqtt_username,
                    'mqtt_password': channel.mqtt_password,
                    'mqtt_client_id': channel.mqtt_client_id,
                    'mqtt_reading_topic': channel.mqtt_reading_topic,
                    'mqtt_command_topic': channel.mqtt_command_topic,
                    'mqtt_reply_topic': channel.mqtt_reply_topic,
                    'mqtt_payload_format': channel.mqtt_payload_format,
                    'mqtt_session_expiry': channel.mqtt_session_expiry,
                    'plans': [{'id': p.id, 'registers': list(p.registers),
                            'interval': p.interval}
                        for p in channel.plans if p.active],
                    'meters': [{'id': m.id, 'address': m.address,
                            'protocol': m.protocol, 'utility': m.utility,
                            'vendor': m.vendor or 'standard',
                            'password': m.password or '000000',
                            'modbus_map': m.modbus_map,
                            'ct': m.ct_ratio or 1, 'pt': m.pt_ratio or 1}
                        for m in meters],
                    })
        return result
