"""What the browser tests share: Debian chromium (CI sets
DH_REQUIRE_BROWSER=1, so a missing browser fails there instead of
skipping), the screenshot folder, serving a demo database built by
`dh demo --no-serve`, and signing in to the web client."""
import contextlib
import os
import random
import socket
import subprocess
import sys
import time

import pytest
import requests

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


# `dh demo --port P` serves the web client on P and the simulated buses on
# P + 1100, P + 1101, … (dh_collector/demo.py)
SIM_PORT_OFFSET = 1100


def demo_port(buses=64):
    """A web port for `dh demo` whose simulator ports are free too, below
    Linux's ephemeral range (32768+), where any outgoing connection of
    another process could take one of them between our check and the
    simulator's bind"""
    def free(port):
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                return False
        return True
    for _ in range(500):
        port = random.randrange(20000, 32768 - SIM_PORT_OFFSET - buses)
        if free(port) and all(free(port + SIM_PORT_OFFSET + i)
                for i in range(buses)):
            return port
    raise RuntimeError('no free port range for the demo')


@contextlib.contextmanager
def demo_server(work, database, port, wait=60):
    """A real trytond serving the demo database that `dh demo --no-serve
    --db WORK/DATABASE.sqlite --port PORT` built (it leaves its runtime
    configuration in WORK); yields the server's URL"""
    config = os.path.join(work, 'trytond.runtime.conf')
    log = open(os.path.join(work, 'trytond.log'), 'w')
    process = subprocess.Popen([
            os.path.join(os.path.dirname(sys.executable), 'trytond'),
            '-c', config, '-d', database], stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, TRYTOND_DATABASE_NAMES=database))
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                requests.get(url + '/', timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


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
