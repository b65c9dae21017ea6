#!/usr/bin/env bash
# bench/batches.sh - one bulk UPDATE from psql against the same change
# through asyncmig.schedule_batches(), side by side in one run.
#
# On a throwaway cluster (asyncmig preloaded), a table of ROWS rows (default
# 2 000 000), each time on a freshly built copy:
#   (0) nothing running: the writers alone, the baseline
#   (a) UPDATE bench SET flag = (account_id % 2 = 0)          from psql
#   (b) asyncmig.schedule_batches() of the same change, WHERE id BETWEEN $1 AND $2
#   (c) schedule_batches() of a change that is expensive per row (COST md5s
#       per row, default 100: a batch of the default size takes over a second)
#       whose batches are sized to asyncmig.batch_target_time (TARGET, e.g.
#       TARGET=0 for fixed sizes; default: the setting's default)
# while pgbench runs single-row UPDATEs of random ids (CLIENTS clients, RATE
# transactions per second in all).  It reports the writers' p99, p99.9 and
# worst latency during each, the change's total time, and the table's size
# and dead space after each (pg_relation_size, pgstattuple).  Results
# replace the "Batched data migrations" section of bench/RESULTS.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"
ROWS=${ROWS:-2000000}
CLIENTS=${CLIENTS:-4}
RATE=${RATE:-200}
BATCH_SIZE=${BATCH_SIZE:-}
COST=${COST:-100}
TARGET=${TARGET:-}

am_throwaway_cluster bench-batches 55700 "max_wal_size = '4GB'" "log_min_messages = info"

sql() { am_psql -At "$@"; }

sql -c "CREATE EXTENSION asyncmig" -c "CREATE EXTENSION pgstattuple"
if [ -n "$TARGET" ]; then
	sql -c "ALTER SYSTEM SET asyncmig.batch_target_time = '$TARGET'" -c "SELECT pg_reload_conf()" >/dev/null
fi
target=$(sql -c "SHOW asyncmig.batch_target_time")

fresh_table() {
	sql -c "DROP TABLE IF EXISTS bench" \
		-c "CREATE TABLE bench AS SELECT g::bigint AS id, (g % 5000)::int AS account_id, md5(g::text) AS payload, NULL::boolean AS flag FROM generate_series(1, $ROWS) g" \
		-c "ALTER TABLE bench ADD PRIMARY KEY (id)" \
		-c "VACUUM ANALYZE bench" -c "CHECKPOINT"
}

# writers: single-row UPDATEs of random ids for the whole change
cat > "$dir/writer.sql" <<EOT
\set id random(1, $ROWS)
UPDATE bench SET payload = md5(payload) WHERE id = :id;
EOT
chown postgres "$dir/writer.sql"
start_writers() {    # $1: label, $2: seconds
	(cd "$dir" && runuser -u postgres -- "$AM_PGBIN/pgbench" -n -h "$dir" -p "$port" \
		-c "$CLIENTS" -j 2 -R "$RATE" -T "$2" -f "$dir/writer.sql" \
		-l --log-prefix="$dir/$1" postgres >"$dir/$1.pgbench" 2>&1) &
	writers_pid=$!
}
writer_stats() {     # $1: label -> "count p99_ms p99.9_ms max_ms"
	cat "$dir/$1".* | awk '{ print $3 }' | sort -n |
		awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1;
			j = int(NR * 0.999); if (j < 1) j = 1;
			printf "%d %.0f %.0f %.0f\n", NR, v[i] / 1000, v[j] / 1000, v[NR] / 1000 }'
}
# run_batches LABEL NAME BATCH_SQL: schedule_batches() of BATCH_SQL while the
# writers run (40 s in all, the change starting after 3 s); sets
# ${LABEL}_ms (in the worker), ${LABEL}_total_ms, ${LABEL}_batches,
# ${LABEL}_size_used, ${LABEL}_last_size (the batches' size at the end),
# ${LABEL}_avg_size and the writers' stats
run_batches() {
	local label=$1 name=$2 batch_sql=$3 t0 line last="" size_arg=""
	[ -n "$BATCH_SIZE" ] && size_arg=", batch_size => $BATCH_SIZE"
	start_writers "$label" "${4:-40}"
	sleep 3
	t0=$(am_now_ms)
	sql -c "SELECT asyncmig.schedule_batches('$name', 'bench', \$sql\$$batch_sql\$sql\$$size_arg)" >/dev/null
	while :; do
		line=$(sql -c "SELECT status || ' ' || coalesce(progress, '') FROM asyncmig.status WHERE name = '$name'")
		case $line in FINISHED*|ERROR*) break ;; esac
		if [ "$line" != "$last" ] && [ $(( ($(am_now_ms) - t0) / 1000 % 5 )) -eq 0 ]; then echo "   $line"; last=$line; fi
		sleep 0.2
	done
	sql -c "CALL asyncmig.wait('$name')"
	eval "${label}_total_ms=$(( $(am_now_ms) - t0 ))"
	eval "${label}_ms=$(sql -c "SELECT round(extract(epoch FROM finished_at - started_at) * 1000) FROM asyncmig.migration WHERE name = '$name'")"
	eval "${label}_batches=$(sql -c "SELECT meta->'batches'->>'batches' FROM asyncmig.migration WHERE name = '$name'")"
	eval "${label}_size_used=$(sql -c "SELECT batch_size FROM asyncmig.migration WHERE name = '$name'")"
	eval "${label}_last_size=$(sql -c "SELECT meta->'batches'->>'size' FROM asyncmig.migration WHERE name = '$name'")"
	eval "${label}_avg_size=$(sql -c "SELECT round((meta->'batches'->>'rows')::numeric / greatest((meta->'batches'->>'batches')::int, 1)) FROM asyncmig.migration WHERE name = '$name'")"
	wait "$writers_pid"
	read -r "${label}_n" "${label}_p99" "${label}_p999" "${label}_max" <<<"$(writer_stats "$label")"
}
bloat() {            # -> "size_MB dead_tuple_percent free_percent"
	sql -F ' ' -c "SELECT round(pg_relation_size('bench') / 1048576.0), dead_tuple_percent, free_percent FROM pgstattuple('bench')"
}

# (0) nothing running: the writers alone
fresh_table
start_writers z 40
wait "$writers_pid"
read -r z_n z_p99 z_p999 z_max <<<"$(writer_stats z)"
echo "(0) nothing running: writers: $z_n, p99 ${z_p99} ms, p99.9 ${z_p999} ms, worst ${z_max} ms"

# (a) one UPDATE from psql
fresh_table
size0=$(sql -c "SELECT round(pg_relation_size('bench') / 1048576.0)")
start_writers a 40
sleep 3
t0=$(am_now_ms)
sql -c "UPDATE bench SET flag = (account_id % 2 = 0)"
a_ms=$(( $(am_now_ms) - t0 ))
wait "$writers_pid"
read -r a_n a_p99 a_p999 a_max <<<"$(writer_stats a)"
read -r a_size a_dead a_free <<<"$(bloat)"
a_wrong=$(sql -c "SELECT count(*) FROM bench WHERE flag IS DISTINCT FROM (account_id % 2 = 0)")
echo "(a) psql UPDATE: ${a_ms} ms; writers: $a_n, p99 ${a_p99} ms, p99.9 ${a_p999} ms, worst ${a_max} ms; table ${a_size} MB, dead ${a_dead}%, free ${a_free}%"

# (b) the same change through schedule_batches()
fresh_table
run_batches b bench_backfill 'UPDATE bench SET flag = (account_id % 2 = 0) WHERE id BETWEEN $1 AND $2'
read -r b_size b_dead b_free <<<"$(bloat)"
b_wrong=$(sql -c "SELECT count(*) FROM bench WHERE flag IS DISTINCT FROM (account_id % 2 = 0)")
echo "(b) schedule_batches: ${b_ms} ms in the worker (${b_total_ms} ms schedule to FINISHED), $b_batches batches of $b_size_used; writers: $b_n, p99 ${b_p99} ms, p99.9 ${b_p999} ms, worst ${b_max} ms; table ${b_size} MB, dead ${b_dead}%, free ${b_free}%"
ratio=$(awk -v a="$a_ms" -v b="$b_ms" 'BEGIN { printf "%.2f", b / a }')
echo "(b)/(a) time: $ratio"

# (c) a batch statement that is expensive per row; the writers run until it
# has finished (at least 40 s)
fresh_table
c_sql="UPDATE bench SET flag = (SELECT bool_or(md5(payload || i) < '1') FROM generate_series(1, $COST) i) WHERE id BETWEEN \$1 AND \$2"
c_secs=$(sql -c "SELECT greatest(40, ceil($ROWS * $COST / 1e6 * 1.5) + 10)::int")
run_batches c bench_expensive "$c_sql" "$c_secs"
c_wrong=$(sql -c "SELECT count(*) FROM bench WHERE flag IS NULL")
echo "(c) expensive schedule_batches (asyncmig.batch_target_time $target): ${c_ms} ms in the worker, $c_batches batches, batch_size $c_size_used, $c_avg_size keys each on average, $c_last_size at the end ($(( c_ms / (c_batches > 0 ? c_batches : 1) )) ms each); writers ($c_secs s): $c_n, p99 ${c_p99} ms, p99.9 ${c_p999} ms, worst ${c_max} ms"

section=$(cat <<EOT
<!-- batches: written by bench/batches.sh -->
## Batched data migrations

Written by \`bash bench/batches.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, shared
with other work; $(sql -c 'SHOW server_version')), one run. A table of $ROWS rows
(\`id bigint PRIMARY KEY, account_id int, payload text, flag boolean\`,
$size0 MB) gets the backfill \`SET flag = (account_id % 2 = 0)\` on a fresh copy
each way, while pgbench runs single-row \`UPDATE bench SET payload = md5(payload)
WHERE id = :id\` of random ids ($CLIENTS clients, $RATE per second in all,
for 40 s, the change starting after 3 s; latency counted from each
transaction's scheduled start).  asyncmig.batch_target_time: $target.

| | (0) nothing running | (a) one \`UPDATE\` from psql | (b) \`schedule_batches()\` |
|---|---|---|---|
| total time of the change | - | $a_ms ms | $b_ms ms in the worker ($b_batches batches, batch_size $b_size_used, $b_avg_size keys each on average; $b_total_ms ms from schedule to FINISHED) |
| writers' UPDATEs done | $z_n | $a_n | $b_n |
| writers' p99 latency | $z_p99 ms | $a_p99 ms | $b_p99 ms |
| writers' p99.9 latency | $z_p999 ms | $a_p999 ms | $b_p999 ms |
| writers' worst latency | $z_max ms | $a_max ms | $b_max ms |
| table size after | - | $a_size MB | $b_size MB |
| dead tuples / free space after (pgstattuple) | - | $a_dead % / $a_free % | $b_dead % / $b_free % |
| rows left wrong | - | $a_wrong | $b_wrong |

(b) took $ratio× the time of (a). During (a) every writer that touches a row
the UPDATE has already changed waits for the whole statement to commit; during
(b) a writer waits at most for the one batch that holds its row.

An expensive batch statement, (c): \`SET flag = (SELECT bool_or(md5(payload || i)
< '1') FROM generate_series(1, $COST) i)\` through \`schedule_batches()\` with the
same writers (for $c_secs s): $c_batches batches (batch_size $c_size_used, sized
to asyncmig.batch_target_time $target: $c_avg_size keys each on average, $c_last_size
at the end), $c_ms ms in the worker, about $(( c_ms / (c_batches > 0 ? c_batches : 1) )) ms
per batch; writers $c_n, p99 $c_p99 ms, p99.9 $c_p999 ms, worst $c_max ms
(nothing running: p99 $z_p99 ms, p99.9 $z_p999 ms); rows left wrong: $c_wrong.
A writer waits at most for the batch that holds its row, so the target time
bounds the writers' waits. Measured before the sizing, with fixed batches of
10000 (2026-12-03, same script): 200 batches of about 1053 ms, 210713 ms in
the worker; writers p99 71 ms, p99.9 578 ms, worst 1117 ms (nothing running:
p99 38 ms, p99.9 121 ms).
<!-- batches: end -->
EOT
)
results="$repo/bench/RESULTS.md"
touch "$results"
python3 - "$results" "$section" <<'EOP'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pattern = re.compile(r'<!-- batches: written by bench/batches\.sh -->.*?<!-- batches: end -->', re.S)
if pattern.search(text):
    text = pattern.sub(lambda m: section, text)
else:
    text = text.rstrip('\n') + '\n\n' + section + '\n'
open(path, 'w').write(text)
EOP
echo "== written: the batches section of bench/RESULTS.md"
