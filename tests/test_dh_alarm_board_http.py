"""The wall status board (状态报警界面) on a real trytond server with 3,500
meters (SQLite file, or PostgreSQL in the PostgreSQL pass): the web
client's session cookie, the Session header and HTTP Basic sign in, nothing
else does; the record rules of an area manager; counts, filter, a tile's
alarms; the JSON's time for 3,500 tiles."""
import base64
import os
import re
import statistics
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boardtools  # noqa: E402

NAME = 'dh_board_http'


@pytest.fixture(scope='module')
def server():
    server = boardtools.Server(NAME)
    yield server
    server.stop()


def basic(login, password):
    return {'Authorization': 'Basic ' + base64.b64encode(
            f'{login}:{password}'.encode()).decode()}


def cookie(server, login, password):
    return {'Cookie': 'tryton_session=' + server.login(login, password)}


def test_sign_in(server):
    "No session, a bad password or a forged token: 401; sao's cookie works"
    for url in [server.board, server.board + '/data',
            server.board + '/alarms/1']:
        r = requests.get(url, timeout=30)
        assert r.status_code == 401, url
        assert 'Basic' in r.headers.get('WWW-Authenticate', '')
    r = requests.get(server.board + '/data', timeout=30,
        headers=basic('admin', 'wrong'))
    assert r.status_code == 401
    r = requests.get(server.board + '/data', timeout=30,
        headers={'Cookie': 'tryton_session=admin:1:forged'})
    assert r.status_code == 401
    headers = cookie(server, 'admin', boardtools.ADMIN_PASSWORD)
    r = requests.get(server.board, headers=headers, timeout=30)
    assert r.status_code == 200
    assert r.headers['Content-Type'].startswith('text/html')
    assert '状态报警界面' in r.text and 'http' not in r.text.split(
        '<script>')[1].replace('http_host', '')   # nothing from a CDN
    # the Session header (JSON-RPC clients) and HTTP Basic
    uid, token = server.login('admin', boardtools.ADMIN_PASSWORD).rsplit(
        ':', 2)[1:]
    session = 'Session ' + base64.b64encode(
        f'admin:{uid}:{token}'.encode()).decode()
    r = requests.get(server.board + '/data', timeout=30,
        headers={'Authorization': session})
    assert r.status_code == 200 and r.json()['total'] == 3500
    r = requests.get(server.board + '/data', timeout=30,
        headers=basic('admin', boardtools.ADMIN_PASSWORD))
    assert r.status_code == 200 and r.json()['total'] == 3500
    # signed out: the cookie is dead
    requests.post(f'{server.url}/{NAME}/session/logout', json={},
        headers=headers, timeout=30)
    r = requests.get(server.board + '/data', headers=headers, timeout=30)
    assert r.status_code == 401


def test_record_rules_counts_and_filter(server):
    "The area manager gets his community's meters only, whatever he asks"
    admin = cookie(server, 'admin', boardtools.ADMIN_PASSWORD)
    manager = cookie(server, boardtools.MANAGER, boardtools.MANAGER_PASSWORD)
    everything = requests.get(server.board + '/data?areas=1', headers=admin,
        timeout=30).json()
    mine = requests.get(server.board + '/data?areas=1', headers=manager,
        timeout=30).json()
    assert everything['total'] == len(everything['tiles']) == 3500
    assert mine['total'] == server.manager_meters == 400
    assert {t[0] for t in mine['tiles']} < {t[0] for t in everything['tiles']}
    counts = {s['state']: s['count'] for s in everything['states']}
    expected = {'normal': 0, 'alarm': 0, 'cutoff': 0, 'fault': 0,
        'offline': 0}
    for i in range(3500):
        expected[boardtools.state_of(i)] += 1
    assert counts == expected
    assert sum(s['count'] for s in mine['states']) == 400
    colours = {s['state']: s['colour'] for s in everything['states']}
    assert colours == {'normal': 'white', 'alarm': 'yellow',
        'cutoff': 'black', 'fault': 'red', 'offline': 'grey'}
    # open alarms per tile: yellow ones have one or two, closed not counted
    by_state = {}
    for _, name, state, alarms in everything['tiles']:
        by_state.setdefault(state, set()).add(alarms)
    assert by_state['normal'] == {0} and by_state['cutoff'] == {0}
    assert by_state['alarm'] == {1, 2} and by_state['fault'] == {1}
    assert any(re.fullmatch(r'培元新苑1\d#14\d\d[AB]', t[1])
        for t in everything['tiles'])
    assert any(t[1].startswith('赵敏 E') for t in everything['tiles'])
    # the filter: level 1 and level 2 areas; his choices are his way up
    levels = {a['name']: a for a in everything['areas']}
    assert len([a for a in everything['areas'] if a['level'] == '2']) == 10
    assert {a['name'] for a in mine['areas']} == {'P片区', 'P片区/培元新苑'}
    community = levels['P片区/瀚盛家园']['id']
    district = levels['P片区']['id']
    one = requests.get(server.board + f'/data?area={community}',
        headers=admin, timeout=30).json()
    assert one['total'] == 400
    assert all(t[1].startswith(('瀚盛家园', '赵敏')) for t in one['tiles'])
    whole = requests.get(server.board + f'/data?area={district}',
        headers=admin, timeout=30).json()
    assert whole['total'] == 3500
    his = requests.get(server.board + f'/data?area={community}',
        headers=manager, timeout=30).json()
    assert his['total'] == 0 and his['tiles'] == []


def test_tile_alarms(server):
    "A tile's open alarms; another area's meter is not found for him"
    admin = cookie(server, 'admin', boardtools.ADMIN_PASSWORD)
    manager = cookie(server, boardtools.MANAGER, boardtools.MANAGER_PASSWORD)
    tiles = requests.get(server.board + '/data', headers=admin,
        timeout=30).json()['tiles']
    mine = {t[0] for t in requests.get(server.board + '/data',
            headers=manager, timeout=30).json()['tiles']}
    yellow = next(t for t in tiles if t[2] == 'alarm' and t[3] == 2)
    r = requests.get(server.board + f'/alarms/{yellow[0]}', headers=admin,
        timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body['meter']['name'] == yellow[1]
    assert [a['kind_name'] for a in sorted(body['alarms'],
            key=lambda a: a['kind'])] == ['日用量超限', '过压']
    volt, = [a for a in body['alarms'] if a['kind'] == 'over_voltage']
    assert (volt['value'], volt['threshold'], volt['state_name']) == (
        '251.5', '240', '未处理')
    first = tiles[0][0]
    other = next(t[0] for t in tiles if t[0] not in mine)
    r = requests.get(server.board + f'/alarms/{other}', headers=manager,
        timeout=30)
    assert r.status_code == 404
    r = requests.get(server.board + '/alarms/999999', headers=admin,
        timeout=30)
    assert r.status_code == 404
    assert first


def test_data_is_fast(server):
    "The JSON of 3,500 tiles, the administrator signed in by cookie"
    admin = cookie(server, 'admin', boardtools.ADMIN_PASSWORD)
    with requests.Session() as http:
        times = []
        for _ in range(15):
            start = time.perf_counter()
            r = http.get(server.board + '/data', headers=admin, timeout=30)
            times.append(time.perf_counter() - start)
            assert r.status_code == 200
    median = statistics.median(times)
    print(f'board data, 3,500 tiles: median {median * 1000:.0f} ms, '
        f'{len(r.content)} bytes')
    assert median < 0.5
