"""The `dh` command (a contract: scripts and checks call it).

  dh demo [--db PATH] [--port N] [--no-serve]
  dh frame decode HEX | dh frame encode …
  dh sim --buses N --meters-per-bus M --port P …
  dh collect -c CONF -d DB [--once] [--lease S] [--metrics-port N]
  dh bench NAME [options]
  dh worker -c CONF -d DB          (queued tasks on SQLite)
  dh token create|list|revoke …    (API tokens; dh token --help)
  dh web -c CONF -d DB [--bind H:P] [--workers N] [--threads T]
                                   (gunicorn serving trytond; docs/deploy.md)
  dh queue -c CONF -d DB [-n N]    (trytond-worker: queued tasks on PostgreSQL)
  dh cron -c CONF -d DB            (trytond-cron: the scheduled actions)
  dh init-db -c CONF -d DB         (activate or upgrade every dh module)
"""
import argparse
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'collect':
        from trytond.modules.dh_collector.collectd import main as collect
        return collect(argv[1:])
    if argv and argv[0] == 'sim':
        from trytond.modules.dh_collector.sim_cli import main as sim
        return sim(argv[1:])
    if argv and argv[0] == 'frame':
        try:
            from trytond.modules.dh_collector.frame_cli import main as frame
        except ImportError:
            print('dh frame: the dh_collector module is not installed',
                file=sys.stderr)
            return 2
        return frame(argv[1:])
    if argv and argv[0] == 'token':
        try:
            from trytond.modules.dh_api.token_cli import main as token
        except ImportError:
            print('dh token: the dh_api module is not installed',
                file=sys.stderr)
            return 2
        return token(argv[1:])
    parser = argparse.ArgumentParser(prog='dh',
        description='DH metering command line')
    sub = parser.add_subparsers(dest='command', required=True)

    demo = sub.add_parser('demo', help='build and serve the demo plaza')
    demo.add_argument('--db', default=None,
        help='SQLite file (default var/db/dhdemo.sqlite)')
    demo.add_argument('--port', type=int, default=8000)
    demo.add_argument('--no-serve', action='store_true',
        help='build, print a summary and exit')
    demo.add_argument('--scale', type=float, default=1.0,
        help='fraction of the plaza to build (tests use a small one)')
    demo.add_argument('--days', type=int, default=30,
        help='days of hourly readings history')

    bench = sub.add_parser('bench', help='run one benchmark')
    bench.add_argument('name')
    bench.add_argument('args', nargs=argparse.REMAINDER)

    worker = sub.add_parser('worker',
        help='run queued tasks (exports) on a SQLite database')
    worker.add_argument('-c', '--config', required=True)
    worker.add_argument('-d', '--database', required=True)
    worker.add_argument('--once', action='store_true')

    from . import deploy
    deploy.add_parsers(sub)

    sub.add_parser('frame', help='decode / encode meter frames')
    sub.add_parser('sim', help='the meter simulator (dh sim --help)')
    sub.add_parser('collect', help='the collector daemon (dh collect --help)')
    sub.add_parser('token', help='API tokens (dh token --help)')

    options = parser.parse_args(argv)
    if options.command == 'demo':
        from .demo import run
        return run(options)
    if options.command == 'bench':
        from .bench import run
        return run(options.name, options.args)
    if options.command == 'worker':
        from .worker import run
        return run(options)
    if options.command in deploy.COMMANDS:
        return deploy.run(options)
    return 2
