"""The integration API under load: N meters (default 100,000) on PostgreSQL,
C concurrent clients (default 50) on loopback, each a closed loop (one
request in flight per client: a bounded load generator).  Balance queries
on random meters, then recharges of random cash-mode meters (each a real
recharge: wallet line, accounting move, audit entry).

  dh bench api [--backend postgresql|sqlite] [--meters 100000]
               [--clients 50] [--light-clients 2] [--seconds 20]
               [--server trytond|gunicorn]
               [--workers 2] [--threads 8] [--rebuild]

The database (dh_bench_api_<backend>) is built once and kept: later runs
reuse it unless --rebuild.  --server trytond runs `trytond -d DB` (one
process, a thread per request: what `dh demo` runs); gunicorn runs
trytond.application:app in --workers processes of --threads threads."""
import argparse
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.client import HTTPConnection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402

KEY = 'dh_bench-api-key'


def create(backend, name, config_extra, module='dh_api'):
    "A database with ``module`` (and what it depends on) only"
    import psycopg
    folder = os.path.join(dbutil.VAR, 'bench')
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, f'{name}.conf')
    if backend == 'postgresql':
        uri = dbutil.PG_URI
        with psycopg.connect(uri + 'postgres', autocommit=True) as conn:
            conn.execute('SELECT pg_terminate_backend(pid) FROM '
                'pg_stat_activity WHERE datname = %s', (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        uri = 'sqlite://'
        path = os.path.join(folder, f'{name}.sqlite')
        if os.path.exists(path):
            os.unlink(path)
        open(path, 'a').close()
    write_config(config, uri, folder, config_extra)
    pw = os.path.join(folder, f'{name}.pw')
    with open(pw, 'w') as handle:
        handle.write(dbutil.ADMIN_PASSWORD)
    subprocess.run([os.path.join(dbutil.BIN, 'trytond-admin'), '-c', config,
            '-d', name, '-u', module, '--activate-dependencies',
            '--email', 'admin@example.com'], check=True,
        env=dict(os.environ, TRYTONPASSFILE=pw), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL)
    os.unlink(pw)
    return config


def write_config(config, uri, folder, extra):
    with open(config, 'w') as handle:
        handle.write(f'[database]\nuri = {uri}\npath = {folder}\n'
            f'retry = 20\n[queue]\nworker = False\n{extra}')


def exists(backend, name):
    if backend == 'postgresql':
        import psycopg
        with psycopg.connect(dbutil.PG_URI + 'postgres',
                autocommit=True) as conn:
            return bool(conn.execute('SELECT 1 FROM pg_database WHERE '
                    'datname = %s', (name,)).fetchone())
    return os.path.exists(os.path.join(dbutil.VAR, 'bench',
            f'{name}.sqlite'))


def seed(name, count, per_wallet):
    "count cash-mode meters, a wallet per per_wallet meters, one token"
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_api.token import hash_key
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_collector.collectd import run_in_transaction
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(name)
    company_id = run_in_transaction(name,
        lambda pool: setup_accounting().id, pool)
    with Transaction().start(name, 0) as transaction:
        company = pool.get('company.company')(company_id)
        with set_company(company):
            meters = dbutil.bulk_meters(count)
            tariff = flat_tariff('1.2')
            Party = pool.get('party.party')
            Wallet = pool.get('dh.wallet')
            Token = pool.get('dh.api.token')
            n_wallets = max(1, count // per_wallet)
            parties = Party.create([{'name': f'住户{i}'}
                    for i in range(n_wallets)])
            wallets = Wallet.create([{'party': p.id, 'company': company_id}
                    for p in parties])
            cursor = transaction.connection.cursor()
            from trytond import backend
            p = '%s' if backend.name == 'postgresql' else '?'
            cursor.executemany(
                f'UPDATE dh_meter SET wallet = {p}, tariff = {p}, '
                f"billing_mode = 'cash' WHERE id = {p}",
                [(wallets[i // per_wallet % n_wallets].id, tariff.id, m)
                    for i, m in enumerate(meters)])
            cursor.executemany(f'UPDATE dh_wallet SET balance = {p} '
                f'WHERE id = {p}', [(Decimal(1000), w.id) for w in wallets])
            token, = Token.create([{'name': 'bench', 'all_areas': True,
                        'scopes': ['read', 'recharge', 'control']}])
            Token.write([token], {'key_hash': hash_key(KEY),
                    'state': 'active', 'prefix': KEY[:8]})
    if backend_name() == 'postgresql':
        with Transaction().start(name, 0) as transaction:
            transaction.connection.cursor().execute('ANALYZE')


def backend_name():
    from trytond import backend
    return backend.name


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def start_server(options, config, name, port, log):
    env = dict(os.environ, TRYTOND_DATABASE_NAMES=name,
        TRYTOND_CONFIG=config)
    if options.server == 'gunicorn':
        command = [os.path.join(dbutil.BIN, 'gunicorn'),
            '-b', f'127.0.0.1:{port}', '-w', str(options.workers),
            '--threads', str(options.threads), '--backlog', '2048',
            '--access-logfile', '/dev/null', 'trytond.application:app']
    else:
        command = [os.path.join(dbutil.BIN, 'trytond'), '-c', config,
            '-d', name]
    process = subprocess.Popen(command, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            status, _ = request(port, name, 'balance', '{"device_id":"M0"}')
            if status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    raise RuntimeError('the API server did not start')


def request(port, name, call, body, connection=None):
    conn = connection or HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        conn.request('POST', f'/{name}/dh/api/v1/{call}', body=body,
            headers={'Authorization': f'Bearer {KEY}',
                'Content-Type': 'application/json'})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader('Connection')
    finally:
        if connection is None:
            conn.close()


def load(port, name, clients, seconds, make_body, call):
    """clients closed loops for seconds: (latencies in ms, statuses,
    elapsed seconds)"""
    latencies, statuses = [], {}
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = []

    def client(index):
        rng = random.Random(index)
        mine, codes = [], {}
        start.wait()
        n = 0
        while time.monotonic() < stop_at[0]:
            body = make_body(rng, index, n)
            n += 1
            t0 = time.perf_counter()
            try:
                status, _ = request(port, name, call, body)
            except OSError:
                status = 'error'
            mine.append((time.perf_counter() - t0) * 1000)
            codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v
    threads = [threading.Thread(target=client, args=(i,))
        for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at.append(time.monotonic() + seconds)
    t0 = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join()
    return latencies, statuses, time.monotonic() - t0


def figures(latencies, statuses, elapsed):
    ordered = sorted(latencies)

    def pct(p):
        return round(ordered[min(len(ordered) - 1,
                    int(len(ordered) * p))], 1)
    return {'requests': len(ordered), 'req_per_s': round(
            len(ordered) / elapsed, 1), 'p50_ms': pct(0.50),
        'p90_ms': pct(0.90), 'p99_ms': pct(0.99),
        'mean_ms': round(statistics.fmean(ordered), 1),
        'statuses': {str(k): v for k, v in statuses.items()}}


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench api')
    parser.add_argument('--backend', default='postgresql',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--meters', type=int, default=100000)
    parser.add_argument('--per-wallet', type=int, default=10)
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--seconds', type=float, default=20)
    parser.add_argument('--light-clients', type=int, default=2,
        help='clients of the second, light run (latency without queueing)')
    parser.add_argument('--server', default='trytond',
        choices=['trytond', 'gunicorn'])
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--rebuild', action='store_true')
    parser.add_argument('--skip-recharge', action='store_true')
    options = parser.parse_args(args)
    name = f'dh_bench_api_{options.backend}'
    port = free_port()
    extra = f'[web]\nlisten = 127.0.0.1:{port}\n'
    folder = os.path.join(dbutil.VAR, 'bench')
    config = os.path.join(folder, f'{name}.conf')
    t0 = time.perf_counter()
    built = False
    if options.rebuild or not exists(options.backend, name) \
            or not os.path.exists(config):
        config = create(options.backend, name, extra)
        dbutil.pool(config, name)
        seed(name, options.meters, options.per_wallet)
        built = True
    else:
        write_config(config, dbutil.PG_URI if options.backend ==
            'postgresql' else 'sqlite://', folder, extra)
    setup = time.perf_counter() - t0
    log = open(os.path.join(folder, f'{name}.server.log'), 'wb')
    server = start_server(options, config, name, port, log)
    try:
        count = options.meters

        def balance_body(rng, index, n):
            return '{"device_id":"M%d"}' % rng.randrange(count)
        # warm up every worker's caches
        load(port, name, options.clients, 3, balance_body, 'balance')
        balance = figures(*load(port, name, options.clients,
                options.seconds, balance_body, 'balance'))
        # the same with few clients: the time of one request, not queueing
        light = figures(*load(port, name, options.light_clients,
                options.seconds / 2, balance_body, 'balance'))
        result = result_light = {}
        if not options.skip_recharge:
            stamp = int(time.time())

            def recharge_body(rng, index, n):
                return ('{"device_id":"M%d","amount":"10.00",'
                    '"txn_no":"B%d-%d-%d"}' % (rng.randrange(count), stamp,
                        index, n))
            result = figures(*load(port, name, options.clients,
                    options.seconds, recharge_body, 'recharge'))
            result_light = figures(*load(port, name, options.light_clients,
                    options.seconds / 2, recharge_body, 'recharge'))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    server_settings = ('trytond -d DB (werkzeug, one process, a thread per '
        'request)' if options.server == 'trytond' else
        f'gunicorn -w {options.workers} --threads {options.threads} '
        'trytond.application:app')
    return {'backend': options.backend, 'meters': options.meters,
        'clients': options.clients, 'seconds': options.seconds,
        'server': server_settings,
        'database_built_now': built, 'setup_seconds': round(setup),
        'balance': balance, 'recharge': result,
        'light_clients': options.light_clients, 'balance_light': light,
        'recharge_light': result_light,
        'goal': {'balance_p99_ms': 50, 'recharge_p99_ms': 200},
        'date': dt.date.today().isoformat()}
