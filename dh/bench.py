"""`dh bench NAME`: runs tests/bench/bench_NAME.py's run(args) and prints its
figures as one JSON line (with the machine noted)."""
import importlib.util
import json
import os
import platform
import sys

from .paths import ROOT


def machine():
    try:
        with open('/proc/meminfo') as handle:
            mem = int(handle.readline().split()[1]) // (1024 * 1024)
    except OSError:
        mem = None
    return {'cpus': os.cpu_count(), 'memory_gib': mem,
        'python': platform.python_version(), 'platform': platform.platform()}


def run(name, args):
    path = os.path.join(ROOT, 'tests', 'bench', f'bench_{name}.py')
    if not os.path.exists(path):
        available = sorted(f[6:-3] for f in os.listdir(
                os.path.join(ROOT, 'tests', 'bench'))
            if f.startswith('bench_') and f.endswith('.py'))
        print(f'dh bench: no benchmark {name!r} (have: '
            f'{", ".join(available)})', file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location(f'bench_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.run(args)
    figures = {'bench': name, **figures, 'machine': machine()}
    print(json.dumps(figures, ensure_ascii=False, default=str), flush=True)
    return 0
