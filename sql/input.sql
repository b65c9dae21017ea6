--
-- bad and hostile input: a clear error with a SQLSTATE, nothing half-written
--
CREATE DATABASE asyncmig_input;
\c asyncmig_input
CREATE EXTENSION asyncmig;

\ir test/regress_try.sql

-- names
SELECT try($$SELECT asyncmig.schedule(NULL, 'SELECT 1')$$);
SELECT try($$SELECT asyncmig.schedule('', 'SELECT 1')$$);
SELECT try($$SELECT asyncmig.schedule(E' \t\n', 'SELECT 1')$$);
SELECT try(format('SELECT asyncmig.schedule(%L, %L)', repeat('x', 10000), 'SELECT 1'));

-- forwards SQL
SELECT try($$SELECT asyncmig.schedule('f', NULL)$$);
SELECT try($$SELECT asyncmig.schedule('f', '')$$);
SELECT try($$SELECT asyncmig.schedule('f', E'  \n\t ')$$);
SELECT try($$SELECT asyncmig.schedule('f', '-- only a comment')$$);
SELECT try($$SELECT asyncmig.schedule('f', '/* only a comment */ ;;')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'CREAT TABLE x (a int)')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'CREATE TABLE x (a int); SELECT FROM WHERE')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'BEGIN; CREATE TABLE x (a int); COMMIT')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'CREATE TABLE x (a int); COMMIT')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'SAVEPOINT s')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'ROLLBACK')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'PREPARE TRANSACTION ''x''')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'COPY pg_class FROM STDIN')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'COPY pg_class TO STDOUT')$$);
SELECT try($$SELECT asyncmig.schedule('f', E'\\copy x from ''/tmp/x''')$$);
SELECT try($$SELECT asyncmig.schedule('f', E'\\set x 1')$$);

-- backwards SQL: NULL means none; anything else is checked like forwards
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', '')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', 'DROP TABLEX x')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', 'COMMIT')$$);

-- other arguments
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', timeout => '0 seconds')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', timeout => '-1 hour')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', depends_on => '{a,NULL}')$$);
SELECT try($$SELECT asyncmig.schedule('f', 'SELECT 1', depends_on => '{f}')$$);

-- nothing was written by any of them
SELECT count(*) FROM asyncmig.migration;

-- run(), cancel(), wait()
SELECT try($$SELECT asyncmig.run(NULL)$$);
SELECT try($$SELECT asyncmig.run('no such migration')$$);
SELECT try($$SELECT asyncmig.cancel(NULL)$$);
SELECT try($$SELECT asyncmig.cancel('no such migration')$$);
CALL asyncmig.wait('no such migration');
BEGIN;
CALL asyncmig.wait();
ROLLBACK;
-- in the scheduling transaction, so that no worker can have claimed it yet
BEGIN;
SELECT asyncmig.schedule('no_backwards', 'SELECT 1');
SELECT try($$SELECT asyncmig.run('no_backwards')$$);
COMMIT;
CALL asyncmig.wait('no_backwards');
SELECT try($$SELECT asyncmig.run('no_backwards', backwards => true)$$);
SELECT asyncmig.schedule('slow', 'SELECT pg_sleep(3)');
SELECT pg_sleep(0.3);
SELECT try($$SELECT asyncmig.run('slow')$$);
CALL asyncmig.wait('slow', timeout => '100 ms');
CALL asyncmig.wait('slow', timeout => '-1 s');
CALL asyncmig.wait('slow');

-- PREPARE TRANSACTION cannot carry a schedule (COMMIT PREPARED could not start it)
BEGIN;
SELECT asyncmig.schedule('prepared', 'SELECT 1');
PREPARE TRANSACTION 'asyncmig_test';
SELECT count(*) FROM asyncmig.migration WHERE name = 'prepared';

-- quotes, backslashes and other odd characters in names are just text
SELECT asyncmig.schedule(E'it''s a "name" with \\ and ; and $x$ and \n', 'SELECT 1');
SELECT asyncmig.schedule(repeat('n', 1000), 'SELECT 1');
CALL asyncmig.wait();
SELECT left(name, 40) AS name, status FROM asyncmig.status WHERE name LIKE 'it%' OR name LIKE 'nnn%' ORDER BY 1;

-- big texts are accepted and run: 1 MB, and 10 000 statements
SELECT asyncmig.schedule('big_text', format('CREATE TABLE big_text AS SELECT %L::text AS t', repeat('x', 1000000)));
SELECT asyncmig.schedule('many_statements', 'CREATE TABLE many (a int);' || repeat('INSERT INTO many VALUES (1);', 10000));
CALL asyncmig.wait();
SELECT name, status, error FROM asyncmig.status WHERE name IN ('big_text', 'many_statements') ORDER BY name;
SELECT length(t) FROM big_text;
SELECT count(*) FROM many;

-- statements that return rows are fine; their rows go nowhere
SELECT asyncmig.schedule('returns_rows', 'SELECT * FROM generate_series(1, 100000); VALUES (1), (2); SHOW search_path; EXPLAIN SELECT 1');
CALL asyncmig.wait('returns_rows');
SELECT status, error FROM asyncmig.status WHERE name = 'returns_rows';

-- a worker never keeps the database from being dropped
\c contrib_regression
DROP DATABASE asyncmig_input;
