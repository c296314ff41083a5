"""What the browser tests share: Debian chromium (CI sets
DH_REQUIRE_BROWSER=1, so a missing browser fails there instead of
skipping), the screenshot folder, and signing in to the web client."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, 'test-output')
CHROMIUM = '/usr/bin/chromium'


def require_chromium():
    "Fail (CI) or skip (a machine without it) when chromium is missing"
    if not os.path.exists(CHROMIUM):
        if os.environ.get('DH_REQUIRE_BROWSER') == '1':
            pytest.fail('chromium is required (DH_REQUIRE_BROWSER=1)')
        pytest.skip('Debian chromium not installed')
    os.makedirs(OUTPUT, exist_ok=True)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM,
        args=['--no-sandbox', '--disable-gpu'])


def sao_sign_in(page, url, database, login, password):
    "Sign in to sao 8.0 at ``url`` (login first, then the password)"
    page.goto(url + '/')
    page.wait_for_selector('#login', timeout=30000)
    if page.locator('select#database').is_visible():
        page.select_option('select#database', database)
    elif (page.locator('input#database').is_visible()
            and page.locator('input#database').is_editable()):
        page.fill('input#database', database)
    page.fill('#login', login)
    page.locator('#login').press('Enter')
    field = page.locator('input[type=password]:visible')
    field.wait_for(timeout=30000)
    field.fill(password)
    field.press('Enter')
