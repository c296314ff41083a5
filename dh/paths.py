"Where things are: the project root, var/, the runtime configuration."
import configparser
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.join(ROOT, 'var')
BIN = os.path.dirname(os.path.abspath(sys.executable))
ADMIN_PASSWORD = 'dhAdmin-2026x'


def dh_modules():
    "Every installed dh_* Tryton module"
    from importlib.metadata import entry_points
    return sorted(ep.name for ep in entry_points(group='trytond.modules')
        if ep.name.startswith('dh_'))


def write_runtime_config(db_dir, port=8000, target=None, extra=None):
    """trytond.conf with absolute paths (relative ones are resolved against
    the project root) and the given database folder and port"""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, 'trytond.conf'))
    parser.set('database', 'path', os.path.abspath(db_dir))
    root = parser.get('web', 'root', fallback='node_modules/tryton-sao')
    if not os.path.isabs(root):
        parser.set('web', 'root', os.path.join(ROOT, root))
    parser.set('web', 'listen', f'127.0.0.1:{port}')
    for section, values in (extra or {}).items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, str(value))
    target = target or os.path.join(db_dir, 'trytond.runtime.conf')
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'w') as handle:
        parser.write(handle)
    return target
