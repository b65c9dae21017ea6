#!/usr/bin/env bash
# bench/run.sh - asyncmig against plain psql, side by side in one run.
#
# On a throwaway cluster (asyncmig preloaded), for a table of ROWS rows
# (default 3 000 000), it builds the same index ROUNDS times (default 3)
# each way, alternating:
#   psql:      CREATE INDEX CONCURRENTLY from psql (the client waits)
#   asyncmig:  asyncmig.schedule() of the same statement; we time the call
#              itself, the build in the worker (finished_at - started_at)
#              and schedule-to-FINISHED
# and measures the start latency (commit of schedule() to the worker's
# started_at) over 20 small migrations.  Results go to bench/RESULTS.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"
ROWS=${ROWS:-3000000}
ROUNDS=${ROUNDS:-3}

am_throwaway_cluster bench 55600 "max_wal_size = '4GB'" "maintenance_work_mem = '256MB'"

sql() { am_psql -At "$@"; }

sql -c "CREATE EXTENSION asyncmig"
sql -c "CREATE TABLE bench AS SELECT g AS id, g % 5000 AS account_id, md5(g::text) AS payload FROM generate_series(1, $ROWS) g"
sql -c "VACUUM ANALYZE bench"

idx="ON bench (account_id, payload)"
rows_out=""
for r in $(seq 1 "$ROUNDS"); do
	# psql
	t0=$(am_now_ms)
	sql -c "CREATE INDEX CONCURRENTLY bench_idx $idx"
	psql_ms=$(( $(am_now_ms) - t0 ))
	sql -c "DROP INDEX bench_idx"

	# asyncmig
	t0=$(am_now_ms)
	sql -c "SELECT asyncmig.schedule('bench_$r', 'CREATE INDEX CONCURRENTLY bench_idx $idx')" >/dev/null
	call_ms=$(( $(am_now_ms) - t0 ))
	sql -c "CALL asyncmig.wait('bench_$r')"
	total_ms=$(( $(am_now_ms) - t0 ))
	build_ms=$(sql -c "SELECT round(extract(epoch FROM finished_at - started_at) * 1000) FROM asyncmig.migration WHERE name = 'bench_$r'")
	valid=$(sql -c "SELECT indisvalid FROM pg_index WHERE indexrelid = 'bench_idx'::regclass")
	sql -c "DROP INDEX bench_idx"
	echo "round $r: psql ${psql_ms} ms; asyncmig: schedule() ${call_ms} ms, build ${build_ms} ms, schedule-to-FINISHED ${total_ms} ms (valid: $valid)"
	rows_out+="| $r | $psql_ms | $call_ms | $build_ms | $total_ms | $valid |"$'\n'
done

# writers during a build: single-row INSERTs from pgbench while the index is
# built by a plain CREATE INDEX from psql, and by asyncmig's CREATE INDEX
# CONCURRENTLY; the slowest INSERT tells how long writers were held up
echo "INSERT INTO bench (id, account_id, payload) VALUES (0, 0, 'x');" > "$dir/insert.sql"
chown postgres "$dir/insert.sql"
writers() {    # $1: label; runs pgbench for $2 seconds, prints "count max_ms"
	(cd "$dir" && runuser -u postgres -- "$AM_PGBIN/pgbench" -n -h "$dir" -p "$port" -c 1 -T "$2" \
		-f "$dir/insert.sql" -l --log-prefix="$dir/$1" postgres >/dev/null 2>&1)
	awk '{ n++; if ($3 > max) max = $3 } END { printf "%d %.0f\n", n, max / 1000 }' "$dir/$1".*
}
sql -c "SELECT 1" >/dev/null
( sleep 1; sql -c "CREATE INDEX bench_plain_idx $idx" ) &
plain=$(writers plain 8); wait
sql -c "DROP INDEX bench_plain_idx"
( sleep 1; sql -c "SELECT asyncmig.schedule('bench_writers', 'CREATE INDEX CONCURRENTLY bench_idx $idx')" >/dev/null ) &
conc=$(writers conc 8); wait
sql -c "CALL asyncmig.wait('bench_writers')"
read -r plain_n plain_max <<<"$plain"
read -r conc_n conc_max <<<"$conc"
echo "writers during a plain CREATE INDEX: $plain_n inserts in 8 s, slowest $plain_max ms"
echo "writers during asyncmig's CREATE INDEX CONCURRENTLY: $conc_n inserts in 8 s, slowest $conc_max ms"

# start latency: commit of schedule() to the worker's started_at
for i in $(seq 1 20); do
	sql -c "SELECT asyncmig.schedule('lat_$i', 'SELECT 1')" >/dev/null
	sql -c "CALL asyncmig.wait('lat_$i')"
done
lat=$(sql -F ' ' -c "SELECT round(avg(ms)::numeric, 1), round(min(ms)::numeric, 1), round(max(ms)::numeric, 1) FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM asyncmig.migration WHERE name LIKE 'lat\_%') s")
read -r lat_avg lat_min lat_max <<<"$lat"
echo "start latency over 20 migrations: avg $lat_avg ms, min $lat_min ms, max $lat_max ms"

# launcher CPU while idle (it sleeps on its latch)
lpid=$(sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'")
cpu0=$(awk '{print $14 + $15}' /proc/"$lpid"/stat)
sleep 5
cpu1=$(awk '{print $14 + $15}' /proc/"$lpid"/stat)

cat > "$repo/bench/RESULTS.md" <<EOT
# asyncmig benchmark results

Written by \`bash bench/run.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores,
$(free -g | awk '/Mem:/ {print $2}') GiB, $(sql -c 'SHOW server_version')), table of $ROWS rows,
index \`$idx\`, maintenance_work_mem 256MB. Times in milliseconds, one run,
the two ways alternating.

| round | psql: CREATE INDEX CONCURRENTLY | asyncmig: schedule() returns | asyncmig: build in the worker | asyncmig: schedule to FINISHED | index valid |
|---|---|---|---|---|---|
${rows_out}
Start latency, from the commit of \`schedule()\` to the worker's
\`started_at\`, over 20 migrations: avg $lat_avg ms, min $lat_min ms, max
$lat_max ms (\`created_at\` is the scheduling transaction's start, so this
includes that transaction).

Writers while the index is built (pgbench, one client, single-row INSERTs
for 8 s, the build starting after 1 s):

| build | INSERTs in 8 s | slowest INSERT (ms) |
|---|---|---|
| plain \`CREATE INDEX\` from psql | $plain_n | $plain_max |
| \`CREATE INDEX CONCURRENTLY\` through asyncmig | $conc_n | $conc_max |

Launcher CPU while idle for 5 s: $((cpu1 - cpu0)) clock ticks.

The deploy waits for "schedule() returns" instead of the whole build; the
build itself costs the same in the worker as from psql, since it is the same
statement run the same way (as a top-level command).
EOT
echo "== written: bench/RESULTS.md"
