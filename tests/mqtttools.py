"""A Mosquitto broker of the test's own, on a free loopback port, with
persistence in a temporary folder, that the test can stop and start again
(the broker binary comes from Debian's mosquitto package: `make test`
installs it)."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import dbtools

BINARY = shutil.which('mosquitto') or '/usr/sbin/mosquitto'


def available():
    return os.access(BINARY, os.X_OK)


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix='dhmqtt')
        self.port = _free_port()
        self.process = None
        self.config = os.path.join(self.folder, 'mosquitto.conf')
        with open(self.config, 'w') as f:
            # run as root, mosquitto would switch to user mosquitto, who
            # cannot write the temporary folder: stay who we are
            user = pwd.getpwuid(os.getuid()).pw_name
            f.write(f'user {user}\n'
                f'listener {self.port} 127.0.0.1\n'
                'allow_anonymous true\n'
                'persistence true\n'
                f'persistence_location {self.folder}/\n'
                'autosave_interval 1\n'
                'max_queued_messages 100000\n'
                'max_inflight_messages 100\n'
                f'log_dest file {self.folder}/mosquitto.log\n'
                'log_type error\nlog_type warning\nlog_type notice\n')

    def start(self):
        self.process = subprocess.Popen([BINARY, '-c', self.config],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('mosquitto exited: ' + self.log())
            try:
                socket.create_connection(('127.0.0.1', self.port),
                    timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError('mosquitto did not listen: ' + self.log())

    def stop(self):
        "A clean stop: mosquitto writes its persistence file on SIGTERM"
        if self.process is not None:
            dbtools.stop(self.process)
        self.process = None

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            with open(os.path.join(self.folder, 'mosquitto.log')) as f:
                return f.read()[-2000:]
        except OSError:
            return ''

    def close(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
