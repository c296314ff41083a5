"""The tenant portal under load: T tenants (default 5,000, two rooms each
on one wallet: 10,000 meters, 60 days of daily usage, a few recharges),
C concurrent tenants (default 50) on loopback, each a closed loop (one
request in flight, a new connection each time, like a phone) signed in
with its own session, walking the main pages: 我的表计, usage (month),
usage (year), history, alarms, the recharge form.  Latency p50 / p90 /
p99 per page and overall, requests per second; then the sign-in alone
(argon2 password check) with a few clients.

  dh bench portal [--backend postgresql|sqlite] [--tenants 5000]
                  [--clients 50] [--seconds 20] [--light-clients 2]
                  [--server trytond|gunicorn] [--workers 2] [--threads 8]
                  [--rebuild]

The database (dh_bench_portal_<backend>) is built once and kept."""
import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.client import HTTPConnection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbutil  # noqa: E402
from bench_api import (  # noqa: E402
    create, exists, figures, free_port, write_config)

PASSWORD = 'dhBench-2026x'
PAGES = ['meters', 'usage_month', 'usage_year', 'history', 'alarms',
    'recharge']


def seed(name, tenants, rooms):
    """tenants × rooms cash meters, a wallet and a portal account per
    tenant, a session per tenant (key bench-<i>), 60 days of daily usage
    and three recharges per wallet (rows written in bulk)"""
    from trytond import backend
    from trytond.modules.company.tests import set_company
    from trytond.modules.dh_billing.tests.tools import (
        flat_tariff, setup_accounting)
    from trytond.modules.dh_collector.collectd import run_in_transaction
    from trytond.modules.dh_wechat.tests import tools
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    pool = Pool(name)
    company_id = run_in_transaction(name,
        lambda pool: setup_accounting().id, pool)
    with Transaction().start(name, 0) as transaction:
        company = pool.get('company.company')(company_id)
        p = '%s' if backend.name == 'postgresql' else '?'
        with set_company(company):
            meters = dbutil.bulk_meters(tenants * rooms)
            tariff = flat_tariff('1.2')
            Party = pool.get('party.party')
            Wallet = pool.get('dh.wallet')
            WebUser = pool.get('web.user')
            fake = tools.fake()
            tools.configure(company, fake, 'http://127.0.0.1:9')
            fake._server.server_close()
            parties = Party.create([{'name': f'住户{i}'}
                    for i in range(tenants)])
            wallets = Wallet.create([{'party': party.id,
                        'company': company_id} for party in parties])
            cursor = transaction.connection.cursor()
            cursor.executemany(f'UPDATE dh_meter SET wallet = {p}, '
                f"tariff = {p}, billing_mode = 'cash', tenant = {p} "
                f'WHERE id = {p}', [(wallets[i // rooms].id, tariff.id,
                        parties[i // rooms].id, m)
                    for i, m in enumerate(meters)])
            cursor.executemany(f'UPDATE dh_wallet SET balance = {p} '
                f'WHERE id = {p}', [(Decimal(200), w.id) for w in wallets])
            hashed = WebUser.hash_password(PASSWORD)
            now = dt.datetime.now()
            cursor.executemany('INSERT INTO web_user (dh_login, party, '
                'password_hash, active, email_valid, create_uid, '
                f'create_date) VALUES ({p}, {p}, {p}, {p}, {p}, 0, {p})',
                [(f'bench{i}', party.id, hashed, True, False, now)
                    for i, party in enumerate(parties)])
            cursor.execute('SELECT id, dh_login FROM web_user')
            users = {login: id_ for id_, login in cursor}
            cursor.executemany('INSERT INTO web_user_session (key, "user", '
                f'create_uid, create_date) VALUES ({p}, {p}, 0, {p})',
                [(f'bench-{i}', users[f'bench{i}'], now)
                    for i in range(tenants)])
            today = dt.date.today()
            cursor.executemany('INSERT INTO dh_usage_day (meter, register, '
                f'period, usage_e4) VALUES ({p}, {p}, {p}, {p})',
                [(m, 'energy_total', today - dt.timedelta(days=d),
                        (3 + (m + d) % 7) * 10000)
                    for m in meters for d in range(60)])
            cursor.executemany('INSERT INTO dh_usage_month (meter, register, '
                f'period, usage_e4) VALUES ({p}, {p}, {p}, {p})',
                [(m, 'energy_total', dt.date(today.year, month, 1),
                        (90 + m % 30) * 10000)
                    for m in meters for month in range(1, today.month + 1)])
            cursor.executemany('INSERT INTO dh_recharge (number, wallet, '
                'channel, mode, amount, wallet_before, wallet_after, state, '
                f'date, create_uid, create_date) VALUES ({p}, {p}, {p}, {p}, '
                f'{p}, {p}, {p}, {p}, {p}, 0, {p})',
                [(f'BENCH-{w.id}-{k}', w.id, 'wechat', 'cash', Decimal(50),
                        Decimal(50 * k), Decimal(50 * (k + 1)), 'paid',
                        now - dt.timedelta(days=10 * k), now)
                    for w in wallets for k in range(3)])
    if backend.name == 'postgresql':
        with Transaction().start(name, 0) as transaction:
            transaction.connection.cursor().execute('ANALYZE')
    return meters


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
            if get(port, f'/{name}/dh/wx/login', None)[0] == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    raise RuntimeError('the portal did not start')


def get(port, path, session, method='GET', body=None, headers=None):
    conn = HTTPConnection('127.0.0.1', port, timeout=60)
    try:
        hdrs = dict(headers or {})
        if session:
            hdrs['Cookie'] = f'dhwx_session={session}'
        conn.request(method, path, body=body, headers=hdrs)
        response = conn.getresponse()
        data = response.read()
        return response.status, data
    finally:
        conn.close()


def load(port, name, clients, seconds, tenants, meters_of):
    """Each client a tenant walking the pages for ``seconds``:
    ({page: [ms]}, statuses, elapsed)"""
    base = f'/{name}/dh/wx'
    latencies = {page: [] for page in PAGES}
    statuses = {}
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = []
    year = dt.date.today().year

    def client(index):
        rng = random.Random(index)
        tenant = rng.randrange(tenants)
        session = f'bench-{tenant}'
        meter = rng.choice(meters_of(tenant))
        paths = {'meters': '/meters',
            'usage_month': f'/usage/{meter}?view=month',
            'usage_year': f'/usage/{meter}?view=year&year={year}',
            'history': '/history', 'alarms': '/alarms',
            'recharge': '/recharge'}
        mine = {page: [] for page in PAGES}
        codes = {}
        start.wait()
        n = index
        while time.monotonic() < stop_at[0]:
            page = PAGES[n % len(PAGES)]
            n += 1
            t0 = time.perf_counter()
            try:
                status, _ = get(port, base + paths[page], session)
            except OSError:
                status = 'error'
            mine[page].append((time.perf_counter() - t0) * 1000)
            codes[status] = codes.get(status, 0) + 1
        with lock:
            for page, values in mine.items():
                latencies[page].extend(values)
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


def sign_in(port, name, clients, count, tenants):
    "The sign-in form + POST (argon2 verification) with a few clients"
    import re
    base = f'/{name}/dh/wx'
    times = []
    lock = threading.Lock()

    def client(index):
        for k in range(count):
            status, page = get(port, base + '/login?manual=1', None)
            token = re.search(rb'name="csrf" value="([^"]+)"', page)[1]
            body = (f'csrf={token.decode()}&login=bench{(index * count + k) % tenants}'
                f'&password={PASSWORD}')
            t0 = time.perf_counter()
            status, _ = get(port, base + '/login', None, 'POST', body, {
                    'Content-Type': 'application/x-www-form-urlencoded',
                    'Cookie': f'dhwx_csrf={token.decode()}'})
            assert status == 303, status
            with lock:
                times.append((time.perf_counter() - t0) * 1000)
    threads = [threading.Thread(target=client, args=(i,))
        for i in range(clients)]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return figures(times, {303: len(times)}, time.monotonic() - t0)


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench portal')
    parser.add_argument('--backend', default='postgresql',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--tenants', type=int, default=5000)
    parser.add_argument('--rooms', type=int, default=2)
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--seconds', type=float, default=20)
    parser.add_argument('--light-clients', type=int, default=2)
    parser.add_argument('--server', default='trytond',
        choices=['trytond', 'gunicorn'])
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--rebuild', action='store_true')
    options = parser.parse_args(args)
    name = f'dh_bench_portal_{options.backend}'
    port = free_port()
    extra = f'[web]\nlisten = 127.0.0.1:{port}\n'
    folder = os.path.join(dbutil.VAR, 'bench')
    config = os.path.join(folder, f'{name}.conf')
    t0 = time.perf_counter()
    built = False
    if options.rebuild or not exists(options.backend, name) \
            or not os.path.exists(config):
        config = create(options.backend, name, extra, 'dh_wechat')
        dbutil.pool(config, name)
        seed(name, options.tenants, options.rooms)
        built = True
    else:
        write_config(config, dbutil.PG_URI if options.backend ==
            'postgresql' else 'sqlite://', folder, extra)
        dbutil.pool(config, name)
    setup = time.perf_counter() - t0
    from trytond.transaction import Transaction
    with Transaction().start(name, 0, readonly=True) as transaction:
        cursor = transaction.connection.cursor()
        cursor.execute("SELECT m.id, p.name FROM dh_meter m JOIN "
            "party_party p ON m.tenant = p.id WHERE p.name LIKE '住户%'")
        by_tenant = {}
        for meter, party in cursor:
            by_tenant.setdefault(int(party[2:]), []).append(meter)
    tenants = min(options.tenants, len(by_tenant))
    log = open(os.path.join(folder, f'{name}.server.log'), 'wb')
    server = start_server(options, config, name, port, log)
    try:
        meters_of = by_tenant.__getitem__
        load(port, name, options.clients, 3, tenants, meters_of)  # warm up
        latencies, statuses, elapsed = load(port, name, options.clients,
            options.seconds, tenants, meters_of)
        every = [v for values in latencies.values() for v in values]
        heavy = {'all': figures(every, statuses, elapsed)}
        for page, values in latencies.items():
            heavy[page] = figures(values, {}, elapsed)
            del heavy[page]['statuses']
        latencies, statuses, elapsed = load(port, name,
            options.light_clients, options.seconds / 2, tenants, meters_of)
        every = [v for values in latencies.values() for v in values]
        light = {'all': figures(every, statuses, elapsed)}
        for page, values in latencies.items():
            light[page] = figures(values, {}, elapsed)
            del light[page]['statuses']
        login = sign_in(port, name, 2, 5, tenants)
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
    return {'backend': options.backend, 'tenants': tenants,
        'meters': tenants * options.rooms, 'clients': options.clients,
        'seconds': options.seconds, 'server': server_settings,
        'database_built_now': built, 'setup_seconds': round(setup),
        'pages': heavy, 'light_clients': options.light_clients,
        'pages_light': light, 'sign_in_2_clients': login,
        'goal': {'page_p99_ms': 300, 'clients': 50},
        'date': dt.date.today().isoformat()}
