#!/usr/bin/env bash
# test/deb/run.sh - the Debian package, as an operator gets it.
#
# In a Debian bookworm chroot (test/lib/chroot.sh; the host is left alone:
# other installations of asyncmig may live in its /usr/lib/postgresql):
#   1. dpkg-buildpackage -us -uc builds postgresql-NN-asyncmig for every
#      PostgreSQL major with server headers there (pg_buildext);
#   2. lintian on the result: no error or warning other than the overrides
#      of debian/ (each explained there);
#   3. apt-get install of the .deb, a fresh cluster that preloads asyncmig,
#      CREATE EXTENSION asyncmig, one CREATE INDEX CONCURRENTLY migration
#      run by the worker to FINISHED with a valid index;
#   4. the package removed again, its files gone.
#
# Usage: bash test/deb/run.sh [REPO_DIR]
set -euo pipefail

repo=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)

if [ -z "${AM_IN_CHROOT:-}" ]; then
	. "$repo/test/lib/chroot.sh"
	am_chroot_ensure bookworm
	rc=0
	am_chroot_run_on_copy bookworm "$repo" deb env AM_IN_CHROOT=bookworm \
		bash /tmp/asyncmig-deb-src/test/deb/run.sh /tmp/asyncmig-deb-src || rc=$?
	exit $rc
fi

# --- inside the chroot ---
work=$(mktemp -d /tmp/asyncmig-deb.XXXXXX)
chmod 755 "$work"
pgdir="$work/pg"
pgbin=
cleanup() {
	if [ -n "$pgbin" ] && [ -d "$pgdir/data" ]; then
		runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { echo "deb: FAILED: $*" >&2; exit 1; }

mkdir "$work/asyncmig"
tar -C "$repo" -cf - . | tar -C "$work/asyncmig" -xf -
cd "$work/asyncmig"

echo "-- dpkg-buildpackage -us -uc"
if ! dpkg-buildpackage -us -uc >"$work/build.log" 2>&1; then
	tail -n 40 "$work/build.log"
	fail "dpkg-buildpackage"
fi
cd "$work"
ls -1 ./*.deb
debs=$(ls postgresql-*-asyncmig_*.deb)

echo "-- lintian"
# debian/copyright (DEP-5) says the PostgreSQL License, with its text in a
# stand-alone paragraph, as LICENSE has it: no license tag is expected.
lintian --allow-root asyncmig_*.changes >"$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
if grep -E '^[EW]: ' "$work/lintian.log" | grep -q .; then
	fail "lintian errors or warnings"
fi

for deb in $debs; do
	pkg=$(dpkg-deb -f "$deb" Package)
	v=$(echo "$pkg" | sed 's/^postgresql-\([0-9]*\)-asyncmig$/\1/')
	pgbin=/usr/lib/postgresql/$v/bin
	echo "-- $pkg: install"
	apt-get install -y -q "./$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install $deb"; }
	for f in /usr/lib/postgresql/$v/lib/asyncmig.so /usr/lib/postgresql/$v/lib/asyncmig_sqlite.so \
		/usr/share/postgresql/$v/extension/asyncmig.control; do
		dpkg -S "$f" >/dev/null 2>&1 || fail "$f not installed by $pkg"
	done

	echo "-- $pkg: fresh cluster, CREATE EXTENSION, one migration"
	mkdir -p "$pgdir"
	chown postgres: "$pgdir"
	(cd / && runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null)
	cat >>"$pgdir/data/postgresql.conf" <<-EOF
		shared_preload_libraries = 'asyncmig'
		unix_socket_directories = '$pgdir'
		listen_addresses = ''
		port = 5499
	EOF
	runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start >/dev/null ||
		{ cat "$pgdir/server.log"; fail "server start"; }
	psql() { runuser -u postgres -- "$pgbin/psql" -h "$pgdir" -p 5499 -X -q -v ON_ERROR_STOP=1 -At "$@"; }
	psql -d postgres -c "CREATE EXTENSION asyncmig" || fail "CREATE EXTENSION"
	psql -d postgres -c "SELECT extversion FROM pg_extension WHERE extname = 'asyncmig'"
	psql -d postgres -c "CREATE TABLE t AS SELECT g AS id, g % 97 AS k FROM generate_series(1, 20000) g"
	status=$(psql -d postgres -c "SELECT asyncmig.schedule('deb.0001_t_k', 'CREATE INDEX CONCURRENTLY t_k_idx ON t (k)', 'DROP INDEX CONCURRENTLY IF EXISTS t_k_idx')")
	[ "$status" = STARTED ] || fail "schedule() returned '$status'"
	psql -d postgres -c "CALL asyncmig.wait('deb.0001_t_k')" || fail "wait"
	got=$(psql -d postgres -c "SELECT m.status || ' ' || i.indisvalid FROM asyncmig.migration m, pg_index i WHERE m.name = 'deb.0001_t_k' AND i.indexrelid = 't_k_idx'::regclass")
	echo "migration deb.0001_t_k: $got"
	[ "$got" = "FINISHED true" ] || { cat "$pgdir/server.log"; fail "expected FINISHED with a valid index, got '$got'"; }
	runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null
	rm -rf "$pgdir"

	echo "-- $pkg: remove"
	apt-get remove -y -q "$pkg" >/dev/null 2>&1 || fail "remove $pkg"
	[ ! -e /usr/lib/postgresql/$v/lib/asyncmig.so ] || fail "asyncmig.so left after removal"
done
pgbin=
echo "deb: OK ($debs)"
