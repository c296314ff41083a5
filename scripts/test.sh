#!/usr/bin/env bash
# Runs the suite on SQLite, then on PostgreSQL when it is reachable (with
# DH_REQUIRE_POSTGRES=1 an unreachable PostgreSQL is a failure).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG_URI=${DH_POSTGRES_URI:-postgresql://postgres@127.0.0.1:5432/}
mkdir -p var test-output
# the Tryton test database cache is keyed on the module list only: key it on
# the modules' content too, so a changed schema never reuses a stale build
HASH=$(cat pyproject.toml addons/*/tryton.cfg addons/*/*.py addons/*/*.xml addons/*/view/*.xml addons/*/locale/*.po 2>/dev/null | sha1sum | cut -c1-12)
export DB_CACHE="$PWD/var/dbcache/$HASH"
status=0

echo "== SQLite"
TRYTOND_DATABASE_URI=sqlite:// $PY -m pytest tests "$@" || status=1

pg_up() { $PY - "$PG_URI" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1] + 'postgres', connect_timeout=3).close()
except Exception as e:
    print(e); sys.exit(1)
PY
}
if ! pg_up >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster 15 main start 2>/dev/null || true
    sleep 2
fi
if pg_up; then
    echo "== PostgreSQL"
    # template databases of an earlier run may hold an older schema
    for db in $(psql "${PG_URI}postgres" -tAc "select datname from pg_database where datname like 'test-%' or datname like 'test_%'" 2>/dev/null); do
        psql "${PG_URI}postgres" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    done
    DB_CACHE=postgresql:// TRYTOND_DATABASE_URI=$PG_URI DH_BACKEND=postgresql \
        $PY -m pytest tests -m "not sqlite_only" "$@" || status=1
elif [ "${DH_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "PostgreSQL is required (DH_REQUIRE_POSTGRES=1) but not reachable at $PG_URI"
    status=1
else
    echo "== PostgreSQL not reachable at $PG_URI: skipped (set DH_REQUIRE_POSTGRES=1 to fail instead)"
fi
exit $status
