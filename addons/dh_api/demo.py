# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Demo part: an API token for the demo plaza (every area, every
operation) with a published key, like the demo logins."""
from trytond.pool import Pool

from .token import hash_key

DEMO_KEY = 'dh_demo-api-key-2026x'


class DemoPart:
    sequence = 60
    name = 'dh_api'

    @classmethod
    def build(cls, options, log):
        Token = Pool().get('dh.api.token')
        tokens = Token.search([('key_hash', '=', hash_key(DEMO_KEY))])
        if not tokens:
            token, = Token.create([{'name': 'Demo integration',
                        'all_areas': True,
                        'scopes': ['read', 'recharge', 'control']}])
            Token.write([token], {'key_hash': hash_key(DEMO_KEY),
                    'prefix': DEMO_KEY[:8], 'state': 'active'})
            log('dh_api: demo token created')
        return {'api_token': DEMO_KEY}
