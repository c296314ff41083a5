# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""What the portal's pages show and how a tenant is told apart from
another: sessions, CSRF tokens, the tenant's meters and wallets (every id
coming from a URL or a form is looked up among them, never trusted), and
the figures of each page.  Reads are few, plain queries; the pages
themselves are written by pages.py."""
import ast
import datetime as dt
import hashlib
import hmac
import secrets
from decimal import Decimal, InvalidOperation

from trytond.pool import Pool
from trytond.transaction import Transaction

from trytond.modules.dh_metering.meter import MAIN_REGISTER
from trytond.modules.dh_metering.reading import local_timezone

SESSION_COOKIE = 'dhwx_session'
CSRF_COOKIE = 'dhwx_csrf'
STATE_COOKIE = 'dhwx_state'
PENDING_COOKIE = 'dhwx_pending'
UTC = dt.timezone.utc
E4 = Decimal(10000)
UNITS = {'electricity': '度', 'water': '吨', 'ac_indoor': '小时',
    'ac_outdoor': '度'}
UTILITY_ZH = {'electricity': '电表', 'water': '水表', 'ac_indoor': '空调内机',
    'ac_outdoor': '空调外机'}
METER_STATE_ZH = {'normal': '正常', 'alarm': '报警', 'cutoff': '断电',
    'fault': '故障', 'offline': '离线'}
RECHARGE_STATE_ZH = {'paid': '已到账', 'delivered': '已下发到表',
    'failed': '下发失败'}
DELIVERY_ZH = {'paid': '下发中', 'delivered': '已下发到表',
    'failed': '下发失败，请联系物业'}
CHANNEL_ZH = {'counter': '柜台', 'wechat': '微信', 'api': '接口'}
REFUND_KIND_ZH = {'partial': '退费', 'full': '彻底退费（退租）',
    'no_cut': '不断电退费'}
BASIS_ZH = {'equal': '按户均摊', 'area': '按面积', 'consumption': '按用量',
    'capacity_runtime': '按容量×运行时间', 'runtime': '按运行时间',
    'capacity_speed': '按容量×风速运行时间'}
ALLOCATION_KIND_ZH = {'public': '公摊', 'ac': '中央空调分摊'}
INPUT_ZH = {'weight': '权重', 'capacity_kw': '额定容量(kW)',
    'runtime_h': '运行时间(小时)', 'formula': '计算'}
NOTICE_TEMPLATES = ['low_balance', 'cutoff', 'restored', 'monthly_usage',
    'alarm']


class AmountError(ValueError):
    "A recharge amount the tenant typed that cannot be taken (Chinese)"


def parse_amount(text, minimum, maximum):
    """The amount of a recharge form: yuan with at most 2 decimals, within
    [minimum, maximum].  Raises AmountError with the reason in Chinese."""
    text = (text or '').strip().replace('，', '').replace(',', '')
    text = text.replace('元', '').replace('¥', '').replace('￥', '').strip()
    if not text:
        raise AmountError('请选择或输入充值金额')
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise AmountError(f'“{text[:20]}”不是有效的金额')
    if not value.is_finite():
        raise AmountError(f'“{text[:20]}”不是有效的金额')
    if value != value.quantize(Decimal('0.01')):
        raise AmountError('金额最多保留两位小数（分）')
    if value < minimum:
        raise AmountError(f'单次充值不能少于 {minimum:.2f} 元')
    if value > maximum:
        raise AmountError(f'单次充值不能超过 {maximum:.2f} 元')
    return value.quantize(Decimal('0.01'))


def csrf_for(session_key):
    "The form token of a session (bound to its secret key)"
    return hmac.new(session_key.encode(), b'dh-wx-csrf',
        hashlib.sha256).hexdigest()[:32]


def same(a, b):
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def new_token():
    return secrets.token_urlsafe(24)


def in_wechat(request):
    return 'micromessenger' in (request.headers.get('User-Agent')
        or '').lower()


def local(value):
    "A naive UTC datetime from the database → local wall time"
    if not value:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).astimezone(local_timezone()).replace(
        tzinfo=None)


def _date(value):
    if isinstance(value, dt.date):
        return value if not isinstance(value, dt.datetime) else value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _datetime(value):
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _dec(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return Decimal(str(value))


METER_COLUMNS = ['id', 'number', 'name', 'address', 'utility', 'state',
    'relay', 'last_value', 'last_read_at', 'remaining', 'billing_mode',
    'wallet', 'level1', 'level2', 'level3', 'level4', 'role', 'multiplier']
WALLET_COLUMNS = ['id', 'code', 'balance', 'state', 'emergency_credit',
    'company']
RECHARGE_COLUMNS = ['date', 'number', 'channel', 'mode', 'amount', 'kwh',
    'paid', 'meter_energy', 'wallet_after', 'state', 'meter_name']
REFUND_COLUMNS = ['date', 'number', 'kind', 'channel', 'amount',
    'wallet_after', 'note']
_SQL = {}


def _sql(name, *sizes):
    """The text of the pages' hot queries, kept per shape (building it with
    python-sql took longer than PostgreSQL took to answer)"""
    from trytond import backend
    key = (backend.name, name, sizes)
    text = _SQL.get(key)
    if text is None:
        p = '%s' if backend.name == 'postgresql' else '?'

        def params(n):
            return ', '.join([p] * n)
        pool = Pool()
        if name == 'session':
            text = ('SELECT s.id, s."user", s.dh_openid, s.key, u.dh_login, '
                'u.email, pp.name, u.party, s.create_date, s.write_date '
                f'FROM "{pool.get("web.user.session")._table}" s '
                f'JOIN "{pool.get("web.user")._table}" u ON s."user" = u.id '
                f'LEFT JOIN "{pool.get("party.party")._table}" pp '
                f'ON u.party = pp.id WHERE s.key = {p} AND u.active')
        elif name == 'secondary':
            table = pool.get('web.user-party.party.secondary')._table
            text = (f'SELECT party FROM "{table}" WHERE "user" = {p} '
                'ORDER BY id')
        elif name == 'wallets':
            text = (f'SELECT {", ".join(WALLET_COLUMNS)} FROM dh_wallet '
                f'WHERE party IN ({params(sizes[0])}) ORDER BY id')
        elif name == 'meters':
            text = (f'SELECT {", ".join(METER_COLUMNS)} FROM dh_meter '
                f'WHERE (tenant IN ({params(sizes[0])}) OR wallet IN '
                f'({params(sizes[1])})) AND active ORDER BY level1, level2, '
                'level3, level4, name, id')
        elif name == 'config':
            text = (f'SELECT id FROM dh_wechat_config WHERE company = {p} '
                'AND active ORDER BY id LIMIT 1')
        elif name == 'recharges':
            text = (f'SELECT {", ".join("r." + c for c in RECHARGE_COLUMNS[:-1])}'
                ', m.name FROM dh_recharge r LEFT JOIN dh_meter m ON '
                f'r.meter = m.id WHERE r.wallet IN ({params(sizes[0])}) '
                f'ORDER BY r.date DESC, r.id DESC LIMIT {p}')
        elif name == 'refunds':
            text = (f'SELECT {", ".join(REFUND_COLUMNS)} FROM dh_refund '
                f'WHERE wallet IN ({params(sizes[0])}) '
                f'ORDER BY date DESC, id DESC LIMIT {p}')
        _SQL[key] = text
    return text


class Tenant:
    """The signed-in tenant of one request (None when nobody is).  The
    hot reads (session, meters, wallets) are plain queries: every page
    needs them and the ORM's search_read cost more than the page."""

    def __init__(self, row, parties):
        (self.session_id, self.user_id, self.openid, self.key, self.login,
            self.email, self.party_name) = row
        self.parties = parties
        self.csrf = csrf_for(self.key)
        self._meters = None
        self._wallets = None

    @property
    def session(self):
        return Pool().get('web.user.session')(self.session_id)

    @property
    def web_user(self):
        return Pool().get('web.user')(self.user_id)

    @classmethod
    def from_key(cls, key):
        if not key or len(key) > 128:
            return None
        pool = Pool()
        Session = pool.get('web.user.session')
        cursor = Transaction().connection.cursor()
        cursor.execute(_sql('session', 1), (key,))
        row = cursor.fetchone()
        if not row:
            return None
        *values, party_id, created, written = row
        last = _datetime(written or created)
        if last is None or abs(last - dt.datetime.now()) > Session.timeout():
            return None
        parties = [party_id] if party_id else []
        cursor.execute(_sql('secondary', 1), (values[1],))
        parties += [p for p, in cursor if p not in parties]
        return cls(values, parties)

    # -- what the tenant may see ---------------------------------------------
    def meters(self):
        """The tenant's meters, ordered for display: his rooms (tenant) and
        every meter his wallets pay for (多间统一充值)"""
        if self._meters is None:
            self._meters = []
            if self.parties:
                wallets = [w['id'] for w in self.wallets()] or [-1]
                cursor = Transaction().connection.cursor()
                cursor.execute(_sql('meters', len(self.parties),
                        len(wallets)), self.parties + wallets)
                for values in cursor:
                    row = dict(zip(METER_COLUMNS, values))
                    row['remaining'] = _dec(row['remaining'])
                    row['multiplier'] = _dec(row['multiplier'])
                    row['last_read_at'] = _datetime(row['last_read_at'])
                    self._meters.append(row)
        return self._meters

    def meter(self, meter_id):
        "One of the tenant's meters, or None (another's id is not found)"
        try:
            meter_id = int(meter_id)
        except (TypeError, ValueError):
            return None
        return next((m for m in self.meters() if m['id'] == meter_id), None)

    def wallets(self):
        if self._wallets is None:
            self._wallets = []
            if self.parties:
                cursor = Transaction().connection.cursor()
                cursor.execute(_sql('wallets', len(self.parties)),
                    self.parties)
                for values in cursor:
                    row = dict(zip(WALLET_COLUMNS, values))
                    row['balance'] = _dec(row['balance']) or Decimal(0)
                    row['emergency_credit'] = _dec(row['emergency_credit'])
                    self._wallets.append(row)
        return self._wallets

    def wallet(self, wallet_id):
        try:
            wallet_id = int(wallet_id)
        except (TypeError, ValueError):
            return None
        return next((w for w in self.wallets() if w['id'] == wallet_id),
            None)

    def display_name(self):
        return self.party_name or self.login or self.email or ''

    def bindings(self):
        Binding = Pool().get('dh.wechat.binding')
        return Binding.search([('web_user', '=', self.user_id)],
            order=[('id', 'ASC')])

    def binding(self):
        "The binding of the WeChat this session came through, if any"
        if not self.openid:
            return None
        Binding = Pool().get('dh.wechat.binding')
        found = Binding.search([('web_user', '=', self.user_id),
                ('openid', '=', self.openid)], limit=1)
        return found[0] if found else None

    def config(self):
        "The WeChat configuration of the tenant's company"
        Config = Pool().get('dh.wechat.config')
        cursor = Transaction().connection.cursor()
        for company in dict.fromkeys(w['company'] for w in self.wallets()):
            cursor.execute(_sql('config'), (company,))
            row = cursor.fetchone()
            if row:
                return Config(row[0])
        return Config.get_default()


# -- page figures --------------------------------------------------------------
def meter_cards(tenant):
    """Rows of 我的表计: per meter its remaining (money: the wallet's
    balance; energy: the meter's kWh), state, last reading and time"""
    wallets = {w['id']: w for w in tenant.wallets()}
    cards = []
    for meter in tenant.meters():
        wallet = wallets.get(meter['wallet'])
        mode = meter['billing_mode']
        if meter['role'] == 'public':
            remaining = None
        elif mode == 'energy':
            remaining = ('energy', _dec(meter['remaining']))
        elif mode == 'cash' and wallet:
            remaining = ('money', _dec(wallet['balance']))
        else:
            remaining = ('postpaid', None)
        cards.append({'meter': meter, 'remaining': remaining,
                'unit': UNITS.get(meter['utility'], ''),
                'utility': UTILITY_ZH.get(meter['utility'], ''),
                'state': meter['state'],
                'state_zh': METER_STATE_ZH.get(meter['state'], ''),
                'last_value': meter['last_value'],
                'last_at': local(meter['last_read_at']),
                'wallet': wallet})
    return cards


def usage(meter, view, period):
    """(labels, values, title) of a meter's usage: view 'month' → one bar a
    day of the month ``period`` (a date in it); 'year' → one bar a month"""
    register = MAIN_REGISTER.get(meter['utility'], 'energy_total')
    cursor = Transaction().connection.cursor()
    from trytond import backend
    p = '%s' if backend.name == 'postgresql' else '?'
    if view == 'year':
        start = dt.date(period.year, 1, 1)
        end = dt.date(period.year + 1, 1, 1)
        table = 'dh_usage_month'
        labels = [f'{m}月' for m in range(1, 13)]
        keys = [dt.date(period.year, m, 1) for m in range(1, 13)]
    else:
        start = period.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        table = 'dh_usage_day'
        days = (end - start).days
        keys = [start + dt.timedelta(days=d) for d in range(days)]
        labels = [str(d.day) for d in keys]
    cursor.execute(f'SELECT period, usage_e4 FROM {table} WHERE meter = {p} '
        f'AND register = {p} AND period >= {p} AND period < {p}',
        (meter['id'], register, start, end))
    found = {_date(period_): Decimal(int(value)) / E4
        for period_, value in cursor}
    values = [found.get(k) for k in keys]
    return labels, values, keys


def history(tenant, limit=50):
    "Recharges, refunds and allocations of the tenant's wallets"
    pool = Pool()
    AllocationLine = pool.get('dh.allocation.line')
    wallet_ids = [w['id'] for w in tenant.wallets()]
    if not wallet_ids:
        return [], [], []
    cursor = Transaction().connection.cursor()
    cursor.execute(_sql('recharges', len(wallet_ids)), wallet_ids + [limit])
    recharges = []
    for values in cursor:
        row = dict(zip(RECHARGE_COLUMNS, values))
        for name in ['amount', 'paid', 'meter_energy', 'wallet_after']:
            row[name] = _dec(row[name])
        row['date'] = _datetime(row['date'])
        row['meter.'] = {'name': row.pop('meter_name')}
        recharges.append(row)
    cursor.execute(_sql('refunds', len(wallet_ids)), wallet_ids + [limit])
    refunds = []
    for values in cursor:
        row = dict(zip(REFUND_COLUMNS, values))
        for name in ['amount', 'wallet_after']:
            row[name] = _dec(row[name])
        row['date'] = _datetime(row['date'])
        refunds.append(row)
    lines = AllocationLine.search([('wallet_line.wallet', 'in', wallet_ids)],
        order=[('id', 'DESC')], limit=limit)
    allocations = []
    for line in lines:
        allocation = line.allocation
        try:
            inputs = ast.literal_eval(line.inputs or '{}')
        except (ValueError, SyntaxError):
            inputs = {}
        shown = []
        if isinstance(inputs, dict):
            if 'formula' in inputs:
                shown.append(('计算', str(inputs['formula'])))
            else:
                for key, value in inputs.items():
                    if key in INPUT_ZH and value is not None:
                        shown.append((INPUT_ZH[key], str(value)))
        allocations.append({'kind': ALLOCATION_KIND_ZH.get(allocation.kind,
                    allocation.kind),
                'source': allocation.source.name,
                'basis': BASIS_ZH.get(allocation.basis, allocation.basis),
                'start': allocation.start,
                'end': allocation.end - dt.timedelta(days=1),
                'total': allocation.energy, 'meter': line.meter.name,
                'energy': line.energy, 'price': line.unit_price,
                'amount': line.amount, 'inputs': shown})
    return recharges, refunds, allocations


def notices(tenant, limit=20):
    """(open alarms, recent messages) of the tenant's meters: 报警 and the
    low-balance / cut-off / restored / monthly messages sent about them"""
    pool = Pool()
    Alarm = pool.get('dh.alarm')
    Notification = pool.get('dh.notification')
    meter_ids = [m['id'] for m in tenant.meters()]
    if not meter_ids:
        return [], []
    alarms = Alarm.search_read([('meter', 'in', meter_ids),
            ('state', '!=', 'closed')], order=[('start', 'DESC')],
        limit=limit, fields_names=['kind', 'start', 'value', 'threshold',
            'meter.name', 'state'])
    messages = Notification.search_read([('meter', 'in', meter_ids),
            ('template', 'in', NOTICE_TEMPLATES)],
        order=[('create_date', 'DESC'), ('id', 'DESC')], limit=limit * 4,
        fields_names=['text', 'create_date', 'template', 'key'])
    seen, unique = set(), []
    for message in messages:
        # one line per event (an event has a row per recipient)
        event = message['key'].rsplit(':', 2)[0]
        if event in seen:
            continue
        seen.add(event)
        unique.append(message)
        if len(unique) >= limit:
            break
    return alarms, unique


def recharge_targets(tenant):
    """What a recharge can go to: ('w<id>', label, wallet, None) for a
    wallet's money (its cash meters) and ('m<id>', label, wallet, meter)
    for energy-mode meters (kWh bought to the meter)"""
    wallets = {w['id']: w for w in tenant.wallets()}
    targets = []
    by_wallet = {}
    for meter in tenant.meters():
        wallet = wallets.get(meter['wallet'])
        if not wallet or wallet['state'] != 'open' or meter['role'] == \
                'public':
            continue
        if meter['billing_mode'] == 'energy':
            targets.append((f'm{meter["id"]}', f'{meter["name"]}（购电到表）',
                    wallet, meter))
        elif meter['billing_mode'] == 'cash':
            by_wallet.setdefault(wallet['id'], []).append(meter['name'])
    money = []
    for wallet_id, names in by_wallet.items():
        wallet = wallets[wallet_id]
        shown = '、'.join(names[:4]) + ('等' if len(names) > 4 else '')
        label = f'钱包余额（{shown}）' if len(names) > 1 else \
            f'{names[0]}（钱包余额）'
        money.append((f'w{wallet_id}', label, wallet, None))
    return money + targets
