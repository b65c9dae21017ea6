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

DROP TABLE t;
\c contrib_regression
DROP DATABASE asyncmig_monitor;
DROP ROLE regress_mon_app, regress_mon_other, regress_mon_watch, regress_mon_stats;
