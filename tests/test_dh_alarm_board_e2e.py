"""The wall status board (状态报警界面) in headless Debian chromium: the
administrator signs in to the web client (sao), opens 集抄系统 → 报表 →
状态报警界面, which opens the board with its 3,500 tiles in a new window (the
sign-in cookie is the web client's); a click on a red tile shows its open
alarms; the area manager, signed in by HTTP Basic, gets only his community.
Screenshots in test-output/."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boardtools  # noqa: E402
import browsertools  # noqa: E402

NAME = 'dh_board_e2e'
OUTPUT = browsertools.OUTPUT

pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope='module')
def server():
    browsertools.require_chromium()
    server = boardtools.Server(NAME, chinese=True)
    yield server
    server.stop()


def sign_in(page, server, login, password):
    browsertools.sao_sign_in(page, server.url, NAME, login, password)


def test_board_in_browser(server):
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as p:
        browser = browsertools.launch(p)
        context = browser.new_context(
            viewport={'width': 1600, 'height': 1000}, locale='zh-CN')
        page = context.new_page()
        sign_in(page, server, 'admin', boardtools.ADMIN_PASSWORD)
        menu = page.get_by_text('集抄系统', exact=True).first
        try:
            menu.wait_for(timeout=30000)
        except Exception:
            page.screenshot(path=os.path.join(OUTPUT, 'board_failed.png'))
            raise
        menu.click()
        page.get_by_text('报表', exact=True).first.click()
        entry = page.get_by_text('状态报警界面', exact=True).first
        entry.wait_for(timeout=30000)
        with context.expect_page(timeout=30000) as opened:
            entry.click()
        board = opened.value
        board.wait_for_selector('body[data-loaded="1"]', timeout=30000)
        assert board.url == server.board
        assert board.title() == '状态报警界面'
        assert board.locator('#grid .t').count() == 3500
        assert board.locator('#total').inner_text() == '3500'
        counts = board.locator('#counts').inner_text()
        for label in ['正常', '报警', '断电', '故障', '离线']:
            assert label in counts
        # the product's colours
        colours = board.evaluate("""() => Object.fromEntries(
            ['normal', 'alarm', 'cutoff', 'fault', 'offline'].map(s => [s,
              getComputedStyle(document.querySelector('#grid .t.' + s))
                .backgroundColor]))""")
        assert colours == {'normal': 'rgb(255, 255, 255)',
            'alarm': 'rgb(247, 213, 29)', 'cutoff': 'rgb(17, 17, 17)',
            'fault': 'rgb(217, 43, 43)', 'offline': 'rgb(154, 154, 154)'}
        board.wait_for_timeout(300)
        board.screenshot(path=os.path.join(OUTPUT, 'board_admin.png'))
        # a red tile: its open alarm in the panel
        board.locator('#grid .t.fault').first.click()
        board.locator('#panel .alarm-row').first.wait_for(timeout=30000)
        assert '继电器状态异常' in board.locator('#panel').inner_text()
        board.screenshot(path=os.path.join(OUTPUT, 'board_admin_alarms.png'))
        # the filter: one community
        board.locator('#close').click()
        board.select_option('#area', label='\u3000P片区/瀚盛家园')
        # (the page's CSP forbids eval: no wait_for_function)
        expect(board.locator('#grid .t')).to_have_count(400, timeout=30000)
        # hiding the normal meters by clicking their count
        board.locator('#counts .count[data-state="normal"]').click()
        assert board.locator('#grid .t.normal').count() == 0
        board.screenshot(path=os.path.join(OUTPUT, 'board_filtered.png'))
        context.close()

        # the area manager by HTTP Basic: his community only
        context = browser.new_context(
            viewport={'width': 1600, 'height': 1000}, locale='zh-CN',
            http_credentials={'username': boardtools.MANAGER,
                'password': boardtools.MANAGER_PASSWORD})
        page = context.new_page()
        page.goto(server.board)
        page.wait_for_selector('body[data-loaded="1"]', timeout=30000)
        assert page.locator('#grid .t').count() == server.manager_meters
        options = page.locator('#area option').all_inner_texts()
        assert not any('瀚盛家园' in o for o in options)
        page.screenshot(path=os.path.join(OUTPUT, 'board_manager.png'))
        context.close()
        browser.close()
