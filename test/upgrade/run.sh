#!/usr/bin/env bash
# test/upgrade/run.sh - pg_upgrade of a cluster with asyncmig, 13 -> 15.
#
# In the "upgrade" chroot (test/lib/chroot.sh: Debian bookworm's
# PostgreSQL 15 beside bullseye's 13), as docs/howto/install.md's "pg_upgrade" says:
#   1. asyncmig built and installed for both majors (no warnings);
#   2. a PostgreSQL 13 cluster with asyncmig: a FINISHED migration
#      (history), a SCHEDULED one, a queued one (STARTED, not_before in the
#      future), a concurrent build IN PROGRESS (its INVALID index there)
#      when the server is stopped, and a grant on the status view;
#   3. pg_upgrade to a new PostgreSQL 15 cluster;
#   4. on 15: history and grants kept, the SCHEDULED row kept, the queued
#      and the interrupted runs ended ERROR (SQLSTATE 55000, "queued in
#      another ... cluster") without running (nothing runs while pg_upgrade
#      has a server in binary-upgrade mode), the interrupted build's INVALID
#      index not carried over, and asyncmig.run() runs them to FINISHED with
#      valid indexes.
#
# Usage: bash test/upgrade/run.sh [REPO_DIR]
set -euo pipefail

repo=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)

if [ -z "${AM_IN_CHROOT:-}" ]; then
	. "$repo/test/lib/chroot.sh"
	am_chroot_ensure upgrade
	rc=0
	am_chroot_run_on_copy upgrade "$repo" upgrade env AM_IN_CHROOT=upgrade \
		bash /tmp/asyncmig-upgrade-src/test/upgrade/run.sh /tmp/asyncmig-upgrade-src || rc=$?
	exit $rc
fi

# --- inside the chroot ---
old=13
new=15
oldbin=/usr/lib/postgresql/$old/bin
newbin=/usr/lib/postgresql/$new/bin
work=$(mktemp -d /tmp/asyncmig-upgrade.XXXXXX)
chmod 755 "$work"
cleanup() {
	for d in "$work/old" "$work/new"; do
		for b in $oldbin $newbin; do
			[ -f "$d/postmaster.pid" ] && (cd / && runuser -u postgres -- "$b/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1) || true
		done
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
	echo "upgrade: FAILED: $*" >&2
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }; done
	exit 1
}

for v in $old $new; do
	echo "-- build and install for PostgreSQL $v"
	rm -rf "$work/src"
	mkdir "$work/src"
	tar -C "$repo" -cf - . | tar -C "$work/src" -xf -
	make -C "$work/src" PG_CONFIG=/usr/lib/postgresql/$v/bin/pg_config >"$work/build$v.log" 2>&1 || fail "build $v"
	! grep -q 'warning:' "$work/build$v.log" || { grep -A5 'warning:' "$work/build$v.log"; fail "build $v warned"; }
	make -C "$work/src" -s PG_CONFIG=/usr/lib/postgresql/$v/bin/pg_config install >/dev/null || fail "install $v"
done
chown -R postgres: "$work"

pg() { (cd "$work" && runuser -u postgres -- "$@"); }
conf() {
	cat >>"$1/postgresql.conf" <<-EOF
		shared_preload_libraries = 'asyncmig'
		unix_socket_directories = '$work'
		listen_addresses = ''
		port = 5498
		log_min_messages = info
	EOF
}
psql_v() {
	local bin=$1; shift
	pg "$bin/psql" -h "$work" -p 5498 -X -q -v ON_ERROR_STOP=1 -At -d postgres "$@"
}

echo "-- PostgreSQL $old cluster: history, queued runs, a grant"
pg "$oldbin/initdb" -D "$work/old" -A trust -U postgres >/dev/null
conf "$work/old"
pg "$oldbin/pg_ctl" -D "$work/old" -l "$work/old.log" -w start >/dev/null || fail "start $old"
p() { psql_v $oldbin "$@"; }
p -c "CREATE EXTENSION asyncmig"
p -c "CREATE ROLE app LOGIN"
p -c "GRANT SELECT ON asyncmig.status TO app"
p -c "CREATE TABLE t AS SELECT g AS id, g % 7 AS k FROM generate_series(1, 10000) g"
p -c "SELECT asyncmig.schedule('m.done', 'CREATE INDEX CONCURRENTLY t_k_idx ON t (k)', 'DROP INDEX CONCURRENTLY IF EXISTS t_k_idx')" >/dev/null
p -c "CALL asyncmig.wait('m.done')"
p -c "SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('m.scheduled', 'CREATE INDEX CONCURRENTLY t_id_idx ON t (id)')" >/dev/null
p -c "SELECT asyncmig.schedule('m.queued', 'CREATE INDEX CONCURRENTLY t_idk_idx ON t (id, k)', not_before => now() + interval '1 hour')" >/dev/null
# a concurrent build held up by a writer's open transaction: IN PROGRESS
# with its INVALID index when the server stops
(p -c "BEGIN; INSERT INTO t VALUES (0, 0); SELECT pg_sleep(600)" >/dev/null 2>&1 &)
sleep 0.5
p -c "SELECT asyncmig.schedule('m.running', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS t_run_idx ON t (k, id)')" >/dev/null
for i in $(seq 1 100); do
	[ "$(p -c "SELECT count(*) FROM pg_index WHERE indexrelid::regclass::text = 't_run_idx' AND NOT indisvalid")" = 1 ] && break
	sleep 0.1
done
before=$(p -c "SELECT string_agg(name || '=' || status, ' ' ORDER BY name) FROM asyncmig.migration")
echo "before: $before"
[ "$before" = "m.done=FINISHED m.queued=STARTED m.running=IN PROGRESS m.scheduled=SCHEDULED" ] || fail "unexpected rows on $old: $before"
[ "$(p -c "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_run_idx'::regclass")" = f ] || fail "no INVALID t_run_idx on $old"
done_at=$(p -c "SELECT finished_at FROM asyncmig.migration WHERE name = 'm.done'")
pg "$oldbin/pg_ctl" -D "$work/old" -m fast -w stop >/dev/null || fail "stop $old"

echo "-- pg_upgrade $old -> $new"
pg "$newbin/initdb" -D "$work/new" -A trust -U postgres >/dev/null
conf "$work/new"
mkdir -p "$work/pgu"
chown postgres: "$work/pgu"
(cd "$work/pgu" && runuser -u postgres -- "$newbin/pg_upgrade" -b "$oldbin" -B "$newbin" \
	-d "$work/old" -D "$work/new" -s "$work" -p 5496 -P 5497 >"$work/pg_upgrade.log" 2>&1) ||
	{ cat "$work/pg_upgrade.log"; find "$work/pgu" "$work/new" -name '*.log' -path '*pg_upgrade*' -exec tail -n 20 {} \; ; fail "pg_upgrade"; }
grep -E '^(Upgrade Complete|Performing Upgrade)' "$work/pg_upgrade.log" || true

echo "-- PostgreSQL $new cluster after pg_upgrade"
pg "$newbin/pg_ctl" -D "$work/new" -l "$work/new.log" -w start >/dev/null || fail "start $new"
n() { psql_v $newbin "$@"; }
# the first worker in the database ends the runs queued in the old cluster
for i in $(seq 1 100); do
	[ "$(n -c "SELECT count(*) FROM asyncmig.migration WHERE status IN ('STARTED', 'IN PROGRESS')")" = 0 ] && break
	sleep 0.1
done
after=$(n -c "SELECT string_agg(name || '=' || status, ' ' ORDER BY name) FROM asyncmig.migration")
echo "after: $after"
[ "$after" = "m.done=FINISHED m.queued=ERROR m.running=ERROR m.scheduled=SCHEDULED" ] || fail "rows after pg_upgrade: $after"
[ "$(n -c "SELECT finished_at FROM asyncmig.migration WHERE name = 'm.done'")" = "$done_at" ] || fail "history changed"
[ "$(n -c "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_k_idx'::regclass")" = t ] || fail "t_k_idx lost"
for m in m.queued m.running; do
	e=$(n -c "SELECT (meta->'error'->>'sqlstate') || ' ' || (meta->'error'->>'message') FROM asyncmig.migration WHERE name = '$m'")
	echo "$m: $e"
	case $e in "55000 not run: it was queued in another database or cluster"*) ;; *) fail "$m: $e" ;; esac
done
[ "$(n -c "SELECT count(*) FROM pg_index WHERE indexrelid::regclass::text = 't_idk_idx'")" = 0 ] || fail "m.queued ran"
[ "$(n -c "SELECT has_table_privilege('app', 'asyncmig.status', 'SELECT')")" = t ] || fail "grant lost"
[ "$(n -c "SELECT extversion FROM pg_extension WHERE extname = 'asyncmig'")" = "$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$repo/asyncmig.control")" ] || fail "extension version"

# pg_upgrade does not carry INVALID indexes over (its schema dump skips
# them): the interrupted build left nothing behind on the new cluster
[ "$(n -c "SELECT count(*) FROM pg_class WHERE relname = 't_run_idx'")" = 0 ] || fail "t_run_idx carried over"

echo "-- asyncmig.run() runs them on $new"
# m.queued keeps its not_before (an hour away): queued again, here
[ "$(n -c "SELECT asyncmig.run('m.queued')")" = STARTED ] || fail "run(m.queued)"
n -c "SELECT asyncmig.run('m.running')" >/dev/null
n -c "CALL asyncmig.wait('m.running')" || fail "wait m.running"
# built again
got=$(n -c "SELECT m.status || ' ' || i.indisvalid FROM asyncmig.migration m, pg_index i WHERE m.name = 'm.running' AND i.indexrelid = 't_run_idx'::regclass")
[ "$got" = "FINISHED true" ] || fail "m.running after run(): $got"
[ "$(n -c "SELECT status FROM asyncmig.migration WHERE name = 'm.scheduled'")" = SCHEDULED ] || fail "m.scheduled ran on its own"
n -c "SELECT asyncmig.run('m.scheduled')" >/dev/null
n -c "CALL asyncmig.wait('m.scheduled')" || fail "wait m.scheduled"
# workers have looked at the database since: m.queued is now of this
# cluster and waits for its time
[ "$(n -c "SELECT status FROM asyncmig.migration WHERE name = 'm.queued'")" = STARTED ] || fail "m.queued after run()"
grep -q 'not run: it was queued in another database or cluster' "$work/new.log" || fail "no LOG line"
pg "$newbin/pg_ctl" -D "$work/new" -m fast -w stop >/dev/null
echo "upgrade: OK (PostgreSQL $old -> $new)"
