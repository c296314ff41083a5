"""`dh demo`: build (or upgrade, keeping its data) the embedded SQLite
database with every dh module, zh_CN and the demo plaza, then serve it."""
import os
import signal
import subprocess
import sys
import tempfile
import time

from .paths import ADMIN_PASSWORD, BIN, VAR, dh_modules, write_runtime_config


def log(message):
    print(message, flush=True)


def admin(config, database, modules, first):
    command = [os.path.join(BIN, 'trytond-admin'), '-c', config,
        '-d', database, '-u', *modules, '-l', 'zh_CN']
    env = dict(os.environ)
    if first:
        command += ['--activate-dependencies', '--email', 'admin@example.com']
        handle = tempfile.NamedTemporaryFile('w', delete=False)
        handle.write(ADMIN_PASSWORD)
        handle.close()
        env['TRYTONPASSFILE'] = handle.name
    try:
        subprocess.run(command, check=True, env=env, stdin=subprocess.DEVNULL)
    finally:
        if first:
            os.unlink(handle.name)


def build(config, database, options):
    from importlib.metadata import entry_points
    from trytond import config as tconfig
    tconfig.update_etc(config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    Pool.start()
    pool = Pool(database)
    with Transaction().start(database, 0, readonly=True):
        pool.init()
    parts = sorted((ep.load() for ep in entry_points(group='dh.demo')),
        key=lambda p: p.sequence)
    from trytond.modules.dh_collector.collectd import run_in_transaction

    # one transaction per part (parts are idempotent): a lock Tryton asks
    # for restarts that part only, not the whole plaza
    summary = {}
    for part in parts:
        summary.update(run_in_transaction(database,
                lambda pool, part=part: part.build(vars(options), log) or {},
                pool))

    def configured(pool):
        # the demo company, chart and users exist: the module configuration
        # wizard would only greet the administrator's first sign-in
        Item = pool.get('ir.module.config_wizard.item')
        Item.write(Item.search([('state', '=', 'open')]), {'state': 'done'})
        return {}
    run_in_transaction(database, configured, pool)

    def counts(pool):
        result = {}
        for part in parts:
            if hasattr(part, 'counts'):
                result.update(part.counts())
        return result
    summary.update(run_in_transaction(database, counts, pool))
    return summary, parts


def context(config, database, db_dir, port):
    "What demo parts get to run their processes"

    from trytond.modules.dh_collector.collectd import run_in_transaction
    from trytond.pool import Pool

    def in_transaction(func):
        return run_in_transaction(database, lambda pool: func(),
            Pool(database))
    return {'config': config, 'database': database, 'db_dir': db_dir,
        'port': port, 'bin': BIN, 'in_transaction': in_transaction}


def run(options):
    started = time.monotonic()
    db_file = os.path.abspath(options.db or os.path.join(
            VAR, 'db', 'dhdemo.sqlite'))
    db_dir = os.path.dirname(db_file)
    database = os.path.splitext(os.path.basename(db_file))[0]
    os.makedirs(db_dir, exist_ok=True)
    config = write_runtime_config(db_dir, options.port)
    first = not os.path.exists(db_file) or os.path.getsize(db_file) == 0
    if first:
        open(db_file, 'a').close()
        log(f'creating {db_file}')
    else:
        log(f'upgrading {db_file} (data kept)')
    try:
        admin(config, database, dh_modules(), first)
    except subprocess.CalledProcessError:
        if first:
            os.unlink(db_file)
        print('dh demo: the database could not be built', file=sys.stderr)
        return 1
    summary, parts = build(config, database, options)
    ctx = context(config, database, db_dir, options.port)
    if options.no_serve:
        for part in parts:
            if hasattr(part, 'demo_once'):
                summary.update(part.demo_once(ctx, log) or {})
    elapsed = time.monotonic() - started
    log(f'SUMMARY: areas={summary.get("areas")} meters={summary.get("meters")}'
        f' readings={summary.get("readings")} tenants={summary.get("tenants")}'
        f' channels={summary.get("channels", 0)}'
        f' collected={summary.get("collected", 0)} seconds={elapsed:.1f}')
    logins = summary.get('users') or []
    log('LOGINS:')
    for login, password, group in logins:
        log(f'  {login} / {password or ADMIN_PASSWORD}  ({group})')
    # the tenants' portal accounts (dh_wechat)
    for login, password, what in summary.get('portal_logins') or []:
        log(f'  {login} / {password}  (portal: {what})')
    if summary.get('api_token'):
        log(f'API TOKEN: {summary["api_token"]}  (demo integration, every '
            'area and operation)')
    if options.no_serve:
        return 0
    return serve(config, database, options.port, parts, ctx)


def serve(config, database, port, parts, ctx):
    env = dict(os.environ, TRYTOND_DATABASE_NAMES=database)
    processes = []
    for part in parts:
        if hasattr(part, 'demo_services'):
            processes += part.demo_services(ctx, log)
    processes += [
        subprocess.Popen([os.path.join(BIN, 'trytond'), '-c', config,
                '-d', database], env=env),
        subprocess.Popen([os.path.join(BIN, 'trytond-cron'), '-c', config,
                '-d', database], env=env),
        subprocess.Popen([sys.executable, '-m', 'dh', 'worker', '-c', config,
                '-d', database], env=env),
        ]
    log(f'WEB: http://127.0.0.1:{port}/')
    log(f'API: http://127.0.0.1:{port}/{database}/dh/api/v1/  (HTTP API, '
        f'docs: http://127.0.0.1:{port}/{database}/dh/api/v1/docs)')
    log(f'JSON-RPC: http://127.0.0.1:{port}/{database}/rpc/  '
        '(Tryton JSON-RPC)')
    log(f'BOARD: http://127.0.0.1:{port}/{database}/dh/board  (状态报警界面, '
        'the wall status board: sign in to WEB first, or HTTP Basic)')
    if 'dh_wechat' in dh_modules():
        log(f'PORTAL: http://127.0.0.1:{port}/{database}/dh/wx/  (tenant '
            'portal, WeChat H5; payments go to the local fake WeChat)')
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0
