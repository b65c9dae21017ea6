#!/usr/bin/env bash
# bench/databases.sh - asyncmig on a cluster with many databases.
#
# On a throwaway cluster (asyncmig preloaded, max_workers 2) it creates
# NDB databases (default 1000) from a template that has the extension,
# queues work that waits (not_before in an hour) in three of them, and
# measures:
#   - how long creating the databases took;
#   - after a restart (registry present): how many workers the start-up
#     started, and the launcher's CPU ticks over 10 s once idle;
#   - the first-start latency of a migration in the last database, from
#     the commit of schedule() to its first statement running in the worker
#     (over 10 migrations);
#   - without the registry (as after a promotion): how long the one paced
#     look at every database takes and how many workers it starts, then
#     the launcher's idle CPU again.
# Results are appended to bench/RESULTS.md (replacing this script's section
# of an earlier run).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"
NDB=${NDB:-1000}

am_throwaway_cluster bench-db 55700 "asyncmig.max_workers = 2" "max_worker_processes = 16" \
	"log_min_messages = debug1" "max_connections = 50"

sql() { am_psql -At "$@"; }
pgctl() { runuser -u postgres -- "$AM_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w "$@" >/dev/null; }
launcher_pid() {
	local p=""
	while [ -z "$p" ]; do
		p=$(sql -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'")
		[ -z "$p" ] && sleep 0.1
	done
	echo "$p"
}
settle() {    # until no worker runs, twice 0.5 s apart
	local n
	for _ in 1 2; do
		n=1
		while [ "$n" != 0 ]; do
			n=$(sql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'")
			[ "$n" != 0 ] && sleep 0.2
		done
		sleep 0.5
	done
}
ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
starts_since() {    # worker starts logged by the postmaster after byte offset $1
	tail -c +"$(($1 + 1))" "$dir/server.log" | grep -c 'starting background worker process "asyncmig worker' || true
}

sql -d postgres -c "CREATE DATABASE tmpl"
sql -d tmpl -c "CREATE EXTENSION asyncmig"
t0=$(am_now_ms)
for i in $(seq 1 "$NDB"); do echo "CREATE DATABASE d$i TEMPLATE tmpl;"; done | sql -d postgres
create_ms=$(( $(am_now_ms) - t0 ))
echo "created $NDB databases in $create_ms ms"
for db in d1 d500 d$((NDB - 1)); do
	sql -d "$db" -c "SELECT asyncmig.schedule('later', 'SELECT 1', not_before => now() + interval '1 hour')" >/dev/null
done

# restart with the registry
off=$(stat -c %s "$dir/server.log")
t0=$(am_now_ms)
pgctl restart
lpid=$(launcher_pid)
settle
startup_workers=$(starts_since "$off")
c0=$(ticks "$lpid"); sleep 10; c1=$(ticks "$lpid")
idle_ticks=$((c1 - c0))
echo "restart: $startup_workers worker starts; idle launcher: $idle_ticks ticks in 10 s"

# first-start latency in the last database
last=d$NDB
lats=()
for i in $(seq 1 10); do
	# in one session: the autocommitted schedule(), then the clock at once
	committed=$(sql -d "$last" <<EOSQL | tail -n 1
SELECT asyncmig.schedule('first_$i', 'CREATE TABLE started_$i AS SELECT pg_catalog.clock_timestamp() AS t');
SELECT pg_catalog.clock_timestamp();
EOSQL
)
	sql -d "$last" -c "CALL asyncmig.wait('first_$i', '60 s')"
	lats+=("$(sql -d "$last" -c "SELECT round(extract(epoch FROM t - '$committed'::timestamptz) * 1000, 1) FROM started_$i")")
done
lat=$(printf '%s\n' "${lats[@]}" | sort -n | awk '{a[NR]=$1; s+=$1} END {printf "%.1f %.1f %.1f", s/NR, a[1], a[NR]}')
read -r lat_avg lat_min lat_max <<<"$lat"
echo "first-start latency in $last: avg $lat_avg ms, min $lat_min ms, max $lat_max ms (commit to first statement)"
lat2=$(sql -d "$last" -F ' ' -c "SELECT round(avg(ms)::numeric, 1), round(min(ms)::numeric, 1), round(max(ms)::numeric, 1) FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM asyncmig.migration WHERE name LIKE 'first\_%') s")
read -r lat2_avg lat2_min lat2_max <<<"$lat2"

# without the registry: one paced look at every database
settle
pgctl stop -m fast
rm -f "$dir/data/pg_asyncmig/databases"
off=$(stat -c %s "$dir/server.log")
t0=$(am_now_ms)
pgctl start
until tail -c +"$((off + 1))" "$dir/server.log" | grep -q 'asyncmig: looked at all'; do sleep 0.2; done
scan_ms=$(( $(am_now_ms) - t0 ))
settle
scan_workers=$(starts_since "$off")
lpid=$(launcher_pid)
c0=$(ticks "$lpid"); sleep 10; c1=$(ticks "$lpid")
scan_idle_ticks=$((c1 - c0))
echo "no registry: scan of every database in $scan_ms ms, $scan_workers worker starts; then idle: $scan_idle_ticks ticks in 10 s"
ndbs=$(sql -d postgres -c "SELECT count(*) FROM pg_database WHERE datallowconn AND NOT datistemplate")

# replace this script's section of an earlier run, keep the others
results="$repo/bench/RESULTS.md"
if [ -f "$results" ]; then
	awk '/^## Many databases/ { skip = 1; next } /^## / { skip = 0 } !skip' "$results" > "$results.tmp"
	sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$results.tmp" > "$results"
	rm -f "$results.tmp"
fi
cat >> "$results" <<EOT

## Many databases (\`bash bench/databases.sh\`)

Written on $(date -u +%Y-%m-%d) ($(nproc) cores, $(sql -d postgres -c 'SHOW server_version')):
$ndbs connectable databases ($NDB created from a template that has the
extension, in $create_ms ms), asyncmig.max_workers = 2, queued work that
waits (not_before in an hour) in 3 of them.

| measure | result |
|---|---|
| worker starts at a restart (registry present) | $startup_workers (3 databases have work) |
| launcher CPU over 10 s idle after that start-up | $idle_ticks clock ticks |
| first start in the last database: commit to first statement (10 runs) | avg $lat_avg ms, min $lat_min ms, max $lat_max ms |
| same, \`started_at - created_at\` (includes the scheduling transaction) | avg $lat2_avg ms, min $lat2_min ms, max $lat2_max ms |
| start-up without the registry (as after a promotion): look at every database | $scan_ms ms, $scan_workers worker starts (each database once, 2 at a time) |
| launcher CPU over 10 s idle after that scan | $scan_idle_ticks clock ticks |
EOT
echo "== written to bench/RESULTS.md"
