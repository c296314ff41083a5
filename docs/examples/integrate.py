#!/usr/bin/env python3
"""An integrator's first session with DH metering (docs/jsonrpc.md):

1. Tryton JSON-RPC with `requests`: log in, search_read meters, read the
   wallet that pays for one, log out;
2. the dh_api HTTP API with a token: balance, recharge, recharge/result;
3. proteus (Tryton's client library, over XML-RPC): the same meter and
   wallet as Python objects.

  python docs/examples/integrate.py --url http://127.0.0.1:8000 --db dhdemo \\
      --login admin --password dhAdmin-2026x --token dh_demo-api-key-2026x \\
      --device 2001 --amount 10.00

Each step prints one JSON line; any error stops the script (exit 1).
Needs `requests` and `proteus` (pip install requests 'proteus>=8.0,<8.1').
"""
import argparse
import base64
import json
import sys
import time

import requests


class RPCError(Exception):
    pass


class JsonRpc:
    "Tryton JSON-RPC: POST /<db>/rpc/ with {id, method, params}"

    def __init__(self, url, database):
        self.url = f'{url}/{database}/rpc/'
        self.session = requests.Session()
        self.id = 0

    def call(self, method, *params):
        self.id += 1
        response = self.session.post(self.url, json={'id': self.id,
                'method': method, 'params': list(params)}, timeout=60)
        response.raise_for_status()
        answer = response.json()
        if answer.get('error'):
            raise RPCError(answer['error'])
        return answer['result']

    def login(self, login, password):
        user_id, token = self.call('common.db.login', login,
            {'password': password}, 'en')[:2]
        auth = base64.b64encode(f'{login}:{user_id}:{token}'.encode())
        self.session.headers['Authorization'] = 'Session ' + auth.decode()
        self.context = self.call('model.res.user.get_preferences', True, {})
        return user_id

    def logout(self):
        return self.call('common.db.logout')


class Api:
    "The dh_api HTTP API: POST /<db>/dh/api/v1/<call> with a bearer token"

    def __init__(self, url, database, token):
        self.base = f'{url}/{database}/dh/api/v1'
        self.headers = {'Authorization': f'Bearer {token}',
            'Accept-Language': 'zh-CN'}

    def post(self, call, **body):
        response = requests.post(f'{self.base}/{call}', json=body,
            headers=self.headers, timeout=60)
        answer = response.json()
        if response.status_code != 200:
            # every error: {"code": stable code, "message": readable}
            raise RPCError(f'{call}: {response.status_code} '
                f'{answer["code"]}: {answer["message"]}')
        return answer


def out(step, **values):
    print(json.dumps({'step': step, **values}, ensure_ascii=False,
            default=str), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--url', default='http://127.0.0.1:8000')
    parser.add_argument('--db', default='dhdemo')
    parser.add_argument('--login', default='admin')
    parser.add_argument('--password', required=True)
    parser.add_argument('--token', required=True)
    parser.add_argument('--device', default='2001')
    parser.add_argument('--amount', default='10.00')
    parser.add_argument('--txn-no', default=None)
    parser.add_argument('--no-proteus', action='store_true')
    options = parser.parse_args(argv)
    txn_no = options.txn_no or f'EXAMPLE-{int(time.time() * 1000)}'

    # 1. JSON-RPC with requests
    rpc = JsonRpc(options.url, options.db)
    user_id = rpc.login(options.login, options.password)
    out('login', user=user_id)
    meters = rpc.call('model.dh.meter.search_read',
        [['number', '=', options.device]], 0, 1, None,
        ['number', 'name', 'address', 'billing_mode', 'state', 'wallet'],
        rpc.context)
    if not meters:
        raise RPCError(f'no meter {options.device}')
    meter = meters[0]
    out('search_read', meter=meter)
    if meter['wallet']:
        wallet, = rpc.call('model.dh.wallet.read', [meter['wallet']],
            ['code', 'balance', 'state'], rpc.context)
        # Decimal values come as {"__class__": "Decimal", "decimal": "…"}
        balance = wallet['balance']
        if isinstance(balance, dict):
            balance = balance['decimal']
        out('wallet', code=wallet['code'], balance=balance)
    rpc.logout()
    out('logout')

    # 2. the HTTP API with a token
    api = Api(options.url, options.db, options.token)
    out('balance', **api.post('balance', device_id=options.device))
    recharge = api.post('recharge', device_id=options.device,
        amount=options.amount, txn_no=txn_no)
    out('recharge', **recharge)
    again = api.post('recharge', device_id=options.device,
        amount=options.amount, txn_no=txn_no)
    out('replay', replayed=again['replayed'],
        wallet_after=again['wallet_after'])
    out('result', **api.post('recharge/result', device_id=options.device,
            txn_no=txn_no))

    # 3. proteus over XML-RPC
    if not options.no_proteus:
        from urllib.parse import quote, urlsplit

        from proteus import Model, config
        parts = urlsplit(options.url)
        config.set_xmlrpc(f'{parts.scheme}://{quote(options.login)}:'
            f'{quote(options.password)}@{parts.netloc}/{options.db}/rpc/')
        Meter = Model.get('dh.meter')
        meter, = Meter.find([('number', '=', options.device)])
        out('proteus', number=meter.number, name=meter.name,
            billing_mode=meter.billing_mode,
            wallet=meter.wallet.code if meter.wallet else None,
            balance=str(meter.wallet.balance) if meter.wallet else None)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (RPCError, requests.RequestException) as error:
        print(f'error: {error}', file=sys.stderr)
        sys.exit(1)
