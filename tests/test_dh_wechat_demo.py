"""`dh demo` serves the tenant portal and runs the fake WeChat: the printed
logins include two tenants (one renting several rooms), and a recharge is
completed end to end as on a laptop — sign in, bind a pretend WeChat at
the fake's OAuth page, recharge, pay at the fake's cashier; the fake
notifies the demo server and the money arrives."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browsertools  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
WORK = os.path.join(ROOT, 'var', 'test', 'wechat-demo')
DB = 'dhwxdemo'

pytestmark = pytest.mark.sqlite_only



@pytest.fixture(scope='module')
def demo():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    port = browsertools.demo_port()
    log = open(os.path.join(WORK, 'demo.log'), 'w+')
    process = subprocess.Popen([os.path.join(BIN, 'dh'), 'demo', '--db',
            os.path.join(WORK, f'{DB}.sqlite'), '--port', str(port),
            '--scale', '0.1', '--days', '2'], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    text = ''
    while time.monotonic() < deadline and process.poll() is None:
        log.seek(0)
        text = log.read()
        if 'PORTAL:' in text:
            break
        time.sleep(1)
    assert 'PORTAL:' in text, text[-3000:]
    url = re.search(r'PORTAL: (\S+)', text)[1].rstrip('/')
    for _ in range(150):
        try:
            if requests.get(url + '/login', timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    yield url, text
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def test_demo_portal_recharge(demo):
    url, text = demo
    logins = re.findall(r'^  (\S+) / (\S+)  \(portal: (.*)\)$', text, re.M)
    assert len(logins) == 2, text
    assert 'several rooms' in logins[1][2]
    login, password, _ = logins[1]
    session = requests.Session()
    page = session.get(url + '/login')
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    response = session.post(url + '/login', data={'csrf': token,
            'login': login, 'password': password})
    assert response.url.endswith('/meters'), response.text[:500]
    assert '多间统一充值' in response.text
    # 我的 → 绑定当前微信: the fake asks which WeChat "you" are
    chooser = session.get(url + '/oauth')
    assert '同意授权' in chooser.text
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', chooser.text))
    form['fake_openid'] = 'o-demo-laptop'
    bound = session.post(chooser.url.split('?')[0], data=form)
    assert bound.url.split('#')[0].endswith('/account'), bound.url
    assert 'o-de…ptop' in bound.text
    recharge = session.get(url + '/recharge')
    token = re.search(r'name="csrf" value="([^"]+)"', recharge.text)[1]
    target = re.search(r'name="target" value="(w\d+)"', recharge.text)[1]
    order = session.post(url + '/recharge', data={'csrf': token,
            'target': target, 'amount': '100.00'})
    assert '/order/' in order.url, order.text[:500]
    cashier = re.search(r'id="cashier" href="([^"]+)"', order.text)[1]
    cashier = cashier.replace('&amp;', '&')
    page = session.get(cashier)
    assert '¥100.00' in page.text and '确认支付' in page.text
    fields = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                cashier).query))
    back = session.post(cashier.split('?')[0], data=fields)
    assert back.url.split('#')[0] == order.url.split('#')[0]
    status = session.get(order.url.split('#')[0] + '/status').json()
    assert status['state'] == 'paid' and status['final'], status
    history = session.get(url + '/history').text
    assert '+¥100.00' in history and '微信' in history
