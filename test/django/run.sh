#!/usr/bin/env bash
# test/django/run.sh - tests of the Django package (python/asyncmig) against
# real Django projects: test_django.py (our projects) and test_label_studio.py
# (a project shaped like Label Studio, its helper tests run against
# asyncmig.django.label_studio), on a throwaway PostgreSQL cluster that
# preloads asyncmig, a second one that does not, and SQLite files.
#
# Run as root after asyncmig is built and installed into $AM_PGBIN's
# installation (test/run.sh does both; without asyncmig.so only the SQLite
# and pure-Python tests run, ASYNCMIG_TEST_SQLITE_MODULE may name the module):
#     test/django/run.sh [unittest test names, e.g. test_django.SQLiteTests]
# The package is installed the way users install it - pip, from python/,
# offline, into a virtual environment made by AM_PYTHON (default
# /usr/bin/python3, Debian's, which has django and psycopg2 or psycopg).
# ASYNCMIG_TEST_SCRIPT=file.py runs that script instead, with the clusters
# up; KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/test/lib/common.sh"
PY=${AM_PYTHON:-/usr/bin/python3}

die() { echo "test/django/run.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run me as root (the clusters run as the postgres user)"
"$PY" -c 'import django' 2>/dev/null || die "$PY lacks django (apt-get install python3-django)"
"$PY" -c 'import psycopg2' 2>/dev/null || "$PY" -c 'import psycopg' 2>/dev/null \
	|| die "$PY lacks psycopg2 and psycopg (apt-get install python3-psycopg2)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null || die "$PY lacks venv (apt-get install python3-venv)"
pkglibdir=$("$AM_PGBIN/pg_config" --pkglibdir)
have_pg=yes
if [ ! -f "$pkglibdir/asyncmig.so" ]; then
	echo "warning: $pkglibdir/asyncmig.so is missing: the PostgreSQL tests are skipped" >&2
	have_pg=
fi
sqlite_module=${ASYNCMIG_TEST_SQLITE_MODULE:-$pkglibdir/asyncmig_sqlite.so}
[ -f "$sqlite_module" ] || echo "warning: $sqlite_module is missing: the SQLite tests are skipped" >&2

work=$(mktemp -d /tmp/asyncmig-django.XXXXXX)
chmod 755 "$work"
clusters=()
cleanup() {
	local rc=$?
	for d in "${clusters[@]}"; do
		if [ $rc -ne 0 ] && [ -f "$d/server.log" ]; then
			echo "----- tail of $d/server.log" >&2
			tail -n 40 "$d/server.log" >&2 || true
		fi
		[ -n "${KEEP_WORK:-}" ] || am_stop_cluster "$d"
	done
	if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== pip install ./python into a virtual environment ($("$PY" --version))"
cp -r "$repo/python" "$work/src"   # pip builds in the tree: keep the checkout clean
"$PY" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-build-isolation --no-deps --no-index "$work/src" \
	|| die "pip install of python/ failed"
(cd "$work" && "$work/venv/bin/python" -c 'import django, asyncmig.django; print("   Django", django.get_version(), "asyncmig", asyncmig.__version__, "from", asyncmig.__file__)')

port=$((55432 + ($$ % 500) * 2))
start() { # start NAME [postgresql.conf lines...]: a cluster in $work/NAME on a new $port
	local dir="$work/$1"
	shift
	port=$(am_free_port $((port + 1)))
	clusters+=("$dir")
	am_start_cluster "$dir" "$port" "fsync = off" "$@"
	runuser -u postgres -- "$AM_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" \
		-U postgres -d postgres -c 'CREATE ROLE django LOGIN SUPERUSER' -c 'CREATE ROLE app LOGIN CREATEDB'
}
export ASYNCMIG_TEST_WORK="$work"
if [ -n "$have_pg" ]; then
	start main
	export ASYNCMIG_TEST_SOCKDIR="$work/main" ASYNCMIG_TEST_PORT="$port"
	start nopreload "shared_preload_libraries = ''"
	export ASYNCMIG_TEST_SOCKDIR_NOPRELOAD="$work/nopreload" ASYNCMIG_TEST_PORT_NOPRELOAD="$port"
	# the application's side as production has it: a role that is no
	# superuser, with exactly the grants of docs/grants.sql, run by a
	# superuser in template1 (Django's test databases and every database
	# the tests create are copies of it) and again in each app database
	start app
	cp "$repo/docs/grants.sql" "$work/grants.sql"
	chmod 644 "$work/grants.sql"
	apppsql() { runuser -u postgres -- "$AM_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/app" -p "$port" -U postgres "$@"; }
	apppsql -d postgres -c 'CREATE ROLE webapp LOGIN NOSUPERUSER CREATEDB NOCREATEROLE'
	apppsql -d template1 -c 'CREATE EXTENSION asyncmig'
	apppsql -d template1 -v app_role=webapp -f "$work/grants.sql"
	export ASYNCMIG_TEST_SOCKDIR_APP="$work/app" ASYNCMIG_TEST_PORT_APP="$port" \
		ASYNCMIG_TEST_GRANTS="$work/grants.sql" ASYNCMIG_TEST_APP_LOG="$work/app/server.log"
fi

# the admin page is checked in headless Chromium: installed here if
# missing; in a chroot of the matrix a missing browser skips that test
in_chroot() { [ "$(stat -c %d:%i /)" != "$(stat -c %d:%i /proc/1/root/. 2>/dev/null)" ]; }
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
	if in_chroot; then
		echo "warning: no chromium/chromedriver in this chroot: the admin browser test is skipped" >&2
	else
		echo "== apt-get install chromium chromium-driver (the admin page's browser test)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
			|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; } \
			|| die "cannot install chromium and chromium-driver (the admin page's browser test)"
	fi
fi
in_chroot && export ASYNCMIG_TEST_BROWSER=optional || export ASYNCMIG_TEST_BROWSER=required
export ASYNCMIG_TEST_PKGLIBDIR="$pkglibdir" ASYNCMIG_TEST_SRC="$work/src"
export ASYNCMIG_TEST_PYTHON="$work/venv/bin/python"
export PATH="$AM_PGBIN:$PATH"
unset DJANGO_SETTINGS_MODULE ALLOW_SCHEDULED_MIGRATIONS ASYNCMIG_WAIT_IN_MIGRATE CI \
	ASYNCMIG_CREATE_EXTENSION ASYNCMIG_SQLITE_MODULE PGHOST PGPORT PGUSER PGDATABASE PYTHONPATH || true

cd "$here"
if [ -n "${ASYNCMIG_TEST_SCRIPT:-}" ]; then
	PYTHONDONTWRITEBYTECODE=1 "$ASYNCMIG_TEST_PYTHON" "$ASYNCMIG_TEST_SCRIPT"
	exit
fi
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(test_django test_label_studio)
rc=0
PYTHONDONTWRITEBYTECODE=1 "$ASYNCMIG_TEST_PYTHON" -m unittest -v "${args[@]}" || rc=$?
# a WARNING in a cluster's log that log_allow does not declare is a bug
if [ $rc -eq 0 ] && [ ${#clusters[@]} -gt 0 ]; then
	logs=()
	for d in "${clusters[@]}"; do logs+=("$d/server.log"); done
	am_check_server_log "$here/log_allow" "${logs[@]}" || rc=1
fi
exit $rc
