# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The portal's HTTP routes, under ``/<database>/dh/wx/``.

Tenants sign in with the account name and password the property office
set (Tryton's web users), or silently through WeChat OAuth (snsapi_base)
once their openid is bound.  Sessions are HttpOnly, SameSite=Lax cookies
scoped to the portal's path; every form carries a CSRF token bound to the
session (the sign-in form a double-submit cookie) and cross-site Origins
are refused; sign-in is throttled per account and per network after
repeated failures.  Every meter, wallet, order or binding id that comes in
a URL or a form is looked up among the signed-in tenant's own: another
tenant's is answered 404, exactly like one that does not exist.

The payment notification route has the shape of Tryton's
account_payment_stripe webhook: find the configuration by the key in the
URL, verify, hand over to the model (order.py), answer 2xx only when the
notification is handled for good."""
import datetime as dt
import io
import json
import logging
import os
import time
import urllib.parse

from werkzeug.exceptions import HTTPException
from werkzeug.utils import redirect

import trytond.config as config
from trytond import backend
from trytond.exceptions import UserError
from trytond.protocols.wrappers import (
    Response, set_max_request_size, with_pool, with_transaction)
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app

from . import pages, portal
from .oa import OAError
from .order import STATE_ZH
from .portal import (
    CSRF_COOKIE, DELIVERY_ZH, PENDING_COOKIE, SESSION_COOKIE, STATE_COOKIE,
    AmountError, Tenant, in_wechat, new_token, parse_amount, same)

logger = logging.getLogger(__name__)
PREFIX = '/<database_name>/dh/wx'
MAX_BODY = 16 * 1024
STATIC = os.path.join(os.path.dirname(__file__), 'static')
STATIC_TYPES = {'portal.css': 'text/css; charset=utf-8',
    'portal.js': 'application/javascript; charset=utf-8'}
CONTEXT = {'language': 'zh_CN'}
_sandbox = {}


class Page:
    "One request to the portal: what the handlers get"

    def __init__(self, request, pool, database):
        self.request = request
        self.pool = pool
        self.database = database
        self.path = f'/{database}/dh/wx'
        self.base = request.script_root + self.path
        self.tenant = Tenant.from_key(request.cookies.get(SESSION_COOKIE))
        self.cookies = []

    def url(self, name):
        return f'{self.base}/{name}'

    def public_url(self, config, name):
        "An absolute URL as WeChat reaches us (the configured portal URL)"
        return f'{config.portal_url.rstrip("/")}{self.path}/{name}'

    def set_cookie(self, name, value, max_age=None):
        self.cookies.append((name, value, max_age))

    def html(self, text, status=200):
        return self.finish(Response(text.encode('utf-8'), status,
                content_type='text/html; charset=utf-8'))

    def json(self, data, status=200):
        return self.finish(Response(json.dumps(data, ensure_ascii=False),
                status, content_type='application/json; charset=utf-8'))

    def go(self, location):
        return self.finish(redirect(location, code=303))

    def message(self, title, text, status=400, link=None, label='返回'):
        return self.html(pages.message(self.base, title, text,
                link=link or self.url('meters'), label=label), status)

    def not_found(self):
        return self.message('未找到', '没有找到这个页面或记录。', 404)

    def finish(self, response):
        for name, value, max_age in self.cookies:
            if value is None:
                response.delete_cookie(name, path=self.path,
                    httponly=True, samesite='Lax',
                    secure=self.request.is_secure)
            else:
                response.set_cookie(name, value, max_age=max_age,
                    path=self.path, httponly=True, samesite='Lax',
                    secure=self.request.is_secure)
        headers = response.headers
        headers.setdefault('Cache-Control', 'no-store')
        headers['X-Content-Type-Options'] = 'nosniff'
        headers['X-Frame-Options'] = 'DENY'
        headers['Referrer-Policy'] = 'same-origin'
        connect = "'self'"
        sandbox = self.sandbox_gateway()
        if sandbox:
            # the demo's fake WeChat (JSAPI bridge stand-in, cashier)
            parts = urllib.parse.urlsplit(sandbox)
            connect += f' {parts.scheme}://{parts.netloc}'
        headers['Content-Security-Policy'] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            f"script-src 'self'; connect-src {connect}; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        return response

    def sandbox_gateway(self):
        "The fake WeChat of a sandbox configuration (looked up every 30 s)"
        now = time.monotonic()
        cached = _sandbox.get(self.database)
        if cached and cached[0] > now:
            return cached[1]
        table = self.pool.get('dh.wechat.config').__table__()
        cursor = Transaction().connection.cursor()
        cursor.execute(*table.select(table.pay_gateway,
                where=(table.sandbox == True)  # noqa: E712
                & (table.active == True), limit=1))  # noqa: E712
        row = cursor.fetchone()
        _sandbox[self.database] = (now + 30, row[0] if row else None)
        return _sandbox[self.database][1]

    # -- checks --------------------------------------------------------------
    def cross_site(self):
        "A POST from another site (Origin / Referer not ours)"
        origin = self.request.headers.get('Origin') or ''
        if not origin:
            referer = self.request.headers.get('Referer') or ''
            if not referer:
                return False
            origin = referer
        parts = urllib.parse.urlsplit(origin)
        return parts.netloc != self.request.host

    def csrf_ok(self):
        if self.cross_site():
            return False
        token = self.request.form.get('csrf')
        return self.tenant is not None and same(token, self.tenant.csrf)

    def expired(self):
        return self.message('页面已过期', '页面已过期或来源不明，请返回刷新后重试。',
            403, link=self.url('meters'))


def route(path, methods=('GET',), write=None, auth=True, csrf=True):
    """A portal route: pool, transaction (readonly for GET unless write),
    the signed-in tenant (or a redirect to the sign-in page), the CSRF
    check of POSTs, and errors answered as Chinese pages (the transaction
    rolled back)"""
    def decorator(func):
        @app.route(PREFIX + path, methods=list(methods))
        @set_max_request_size(MAX_BODY)
        @with_pool
        @with_transaction(readonly=None if write is None else not write,
            context=CONTEXT)
        def view(request, pool, **kwargs):
            database = pool.database_name
            page = Page(request, pool, database)
            try:
                if auth and page.tenant is None:
                    if request.method == 'GET' and not path.endswith(
                            '/status'):
                        return page.go(page.url('login'))
                    if path.endswith('/status'):
                        return page.json({'error': 'signed_out'}, 401)
                    return page.go(page.url('login'))
                if request.method == 'POST' and csrf and auth \
                        and not page.csrf_ok():
                    return page.expired()
                return func(page, **kwargs)
            except (TransactionError, backend.DatabaseOperationalError):
                raise
            except HTTPException:
                raise
            except UserError as error:
                Transaction().rollback()
                return page.message('无法办理', error.message, 400)
            except Exception:
                Transaction().rollback()
                logger.exception('portal %s', request.path)
                return page.message('系统繁忙', '系统出了点问题，请稍后再试。',
                    500)
        view.__name__ = 'dh_wx_' + func.__name__
        return view
    return decorator


# -- sign in, WeChat binding, sign out ----------------------------------------
@route('/', auth=False)
def home(page):
    return page.go(page.url('meters' if page.tenant else 'login'))


def _pending(page):
    OAuthPending = page.pool.get('dh.wechat.oauth')
    return OAuthPending.peek(page.request.cookies.get(PENDING_COOKIE))


def _oauth_link(page, config):
    if config and (in_wechat(page.request) or config.sandbox):
        return page.url('oauth')
    return None


@route('/login', auth=False)
def login_form(page):
    if page.tenant:
        return page.go(page.url('meters'))
    Config = page.pool.get('dh.wechat.config')
    config = Config.get_default()
    pending = _pending(page)
    if (in_wechat(page.request) and config and not pending
            and page.request.args.get('manual') != '1'):
        # inside WeChat: try the silent OAuth first (bound: no password)
        return page.go(page.url('oauth'))
    token = page.request.cookies.get(CSRF_COOKIE) or new_token()
    page.set_cookie(CSRF_COOKIE, token)
    return page.html(pages.login(page.base, token, pending=bool(pending),
            oauth_link=None if pending else _oauth_link(page, config)))


@route('/login', methods=['POST'], write=True, auth=False)
def login(page):
    pool = page.pool
    WebUser = pool.get('web.user')
    Attempt = pool.get('web.user.authenticate.attempt')
    Binding = pool.get('dh.wechat.binding')
    OAuthPending = pool.get('dh.wechat.oauth')
    Session = pool.get('web.user.session')
    request = page.request
    form = request.form
    token = request.cookies.get(CSRF_COOKIE)
    if page.cross_site() or not same(form.get('csrf'), token):
        return page.expired()
    name = (form.get('login') or '').strip()[:64]
    password = form.get('password') or ''
    pending = _pending(page)

    def again(error, status):
        return page.html(pages.login(page.base, token, error=error,
                login_value=name, pending=bool(pending)), status)
    limit = config.getint('session', 'max_attempt', default=5)
    limit_ip = config.getint('session', 'max_attempt_ip_network',
        default=300)
    if Attempt.count(name) >= limit or Attempt.count_ip() >= limit_ip:
        # refused before the password is even looked at
        Attempt.add(name)
        return again('登录失败次数过多，请 10 分钟后再试。', 429)
    user = WebUser.dh_find(name) if name else None
    valid = False
    if user and user.password_hash and password:
        valid, _ = WebUser.check_password(password, user.password_hash)
    if not valid:
        Attempt.add(name)
        return again('账号或密码错误。', 401)
    Attempt.remove(name)
    key = user.new_session()
    session, = Session.search([('key', '=', key)])
    taken = OAuthPending.take(request.cookies.get(PENDING_COOKIE))
    if taken:
        wechat, openid = taken
        Binding.bind(user, wechat, openid)
        Session.write([session], {'dh_openid': openid})
        page.set_cookie(PENDING_COOKIE, None)
    page.set_cookie(SESSION_COOKIE, key, max_age=30 * 24 * 3600)
    return page.go(page.url('meters'))


@route('/oauth', auth=False)
def oauth(page):
    Config = page.pool.get('dh.wechat.config')
    wechat = Config.get_default()
    if not wechat or not wechat.oa_secret:
        return page.message('未开通', '本物业尚未开通微信公众号登录。', 400,
            link=page.url('login?manual=1'), label='使用账号密码登录')
    state = new_token()
    page.set_cookie(STATE_COOKIE, state, max_age=600)
    target = wechat.oa_client().authorize_url(
        page.public_url(wechat, 'oauth/callback'), state)
    return page.go(target)


@route('/oauth/callback', write=True, auth=False)
def oauth_callback(page):
    pool = page.pool
    Config = pool.get('dh.wechat.config')
    Binding = pool.get('dh.wechat.binding')
    OAuthPending = pool.get('dh.wechat.oauth')
    Session = pool.get('web.user.session')
    args = page.request.args
    manual = page.url('login?manual=1')
    if not same(args.get('state'), page.request.cookies.get(STATE_COOKIE)):
        return page.message('授权已失效', '微信授权已失效，请重新打开。', 400,
            link=manual, label='使用账号密码登录')
    page.set_cookie(STATE_COOKIE, None)
    wechat = Config.get_default()
    code = args.get('code')
    if not wechat or not code:
        return page.message('未授权', '没有获得微信授权。', 400, link=manual,
            label='使用账号密码登录')
    try:
        openid = wechat.oa_client().openid_from_code(code)
    except OAError as error:
        logger.warning('oauth: %s', error)
        return page.message('微信授权失败', '微信授权失败，请稍后再试。', 502,
            link=manual, label='使用账号密码登录')
    if page.tenant is not None:
        # signed in already: bind this WeChat to the account
        Binding.bind(page.tenant.web_user, wechat, openid)
        Session.write([page.tenant.session], {'dh_openid': openid})
        return page.go(page.url('account'))
    bound = Binding.search([('config', '=', wechat.id),
            ('openid', '=', openid), ('web_user.active', '=', True)],
        limit=1)
    if bound:
        binding, = bound
        key = binding.web_user.new_session()
        session, = Session.search([('key', '=', key)])
        Session.write([session], {'dh_openid': openid})
        Binding.write([binding], {'last_login': dt.datetime.now()})
        page.set_cookie(SESSION_COOKIE, key, max_age=30 * 24 * 3600)
        return page.go(page.url('meters'))
    page.set_cookie(PENDING_COOKIE, OAuthPending.put(wechat, openid),
        max_age=900)
    return page.go(manual)


@route('/logout', methods=['POST'], write=True)
def logout(page):
    Session = page.pool.get('web.user.session')
    Session.delete([page.tenant.session])
    page.set_cookie(SESSION_COOKIE, None)
    return page.go(page.url('login?manual=1'))


@route('/unbind', methods=['POST'], write=True)
def unbind(page):
    pool = page.pool
    Binding = pool.get('dh.wechat.binding')
    Session = pool.get('web.user.session')
    wanted = page.request.form.get('binding')
    binding = next((b for b in page.tenant.bindings()
            if str(b.id) == wanted), None)
    if binding is None:
        return page.not_found()
    sessions = Session.search([('user', '=', page.tenant.user_id),
            ('dh_openid', '=', binding.openid)])
    if sessions:
        Session.write(sessions, {'dh_openid': None})
    Binding.delete([binding])
    return page.go(page.url('account'))


# -- the pages ---------------------------------------------------------------
@route('/meters')
def meters(page):
    return page.html(pages.meters(page.base, page.tenant,
            portal.meter_cards(page.tenant)))


@route('/usage/<meter_id>')
def usage(page, meter_id):
    meter = page.tenant.meter(meter_id)
    if meter is None:
        return page.not_found()
    args = page.request.args
    view = 'year' if args.get('view') == 'year' else 'month'
    today = dt.date.today()
    period = today
    try:
        if view == 'year' and args.get('year'):
            year = int(args['year'])
            if 2000 <= year <= 2100:
                period = dt.date(year, 1, 1)
        elif args.get('month'):
            period = dt.date.fromisoformat(args['month'][:7] + '-01')
            if not 2000 <= period.year <= 2100:
                period = today
    except ValueError:
        period = today
    labels, values, _ = portal.usage(meter, view, period)
    return page.html(pages.usage(page.base, page.tenant, meter, view,
            period, labels, values, portal.UNITS.get(meter['utility'], ''),
            page.tenant.meters()))


@route('/history')
def history(page):
    tab = page.request.args.get('tab') or 'recharges'
    if tab not in {'recharges', 'refunds', 'allocations', 'statement'}:
        tab = 'recharges'
    recharges, refunds, allocations = portal.history(page.tenant)
    return page.html(pages.history(page.base, page.tenant, tab, recharges,
            refunds, allocations, page.tenant.wallets(),
            page.tenant.meters()))


@route('/statement.xlsx')
def statement(page):
    "The wallet's statement (对账单) for a period, per room if asked"
    from trytond.modules.dh_metering.xlsx_export import (
        criteria_title, write_xlsx)
    pool = page.pool
    Job = pool.get('dh.export.job')
    args = page.request.args
    wallet = page.tenant.wallet(args.get('wallet'))
    if wallet is None:
        return page.not_found()
    meter = None
    if args.get('meter'):
        meter = page.tenant.meter(args.get('meter'))
        if meter is None:
            return page.not_found()
    try:
        start = dt.date.fromisoformat(args.get('from') or '')
        end = dt.date.fromisoformat(args.get('to') or '')
    except ValueError:
        return page.message('日期有误', '请选择正确的开始和结束日期。', 400,
            link=page.url('history?tab=statement'))
    if end < start or (end - start).days > 366:
        return page.message('日期有误', '结束日期须不早于开始日期，且最长一年。',
            400, link=page.url('history?tab=statement'))
    criteria = {'wallet': wallet['id'], 'wallet_name': wallet['code'],
        'from_date': start.isoformat(), 'to_date': end.isoformat()}
    if meter:
        criteria.update(meter=meter['id'], meter_name=meter['name'])
    (model, context, domain, order, columns, fields_, row,
        pairs) = Job.report_spec('statement', criteria)
    Model = pool.get(model)
    records = Model.search_read(domain, order=order, fields_names=fields_)
    output = io.BytesIO()
    title = criteria_title(Job.report_title('statement'), pairs)
    write_xlsx(output, '对账单', title, columns, (row(r) for r in records))
    name = f'对账单-{wallet["code"]}-{start:%Y%m%d}-{end:%Y%m%d}.xlsx'
    response = Response(output.getvalue(), 200, content_type=(
            'application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet'))
    response.headers['Content-Disposition'] = (
        "attachment; filename=statement.xlsx; filename*=UTF-8''"
        + urllib.parse.quote(name))
    return page.finish(response)


@route('/alarms')
def alarms(page):
    from trytond.modules.dh_alarm.alarm import KIND_NAMES_ZH
    open_alarms, messages = portal.notices(page.tenant)
    return page.html(pages.alarms(page.base, page.tenant, open_alarms,
            messages, page.tenant.binding(), KIND_NAMES_ZH,
            saved=page.request.args.get('saved') == '1'))


@route('/alarms/subscribe', methods=['POST'], write=True)
def subscribe(page):
    Binding = page.pool.get('dh.wechat.binding')
    binding = page.tenant.binding()
    if binding is None:
        return page.message('未绑定微信', '请先在微信中打开并绑定账号。', 400,
            link=page.url('alarms'))
    form = page.request.form
    Binding.write([binding], {name: form.get(name) == '1' for name in [
                'notify_low_balance', 'notify_supply', 'notify_monthly',
                'notify_alarm']})
    return page.go(page.url('alarms?saved=1'))


@route('/account')
def account(page):
    return page.html(pages.account(page.base, page.tenant,
            page.tenant.bindings(), page.tenant.openid))


# -- recharge --------------------------------------------------------------------
def _recharge_form(page, selected=None, amount='', custom='', error=None,
        status=200):
    tenant = page.tenant
    wechat = tenant.config()
    targets = portal.recharge_targets(tenant)
    if selected is None:
        wanted = page.request.args.get('meter')
        meter = tenant.meter(wanted) if wanted else None
        if meter and meter['billing_mode'] == 'energy':
            selected = f'm{meter["id"]}'
        elif meter and meter['wallet']:
            selected = f'w{meter["wallet"]}'
        elif targets:
            selected = targets[0][0]
    need = not (tenant.openid and tenant.binding())
    return page.html(pages.recharge(page.base, tenant, targets,
            wechat.amount_presets() if wechat else [], selected, amount,
            custom, error=error, need_wechat=need,
            oauth_link=_oauth_link(page, wechat) if need else None,
            minimum=wechat.min_amount if wechat else None,
            maximum=wechat.max_amount if wechat else None), status)


@route('/recharge')
def recharge_form(page):
    return _recharge_form(page)


@route('/recharge', methods=['POST'], write=True)
def recharge(page):
    pool = page.pool
    Order = pool.get('dh.wechat.order')
    Wallet = pool.get('dh.wallet')
    Meter = pool.get('dh.meter')
    WebUser = pool.get('web.user')
    tenant = page.tenant
    form = page.request.form
    selected = form.get('target') or ''
    amount_text = (form.get('amount') or '').strip()[:20]
    custom = (form.get('custom') or '').strip()[:20]
    target = next((t for t in portal.recharge_targets(tenant)
            if t[0] == selected), None)

    def again(error, status=400):
        return _recharge_form(page, selected, amount_text, custom, error,
            status)
    if target is None:
        # another tenant's meter or wallet is simply not among the choices
        return again('请选择要充值的房间或钱包。', 404 if selected else 400)
    _, label, wallet, meter = target
    wechat = _wallet_config(pool, wallet)
    if wechat is None or not wechat.mchid:
        return again('本物业尚未开通微信支付。')
    try:
        amount = parse_amount(custom or amount_text, wechat.min_amount,
            wechat.max_amount)
    except AmountError as error:
        return again(str(error))
    binding = tenant.binding()
    if not tenant.openid or binding is None or binding.config != wechat:
        return again('微信支付需要在微信中打开并绑定账号。', 403)
    order = Order.start(wechat, WebUser(tenant.web_user.id),
        Wallet(wallet['id']), Meter(meter['id']) if meter else None,
        amount, tenant.openid, f'水电费充值-{label}')
    if order.state != 'pending':
        return again(f'微信支付下单失败，请稍后重试（{order.error or ""}）。',
            502)
    return page.go(page.url(f'order/{order.number}'))


def _wallet_config(pool, wallet):
    Config = pool.get('dh.wechat.config')
    return Config.for_company(wallet['company'])


def _order_of(page, number):
    Order = page.pool.get('dh.wechat.order')
    if not number or len(number) > 40:
        return None
    orders = Order.search([('number', '=', number),
            ('web_user', '=', page.tenant.user_id)], limit=1)
    return orders[0] if orders else None


@route('/order/<number>')
def order_page(page, number):
    order = _order_of(page, number)
    if order is None:
        return page.not_found()
    params = cashier = None
    if order.state == 'pending' and order.prepay_id:
        params = order.jsapi_params()
        if order.config.sandbox:
            query = dict(params, **{'return': page.public_url(order.config,
                        f'order/{order.number}')})
            cashier = (order.config.pay_gateway.rstrip('/')
                + '/fake/cashier?' + urllib.parse.urlencode(query))
    label = order.meter.name if order.meter else (
        f'钱包 {order.wallet.code}')
    return page.html(pages.order(page.base, page.tenant, order, params,
            page.url(f'order/{order.number}/status'), cashier, label))


@route('/order/<number>/status', write=True)
def order_status(page, number):
    order = _order_of(page, number)
    if order is None:
        return page.json({'error': 'not_found'}, 404)
    order.poll()
    Order = page.pool.get('dh.wechat.order')
    order = Order(order.id)
    state = order.state if order.state != 'created' else 'pending'
    delivery = order.delivery
    text = {'pending': '等待支付…', 'paid': '支付成功，已充值到钱包',
        'closed': '订单已关闭（未支付）', 'failed': '下单失败，请重新充值',
        'flagged': '支付金额与订单不符，物业将人工核对'}[state]
    detail = ''
    final = state in {'closed', 'failed', 'flagged'}
    if state == 'paid':
        recharge = order.recharge
        if recharge and recharge.mode == 'energy':
            text = {'paid': '支付成功，正在下发到电表…',
                'delivered': f'已下发到电表：{recharge.kwh} 度',
                'failed': '支付成功，下发到电表失败，请联系物业'}.get(
                recharge.state, '支付成功')
            detail = (f'购电 {recharge.kwh} 度，实缴 ¥{recharge.paid:.2f}，'
                f'钱包余额 ¥{recharge.wallet_after:.2f}')
            final = recharge.state in {'delivered', 'failed'}
        else:
            balance = order.wallet.balance
            detail = f'当前余额 ¥{balance:.2f}'
            final = True
    return page.json({'state': state, 'state_text': STATE_ZH.get(state),
            'delivery': delivery,
            'delivery_text': DELIVERY_ZH.get(delivery) if delivery else None,
            'text': text, 'detail': detail, 'final': final,
            'amount': str(order.amount)})


# -- WeChat Pay's notifications ----------------------------------------------
@app.route(PREFIX + '/pay/notify/<key>', methods=['POST'])
@set_max_request_size(64 * 1024)
@with_pool
@with_transaction(context=CONTEXT)
def pay_notify(request, pool, key):
    Config = pool.get('dh.wechat.config')
    Order = pool.get('dh.wechat.order')
    configs = Config.search([('notify_key', '=', key),
            ('active', '=', True)], limit=1) if key else []
    if not configs:
        return _notify_answer(404, {'code': 'FAIL', 'message': 'unknown'})
    headers = {name: request.headers.get(name) for name in [
            'Wechatpay-Signature', 'Wechatpay-Timestamp', 'Wechatpay-Nonce',
            'Wechatpay-Serial', 'Wechatpay-Signature-Type']}
    try:
        status, answer = Order.handle_notification(configs[0], headers,
            request.get_data())
    except (TransactionError, backend.DatabaseOperationalError):
        raise
    except Exception:
        Transaction().rollback()
        logger.exception('payment notification')
        return _notify_answer(500, {'code': 'FAIL', 'message': 'error'})
    return _notify_answer(status, answer)


def _notify_answer(status, body):
    if body is None:
        return Response(status=status)
    return Response(json.dumps(body, ensure_ascii=False), status,
        content_type='application/json; charset=utf-8')


# -- static files and anything else --------------------------------------------
_static_cache = {}


@app.route(PREFIX + '/static/<name>', methods=['GET'])
def static(request, database_name, name):
    if name not in STATIC_TYPES:
        return Response('not found', 404, content_type='text/plain')
    if name not in _static_cache:
        with open(os.path.join(STATIC, name), 'rb') as handle:
            _static_cache[name] = handle.read()
    response = Response(_static_cache[name], 200,
        content_type=STATIC_TYPES[name])
    response.headers['Cache-Control'] = 'public, max-age=3600'
    response.headers['X-Content-Type-Options'] = 'nosniff'
    return response


@route('/<path:rest>', methods=['GET', 'POST'], auth=False, csrf=False)
def unknown(page, rest):
    return page.not_found()
