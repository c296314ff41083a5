# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Demo part of the tenant portal (filled in below)."""


class DemoPart:
    sequence = 70
    name = 'dh_wechat'

    @classmethod
    def build(cls, options, log):
        return {}
