"""`dh token create / list / revoke` as administrators script it, against
the API test database, with the key it prints used on the running server."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apitools  # noqa: E402

DH = os.path.join(apitools.BIN, 'dh')


def dh(*args, check=True):
    api = apitools.server()
    if apitools.dbtools.PG:
        where = ['-c', api.config, '-d', apitools.NAME]
    else:
        where = ['--db', os.path.join(api.folder, f'{apitools.NAME}.sqlite')]
    result = subprocess.run([DH, 'token', args[0], *where, *args[1:]],
        capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_create_use_list_revoke():
    api = apitools.server()
    created = dh('create', '--name', 'cli-tangqu', '--areas',
        '唐渠/瀚盛家园', '--scopes', 'read,recharge')
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith('dh_') and len(key) > 40
    assert 'cli-tangqu' in created.stdout and 'read,recharge' in \
        created.stdout
    ok = api.post('balance', {'device_id': '202'}, token=key)
    assert ok.status_code == 200, ok.text
    assert api.post('balance', {'device_id': '2001'},
        token=key).status_code == 404
    assert api.post('control', {'device_id': '202', 'action': 'trip'},
        token=key).status_code == 403
    listing = dh('list').stdout
    line, = [l for l in listing.splitlines() if '\tcli-tangqu\t' in l]
    assert '\tactive\t' in line and '唐渠/瀚盛家园' in line
    assert 'never' not in line          # it was used just now
    assert key not in listing            # the key is never shown again
    revoked = dh('revoke', 'cli-tangqu')
    assert 'revoked' in revoked.stdout
    answer = api.post('balance', {'device_id': '202'}, token=key)
    assert (answer.status_code, answer.json()['code']) == (401,
        'token_revoked')
    again = dh('revoke', 'cli-tangqu', check=False)
    assert again.returncode == 2 and 'already revoked' in again.stderr


def test_create_all_areas_and_errors():
    api = apitools.server()
    key = dh('create', '--name', 'cli-all', '--scopes',
        'read').stdout.strip().splitlines()[-1]
    assert api.post('balance', {'device_id': '2001'},
        token=key).status_code == 200
    for args, reason in [
            (['--areas', 'Nowhere'], "no area 'Nowhere'"),
            (['--scopes', 'read,admin'], 'not admin'),
            (['--areas', ''], 'no area given')]:
        result = dh('create', '--name', 'cli-bad', *args, check=False)
        assert result.returncode == 2, args
        assert reason in result.stderr, result.stderr
    assert '\tcli-bad\t' not in dh('list').stdout
    missing = subprocess.run([DH, 'token', 'list', '--db',
            '/nonexistent/x.sqlite'], capture_output=True, text=True)
    assert missing.returncode == 2 and 'no database' in missing.stderr
