--
-- errors in a migration's SQL text point into that text; a batched
-- migration of a temporary table is refused
--
CREATE DATABASE asyncmig_sql_errors;
\c asyncmig_sql_errors
CREATE EXTENSION asyncmig;
CREATE TABLE t (id bigint PRIMARY KEY, n int);

-- the caret is under the error in the checked text (QUERY), not somewhere
-- in the caller's statement
SELECT asyncmig.schedule('syntax', 'CREATE INDEX ON t (n');
SELECT asyncmig.schedule('syntax', 'SELECT 1', 'DROP TABLE t; DROP TABEL t');
SELECT asyncmig.schedule_batches('batch_syntax', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2 AND');
SELECT asyncmig.schedule_batches('batch_column', 't', 'UPDATE t SET n = nosuch WHERE id BETWEEN $1 AND $2');
SELECT asyncmig.schedule_batches('batch_type', 't', 'UPDATE t SET n = 1 WHERE id BETWEEN $1 AND $2 AND $1 = ''x''::text');
SELECT count(*) FROM asyncmig.migration;

-- a temporary table: no worker can see it; refused, nothing recorded
CREATE TEMP TABLE tmp (id int PRIMARY KEY, n int);
SELECT asyncmig.schedule_batches('batch_temp', 'tmp', 'UPDATE tmp SET n = 1 WHERE id BETWEEN $1 AND $2');
SELECT count(*) FROM asyncmig.migration;

\c contrib_regression
DROP DATABASE asyncmig_sql_errors;
