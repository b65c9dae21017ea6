--
-- rights: rows of asyncmig.migration are execution rights
--
CREATE DATABASE asyncmig_security;
\c asyncmig_security
CREATE EXTENSION asyncmig;

\ir test/regress_try.sql
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;

CREATE ROLE regress_am_a;
CREATE ROLE regress_am_b;
CREATE ROLE regress_am_nobody;
CREATE ROLE regress_am_nologin NOLOGIN;
GRANT regress_am_nologin TO regress_am_a;
GRANT CREATE ON SCHEMA public TO regress_am_a, regress_am_b, regress_am_nologin;

-- what an application role is granted (README, "Security")
GRANT USAGE ON SCHEMA asyncmig TO regress_am_a, regress_am_b, regress_am_nologin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA asyncmig TO regress_am_a, regress_am_b, regress_am_nologin;
GRANT EXECUTE ON ALL PROCEDURES IN SCHEMA asyncmig TO regress_am_a, regress_am_b, regress_am_nologin;
GRANT SELECT ON asyncmig.status TO regress_am_a, regress_am_b, regress_am_nologin;

-- PUBLIC holds nothing
SELECT p.proname, has_function_privilege('regress_am_nobody', p.oid, 'EXECUTE') AS public_execute,
       p.prosecdef, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = 'asyncmig'::regnamespace ORDER BY 1;
SELECT c.relname, has_table_privilege('regress_am_nobody', c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE') AS public_any
  FROM pg_class c WHERE c.relnamespace = 'asyncmig'::regnamespace AND c.relkind IN ('r', 'v', 'S') ORDER BY 1;
SET ROLE regress_am_nobody;
SELECT try($$SELECT asyncmig.schedule('x', 'SELECT 1')$$);
SELECT try($$SELECT * FROM asyncmig.status$$);
RESET ROLE;

-- a granted role schedules; its migration runs with its rights
SET ROLE regress_am_a;
SELECT asyncmig.schedule('a_table', 'CREATE TABLE owned_by_a (a int)');
RESET ROLE;
CALL asyncmig.wait('a_table');
SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_a';

-- nobody writes the table directly, not even its own rows
SET ROLE regress_am_a;
SELECT try($$INSERT INTO asyncmig.migration (name, forwards_sql, owner, search_path) VALUES ('evil', 'SELECT 1', 'postgres', 'public')$$);
SELECT try($$UPDATE asyncmig.migration SET forwards_sql = 'ALTER ROLE regress_am_a SUPERUSER'$$);
SELECT try($$DELETE FROM asyncmig.migration$$);
SELECT try($$SELECT forwards_sql FROM asyncmig.migration$$);
SELECT name, status, owner FROM asyncmig.status ORDER BY name;
RESET ROLE;

-- another role may neither run, cancel, re-schedule nor see them
SET ROLE regress_am_b;
SELECT try($$SELECT asyncmig.run('a_table')$$);
SELECT try($$SELECT asyncmig.cancel('a_table')$$);
SELECT try($$SELECT asyncmig.schedule('a_table', 'SELECT 1')$$);
SELECT name FROM asyncmig.status;
RESET ROLE;
SET ROLE regress_am_b;
CALL asyncmig.wait('a_table');
RESET ROLE;
SET ROLE regress_am_a;
SELECT asyncmig.schedule('a_fails', 'SELECT 1/0');
RESET ROLE;
CALL asyncmig.wait('a_fails');
SET ROLE regress_am_b;
SELECT try($$SELECT asyncmig.schedule('a_fails', 'ALTER ROLE regress_am_b SUPERUSER')$$);
RESET ROLE;
SELECT status, forwards_sql, owner FROM asyncmig.migration WHERE name = 'a_fails';

-- a migration cannot climb to other rights
SET ROLE regress_am_a;
SELECT asyncmig.schedule('esc_superuser', 'ALTER ROLE regress_am_a SUPERUSER');
SELECT asyncmig.schedule('esc_reset_role', 'RESET ROLE; CREATE TABLE esc1 (a int)');
SELECT asyncmig.schedule('esc_set_role', 'SET ROLE postgres; CREATE TABLE esc2 (a int)');
SELECT asyncmig.schedule('esc_session', 'SET SESSION AUTHORIZATION postgres; CREATE TABLE esc3 (a int)');
SELECT asyncmig.schedule('esc_reset_all', 'RESET ALL; RESET SESSION AUTHORIZATION; CREATE TABLE esc4 (a int)');
SELECT asyncmig.schedule('esc_guc', $$SELECT set_config('role', 'postgres', false); CREATE TABLE esc5 (a int)$$);
SELECT asyncmig.schedule('esc_read', $$CREATE TABLE esc6 AS SELECT pg_read_file('postgresql.conf')$$);
RESET ROLE;
-- one database runs its migrations one at a time, oldest first: when the
-- last has ended, all have (a wait() without a name would race the worker)
CALL asyncmig.wait('esc_read');
SELECT name, status, meta->'error'->>'sqlstate' AS sqlstate, meta->'error'->>'message' AS error
  FROM asyncmig.migration WHERE name LIKE 'esc\_%' ORDER BY name;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_am_a';
SELECT tablename, tableowner FROM pg_tables WHERE tablename LIKE 'esc%' ORDER BY 1;

-- a NOLOGIN role's migrations run with its rights
SET ROLE regress_am_a;
SET ROLE regress_am_nologin;
SELECT asyncmig.schedule('nologin', 'CREATE TABLE owned_by_nologin AS SELECT current_user AS cu, session_user = current_user AS same');
RESET ROLE;
CALL asyncmig.wait('nologin');
SELECT tableowner FROM pg_tables WHERE tablename = 'owned_by_nologin';
SELECT cu FROM owned_by_nologin;
-- a member of the owner may run and see it
SET ROLE regress_am_a;
SELECT name, owner FROM asyncmig.status WHERE name = 'nologin';
SELECT try($$SELECT asyncmig.run('nologin', true)$$);
RESET ROLE;

-- the search_path captured is the one used: a planted table elsewhere is not
CREATE SCHEMA regress_app AUTHORIZATION regress_am_a;
CREATE SCHEMA regress_evil AUTHORIZATION regress_am_b;
SET ROLE regress_am_a;
CREATE TABLE regress_app.target (a int);
SET search_path = regress_app;
SELECT asyncmig.schedule('captured_path', 'INSERT INTO target VALUES (42)');
RESET search_path;
RESET ROLE;
SET ROLE regress_am_b;
CREATE TABLE regress_evil.target (a int);
RESET ROLE;
ALTER DATABASE asyncmig_security SET search_path = regress_evil, public;
CALL asyncmig.wait('captured_path');
ALTER DATABASE asyncmig_security RESET search_path;
SELECT (SELECT count(*) FROM regress_app.target) AS app, (SELECT count(*) FROM regress_evil.target) AS evil;

-- a dropped owner: its queued migration ends ERROR, others go on
CREATE ROLE regress_am_gone;
GRANT USAGE ON SCHEMA asyncmig TO regress_am_gone;
GRANT EXECUTE ON FUNCTION asyncmig.schedule TO regress_am_gone;
SET ROLE regress_am_gone;
SELECT asyncmig.schedule('gone_owner', 'SELECT 1', not_before => now() + interval '1 second');
RESET ROLE;
DROP OWNED BY regress_am_gone;
DROP ROLE regress_am_gone;
SELECT asyncmig.schedule('after_gone', 'SELECT 1', not_before => now() + interval '1.5 second');
CALL asyncmig.wait('after_gone');
SELECT name, status, regexp_replace(error, '[0-9]+', 'N') AS error
  FROM asyncmig.status WHERE name IN ('gone_owner', 'after_gone') ORDER BY name;

DROP SCHEMA regress_app, regress_evil CASCADE;
DROP TABLE owned_by_a, owned_by_nologin;
REVOKE ALL ON SCHEMA public FROM regress_am_a, regress_am_b, regress_am_nologin;

-- a worker never keeps the database from being dropped
\c contrib_regression
DROP DATABASE asyncmig_security;
