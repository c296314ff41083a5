# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""`dh token`: API tokens for administrators who script.

  dh token create [--db PATH | -c CONF -d NAME] --name NAME
                  [--areas all|AREA,…] [--scopes read,recharge,control]
  dh token list   [--db PATH | -c CONF -d NAME]
  dh token revoke [--db PATH | -c CONF -d NAME] TOKEN

An area is given by its full name (唐渠/瀚盛家园) or, when unique, its name;
TOKEN is a token's id, name or key prefix.  `create` prints the new key as
its last line (the only time it is shown).  Errors: exit 2 and a reason on
stderr.
"""
import argparse
import os
import sys

SCOPES = ('read', 'recharge', 'control')


class CliError(Exception):
    pass


def parser():
    parser = argparse.ArgumentParser(prog='dh token',
        description='API tokens of the integration API')
    sub = parser.add_subparsers(dest='action', required=True)

    def database(p):
        p.add_argument('--db', help='SQLite database file (default '
            'var/db/dhdemo.sqlite)')
        p.add_argument('-c', '--config', help='trytond configuration '
            '(with -d, e.g. for PostgreSQL)')
        p.add_argument('-d', '--database', help='database name (with -c)')
    create = sub.add_parser('create', help='make a token; prints its key '
        'as the last line')
    database(create)
    create.add_argument('--name', required=True)
    create.add_argument('--areas', default='all',
        help='"all" or area full names / names, comma separated')
    create.add_argument('--scopes', default='read',
        help='comma separated: read, recharge, control (default read)')
    listing = sub.add_parser('list', help='list the tokens')
    database(listing)
    revoke = sub.add_parser('revoke', help='revoke a token for good')
    database(revoke)
    revoke.add_argument('token', help='id, name or key prefix')
    return parser


def open_database(options):
    "(database name, pool) ready in this process"
    from trytond import config as tconfig
    if options.config or options.database:
        if not (options.config and options.database):
            raise CliError('-c and -d go together')
        config, name = options.config, options.database
    else:
        from dh.paths import VAR, write_runtime_config
        path = os.path.abspath(options.db or os.path.join(VAR, 'db',
                'dhdemo.sqlite'))
        if not os.path.exists(path):
            raise CliError(f'no database {path} (dh demo builds one)')
        folder = os.path.dirname(path)
        name = os.path.splitext(os.path.basename(path))[0]
        config = write_runtime_config(folder, target=os.path.join(folder,
                'trytond.token.conf'))
    tconfig.update_etc(config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction
    Pool.start()
    pool = Pool(name)
    with Transaction().start(name, 0, readonly=True):
        pool.init()
        if 'dh.api.token' not in [m for m, _ in pool.iterobject()]:
            raise CliError(f'the dh_api module is not activated in {name}')
    return name, pool


def find_areas(pool, text):
    if text.strip().lower() == 'all':
        return None
    Area = pool.get('dh.area')
    areas = []
    for part in [p.strip() for p in text.split(',') if p.strip()]:
        found = Area.search([('full_name', '=', part)])
        if not found:
            found = Area.search([('name', '=', part)])
        if not found:
            raise CliError(f'no area {part!r}')
        if len(found) > 1:
            raise CliError(f'several areas are named {part!r}: give the '
                'full name (' + ', '.join(a.full_name for a in found) + ')')
        areas.append(found[0])
    if not areas:
        raise CliError('no area given (use --areas all for every area)')
    return areas


def find_token(pool, text):
    Token = pool.get('dh.api.token')
    tokens = []
    if text.isdigit():
        tokens = Token.search([('id', '=', int(text))])
    if not tokens:
        tokens = Token.search([('name', '=', text)])
    if not tokens:
        tokens = Token.search([('prefix', '=', text)])
    if not tokens:
        raise CliError(f'no token {text!r}')
    if len(tokens) > 1:
        raise CliError(f'several tokens match {text!r}: give its id ('
            + ', '.join(str(t.id) for t in tokens) + ')')
    return tokens[0]


def describe(token):
    areas = 'all' if token.all_areas else ','.join(
        a.full_name for a in token.areas) or '-'
    used = f'{token.last_used:%Y-%m-%d %H:%M:%S}Z' if token.last_used \
        else 'never'
    return (f'{token.id}\t{token.name}\t{token.prefix or "-"}\t'
        f'{token.state}\t{",".join(sorted(token.scopes or []))}\t'
        f'{areas}\t{used}')


def run(options, out):
    from trytond.modules.dh_collector.collectd import run_in_transaction
    name, pool = open_database(options)
    context = {'language': 'en'}
    if options.action == 'create':
        scopes = sorted({s.strip() for s in options.scopes.split(',')
                if s.strip()})
        unknown = set(scopes) - set(SCOPES)
        if not scopes or unknown:
            raise CliError('scopes are ' + ', '.join(SCOPES)
                + (f' (not {", ".join(sorted(unknown))})' if unknown
                    else ''))

        def create(pool):
            Token = pool.get('dh.api.token')
            areas = find_areas(pool, options.areas)
            token, key = Token.create_token(options.name, scopes,
                areas or [], all_areas=areas is None)
            return describe(token), key
        line, key = run_in_transaction(name, create, pool, context=context)
        print('id\tname\tprefix\tstate\tscopes\tareas\tlast used', file=out)
        print(line, file=out)
        print('The key is shown once; it is stored only as a hash:',
            file=out)
        print(key, file=out)
    elif options.action == 'list':
        def listing(pool):
            Token = pool.get('dh.api.token')
            return [describe(t) for t in Token.search([],
                    order=[('id', 'ASC')])]
        print('id\tname\tprefix\tstate\tscopes\tareas\tlast used', file=out)
        for line in run_in_transaction(name, listing, pool, readonly=True,
                context=context):
            print(line, file=out)
    elif options.action == 'revoke':
        def revoke(pool):
            Token = pool.get('dh.api.token')
            token = find_token(pool, options.token)
            if token.state == 'revoked':
                raise CliError(f'token {token.id} {token.name} is already '
                    'revoked')
            Token.revoke([token])
            return describe(Token(token.id))
        print(run_in_transaction(name, revoke, pool, context=context),
            file=out)
        print('revoked', file=out)
    return 0


def main(argv, out=sys.stdout):
    options = parser().parse_args(argv)
    try:
        return run(options, out)
    except CliError as error:
        print(f'dh token: {error}', file=sys.stderr)
        return 2
