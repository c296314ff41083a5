# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.pool import PoolMeta


class Cron(metaclass=PoolMeta):
    __name__ = 'ir.cron'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.method.selection.extend([
                ('dh.api.call|cron_purge', "Remove Old API Calls"),
                ])
