def pytest_configure(config):
    config.addinivalue_line('markers',
        'sqlite_only: end-to-end tests on the embedded SQLite demo (the '
        'PostgreSQL pass deselects them)')
    config.addinivalue_line('markers',
        'postgresql_only: tests of PostgreSQL-only code (bench scale); the '
        'SQLite pass deselects them')
