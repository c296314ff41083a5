# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.pool import PoolMeta


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.append(
            ('dh.wechat.order|cron_sync',
                "Query Late WeChat Payments and Close Stale Orders"))
