import os


def pytest_configure(config):
    config.addinivalue_line('markers',
        'sqlite_only: end-to-end tests on the embedded SQLite demo (the '
        'PostgreSQL pass deselects them)')
    config.addinivalue_line('markers',
        'postgresql_only: tests of what only PostgreSQL offers (e.g. '
        'collectors sharing channels through leases); the SQLite pass '
        'deselects them, the PostgreSQL pass runs them')


def pytest_collection_modifyitems(config, items):
    if os.environ.get('DH_BACKEND') == 'postgresql':
        return
    deselected = [i for i in items
        if i.get_closest_marker('postgresql_only')]
    if deselected:
        # deselected, not skipped: they run in the PostgreSQL pass
        items[:] = [i for i in items if i not in deselected]
        config.hook.pytest_deselected(items=deselected)
