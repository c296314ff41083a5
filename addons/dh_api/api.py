# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The eleven calls of the integration API, on the database.

Each handler takes the call context (pool, token scope) and the validated
parameters and returns a JSON-ready dict, or raises :class:`ApiError`
(HTTP status + stable code).  A device outside the token's areas is
answered exactly like one that does not exist.  Reads are plain SQL over
the meter, wallet and usage tables (a query answers in milliseconds on
100,000 meters); writes go through the billing and collector models
(recharge, commands) so the rules stay in one place.
"""
import calendar
import datetime as dt
from decimal import Decimal

from sql import Literal
from sql.aggregate import Count
from sql.conditionals import Coalesce

from trytond import backend
from trytond.transaction import Transaction

from trytond.modules.dh_metering.meter import MAIN_REGISTER
from trytond.modules.dh_metering.reading import local_timezone

from . import sqlcache

CENT = Decimal('0.01')
UNITS = {'electricity': 'kWh', 'water': 'm3', 'ac_indoor': 'h',
    'ac_outdoor': 'kWh'}
E4 = Decimal(10000)
UTC = dt.timezone.utc


class ApiError(Exception):
    """An answer other than 200: HTTP status, stable code, the message id
    (dh_api.msg_<code> unless given) and its parameters"""

    def __init__(self, status, code, field=None, message=None, **params):
        super().__init__(code)
        self.status = status
        self.code = code
        self.field = field
        self.message = message or f'dh_api.msg_{code}'
        self.params = params


def unknown_device(device_id, field='device_id'):
    return ApiError(404, 'unknown_device', field=field, device=device_id)


# -- value helpers ---------------------------------------------------------
def dec(value, quantum=CENT):
    "A database number (SQLite may give bytes or float) as a Decimal"
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(quantum)


def money(value):
    value = dec(value)
    return None if value is None else str(value)


def stamp(value):
    "A stored naive UTC datetime as ISO 8601 with Z"
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(microsecond=0).isoformat() + 'Z'


def local_day_bounds(first, last):
    "Naive UTC datetimes [start, end) of local days first..last"
    tz = local_timezone()
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(),
        tzinfo=tz)
    return (start.astimezone(UTC).replace(tzinfo=None),
        end.astimezone(UTC).replace(tzinfo=None))


def numeric(column):
    "Compare Numeric columns as numbers (SQLite stores them as text)"
    if backend.name == 'sqlite':
        from sql import Cast
        return Cast(column, 'NUMERIC')
    return column


def numeric_value(value):
    if backend.name == 'sqlite':
        from sql import Cast
        return Cast(Literal(value), 'NUMERIC')
    return value


class Context:
    "One call: the pool, the token's scope and a cursor"

    def __init__(self, pool, token_id, scopes, areas):
        self.pool = pool
        self.token_id = token_id
        self.scopes = scopes
        self.areas = areas          # None: every area
        self.meter_id = None        # the device the call was about
        self.cursor = Transaction().connection.cursor()
        self.Meter = pool.get('dh.meter')

    # -- scope -------------------------------------------------------------
    def in_scope(self, meter):
        "SQL condition: the meter row is active and below the token's areas"
        condition = meter.active == Literal(True)
        if self.areas is not None:
            if not self.areas:
                return condition & (meter.id == Literal(-1))
            areas = list(self.areas)
            condition &= (meter.area_l1.in_(areas)
                | meter.area_l2.in_(areas) | meter.area_l3.in_(areas)
                | meter.area_l4.in_(areas))
        return condition

    def scope_key(self):
        "The shape of the scope condition (for sqlcache)"
        return None if self.areas is None else len(self.areas)

    def scope_params(self):
        "The parameters of the scope condition, in python-sql's order"
        if self.areas is None:
            return [True]
        if not self.areas:
            return [True, -1]
        return [True, *(list(self.areas) * 4)]

    def scope_query(self):
        "A query of the ids of the meters in scope (for api_ hooks)"
        meter = self.Meter.__table__()
        return meter.select(meter.id, where=self.in_scope(meter))

    def find(self, device_id, field='device_id'):
        """The id of the meter in scope whose number, or else address, is
        device_id (an address may be given without its leading zeros)"""
        meter = self.Meter.__table__()
        addresses = {device_id}
        if device_id.isdigit():
            addresses.update(device_id.zfill(n) for n in (12, 14)
                if len(device_id) < n)
        addresses = sorted(addresses)
        sqlcache.execute(self.cursor, ('find', self.scope_key(),
                len(addresses)), lambda: meter.select(meter.id, meter.number,
                where=self.in_scope(meter) & ((meter.number == device_id)
                    | meter.address.in_(addresses)),
                limit=5), [*self.scope_params(), device_id, *addresses, 5])
        rows = self.cursor.fetchall()
        for meter_id, number in rows:
            if number == device_id:
                return meter_id
        if len(rows) == 1:
            return rows[0][0]
        if rows:
            raise ApiError(409, 'ambiguous_device', field=field,
                device=device_id)
        raise unknown_device(device_id, field)

    def find_all(self, device_ids, field='device_ids'):
        "[(device id as given, meter id)] in the order given"
        return [(d, self.find(d, f'{field}[{i}]'))
            for i, d in enumerate(device_ids)]

    def meters_in_scope(self, meter_ids):
        "The subset of meter_ids that are in scope"
        if not meter_ids:
            return set()
        meter = self.Meter.__table__()
        self.cursor.execute(*meter.select(meter.id,
                where=self.in_scope(meter) & meter.id.in_(list(meter_ids))))
        return {i for i, in self.cursor}

    # -- rows --------------------------------------------------------------
    def balance_rows(self, meter_ids=None, where=None, order=True,
            limit=None, offset=None):
        """Balance dicts of meters (by ids, or the meters in scope matching
        ``where``, paged), in meter number order"""
        pool = self.pool
        meter = self.Meter.__table__()
        master = self.Meter.__table__()
        wallet = pool.get('dh.wallet').__table__()

        def condition():
            condition = self.in_scope(meter)
            if meter_ids is not None:
                condition &= meter.id.in_(list(meter_ids) or [-1])
            if where is not None:
                condition &= where
            return condition

        def query():
            return meter.join(master, 'LEFT',
                condition=meter.master == master.id
                ).join(wallet, 'LEFT',
                condition=wallet.id == Coalesce(master.wallet, meter.wallet)
                ).select(meter.id, meter.number, meter.name,
                    meter.address, meter.utility, meter.billing_mode,
                    meter.role, meter.state, meter.relay, meter.last_value,
                    meter.last_read_at, meter.remaining, meter.multiplier,
                    wallet.code, wallet.balance,
                    where=condition(),
                    # number is unique: its index gives the order
                    order_by=[meter.number.asc] if order else [],
                    limit=limit, offset=offset)
        if (meter_ids is not None and len(meter_ids) == 1 and where is None
                and not order and limit is None and offset is None):
            sqlcache.execute(self.cursor, ('balance', self.scope_key()),
                query, [*self.scope_params(), *meter_ids])
        else:
            self.cursor.execute(*query())
        return [balance_dict(row) for row in self.cursor.fetchall()]


def balance_dict(row):
    (meter_id, number, name, address, utility, billing_mode, role, state,
        relay, last_value, last_read_at, remaining, multiplier, wallet_code,
        wallet_balance) = row
    used = None
    if last_value is not None:
        used = str((Decimal(repr(float(last_value)))
                * (dec(multiplier, Decimal('0.0001')) or 1)).quantize(CENT))
    balance = money(wallet_balance) if wallet_code else None
    remaining_energy = None
    if billing_mode == 'energy':
        remaining_energy = money(remaining)
    return {'_id': meter_id, 'device_id': number, 'number': number,
        'name': name, 'address': address, 'utility': utility,
        'unit': UNITS.get(utility, ''), 'billing_mode': billing_mode,
        'role': role, 'state': state, 'relay': relay,
        'wallet': wallet_code, 'balance': balance,
        'remaining_energy': remaining_energy, 'used_energy': used,
        'last_read_at': stamp(last_read_at)}


def public(item):
    "Drop the internal keys (starting with _) of an answer item"
    return {k: v for k, v in item.items() if not k.startswith('_')}


def page_of(total, page, page_size, items):
    return {'page': page, 'page_size': page_size, 'total': total,
        'pages': (total + page_size - 1) // page_size, 'items': items}


# -- 1, 2: balances ----------------------------------------------------------
def balance(ctx, params):
    meter_id = ctx.meter_id = ctx.find(params['device_id'])
    row, = ctx.balance_rows([meter_id], order=False)
    return public(row)


def balances(ctx, params):
    meter = ctx.Meter.__table__()
    ctx.cursor.execute(*meter.select(Count(meter.id),
            where=ctx.in_scope(meter)))
    total, = ctx.cursor.fetchone()
    page, size = params['page'], params['page_size']
    rows = ctx.balance_rows(limit=size, offset=(page - 1) * size)
    return page_of(total, page, size, [public(r) for r in rows])


# -- 3, 4: recharge ----------------------------------------------------------
def recharge_dict(recharge, device_id, replayed=False):
    command = recharge.command
    return {'txn_no': recharge.number, 'device_id': device_id,
        'state': recharge.state, 'mode': recharge.mode,
        'amount': money(recharge.amount),
        'wallet': recharge.wallet.code,
        'wallet_before': money(recharge.wallet_before),
        'wallet_after': money(recharge.wallet_after),
        'unit_price': (str(recharge.unit_price.normalize())
            if recharge.unit_price is not None else None),
        'kwh': recharge.kwh,
        'paid': money(recharge.paid),
        'meter_energy': money(recharge.meter_energy),
        'purchase_count': recharge.purchase_count,
        'command': command_dict(command) if command else None,
        'date': stamp(recharge.date),
        'replayed': replayed}


def command_dict(command):
    return {'id': command.id, 'kind': command.kind, 'state': command.state,
        'queued_at': stamp(command.queued_at),
        'done_at': stamp(command.done_at),
        'attempts': command.attempts or 0,
        'last_error': command.last_error}


def _same(recharge, meter, wallet, amount):
    return (recharge.channel == 'api'
        and recharge.wallet.id == wallet.id
        and (recharge.meter is None or recharge.meter.id == meter.id)
        and recharge.amount == amount)


def recharge(ctx, params):
    pool = ctx.pool
    Meter = ctx.Meter
    Wallet = pool.get('dh.wallet')
    Recharge = pool.get('dh.recharge')
    number, amount = params['txn_no'], params['amount']
    meter = Meter(ctx.find(params['device_id']))
    ctx.meter_id = meter.id
    existing = Recharge.search([('number', '=', number)], limit=1)
    if existing:
        return _replay(existing[0], meter, amount)
    wallet = meter.paying_wallet
    if wallet is None:
        raise ApiError(422, 'no_wallet', device=meter.number)
    if wallet.state != 'open':
        raise ApiError(422, 'wallet_closed', device=meter.number)
    if meter.billing_mode == 'postpaid' or meter.role == 'public':
        raise ApiError(422, 'not_prepaid', device=meter.number)
    if meter.billing_mode == 'energy':
        if meter.state == 'offline':
            raise ApiError(409, 'meter_offline', device=meter.number)
        if not meter.unit_price_now():
            raise ApiError(422, 'no_price', device=meter.number)
    # the wallet's lock orders concurrent calls: a replay of this number
    # waits here and then finds the first one's recharge
    Wallet.lock_balance(wallet.id)
    existing = Recharge.search([('number', '=', number)], limit=1)
    if existing:
        return _replay(existing[0], meter, amount)
    with Transaction().set_context(company=wallet.company.id):
        result = Recharge.recharge(number, wallet, amount, channel='api',
            meter=meter)
    if result.meter is None:
        # the device a cash recharge was made for: the replay check and the
        # statements need it
        Recharge.write([result], {'meter': meter.id})
    return recharge_dict(Recharge(result.id), meter.number)


def _replay(existing, meter, amount):
    wallet = meter.paying_wallet
    if wallet is None or not _same(existing, meter, wallet, amount):
        raise ApiError(409, 'txn_conflict', field='txn_no',
            txn=existing.number)
    return recharge_dict(existing, meter.number, replayed=True)


def recharge_result(ctx, params):
    Recharge = ctx.pool.get('dh.recharge')
    meter_id = ctx.meter_id = ctx.find(params['device_id'])
    meter = ctx.Meter(meter_id)
    found = Recharge.search([('number', '=', params['txn_no'])], limit=1)
    if (not found or found[0].channel != 'api' or not found[0].meter
            or found[0].meter.id != meter_id):
        raise ApiError(404, 'unknown_transaction', field='txn_no',
            txn=params['txn_no'])
    return recharge_dict(found[0], meter.number)


# -- 5, 6: users -------------------------------------------------------------
def contacts(party):
    result = {'name': party.name, 'phone': None, 'mobile': None,
        'email': None}
    for mechanism in getattr(party, 'contact_mechanisms', []):
        if mechanism.type in result and not result[mechanism.type]:
            result[mechanism.type] = mechanism.value
    return result


def user(ctx, params):
    meter = ctx.Meter(ctx.find(params['device_id']))
    ctx.meter_id = meter.id
    wallet = meter.paying_wallet
    party = wallet.party if wallet else meter.tenant
    if wallet:
        meters = [m for m in wallet.paid_meters() if m.active]
        if meter not in meters:
            meters.append(meter)
    else:
        meters = [meter]
    visible = ctx.meters_in_scope([m.id for m in meters])
    meters = sorted((m for m in meters if m.id in visible),
        key=lambda m: m.number)
    rooms = []
    for m in meters:
        name = m.area.rec_name
        if name not in rooms:
            rooms.append(name)
    return {'device_id': meter.number,
        'tenant': contacts(party) if party else None,
        'rooms': rooms,
        'devices': [m.number for m in meters],
        'wallet': {'code': wallet.code, 'balance': money(wallet.balance),
            'emergency_credit': money(wallet.emergency_credit),
            'state': wallet.state} if wallet else None}


def low_balance(ctx, params):
    """Paged in SQL: the page's wallets (or energy meters) first, then the
    devices of those wallets only"""
    from sql.aggregate import Count as Count_
    pool = ctx.pool
    meter = ctx.Meter.__table__()
    master = ctx.Meter.__table__()
    wallet = pool.get('dh.wallet').__table__()
    party = pool.get('party.party').__table__()
    page, size = params['page'], params['page_size']
    offset = (page - 1) * size
    below = params['below']
    paying = Coalesce(master.wallet, meter.wallet)
    base = meter.join(master, 'LEFT', condition=meter.master == master.id
        ).join(wallet, 'LEFT', condition=wallet.id == paying
        ).join(party, 'LEFT', condition=party.id == wallet.party)
    if params['kind'] == 'money':
        where = (ctx.in_scope(meter) & (meter.billing_mode == 'cash')
            & (meter.role != 'public') & (wallet.state == 'open')
            & (numeric(wallet.balance) < numeric_value(below)))
        ctx.cursor.execute(*base.select(Count_(wallet.id, distinct=True),
                where=where))
        total, = ctx.cursor.fetchone()
        ctx.cursor.execute(*base.select(wallet.id, wallet.code,
                wallet.balance, party.name, where=where,
                group_by=[wallet.id, wallet.code, wallet.balance,
                    party.name],
                order_by=[numeric(wallet.balance).asc, wallet.code.asc],
                limit=size, offset=offset))
        rows = ctx.cursor.fetchall()
        items = {wallet_id: {'tenant': name, 'wallet': code,
                'balance': money(balance_), 'remaining_energy': None,
                'devices': []}
            for wallet_id, code, balance_, name in rows}
        if items:
            ctx.cursor.execute(*meter.join(master, 'LEFT',
                    condition=meter.master == master.id
                    ).select(paying, meter.number,
                    where=ctx.in_scope(meter)
                    & (meter.billing_mode == 'cash')
                    & (meter.role != 'public')
                    & paying.in_(list(items)),
                    order_by=[meter.number.asc]))
            for wallet_id, number in ctx.cursor:
                items[wallet_id]['devices'].append(number)
        items = list(items.values())
    else:
        where = (ctx.in_scope(meter) & (meter.billing_mode == 'energy')
            & (numeric(Coalesce(meter.remaining, 0))
                < numeric_value(below)))
        ctx.cursor.execute(*base.select(Count_(meter.id), where=where))
        total, = ctx.cursor.fetchone()
        ctx.cursor.execute(*base.select(wallet.code, wallet.balance,
                party.name, meter.number, meter.remaining, where=where,
                order_by=[numeric(Coalesce(meter.remaining, 0)).asc,
                    meter.number.asc], limit=size, offset=offset))
        items = [{'tenant': name, 'wallet': code,
                'balance': money(balance_) if code else None,
                'remaining_energy': money(remaining or 0),
                'devices': [number]}
            for code, balance_, name, number, remaining in ctx.cursor]
    return page_of(total, page, size, items)


# -- 7, 8: usage -------------------------------------------------------------
def _usage_meters(ctx, device_ids):
    found = ctx.find_all(device_ids)
    meter = ctx.Meter.__table__()
    ids = [m for _, m in found]
    ctx.cursor.execute(*meter.select(meter.id, meter.number,
            meter.utility, where=meter.id.in_(ids)))
    info = {i: (number, utility) for i, number, utility in ctx.cursor}
    if len(found) == 1:
        ctx.meter_id = found[0][1]
    return [(m, *info[m]) for _, m in found]


def _usage_table(ctx, table, meters, first, last):
    "{(meter, period date): Decimal usage} of the main registers"
    from sql import Table
    t = Table(table)
    result = {}
    for register in sorted({MAIN_REGISTER[u] for _, _, u in meters}):
        ids = [m for m, _, u in meters if MAIN_REGISTER[u] == register]
        ctx.cursor.execute(*t.select(t.meter, t.period, t.usage_e4,
                where=t.meter.in_(ids) & (t.register == register)
                & (t.period >= first) & (t.period <= last)))
        for meter_id, period, usage_e4 in ctx.cursor:
            if isinstance(period, str):
                period = dt.date.fromisoformat(period[:10])
            elif isinstance(period, dt.datetime):
                period = period.date()
            result[meter_id, period] = (Decimal(usage_e4) / E4).quantize(
                CENT)
    return result


def usage_monthly(ctx, params):
    month = params['month']
    meters = _usage_meters(ctx, params['device_ids'])
    usage = _usage_table(ctx, 'dh_usage_month', meters, month, month)
    return {'month': f'{month:%Y-%m}', 'items': [
            {'device_id': number, 'register': MAIN_REGISTER[utility],
                'unit': UNITS.get(utility, ''),
                'usage': _str(usage.get((meter_id, month)))}
            for meter_id, number, utility in meters]}


def usage_daily(ctx, params):
    month = params['month']
    days = calendar.monthrange(month.year, month.month)[1]
    last = month.replace(day=days)
    meters = _usage_meters(ctx, params['device_ids'])
    usage = _usage_table(ctx, 'dh_usage_day', meters, month, last)
    items = []
    for meter_id, number, utility in meters:
        values = [usage.get((meter_id, month.replace(day=d)))
            for d in range(1, days + 1)]
        present = [v for v in values if v is not None]
        items.append({'device_id': number,
                'register': MAIN_REGISTER[utility],
                'unit': UNITS.get(utility, ''),
                'total': _str(sum(present, Decimal(0)) if present else None),
                'days': [{'date': f'{month.replace(day=d):%Y-%m-%d}',
                        'usage': _str(v)}
                    for d, v in zip(range(1, days + 1), values)]})
    return {'month': f'{month:%Y-%m}', 'items': items}


def _str(value):
    return None if value is None else str(value)


# -- 9: recharge and refund records -----------------------------------------
def records(ctx, params):
    pool = ctx.pool
    Recharge = pool.get('dh.recharge')
    Refund = pool.get('dh.refund')
    found = ctx.find_all(params['device_ids'])
    meters = ctx.Meter.browse([m for _, m in found])
    if len(meters) == 1:
        ctx.meter_id = meters[0].id
    devices_of = {}
    for m in meters:
        wallet = m.paying_wallet
        if wallet:
            devices = devices_of.setdefault(wallet.id, [])
            if m.number not in devices:
                devices.append(m.number)
    start, end = local_day_bounds(params['date_from'], params['date_to'])
    items = []
    if devices_of:
        domain = [('wallet', 'in', list(devices_of)),
            ('date', '>=', start), ('date', '<', end)]
        recharges = Recharge.search(domain, order=[('date', 'ASC'),
                ('id', 'ASC')])
        refunds = Refund.search(domain, order=[('date', 'ASC'),
                ('id', 'ASC')])
        shown = ctx.meters_in_scope({r.meter.id for r in recharges
                if r.meter})
        for r in recharges:
            items.append({'type': 'recharge', 'number': r.number,
                    'wallet': r.wallet.code,
                    'devices': devices_of[r.wallet.id],
                    'device_id': (r.meter.number
                        if r.meter and r.meter.id in shown else None),
                    'channel': r.channel, 'kind': r.mode,
                    'amount': money(r.amount), 'kwh': r.kwh,
                    'paid': money(r.paid),
                    'wallet_after': money(r.wallet_after),
                    'state': r.state, 'date': stamp(r.date)})
        for r in refunds:
            items.append({'type': 'refund', 'number': r.number,
                    'wallet': r.wallet.code,
                    'devices': devices_of[r.wallet.id], 'device_id': None,
                    'channel': r.channel, 'kind': r.kind,
                    'amount': money(r.amount), 'kwh': None, 'paid': None,
                    'wallet_after': money(r.wallet_after),
                    'state': 'done', 'date': stamp(r.date)})
    items.sort(key=lambda i: (i['date'], i['type'], i['number']))
    return {'date_from': f'{params["date_from"]:%Y-%m-%d}',
        'date_to': f'{params["date_to"]:%Y-%m-%d}', 'items': items}


# -- 10: abnormal devices ----------------------------------------------------
def abnormal(ctx, params):
    reasons = ctx.Meter.api_abnormal_reasons(ctx.scope_query())
    # only what is in scope, whatever an extension returned
    visible = set()
    ids = sorted(reasons)
    for i in range(0, len(ids), 1000):
        visible |= ctx.meters_in_scope(ids[i:i + 1000])
    ids = [i for i in ids if i in visible and reasons[i]]
    page, size = params['page'], params['page_size']
    meter = ctx.Meter.__table__()
    rows = []
    for i in range(0, len(ids), 1000):
        ctx.cursor.execute(*meter.select(meter.id, meter.number, meter.name,
                meter.state, meter.relay, where=meter.id.in_(ids[i:i + 1000])))
        rows.extend(ctx.cursor.fetchall())
    rows.sort(key=lambda r: (r[1], r[0]))
    start = (page - 1) * size
    items = [{'device_id': number, 'name': name, 'state': state,
            'relay': relay, 'reasons': reasons[meter_id]}
        for meter_id, number, name, state, relay in rows[start:start + size]]
    return page_of(len(rows), page, size, items)


# -- 11: control -------------------------------------------------------------
def control(ctx, params):
    pool = ctx.pool
    Meter = ctx.Meter
    Command = pool.get('dh.command')
    meter = Meter(ctx.find(params['device_id']))
    ctx.meter_id = meter.id
    action = params['action']
    command = None
    if action == 'prepaid':
        if meter.billing_mode == 'postpaid':
            if meter.paying_wallet is None:
                raise ApiError(422, 'no_wallet', device=meter.number)
            Meter.write([meter], {'billing_mode': 'cash'})
        if meter.role == 'public':
            Meter.write([meter], {'role': 'normal'})
    elif action == 'postpaid':
        if meter.billing_mode == 'energy':
            raise ApiError(422, 'energy_mode', device=meter.number)
        values = {'billing_mode': 'postpaid'}
        if meter.role == 'public':
            values['role'] = 'normal'
        Meter.write([meter], values)
    elif action == 'public':
        if meter.role == 'master' and meter.subs:
            raise ApiError(409, 'meter_is_master', device=meter.number)
        if meter.master:
            raise ApiError(409, 'meter_is_sub', device=meter.number)
        Meter.write([meter], {'role': 'public'})
    elif action in {'trip', 'close'}:
        if meter.state == 'offline':
            raise ApiError(409, 'meter_offline', device=meter.number)
        if action == 'trip' and meter.control_mode in {'controlled_no_cut',
                'always_on'}:
            raise ApiError(409, 'power_hold', device=meter.number)
        kind = action
        if meter.utility == 'water':
            kind = 'valve_close' if action == 'trip' else 'valve_open'
        command, = Command.queue([meter], kind,
            reference=f'dh.api.token:{ctx.token_id}')
    elif action in {'hold', 'release'}:
        if meter.billing_mode != 'cash':
            # the meter itself holds (保电, DL/T645 0x1C 3A / 3B)
            if meter.utility != 'electricity' or meter.protocol != \
                    'dlt645_2007':
                raise ApiError(422, 'action_not_supported', field='action',
                    device=meter.number, action=action)
            if meter.state == 'offline':
                raise ApiError(409, 'meter_offline', device=meter.number)
            command, = Command.queue([meter],
                'hold' if action == 'hold' else 'hold_release',
                reference=f'dh.api.token:{ctx.token_id}')
            Meter.write([meter], {'control_mode': 'controlled_no_cut'
                    if action == 'hold' else 'controlled'})
        elif action == 'hold':
            Meter.write([meter], {'control_mode': 'controlled_no_cut'})
        elif meter.control_mode == 'controlled_no_cut':
            Meter.write([meter], {'control_mode': 'controlled'})
        meter = Meter(meter.id)
        wallet = meter.paying_wallet
        if wallet and wallet.state == 'open':
            trip, close = Meter.control_supply([meter], wallet.balance,
                wallet.emergency_credit)
            queued = Command.search([('meter', '=', meter.id),
                    ('kind', 'in', ['trip', 'close']),
                    ('state', 'in', ['queued', 'sent'])],
                order=[('id', 'DESC')], limit=1)
            if (trip or close) and queued:
                command = queued[0]
    meter = Meter(meter.id)
    return {'device_id': meter.number, 'action': action,
        'billing_mode': meter.billing_mode, 'role': meter.role,
        'control_mode': meter.control_mode, 'relay': meter.relay,
        'state': meter.state,
        'command': command_dict(command) if command else None}


# path -> (scopes any of which allows the call, validator, handler)
READ, RECHARGE, CONTROL = {'read'}, {'recharge'}, {'control'}
CALLS = {
    'balance': (READ, 'v_balance', balance),
    'balances': (READ, 'v_balances', balances),
    'recharge': (RECHARGE, 'v_recharge', recharge),
    'recharge/result': (READ | RECHARGE, 'v_recharge_result',
        recharge_result),
    'user': (READ, 'v_user', user),
    'users/low-balance': (READ, 'v_low_balance', low_balance),
    'usage/monthly': (READ, 'v_usage', usage_monthly),
    'usage/daily': (READ, 'v_usage', usage_daily),
    'recharges': (READ, 'v_recharges', records),
    'devices/abnormal': (READ, 'v_abnormal', abnormal),
    'control': (CONTROL, 'v_control', control),
    }
