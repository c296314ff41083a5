"""Register names (what the database stores) to the data identifier read
for each protocol (PROTOCOLS.md §1.3, §2, §4)."""

DLT645_2007 = 'dlt645_2007'
DLT645_1997 = 'dlt645_1997'
CJT188 = 'cjt188'

#: register -> {protocol: DI as conventionally written}
REGISTERS: dict[str, dict[str, str]] = {
    'energy_total': {DLT645_2007: '00010000', DLT645_1997: '9010'},
    'energy_t1': {DLT645_2007: '00010100', DLT645_1997: '9011'},
    'energy_t2': {DLT645_2007: '00010200', DLT645_1997: '9012'},
    'energy_t3': {DLT645_2007: '00010300', DLT645_1997: '9013'},
    'energy_t4': {DLT645_2007: '00010400', DLT645_1997: '9014'},
    'energy_reverse': {DLT645_2007: '00020000', DLT645_1997: '9020'},
    'voltage': {DLT645_2007: '02010100', DLT645_1997: 'B611'},
    'current': {DLT645_2007: '02020100', DLT645_1997: 'B621'},
    'power': {DLT645_2007: '02030000', DLT645_1997: 'B630'},
    'water_flow': {CJT188: '901F'},      # cumulative flow, m3
    # prepaid meters (read by the counter's 读取剩余电量)
    'remaining_energy': {DLT645_2007: '00900100'},
    'remaining_money': {DLT645_2007: '00900200'},
    }

#: DL/T645-2007 status word 3 (relay bit 4) read back after trip / close
STATUS_WORD_3 = '04000503'


class UnsupportedRegister(ValueError):
    pass


def di_for(register: str, protocol: str) -> str:
    """The DI to read ``register`` on a ``protocol`` meter."""
    try:
        return REGISTERS[register][protocol]
    except KeyError:
        if register not in REGISTERS:
            raise UnsupportedRegister(f'unknown register {register!r}'
                ) from None
        raise UnsupportedRegister(f'register {register!r} cannot be read '
            f'from a {protocol} meter') from None


def registers_for(protocol: str) -> list[str]:
    """Every register a ``protocol`` meter can give."""
    return [name for name, dis in REGISTERS.items() if protocol in dis]
