# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The official account (公众号) calls the portal needs, as a thin client
with its base URLs as parameters (the tests and the demo point them at the
loopback fake): OAuth snsapi_base (code → openid), the access_token, and
template messages.  The access_token itself is kept in the database by the
caller (config.py) so that every trytond process and worker shares one."""
import urllib.parse

import requests

API_BASE = 'https://api.weixin.qq.com'
OPEN_BASE = 'https://open.weixin.qq.com'
# errcode → retry later (busy, quota) / the token must be fetched again
RETRYABLE = {-1, 45009, 45011, 45047}
TOKEN_INVALID = {40001, 40014, 42001}


class OAError(Exception):
    def __init__(self, code, message='', retryable=False):
        super().__init__(f'{code}: {message}')
        self.code = code
        self.message = message
        self.retryable = retryable

    @property
    def token_invalid(self):
        return self.code in TOKEN_INVALID


class OAClient:
    def __init__(self, appid, secret, api_base=None, open_base=None,
            timeout=10):
        if not appid or not secret:
            raise OAError('config', 'appid and secret are required')
        self.appid = appid
        self.secret = secret
        self.api_base = (api_base or API_BASE).rstrip('/')
        self.open_base = (open_base or OPEN_BASE).rstrip('/')
        self.timeout = timeout

    def authorize_url(self, redirect_uri, state, scope='snsapi_base'):
        "Where to send the browser for the silent (snsapi_base) OAuth"
        query = urllib.parse.urlencode([('appid', self.appid),
                ('redirect_uri', redirect_uri), ('response_type', 'code'),
                ('scope', scope), ('state', state)])
        return f'{self.open_base}/connect/oauth2/authorize?{query}' \
            '#wechat_redirect'

    def _get(self, path, params):
        try:
            response = requests.get(self.api_base + path, params=params,
                timeout=self.timeout)
        except requests.RequestException as exception:
            raise OAError('network', str(exception), retryable=True)
        return self._answer(response)

    def _answer(self, response):
        if response.status_code >= 500:
            raise OAError(f'HTTP_{response.status_code}', retryable=True)
        try:
            data = response.json()
        except ValueError:
            raise OAError('bad_response', response.text[:200],
                retryable=True)
        code = data.get('errcode') or 0
        if code:
            raise OAError(code, data.get('errmsg', ''),
                retryable=code in RETRYABLE)
        return data

    def openid_from_code(self, code):
        "The OAuth code the browser came back with → the user's openid"
        data = self._get('/sns/oauth2/access_token', {'appid': self.appid,
                'secret': self.secret, 'code': code,
                'grant_type': 'authorization_code'})
        openid = data.get('openid')
        if not openid:
            raise OAError('bad_response', 'no openid')
        return openid

    def fetch_access_token(self):
        "(access_token, expires_in seconds)"
        data = self._get('/cgi-bin/token', {'grant_type': 'client_credential',
                'appid': self.appid, 'secret': self.secret})
        if not data.get('access_token'):
            raise OAError('bad_response', 'no access_token')
        return data['access_token'], int(data.get('expires_in') or 7200)

    def send_template(self, access_token, openid, template_id, data,
            url=None):
        "A template message; returns WeChat's msgid"
        body = {'touser': openid, 'template_id': template_id,
            'data': {k: {'value': v} for k, v in data.items()}}
        if url:
            body['url'] = url
        try:
            response = requests.post(self.api_base
                + '/cgi-bin/message/template/send',
                params={'access_token': access_token}, json=body,
                timeout=self.timeout)
        except requests.RequestException as exception:
            raise OAError('network', str(exception), retryable=True)
        return str(self._answer(response).get('msgid', ''))
