#!/bin/bash
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

ok() { pass=$((pass+1)); echo "ok - $1"; }
nok() {
  fail=$((fail+1)); echo "not ok - $1"; shift
  local l; for l in "$@"; do printf '    | %s\n' "$l"; done
}

# newdb NAME: use a fresh database file $DIR/NAME.db
newdb() { db="$DIR/$1.db"; rm -f "$db" "$db-journal" "$db-wal" "$db-shm"; }

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
  if [ "$RC" = 0 ] && [ "$OUT" = "$3" ] && [ -z "$ERR" ]; then ok "$1"
  else nok "$1" "expected: $(printf %q "$3")" "got:      $(printf %q "$OUT")" \
           "exit $RC, stderr: $ERR"; fi
}

# expect_error DESC SQL MESSAGE: SQL fails with MESSAGE in stderr
expect_error() {
  q "$2"
  if [ "$RC" != 0 ] && [[ "$ERR" == *"$3"* ]]; then ok "$1"
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
SELECT count(*) FROM sqlite_master WHERE name='s4_idx';" \
  "1
SCHEDULED
ERROR
FINISHED
s3|FINISHED|
s4|ERROR|canceled
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

echo "# cli: $pass passed, $fail failed"
[ "$fail" = 0 ]
