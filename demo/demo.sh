#!/usr/bin/env bash
# demo/demo.sh - asyncmig in one minute, on a throwaway cluster.
#
# Installs what is missing (Debian), builds and installs asyncmig, starts a
# throwaway PostgreSQL 15 cluster as the postgres user with asyncmig
# preloaded, fills a table with 3 million rows, schedules a CREATE INDEX
# CONCURRENTLY with asyncmig.schedule() and shows asyncmig.status as the
# migration goes STARTED -> IN PROGRESS -> FINISHED.  Act 2 backfills a new
# column of the same table with asyncmig.schedule_batches(), one transaction
# per batch, while the status view shows its progress; the server is killed
# (kill -9) in the middle, and asyncmig.run() resumes after the last batch
# done: every row is updated exactly once.  The cluster is removed at the
# end (set KEEP=1 to keep it running).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"

echo "== building and installing asyncmig, starting a throwaway cluster"
am_throwaway_cluster demo 55500
echo "   in $dir (port $port)"

sql() { am_psql "$@"; }

sql -c "CREATE EXTENSION asyncmig"
echo "== creating big_table with 3 million rows"
sql -c "CREATE TABLE big_table AS SELECT g AS id, g % 5000 AS account_id, md5(g::text) AS payload, now() - g * interval '1 second' AS created_at FROM generate_series(1, 3000000) g"

echo "== scheduling the index build (this returns at once)"
start=$(date +%s%N)
sql -At -c "SELECT asyncmig.schedule('app.0001_big_table_account_idx',
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS big_table_account_idx ON big_table (account_id, created_at)',
    'DROP INDEX CONCURRENTLY IF EXISTS big_table_account_idx')" | sed 's/^/schedule() returned: /'
echo "   ($(( ($(date +%s%N) - start) / 1000000 )) ms, psql start-up included)"

echo "== watching asyncmig.status"
last=""
for _ in $(seq 1 600); do
	line=$(sql -At -F ' | ' -c "SELECT status, coalesce(progress, ''), coalesce(round(extract(epoch FROM duration)::numeric, 1)::text || ' s', '') FROM asyncmig.status WHERE name = 'app.0001_big_table_account_idx'")
	if [ "$line" != "$last" ]; then
		printf '%s  %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$line"
		last=$line
	fi
	case $line in FINISHED*|ERROR*) break ;; esac
	sleep 0.2
done

echo "== the status view"
sql -x -c "SELECT * FROM asyncmig.status"
echo "== the index"
sql -c "SELECT indexrelid::regclass AS index, indisvalid FROM pg_index WHERE indrelid = 'big_table'::regclass"
echo "== the worker's lines in the server log"
grep -E 'asyncmig' "$dir/server.log" || true

echo
echo "== act 2: backfill a new column in batches"
sql -c "ALTER TABLE big_table ADD PRIMARY KEY (id)"
sql -c "ALTER TABLE big_table ADD COLUMN is_even boolean, ADD COLUMN touched int NOT NULL DEFAULT 0"
sql -At -c "SELECT asyncmig.schedule_batches('app.0002_big_table_is_even', 'big_table',
    'UPDATE big_table SET is_even = (account_id % 2 = 0), touched = touched + 1 WHERE id BETWEEN \$1 AND \$2',
    batch_size => 20000, pause => '20 ms')" | sed 's/^/schedule_batches() returned: /'
watch_batches() {
	local last="" line
	for _ in $(seq 1 1500); do
		line=$(sql -At -F ' | ' -c "SELECT status, coalesce(progress, ''), coalesce(error, '') FROM asyncmig.status WHERE name = 'app.0002_big_table_is_even'" 2>/dev/null) || { sleep 0.2; continue; }
		if [ "$line" != "$last" ]; then
			printf '%s  %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$line"
			last=$line
		fi
		case $line in FINISHED*|ERROR*) return ;; esac
		case $line in *"batch "[0-9]*) [ -n "${1:-}" ] && [ "$(echo "$line" | sed -E 's/.*batch ([0-9]+).*/\1/')" -ge "$1" ] && return ;; esac
		sleep 0.5
	done
}
watch_batches 40
echo "== kill -9 of the server's asyncmig worker, in the middle"
wpid=$(sql -At -c "SELECT meta->>'pid' FROM asyncmig.migration WHERE name = 'app.0002_big_table_is_even'")
kill -9 "$wpid"
sleep 3
watch_batches
echo "== asyncmig.run() resumes after the last batch done"
sql -At -c "SELECT asyncmig.run('app.0002_big_table_is_even')" | sed 's/^/run() returned: /'
watch_batches
echo "== every row updated exactly once"
sql -c "SELECT touched, count(*) FROM big_table GROUP BY touched ORDER BY touched"
sql -x -c "SELECT name, status, progress, duration FROM asyncmig.status WHERE name = 'app.0002_big_table_is_even'"
grep -E 'asyncmig migration "app.0002' "$dir/server.log" || true
if [ -n "${KEEP:-}" ]; then
	echo "== the cluster keeps running: psql -h $dir -p $port -U postgres"
fi
