"""Per-vendor quirks, as data (dlms-cosem style settings objects).

Code never branches on a vendor's name: it reads the fields of the
:class:`VendorProfile` it is handed. A meter model points at a profile by
name; ``get_vendor(None)`` is the standard behaviour.
"""

from dataclasses import dataclass

from .errors import CodecError

LITTLE = 'little'
BIG = 'big'


@dataclass(frozen=True)
class VendorProfile:
    name: str
    label: str
    #: DL/T645 password P0–P2 on the wire: 'little' (P0 = low byte, the
    #: standard: 123456 -> 56 34 12) or 'big' (12 34 56).
    password_order: str = LITTLE
    #: CJ/T188 DI byte order when sending ('big': 90 1F, 'little': 1F 90).
    #: Both orders are always accepted on receive.
    cjt188_di_order: str = BIG
    #: key of codec.recharge.DIALECTS
    recharge: str = 'plain-write'
    #: DL/T645 password level used for writes and remote control
    level: int = 0x02
    #: FE bytes sent before a request
    preamble: int = 4
    #: CJ/T188 valve control code (04 standard; some use vendor 2A)
    cjt188_valve_control: int = 0x04

    def __post_init__(self):
        if self.password_order not in (LITTLE, BIG):
            raise CodecError(f'{self.name}: password_order must be little '
                'or big')
        if self.cjt188_di_order not in (LITTLE, BIG):
            raise CodecError(f'{self.name}: cjt188_di_order must be little '
                'or big')
        if not 0 <= self.preamble <= 4:
            raise CodecError(f'{self.name}: preamble must be 0 to 4 FE')


VENDORS: dict[str, VendorProfile] = {}


def register_vendor(profile: VendorProfile) -> VendorProfile:
    VENDORS[profile.name] = profile
    return profile


STANDARD = register_vendor(VendorProfile(
    'standard', 'DL/T645-2007 / CJ/T188-2004 as published'))
register_vendor(VendorProfile(
    'cjt188-2018', 'CJ/T188-2018 water meters (DI low byte first)',
    cjt188_di_order=LITTLE))
register_vendor(VendorProfile(
    'password-big-endian', 'meters expecting the password high byte first',
    password_order=BIG))
register_vendor(VendorProfile(
    'state-grid', 'State-Grid ESAM meters (recharge needs the key service)',
    recharge='esam'))
register_vendor(VendorProfile(
    'cjt188-valve-2a', 'CJ/T188 meters with vendor valve code 2A',
    cjt188_valve_control=0x2A))


def get_vendor(vendor=None) -> VendorProfile:
    """A profile from its name, a profile itself, or the standard one."""
    if vendor is None:
        return STANDARD
    if isinstance(vendor, VendorProfile):
        return vendor
    try:
        return VENDORS[vendor]
    except (KeyError, TypeError):
        raise CodecError(f'unknown vendor profile {vendor!r}') from None
