"""The screenshots of the Chinese manuals (docs/zh_CN/), taken from the
real product: `dh demo --no-serve` builds a small plaza once, a real
trytond serves it, and headless Debian chromium signs in as each role
(收费员 clerk, 财务 finance, 片区经理 area manager, 维护人员 maintenance,
the administrator) to the web client (sao, zh_CN) and as a tenant to the
portal on a phone-size screen, walking the screens the manuals describe.
Each step waits for the labels the manuals quote, so a renamed screen or
label fails here.  Every name of tests/manualshots.py must be produced.

The pictures go to test-output/manual/; with DH_MANUAL_IMAGES=1 (`make
manual-images`) they replace docs/zh_CN/images/, to be committed."""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browsertools  # noqa: E402
import manualshots  # noqa: E402

ROOT = manualshots.ROOT
BIN = os.path.dirname(sys.executable)
WORK = os.path.join(ROOT, 'var', 'test', 'manual')
DB = 'dhmanual'
PASSWORD = 'dhDemo-2026x'
ADMIN_PASSWORD = 'dhAdmin-2026x'
TENANT = '13800000000'          # the demo tenant renting several rooms
TENANT_PASSWORD = 'dhTenant-2026x'
DESKTOP = {'width': 1600, 'height': 900}
PHONE = {'width': 390, 'height': 844}
# generous: the suite shares a loaded machine, sao then waits on the server
WAIT = 120000

pytestmark = pytest.mark.sqlite_only


def output_dir():
    if os.environ.get('DH_MANUAL_IMAGES') == '1':
        return manualshots.IMAGES
    return os.path.join(browsertools.OUTPUT, 'manual')



@pytest.fixture(scope='module')
def server():
    browsertools.require_chromium()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    port = browsertools.demo_port()
    built = subprocess.run([os.path.join(BIN, 'dh'), 'demo', '--no-serve',
            '--db', os.path.join(WORK, f'{DB}.sqlite'), '--port', str(port),
            '--scale', '0.1', '--days', '2'],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    assert f'{TENANT} / {TENANT_PASSWORD}' in built.stdout
    with browsertools.demo_server(WORK, DB, port) as url:
        yield url


class Sao:
    "A signed-in sao page and the few gestures the manuals describe"

    def __init__(self, page, folder, taken):
        self.page = page
        self.folder = folder
        self.taken = taken

    def shot(self, name, page=None, full_page=False, menu=False):
        "Screenshot; sao's menu hidden (its own toggle) unless ``menu``"
        assert name in manualshots.SHOTS, name
        hide = (page is None and not menu
            and not self.page.locator('.modal:visible').count())
        page = page or self.page
        if hide:
            self.toggle_menu()
        page.wait_for_timeout(600)   # let sao finish painting
        if manualshots.EXT == '.jpg':
            options = {'type': 'jpeg', 'quality': manualshots.QUALITY}
        else:
            options = {'type': 'png'}
        page.screenshot(path=os.path.join(self.folder,
                name + manualshots.EXT), full_page=full_page, **options)
        self.taken.add(name)
        if hide:
            self.toggle_menu()

    def text(self, text, timeout=WAIT):
        "Wait for ``text`` in the current tab (or dialog)"
        self.page.get_by_text(text, exact=True).locator(
            'visible=true').first.wait_for(timeout=timeout)

    def menu(self, *path):
        "Open a menu entry (its folders first) in the menu on the left"
        menu = self.page.locator('#menu')
        for i, name in enumerate(path):
            entry = menu.get_by_text(name, exact=True).first
            entry.wait_for(timeout=WAIT)
            if i < len(path) - 1:
                # open a folder only when closed
                if not self._expanded(menu, path[i + 1]):
                    entry.click()
                    menu.get_by_text(path[i + 1], exact=True).first.wait_for(
                        timeout=WAIT)
            else:
                self._open(entry, name)

    def _open(self, entry, name):
        """Click a menu entry until it opens its tab, a dialog or a window
        (a click sao took before it was ready is lost: click again, unless
        sao says it is busy 正在处理 with the server)"""
        self.settle()
        pages = len(self.page.context.pages)
        tab = self.page.locator('#tablist li', has_text=name)
        busy = self.page.get_by_text('正在处理', exact=True).locator(
            'visible=true')
        clicks = 0
        for tick in range(480):     # up to 2 minutes on a loaded machine
            if (tab.count() or self.page.locator(
                        '.modal-dialog:visible').count()
                    or len(self.page.context.pages) > pages):
                return
            if tick % 40 == 0 and clicks < 3 and not busy.count():
                entry.click()
                clicks += 1
            self.page.wait_for_timeout(250)
        raise AssertionError(f'the menu entry {name} opened nothing')

    @staticmethod
    def _expanded(menu, child):
        return menu.get_by_text(child, exact=True).locator(
            'visible=true').count() > 0

    def tab(self):
        return self.page.locator('#tabcontent .tab-pane.active')

    def rows(self, timeout=WAIT):
        self.tab().locator('tbody tr').first.wait_for(timeout=timeout)

    def settle(self):
        "Wait for closing dialogs (fading out, they swallow clicks)"
        for _ in range(480):
            if not self.page.locator(
                    '.modal:visible, .modal-backdrop').count():
                break
            self.page.wait_for_timeout(250)
        self.page.wait_for_timeout(300)

    def close_tab(self):
        "Close the current tab, not saving (the manuals' walks change nothing)"
        self.settle()
        self.page.locator('#tablist li.active button.close').click()
        self.page.wait_for_timeout(400)
        discard = self.page.locator('.modal:visible').get_by_role('button',
            name='否', exact=True)
        if discard.count():
            discard.first.click()
            self.page.wait_for_timeout(300)

    def close_all(self):
        while self.page.locator('#tablist li button.close').count():
            self.close_tab()

    def toggle_menu(self):
        self.page.locator('a.navbar-brand[data-toggle="menu"]').click()
        self.page.evaluate('() => document.activeElement.blur()')
        self.page.wait_for_timeout(300)

    def search(self, text):
        field = self.tab().locator('input[placeholder="查找"]')
        field.fill(text)
        field.press('Enter')
        self.page.wait_for_timeout(1500)

    def open_row(self, text):
        "Select a row and switch to the form (no double-click: sao opens a tab)"
        self.tab().locator('tbody tr', has_text=text).first.click()
        self.tab().locator('button[title="切换"]').first.click()
        self.page.wait_for_timeout(1500)

    def action(self, name):
        self.tab().locator('button[title="执行操作"]').click()
        self.page.locator('.dropdown-menu:visible').get_by_text(
            name, exact=True).first.click()

    def dialog(self):
        return self.page.locator('.modal-dialog:visible').last

    def button(self, name, scope=None):
        (scope or self.page).get_by_role('button', name=name,
            exact=True).locator(
            'visible=true').first.click()


def sign_in(browser, url, login, password, folder, taken, shoot_login=False):
    context = browser.new_context(viewport=DESKTOP, locale='zh-CN')
    context.set_default_timeout(WAIT)
    page = context.new_page()
    sao = Sao(page, folder, taken)
    if shoot_login:
        page.goto(url + '/')
        page.wait_for_selector('#login', timeout=WAIT)
        if page.locator('select#database').is_visible():
            page.select_option('select#database', DB)
        page.fill('#login', login)
        sao.shot('login', page=page)
    browsertools.sao_sign_in(page, url, DB, login, password)
    menu = page.locator('#menu').get_by_text('集抄系统', exact=True).first
    wizard = page.locator('#tabcontent').get_by_role('button', name='取消',
        exact=True).locator('visible=true')
    for _ in range(60):
        if menu.is_visible():
            break
        if page.get_by_text('模块配置', exact=True).locator(
                'visible=true').count() and wizard.count():
            # the administrator's first sign-in offers Tryton's
            # configuration wizard (maintenance manual: cancel it)
            wizard.first.click()
        page.wait_for_timeout(500)
    menu.wait_for(timeout=WAIT)
    return context, sao


def expect(locator):
    from playwright.sync_api import expect
    return expect(locator)


def clerk(sao):
    sao.menu('集抄系统', '计费', '充值查询')
    sao.rows()
    sao.close_tab()
    sao.menu('集抄系统', '报表', '当前数据')
    sao.rows()
    sao.shot('clerk_menu', menu=True)
    sao.search('2001')
    sao.text('东政')
    sao.shot('clerk_current_data')
    sao.open_row('2001')
    sao.text('表计地址:')
    sao.shot('clerk_meter_form')
    sao.action('电量充值')
    dialog = sao.dialog()
    dialog.get_by_text('结算后购电量(度):').wait_for(timeout=WAIT)
    expect(dialog.locator('input[name="number"]:visible')).not_to_have_value(
        '', timeout=WAIT)
    field = dialog.locator('input[name="amount"]:visible')
    kwh = dialog.locator('input[name="kwh"]:visible')
    for attempt in range(3):   # a busy machine: sao may still be loading
        field.click()
        field.fill('1000')
        field.press('Tab')
        try:
            expect(kwh).to_have_value('833', timeout=30000)
            break
        except AssertionError:
            if attempt == 2:
                raise
    sao.shot('clerk_counter')
    sao.button('充值', dialog)
    dialog.wait_for(state='hidden', timeout=WAIT)
    sao.close_all()
    sao.menu('集抄系统', '计费', '充值查询')
    sao.rows()
    sao.text('电度方式(表端预付费)')
    sao.shot('clerk_recharges')
    sao.close_tab()
    sao.menu('集抄系统', '计费', '退费查询')
    sao.page.wait_for_timeout(1500)
    sao.shot('clerk_refunds')
    sao.close_tab()
    sao.menu('集抄系统', '计费', '钱包')
    sao.rows()
    sao.shot('clerk_wallets')
    sao.search('东政')
    sao.open_row('东政')
    sao.shot('clerk_wallet_form')
    sao.close_all()


def finance(sao):
    sao.menu('集抄系统', '计费', '钱包明细')
    sao.rows()
    sao.shot('finance_menu', menu=True)
    sao.shot('finance_wallet_lines')
    sao.close_tab()
    sao.menu('集抄系统', '计费', '钱包')
    sao.rows()
    sao.open_row('W0000')
    sao.action('导出对账单')
    sao.dialog().get_by_text('导出', exact=True).first.wait_for(
        timeout=WAIT)
    sao.shot('finance_statement')
    sao.button('取消', sao.dialog())
    sao.close_all()
    sao.menu('集抄系统', '计费', '对账')
    sao.dialog().wait_for(timeout=WAIT)
    sao.page.wait_for_timeout(1500)
    sao.shot('finance_reconcile')
    sao.button('关闭', sao.dialog())
    sao.close_all()
    sao.menu('集抄系统', '计费', '费率')
    sao.rows()
    sao.shot('finance_tariffs')
    sao.close_tab()
    sao.menu('集抄系统', '计费', '分摊')
    sao.rows()
    sao.shot('finance_allocations')
    sao.close_tab()
    sao.menu('集抄系统', '微信', '微信支付订单')
    sao.page.wait_for_timeout(1500)
    sao.shot('finance_wechat_orders')
    sao.close_all()


def manager(sao):
    sao.menu('集抄系统', '报表', '当前数据')
    sao.rows()
    sao.text('唐渠')
    sao.page.locator('#menu').get_by_text('报警', exact=True).first.click()
    sao.shot('manager_menu', menu=True)
    sao.shot('manager_current_data')
    sao.tab().locator('tbody tr').first.click()
    sao.action('导出 Excel')
    sao.dialog().get_by_text('导出', exact=True).first.wait_for(
        timeout=WAIT)
    sao.shot('manager_export')
    sao.button('导出', sao.dialog())
    sao.dialog().wait_for(state='hidden', timeout=WAIT)
    sao.close_all()
    sao.menu('集抄系统', '报表', '日用量')
    sao.rows()
    sao.shot('manager_daily_usage')
    sao.close_tab()
    sao.menu('集抄系统', '报表', '用量报表')
    sao.rows()
    sao.shot('manager_usage_report')
    sao.close_tab()
    sao.menu('集抄系统', '报表', '状态看板')
    sao.page.wait_for_timeout(2000)
    sao.shot('manager_status_count')
    sao.close_tab()
    sao.menu('集抄系统', '报表', '日用量图表')
    sao.page.wait_for_timeout(2500)
    sao.shot('manager_usage_chart')
    sao.close_tab()
    sao.menu('集抄系统', '报表', 'Excel 导出')
    sao.rows()
    sao.shot('manager_export_jobs')
    sao.close_tab()
    sao.menu('集抄系统', '报警', '未处理报警')
    sao.rows()
    sao.shot('manager_open_alarms')
    sao.tab().locator('tbody tr').first.click()
    sao.action('确认报警')
    note = sao.dialog().locator('textarea:visible')
    note.wait_for(timeout=WAIT)
    sao.dialog().get_by_text('备注', exact=True).wait_for(timeout=WAIT)
    note.fill('已派人现场查看')
    sao.shot('manager_acknowledge')
    sao.button('取消', sao.dialog())
    sao.close_all()
    with sao.page.context.expect_page(timeout=WAIT) as opened:
        sao.menu('集抄系统', '报表', '状态报警界面')
    board = opened.value
    board.set_viewport_size(DESKTOP)
    board.wait_for_selector('body[data-loaded="1"]', timeout=WAIT)
    sao.shot('manager_board', page=board)
    board.close()


def maintenance(sao):
    sao.menu('集抄系统', '采集管理', '通道')
    sao.rows()
    sao.shot('maint_menu', menu=True)
    sao.shot('maint_channels')
    sao.open_row('127.0.0.1')
    sao.shot('maint_channel_form')
    sao.close_tab()
    # an NB-IoT / 4G channel: the form of a new one, not saved
    sao.menu('集抄系统', '采集管理', '通道')
    sao.rows()
    sao.tab().locator('button[title="新建"]').first.click()
    kind = sao.tab().locator('select[name="kind"]:visible')
    kind.wait_for(timeout=WAIT)
    kind.select_option(label='MQTT 服务器 (NB-IoT / 4G)')
    kind.press('Tab')
    sao.tab().locator('input[name="name"]:visible').fill('NB 表 MQTT')
    sao.tab().get_by_role('tab', name='MQTT 服务器', exact=True).click()
    sao.text('数据上报主题:')
    sao.shot('maint_mqtt_channel')
    sao.close_tab()
    sao.menu('集抄系统', '采集管理', '抄表计划')
    sao.rows()
    sao.shot('maint_plans')
    sao.close_tab()
    sao.menu('集抄系统', '采集管理', '表计命令')
    sao.page.wait_for_timeout(1500)
    sao.shot('maint_commands')
    sao.close_tab()
    sao.menu('集抄系统', '档案管理', '表计')
    sao.rows()
    sao.shot('maint_meters')
    sao.open_row('东1#101A')
    sao.tab().get_by_role('tab', name='状态').click()
    sao.page.wait_for_timeout(800)
    sao.shot('maint_meter_status')
    sao.action('换表')
    dialog = sao.dialog()
    dialog.get_by_text('旧表止码:').wait_for(timeout=WAIT)
    dialog.get_by_text('新表起码:').wait_for(timeout=WAIT)
    sao.page.wait_for_timeout(1000)
    sao.shot('maint_replace')
    sao.button('取消', dialog)
    sao.close_all()
    sao.menu('集抄系统', '档案管理', '导入表计档案')
    sao.dialog().wait_for(timeout=WAIT)
    sao.shot('maint_import')
    sao.button('取消', sao.dialog())
    sao.close_all()
    sao.menu('集抄系统', '档案管理', '区域树')
    sao.rows()
    sao.shot('maint_areas')
    sao.close_tab()
    sao.menu('集抄系统', '报警', '报警设置')
    sao.rows()
    sao.open_row('居民用电')
    sao.shot('maint_profile')
    sao.close_tab()
    sao.menu('集抄系统', '报警', '消息')
    sao.rows()
    sao.shot('maint_notifications')
    sao.close_all()


def administrator(sao):
    sao.menu('集抄系统', '档案管理', '权限分配')
    dialog = sao.dialog()
    user = dialog.locator('input[name="user"]:visible')
    user.fill('唐渠片区经理')
    user.press('Tab')
    sao.page.wait_for_timeout(1500)
    if sao.page.get_by_text('搜索 用户').locator('visible=true').count():
        search = sao.dialog()
        search.locator('tbody tr', has_text='manager_tangqu').first.click()
        sao.button('确定', search)
        sao.page.wait_for_timeout(1000)
    dialog = sao.dialog()
    query = dialog.locator('input[name="text"]:visible')
    query.fill('瀚1#501A')
    sao.button('查询', dialog)
    dialog.locator('tbody tr', has_text='瀚1#501A').first.wait_for(
        timeout=WAIT)
    sao.shot('admin_assign')
    sao.button('关闭', dialog)
    sao.close_all()
    sao.menu('集抄系统', '档案管理', '表计')
    sao.rows()
    sao.search('2001')
    sao.open_row('2001')
    sao.action('远程清零')
    dialog = sao.dialog()
    dialog.get_by_text('剩余电量（最近读数）:').wait_for(timeout=WAIT)
    reason = dialog.locator('input[name="reason"]:visible')
    reason.first.fill('住户退租，清零后余额退回钱包')
    sao.page.wait_for_timeout(1000)
    sao.shot('admin_clear')
    sao.button('取消', dialog)
    sao.close_all()
    sao.menu('集抄系统', '报警', '报警配置')
    sao.page.wait_for_timeout(2000)
    sao.shot('admin_alarm_config')
    sao.close_tab()
    sao.menu('集抄系统', '集成接口', '接口令牌')
    sao.rows()
    sao.shot('admin_tokens')
    sao.close_tab()
    sao.menu('集抄系统', '集成接口', '接口调用记录')
    sao.page.wait_for_timeout(1500)
    sao.shot('admin_api_calls')
    sao.close_all()


def tenant(browser, url, folder, taken):
    "The portal on a phone-size screen (outside WeChat: password sign-in)"
    context = browser.new_context(viewport=PHONE, is_mobile=True,
        has_touch=True, locale='zh-CN')
    context.set_default_timeout(WAIT)
    page = context.new_page()
    sao = Sao(page, folder, taken)
    base = f'{url}/{DB}/dh/wx'
    page.goto(base + '/login')
    page.fill('input[name=login]', TENANT)
    page.fill('input[name=password]', TENANT_PASSWORD)
    sao.shot('tenant_login', page=page)
    page.locator('button[type=submit]').first.click()
    expect(page.locator('header h1')).to_have_text('我的表计', timeout=WAIT)
    sao.shot('tenant_meters', page=page)
    page.locator('.meter').first.get_by_role('link', name='用量').click()
    page.locator('svg.chart').first.wait_for(timeout=WAIT)
    sao.shot('tenant_usage', page=page)
    page.goto(base + '/history')
    sao.shot('tenant_history', page=page)
    page.goto(base + '/alarms')
    sao.shot('tenant_alarms', page=page)
    page.goto(base + '/recharge')
    expect(page.locator('header h1')).to_have_text('充值', timeout=WAIT)
    sao.shot('tenant_recharge', page=page)
    page.goto(base + '/account')
    sao.shot('tenant_account', page=page)
    context.close()


def capture(url, folder, roles=None):
    "Walk every role's screens; the names taken"
    from playwright.sync_api import sync_playwright
    os.makedirs(folder, exist_ok=True)
    taken = set()
    with sync_playwright() as p:
        browser = browsertools.launch(p)
        for login, password, walk in [
                ('clerk', PASSWORD, clerk),
                ('finance', PASSWORD, finance),
                ('manager_tangqu', PASSWORD, manager),
                ('maint', PASSWORD, maintenance),
                ('admin', ADMIN_PASSWORD, administrator),
                ]:
            if roles and login not in roles:
                continue
            context, sao = sign_in(browser, url, login, password, folder,
                taken, shoot_login=login == 'clerk')
            try:
                walk(sao)
            except Exception:
                os.makedirs(browsertools.OUTPUT, exist_ok=True)
                sao.page.screenshot(path=os.path.join(browsertools.OUTPUT,
                        f'manual_failed_{login}.png'))
                raise
            finally:
                context.close()
        if not roles or 'tenant' in roles:
            tenant(browser, url, folder, taken)
        browser.close()
    return taken


def test_manual_screens(server):
    folder = output_dir()
    taken = capture(server, folder)
    assert set(manualshots.SHOTS) - taken == set()
    for name in manualshots.SHOTS:
        assert os.path.getsize(os.path.join(folder,
                name + manualshots.EXT)) > 1000
