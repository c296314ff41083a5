"""A throw-away database with dh modules activated, for the tests that need
real connections from several threads or processes: a SQLite file, or a
PostgreSQL database in the PostgreSQL pass (DH_BACKEND=postgresql)."""
import os
import signal
import subprocess
import sys
import tempfile

BIN = os.path.dirname(sys.executable)
PG = os.environ.get('DH_BACKEND') == 'postgresql'
PG_URI = os.environ.get('TRYTOND_DATABASE_URI',
    'postgresql://postgres@127.0.0.1:5432/')


def create(name, module, extra_config=''):
    "Returns (folder, config file) of a fresh database ``name``"
    folder = tempfile.mkdtemp(prefix='dhdb')
    config = os.path.join(folder, 'trytond.conf')
    if PG:
        import psycopg
        with psycopg.connect(PG_URI + 'postgres', autocommit=True) as conn:
            # sessions left by an earlier run that was killed
            conn.execute('SELECT pg_terminate_backend(pid) FROM '
                'pg_stat_activity WHERE datname = %s', (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        uri = PG_URI
    else:
        open(os.path.join(folder, f'{name}.sqlite'), 'a').close()
        uri = 'sqlite://'
    with open(config, 'w') as handle:
        handle.write(f'[database]\nuri = {uri}\npath = {folder}\n'
            f'{extra_config}')
    with open(os.path.join(folder, 'pw'), 'w') as handle:
        handle.write('admin-Secret-123')
    subprocess.run([os.path.join(BIN, 'trytond-admin'), '-c', config, '-d',
            name, '-u', module, '--activate-dependencies', '--email',
            'a@example.com'], check=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ, TRYTONPASSFILE=os.path.join(folder, 'pw')))
    return folder, config


def stop(process, grace=30):
    "Stop a child process: SIGTERM (a clean stop), SIGKILL after ``grace`` s"
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
