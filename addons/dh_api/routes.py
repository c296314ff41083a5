# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""HTTP routes of the integration API: ``POST /<database>/dh/api/v1/<call>``
with ``Authorization: Bearer <token>`` and a JSON body; the OpenAPI
document and its readable page are ``GET …/openapi.json`` and ``GET …/docs``.

Every answer is JSON.  Errors have one shape, ``{"code", "message"}`` (plus
``"field"`` when a field is at fault), with a stable code; bad input is a
4xx and changes nothing.  Every call is written to the audit log
(dh.api.call), in the call's own transaction when it succeeds and in a
separate one after the rollback when it fails.  Transactions are retried
as Tryton's dispatcher does (record locks, serialisation failures).
"""
import json
import logging
import random
import time

from werkzeug.exceptions import RequestEntityTooLarge

from trytond import backend
from trytond.config import config
from trytond.exceptions import UserError
from trytond.i18n import gettext
from trytond.model.exceptions import SQLConstraintError
from trytond.pool import Pool
from trytond.protocols.wrappers import Response, set_max_request_size
from trytond.transaction import Transaction, TransactionError
from trytond.wsgi import app

from . import validate
from .api import CALLS, ApiError, Context

logger = logging.getLogger(__name__)
PREFIX = '/<database_name>/dh/api/v1'
MAX_BODY = 64 * 1024
OTHER_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']


def json_response(status, body, headers=None):
    return Response(json.dumps(body, ensure_ascii=False,
            separators=(',', ':')).encode('utf-8'), status=status,
        headers=headers or {}, content_type='application/json; charset=utf-8')


def language(request):
    "zh_CN when the caller prefers Chinese, else English"
    # the caller's languages, best first: the first English or Chinese one
    for value, _ in request.accept_languages:
        value = value.lower()
        if value.startswith('zh'):
            return 'zh_CN'
        if value.startswith('en'):
            return 'en'
    return 'en'


def bearer(request):
    header = request.headers.get('Authorization', '')
    kind, _, value = header.strip().partition(' ')
    if kind.lower() != 'bearer':
        return None
    return value.strip() or None


def get_pool(database_name):
    "The database's pool, loaded if needed; None for an unknown database"
    if database_name not in Pool.database_list():
        with Transaction().start(None, 0, readonly=True) as transaction:
            if database_name not in transaction.database.list():
                return None
        pool = Pool(database_name)
        with Transaction().start(database_name, 0, readonly=True):
            pool.init()
    return Pool(database_name)


def error_body(error):
    body = {'code': error.code, 'message': gettext(error.message,
            **error.params)}
    if error.field:
        body['field'] = error.field
    return body


def invalid(error):
    "validate.Invalid -> ApiError (400), the reason translated"
    params = dict(error.params)
    reason = gettext(f'dh_api.msg_reason_{error.reason}', **params)
    if error.field:
        return ApiError(400, error.code, field=error.field,
            message='dh_api.msg_invalid', field_name=error.field,
            reason=reason)
    return ApiError(400, error.code, message='dh_api.msg_invalid_body',
        reason=reason)


def run(database_name, func, context, retries=None):
    """func() in a transaction (committed when it returns), retried on
    Tryton's lock requests, serialisation failures and a lost race on a
    unique key (SQLConstraintError)"""
    retry = config.getint('database', 'retry') if retries is None \
        else retries
    extras = {}
    count = 0
    while True:
        try:
            with Transaction().start(database_name, 0, readonly=False,
                    context=context, **extras) as transaction:
                try:
                    return func()
                except TransactionError as error:
                    transaction.rollback()
                    error.fix(extras)
                    continue
        except (backend.DatabaseOperationalError, SQLConstraintError):
            if count >= retry:
                raise
            count += 1
            time.sleep(random.uniform(0, 0.02 * count))


class Call:
    "One request to one of the eleven calls"

    def __init__(self, request, database_name, path):
        self.request = request
        self.database_name = database_name
        self.path = path
        self.started = time.monotonic()
        self.token_id = None
        self.meter_id = None
        self.device = None
        self.reference = None
        self.context = {'language': language(request),
            '_request': request.context}

    def serve(self):
        pool = get_pool(self.database_name)
        if pool is None:
            return json_response(404, {'code': 'unknown_database',
                    'message': 'Unknown database.'})
        try:
            raw, too_large = self.request.get_data(cache=False), False
        except RequestEntityTooLarge:
            raw, too_large = b'', True
        key = bearer(self.request)
        try:
            result = run(self.database_name,
                lambda: self.handle(pool, key, raw, too_large),
                self.context)
            return json_response(200, result)
        except ApiError as error:
            return self.failed(error)
        except UserError as error:
            # a rule of the billing or metering models refused it
            return self.failed(ApiError(422, 'refused',
                    message='dh_api.msg_refused', reason=error.message))
        except backend.DatabaseOperationalError:
            logger.warning('%s: database busy', self.path, exc_info=True)
            return self.failed(ApiError(503, 'busy'))
        except Exception:
            # a bug: still a JSON answer, logged, and nothing committed
            logger.exception('%s: internal error', self.path)
            return self.failed(ApiError(500, 'internal_error'))

    def handle(self, pool, key, raw, too_large):
        scopes_needed, validator, handler = CALLS[self.path]
        Token = pool.get('dh.api.token')
        token = Token.authenticate(key) if key else None
        if token is None:
            raise ApiError(401, 'unauthorized')
        self.token_id, state, scopes, areas = token
        if state != 'active':
            raise ApiError(401, 'token_revoked')
        if not scopes & scopes_needed:
            raise ApiError(403, 'scope_denied',
                scope=', '.join(sorted(scopes_needed)))
        if too_large:
            raise ApiError(413, 'body_too_large', size=MAX_BODY)
        try:
            data = validate.parse_body(raw)
            self.note(data)
            params = getattr(validate, validator)(data)
        except validate.Invalid as error:
            raise invalid(error)
        ctx = Context(pool, self.token_id, scopes, areas)
        try:
            result = handler(ctx, params)
        finally:
            self.meter_id = ctx.meter_id
        self.record(pool, 200, 'ok')
        return result

    def note(self, data):
        "What the audit log keeps of the request"
        device = data.get('device_id', data.get('device_ids'))
        if device is not None:
            self.device = (device if isinstance(device, str)
                else json.dumps(device, ensure_ascii=False, default=str))
        reference = data.get('txn_no', data.get('action'))
        if isinstance(reference, str):
            self.reference = reference

    def record(self, pool, status, outcome):
        pool.get('dh.api.call').record(self.token_id,
            self.request.remote_addr, self.path, self.device,
            self.meter_id, self.reference, status, outcome,
            (time.monotonic() - self.started) * 1000)

    def failed(self, error):
        "Answer the error and log it, in a transaction of its own"
        pool = Pool(self.database_name)
        holder = {}

        def log():
            holder['body'] = error_body(error)
            if error.status == 401:
                self.token_id = self.token_id if error.code != \
                    'unauthorized' else None
            self.record(pool, error.status, error.code)
        try:
            run(self.database_name, log, self.context)
        except Exception:
            logger.exception('%s: the audit log could not be written',
                self.path)
            holder.setdefault('body', {'code': error.code,
                    'message': error.code})
        headers = {}
        if error.status == 401:
            headers['WWW-Authenticate'] = (
                'Bearer realm="dh", error="invalid_token"'
                if error.code == 'token_revoked' else 'Bearer realm="dh"')
        return json_response(error.status, holder['body'], headers)


def make_view(path):
    @set_max_request_size(MAX_BODY)
    def view(request, database_name):
        if request.method != 'POST':
            # werkzeug answers OPTIONS on a POST rule by itself: not a call
            return unknown(request, database_name, path)
        return Call(request, database_name, path).serve()
    view.__name__ = 'dh_api_' + path.replace('/', '_').replace('-', '_')
    return view


for _path in CALLS:
    app.route(f'{PREFIX}/{_path}', methods=['POST'])(make_view(_path))


@app.route(f'{PREFIX}/openapi.json', methods=['GET'])
@set_max_request_size(MAX_BODY)
def openapi_document(request, database_name):
    from .openapi import document
    if get_pool(database_name) is None:
        return json_response(404, {'code': 'unknown_database',
                'message': 'Unknown database.'})
    return json_response(200, document(request.script_root
            + f'/{database_name}/dh/api/v1'))


@app.route(f'{PREFIX}/docs', methods=['GET'])
@set_max_request_size(MAX_BODY)
def docs_page(request, database_name):
    from .openapi import html_page
    if get_pool(database_name) is None:
        return json_response(404, {'code': 'unknown_database',
                'message': 'Unknown database.'})
    return Response(html_page(request.script_root
            + f'/{database_name}/dh/api/v1').encode('utf-8'),
        content_type='text/html; charset=utf-8')


@app.route(f'{PREFIX}/<path:rest>',
    methods=['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'])
@app.route(f'{PREFIX}/openapi.json', methods=OTHER_METHODS[1:] + ['POST'])
@app.route(f'{PREFIX}/docs', methods=OTHER_METHODS[1:] + ['POST'])
@set_max_request_size(MAX_BODY)
def unknown(request, database_name, rest=None):
    "Anything else under the API: a JSON 404 or 405, never HTML"
    if rest is None:
        rest = request.path.rstrip('/').rsplit('/', 1)[-1]
        allowed = 'GET'
    else:
        allowed = 'POST' if rest in CALLS else None
    if allowed:
        error = ApiError(405, 'method_not_allowed', allowed=allowed)
        headers = {'Allow': allowed}
    else:
        error = ApiError(404, 'unknown_call', call=rest[:64])
        headers = {}
    body = {'code': error.code, 'message': error.code}
    pool = get_pool(database_name)
    if pool is not None:
        with Transaction().start(database_name, 0, readonly=True,
                context={'language': language(request)}):
            body = error_body(error)
    return json_response(error.status, body, headers)
