--
-- monitor: members of pg_monitor (pg_read_all_stats) read every row of the
-- status view without SQL texts; the numeric columns for programs
--
CREATE DATABASE asyncmig_monitor;
\c asyncmig_monitor
CREATE EXTENSION asyncmig;
\ir test/regress_try.sql
CREATE ROLE regress_mon_app LOGIN;
CREATE ROLE regress_mon_other LOGIN;
CREATE ROLE regress_mon_watch LOGIN IN ROLE pg_monitor;
-- the documented grants (not echoed: the recipe is docs/grants.sql)
\set ECHO none
\set app_role regress_mon_app
\ir docs/grants.sql
\set app_role regress_mon_other
\ir docs/grants.sql
\set ECHO all
\set ON_ERROR_STOP off
GRANT CREATE ON SCHEMA public TO regress_mon_app;

-- the app role's migrations: one that ends FINISHED, one ERROR, a batched
-- one, one waiting for a dependency
SET ROLE regress_mon_app;
CREATE TABLE t (id int PRIMARY KEY, v int);
INSERT INTO t SELECT g, 0 FROM generate_series(1, 1000) g;
ANALYZE t;
SELECT asyncmig.schedule('m.ok', 'SELECT 1');
SELECT asyncmig.schedule('m.fails', $$SELECT ('secret' || 1)::integer$$);
SELECT asyncmig.schedule_batches('m.batches', 't', 'UPDATE t SET v = 1 WHERE id BETWEEN $1 AND $2', batch_size => 100);
SELECT asyncmig.schedule_batches('m.batch_fails', 't', 'UPDATE t SET v = 10 / (id - 301) WHERE id BETWEEN $1 AND $2', batch_size => 100);
SELECT asyncmig.schedule('m.waits', 'SELECT 1', depends_on => '{m.ghost,m.ok}');
CALL asyncmig.wait('m.ok', '60 s');
CALL asyncmig.wait('m.fails', '60 s');
CALL asyncmig.wait('m.batches', '60 s');
CALL asyncmig.wait('m.batch_fails', '60 s');

-- the owner sees its rows, with their SQL texts
SELECT name, status, error, error_sqlstate FROM asyncmig.status ORDER BY name;
RESET ROLE;

-- another role with the same grants sees none of them
SET ROLE regress_mon_other;
SELECT count(*) FROM asyncmig.status;
RESET ROLE;

-- a pg_monitor member sees every row, no SQL text, and may do nothing else
SET ROLE regress_mon_watch;
SELECT name, status, owner, error, error_sqlstate,
       regexp_replace(progress, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', '<time>', 'g') AS progress
  FROM asyncmig.status ORDER BY name;
SELECT try($$SELECT count(*) FROM asyncmig.migration$$);
SELECT try($$SELECT asyncmig.schedule('m.watch', 'SELECT 1')$$);
SELECT try($$SELECT asyncmig.cancel('m.waits')$$);
CALL asyncmig.wait('m.waits', '0.1 s');
RESET ROLE;

-- pg_read_all_stats alone is enough; pg_monitor is a member of it
CREATE ROLE regress_mon_stats LOGIN IN ROLE pg_read_all_stats;
SET ROLE regress_mon_stats;
SELECT count(*) FROM asyncmig.status;
RESET ROLE;

-- the numbers, for every reader
SET ROLE regress_mon_watch;
SELECT name,
       duration_seconds >= 0 AS has_duration,
       duration_seconds = extract(epoch FROM duration) AS duration_matches,
       progress_fraction, rows_done, eta_seconds,
       queued_seconds >= 0 AS queued, dependencies_waiting
  FROM asyncmig.status ORDER BY name;
-- their types, for postgres_exporter (a number, not an interval)
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'asyncmig.status'::regclass AND attnum > 10 ORDER BY attnum;
RESET ROLE;

-- a queued run with nothing to wait for: no worker-slot message while
-- the launcher has slots (t/072_worker_slot_progress.pl shows it without)
SHOW asyncmig.worker_slot_wait;
SELECT try($$SET asyncmig.worker_slot_wait = 'x'$$);

-- id: a NOTIFY payload is {"id": ..., "status": ...}; the view's id is the
-- row's, for every reader that sees the row (the owner, pg_monitor)
SELECT count(*) AS rows, count(*) FILTER (WHERE s.id = m.id) AS same_id
  FROM asyncmig.status s JOIN asyncmig.migration m ON m.name = s.name;
SELECT id AS ok_id FROM asyncmig.migration WHERE name = 'm.ok' \gset
SET ROLE regress_mon_app;
SELECT name FROM asyncmig.status WHERE id = :ok_id;
RESET ROLE;
SET ROLE regress_mon_watch;
SELECT name FROM asyncmig.status WHERE id = :ok_id;
RESET ROLE;
SET ROLE regress_mon_other;
SELECT count(*) FROM asyncmig.status WHERE id = :ok_id;
RESET ROLE;
-- the last column (CREATE OR REPLACE VIEW appends)
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid = 'asyncmig.status'::regclass
 ORDER BY attnum DESC LIMIT 1;

-- a dependency's deadline ("gives up at") is the worker's: not_before counts
-- at most 1000 years after the row was queued, so a row stored before
-- schedule() refused far times (not_before near the end of the timestamp
-- range) reads without "timestamp out of range"; in a transaction rolled
-- back, so that no worker sees these rows
BEGIN;
INSERT INTO asyncmig.migration (name, forwards_sql, owner, search_path, depends_on, not_before, updated_at)
VALUES ('m.old_far', 'SELECT 1', 'regress_mon_app', 'public', '{m.ghost}', '294276-12-31 23:30:00+00', '2026-01-01 00:00:00+00'),
	('m.old_never', 'SELECT 1', 'regress_mon_app', 'public', '{m.ghost}', 'infinity', '2026-01-01 00:00:00+00');
SELECT name, progress, dependencies_waiting FROM asyncmig.status WHERE name IN ('m.old_far', 'm.old_never') ORDER BY name;
SET ROLE regress_mon_watch;
SELECT count(*) FROM asyncmig.status;
RESET ROLE;
ROLLBACK;
-- today schedule() refuses a far not_before; the furthest it takes (and
-- infinity) read as they are
SET ROLE regress_mon_app;
SELECT try($$SELECT asyncmig.schedule('m.new_far', 'SELECT 1', depends_on => '{m.ghost}', not_before => '294276-12-31 23:30:00+00')$$);
BEGIN;
SELECT asyncmig.schedule('m.new_99y', 'SELECT 1', depends_on => '{m.ghost}', not_before => now() + interval '99 years');
SELECT asyncmig.schedule('m.new_never', 'SELECT 1', depends_on => '{m.ghost}', not_before => 'infinity');
SELECT name,
       regexp_replace(progress, '\d{4,}-\d\d-\d\d \d\d:\d\d:\d\d', '<time>', 'g') AS progress
  FROM asyncmig.status WHERE name LIKE 'm.new%' ORDER BY name;
ROLLBACK;
RESET ROLE;

DROP TABLE t;
\c contrib_regression
DROP DATABASE asyncmig_monitor;
DROP ROLE regress_mon_app, regress_mon_other, regress_mon_watch, regress_mon_stats;
