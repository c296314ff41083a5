"""The wall status board's JSON (状态报警界面) over HTTP on a real trytond
server: N meters (default 3,500, the product's screen shows 3,462) in the
product's colours with open alarms, the administrator signed in with the
web client's session cookie; times of the whole board, one community, a
tile's alarms and the page, and of the same call signed in by HTTP Basic.

  dh bench board [--backend sqlite|postgresql] [--meters 3500]
                 [--rounds 30]"""
import argparse
import base64
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(http, url, headers, rounds):
    times, server = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        r = http.get(url, headers=headers, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
        r.raise_for_status()
        timing = r.headers.get('Server-Timing', '')
        if 'dur=' in timing:
            server.append(float(timing.split('dur=')[1]))
    times.sort()
    extra = {'query_p50_ms': round(statistics.median(server), 1)} \
        if server else {}
    return {**extra, 'p50_ms': round(statistics.median(times), 1),
        'p90_ms': round(times[int(len(times) * 0.9) - 1], 1),
        'max_ms': round(times[-1], 1), 'bytes': len(r.content)}, r


def run(args):
    parser = argparse.ArgumentParser(prog='dh bench board')
    parser.add_argument('--backend', default='sqlite',
        choices=['sqlite', 'postgresql'])
    parser.add_argument('--meters', type=int, default=3500)
    parser.add_argument('--rounds', type=int, default=30)
    options = parser.parse_args(args)
    if options.backend == 'postgresql':
        os.environ['DH_BACKEND'] = 'postgresql'
        os.environ.setdefault('TRYTOND_DATABASE_URI', os.environ.get(
                'DH_POSTGRES_URI', 'postgresql://postgres@127.0.0.1:5432/'))
    sys.path.insert(0, os.path.dirname(HERE))
    import requests

    import boardtools
    t0 = time.perf_counter()
    server = boardtools.Server(f'bench_board_{options.backend}',
        options.meters)
    setup = time.perf_counter() - t0
    try:
        cookie = {'Cookie': 'tryton_session=' + server.login('admin',
                boardtools.ADMIN_PASSWORD)}
        with requests.Session() as http:
            board, r = timed(http, server.board + '/data', cookie,
                options.rounds)
            tiles = r.json()['tiles']
            areas = http.get(server.board + '/data?areas=1',
                headers=cookie, timeout=60).json()['areas']
            community = next(a['id'] for a in areas if a['level'] == '2')
            one, r = timed(http, server.board + f'/data?area={community}',
                cookie, options.rounds)
            community_tiles = r.json()['total']
            yellow = next(t[0] for t in tiles if t[2] == 'alarm')
            alarms, _ = timed(http, server.board + f'/alarms/{yellow}',
                cookie, options.rounds)
            page, _ = timed(http, server.board, cookie, options.rounds)
            basic = {'Authorization': 'Basic ' + base64.b64encode(
                    f'admin:{boardtools.ADMIN_PASSWORD}'.encode()).decode()}
            by_basic, _ = timed(http, server.board + '/data', basic,
                min(options.rounds, 10))
    finally:
        server.stop()
    return {'backend': options.backend, 'meters': options.meters,
        'tiles': len(tiles), 'setup_s': round(setup, 1),
        'data_all': board,
        'data_one_community': dict(one, tiles=community_tiles),
        'alarms_of_a_tile': alarms, 'page': page,
        'data_all_basic_auth': by_basic, 'rounds': options.rounds}


if __name__ == '__main__':
    print(run(sys.argv[1:]))
