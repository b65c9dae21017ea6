--
-- schedule_batches(): the walk's order, its key and what its statement may
-- do, checked at schedule time (each a clear error with a SQLSTATE, nothing
-- recorded): an index in the order $1/$2 are compared in, no statement
-- that assigns to the key or inserts into the walked table, the owner's
-- privileges for the statement, and no absurd interval or time.
--
CREATE DATABASE asyncmig_batch_walk;
\c asyncmig_batch_walk
CREATE EXTENSION asyncmig;

\ir test/regress_try.sql

-- the walk's order: the key type's default btree operator class and the
-- column's collation; an index that orders otherwise is not the key's
CREATE TABLE wc (k text COLLATE "C" NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO wc (k) SELECT 'k' || g FROM generate_series(1, 100) g;
CREATE INDEX wc_posix ON wc (k COLLATE "POSIX");
CREATE INDEX wc_pattern ON wc (k text_pattern_ops);
SELECT try($$SELECT asyncmig.schedule_batches('w1', 'wc', 'UPDATE wc SET n = n + 1 WHERE k BETWEEN $1 AND $2', key => 'k')$$);
-- a type without a default btree operator class
CREATE TABLE wpt (p point, n int);
CREATE INDEX ON wpt USING gist (p);
SELECT try($$SELECT asyncmig.schedule_batches('w3', 'wpt', 'UPDATE wpt SET n = 1 WHERE p ~= $1 OR p ~= $2', key => 'p')$$);
SELECT count(*) AS recorded FROM asyncmig.migration;
-- with an index in the column's own order, it is that one
CREATE INDEX wc_k ON wc (k);
SELECT asyncmig.schedule_batches('w_ok', 'wc', 'UPDATE wc SET n = n + 1 WHERE k BETWEEN $1 AND $2', key => 'k', batch_size => 7);
CALL asyncmig.wait('w_ok', '60 s');
SELECT n, count(*) FROM wc GROUP BY n ORDER BY n;
SELECT meta->'batches'->'walk'->>'index' AS index,
       meta->'batches'->'walk'->>'type' AS type,
       meta->'batches'->'walk'->>'collation' AS collation,
       meta->'batches'->'walk'->>'opclass' AS opclass,
       meta->'batches'->>'upper_key' AS upper_key
  FROM asyncmig.migration WHERE name = 'w_ok';

-- a statement that moves keys or creates rows in the walked table
CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, other bigint);
INSERT INTO t (id) SELECT g FROM generate_series(1, 100) g;
CREATE TABLE t_copy (LIKE t);
SELECT try($$SELECT asyncmig.schedule_batches('m1', 't', 'UPDATE t SET id = id + 1000000 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('m2', 't', 'UPDATE t SET n = 1, id = id WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('m3', 't', 'UPDATE t AS x SET (n, id) = (1, x.id * 2) WHERE x.id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('m4', 't', 'INSERT INTO t (id) SELECT id + 1000000 FROM t WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('m5', 't', 'WITH moved AS (UPDATE t SET id = -id WHERE id BETWEEN $1 AND $2 RETURNING *) INSERT INTO t_copy SELECT * FROM moved')$$);
SELECT try($$SELECT asyncmig.schedule_batches('m6', 't', 'WITH c AS (INSERT INTO t SELECT id + 1000, 0 FROM t WHERE id BETWEEN $1 AND $2 RETURNING id) DELETE FROM t_copy WHERE id IN (SELECT id FROM c)')$$);
SELECT count(*) AS recorded FROM asyncmig.migration WHERE name LIKE 'm_';
-- allowed: other columns, other tables, deleting
SELECT try($$SELECT asyncmig.schedule_batches('ok1', 't', 'UPDATE t SET other = id * 2 WHERE id BETWEEN $1 AND $2', execute_immediately => true)$$);
SELECT try($$SELECT asyncmig.schedule_batches('ok2', 't', 'INSERT INTO t_copy SELECT * FROM t WHERE id BETWEEN $1 AND $2', execute_immediately => true)$$);
SELECT try($$SELECT asyncmig.schedule_batches('ok3', 't', 'DELETE FROM t_copy WHERE id BETWEEN $1 AND $2', execute_immediately => true, depends_on => '{ok2}')$$);
CALL asyncmig.wait('ok1', '60 s');
CALL asyncmig.wait('ok3', '60 s');
SELECT name, status FROM asyncmig.migration WHERE name LIKE 'ok_' ORDER BY name;

-- absurd intervals and times: a pause or timeout too long for a timestamp
-- is "until cancelled" (am_exec_sleep() clamps it, t/033 runs one); a
-- finite not_before so far ahead that the times computed from it overflow
-- is refused ('infinity', never, stays: sql/security_hostile.sql)
SELECT try($$SELECT asyncmig.schedule('i4', 'SELECT 1', not_before => '200000-01-01')$$);
SELECT try($$SELECT asyncmig.schedule_batches('i6', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', not_before => '294276-12-31')$$);
SELECT count(*) AS recorded FROM asyncmig.migration WHERE name LIKE 'i_';
SELECT try($$SELECT asyncmig.schedule_batches('i_ok', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2', pause => '300000 years', timeout => '300000 years', not_before => now() + '99 years', execute_immediately => true)$$);
-- one recorded before the refusal: its dependency deadline is computed
UPDATE asyncmig.migration SET not_before = '294276-12-31', depends_on = '{nothing}' WHERE name = 'i_ok';
SELECT try($$SELECT asyncmig.schedule('i_next', 'SELECT 1')$$);
CALL asyncmig.wait('i_next', '60 s');
SELECT asyncmig.cancel('i_ok');

-- the owner's privileges for the statement, at schedule time
CREATE ROLE walk_reader;
-- the role has the grants of docs/grants.sql (not echoed: that file grows)
\set app_role walk_reader
\set ECHO none
\ir docs/grants.sql
\set ON_ERROR_STOP off
\set ECHO all
GRANT SELECT ON t TO walk_reader;
SET ROLE walk_reader;
SELECT try($$SELECT asyncmig.schedule_batches('p1', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('p2', 't', 'DELETE FROM t WHERE id BETWEEN $1 AND $2')$$);
SELECT try($$SELECT asyncmig.schedule_batches('p3', 't', 'INSERT INTO t_copy SELECT * FROM t WHERE id BETWEEN $1 AND $2')$$);
RESET ROLE;
GRANT UPDATE (n) ON t TO walk_reader;
SET ROLE walk_reader;
-- UPDATE of n, but the statement also reads t_copy
SELECT try($$SELECT asyncmig.schedule_batches('p4', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2 AND id NOT IN (SELECT id FROM t_copy)')$$);
SELECT try($$SELECT asyncmig.schedule_batches('p5', 't', 'UPDATE t SET other = 1 WHERE id BETWEEN $1 AND $2')$$);
SELECT count(*) AS recorded FROM asyncmig.status WHERE name LIKE 'p_';
SELECT try($$SELECT asyncmig.schedule_batches('p_ok', 't', 'UPDATE t SET n = 2 WHERE id BETWEEN $1 AND $2', execute_immediately => true)$$);
RESET ROLE;
CALL asyncmig.wait('p_ok', '60 s');
SELECT status, owner FROM asyncmig.migration WHERE name = 'p_ok';

\c contrib_regression
DROP DATABASE asyncmig_batch_walk;
DROP ROLE walk_reader;
