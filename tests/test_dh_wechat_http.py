"""The tenant portal on a real trytond server (SQLite file, or PostgreSQL in
the PostgreSQL pass) with WeChat played by the loopback fake: sign-in,
throttling, CSRF, WeChat OAuth binding, isolation between tenants on
every route, the pages, and WeChat Pay — a good payment, forged, stale,
replayed and altered notifications, a late notification found by the
order query, an energy-mode recharge delivered to its meter."""
import datetime as dt
import io
import os
import re
import sys
import time
from decimal import Decimal

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wxtools  # noqa: E402

D = Decimal


@pytest.fixture(scope='module')
def portal():
    return wxtools.server()


def balance(portal, wallet):
    def query(pool):
        return pool.get('dh.wallet')(portal.ids[wallet]).balance
    return portal.run(query, readonly=True)


def recharges(portal, number):
    def query(pool):
        return pool.get('dh.recharge').search_count([('number', '=', number)])
    return portal.run(query, readonly=True)


def order_state(portal, number):
    def query(pool):
        order, = pool.get('dh.wechat.order').search([('number', '=', number)])
        return order.state, order.flag_reason
    return portal.run(query, readonly=True)


def start_order(portal, session, target, amount):
    token = portal.form_token(session)
    response = session.post(portal.base + '/recharge', data={'csrf': token,
            'target': target, 'custom': amount}, allow_redirects=False)
    assert response.status_code == 303, response.text
    number = response.headers['Location'].rsplit('/', 1)[1]
    return number


@pytest.fixture(scope='module')
def zhang(portal):
    "张伟, signed in through WeChat (bound: he can pay)"
    session = portal.browser(wechat=True)
    portal.bind(session, 'o-zhang-wx', 'zhangwei')
    return session


@pytest.fixture(scope='module')
def li(portal):
    session = portal.browser(wechat=True)
    portal.bind(session, 'o-li-wx', 'lina')
    return session


# -- sign in ------------------------------------------------------------------
def test_sign_in_and_session_cookie(portal):
    session = portal.browser()
    assert session.get(portal.base + '/meters').url.endswith('/login')
    response = portal.login(session, 'zhangwei', 'wrong', expect=401)
    assert '账号或密码错误' in response.text
    response = portal.login(session, 'zhangwei')
    assert response.headers['Location'].endswith('/dh/wx/meters')
    cookie = response.headers['Set-Cookie']
    assert 'dhwx_session=' in cookie and 'HttpOnly' in cookie
    assert 'SameSite=Lax' in cookie
    assert f'Path=/{wxtools.NAME}/dh/wx' in cookie
    page = session.get(portal.base + '/meters')
    assert page.status_code == 200
    assert '瀚15#601A' in page.text and '¥50.00' in page.text
    assert '李娜' not in page.text and '瀚15#602A' not in page.text
    assert page.headers['X-Frame-Options'] == 'DENY'
    assert "script-src 'self'" in page.headers['Content-Security-Policy']
    assert page.headers['Cache-Control'] == 'no-store'
    # sign out: the session is gone on the server too
    token = portal.form_token(session)
    session.post(portal.base + '/logout', data={'csrf': token})
    assert session.get(portal.base + '/meters').url.endswith('/login')


def test_sign_in_throttled(portal):
    "After 5 failures the account is refused, even with the right password"
    session = portal.browser()
    for _ in range(5):
        portal.login(session, 'wangfang', 'nope', expect=401)
    response = portal.login(session, 'wangfang', expect=429)
    assert '次数过多' in response.text
    # other accounts are not affected
    portal.login(portal.browser(), 'lina')


def test_csrf(portal, zhang):
    "Forms without the session's token or from another site are refused"
    before = balance(portal, 'w_zhang')
    for data, headers in [
            ({'target': f'w{portal.ids["w_zhang"]}', 'custom': '10'}, {}),
            ({'target': f'w{portal.ids["w_zhang"]}', 'custom': '10',
                    'csrf': 'forged'}, {}),
            ({'target': f'w{portal.ids["w_zhang"]}', 'custom': '10',
                    'csrf': portal.form_token(zhang)},
                {'Referer': 'https://evil.example/page'})]:
        response = zhang.post(portal.base + '/recharge', data=data,
            headers=headers, allow_redirects=False)
        assert response.status_code == 403, data
        assert '页面已过期' in response.text
    # a cross-site Origin is already refused by trytond's WSGI layer (it
    # aborts before any route; werkzeug answers that with a 500)
    response = zhang.post(portal.base + '/recharge', data={
            'target': f'w{portal.ids["w_zhang"]}', 'custom': '10',
            'csrf': portal.form_token(zhang)},
        headers={'Origin': 'https://evil.example'}, allow_redirects=False)
    assert response.status_code >= 400
    # the sign-in form has its own (double-submit) token
    response = requests.post(portal.base + '/login', data={
            'login': 'zhangwei', 'password': wxtools.PASSWORD},
        allow_redirects=False)
    assert response.status_code == 403
    assert balance(portal, 'w_zhang') == before


def test_wechat_binding(portal):
    "OAuth snsapi_base: unbound → password once → later visits need none"
    first = portal.browser(wechat=True)
    portal.fake.auto_openid = 'o-lina-phone'
    page = first.get(portal.base + '/login')      # inside WeChat: OAuth
    assert '/dh/wx/login?manual=1' in page.url and '登录并绑定微信' in page.text
    response = first.post(portal.base + '/login', data={
            'csrf': portal.csrf(page), 'login': 'lina',
            'password': wxtools.PASSWORD}, allow_redirects=False)
    assert response.status_code == 303
    later = portal.browser(wechat=True)
    page = later.get(portal.base + '/login')
    assert page.url.split('#')[0].endswith('/dh/wx/meters')
    assert '瀚15#603A' in page.text
    account = later.get(portal.base + '/account')
    assert 'o-li…hone' in account.text
    # the binding of the WeChat in use (marked 当前)
    binding = re.search(r'当前</span>.*?name="binding" value="(\d+)"',
        account.text, re.S)[1]
    # unbind: the next visit asks for the password again
    later.post(portal.base + '/unbind', data={'binding': binding,
            'csrf': portal.csrf(account)})
    page = portal.browser(wechat=True).get(portal.base + '/login')
    assert '/login?manual=1' in page.url and '登录并绑定微信' in page.text
    # a bad OAuth state is refused
    response = first.get(portal.base + '/oauth/callback?code=x&state=y')
    assert response.status_code == 400


def test_isolation_on_every_route(portal, zhang, li):
    "张伟 changes ids in URLs and forms: 李娜's things are never found"
    from trytond.wsgi import app
    ids = portal.ids
    li_number = start_order(portal, li, f'w{ids["w_li"]}', '12.00')
    li_account = li.get(portal.base + '/account')
    li_binding = re.search(r'name="binding" value="(\d+)"',
        li_account.text)[1]
    li_bindings = li_account.text.count('解除绑定')
    token = portal.form_token(zhang)
    get_checks = {
        '/usage/<meter_id>': [f'/usage/{ids["b"]}', f'/usage/{ids["e"]}',
            '/usage/abc', '/usage/999999'],
        '/order/<number>': [f'/order/{li_number}', '/order/WXnope'],
        '/order/<number>/status': [f'/order/{li_number}/status'],
        '/statement.xlsx': [
            f'/statement.xlsx?wallet={ids["w_li"]}&from=2020-01-01'
            '&to=2020-02-01',
            f'/statement.xlsx?wallet={ids["w_zhang"]}&meter={ids["b"]}'
            '&from=2020-01-01&to=2020-02-01'],
        }
    for rule, paths in get_checks.items():
        for path in paths:
            response = zhang.get(portal.base + path, allow_redirects=False)
            assert response.status_code == 404, (path, response.text[:200])
    post_checks = {
        '/recharge': [{'target': f'w{ids["w_li"]}', 'custom': '10'},
            {'target': f'm{ids["e"]}', 'custom': '10'}],
        '/unbind': [{'binding': li_binding}],
        }
    for path, forms in post_checks.items():
        for form in forms:
            response = zhang.post(portal.base + path, data=dict(form,
                    csrf=token), allow_redirects=False)
            assert response.status_code == 404, (path, form)
    # pages that list things list only his
    for path in ['/meters', '/history', '/history?tab=allocations',
            '/history?tab=refunds', '/history?tab=statement', '/alarms',
            '/account', '/recharge', f'/recharge?meter={ids["e"]}',
            f'/usage/{ids["a"]}']:
        text = zhang.get(portal.base + path).text
        for other in ['瀚15#602A', '瀚15#603A', '东政', '李娜', '12.00',
                'o-li']:
            assert other not in text, (path, other)
    # 李娜's order and binding are untouched
    assert order_state(portal, li_number)[0] == 'pending'
    assert li.get(portal.base + '/account').text.count('解除绑定') == \
        li_bindings
    # every route of the portal with an id in its URL or form is above
    rules = {r.rule.split('/dh/wx', 1)[1] for r in app.url_map.iter_rules()
        if '/dh/wx' in r.rule}
    assert rules == {'/', '/login', '/oauth', '/oauth/callback', '/logout',
        '/unbind', '/meters', '/usage/<meter_id>', '/history',
        '/statement.xlsx', '/alarms', '/alarms/subscribe', '/account',
        '/recharge', '/order/<number>', '/order/<number>/status',
        '/pay/notify/<key>', '/static/<name>', '/<path:rest>'}, rules


def test_amounts_validated(portal, zhang):
    "Bad amounts get a clear message and make no order"
    token = portal.form_token(zhang)
    target = f'w{portal.ids["w_zhang"]}'
    for custom, amount, message in [('abc', '', '不是有效的金额'),
            ('0.001', '', '两位小数'), ('0.5', '', '不能少于'),
            ('100000', '', '不能超过'), ('', '', '请选择或输入'),
            ('-5', '', '不能少于')]:
        response = zhang.post(portal.base + '/recharge', data={
                'csrf': token, 'target': target, 'custom': custom,
                'amount': amount}, allow_redirects=False)
        assert response.status_code == 400, custom
        assert message in response.text, (custom, response.text[:300])
        assert f'value="{custom}"' in response.text   # kept for correction
    # a preset works (and is the amount used)
    response = zhang.post(portal.base + '/recharge', data={'csrf': token,
            'target': target, 'amount': '50.00'}, allow_redirects=False)
    assert response.status_code == 303
    number = response.headers['Location'].rsplit('/', 1)[1]
    assert portal.fake.orders[number]['amount']['total'] == 5000


def test_payment_through_jsapi(portal, zhang):
    "The page's JSAPI parameters pay (paySign checked), notified, credited"
    before = balance(portal, 'w_zhang')
    number = start_order(portal, zhang, f'w{portal.ids["w_zhang"]}',
        '100.00')
    page = zhang.get(portal.base + f'/order/{number}')
    assert page.status_code == 200 and '¥100.00' in page.text
    params = re.search(r'<script type="application/json" id="jsapi">(.*?)'
        '</script>', page.text).group(1)
    status = zhang.get(portal.base + f'/order/{number}/status').json()
    assert (status['state'], status['final']) == ('pending', False)
    # a tampered paySign is refused by WeChat
    import json
    bad = dict(json.loads(params), paySign='AAAA')
    answer = requests.post(portal.fake.url + '/fake/jsapi-pay', json=bad)
    assert answer.json()['err_msg'] == 'get_brand_wcpay_request:fail'
    answer = requests.post(portal.fake.url + '/fake/jsapi-pay',
        data=params.encode(), headers={'Content-Type': 'application/json'})
    assert answer.json() == {'err_msg': 'get_brand_wcpay_request:ok',
        'notified': 204}
    status = zhang.get(portal.base + f'/order/{number}/status').json()
    assert (status['state'], status['final']) == ('paid', True)
    assert balance(portal, 'w_zhang') == before + D(100)
    history = zhang.get(portal.base + '/history').text
    assert '+¥100.00' in history and '微信' in history


def test_notifications_forged_stale_replayed_altered(portal, zhang):
    before = balance(portal, 'w_zhang')
    number = start_order(portal, zhang, f'w{portal.ids["w_zhang"]}',
        '20.00')
    portal.fake.pay(number, notify=False)
    assert portal.fake.notify(number, forge=True) == 401
    assert portal.fake.notify(number, timestamp=time.time() - 400) == 400
    assert portal.fake.notify(number,
        url=portal.base + '/pay/notify/wrong-key') == 404
    assert balance(portal, 'w_zhang') == before
    assert order_state(portal, number)[0] == 'pending'
    assert portal.fake.notify(number) == 204
    body = portal.fake.notifications[-1]['body']
    for _ in range(3):
        assert portal.fake.notify(number, body=body) == 204   # replayed
    assert portal.fake.notify(number) == 204              # a new id, same
    assert balance(portal, 'w_zhang') == before + D(20)
    assert recharges(portal, number) == 1
    # an authentic notification of a different amount: refused, flagged
    number = start_order(portal, zhang, f'w{portal.ids["w_zhang"]}',
        '30.00')
    assert portal.fake.pay(number, paid_total=1) == 400
    state, reason = order_state(portal, number)
    assert state == 'flagged' and 'amount 1 fen' in reason
    status = zhang.get(portal.base + f'/order/{number}/status').json()
    assert status['state'] == 'flagged' and '人工核对' in status['text']
    assert balance(portal, 'w_zhang') == before + D(20)
    assert recharges(portal, number) == 0


def test_late_notification_found_by_query(portal, zhang):
    "No notification: the status page's order query credits it"
    before = balance(portal, 'w_zhang')
    number = start_order(portal, zhang, f'w{portal.ids["w_zhang"]}',
        '40.00')
    portal.fake.pay(number, notify=False)
    status = zhang.get(portal.base + f'/order/{number}/status').json()
    assert status['state'] == 'pending'      # too early to ask WeChat

    def age(pool):
        from trytond.transaction import Transaction
        Order = pool.get('dh.wechat.order')
        table = Order.__table__()
        Transaction().connection.cursor().execute(*table.update(
                [table.create_date], [dt.datetime.now()
                    - dt.timedelta(minutes=1)], where=table.number == number))
    portal.run(age)
    status = zhang.get(portal.base + f'/order/{number}/status').json()
    assert status['state'] == 'paid'
    assert balance(portal, 'w_zhang') == before + D(40)
    # the notification arriving after all credits nothing more
    assert portal.fake.notify(number) == 204
    assert balance(portal, 'w_zhang') == before + D(40)


def test_energy_recharge_delivered(portal, li):
    "李娜 buys kWh for the energy-mode meter: 已支付 → 已下发到表"
    before = balance(portal, 'w_li')
    number = start_order(portal, li, f'm{portal.ids["e"]}', '1000.00')
    portal.fake.pay(number)
    status = li.get(portal.base + f'/order/{number}/status').json()
    assert status['state'] == 'paid' and status['delivery'] == 'paid'
    assert '正在下发' in status['text'] and not status['final']
    # whole kWh at 1.2, the change stays in the wallet (电度方式)
    kwh = int((D(1000) + max(before, D(0))) / D('1.2'))
    assert f'购电 {kwh} 度' in status['detail'], (before, status)
    assert balance(portal, 'w_li') == D(1000) + before - kwh * D('1.2')

    def confirm(pool):
        Recharge = pool.get('dh.recharge')
        Command = pool.get('dh.command')
        recharge, = Recharge.search([('number', '=', number)])
        Command.report(recharge.command.id, 'sent')
        Command.report(recharge.command.id, 'confirmed')
    portal.run(confirm)
    status = li.get(portal.base + f'/order/{number}/status').json()
    assert status['delivery'] == 'delivered' and status['final']
    assert '已下发到电表' in status['text']


def test_pages(portal, li):
    "我的表计, usage charts, history with allocations, statement, alarms"
    ids = portal.ids
    page = li.get(portal.base + '/meters').text
    # one wallet for three rooms (多间统一充值), the energy meter's kWh
    assert '多间统一充值' in page and '剩余电量' in page
    for name in ['瀚15#602A', '瀚15#603A', '东政']:
        assert name in page
    assert '报警' in page or '正常' in page
    zhang = portal.browser()
    portal.login(zhang, 'zhangwei')
    usage = zhang.get(portal.base + f'/usage/{ids["a"]}').text
    assert '<svg' in usage and 'class="bar"' in usage and '合计' in usage
    year = zhang.get(portal.base + f'/usage/{ids["a"]}?view=year').text
    assert '每月用量' in year and '<rect' in year
    bad = zhang.get(portal.base + f'/usage/{ids["a"]}?view=month&month=xx')
    assert bad.status_code == 200
    allocations = li.get(portal.base + '/history?tab=allocations').text
    assert '公摊' in allocations and '瀚15#602公' in allocations
    assert '按户均摊' in allocations and '分摊用量' in allocations
    today = dt.date.today()
    response = li.get(portal.base + '/statement.xlsx', params={
            'wallet': ids['w_li'], 'from': f'{today:%Y-%m-01}',
            'to': f'{today:%Y-%m-%d}'})
    assert response.status_code == 200
    assert 'attachment' in response.headers['Content-Disposition']
    import openpyxl
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    text = ' '.join(str(c) for row in book.active.iter_rows(values_only=True)
        for c in row if c is not None)
    assert '对账单' in text and '分摊' in text
    response = li.get(portal.base + '/statement.xlsx', params={
            'wallet': ids['w_li'], 'from': '2026-02-01', 'to': '2025-01-01'})
    assert response.status_code == 400 and '日期有误' in response.text
    alarms = li.get(portal.base + '/alarms')
    assert '过压' in alarms.text and '因余额不足已断电' in alarms.text
    token = portal.csrf(alarms)
    li.post(portal.base + '/alarms/subscribe', data={'csrf': token,
            'notify_low_balance': '1', 'notify_alarm': '1'})

    def subscribed(pool):
        binding, = pool.get('dh.wechat.binding').search([
                ('openid', '=', 'o-li-wx')])
        return (binding.notify_low_balance, binding.notify_supply,
            binding.notify_alarm)
    assert portal.run(subscribed, readonly=True) == (True, False, True)
    css = requests.get(portal.base + '/static/portal.css')
    assert css.status_code == 200 and 'text/css' in css.headers[
        'Content-Type']
    assert requests.get(portal.base + '/static/nope.css').status_code == 404
    assert requests.get(portal.base + '/no/such/page').status_code == 404
