# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The demo's tenant portal: a WeChat configuration pointed at the local
fake WeChat (its keys made here, real RSA and AES-GCM), two tenant
accounts — one with a single room, one renting several rooms on one
wallet — and the fake itself as a demo service, so that on a laptop a
tenant can sign in, bind a (pretend) WeChat, recharge, pay at the fake's
cashier and see the money arrive."""
import json
import os
import secrets
import subprocess
import sys

from trytond.pool import Pool
from trytond.transaction import Transaction

PASSWORD = 'dhTenant-2026x'
APPID = 'wxd0e0000000000001'
MCHID = '1900000109'


def state_folder(options):
    from dh.paths import VAR
    db_file = os.path.abspath(options.get('db') or os.path.join(VAR, 'db',
            'dhdemo.sqlite'))
    return os.path.join(os.path.dirname(db_file), 'wechat-fake')


def fake_port(options):
    return int(options.get('port') or 8000) + 11


class DemoPart:
    sequence = 70
    name = 'dh_wechat'

    @classmethod
    def build(cls, options, log):
        pool = Pool()
        Config = pool.get('dh.wechat.config')
        Company = pool.get('company.company')
        companies = Company.search([])
        if not companies:
            return {}
        company = companies[0]
        folder = state_folder(options)
        port = int(options.get('port') or 8000)
        gateway = f'http://127.0.0.1:{fake_port(options)}'
        portal = f'http://127.0.0.1:{port}'
        state_file = os.path.join(folder, 'state.json')
        configs = Config.search([('company', '=', company.id)])
        if configs and os.path.exists(state_file):
            config, = configs
            # the same keys; the ports may have changed (dh demo --port)
            Config.write([config], {'pay_gateway': gateway,
                    'oa_api_base': gateway, 'oa_open_base': gateway,
                    'portal_url': portal})
            with open(state_file) as handle:
                state = json.load(handle)
            state['port'] = fake_port(options)
            cls.write_state(folder, state)
            log('dh_wechat: WeChat configuration present, kept as it is')
        else:
            cls.configure(Config, configs, company, folder, gateway, portal,
                options)
            log(f'dh_wechat: WeChat configuration (sandbox) with the local '
                f'fake WeChat on {gateway}')
        logins = cls.accounts(log)
        database = Transaction().database.name
        return {'portal_logins': logins,
            'portal_path': f'/{database}/dh/wx/'}

    @staticmethod
    def write_state(folder, state):
        from .fake_wechat import write_state
        write_state(folder, **state)

    @classmethod
    def configure(cls, Config, configs, company, folder, gateway, portal,
            options):
        from .fake_wechat import new_key, private_pem, public_pem
        merchant, platform = new_key(), new_key()
        apiv3_key = secrets.token_hex(16)
        oa_secret = secrets.token_hex(16)
        serial = secrets.token_hex(20).upper()
        public_key_id = 'PUB_KEY_ID_' + secrets.token_hex(14).upper()
        values = {'company': company.id, 'appid': APPID,
            'oa_secret': oa_secret, 'oa_api_base': gateway,
            'oa_open_base': gateway, 'mchid': MCHID, 'serial_no': serial,
            'private_key': private_pem(merchant), 'apiv3_key': apiv3_key,
            'platform_public_key': public_pem(platform),
            'platform_public_key_id': public_key_id,
            'pay_gateway': gateway, 'portal_url': portal, 'sandbox': True,
            'template_low_balance': 'DEMO-LOW-BALANCE',
            'template_cutoff': 'DEMO-CUTOFF',
            'template_restored': 'DEMO-RESTORED',
            'template_monthly_usage': 'DEMO-MONTHLY',
            'template_alarm': 'DEMO-ALARM'}
        if configs:
            Config.write(configs, values)
        else:
            Config.create([values])
        cls.write_state(folder, {'appid': APPID, 'mchid': MCHID,
                'apiv3_key': apiv3_key, 'oa_secret': oa_secret,
                'merchant_public_key': public_pem(merchant),
                'merchant_serial': serial,
                'platform_private_key': private_pem(platform),
                'public_key_id': public_key_id,
                'port': fake_port(options)})

    @classmethod
    def accounts(cls, log):
        """Two tenants' portal accounts (account name: their mobile): one
        with one room, one renting several rooms on one wallet"""
        pool = Pool()
        WebUser = pool.get('web.user')
        Meter = pool.get('dh.meter')
        Party = pool.get('party.party')
        cursor = Transaction().connection.cursor()
        cursor.execute('SELECT m.tenant, COUNT(*) FROM dh_meter m '
            'JOIN dh_wallet w ON m.wallet = w.id AND w.party = m.tenant '
            "WHERE m.tenant IS NOT NULL AND m.billing_mode = 'cash' "
            'AND m.active GROUP BY m.tenant ORDER BY m.tenant')
        counts = dict(cursor)
        single = next((t for t, n in counts.items() if n == 1), None)
        multi = next((t for t, n in sorted(counts.items(),
                    key=lambda i: (-i[1], i[0])) if n > 1), None)
        logins = []
        for party_id, what in [(single, 'tenant, one room'),
                (multi, 'tenant renting several rooms, one wallet')]:
            if party_id is None:
                continue
            party = Party(party_id)
            mobiles = [c.value for c in party.contact_mechanisms
                if c.type == 'mobile']
            login = mobiles[0] if mobiles else f'tenant{party_id}'
            users = WebUser.search([('dh_login', '=', login)])
            if not users:
                WebUser.create([{'dh_login': login, 'party': party_id,
                            'password': PASSWORD}])
            rooms = '、'.join(m.name for m in Meter.search([
                        ('tenant', '=', party_id)], limit=4))
            logins.append((login, PASSWORD,
                    f'{what}: {party.rec_name} {rooms}'))
        if logins:
            log(f'dh_wechat: {len(logins)} tenant portal accounts')
        return logins

    @classmethod
    def demo_services(cls, ctx, log):
        "The local fake WeChat (OAuth, WeChat Pay, its cashier)"
        options = {'port': ctx['port'], 'db': os.path.join(ctx['db_dir'],
                ctx['database'] + '.sqlite')}
        folder = state_folder(options)
        if not os.path.exists(os.path.join(folder, 'state.json')):
            return []
        log(f'dh_wechat: fake WeChat (demo payments) on http://127.0.0.1:'
            f'{fake_port(options)}/')
        return [subprocess.Popen([sys.executable, '-m',
                    'trytond.modules.dh_wechat.fake_wechat', '--state',
                    folder, '--port', str(fake_port(options))])]
