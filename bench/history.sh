#!/usr/bin/env bash
# bench/history.sh - the cost of one tiny migration, on an empty table and
# with a long history, side by side in one run.
#
# For each installation to compare (BASE, if set, is another PostgreSQL
# binary directory with an older build of asyncmig installed, e.g.
# /opt/am-pg/perf-base/lib/postgresql/15/bin; the tree's own build goes to
# AM_PGBIN), on a throwaway cluster (asyncmig preloaded, max_workers
# WORKERS, default 1):
#   empty:   N (default 1000) tiny migrations (`SELECT n`) scheduled in one
#            transaction and drained: drain time (commit of the scheduling
#            transaction to the last finished_at), migrations per second,
#            and the median gap from one row's finished_at to the next
#            row's started_at;
#   latency: 20 single migrations, commit of schedule() (the session's
#            clock right after it) to the worker's started_at: p50, max;
#   history: HISTORY (default 100000) FINISHED rows inserted, then the
#            same drain again; the ratio history / empty;
#   with the history: `SELECT * FROM asyncmig.status` and `CALL
#            asyncmig.wait()` (all done) and `CALL asyncmig.wait(name)`,
#            each the median of 5.
# The two installations alternate (ROUNDS rounds, default 1) on two clusters
# that run at once, so both see the same load.  The load average is printed
# with the results; they go to bench/RESULTS.md (this script's section).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"
N=${N:-1000}
HISTORY=${HISTORY:-100000}
WORKERS=${WORKERS:-1}
ROUNDS=${ROUNDS:-1}

am_ensure_packages
am_build_install "$repo"

labels=(new)
bins=("$AM_PGBIN")
if [ -n "${BASE:-}" ]; then
	labels=(base new)
	bins=("$BASE" "$AM_PGBIN")
fi
declare -A dirs ports
cleanup() {
	for l in "${labels[@]}"; do
		[ -n "${dirs[$l]:-}" ] && AM_PGBIN=${bins[0]} am_stop_cluster "${dirs[$l]}"
	done
}
[ -z "${KEEP:-}" ] && trap cleanup EXIT
next_port=55800
for i in "${!labels[@]}"; do
	l=${labels[$i]}
	d=$(mktemp -d "/tmp/asyncmig-history-$l.XXXXXX")
	p=$(am_free_port "$next_port")
	next_port=$((p + 1))
	dirs[$l]=$d
	ports[$l]=$p
	AM_PGBIN=${bins[$i]} am_start_cluster "$d" "$p" "asyncmig.max_workers = $WORKERS" \
		"max_worker_processes = 16" "log_line_prefix = '%m [%p] '" ${LOGDEBUG:+"log_min_messages = debug1"}
	runuser -u postgres -- psql -h "$d" -p "$p" -X -q -At -c "CREATE EXTENSION asyncmig"
done

sqlx() {    # $1: label, then psql arguments
	local l=$1
	shift
	runuser -u postgres -- psql -h "${dirs[$l]}" -p "${ports[$l]}" -X -q -At -v ON_ERROR_STOP=1 "$@"
}

# drain $N tiny migrations named $2_1 .. $2_N; prints "ms per_s gap_p50_ms"
drain() {
	local l=$1 tag=$2 committed left
	committed=$(sqlx "$l" <<EOSQL | tail -n 1
BEGIN;
SELECT count(asyncmig.schedule('${tag}_' || g, 'SELECT ' || g)) FROM generate_series(1, $N) g;
COMMIT;
SELECT pg_catalog.clock_timestamp();
EOSQL
)
	# wait in one session, with a cheap indexed look every 20 ms: a psql
	# started every 100 ms (as this script did until 1.2) took about a
	# tenth of the CPU that the drain had (bench/RESULTS.md)
	sqlx "$l" <<'EOSQL'
DO $$
BEGIN
	FOR i IN 1..30000 LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM asyncmig.migration
		                      WHERE status IN ('STARTED', 'IN PROGRESS'));
		PERFORM pg_catalog.pg_sleep(0.02);
	END LOOP;
END
$$;
EOSQL
	left=$(sqlx "$l" -c "SELECT count(*) FROM asyncmig.migration WHERE name LIKE '${tag}\_%' AND status NOT IN ('FINISHED', 'ERROR')")
	[ "$left" = 0 ] || { echo "drain $tag on $l did not finish" >&2; exit 1; }
	sqlx "$l" -F ' ' <<EOSQL
WITH r AS (SELECT started_at, finished_at, lag(finished_at) OVER (ORDER BY started_at) AS prev_end
           FROM asyncmig.migration WHERE name LIKE '${tag}\_%' AND status = 'FINISHED')
SELECT round(extract(epoch FROM max(finished_at) - '$committed'::timestamptz) * 1000),
       round($N / extract(epoch FROM max(finished_at) - '$committed'::timestamptz)),
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - prev_end) * 1000))::numeric, 1),
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000))::numeric, 1)
FROM r
EOSQL
}

# start latency over 20 migrations; prints "p50 max"
latency() {
	local l=$1 tag=$2 i committed
	: > "/tmp/lat.$$.$l"
	for i in $(seq 1 20); do
		committed=$(sqlx "$l" <<EOSQL | tail -n 1
SELECT asyncmig.schedule('${tag}_$i', 'SELECT 1');
SELECT pg_catalog.clock_timestamp();
EOSQL
)
		sqlx "$l" -c "CALL asyncmig.wait('${tag}_$i', '60 s')"
		sqlx "$l" -c "SELECT extract(epoch FROM started_at - '$committed'::timestamptz) * 1000 FROM asyncmig.migration WHERE name = '${tag}_$i'" >> "/tmp/lat.$$.$l"
	done
	sort -n "/tmp/lat.$$.$l" | awk '{a[NR]=$1} END {printf "%.1f %.1f\n", a[int((NR+1)/2)], a[NR]}'
	rm -f "/tmp/lat.$$.$l"
}

# median ms of 5 runs of a statement
timed() {
	local l=$1 stmt=$2 i t0
	for i in 1 2 3 4 5; do
		t0=$(am_now_ms)
		sqlx "$l" -c "$stmt" >/dev/null
		echo $(( $(am_now_ms) - t0 ))
	done | sort -n | sed -n 3p
}

declare -A r_empty r_lat r_hist r_status r_waitall r_waitone
for round in $(seq 1 "$ROUNDS"); do
	for l in "${labels[@]}"; do
		r_empty[$l]+="$(drain "$l" "e${round}")|"
		echo "$l empty drain: ${r_empty[$l]}"
	done
	for l in "${labels[@]}"; do
		r_lat[$l]+="$(latency "$l" "lat${round}")|"
		echo "$l start latency p50/max: ${r_lat[$l]}"
	done
done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# the history: finished rows, as a long-lived install has them
for l in "${labels[@]}"; do
	sqlx "$l" <<EOSQL
INSERT INTO asyncmig.migration (name, status, forwards_sql, owner, search_path,
	attempts, created_at, updated_at, started_at, finished_at)
SELECT 'old_' || g, 'FINISHED', 'SELECT ' || g, 'postgres', 'public', 1,
	now() - interval '1 year', now() - interval '1 year', now() - interval '1 year',
	now() - interval '1 year'
FROM generate_series(1, $HISTORY) g;
VACUUM ANALYZE asyncmig.migration;
EOSQL
done
for round in $(seq 1 "$ROUNDS"); do
	for l in "${labels[@]}"; do
		r_hist[$l]+="$(drain "$l" "h${round}")|"
		echo "$l history drain: ${r_hist[$l]}"
	done
done
for l in "${labels[@]}"; do
	r_status[$l]=$(timed "$l" "SELECT * FROM asyncmig.status")
	r_waitall[$l]=$(timed "$l" "CALL asyncmig.wait()")
	r_waitone[$l]=$(timed "$l" "CALL asyncmig.wait('old_$((HISTORY / 2))')")
	echo "$l with $HISTORY rows: status ${r_status[$l]} ms, wait() ${r_waitall[$l]} ms, wait(name) ${r_waitone[$l]} ms"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# the median over the rounds, field by field, of "a b c|a b c|..."
med() {
	python3 -c '
import sys, statistics
rows = [r.split() for r in sys.argv[1].split("|") if r.strip()]
print(" ".join("%g" % statistics.median(float(r[i]) for r in rows) for i in range(len(rows[0]))))' "$1"
}

rows=""
for l in "${labels[@]}"; do
	read -r e_ms e_rate e_gap e_run <<<"$(med "${r_empty[$l]}")"
	read -r h_ms h_rate h_gap h_run <<<"$(med "${r_hist[$l]}")"
	read -r lat_p50 lat_max <<<"$(med "${r_lat[$l]}")"
	ratio=$(awk -v a="$h_ms" -v b="$e_ms" 'BEGIN {printf "%.2f", a / b}')
	rows+="| $l | $e_ms ms ($e_rate/s) | $e_gap / $e_run | $lat_p50 / $lat_max | $h_ms ms ($h_rate/s) | $ratio | ${r_status[$l]} | ${r_waitall[$l]} / ${r_waitone[$l]} |"$'\n'
done

results="$repo/bench/RESULTS.md"
if [ -f "$results" ]; then
	awk '/^## Tiny migrations and history/ { skip = 1; next } /^## / { skip = 0 } !skip' "$results" > "$results.tmp"
	sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$results.tmp" > "$results"
	rm -f "$results.tmp"
fi
cat >> "$results" <<EOT

## Tiny migrations and history (\`bash bench/history.sh\`)

Written by \`${BASE:+BASE=$BASE }AM_PGBIN=$AM_PGBIN bash bench/history.sh\`
on $(date -u '+%Y-%m-%d %H:%M') UTC ($(nproc) cores shared with other work:
load average $load_before at the history's start, $load_after at the end;
$(sqlx "${labels[-1]}" -c 'SHOW server_version')), asyncmig.max_workers = $WORKERS, one database.
Each installation has its own cluster; both clusters run at once and the
measurements alternate. $N tiny migrations (\`SELECT n\`) are scheduled in
one transaction and drained; "history" is the same after $HISTORY FINISHED
rows were inserted (and the table analyzed). Times in ms; with several
rounds (ROUNDS=$ROUNDS), each figure is the median over the rounds, and the
runs of every round are listed below the table.

| build | drain, empty table | median gap finished→next started / started→finished | start latency p50 / max (commit → started_at, 20 runs) | drain with $HISTORY rows | history / empty | \`SELECT * FROM asyncmig.status\` with the history | \`wait()\` / \`wait(name)\` with the history |
|---|---|---|---|---|---|---|---|
${rows}
EOT
for l in "${labels[@]}"; do
	echo "Rounds of $l (drain ms, per s, gap p50, run p50): empty ${r_empty[$l]%|}; history ${r_hist[$l]%|}; start latency p50/max ${r_lat[$l]%|}." >> "$results"
	echo >> "$results"
done
if [ -n "${LOGDEBUG:-}" ]; then
	for l in "${labels[@]}"; do
		for tag in e1_ h1_; do
			t=$(python3 "$repo/bench/phases.py" "${dirs[$l]}/server.log" "$tag")
			case $t in *"(0 migrations)"*) continue ;; esac
			{
				echo "Where a tiny migration's time goes, $l, $([ $tag = e1_ ] && echo "empty table" || echo "$HISTORY rows of history") (bench/phases.py on the server log, prefix $tag; from the DEBUG1 phase lines of src/worker.c and src/launcher.c; debug logging itself adds to each phase):"
				echo
				echo "$t"
				echo
			} >> "$results"
		done
	done
fi
echo "== written: bench/RESULTS.md"
