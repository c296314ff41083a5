# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Tariffs: flat, four-rate TOU (尖 / 峰 / 平 / 谷 with daily bands) and
optional tiers (阶梯); per utility.  The arithmetic is rules.py."""
from decimal import Decimal

from trytond.i18n import gettext
from trytond.model import DeactivableMixin, ModelSQL, ModelView, fields
from trytond.pyson import Eval

from . import rules
from .exceptions import TariffValidationError

BANDS = [
    ('t1', "T1 Sharp"),
    ('t2', "T2 Peak"),
    ('t3', "T3 Flat"),
    ('t4', "T4 Valley"),
    ]
_price = dict(digits=(16, 4))


class Tariff(DeactivableMixin, ModelSQL, ModelView):
    "A tariff"
    __name__ = 'dh.tariff'
    __string__ = "Tariff"
    name = fields.Char("Name", required=True)
    utility = fields.Selection([
            ('electricity', "Electricity"),
            ('water', "Water"),
            ('ac', "Air Conditioning"),
            ], "Utility", required=True)
    kind = fields.Selection([
            ('flat', "Flat Rate"),
            ('tou', "Four-rate TOU"),
            ], "Kind", required=True)
    price = fields.Numeric("Unit Price", **_price, states={
            'required': Eval('kind') == 'flat',
            'invisible': Eval('kind') != 'flat'})
    price_t1 = fields.Numeric("T1 Sharp Price", **_price,
        states={'invisible': Eval('kind') != 'tou',
            'required': Eval('kind') == 'tou'})
    price_t2 = fields.Numeric("T2 Peak Price", **_price,
        states={'invisible': Eval('kind') != 'tou',
            'required': Eval('kind') == 'tou'})
    price_t3 = fields.Numeric("T3 Flat Price", **_price,
        states={'invisible': Eval('kind') != 'tou',
            'required': Eval('kind') == 'tou'})
    price_t4 = fields.Numeric("T4 Valley Price", **_price,
        states={'invisible': Eval('kind') != 'tou',
            'required': Eval('kind') == 'tou'})
    bands = fields.One2Many('dh.tariff.band', 'tariff', "Time Bands",
        states={'invisible': Eval('kind') != 'tou'})
    tiers = fields.One2Many('dh.tariff.tier', 'tariff', "Tiers",
        states={'invisible': Eval('kind') != 'flat'},
        help="Monthly cumulative steps (阶梯): up to N kWh at this price; "
        "the last step without a limit.")
    catalogue_price = fields.Numeric("Catalogue Price", **_price,
        help="The grid's price for this supply: a tariff more than 15 % "
        "above it is flagged (转供电加价上限).")
    resale_warning = fields.Function(fields.Char("Resale Check"),
        'get_resale_warning')

    @staticmethod
    def default_kind():
        return 'flat'

    @staticmethod
    def default_utility():
        return 'electricity'

    def to_rules(self):
        return rules.Tariff(kind=self.kind, price=self.price,
            tou_prices={b: getattr(self, f'price_{b}') for b, _ in BANDS
                if getattr(self, f'price_{b}') is not None},
            bands=[(b.start, b.end, b.band) for b in self.bands],
            tiers=[(t.upto, t.price) for t in sorted(self.tiers,
                    key=lambda t: (t.upto is None, t.upto or 0))])

    @classmethod
    def validate(cls, tariffs):
        super().validate(tariffs)
        for tariff in tariffs:
            try:
                rules.validate_tariff(tariff.to_rules())
            except ValueError as exception:
                raise TariffValidationError(gettext(
                        'dh_billing.msg_tariff_invalid', tariff=tariff.name,
                        error=str(exception)))

    def get_resale_warning(self, name):
        if not self.catalogue_price:
            return None
        prices = [self.price] if self.kind == 'flat' else [
            getattr(self, f'price_{b}') for b, _ in BANDS]
        worst = max((rules.resale_excess(p, self.catalogue_price) or 0
                for p in prices if p is not None), default=0)
        if worst:
            return gettext('dh_billing.msg_resale_excess',
                excess=str(Decimal(worst).quantize(Decimal('0.0001'))))
        return None

    def price_of(self, band_or_register, override=None):
        return rules.price_for(self.to_rules(), band_or_register, override)


class TariffBand(ModelSQL, ModelView):
    "A daily time band of a TOU tariff"
    __name__ = 'dh.tariff.band'
    __string__ = "Tariff Time Band"
    tariff = fields.Many2One('dh.tariff', "Tariff", required=True,
        ondelete='CASCADE')
    start = fields.Char("Start", required=True, help="HH:MM")
    end = fields.Char("End", required=True, help="HH:MM (24:00 allowed)")
    band = fields.Selection(BANDS, "Band", required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('tariff')
        cls._order.insert(0, ('start', 'ASC'))


class TariffTier(ModelSQL, ModelView):
    "A step of a tiered tariff (阶梯)"
    __name__ = 'dh.tariff.tier'
    __string__ = "Tariff Tier"
    tariff = fields.Many2One('dh.tariff', "Tariff", required=True,
        ondelete='CASCADE')
    upto = fields.Numeric("Up to (kWh / month)", digits=(16, 2),
        help="Empty for the last step.")
    price = fields.Numeric("Price", digits=(16, 4), required=True)

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__access__.add('tariff')
        cls._order.insert(0, ('upto', 'ASC NULLS LAST'))
