# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"The integration API's devices/abnormal lists the open alarms too (dh_api)"
from decimal import Decimal

from trytond.pool import Pool, PoolMeta
from trytond.transaction import Transaction

from .alarm import KIND_NAMES_ZH, _dt


class Meter(metaclass=PoolMeta):
    __name__ = 'dh.meter'

    @classmethod
    def api_abnormal_reasons(cls, scope):
        from trytond.modules.dh_api.meter import reason
        result = super().api_abnormal_reasons(scope)
        Alarm = Pool().get('dh.alarm')
        alarm = Alarm.__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*alarm.select(alarm.meter, alarm.kind, alarm.start,
                alarm.value, alarm.threshold, alarm.state,
                alarm.description,
                where=alarm.meter.in_(scope) & (alarm.state != 'closed'),
                order_by=[alarm.meter, alarm.start]))
        for (meter_id, kind, start, value, threshold, state,
                description) in cursor.fetchall():
            result.setdefault(meter_id, []).append(reason(f'alarm_{kind}',
                    description or KIND_NAMES_ZH.get(kind, kind),
                    since=_dt(start), detail={'kind': kind, 'state': state,
                        'value': _text(value), 'threshold': _text(threshold)}))
        return result


def _text(value):
    "A figure as the API writes numbers: a string, no trailing zeros"
    if value is None:
        return None
    return f'{Decimal(str(value)).normalize():f}'
