"""The production processes as `dh` subcommands (docs/deploy.md): the same
command in the README, in docker/compose.yaml and on a plain server.

  dh web      gunicorn serving trytond.application:app (JSON-RPC, sao,
              the API, the portal, the board, /<db>/dh/metrics)
  dh queue    trytond-worker: runs ir.queue tasks (PostgreSQL)
  dh cron     trytond-cron: the scheduled actions
  dh init-db  creates the PostgreSQL database if it is missing, then
              activates (or upgrades) the dh modules with trytond-admin

Each replaces itself with the real program (exec), so signals from the
process manager (docker, systemd) reach it directly."""
import os
import shutil
import sys

COMMANDS = {'web', 'queue', 'cron', 'init-db'}
MODULES = ['dh_metering', 'dh_collector', 'dh_billing', 'dh_api',
    'dh_alarm', 'dh_wechat']


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def sizing(cores):
    """(gunicorn workers, threads per worker) for that many cores: a worker
    per core (requests are CPU-bound in Python, BENCHMARKS.md), threads to
    cover the database waits; workers × threads is also the number of
    PostgreSQL connections the web side holds (16 / 32 / 64 on 2 / 8 / 32
    cores)"""
    cores = max(1, cores)
    if cores <= 2:
        return 2, 8
    if cores <= 8:
        return cores, 4
    return cores, 2


def _program(name):
    "An executable of this virtualenv (or the PATH)"
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(here):
        return here
    found = shutil.which(name)
    if not found:
        raise SystemExit(f'dh: {name} not found')
    return found


def add_parsers(sub):
    web = sub.add_parser('web', help='serve trytond under gunicorn '
        '(production web processes)')
    web.add_argument('-c', '--config', required=True)
    web.add_argument('-d', '--database', required=True,
        help='database(s) to load at start, comma-separated')
    web.add_argument('--bind', default='0.0.0.0:8000')
    default_workers, default_threads = sizing(cores())
    web.add_argument('--workers', type=int, default=default_workers,
        help=f'processes (default {default_workers} on this machine)')
    web.add_argument('--threads', type=int, default=default_threads,
        help=f'threads per process (default {default_threads})')
    web.add_argument('--timeout', type=int, default=90,
        help='seconds before a stuck worker is restarted (above trytond\'s '
        '[request] timeout of 60 s)')
    web.add_argument('--dry-run', action='store_true',
        help='print the command instead of running it')

    queue = sub.add_parser('queue', help='trytond-worker: queued tasks on '
        'PostgreSQL (set [queue] worker = True on the web side)')
    queue.add_argument('-c', '--config', required=True)
    queue.add_argument('-d', '--database', required=True)
    queue.add_argument('-n', '--processes', type=int, default=None,
        help='task processes (default: the cores)')
    queue.add_argument('--dry-run', action='store_true')

    cron = sub.add_parser('cron', help='trytond-cron: the scheduled actions')
    cron.add_argument('-c', '--config', required=True)
    cron.add_argument('-d', '--database', required=True)
    cron.add_argument('-n', '--processes', type=int, default=1)
    cron.add_argument('--once', action='store_true',
        help='run the due actions once and exit')
    cron.add_argument('--dry-run', action='store_true')

    init = sub.add_parser('init-db', help='create / upgrade the database '
        '(the admin password from $TRYTONPASSFILE)')
    init.add_argument('-c', '--config', required=True)
    init.add_argument('-d', '--database', required=True)
    init.add_argument('--modules', default=','.join(MODULES),
        help='modules to activate (comma-separated; default every dh module)')
    init.add_argument('--email', default=None,
        help="the admin's e-mail (first run)")
    init.add_argument('--upgrade', action='store_true',
        help='also update every other activated module (trytond-admin '
        '--all), after installing new module versions')
    init.add_argument('--dry-run', action='store_true')


def commands(options):
    "[(argv, extra environment)] for the options"
    config = os.path.abspath(options.config)
    if options.command == 'web':
        return [([_program('gunicorn'),
                    '--bind', options.bind,
                    '--workers', str(options.workers),
                    '--threads', str(options.threads),
                    '--worker-class', 'gthread',
                    '--timeout', str(options.timeout),
                    '--graceful-timeout', '30',
                    '--access-logfile', '-',
                    'trytond.application:app'],
                {'TRYTOND_CONFIG': config,
                    'TRYTOND_DATABASE_NAMES': options.database})]
    if options.command == 'queue':
        argv = [_program('trytond-worker'), '-c', config,
            '-d', options.database]
        if options.processes:
            argv += ['-n', str(options.processes)]
        return [(argv, {})]
    if options.command == 'cron':
        argv = [_program('trytond-cron'), '-c', config, '-d',
            options.database, '-n', str(options.processes)]
        if options.once:
            argv.append('--once')
        return [(argv, {})]
    if options.command == 'init-db':
        argv = [_program('trytond-admin'), '-c', config, '-d',
            options.database, '-u', *options.modules.split(','),
            '--activate-dependencies', '-l', 'zh_CN']
        if options.email:
            argv += ['--email', options.email]
        if options.upgrade:
            argv.append('--all')
        return [(argv, {})]
    raise ValueError(options.command)


def create_database(config_file, name):
    "CREATE DATABASE on PostgreSQL when it is missing (SQLite: the file)"
    from trytond import config
    config.update_etc(config_file)
    uri = config.get('database', 'uri')
    if uri.startswith('sqlite'):
        path = config.get('database', 'path')
        os.makedirs(path, exist_ok=True)
        open(os.path.join(path, f'{name}.sqlite'), 'a').close()
        return
    import psycopg
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(uri)
    maintenance = urlunsplit(parts._replace(path='/postgres'))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if not conn.execute('SELECT 1 FROM pg_database WHERE datname = %s',
                (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def run(options):
    planned = commands(options)
    if options.dry_run:
        for argv, env in planned:
            print(' '.join(f'{k}={v}' for k, v in env.items()),
                ' '.join(argv))
        return 0
    if options.command == 'init-db':
        create_database(options.config, options.database)
    (argv, env), = planned
    sys.stdout.flush()
    os.execve(argv[0], argv, dict(os.environ, **env))
