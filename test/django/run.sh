#!/bin/bash
# Tests of the Django package (python/asyncmig/django) against real Django
# projects, on a throwaway PostgreSQL 15 cluster (and a second one that does
# not preload asyncmig) and on SQLite files.
#
# Run as root after "make && make install" (asyncmig.so, asyncmig--1.0.sql
# and asyncmig_sqlite.so in $(pg_config --pkglibdir)):
#     test/django/run.sh [unittest test names, e.g. test_django.SQLiteTests]
# (ASYNCMIG_TEST_SCRIPT=file.py runs that script instead, with the clusters up;
# KEEP_WORK=1 keeps the temporary directory.)
# Uses /usr/bin/python3 (Debian's python3-django 3.2 and python3-psycopg2).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3
PG_CONFIG=${PG_CONFIG:-pg_config}
pgbin=$($PG_CONFIG --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$pgbin/initdb" ] || pgbin=/usr/lib/postgresql/15/bin
pkglibdir=$($PG_CONFIG --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)

die() { echo "test/django/run.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run me as root (the clusters run as the postgres user)"
id postgres >/dev/null 2>&1 || die "no postgres user"
"$PY" -c 'import django, psycopg2' 2>/dev/null \
    || die "$PY lacks django or psycopg2 (apt-get install python3-django python3-psycopg2)"
[ -f "$pkglibdir/asyncmig.so" ] || die "$pkglibdir/asyncmig.so is missing: run make && make install first"
[ -f "$pkglibdir/asyncmig_sqlite.so" ] || echo "warning: $pkglibdir/asyncmig_sqlite.so is missing: the SQLite tests will fail" >&2

work=$(mktemp -d /tmp/asyncmig-django.XXXXXX)
chmod 755 "$work"
pgdir="$work/pg"            # owned by postgres: data dirs, sockets, logs
mkdir -p "$pgdir/sock"
chown -R postgres: "$pgdir"
chmod 700 "$pgdir/sock"
chmod 755 "$pgdir"
sockdir="$pgdir/sock"

started=()
cleanup() {
    rc=$?
    for d in "${started[@]}"; do
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
    done
    if [ $rc -ne 0 ]; then
        for d in "${started[@]}"; do
            echo "----- tail of $d.log" >&2
            tail -n 40 "$d.log" >&2 || true
        done
    fi
    if [ -n "${KEEP_WORK:-}" ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() {
    local p=$1
    [ -e "/tmp/.s.PGSQL.$p" ] && return 1
    [ -e "/var/run/postgresql/.s.PGSQL.$p" ] && return 1
    if command -v ss >/dev/null 2>&1; then
        ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && return 1
    fi
    return 0
}

pick_port() {
    local p=$((55432 + ($$ % 500) * 2 + $1))
    local tries=0
    until port_free $p; do
        p=$((p + 7)); tries=$((tries + 1))
        [ $tries -lt 200 ] || die "no free port"
    done
    echo $p
}

# start_cluster NAME PORT PRELOAD(yes/no)
start_cluster() {
    local name=$1 port=$2 preload=$3 d="$pgdir/$1"
    runuser -u postgres -- "$pgbin/initdb" -D "$d" -A trust -U postgres --no-sync \
        -E UTF8 --locale=C.UTF-8 >"$d.initdb.log" 2>&1 \
        || { cat "$d.initdb.log" >&2; die "initdb failed"; }
    local opts="-k $sockdir -p $port -c listen_addresses='' -c fsync=off"
    if [ "$preload" = yes ]; then
        opts="$opts -c shared_preload_libraries=asyncmig"
    fi
    started+=("$d")
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$d" -l "$d.log" -w -t 60 -o "$opts" start >/dev/null \
        || { cat "$d.log" >&2; die "cluster $name did not start"; }
    runuser -u postgres -- "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" \
        -U postgres -d postgres <<'SQL'
CREATE ROLE django LOGIN SUPERUSER;
CREATE ROLE app LOGIN CREATEDB;
SQL
}

port1=$(pick_port 0)
start_cluster main "$port1" yes
port2=$(pick_port 1)
start_cluster nopreload "$port2" no

export ASYNCMIG_TEST_WORK="$work"
export ASYNCMIG_TEST_SOCKDIR="$sockdir"
export ASYNCMIG_TEST_PORT="$port1"
export ASYNCMIG_TEST_PORT_NOPRELOAD="$port2"
export ASYNCMIG_TEST_REPO="$repo"
export ASYNCMIG_TEST_PKGLIBDIR="$pkglibdir"
export PATH="$pgbin:$PATH"
unset DJANGO_SETTINGS_MODULE ALLOW_SCHEDULED_MIGRATIONS ASYNCMIG_WAIT_IN_MIGRATE \
      ASYNCMIG_CREATE_EXTENSION ASYNCMIG_SQLITE_MODULE PGHOST PGPORT PGUSER PGDATABASE || true

cd "$here"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(test_django)
if [ -n "${ASYNCMIG_TEST_SCRIPT:-}" ]; then PYTHONPATH="$repo/python:$here" PYTHONDONTWRITEBYTECODE=1 "$PY" "$ASYNCMIG_TEST_SCRIPT"; exit; fi
PYTHONPATH="$repo/python:$here" PYTHONDONTWRITEBYTECODE=1 "$PY" -m unittest -v "${args[@]}"
