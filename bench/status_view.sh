#!/usr/bin/env bash
# bench/status_view.sh - the cost of reading asyncmig.status with a long
# history, this tree's view against an older one, on the same data.
#
# A throwaway cluster (asyncmig preloaded, default settings: jit on,
# jit_above_cost 100000) gets HISTORY (default 100000) FINISHED rows and a
# few live ones (queued, one waiting for dependencies), then ANALYZE.  The
# older view (the status view of asyncmig--1.1--1.2.sql at git revision
# OLD, default 41c7408, the round-3 integration before this change) is
# created beside it as old_view.status over the same table.  For each view:
#   all:     SELECT * FROM <view>                      (EXPLAIN ANALYZE)
#   by name: SELECT * FROM <view> WHERE name = 'old_500' (EXPLAIN ANALYZE)
# the planner's total cost, whether it JIT-compiles and the JIT time,
# execution and planning time (median of 5), the scan of the history (by
# name), and the client's time of SELECT * to /dev/null (median of 5).
# NOSTATS=1 also shows the plans before ANALYZE (a table just loaded).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"
HISTORY=${HISTORY:-100000}
OLD=${OLD:-41c7408}

old_sql=$(mktemp /tmp/asyncmig-status-old.XXXXXX.sql)
{
	echo "CREATE SCHEMA old_view;"
	git -C "$repo" show "$OLD:asyncmig--1.1--1.2.sql" |
		sed -n '/^CREATE OR REPLACE VIEW asyncmig.status/,/^WHERE v.own/p' |
		sed 's/^CREATE OR REPLACE VIEW asyncmig.status/CREATE VIEW old_view.status/'
	echo ";"
} >"$old_sql"
chmod 644 "$old_sql"

am_throwaway_cluster status-view 55900
trap 'rc=$?; rm -f "$old_sql"; am_check_server_log "" "$dir/server.log" || rc=1; am_stop_cluster "$dir"; exit $rc' EXIT
sqlx() { runuser -u postgres -- psql -h "$dir" -p "$port" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

sqlx -c "CREATE EXTENSION asyncmig"
sqlx -f "$old_sql"
sqlx <<EOSQL
ALTER TABLE asyncmig.migration SET (autovacuum_enabled = off);
INSERT INTO asyncmig.migration (name, status, forwards_sql, owner, search_path,
	attempts, started_at, finished_at)
SELECT 'old_' || g, 'FINISHED', 'SELECT ' || g, 'postgres', 'public', 1,
	now() - interval '1 year', now() - interval '1 year'
FROM generate_series(1, $HISTORY) g;
-- live rows no worker runs (not_before ahead)
SELECT asyncmig.schedule('queued', 'SELECT 1', not_before => now() + interval '1 day');
SELECT asyncmig.schedule('waits', 'SELECT 1', depends_on => '{old_1,never}', not_before => now() + interval '1 day');
EOSQL

# one view, one statement: "cost jit jit_ms exec_ms plan_ms history_scan"
measure() {
	local stmt=$1 i
	for i in 1 2 3 4 5; do
		sqlx -c "EXPLAIN (ANALYZE, FORMAT JSON) $stmt" | python3 -c '
import json, sys
p = json.load(sys.stdin)[0]
def scans(n):
    if n.get("Relation Name") == "migration" and n.get("Alias") in ("m", "h"):
        yield n["Node Type"].replace(" ", "") + ("/" + n["Index Name"] if "Index Name" in n else "")
    for c in n.get("Plans", []):
        yield from scans(c)
jit = p.get("JIT")
print("%.0f %s %.0f %.1f %.1f %s" % (p["Plan"]["Total Cost"], "yes" if jit else "no",
      jit["Timing"]["Total"] if jit else 0, p["Execution Time"], p["Planning Time"],
      ",".join(sorted(set(scans(p["Plan"])))) or "-"))'
	done | sort -n -k4 | sed -n 3p
}

client() {
	local stmt=$1 i t0
	for i in 1 2 3 4 5; do
		t0=$(am_now_ms)
		sqlx -c "$stmt" >/dev/null
		echo $(( $(am_now_ms) - t0 ))
	done | sort -n | sed -n 3p
}

report() {
	local v
	echo "view | read | total cost | JIT | JIT ms | execution ms | planning ms | history scanned by | client ms"
	for v in old_view asyncmig; do
		echo "$v | all | $(measure "SELECT * FROM $v.status" | tr ' ' '|' | sed 's/|/ | /g') | $(client "SELECT * FROM $v.status")"
		echo "$v | by name | $(measure "SELECT * FROM $v.status WHERE name = 'old_500'" | tr ' ' '|' | sed 's/|/ | /g') | $(client "SELECT * FROM $v.status WHERE name = 'old_500'")"
	done
}

if [ -n "${NOSTATS:-}" ]; then
	echo "== without statistics ($HISTORY history rows, load $(cut -d' ' -f1-3 /proc/loadavg))"
	report
fi
sqlx -c "ANALYZE asyncmig.migration"
echo "== $HISTORY history rows, ANALYZEd (load $(cut -d' ' -f1-3 /proc/loadavg))"
report
