#!/usr/bin/env bash
# test/ops/run.sh - asyncmig with the tools a production site runs next to
# PostgreSQL, each the real Debian package on 127.0.0.1 (host only):
#
#   prometheus-postgres-exporter with contrib/prometheus/queries.yaml, as a
#     pg_monitor role: /metrics has the right values for FINISHED,
#     IN PROGRESS, ERROR and queued rows, and no SQL text;
#   promtool (prometheus): contrib/prometheus/alerts.yaml checks, and its
#     unit test (alerts_test.yaml) passes;
#   pgbouncer in transaction pooling mode: schedule(), CALL asyncmig.wait()
#     (named, with a timeout, unnamed), run(), cancel(), and Django's
#     migrate (execute_immediately included) and asyncmig_wait through it,
#     as an application role with exactly docs/grants.sql.
#
# Run as root after asyncmig is built and installed into $AM_PGBIN
# (test/run.sh ops does both).  Installs the packages it needs if missing.
# KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/test/lib/common.sh"
PY=${AM_PYTHON:-/usr/bin/python3}

die() { echo "test/ops/run.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run me as root (the cluster and pgbouncer run as the postgres user)"

missing=""
for p in prometheus-postgres-exporter prometheus pgbouncer curl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# (their services are not started: no init system runs them here, and
	# ours use their own ports)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

work=$(mktemp -d /tmp/asyncmig-ops.XXXXXX)
chmod 755 "$work"
chown postgres: "$work"
pids=()
failures=0
cleanup() {
	local rc=$?
	[ $failures -eq 0 ] || rc=1
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/pgbouncer/pgbouncer.pid" ] && kill "$(cat "$work/pgbouncer/pgbouncer.pid")" 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		for f in "$work/pg/server.log" "$work/pgbouncer/pgbouncer.log" "$work/exporter.log"; do
			[ -f "$f" ] && { echo "----- tail of $f" >&2; tail -n 30 "$f" >&2; }
		done
	fi
	if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else am_stop_cluster "$work/pg"; rm -rf "$work"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; failures=$((failures + 1)); }
# is GOT EXPECTED DESCRIPTION
is() { if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3"; echo "#   got:      '$1'" ; echo "#   expected: '$2'"; fi; }

# a free TCP port on 127.0.0.1 from $1 on
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 500))); do
		ss -ltn 2>/dev/null | grep -q "[:.]$p " || { echo "$p"; return 0; }
	done
	return 1
}

# ---------------------------------------------------------------- cluster
port=$(am_free_port $((56000 + ($$ % 400) * 2)))
am_start_cluster "$work/pg" "$port" "fsync = off" "listen_addresses = '127.0.0.1'" "log_min_messages = info"
psql_su() { runuser -u postgres -- "$AM_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/pg" -p "$port" -U postgres "$@"; }
psql_su -d postgres -c "CREATE ROLE app LOGIN" -c "CREATE ROLE watcher LOGIN IN ROLE pg_monitor" \
	-c "CREATE DATABASE ops OWNER app" -c "CREATE DATABASE ops_django OWNER app"
for db in ops ops_django; do
	psql_su -d "$db" -c "CREATE EXTENSION asyncmig"
	psql_su -d "$db" -v app_role=app -f "$repo/docs/grants.sql"
done
# psql as ROLE to DATABASE on PORT (127.0.0.1): one value per line
q() { local role=$1 db=$2 p=$3; shift 3; "$AM_PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$p" -U "$role" -d "$db" "$@"; }
# the app role's rows, directly
st() { q app ops "$port" -c "SELECT status FROM asyncmig.status WHERE name = '$1'"; }
# until the status of $1 is $2 (at most 60 s)
wait_status() {
	local i
	for i in $(seq 1 300); do
		[ "$(st "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# ------------------------------------------- the rows the exporter reports
echo "== postgres_exporter $(prometheus-postgres-exporter --version 2>&1 | head -1 | awk '{print $3}') with contrib/prometheus/queries.yaml"
q app ops "$port" -c "CREATE TABLE t (id int PRIMARY KEY, v int)" \
	-c "INSERT INTO t SELECT g, 0 FROM generate_series(1, 1000) g" -c "ANALYZE t" \
	-c "SELECT asyncmig.schedule('ops.ok', 'SELECT 1')" \
	-c "SELECT asyncmig.schedule('ops.fails', \$\$SELECT ('secret' || 1)::integer\$\$)" \
	-c "SELECT asyncmig.schedule_batches('ops.batches', 't', 'UPDATE t SET v = 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100)" \
	-c "SELECT asyncmig.schedule('ops.blocked', 'SELECT 1', depends_on => '{ops.ghost}')" >/dev/null
q app ops "$port" -c "CALL asyncmig.wait('ops.batches', '60 s')"
is "$(st ops.fails)" ERROR "ops.fails ended ERROR"
# IN PROGRESS: a batched walk that pauses 1 s between its 10 batches
q app ops "$port" -c "SELECT asyncmig.schedule_batches('ops.walk', 't', 'UPDATE t SET v = 2 WHERE id BETWEEN \$1 AND \$2', batch_size => 100, pause => '1 s')" >/dev/null
for i in $(seq 1 100); do
	[ "$(q app ops "$port" -c "SELECT status = 'IN PROGRESS' AND rows_done >= 200 FROM asyncmig.status WHERE name = 'ops.walk'")" = t ] && break
	sleep 0.2
done

eport=$(free_port $((19187 + ($$ % 300))))
cp "$repo/contrib/prometheus/queries.yaml" "$work/queries.yaml"
DATA_SOURCE_NAME="postgresql://watcher@127.0.0.1:$port/ops?sslmode=disable" \
	prometheus-postgres-exporter --web.listen-address="127.0.0.1:$eport" \
	--extend.query-path="$work/queries.yaml" --disable-default-metrics --disable-settings-metrics \
	>"$work/exporter.log" 2>&1 &
pids+=($!)
metrics=""
for i in $(seq 1 100); do
	metrics=$(curl -fsS "http://127.0.0.1:$eport/metrics" 2>/dev/null || true)
	grep -q '^asyncmig_migration_info' <<<"$metrics" && break
	sleep 0.2
done
echo "$metrics" | grep '^asyncmig_' > "$work/metrics.txt" || true
# the values, checked by Python (NaN, floats, labels in any order)
if "$PY" - "$work/metrics.txt" <<'PY'
import math, re, sys
samples = []
for line in open(sys.argv[1]):
    m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line.strip())
    if m:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        samples.append((m.group(1), labels, float(m.group(3))))
fails = 0
def value(metric, **labels):
    got = [v for n, l, v in samples if n == metric and all(l.get(k) == w for k, w in labels.items())]
    return got[0] if len(got) == 1 else None
def check(desc, cond):
    global fails
    print(("ok - " if cond else "not ok - ") + desc)
    fails += 0 if cond else 1
count = lambda s: value("asyncmig_migrations_count", status=s, datname="ops")
check("counts: 2 FINISHED, 1 ERROR, 1 IN PROGRESS, 1 queued, 0 SCHEDULED",
      (count("FINISHED"), count("ERROR"), count("IN PROGRESS"), count("STARTED"), count("SCHEDULED")) == (2, 1, 1, 1, 0))
check("ERROR row: info 1 with its SQLSTATE, owner and database",
      value("asyncmig_migration_info", name="ops.fails", status="ERROR", error_sqlstate="22P02", owner="app", datname="ops") == 1)
d = value("asyncmig_migration_duration_seconds", name="ops.fails")
check("ERROR row: a duration in seconds", d is not None and 0 <= d < 60)
check("ERROR row: no progress (NaN)", math.isnan(value("asyncmig_migration_progress_fraction", name="ops.fails")))
check("FINISHED row: progress 1", value("asyncmig_migration_progress_fraction", name="ops.ok", status="FINISHED") == 1)
check("FINISHED batched row: progress 1, 1000 rows",
      (value("asyncmig_migration_progress_fraction", name="ops.batches", status="FINISHED"),
       value("asyncmig_migration_rows_done", name="ops.batches")) == (1, 1000))
f = value("asyncmig_migration_progress_fraction", name="ops.walk", status="IN PROGRESS")
r = value("asyncmig_migration_rows_done", name="ops.walk")
e = value("asyncmig_migration_eta_seconds", name="ops.walk")
d = value("asyncmig_migration_duration_seconds", name="ops.walk")
check("IN PROGRESS row: 0 < progress < 1 (%s), rows done (%s) of 1000, progress = rows/1000" % (f, r),
      f is not None and r is not None and 0 < f < 1 and 200 <= r < 1000 and abs(f - r / 1000) < 1e-9)
check("IN PROGRESS row: an eta (%s s) and a duration (%s s)" % (e, d), e is not None and e > 0 and d is not None and d > 0)
check("queued row: waits for 1 dependency, queued for some seconds",
      value("asyncmig_migration_dependencies_waiting", name="ops.blocked", status="STARTED") == 1
      and value("asyncmig_migration_queued_seconds", name="ops.blocked") >= 0)
check("no SQL text or data in the metrics", "secret" not in open(sys.argv[1]).read())
sys.exit(1 if fails else 0)
PY
then ok "the exporter's values"; else not_ok "the exporter's values"; fi
grep -q 'level=error' "$work/exporter.log" && not_ok "the exporter logged no error" || ok "the exporter logged no error"

echo "== promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}')"
cp "$repo/contrib/prometheus/alerts.yaml" "$repo/contrib/prometheus/alerts_test.yaml" "$work/"
(cd "$work" && promtool check rules alerts.yaml) >/dev/null && ok "promtool check rules alerts.yaml" || not_ok "promtool check rules alerts.yaml"
(cd "$work" && promtool test rules alerts_test.yaml) >"$work/promtool.out" 2>&1 && ok "promtool test rules alerts_test.yaml" \
	|| { not_ok "promtool test rules alerts_test.yaml"; cat "$work/promtool.out"; }

# ---------------------------------------------------------------- pgbouncer
echo "== pgbouncer $(pgbouncer --version 2>&1 | head -1 | awk '{print $2}') in transaction pooling mode"
bport=$(free_port $((16432 + ($$ % 300))))
mkdir -p "$work/pgbouncer"
cat > "$work/pgbouncer/pgbouncer.ini" <<INI
[databases]
ops = host=127.0.0.1 port=$port dbname=ops
ops_django = host=127.0.0.1 port=$port dbname=ops_django
postgres = host=127.0.0.1 port=$port dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $work/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 50
ignore_startup_parameters = extra_float_digits
logfile = $work/pgbouncer/pgbouncer.log
pidfile = $work/pgbouncer/pgbouncer.pid
INI
printf '"app" ""\n"watcher" ""\n"postgres" ""\n' > "$work/pgbouncer/userlist.txt"
chown -R postgres: "$work/pgbouncer"
runuser -u postgres -- pgbouncer -d -q "$work/pgbouncer/pgbouncer.ini"
for i in $(seq 1 50); do q app ops "$bport" -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
pb() { q app ops "$bport" "$@"; }

# cancel(), of the IN PROGRESS walk
pb -c "SELECT asyncmig.cancel('ops.walk')" >/dev/null
wait_status ops.walk ERROR && ok "cancel() through pgbouncer: the walk ends ERROR" || not_ok "cancel() through pgbouncer"
is "$(q app ops "$port" -c "SELECT error_sqlstate FROM asyncmig.status WHERE name = 'ops.walk'")" 57014 "... canceled (57014)"

# schedule() and a named wait
is "$(pb -c "SELECT asyncmig.schedule('pb.idx', 'CREATE INDEX CONCURRENTLY t_v_idx ON t (v)')")" STARTED "schedule() through pgbouncer"
pb -c "CALL asyncmig.wait('pb.idx', '60 s')" && ok "CALL asyncmig.wait(name) through pgbouncer" || not_ok "CALL asyncmig.wait(name)"
is "$(st pb.idx)/$(q app ops "$port" -c "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass")" "FINISHED/t" \
	"... the index is built and valid"

# a wait that times out gives the caller its error, and the pooled
# connection goes on serving
pb -c "SELECT asyncmig.schedule('pb.later', 'SELECT 1', not_before => now() + interval '1 hour')" >/dev/null
out=$(pb -c "CALL asyncmig.wait('pb.later', '1 s')" 2>&1) && not_ok "wait with a timeout: times out" \
	|| { grep -q 'timed out waiting for asyncmig migration' <<<"$out" && ok "wait with a timeout through pgbouncer times out" \
		|| not_ok "wait with a timeout: $out"; }
is "$(pb -c "SELECT asyncmig.cancel('pb.later')")" ERROR "cancel() of a queued run through pgbouncer"

# scheduled mode in one transaction (SET LOCAL: a session's SET does not
# stay with a pooled connection), then run()
is "$(pb -c "BEGIN" -c "SET LOCAL asyncmig.allow_scheduled_migrations = on" \
	-c "SELECT asyncmig.schedule('pb.sched', 'CREATE TABLE pb_sched (a int)')" -c "COMMIT")" SCHEDULED \
	"schedule() in scheduled mode through pgbouncer (SET LOCAL)"
is "$(pb -c "SELECT asyncmig.run('pb.sched')")" STARTED "run() through pgbouncer"
pb -c "CALL asyncmig.wait('pb.sched', '60 s')" && is "$(st pb.sched)" FINISHED "... and it runs" || not_ok "wait for pb.sched"

# an unnamed wait: every queued run of the database (ops.blocked would
# never end: cancel it first)
is "$(pb -c "SELECT asyncmig.cancel('ops.blocked')")" ERROR "cancel() of a run waiting for a dependency"
pb -c "SELECT asyncmig.schedule('pb.a', 'SELECT pg_sleep(0.5)')" -c "SELECT asyncmig.schedule('pb.b', 'SELECT 1')" >/dev/null
pb -c "CALL asyncmig.wait(NULL, '60 s')" || not_ok "CALL asyncmig.wait(NULL, '60 s')"
is "$(st pb.a)/$(st pb.b)" "FINISHED/FINISHED" "CALL asyncmig.wait() (unnamed) through pgbouncer"

# a running statement: its owner sees it in progress, a pg_monitor role
# sees that something runs but not the SQL; cancel() ends it
pb -c "SELECT asyncmig.schedule('pb.sleep', 'SELECT pg_sleep(60) /* secret */')" >/dev/null
wait_status pb.sleep "IN PROGRESS" || not_ok "pb.sleep runs"
for i in $(seq 1 50); do
	[ -n "$(q app ops "$port" -c "SELECT progress FROM asyncmig.status WHERE name = 'pb.sleep'")" ] && break
	sleep 0.1
done
is "$(q app ops "$bport" -c "SELECT progress FROM asyncmig.status WHERE name = 'pb.sleep'")" \
	"running: SELECT pg_sleep(60) /* secret */" "the owner sees the statement running"
is "$(q watcher ops "$bport" -c "SELECT progress FROM asyncmig.status WHERE name = 'pb.sleep'")" \
	"running: <insufficient privilege>" "a pg_monitor role does not"
pb -c "SELECT asyncmig.cancel('pb.sleep')" >/dev/null
wait_status pb.sleep ERROR && ok "cancel() of a running statement through pgbouncer" || not_ok "cancel() of pb.sleep"

# a pg_monitor role through the pooler sees every row
is "$(q watcher ops "$bport" -c "SELECT count(*) FROM asyncmig.status")" \
	"$(psql_su -A -t -d ops -c "SELECT count(*) FROM asyncmig.migration")" "a pg_monitor role sees every row through pgbouncer"

# ------------------------------------------------- Django through pgbouncer
echo "== Django through pgbouncer"
cp -r "$repo/python" "$work/src"
"$PY" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-build-isolation --no-deps --no-index "$work/src" \
	|| die "pip install of python/ failed"
"$PY" - "$repo/test/django" "$work/project" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import projects
root = projects.write_project(sys.argv[2])
with open(root + "/proj/settings.py", "a") as f:
    # what a site behind a transaction-mode pooler sets (Django's docs)
    f.write('\nDATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True\n')
PY
chown -R postgres: "$work/project"
dj() {
	(cd "$work/project" && env -i PATH="$PATH" HOME="$work" PYTHONPATH="$work/project" PYTHONDONTWRITEBYTECODE=1 \
		DJANGO_SETTINGS_MODULE=proj.settings DB_ENGINE=postgresql DB_NAME=ops_django DB_USER=app \
		DB_HOST=127.0.0.1 DB_PORT="$bport" timeout 180 "$work/venv/bin/python" manage.py "$@")
}
dj migrate --noinput >"$work/django.out" 2>&1 && ok "manage.py migrate through pgbouncer" || { not_ok "manage.py migrate"; cat "$work/django.out"; }
dj asyncmig_wait --timeout 60 >"$work/django.out" 2>&1 && ok "manage.py asyncmig_wait through pgbouncer" || { not_ok "manage.py asyncmig_wait"; cat "$work/django.out"; }
is "$(q app ops_django "$port" -c "SELECT string_agg(name || ' ' || status, ', ' ORDER BY name) FROM asyncmig.status WHERE name IN ('shop.migrations.0002_item_ab_idx_async', 'shop.0005_item_ba_idx')")" \
	"shop.0005_item_ba_idx FINISHED, shop.migrations.0002_item_ab_idx_async FINISHED" \
	"the async migration and the execute_immediately one FINISHED"
is "$(q app ops_django "$port" -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'shop_item%' AND NOT i.indisvalid")" 0 \
	"no INVALID index"
dj asyncmig_wait shop.0005_item_ba_idx --timeout 30 >"$work/django.out" 2>&1 && ok "manage.py asyncmig_wait NAME through pgbouncer" \
	|| { not_ok "manage.py asyncmig_wait NAME"; cat "$work/django.out"; }

# the server log: nothing unexpected (each pattern below is an error this
# script causes on purpose)
if grep -E '(WARNING|ERROR|FATAL):' "$work/pg/server.log" \
	| grep -v -E 'invalid input syntax for type integer: "secret1"|canceling statement due to user request|timed out waiting for asyncmig migration|asyncmig migration "ops.fails" ended|canceled by asyncmig.cancel' >"$work/unexpected.log"; then
	not_ok "no unexpected WARNING or ERROR in the server log"; cat "$work/unexpected.log"
else
	ok "no unexpected WARNING or ERROR in the server log"
fi

[ $failures -eq 0 ] && echo "== ops: all passed" || echo "== ops: $failures failed"
