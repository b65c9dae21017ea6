#!/usr/bin/env bash
# test/sqlite/cli_test.sh - the asyncmig SQLite module through the sqlite3 CLI
#
# Usage: cli_test.sh MODULE WORKDIR
#   MODULE   path of the module without its suffix (.../asyncmig_sqlite)
#   WORKDIR  an empty directory for the databases
# The environment variable AM_PRELOAD, if set, is the LD_PRELOAD given to
# every sqlite3 process (the sanitizer runtimes for the ASan build).
# Prints one "ok"/"not ok" line per check; exits 1 if any check failed.
set -euo pipefail

MOD=$1
DIR=$2
SQLITE3=${SQLITE3:-sqlite3}
pass=0
fail=0
db=

ok() {
	pass=$((pass + 1))
	echo "ok - $1"
}
nok() {
	fail=$((fail + 1))
	echo "not ok - $1"
	shift
	local l
	for l in "$@"; do printf '    | %s\n' "$l"; done
}

# newdb NAME: use a fresh database file $DIR/NAME.db
newdb() {
	db="$DIR/$1.db"
	rm -f "$db" "$db-journal" "$db-wal" "$db-shm"
}

# q SQL: run SQL on $db after loading the module (no entry point given);
# sets OUT (stdout), ERR (stderr), RC (exit status)
q() {
	set +e
	OUT=$(printf '.load "%s"\n%s\n' "$MOD" "$1" |
		LD_PRELOAD="${AM_PRELOAD:-}" "$SQLITE3" -batch -bail "$db" 2>"$DIR/stderr")
	RC=$?
	set -e
	ERR=$(cat "$DIR/stderr")
}

# expect DESC SQL EXPECTED: SQL succeeds and prints exactly EXPECTED
expect() {
	q "$2"
	if [ "$RC" = 0 ] && [ "$OUT" = "$3" ] && [ -z "$ERR" ]; then
		ok "$1"
	else nok "$1" "expected: $(printf %q "$3")" "got:      $(printf %q "$OUT")" \
		"exit $RC, stderr: $ERR"; fi
}

# expect_error DESC SQL MESSAGE: SQL fails with MESSAGE in stderr
expect_error() {
	q "$2"
	if [ "$RC" != 0 ] && [[ "$ERR" == *"$3"* ]]; then
		ok "$1"
	else nok "$1" "expected an error containing: $3" "exit $RC, stdout: $OUT" \
		"stderr: $ERR"; fi
}

SETUP="CREATE TABLE t(a, b); INSERT INTO t VALUES(1,'x'),(2,'y'),(3,'z');
CREATE TABLE log(x);"

# ---------------------------------------------------------------------------
newdb load
expect "load without entry point creates table and view" \
	"SELECT type||' '||name FROM sqlite_master WHERE name LIKE 'asyncmig%' AND type<>'index' ORDER BY name;" \
	"table asyncmig_migration
view asyncmig_status"
expect "loading twice is harmless" \
	".load \"$MOD\"
SELECT count(*) FROM asyncmig_migration;" "0"

# ---------------------------------------------------------------------------
newdb apply0
expect "apply_on_sqlite 0 (and the 3-argument default) runs and records nothing" \
	"$SETUP
SELECT quote(asyncmig_schedule('m', 'CREATE INDEX CONCURRENTLY i ON t(a)', 'DROP INDEX i', 0));
SELECT quote(asyncmig_schedule('m', 'CREATE INDEX CONCURRENTLY i ON t(a)', 'DROP INDEX i'));
SELECT quote(asyncmig_schedule('m', 'CREATE INDEX CONCURRENTLY i ON t(a)', 'DROP INDEX i', 'false'));
SELECT count(*) FROM asyncmig_migration;
SELECT count(*) FROM sqlite_master WHERE name='i';" \
	"NULL
NULL
NULL
0
0"

# ---------------------------------------------------------------------------
newdb finished
FWD="INSERT INTO log VALUES('ran'); CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t(a)"
BWD="DROP INDEX CONCURRENTLY IF EXISTS t_a_idx"
expect "apply 1 runs it now: FINISHED and the index exists" \
	"$SETUP
SELECT asyncmig_schedule('m1', '${FWD//\'/\'\'}', '$BWD', 1);
SELECT type, tbl_name FROM sqlite_master WHERE name='t_a_idx';
SELECT status, direction, attempts, forwards_sql, owner IS NULL, started_at IS NOT NULL, finished_at >= started_at FROM asyncmig_migration;" \
	"FINISHED
index|t
FINISHED|forwards|1|$FWD|1|1|1"
expect "idempotent: the same call again returns FINISHED and runs nothing" \
	"SELECT asyncmig_schedule('m1', '${FWD//\'/\'\'}', '$BWD', 1);
SELECT asyncmig_schedule('m1', 'SELECT nothing_here', NULL, 1, 1);
SELECT count(*) FROM log;
SELECT attempts FROM asyncmig_migration WHERE name='m1';" \
	"FINISHED
FINISHED
1
1"
expect "backwards: asyncmig_run(name, 1) drops the index" \
	"SELECT asyncmig_run('m1', 1);
SELECT count(*) FROM sqlite_master WHERE name='t_a_idx';
SELECT status, direction, attempts FROM asyncmig_migration WHERE name='m1';" \
	"FINISHED
0
FINISHED|backwards|2"
expect "schedule after a backwards run runs forwards again" \
	"SELECT asyncmig_schedule('m1', '${FWD//\'/\'\'}', '$BWD', 1);
SELECT count(*) FROM sqlite_master WHERE name='t_a_idx';
SELECT count(*) FROM log;
SELECT status, direction, attempts FROM asyncmig_migration WHERE name='m1';" \
	"FINISHED
1
2
FINISHED|forwards|3"
expect "asyncmig_run on a FINISHED migration runs it again" \
	"SELECT asyncmig_run('m1');
SELECT count(*) FROM log;
SELECT attempts FROM asyncmig_migration WHERE name='m1';" \
	"FINISHED
3
4"

# ---------------------------------------------------------------------------
newdb error
expect "ERROR: the 3rd statement fails, the first two are undone" \
	"$SETUP
SELECT asyncmig_schedule('bad', 'CREATE INDEX CONCURRENTLY i2 ON t(a); CREATE TABLE u(x); INSERT INTO nosuch VALUES(1)', NULL, 1);
SELECT count(*) FROM sqlite_master WHERE name IN ('i2', 'u');
SELECT status, attempts, finished_at IS NOT NULL FROM asyncmig_migration;
SELECT json_extract(meta, '\$.error.message'), json_type(meta, '\$.error.sqlstate'), json_extract(meta, '\$.error.statement') FROM asyncmig_migration;" \
	"ERROR
0
ERROR|1|1
no such table: nosuch|null|INSERT INTO nosuch VALUES(1)"
expect "the status view shows the error" \
	"SELECT name, status, direction, attempts, progress IS NULL, duration >= 0, error FROM asyncmig_status;" \
	"bad|ERROR|forwards|1|1|1|no such table: nosuch"
expect "idempotent ERROR is run again with the SQL given now" \
	"SELECT asyncmig_schedule('bad', 'CREATE INDEX CONCURRENTLY i2 ON t(a); CREATE TABLE u(x)', NULL, 1);
SELECT count(*) FROM sqlite_master WHERE name IN ('i2', 'u');
SELECT status, attempts, forwards_sql, json_extract(meta, '\$.error') IS NULL FROM asyncmig_migration;" \
	"FINISHED
2
FINISHED|2|CREATE INDEX CONCURRENTLY i2 ON t(a); CREATE TABLE u(x)|1"
expect "quotes in the error message make valid JSON" \
	"SELECT asyncmig_schedule('quotes', 'INSERT INTO \"no\"\"such\" VALUES(''a\"b'')', NULL, 1);
SELECT json_valid(meta), json_extract(meta, '\$.error.message'), json_extract(meta, '\$.error.statement') FROM asyncmig_migration WHERE name='quotes';" \
	"ERROR
1|no such table: no\"such|INSERT INTO \"no\"\"such\" VALUES('a\"b')"
expect "a statement that rolls back the whole transaction still ends ERROR" \
	"SELECT asyncmig_schedule('orb', 'CREATE TABLE w(a UNIQUE); INSERT INTO w VALUES(1); INSERT OR ROLLBACK INTO w VALUES(1)', NULL, 1);
SELECT count(*) FROM sqlite_master WHERE name='w';
SELECT status, attempts, json_extract(meta, '\$.error.message') FROM asyncmig_migration WHERE name='orb';" \
	"ERROR
0
ERROR|1|UNIQUE constraint failed: w.a"

# ---------------------------------------------------------------------------
newdb scheduled
expect "scheduled mode: SCHEDULED, then asyncmig_run -> FINISHED" \
	"$SETUP
SELECT asyncmig_allow_scheduled();
SELECT asyncmig_allow_scheduled(1);
SELECT asyncmig_allow_scheduled();
SELECT asyncmig_schedule('s1', 'CREATE INDEX CONCURRENTLY s1_idx ON t(b)', 'DROP INDEX CONCURRENTLY s1_idx', 1);
SELECT asyncmig_schedule('s1', 'CREATE INDEX CONCURRENTLY s1_idx ON t(b)', 'DROP INDEX CONCURRENTLY s1_idx', 1);
SELECT count(*) FROM sqlite_master WHERE name='s1_idx';
SELECT status, attempts, started_at IS NULL FROM asyncmig_migration WHERE name='s1';
SELECT asyncmig_run('s1');
SELECT count(*) FROM sqlite_master WHERE name='s1_idx';
SELECT status, attempts FROM asyncmig_migration WHERE name='s1';" \
	"0
1
1
SCHEDULED
SCHEDULED
0
SCHEDULED|0|1
FINISHED
1
FINISHED|1"
expect "scheduled mode with execute_immediately runs now" \
	"SELECT asyncmig_allow_scheduled(1);
SELECT asyncmig_schedule('s2', 'CREATE INDEX s2_idx ON t(a)', NULL, 1, 1);
SELECT count(*) FROM sqlite_master WHERE name='s2_idx';" \
	"1
FINISHED
1"
expect "scheduled mode is per connection (off in a new one)" \
	"SELECT asyncmig_schedule('s3', 'CREATE INDEX s3_idx ON t(a)', NULL, 1);" \
	"FINISHED"
expect "cancel: a SCHEDULED migration ends ERROR, a FINISHED one is left" \
	"SELECT asyncmig_allow_scheduled(1);
SELECT asyncmig_schedule('s4', 'CREATE INDEX s4_idx ON t(a)', NULL, 1);
SELECT asyncmig_cancel('s4');
SELECT asyncmig_cancel('s3');
SELECT name, status, error FROM asyncmig_status WHERE name IN ('s3', 's4') ORDER BY name;
SELECT json_extract(meta, '\$.error.sqlstate') FROM asyncmig_migration WHERE name='s4';
SELECT count(*) FROM sqlite_master WHERE name='s4_idx';" \
	"1
SCHEDULED
ERROR
FINISHED
s3|FINISHED|
s4|ERROR|canceled before it ran
57014
0"

# ---------------------------------------------------------------------------
newdb translate
expect "CONCURRENTLY inside strings, identifiers and comments is untouched" \
	"$SETUP
SELECT asyncmig_schedule('str', 'CREATE TABLE \"CONCURRENTLY\"(x TEXT DEFAULT ''CREATE INDEX CONCURRENTLY''); /* DROP INDEX CONCURRENTLY */ INSERT INTO \"CONCURRENTLY\" VALUES(''DROP INDEX CONCURRENTLY x''), (''it''''s CONCURRENTLY''); CREATE INDEX [concurrently idx] ON t(a) -- CONCURRENTLY
; CREATE UNIQUE INDEX CONCURRENTLY \`u idx\` ON t(a, b)', NULL, 1);
SELECT x FROM \"CONCURRENTLY\" ORDER BY rowid;
SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='t' ORDER BY name;" \
	"FINISHED
DROP INDEX CONCURRENTLY x
it's CONCURRENTLY
concurrently idx
u idx"
expect "REINDEX ... CONCURRENTLY forms are translated" \
	"CREATE INDEX r_idx ON t(a);
SELECT asyncmig_schedule('rx', 'REINDEX INDEX CONCURRENTLY r_idx; REINDEX TABLE CONCURRENTLY t; REINDEX (VERBOSE) INDEX r_idx; reindex (concurrently) table t; REINDEX DATABASE CONCURRENTLY main; REINDEX SCHEMA CONCURRENTLY public; REINDEX t', 'DROP INDEX CONCURRENTLY r_idx', 1);
SELECT quote(error) FROM asyncmig_status WHERE name='rx';" \
	"FINISHED
NULL"
expect "a trigger body (CASE ... END; inside) is not split" \
	"SELECT asyncmig_schedule('trg', 'CREATE TABLE l2(x); CREATE TRIGGER trg AFTER INSERT ON t BEGIN INSERT INTO l2 VALUES(CASE WHEN new.a > 0 THEN ''pos'' ELSE ''neg'' END); END; INSERT INTO t VALUES(-1, ''n''); SELECT * FROM t', NULL, 1);
SELECT x FROM l2;" \
	"FINISHED
neg"

# ---------------------------------------------------------------------------
newdb input
q "$SETUP"
expect_error "NULL name" "SELECT asyncmig_schedule(NULL, 'SELECT 1', NULL, 1);" \
	"asyncmig: migration name must not be NULL"
expect_error "empty name" "SELECT asyncmig_schedule('', 'SELECT 1', NULL, 1);" \
	"asyncmig: migration name must not be empty"
expect_error "blank name" "SELECT asyncmig_schedule('  ', 'SELECT 1', NULL, 1);" \
	"asyncmig: migration name must not be empty"
expect_error "NULL forwards SQL" "SELECT asyncmig_schedule('n', NULL, NULL, 1);" \
	"asyncmig: forwards SQL must not be NULL"
expect_error "blank forwards SQL" "SELECT asyncmig_schedule('n', '  ', NULL, 1);" \
	"asyncmig: forwards SQL must not be empty"
expect_error "comment-only forwards SQL" "SELECT asyncmig_schedule('n', '-- nothing
/* at all */ ;', NULL, 1);" "asyncmig: forwards SQL must not be empty"
expect_error "too few arguments" "SELECT asyncmig_schedule('n', 'SELECT 1');" \
	"asyncmig: asyncmig_schedule() takes 3 to 5 arguments"
expect_error "too many arguments" "SELECT asyncmig_schedule('n', 'SELECT 1', NULL, 1, 0, 0);" \
	"asyncmig: asyncmig_schedule() takes 3 to 5 arguments"
expect_error "asyncmig_run without arguments" "SELECT asyncmig_run();" \
	"asyncmig: asyncmig_run() takes 1 to 3 arguments"
expect_error "a non-boolean apply_on_sqlite" "SELECT asyncmig_schedule('n', 'SELECT 1', NULL, 'maybe');" \
	"asyncmig: apply_on_sqlite must be a boolean"
expect_error "transaction control is refused" \
	"SELECT asyncmig_schedule('txn', 'CREATE TABLE x1(a); COMMIT; CREATE TABLE x2(a)', NULL, 1);" \
	"asyncmig: statement 2 of the forwards SQL is a transaction control statement (COMMIT)"
expect_error "transaction control in backwards SQL is refused" \
	"SELECT asyncmig_schedule('txn', 'CREATE TABLE x1(a)', 'BEGIN; DROP TABLE x1; END', 1);" \
	"asyncmig: statement 1 of the backwards SQL is a transaction control statement (BEGIN)"
expect_error "a syntax error is refused before anything runs" \
	"SELECT asyncmig_schedule('syn', 'CREATE TABLE x1(a); CREATE TABLEX x2', NULL, 1);" \
	"asyncmig: syntax error in statement 2 of the forwards SQL: near \"TABLEX\": syntax error"
expect_error "asyncmig_run of an unknown name names it" "SELECT asyncmig_run('nope');" \
	'asyncmig: there is no migration named "nope"'
q "SELECT asyncmig_schedule('nb', 'CREATE TABLE nb(a)', NULL, 1);"
expect_error "backwards without backwards SQL" "SELECT asyncmig_run('nb', 1);" \
	'asyncmig: migration "nb" has no backwards SQL'
expect_error "not callable from a trigger (SQLITE_DIRECTONLY)" \
	"CREATE TRIGGER evil AFTER INSERT ON log BEGIN SELECT asyncmig_schedule('trig', 'SELECT 1', NULL, 1); END;
INSERT INTO log VALUES(1);" "unsafe use of asyncmig_schedule()"
expect_error "not callable from a statement that writes" \
	"DROP TRIGGER evil;
INSERT INTO log SELECT asyncmig_schedule('ins', 'SELECT 1', NULL, 1);" \
	"asyncmig: asyncmig_schedule() must be called from a SELECT statement"
expect "bad input wrote nothing" \
	"SELECT name FROM asyncmig_migration; SELECT count(*) FROM sqlite_master WHERE name IN ('x1', 'x2', 'bad'); SELECT count(*) FROM log;" \
	"nb
0
0"

# ---------------------------------------------------------------------------
newdb txn
expect "inside the caller's transaction: a ROLLBACK leaves nothing" \
	"$SETUP
BEGIN;
SELECT asyncmig_schedule('tx', 'CREATE INDEX tx_idx ON t(a)', NULL, 1);
ROLLBACK;
SELECT count(*) FROM asyncmig_migration;
SELECT count(*) FROM sqlite_master WHERE name='tx_idx';" \
	"FINISHED
0
0"
expect "inside the caller's transaction: COMMIT keeps row and index" \
	"BEGIN;
SELECT asyncmig_schedule('tx', 'CREATE INDEX tx_idx ON t(a)', NULL, 1);
SELECT asyncmig_schedule('tx2', 'CREATE INDEX tx2_idx ON t(b); SELECT * FROM nosuch', NULL, 1);
COMMIT;
SELECT name, status FROM asyncmig_migration ORDER BY name;
SELECT name FROM sqlite_master WHERE name LIKE 'tx%' ORDER BY name;" \
	"FINISHED
ERROR
tx|FINISHED
tx2|ERROR
tx_idx"

expect_error "inside the caller's transaction: a whole-transaction rollback is an error" \
	"BEGIN;
INSERT INTO log VALUES('before');
SELECT asyncmig_schedule('orb', 'CREATE TABLE w(a UNIQUE); INSERT INTO w VALUES(1); INSERT OR ROLLBACK INTO w VALUES(1)', NULL, 1);" \
	'asyncmig: migration "orb" failed and SQLite rolled back the whole transaction of the caller: UNIQUE constraint failed: w.a'
expect "... and left nothing" \
	"SELECT count(*) FROM asyncmig_migration WHERE name='orb'; SELECT count(*) FROM log; SELECT count(*) FROM sqlite_master WHERE name='w';" \
	"0
0
0"
expect "VACUUM cannot run in a migration: ERROR with SQLite's reason" \
	"SELECT asyncmig_schedule('vac', 'CREATE TABLE v(a); VACUUM', NULL, 1);
SELECT error FROM asyncmig_status WHERE name='vac';
SELECT count(*) FROM sqlite_master WHERE name='v';" \
	"ERROR
cannot VACUUM from within a transaction
0"
expect_error "not callable from an UPDATE" \
	"UPDATE t SET b = asyncmig_schedule('upd', 'SELECT 1', NULL, 1);" \
	"asyncmig: asyncmig_schedule() must be called from a SELECT statement"

# ---------------------------------------------------------------------------
# Batched migrations: asyncmig_schedule_batches()
newdb batches
# 600 rows with gaps (ids 7, 14, ... and a hole of 3000), in batches of 64
BSETUP="CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<600)
INSERT INTO t(id) SELECT CASE WHEN i>300 THEN i*7+3000 ELSE i*7 END FROM c;"
BSQL='UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2'
expect "batches: every row updated exactly once, gaps in the keys" \
	"$BSETUP
SELECT asyncmig_schedule_batches('b1', 't', '$BSQL', 'UPDATE t SET n = n - 1', 64, 0, NULL, 1);
SELECT count(*), min(n), max(n) FROM t;
SELECT status, direction, attempts, forwards_sql FROM asyncmig_migration WHERE name='b1';
SELECT batch_relation, batch_key, batch_size, batch_pause, json_extract(meta, '\$.batches.rows'), json_extract(meta, '\$.batches.rows_affected'), json_extract(meta, '\$.batches.batches'), json_extract(meta, '\$.batches.last_key'), json_extract(meta, '\$.batches.estimate_rows'), json_extract(meta, '\$.batches.run_batches') FROM asyncmig_migration WHERE name='b1';
SELECT progress FROM asyncmig_status WHERE name='b1';" \
	"FINISHED
600|1|1
FINISHED|forwards|1|$BSQL
t|id|64|0.0|600|600|10|7200|600|10
10 batches: 600 rows"
expect "batches: idempotent by name (FINISHED, nothing runs again)" \
	"SELECT asyncmig_schedule_batches('b1', 't', '$BSQL', NULL, 64, 0, NULL, 1);
SELECT max(n) FROM t; SELECT attempts FROM asyncmig_migration WHERE name='b1';" \
	"FINISHED
1
1"
expect "batches: backwards runs backwards_sql as a plain migration" \
	"SELECT asyncmig_run('b1', 1);
SELECT max(n) FROM t;
SELECT status, direction, json_extract(meta, '\$.batches.rows') FROM asyncmig_migration WHERE name='b1';" \
	"FINISHED
0
FINISHED|backwards|600"
expect "batches: forwards again after backwards starts from the first key" \
	"SELECT asyncmig_schedule_batches('b1', 't', '$BSQL', 'UPDATE t SET n = n - 1', 64, 0, NULL, 1);
SELECT min(n), max(n) FROM t;
SELECT direction, attempts, json_extract(meta, '\$.batches.rows') FROM asyncmig_migration WHERE name='b1';" \
	"FINISHED
1|1
forwards|3|600"
expect "batches: asyncmig_run of a FINISHED one resumes (only new rows)" \
	"INSERT INTO t(id) VALUES(100000), (100001);
SELECT asyncmig_run('b1');
SELECT count(*) FROM t WHERE n<>1;
SELECT json_extract(meta, '\$.batches.rows'), json_extract(meta, '\$.batches.last_key') FROM asyncmig_migration WHERE name='b1';" \
	"FINISHED
0
602|100001"
expect "batches: asyncmig_run(name, 0, 1) starts again from the first key" \
	"SELECT asyncmig_run('b1', 0, 1);
SELECT min(n), max(n) FROM t;
SELECT json_extract(meta, '\$.batches.rows') FROM asyncmig_migration WHERE name='b1';" \
	"FINISHED
2|2
602"

newdb batches_resume
expect "batches: an error in the middle ends ERROR with the batch's bounds, earlier batches kept" \
	"$BSETUP
CREATE TABLE ctl(fail INTEGER); INSERT INTO ctl VALUES(1);
CREATE TRIGGER boom BEFORE UPDATE ON t WHEN new.id = 5450 AND (SELECT fail FROM ctl)
BEGIN SELECT RAISE(ABORT, 'boom at 5450'); END;
SELECT asyncmig_schedule_batches('r1', 't', '$BSQL', NULL, 50, '1ms', NULL, 1);
SELECT sum(n=1), sum(n=0), max(n) FROM t;
SELECT status, json_extract(meta, '\$.error.message'), json_extract(meta, '\$.error.detail'), json_extract(meta, '\$.batches.batches'), json_extract(meta, '\$.batches.last_key') FROM asyncmig_migration WHERE name='r1';
SELECT error, progress FROM asyncmig_status WHERE name='r1';" \
	"ERROR
300|300|1
ERROR|boom at 5450|batch 7: keys 5107 to 5450|6|2100
boom at 5450|batch 6: 300 of ~600 rows (50%)"
expect "batches: asyncmig_run resumes after the last batch done: every row exactly once" \
	"UPDATE ctl SET fail = 0;
SELECT asyncmig_run('r1');
SELECT count(*), min(n), max(n) FROM t;
SELECT status, attempts, json_extract(meta, '\$.batches.rows'), json_type(meta, '\$.error') FROM asyncmig_migration WHERE name='r1';" \
	"FINISHED
600|1|1
FINISHED|2|600|"
expect "batches: schedule of a row in ERROR resumes too" \
	"UPDATE ctl SET fail = 1;
CREATE TABLE t2(id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
INSERT INTO t2(id) SELECT id FROM t;
DROP TRIGGER boom;
CREATE TRIGGER boom2 BEFORE UPDATE ON t2 WHEN new.id = 5450 AND (SELECT fail FROM ctl)
BEGIN SELECT RAISE(ABORT, 'boom'); END;
SELECT asyncmig_schedule_batches('r2', 't2', 'UPDATE t2 SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', NULL, 50, 0, NULL, 1);
UPDATE ctl SET fail = 0;
SELECT asyncmig_schedule_batches('r2', 't2', 'UPDATE t2 SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', NULL, 50, 0, NULL, 1);
SELECT count(*), min(n), max(n) FROM t2;" \
	"ERROR
FINISHED
600|1|1"

newdb batches_keys
expect "batches: text keys (a TEXT PRIMARY KEY), batches of 7" \
	"CREATE TABLE s(k TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<100)
INSERT INTO s(k) SELECT printf('key-%c-%d', char(97 + i % 26), i) FROM c;
SELECT asyncmig_schedule_batches('s1', 's', 'UPDATE s SET n = n + 1 WHERE k BETWEEN \$1 AND \$2', NULL, 7, NULL, NULL, 1);
SELECT count(*), min(n), max(n) FROM s;
SELECT batch_key, json_extract(meta, '\$.batches.batches'), json_extract(meta, '\$.batches.last_key') = (SELECT max(k) FROM s) FROM asyncmig_migration WHERE name='s1';" \
	"FINISHED
100|1|1
k|15|1"
expect "batches: a named indexed key with duplicates (?1/?2 spelling)" \
	"CREATE TABLE u(id INTEGER PRIMARY KEY, g INTEGER, n INTEGER NOT NULL DEFAULT 0);
CREATE INDEX u_g ON u(g);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<200)
INSERT INTO u(g) SELECT i % 13 FROM c;
INSERT INTO u(g) VALUES(NULL);
SELECT asyncmig_schedule_batches('u1', 'u', 'UPDATE u SET n = n + 1 WHERE g BETWEEN ?1 AND ?2', NULL, 10, 0, 'g', 1);
SELECT sum(n=1), sum(n=0), max(n) FROM u;" \
	"FINISHED
200|1|1"
expect "batches: the rowid of a table without a primary key" \
	"CREATE TABLE v(a, n INTEGER NOT NULL DEFAULT 0);
INSERT INTO v(a) VALUES('x'), ('y'), ('z');
SELECT asyncmig_schedule_batches('v1', 'v', 'DELETE FROM v WHERE rowid BETWEEN \$1 AND \$2 AND a = ''y''', NULL, 2, 0, NULL, 1);
SELECT group_concat(a) FROM v;
SELECT batch_key, json_extract(meta, '\$.batches.rows'), json_extract(meta, '\$.batches.rows_affected') FROM asyncmig_migration WHERE name='v1';" \
	"FINISHED
x,z
rowid|3|1"

newdb batches_modes
expect "batches: apply_on_sqlite 0 (the default) runs and records nothing" \
	"$BSETUP
SELECT quote(asyncmig_schedule_batches('m0', 't', '$BSQL'));
SELECT quote(asyncmig_schedule_batches('m0', 'no_such_table', '$BSQL', NULL, 10, 0, NULL, 0));
SELECT count(*) FROM asyncmig_migration; SELECT max(n) FROM t;" \
	"NULL
NULL
0
0"
expect "batches: scheduled mode records SCHEDULED, asyncmig_run runs the batches" \
	"SELECT asyncmig_allow_scheduled(1);
SELECT asyncmig_schedule_batches('m1', 't', '$BSQL', NULL, 100, 0, NULL, 1);
SELECT max(n) FROM t;
SELECT asyncmig_run('m1');
SELECT min(n), max(n) FROM t;" \
	"1
SCHEDULED
0
FINISHED
1|1"
expect "batches: inside the caller's transaction, a ROLLBACK leaves nothing" \
	"BEGIN;
SELECT asyncmig_schedule_batches('m2', 't', '$BSQL', NULL, 100, 0, NULL, 1);
SELECT max(n) FROM t;
ROLLBACK;
SELECT max(n) FROM t; SELECT count(*) FROM asyncmig_migration WHERE name='m2';" \
	"FINISHED
2
1
0"

newdb oldview
# the table and view as the module before batched migrations made them
q "DROP VIEW asyncmig_status; DROP TABLE asyncmig_migration;
CREATE TABLE asyncmig_migration(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK(length(trim(name))>0),
  status TEXT NOT NULL CHECK(status IN ('SCHEDULED','STARTED','IN PROGRESS','FINISHED','ERROR')),
  direction TEXT CHECK(direction IN ('forwards','backwards')), forwards_sql TEXT NOT NULL, backwards_sql TEXT,
  owner TEXT, search_path TEXT, attempts INTEGER NOT NULL DEFAULT 0, meta TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00','now')),
  started_at TEXT, finished_at TEXT, depends_on TEXT, not_before TEXT, timeout REAL);
INSERT INTO asyncmig_migration(name, status, direction, forwards_sql, attempts) VALUES('old', 'FINISHED', 'forwards', 'SELECT 1', 1);
CREATE VIEW asyncmig_status AS SELECT name, status, NULL AS progress FROM asyncmig_migration;"
expect "the table and view of an older module are brought up to date on load" \
	"SELECT instr(sql, 'asyncmig view 3') > 0 FROM sqlite_master WHERE name='asyncmig_status';
SELECT group_concat(name) FROM pragma_table_info('asyncmig_migration') WHERE name LIKE 'batch%';
SELECT name, status, progress FROM asyncmig_status;
CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0); INSERT INTO t(id) VALUES(1), (2), (3);
SELECT asyncmig_schedule_batches('ov', 't', '$BSQL', NULL, 2, 0, NULL, 1);
SELECT progress FROM asyncmig_status WHERE name='ov';" \
	"1
batch_relation,batch_key,batch_size,batch_pause
old|FINISHED|
FINISHED
2 batches: 3 rows"

newdb batches_input
q "$BSETUP CREATE VIEW tv AS SELECT * FROM t; CREATE TABLE w(a, b, PRIMARY KEY(a, b)) WITHOUT ROWID; CREATE TABLE x(id INTEGER PRIMARY KEY, c);"
# bad DESC ARGS MESSAGE: asyncmig_schedule_batches(ARGS) fails with MESSAGE
bad() { expect_error "batches refused: $1" "SELECT asyncmig_schedule_batches($2);" "$3"; }
bad "two statements" "'e', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN \$1 AND \$2; UPDATE t SET n = 2', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql must be one DML statement, not 2 statements"
bad "a SELECT" "'e', 't', 'SELECT \$1, \$2', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql must be one DML statement (INSERT, UPDATE, DELETE), not SELECT"
bad "a WITH ... SELECT" "'e', 't', 'WITH a AS (SELECT 1) SELECT \$1, \$2', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql must be one DML statement that writes"
bad "no \$2" "'e', 't', 'UPDATE t SET n = 1 WHERE id = \$1', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql must use exactly the parameters \$1 and \$2"
bad "a third parameter" "'e', 't', 'UPDATE t SET n = \$3 WHERE id BETWEEN \$1 AND \$2', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql must use exactly the parameters \$1 and \$2"
bad "a named parameter" "'e', 't', 'UPDATE t SET n = :n WHERE id BETWEEN \$1 AND \$2', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql must use exactly the parameters \$1 and \$2"
bad "an unknown column" "'e', 't', 'UPDATE t SET nn = 1 WHERE id BETWEEN \$1 AND \$2', NULL, 10, 0, NULL, 1" \
	"asyncmig: batch_sql: no such column: nn"
bad "NULL batch_sql" "'e', 't', NULL, NULL, 10, 0, NULL, 1" "asyncmig: batch_sql must not be NULL"
bad "batch_size 0" "'e', 't', '$BSQL', NULL, 0, 0, NULL, 1" \
	"asyncmig: batch_size must be an integer greater than 0, not 0"
bad "batch_size -5" "'e', 't', '$BSQL', NULL, -5" "asyncmig: batch_size must be an integer greater than 0, not -5"
bad "batch_size 1.5" "'e', 't', '$BSQL', NULL, 1.5" "asyncmig: batch_size must be an integer greater than 0, not 1.5"
bad "a negative pause" "'e', 't', '$BSQL', NULL, 10, -1" "asyncmig: pause must be a number of seconds of 0 or more"
bad "a pause that is no duration" "'e', 't', '$BSQL', NULL, 10, 'soon'" "asyncmig: pause must be a number of seconds of 0 or more"
bad "NULL relation" "'e', NULL, '$BSQL', NULL, 10, 0, NULL, 1" "asyncmig: relation must name a table"
bad "no such table" "'e', 'nope', '$BSQL', NULL, 10, 0, NULL, 1" 'asyncmig: there is no table "nope" in the main database'
bad "a view" "'e', 'tv', '$BSQL', NULL, 10, 0, NULL, 1" 'asyncmig: "tv" is not an ordinary table (view,0)'
bad "no such key column" "'e', 't', '$BSQL', NULL, 10, 0, 'nokey', 1" 'asyncmig: table "t" has no column "nokey" for the key'
bad "a key column without an index" "'e', 'x', 'UPDATE x SET c = 1 WHERE c BETWEEN \$1 AND \$2', NULL, 10, 0, 'c', 1" \
	'asyncmig: key column "c" of table "x" has no index'
bad "no usable default key" "'e', 'w', 'UPDATE w SET b = b WHERE a BETWEEN \$1 AND \$2', NULL, 10, 0, NULL, 1" \
	'asyncmig: table "w" has no single-column primary key and no rowid to walk'
bad "too few arguments" "'e', 't'" "asyncmig: asyncmig_schedule_batches() takes 3 to 9 arguments"
bad "transaction control in backwards SQL" "'e', 't', '$BSQL', 'COMMIT', 10, 0, NULL, 1" \
	"asyncmig: statement 1 of the backwards SQL is a transaction control statement (COMMIT)"
expect_error "batches refused: not from a trigger (SQLITE_DIRECTONLY)" \
	"CREATE TRIGGER evil AFTER INSERT ON x BEGIN SELECT asyncmig_schedule_batches('trig', 't', '$BSQL', NULL, 10, 0, NULL, 1); END;
INSERT INTO x(c) VALUES(1);" "unsafe use of asyncmig_schedule_batches()"
expect "batches: bad input wrote nothing" \
	"SELECT count(*) FROM asyncmig_migration; SELECT max(n) FROM t;" \
	"0
0"

echo "# cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
