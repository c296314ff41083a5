"""``dh frame decode|encode``: decode one frame to JSON, build request frames.

The ``dh`` console script calls ``main(sys.argv[2:])``. Errors (bad hex, a
malformed frame, bad arguments) give exit status 2 and one line on stderr.
"""

import argparse
import datetime as dt
import json
import sys

from .codec import CodecError, cjt188, dlt645, recharge, to_hex
from .codec.auto import PROTOCOLS, decode_to_json
from .codec.bcd import parse_hex


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f'{self.prog}: {message}')


def _level(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f'level {text!r} is not hex') \
            from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError('level must be one byte, e.g. 02')
    return value


def _hex_byte(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not hex') from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError(f'{text!r} is not one byte')
    return value


def _byte(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') \
            from None
    if not 0 <= value <= 0xFF:
        raise argparse.ArgumentTypeError(f'{text!r} is not 0..255')
    return value


def _compact_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, '%y%m%d%H%M%S')
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not YYMMDDhhmmss') from None


def _iso_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an ISO time') \
            from None


def _auth(sub):
    sub.add_argument('--password', default='000000',
        help='6 hex digits, printed order (default 000000)')
    sub.add_argument('--level', type=_level, default=None,
        help='password level PA in hex (default: the vendor profile, 02)')
    sub.add_argument('--operator', default='00000000',
        help='operator code C0-C3, 8 hex digits')


def _common(sub, preamble=True):
    sub.add_argument('--vendor', default=None,
        help='vendor profile name (codec.vendors)')
    if preamble:
        sub.add_argument('--preamble', type=int, default=None,
            choices=range(0, 5), help='number of FE bytes (default 4)')


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog='dh frame',
        description='Decode or build DL/T645 and CJ/T188 frames.')
    commands = parser.add_subparsers(dest='command', required=True,
        parser_class=_Parser)

    dec = commands.add_parser('decode', help='decode one frame to JSON')
    dec.add_argument('hex', nargs='+', help='frame bytes in hex; spaces '
        'allowed')
    dec.add_argument('--protocol', choices=PROTOCOLS, default=None,
        help='force the protocol (default: auto-detect)')
    dec.add_argument('--vendor', default=None)

    enc = commands.add_parser('encode', help='build a request frame')
    kinds = enc.add_subparsers(dest='kind', required=True,
        parser_class=_Parser)

    read = kinds.add_parser('read', help='DL/T645 read (0x11; 1997: 0x01)')
    read.add_argument('--address', required=True)
    read.add_argument('--di', required=True)
    read.add_argument('--version', choices=('2007', '1997'), default='2007')
    _common(read)

    nxt = kinds.add_parser('read-next', help='DL/T645-2007 follow-up (0x12)')
    nxt.add_argument('--address', required=True)
    nxt.add_argument('--di', required=True)
    nxt.add_argument('--seq', type=_byte, required=True)
    _common(nxt)

    write = kinds.add_parser('write', help='DL/T645 write (0x14; 1997 0x04)')
    write.add_argument('--address', required=True)
    write.add_argument('--di', required=True)
    group = write.add_mutually_exclusive_group(required=True)
    group.add_argument('--value', help='value, encoded through the DI '
        'registry (JSON for lists, e.g. 04A00301 \'[["08:00", "5"]]\')')
    group.add_argument('--data', help='raw data bytes in hex, wire order')
    write.add_argument('--version', choices=('2007', '1997'), default='2007')
    _auth(write)
    _common(write)

    control = kinds.add_parser('control', help='remote control (0x1C)')
    control.add_argument('--address', required=True)
    control.add_argument('--action', required=True,
        choices=tuple(dlt645.CONTROL_ACTIONS))
    control.add_argument('--valid-until', type=_compact_time, default=None,
        help='YYMMDDhhmmss (default: now + 1 hour)')
    _auth(control)
    _common(control)

    sync = kinds.add_parser('time-sync', help='broadcast time (0x08)')
    sync.add_argument('--time', type=_iso_time, default=None,
        help='ISO date-time (default: now, local)')
    sync.add_argument('--address', default=dlt645.BROADCAST)
    _common(sync)

    kinds_ra = kinds.add_parser('read-address', help='read address (0x13)')
    _common(kinds_ra)

    freeze = kinds.add_parser('freeze', help='freeze (0x16)')
    freeze.add_argument('--address', default=dlt645.BROADCAST)
    for name in ('minute', 'hour', 'day', 'month'):
        freeze.add_argument(f'--{name}', type=int, default=None,
            help='omit for 99 (every)')
    _common(freeze)

    purchase = kinds.add_parser('recharge', help='vendor purchase write '
        '(count = meter count + 1)')
    purchase.add_argument('--address', required=True)
    purchase.add_argument('--amount', required=True, help='yuan, e.g. 100.00')
    purchase.add_argument('--count', type=int, required=True)
    _auth(purchase)
    _common(purchase)

    cread = kinds.add_parser('cjt188-read', help='CJ/T188 read (0x01)')
    cread.add_argument('--address', required=True, help='14 digits')
    cread.add_argument('--type', type=_hex_byte, default=0x10,
        help='meter type in hex (default 10, cold water)')
    cread.add_argument('--di', default=cjt188.DI_METERING)
    cread.add_argument('--ser', type=_byte, default=0)
    _common(cread)

    valve = kinds.add_parser('valve', help='CJ/T188 valve control (A017)')
    valve.add_argument('--address', required=True, help='14 digits')
    state = valve.add_mutually_exclusive_group(required=True)
    state.add_argument('--open', action='store_true')
    state.add_argument('--close', action='store_true')
    valve.add_argument('--type', type=_hex_byte, default=0x10)
    valve.add_argument('--ser', type=_byte, default=0)
    _common(valve)

    caddr = kinds.add_parser('cjt188-read-address',
        help='CJ/T188 read address (0x03, broadcast)')
    caddr.add_argument('--type', type=_hex_byte, default=0xAA)
    caddr.add_argument('--ser', type=_byte, default=0)
    _common(caddr)
    return parser


def _encode(args) -> bytes:
    common = {'vendor': args.vendor, 'preamble': args.preamble}
    kind = args.kind
    if kind == 'read':
        return dlt645.read_request(args.address, args.di,
            version=args.version, **common)
    if kind == 'read-next':
        return dlt645.read_next_request(args.address, args.di, args.seq,
            **common)
    auth = {}
    if hasattr(args, 'password'):
        auth = {'password': args.password, 'level': args.level,
            'operator': args.operator}
    if kind == 'write':
        value = parse_hex(args.data) if args.data is not None else args.value
        if isinstance(value, str) and value.lstrip()[:1] in ('[', '{'):
            try:    # a list or object: time-of-day bands, composite items
                value = json.loads(value)
            except ValueError:
                raise CodecError(f'--value {value!r} is not JSON') from None
        return dlt645.write_request(args.address, args.di, value,
            version=args.version, **auth, **common)
    if kind == 'control':
        valid_until = args.valid_until or (
            dt.datetime.now().replace(microsecond=0) + dt.timedelta(hours=1))
        return dlt645.control_request(args.address, args.action,
            valid_until=valid_until, **auth, **common)
    if kind == 'time-sync':
        when = args.time or dt.datetime.now().replace(microsecond=0)
        return dlt645.time_sync_request(when, address=args.address, **common)
    if kind == 'read-address':
        return dlt645.read_address_request(**common)
    if kind == 'freeze':
        return dlt645.freeze_request(args.address, minute=args.minute,
            hour=args.hour, day=args.day, month=args.month, **common)
    if kind == 'recharge':
        return recharge.purchase_request(args.address, args.amount,
            args.count, **auth, **common)
    if kind == 'cjt188-read':
        return cjt188.read_request(args.address, meter_type=args.type,
            di=args.di.upper(), ser=args.ser, **common)
    if kind == 'valve':
        return cjt188.valve_request(args.address, args.open,
            meter_type=args.type, ser=args.ser, **common)
    if kind == 'cjt188-read-address':
        return cjt188.read_address_request(meter_type=args.type,
            ser=args.ser, **common)
    raise CodecError(f'unknown frame kind {kind!r}')


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == 'decode':
            result = decode_to_json(' '.join(args.hex), args.protocol,
                args.vendor)
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(to_hex(_encode(args)))
    except SystemExit as exc:     # --help
        return exc.code if isinstance(exc.code, int) else 0
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except CodecError as exc:
        print(f'dh frame: {exc.reason}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
