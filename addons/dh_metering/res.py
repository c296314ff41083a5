# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
from trytond.model import fields
from trytond.pool import PoolMeta


class User(metaclass=PoolMeta):
    __name__ = 'res.user'
    dh_areas = fields.Many2Many(
        'dh.area-res.user', 'user', 'area', "Managed Areas",
        help="The user sees the meters below these areas "
        "(unless he is a DH administrator).")
    dh_meters = fields.Many2Many(
        'dh.meter-res.user', 'user', 'meter', "Assigned Meters",
        help="Besides his areas, the user sees these meters "
        "(权限分配).")

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls._context_fields.insert(0, 'dh_areas')
