# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.pool import PoolMeta


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend([
                ('dh.alarm|cron_evaluate', "Evaluate Alarms"),
                ('dh.notification|cron_retry', "Retry Notifications"),
                ('dh.wallet|cron_monthly_topup', "Credit Monthly Top-ups"),
                ])
