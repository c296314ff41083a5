"""The tenant portal in headless Debian chromium (Playwright), as a phone in
WeChat: a mobile viewport, WeChat's user agent and a WeixinJSBridge
stand-in that hands the page's JSAPI parameters to the loopback fake
(which checks paySign, pays and notifies the server).  李娜 comes in
through WeChat OAuth, binds with her password, sees her rooms and one
wallet, starts a recharge, pays; the page follows the order to 支付成功 and
the balance and history show it.  A screenshot of every page goes to
test-output/."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browsertools  # noqa: E402
import wxtools  # noqa: E402

OUTPUT = browsertools.OUTPUT
# what WeChat's webview provides, played by the fake
BRIDGE = '''
window.WeixinJSBridge = {invoke: function (name, params, done) {
  fetch('%s/fake/jsapi-pay', {method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(params)})
    .then(function (r) { return r.json(); })
    .then(done)
    .catch(function () { done({err_msg: 'get_brand_wcpay_request:fail'}); });
}};
'''


@pytest.fixture(scope='module')
def portal():
    return wxtools.server()


def test_tenant_pays_in_wechat(portal):
    browsertools.require_chromium()
    from playwright.sync_api import expect, sync_playwright
    portal.fake.auto_openid = 'o-e2e-lina-phone'

    def wallet_balance(pool):
        return pool.get('dh.wallet')(portal.ids['w_li']).balance
    before = portal.run(wallet_balance, readonly=True)
    with sync_playwright() as p:
        browser = browsertools.launch(p)
        context = browser.new_context(viewport={'width': 390, 'height': 844},
            device_scale_factor=2, is_mobile=True, has_touch=True,
            user_agent=wxtools.WECHAT_UA, locale='zh-CN')
        context.add_init_script(BRIDGE % portal.fake.url)
        page = context.new_page()

        def shot(name):
            page.screenshot(path=os.path.join(OUTPUT, f'wechat_{name}.png'),
                full_page=True)
        # inside WeChat: OAuth first; unbound, so the password once
        page.goto(portal.base + '/login')
        expect(page.get_by_role('button', name='登录并绑定微信')).to_be_visible()
        page.fill('input[name=login]', 'lina')
        page.fill('input[name=password]', wxtools.PASSWORD)
        shot('01_login_bind')
        page.get_by_role('button', name='登录并绑定微信').click()
        expect(page.locator('header h1')).to_have_text('我的表计')
        wallet = page.locator('section.wallet .big')
        expect(wallet).to_have_text(f'¥{before:,.2f}')
        for name in ['瀚15#602A', '瀚15#603A', '东政']:
            expect(page.locator('.meter .name', has_text=name)).to_be_visible()
        shot('02_meters')
        page.locator('.meter', has_text='瀚15#602A').get_by_role(
            'link', name='用量').click()
        expect(page.locator('svg.chart rect.bar').first).to_be_visible()
        shot('03_usage')
        page.goto(portal.base + '/history?tab=allocations')
        expect(page.get_by_text('按户均摊').first).to_be_visible()
        shot('04_allocations')
        page.get_by_role('link', name='充值').last.click()
        expect(page.locator('header h1')).to_have_text('充值')
        page.locator('label.choice', has_text='钱包余额').click()
        page.locator('label.chip', has_text='100元').click()
        shot('05_recharge')
        page.get_by_role('button', name='微信支付').click()
        # the page hands the JSAPI parameters to the bridge, WeChat pays
        # and notifies the server, the page follows the order
        expect(page.locator('#status')).to_have_text('支付成功，已充值到钱包',
            timeout=30000)
        expect(page.locator('ol.steps li.done')).to_have_count(2)
        shot('06_paid')
        page.get_by_role('link', name='返回我的表计').click()
        expect(wallet).to_have_text(f'¥{before + 100:,.2f}')
        shot('07_meters_after')
        page.get_by_role('link', name='记录').click()
        expect(page.get_by_text('+¥100.00').first).to_be_visible()
        shot('08_history')
        page.get_by_role('link', name='提醒').click()
        expect(page.get_by_text('过压').first).to_be_visible()
        shot('09_alarms')
        browser.close()
    assert portal.run(wallet_balance, readonly=True) == before + 100
