--
-- schedule(), run(), wait(): the execution model, end to end
--
CREATE DATABASE asyncmig_schedule;
\c asyncmig_schedule
CREATE EXTENSION asyncmig;

-- a run: queued, then FINISHED once the worker ran it
SELECT asyncmig.schedule('m1', 'CREATE TABLE t1 (a int); INSERT INTO t1 SELECT generate_series(1, 1000)');
CALL asyncmig.wait('m1');
SELECT name, status, direction, owner, attempts, error,
       started_at IS NOT NULL AS started, finished_at >= started_at AS finished
  FROM asyncmig.status ORDER BY name;
SELECT count(*) FROM t1;

-- idempotent by name: the same call returns the status and runs nothing
SELECT asyncmig.schedule('m1', 'INSERT INTO t1 VALUES (0)');
SELECT pg_sleep(0.3);
SELECT count(*) FROM t1;

-- statements that must run at top level, and SET that lasts the migration
CREATE TYPE mood AS ENUM ('sad');
SELECT asyncmig.schedule('m2', $$
    SET lock_timeout = '7s';
    CREATE INDEX CONCURRENTLY t1_a_idx ON t1 (a);
    ALTER TYPE mood ADD VALUE 'happy';
    VACUUM (ANALYZE) t1;
    CREATE INDEX CONCURRENTLY t1_a2_idx ON t1 ((a * 2));
    DROP INDEX CONCURRENTLY t1_a2_idx;
    CREATE TABLE m2_settings AS SELECT current_setting('lock_timeout') AS lock_timeout;
$$);
CALL asyncmig.wait('m2');
SELECT name, status, error FROM asyncmig.status WHERE name = 'm2';
SELECT enum_range(NULL::mood);
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid = 't1'::regclass;
SELECT * FROM m2_settings;

-- statements are split by PostgreSQL's parser: semicolons inside quotes,
-- dollar quotes and comments do not split
SELECT asyncmig.schedule('m_split', $sql$
    CREATE FUNCTION m_split_f() RETURNS int LANGUAGE plpgsql AS $f$
    BEGIN
        PERFORM 1; PERFORM 2;   -- two statements; and a comment
        RETURN 3;
    END $f$;
    /* a comment; with a semicolon */
    CREATE TABLE m_split_t AS SELECT m_split_f() AS v, 'a;b' AS s, E'c\';d' AS e;
    DO $$ BEGIN INSERT INTO m_split_t VALUES (4, ';', ';'); END $$
$sql$);
CALL asyncmig.wait('m_split');
SELECT * FROM m_split_t ORDER BY v;

-- the migration's own settings do not steer asyncmig's bookkeeping
SELECT asyncmig.schedule('m_settings', $$
    SET default_transaction_read_only = on;
    SET default_transaction_isolation = serializable;
    SELECT 1;
$$);
SELECT asyncmig.schedule('m_read_only', $$
    SET default_transaction_read_only = on;
    CREATE INDEX CONCURRENTLY t1_ro_idx ON t1 (a);
$$);
CALL asyncmig.wait('m_settings');
CALL asyncmig.wait('m_read_only');
SELECT name, status, error FROM asyncmig.status WHERE name IN ('m_settings', 'm_read_only') ORDER BY name;

-- a rolled-back schedule leaves no row and runs nothing
BEGIN;
SELECT asyncmig.schedule('rolled_back', 'CREATE TABLE never_created (a int)');
ROLLBACK;
SELECT pg_sleep(0.5);
SELECT count(*) FROM asyncmig.migration WHERE name = 'rolled_back';
SELECT to_regclass('never_created');

-- nothing starts before the commit
BEGIN;
SELECT asyncmig.schedule('after_commit', 'CREATE TABLE after_commit (a int)');
SELECT pg_sleep(0.5);
SELECT status FROM asyncmig.migration WHERE name = 'after_commit';
SELECT to_regclass('after_commit');
COMMIT;
CALL asyncmig.wait('after_commit');
SELECT to_regclass('after_commit');

-- the first failing statement ends the run in ERROR; earlier ones stay
SELECT asyncmig.schedule('m_err', $$CREATE TABLE e1 (a int); INSERT INTO e1 VALUES (1/0); CREATE TABLE e2 (a int)$$);
CALL asyncmig.wait('m_err');
SELECT status, meta->'error'->>'sqlstate' AS sqlstate, meta->'error'->>'message' AS message,
       meta->'error'->>'statement' AS statement
  FROM asyncmig.migration WHERE name = 'm_err';
SELECT to_regclass('e1') IS NOT NULL AS e1, to_regclass('e2') IS NOT NULL AS e2;

-- scheduling an ERROR row again runs it again, with the SQL given now
SELECT asyncmig.schedule('m_err', 'INSERT INTO e1 VALUES (1)');
CALL asyncmig.wait('m_err');
SELECT status, error FROM asyncmig.status WHERE name = 'm_err';
SELECT count(*) FROM e1;

-- scheduled mode
SET asyncmig.allow_scheduled_migrations = on;
SELECT asyncmig.schedule('s1', 'CREATE TABLE s1 (a int)');
SELECT asyncmig.schedule('s2', 'CREATE TABLE s2 (a int)', execute_immediately => true);
CALL asyncmig.wait('s2');
SELECT pg_sleep(0.3);
SELECT name, status FROM asyncmig.status WHERE name IN ('s1', 's2') ORDER BY name;
SELECT to_regclass('s1');
CALL asyncmig.wait('s1');
SELECT asyncmig.run('s1');
CALL asyncmig.wait('s1');
SELECT name, status FROM asyncmig.status WHERE name = 's1';
RESET asyncmig.allow_scheduled_migrations;

-- backwards, then forwards again
SELECT asyncmig.schedule('bf', 'CREATE TABLE bf (a int)', 'DROP TABLE bf');
CALL asyncmig.wait('bf');
SELECT asyncmig.run('bf', backwards => true);
CALL asyncmig.wait('bf');
SELECT name, status, direction FROM asyncmig.status WHERE name = 'bf';
SELECT to_regclass('bf');
SELECT asyncmig.schedule('bf', 'CREATE TABLE bf (a int)', 'DROP TABLE bf');
CALL asyncmig.wait('bf');
SELECT name, status, direction FROM asyncmig.status WHERE name = 'bf';
SELECT to_regclass('bf');
-- a finished forwards run can be run again on request
SELECT asyncmig.run('bf', true);
CALL asyncmig.wait('bf');
SELECT asyncmig.run('bf');
CALL asyncmig.wait('bf');
SELECT name, status, direction FROM asyncmig.status WHERE name = 'bf';

-- depends_on: waits for a SCHEDULED dependency, runs after it
SET asyncmig.allow_scheduled_migrations = on;
SELECT asyncmig.schedule('d_parent', 'CREATE TABLE dp (a int)', 'DROP TABLE dp');
RESET asyncmig.allow_scheduled_migrations;
SELECT asyncmig.schedule('d_child', 'CREATE INDEX dp_a_idx ON dp (a)', 'DROP INDEX dp_a_idx', depends_on => '{d_parent}');
SELECT pg_sleep(0.5);
SELECT name, status FROM asyncmig.status WHERE name LIKE 'd\_%' ORDER BY name;
SELECT asyncmig.run('d_parent');
CALL asyncmig.wait('d_child');
SELECT name, status FROM asyncmig.status WHERE name LIKE 'd\_%' ORDER BY name;
SELECT to_regclass('dp_a_idx');

-- backwards runs do not wait for dependencies: undone in the order queued
BEGIN;
SELECT asyncmig.run('d_child', backwards => true);
SELECT asyncmig.run('d_parent', backwards => true);
COMMIT;
CALL asyncmig.wait(timeout => '20 s');
SELECT name, status, direction FROM asyncmig.status WHERE name LIKE 'd\_%' ORDER BY name;
SELECT bool_and(c.finished_at <= p.started_at) AS child_first
  FROM asyncmig.migration c, asyncmig.migration p WHERE c.name = 'd_child' AND p.name = 'd_parent';

-- a failed dependency fails its dependents, naming it
SELECT asyncmig.schedule('f_parent', 'SELECT 1/0');
SELECT asyncmig.schedule('f_child', 'CREATE TABLE f_child (a int)', depends_on => '{f_parent}');
SELECT asyncmig.schedule('f_grandchild', 'CREATE TABLE f_grandchild (a int)', depends_on => '{f_child}');
CALL asyncmig.wait('f_grandchild');
SELECT name, status, error FROM asyncmig.status WHERE name LIKE 'f\_%' ORDER BY name;
SELECT to_regclass('f_child');

-- not_before: not started before its time
SELECT asyncmig.schedule('nb', 'CREATE TABLE nb (a int)', not_before => now() + interval '1.5 seconds');
SELECT pg_sleep(0.5);
SELECT name, status FROM asyncmig.status WHERE name = 'nb';
CALL asyncmig.wait('nb');
SELECT status, started_at >= not_before AS on_time FROM asyncmig.migration WHERE name = 'nb';

-- who and where: owner, database and search_path are recorded and used
CREATE SCHEMA app;
SET search_path = app, public;
SELECT asyncmig.schedule('sp', 'CREATE TABLE in_app (a int)');
RESET search_path;
CALL asyncmig.wait('sp');
SELECT owner, database = current_database() AS here, search_path FROM asyncmig.migration WHERE name = 'sp';
SELECT to_regclass('app.in_app');

-- the oldest runnable first, one at a time in a database
SET asyncmig.allow_scheduled_migrations = on;
SELECT asyncmig.schedule('o1', 'CREATE TABLE order_log (n int, at timestamptz DEFAULT clock_timestamp()); INSERT INTO order_log (n) VALUES (1); SELECT pg_sleep(0.2)');
SELECT asyncmig.schedule('o2', 'INSERT INTO order_log (n) VALUES (2); SELECT pg_sleep(0.2)');
SELECT asyncmig.schedule('o3', 'INSERT INTO order_log (n) VALUES (3)');
RESET asyncmig.allow_scheduled_migrations;
BEGIN;
SELECT asyncmig.run('o1');
SELECT asyncmig.run('o2');
SELECT asyncmig.run('o3');
COMMIT;
CALL asyncmig.wait();
SELECT array_agg(n ORDER BY at) FROM order_log;
SELECT bool_and(a.finished_at <= b.started_at) AS one_at_a_time
  FROM asyncmig.migration a JOIN asyncmig.migration b ON (a.name, b.name) IN (('o1', 'o2'), ('o2', 'o3'));

-- cancel of a queued or scheduled migration
SET asyncmig.allow_scheduled_migrations = on;
SELECT asyncmig.schedule('c_sched', 'CREATE TABLE c_sched (a int)');
RESET asyncmig.allow_scheduled_migrations;
SELECT asyncmig.cancel('c_sched');
SELECT asyncmig.schedule('c_queued', 'CREATE TABLE c_queued (a int)', not_before => now() + interval '1 hour');
SELECT asyncmig.cancel('c_queued');
SELECT asyncmig.cancel('m1');
SELECT name, status, error FROM asyncmig.status WHERE name IN ('c_sched', 'c_queued', 'm1') ORDER BY name;

-- the view reads well
SELECT name, status, duration IS NOT NULL AS has_duration, progress
  FROM asyncmig.status WHERE name = 'm1';

-- a worker never keeps the database from being dropped
\c contrib_regression
DROP DATABASE asyncmig_schedule;
