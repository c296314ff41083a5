"""``dh sim``: serve a bank of simulated meters until SIGINT / SIGTERM.

Prints one line per bus, then serves::

    BUS <i> tcp://<host>:<port> meters=<n> first=<address>
    PTY <i> /dev/pts/N
    DTU <i> <host>:<port> id=<id>
    NB <address> mqtt://<host>:<port> format=<json|hex|binary>

and on exit one line per bus on who polled it over TCP (clients whose
spans from first to last request overlap count as concurrent)::

    ACTIVITY <i> clients=<n> max_concurrency=<n> max_connections=<n> ...

Usage errors give exit status 2 and one line on stderr.
"""

import argparse
import asyncio
import logging
import signal
import sys

from .simulator import Bank, SimOptions, generate_specs, load_spec_file


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(f'{self.prog}: {message}')


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') \
            from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError('a rate is between 0 and 1')
    return value


def _prefix(text: str) -> bytes:
    """``REG:`` as text, or ``hex:7E7E`` as bytes."""
    if text.startswith('hex:'):
        try:
            return bytes.fromhex(text[4:])
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r}: bad hex') from None
    return text.encode('utf-8')


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(':')
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f'{text!r} is not HOST:PORT')
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog='dh sim', description='Simulated DL/T645 and CJ/T188 '
        'meters on RS485 buses behind TCP ports, DTUs and ptys.')
    p.add_argument('--buses', type=int, default=1)
    p.add_argument('--meters-per-bus', type=int, default=32)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=9100,
        help='bus i listens on PORT+i (0: ephemeral ports)')
    p.add_argument('--no-tcp', action='store_true',
        help='no TCP bridge ports (ptys / DTUs only)')
    p.add_argument('--pty', type=int, default=0, metavar='N',
        help='also serve the first N buses on pseudo-terminals')
    p.add_argument('--dial', type=_endpoint, metavar='HOST:PORT',
        help='DTU mode: connect to a collector')
    p.add_argument('--dtu-ids', default='',
        help='comma-separated registration ids, id i for bus i')
    p.add_argument('--reg-prefix', type=_prefix, default=b'REG:',
        help="registration prefix (text, or hex:7E7E; default 'REG:')")
    p.add_argument('--hb-prefix', type=_prefix, default=b'HB:')
    p.add_argument('--id-hex', action='store_true',
        help='send the DTU id as hex bytes instead of ASCII')
    p.add_argument('--heartbeat', type=float, default=30.0,
        help='DTU heartbeat interval, seconds (0: none)')
    p.add_argument('--start-address', type=int, default=1)
    p.add_argument('--address-step', type=int, default=1)
    p.add_argument('--fraction-1997', type=_rate, default=0.0,
        help='fraction of DL/T645-1997 electricity meters')
    p.add_argument('--water-per-bus', type=int, default=0,
        help='CJ/T188 water meters per bus (the last ones)')
    p.add_argument('--prepaid', type=_rate, default=0.0,
        help='fraction of prepaid (remaining energy) 2007 meters')
    p.add_argument('--spec-file', help='JSON [{"bus": i, "address": ..., '
        '"protocol": ..., ...}] instead of generated meters (any MeterSpec '
        'key, e.g. the load limits max_load, malignant_power, '
        'tod_power_limits [["08:00", "5"], ...])')
    p.add_argument('--baud', type=int, default=2400)
    p.add_argument('--wire-timing', action='store_true',
        help='reply after the request and reply bytes at BAUD 8E1 + Td')
    p.add_argument('--reply-delay', type=float, default=0.020,
        help='Td, seconds (with --wire-timing)')
    p.add_argument('--preamble', type=int, default=0, choices=range(5),
        help='FE bytes before each reply')
    for name in ('drop', 'delay', 'corrupt', 'garble', 'disconnect'):
        p.add_argument(f'--{name}', type=_rate, default=0.0,
            help=f'fault rate 0..1: {name}')
    p.add_argument('--late-by', type=float, default=1.5,
        help='a delayed reply comes this many seconds late')
    p.add_argument('--seed', default='1')
    p.add_argument('--speed', type=float, default=1.0,
        help='simulated seconds per real second')
    p.add_argument('--mqtt', type=_endpoint, metavar='HOST:PORT',
        help='NB-IoT / 4G meters: the MQTT broker they publish to')
    p.add_argument('--nb-meters', type=int, default=0, metavar='N',
        help='NB meters (with --mqtt), addresses from --nb-start-address')
    p.add_argument('--nb-start-address', type=int, default=900001)
    p.add_argument('--nb-format', choices=['json', 'hex', 'binary'],
        default='json', help='NB reading / command payloads')
    p.add_argument('--nb-interval', type=float, default=60.0,
        help='seconds between an NB meter\'s readings')
    p.add_argument('--nb-topic-prefix', default='dh/meter',
        help='NB topics: PREFIX/{address}/up, /down and /reply')
    p.add_argument('-v', '--verbose', action='store_true')
    return p


def _nb_meters(args, options):
    from .nb_sim import NbMeter
    from .simulator import MeterSpec
    prefix = args.nb_topic_prefix.rstrip('/')
    topics = {'reading': prefix + '/{address}/up',
        'command': prefix + '/{address}/down',
        'reply': prefix + '/{address}/reply'}
    host, port = args.mqtt
    return [NbMeter(MeterSpec(str(args.nb_start_address + i),
                energy=100 + i, remaining=50, purchase_count=1), host, port,
            fmt=args.nb_format, interval=args.nb_interval, topics=topics,
            options=options)
        for i in range(args.nb_meters)]


def _options(args) -> SimOptions:
    return SimOptions(speed=args.speed, seed=args.seed,
        wire_timing=args.wire_timing, baud=args.baud,
        reply_delay=args.reply_delay, reply_preamble=args.preamble,
        drop=args.drop, delay=args.delay, corrupt=args.corrupt,
        garble=args.garble, disconnect=args.disconnect,
        late_by=args.late_by, reg_prefix=args.reg_prefix,
        hb_prefix=args.hb_prefix, id_format='hex' if args.id_hex else 'ascii',
        heartbeat=args.heartbeat)


async def _serve(args, bank: Bank) -> int:
    out = sys.stdout
    if not args.no_tcp:
        ports = await bank.serve_tcp(args.host, args.port)
    for bus in bank.buses:
        first = bus.meters[0].address if bus.meters else '-'
        where = (f'tcp://{args.host}:{ports[bus.index]}' if not args.no_tcp
            else 'tcp:-')
        print(f'BUS {bus.index} {where} meters={len(bus.meters)} '
            f'first={first}', file=out)
    if args.pty:
        for index, path in bank.open_ptys(args.pty).items():
            print(f'PTY {index} {path}', file=out)
    if args.dial:
        ids = [i for i in args.dtu_ids.split(',') if i]
        host, port = args.dial
        for index, dtu in enumerate(await bank.dial(host, port, ids)):
            print(f'DTU {index} {host}:{port} id={dtu.id}', file=out)
    fleet = None
    if args.nb_meters:
        from .nb_sim import NbFleet
        fleet = NbFleet(_nb_meters(args, bank.options))
        fleet.start()
        host, port = args.mqtt
        for meter in fleet.meters:
            print(f'NB {meter.address} mqtt://{host}:{port} '
                f'format={meter.fmt}', file=out)
    out.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if fleet is not None:
            await fleet.stop()
        await bank.stop()
        # who polled each TCP bus, for tests: at most one client at once?
        for bus in bank.buses:
            print(f'ACTIVITY {bus.index} clients={len(bus.activity)} '
                f'max_concurrency={bus.max_concurrency()} '
                f'max_connections={bus.max_connections} '
                f'requests={bus.stats["requests"]}', file=out)
        out.flush()
    return 0


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.nb_meters and not args.mqtt:
            raise _UsageError('dh sim: --nb-meters needs --mqtt')
        if args.nb_meters < 0 or args.nb_interval < 0:
            raise _UsageError('dh sim: --nb-meters and --nb-interval must '
                'not be negative')
        if args.dial and not args.dtu_ids:
            raise _UsageError('dh sim: --dial needs --dtu-ids')
        if args.buses < 1 or args.meters_per_bus < 0:
            raise _UsageError('dh sim: --buses must be >= 1 and '
                '--meters-per-bus >= 0')
        options = _options(args)
        if args.spec_file:
            buses = load_spec_file(args.spec_file)
        else:
            buses = generate_specs(args.buses, args.meters_per_bus,
                start_address=args.start_address, step=args.address_step,
                fraction_1997=args.fraction_1997,
                water_per_bus=args.water_per_bus, prepaid=args.prepaid,
                seed=args.seed)
        if not buses:
            raise _UsageError('dh sim: no meters')
        bank = Bank(buses, options)
    except (_UsageError, ValueError, OSError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else repr(exc),
            file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose
        else logging.WARNING, format='%(asctime)s %(name)s %(message)s')
    try:
        return asyncio.run(_serve(args, bank))
    except OSError as exc:     # e.g. port in use
        print(f'dh sim: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
