# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The web side's Prometheus metrics: ``GET /<database>/dh/metrics``.

Every figure is read from the database on each scrape (a handful of
``GROUP BY`` queries in one read-only transaction), so the answer is the
same whichever web process serves it:

* ``dh_queue_tasks{queue, state}`` — Tryton's ``ir.queue``: tasks waiting
  (``pending``: not taken yet, a back-off retry included) and taken but not
  finished (``running``), per queue name;
* ``dh_notifications{state}`` — dh_alarm's messages (``dh.notification``);
* ``dh_commands{state}`` — meter commands (``dh.command``);
* ``dh_billing_unbilled_meters`` — cash-mode meters (and registers) whose
  last reading is newer than their billing watermark;
* ``dh_billing_newest_unbilled_age_seconds`` — age of the newest reading
  not billed yet (0 when everything is billed);
* ``dh_billing_lag_seconds`` — how far billing is behind: now minus the
  oldest watermark among the meters that have readings past it (0 when
  everything is billed).

Protection (see docs/deploy.md): when ``[dh] metrics_token`` is set in
trytond.conf the scraper must send ``Authorization: Bearer <token>``;
without a token only loopback clients (127.0.0.1, ::1) are answered."""
import datetime as dt
import hmac
import ipaddress

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from trytond import config
from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.dh_collector.command import STATES as COMMAND_STATES

from .notification import STATES as NOTIFICATION_STATES


def allowed(request):
    "Whether this request may read the metrics"
    token = config.get('dh', 'metrics_token', default=None)
    if token:
        header = request.headers.get('Authorization', '')
        scheme, _, given = header.partition(' ')
        return scheme.lower() == 'bearer' and hmac.compare_digest(
            given.strip().encode('utf-8'), token.encode('utf-8'))
    try:
        return ipaddress.ip_address(request.remote_addr or '').is_loopback
    except ValueError:
        return False


def _rows(query):
    cursor = Transaction().connection.cursor()
    cursor.execute(query)
    return cursor.fetchall()


def _seconds(value):
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return max(0.0, (now - value).total_seconds())


def figures():
    """The figures as plain data: {'queue': {(name, state): n},
    'notifications': {state: n}, 'commands': {state: n}, 'billing': {…}}
    (read in the current transaction)"""
    pool = Pool()
    queue = pool.get('ir.queue').__table__()
    notification = pool.get('dh.notification').__table__()
    command = pool.get('dh.command').__table__()
    meter = pool.get('dh.meter').__table__()
    result = {'queue': {}, 'notifications': {}, 'commands': {}}
    cursor = Transaction().connection.cursor()
    cursor.execute(f'SELECT name, dequeued_at IS NULL, COUNT(*) '
        f'FROM "{queue._name}" WHERE finished_at IS NULL '
        f'GROUP BY name, dequeued_at IS NULL')
    for name, waiting, count in cursor:
        state = 'pending' if waiting else 'running'
        key = (name, state)
        result['queue'][key] = result['queue'].get(key, 0) + count
    for key, table in [('notifications', notification),
            ('commands', command)]:
        for state, count in _rows(f'SELECT state, COUNT(*) FROM '
                f'"{table._name}" GROUP BY state'):
            result[key][state] = count
    cursor.execute('SELECT COUNT(*), MAX(l.read_at), MIN(k.read_at) '
        'FROM dh_billing_mark AS k '
        'JOIN dh_reading_last AS l ON l.meter = k.meter '
        'AND l.register = k.register '
        f'JOIN "{meter._name}" AS m ON m.id = k.meter '
        "WHERE l.read_at > k.read_at AND m.billing_mode = 'cash'")
    count, newest, oldest_mark = cursor.fetchone()
    result['billing'] = {'unbilled': count or 0,
        'newest_unbilled_age': _seconds(newest) if count else 0.0,
        'lag': _seconds(oldest_mark) if count else 0.0}
    return result


def exposition(data):
    "The Prometheus text for figures()"
    registry = CollectorRegistry(auto_describe=False)
    tasks = Gauge('dh_queue_tasks', "Tryton queue tasks not finished",
        ['queue', 'state'], registry=registry)
    for (name, state), count in sorted(data['queue'].items()):
        tasks.labels(queue=name, state=state).set(count)
    for key, states, doc in [
            ('notifications', NOTIFICATION_STATES,
                "Alarm notifications by state"),
            ('commands', COMMAND_STATES, "Meter commands by state")]:
        gauge = Gauge(f'dh_{key}', doc, ['state'], registry=registry)
        known = [s for s, _ in states]
        for state in known + sorted(set(data[key]) - set(known)):
            gauge.labels(state=state).set(data[key].get(state, 0))
    billing = data['billing']
    Gauge('dh_billing_unbilled_meters', "Cash-mode meter registers with "
        "readings newer than their billing watermark",
        registry=registry).set(billing['unbilled'])
    Gauge('dh_billing_newest_unbilled_age_seconds', "Age of the newest "
        "reading not billed yet", registry=registry).set(
        billing['newest_unbilled_age'])
    Gauge('dh_billing_lag_seconds', "Now minus the oldest billing "
        "watermark among meters with unbilled readings",
        registry=registry).set(billing['lag'])
    return generate_latest(registry)


CONTENT_TYPE = CONTENT_TYPE_LATEST
