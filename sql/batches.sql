--
-- schedule_batches(): what is checked at schedule time (each a clear error
-- with a SQLSTATE, nothing recorded), rights, and a few runs end to end
--
CREATE DATABASE asyncmig_batches;
\c asyncmig_batches
CREATE EXTENSION asyncmig;

\ir test/regress_try.sql

CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, u uuid, s text,
                flag boolean, noidx int);
INSERT INTO t (id, u, s) SELECT g * 7, md5(g::text)::uuid, 'k' || g FROM generate_series(1, 1000) g;
CREATE INDEX ON t (u);
CREATE INDEX t_s_partial ON t (s) WHERE id > 10;
CREATE INDEX ON t USING hash (noidx);
CREATE TABLE nokey (a int, b int);
CREATE TABLE twokey (a int, b int, PRIMARY KEY (a, b));
CREATE VIEW v AS SELECT * FROM t;
CREATE SEQUENCE seq;

-- names, as for schedule()
SELECT try($$SELECT asyncmig.schedule_batches(NULL, 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('  ', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);

-- the relation and its key
SELECT try($$SELECT asyncmig.schedule_batches('b', NULL, 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 'no_such_table', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 'v', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 'seq', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 'nokey', 'UPDATE nokey SET b = 1 WHERE a BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 'twokey', 'UPDATE twokey SET b = 1 WHERE a BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 'nokey', 'UPDATE nokey SET b = 1 WHERE a BETWEEN $1 AND $2', key => 'a')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE n BETWEEN $1 AND $2', key => 'n')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE s BETWEEN $1 AND $2', key => 's')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE noidx BETWEEN $1 AND $2', key => 'noidx')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', key => 'nope')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', key => 'ctid')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', key => '')$$);

-- batch_size and pause
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', batch_size => 0)$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', batch_size => -5)$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', batch_size => NULL)$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', pause => '-1 ms')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', pause => NULL)$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', timeout => '0 s')$$);

-- the batch statement: one DML statement with exactly $1 and $2
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', NULL)$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', '')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', '-- nothing')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'SELECT $1::bigint, $2::bigint')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'CREATE TABLE x AS SELECT $1::int, $2::int')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2; UPDATE t SET n = 2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'BEGIN')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id >= $1')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id <= $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = $3 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE u BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', key => 'u')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE no_such SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET no_such = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', 'COMMIT')$$);
-- with depends_on the objects may not exist yet: parameters are still checked
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = $3 WHERE id BETWEEN $1 AND $2', depends_on => '{x}')$$);
SELECT count(*) AS nothing_recorded FROM asyncmig.migration;

-- analysis locked nothing that outlives it
BEGIN;
SELECT try($$SELECT asyncmig.schedule_batches('b', 't', 'UPDATE t SET n = 1 WHERE u BETWEEN $1 AND $2')$$);
SELECT count(*) AS locks_on_t FROM pg_locks WHERE relation = 't'::regclass AND pid = pg_backend_pid();
ROLLBACK;

-- a good one: recorded with its batch columns; transactional
BEGIN;
SELECT asyncmig.schedule_batches('rolled_back', 't', 'UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2');
ROLLBACK;
SELECT count(*) AS after_rollback FROM asyncmig.migration;
SELECT asyncmig.schedule_batches('b_id', 't', 'UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2',
       'UPDATE t SET n = 0', batch_size => 64, pause => '1 ms');
CALL asyncmig.wait('b_id');
SELECT asyncmig.schedule_batches('b_id', 't', 'UPDATE t SET n = n + 100 WHERE id BETWEEN $1 AND $2');  -- idempotent by name
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
SELECT name, status, progress, error FROM asyncmig.status;
SELECT batch_relation, batch_key, batch_size, batch_pause,
       meta->'batches'->>'batches' AS batches, meta->'batches'->>'rows' AS rows,
       meta->'batches'->>'last_key' AS last_key
FROM asyncmig.migration WHERE name = 'b_id';

-- run() of a FINISHED batched migration resumes after its last key: nothing left
SELECT asyncmig.run('b_id');
CALL asyncmig.wait('b_id');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
-- new rows after the last key are walked by the next run
INSERT INTO t (id) VALUES (100000), (100001);
SELECT asyncmig.run('b_id');
CALL asyncmig.wait('b_id');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
-- restart => true starts at the first key again
SELECT asyncmig.run('b_id', restart => true);
CALL asyncmig.wait('b_id');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
SELECT try($$SELECT asyncmig.run('b_id', backwards => true, restart => true)$$);
-- backwards is a plain migration; afterwards forwards starts from the first key
SELECT asyncmig.run('b_id', backwards => true);
CALL asyncmig.wait('b_id');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
SELECT meta ? 'batches' AS has_progress FROM asyncmig.migration WHERE name = 'b_id';
SELECT asyncmig.schedule_batches('b_id', 't', 'UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2');
CALL asyncmig.wait('b_id');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;

-- restart of a plain migration is refused
SELECT asyncmig.schedule('plain', 'SELECT 1');
CALL asyncmig.wait('plain');
SELECT try($$SELECT asyncmig.run('plain', restart => true)$$);

-- a failing batch: ERROR with its bounds; schedule() again resumes
UPDATE t SET n = 0;
SELECT asyncmig.schedule_batches('b_fail', 't', 'UPDATE t SET n = n + 1 / (id - 3500)::int WHERE id BETWEEN $1 AND $2', batch_size => 100);
CALL asyncmig.wait('b_fail');
SELECT status, meta->'error'->>'sqlstate' AS sqlstate, meta->'error'->'batch' AS batch,
       meta->'batches'->>'last_key' AS last_key
FROM asyncmig.migration WHERE name = 'b_fail';
SELECT progress FROM asyncmig.status WHERE name = 'b_fail';
SELECT try($$SELECT asyncmig.schedule_batches('b_fail', 't', 'UPDATE t SET n = n + 1 WHERE u BETWEEN $1 AND $2', key => 'u')$$);
SELECT asyncmig.schedule_batches('b_fail', 't', 'UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2', batch_size => 100);
CALL asyncmig.wait('b_fail');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
-- schedule() with plain SQL makes it a plain migration
SELECT asyncmig.cancel('b_fail');
UPDATE asyncmig.migration SET status = 'ERROR' WHERE name = 'b_fail';
SELECT asyncmig.schedule('b_fail', 'SELECT 1');
CALL asyncmig.wait('b_fail');
SELECT batch_relation, meta ? 'batches' AS has_progress FROM asyncmig.migration WHERE name = 'b_fail';

-- uuid and text keys, a named key with its own index
UPDATE t SET n = 0;
SELECT asyncmig.schedule_batches('b_uuid', 't', 'UPDATE t SET n = n + 1 WHERE u BETWEEN $1 AND $2', key => 'u', batch_size => 33);
CALL asyncmig.wait('b_uuid');
SELECT n, count(*) FROM t GROUP BY n ORDER BY n;
CREATE TABLE words (w text COLLATE "C" PRIMARY KEY, n int DEFAULT 0);
INSERT INTO words (w) SELECT 'w' || g FROM generate_series(1, 500) g;
SELECT asyncmig.schedule_batches('b_text', 'words', 'UPDATE words SET n = n + 1 WHERE w BETWEEN $1 AND $2', batch_size => 7);
CALL asyncmig.wait('b_text');
SELECT n, count(*) FROM words GROUP BY n ORDER BY n;
SELECT meta->'batches'->>'last_key' AS last_key FROM asyncmig.migration WHERE name = 'b_text';

-- rights: EXECUTE is revoked from PUBLIC; the caller must read the key
CREATE ROLE batch_user;
GRANT USAGE ON SCHEMA asyncmig TO batch_user;
SELECT has_function_privilege('batch_user', 'asyncmig.schedule_batches(text, regclass, text, text, integer, interval, name, boolean, text[], timestamptz, interval)', 'EXECUTE') AS public_can_execute;
SET ROLE batch_user;
SELECT try($$SELECT asyncmig.schedule_batches('r', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION asyncmig.schedule_batches(text, regclass, text, text, integer, interval, name, boolean, text[], timestamptz, interval) TO batch_user;
GRANT EXECUTE ON FUNCTION asyncmig.run(text, boolean, boolean) TO batch_user;
SET ROLE batch_user;
SELECT try($$SELECT asyncmig.schedule_batches('r', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.run('b_id', restart => true)$$);
RESET ROLE;
GRANT SELECT (id) ON t TO batch_user;
SET ROLE batch_user;
SELECT try($$SELECT asyncmig.schedule_batches('r', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
RESET ROLE;
CALL asyncmig.wait('r');
SELECT status, owner, meta->'error'->>'sqlstate' AS sqlstate FROM asyncmig.migration WHERE name = 'r';

\c contrib_regression
DROP DATABASE asyncmig_batches;
DROP ROLE batch_user;
