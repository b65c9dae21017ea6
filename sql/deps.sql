--
-- depends_on: what a queued migration waits for, and how long it waits for
-- a dependency that nothing will run (asyncmig.dependency_timeout)
--
CREATE DATABASE asyncmig_deps;
\c asyncmig_deps
CREATE EXTENSION asyncmig;
SHOW asyncmig.dependency_timeout;

-- the status view says what a queued migration waits for
SET asyncmig.allow_scheduled_migrations = on;
SELECT asyncmig.schedule('parked', 'CREATE TABLE parked (a int)');
RESET asyncmig.allow_scheduled_migrations;
SELECT asyncmig.schedule('on_parked', 'SELECT 1', depends_on => '{parked}');
SELECT asyncmig.schedule('on_ghost', 'SELECT 1', depends_on => '{ghost}');
SELECT asyncmig.schedule('on_both', 'SELECT 1', depends_on => '{on_ghost,parked}');
SELECT asyncmig.schedule('behind', 'SELECT 1', depends_on => '{on_ghost}');
SELECT asyncmig.schedule('later', 'SELECT 1', not_before => now() + interval '1 hour');
SELECT name, status,
       regexp_replace(progress, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d', '<time>', 'g') AS progress
  FROM asyncmig.status ORDER BY name;
-- it gives up asyncmig.dependency_timeout (1h) after the run was queued
SELECT s.name,
       s.progress LIKE '%gives up at ' || to_char(m.updated_at + interval '1 hour', 'YYYY-MM-DD HH24:MI:SS') || ')' AS in_one_hour
  FROM asyncmig.status s JOIN asyncmig.migration m USING (name)
 WHERE s.name IN ('on_ghost', 'on_parked') ORDER BY 1;
SELECT s.progress = 'waiting until ' || to_char(m.not_before, 'YYYY-MM-DD HH24:MI:SS') AS until_not_before
  FROM asyncmig.status s JOIN asyncmig.migration m USING (name) WHERE s.name = 'later';

-- 0 waits forever: no time given
ALTER SYSTEM SET asyncmig.dependency_timeout = 0;
SELECT pg_reload_conf();
\c asyncmig_deps
SHOW asyncmig.dependency_timeout;
SELECT name, progress FROM asyncmig.status WHERE name LIKE 'on\_%' ORDER BY name;

-- wait() says once what blocks it (it looks twice before it times out)
CALL asyncmig.wait('on_both', '0.5 s');
-- ... but not a dependency that is queued: that one ends by itself
CALL asyncmig.wait('behind', '0.2 s');

-- cancel() still ends the dependents of what it cancels
SELECT asyncmig.cancel('on_ghost');
SELECT asyncmig.cancel('on_parked');
SELECT asyncmig.cancel('later');
SELECT name, status, progress, error FROM asyncmig.status ORDER BY name;

-- a short asyncmig.dependency_timeout: the migration ends ERROR naming the
-- dependency nothing runs, and its own dependents after it
ALTER SYSTEM SET asyncmig.dependency_timeout = '1s';
SELECT pg_reload_conf();
\c asyncmig_deps
SHOW asyncmig.dependency_timeout;
SELECT asyncmig.schedule('rev', 'CREATE TABLE rev (a int)', 'DROP TABLE rev');
CALL asyncmig.wait('rev');
SELECT asyncmig.run('rev', backwards => true);
CALL asyncmig.wait('rev');
SELECT name, status, direction FROM asyncmig.status WHERE name = 'rev';
SELECT asyncmig.schedule('m_ghost', 'CREATE TABLE m_ghost (a int)', depends_on => '{ghost}');
SELECT asyncmig.schedule('m_child', 'CREATE TABLE m_child (a int)', depends_on => '{m_ghost}');
SELECT asyncmig.schedule('m_parked', 'CREATE TABLE m_parked (a int)', depends_on => '{parked}');
SELECT asyncmig.schedule('m_reverted', 'CREATE TABLE m_reverted (a int)', depends_on => '{rev}');
SELECT asyncmig.schedule('m_two', 'CREATE TABLE m_two (a int)', depends_on => '{ghost,parked}');
-- with a not_before, the wait for dependencies starts then
SELECT asyncmig.schedule('m_not_before', 'CREATE TABLE m_not_before (a int)',
                         depends_on => '{ghost}', not_before => now() + interval '1 s');
-- wait() reports what failed, along the chain, with its SQLSTATE
CALL asyncmig.wait('m_child');
\set VERBOSITY sqlstate
CALL asyncmig.wait('m_child');
\set VERBOSITY default
SET client_min_messages = warning;	-- their NOTICEs name times
CALL asyncmig.wait('m_parked');
CALL asyncmig.wait('m_reverted');
CALL asyncmig.wait('m_two');
CALL asyncmig.wait('m_not_before');
RESET client_min_messages;
SELECT s.name, s.status, s.error, m.meta #>> '{error,sqlstate}' AS sqlstate,
       m.meta #>> '{error,detail}' AS detail, m.meta #>> '{error,hint}' AS hint
  FROM asyncmig.status s JOIN asyncmig.migration m USING (name)
 WHERE s.name LIKE 'm\_%' ORDER BY s.name;
-- none of them ran
SELECT count(*) FROM pg_class WHERE relname LIKE 'm\_%';
-- not before its time: the timeout after queueing, or after not_before
SELECT name, CASE WHEN not_before IS NULL THEN finished_at >= created_at + interval '1 s'
                  ELSE finished_at >= not_before + interval '1 s' END AS waited_its_time
  FROM asyncmig.migration WHERE name IN ('m_ghost', 'm_parked', 'm_reverted', 'm_two', 'm_not_before')
 ORDER BY name;

-- a dependency that is queued or running is waited for as long as it
-- takes, and one scheduled a little later is still in time
SELECT asyncmig.schedule('slow', 'SELECT pg_sleep(2)');
SELECT asyncmig.schedule('after_slow', 'CREATE TABLE after_slow (a int)', depends_on => '{slow}');
SELECT asyncmig.schedule('after_late', 'CREATE TABLE after_late (a int)', depends_on => '{late}');
SELECT asyncmig.schedule('late', 'CREATE TABLE late (a int)');
CALL asyncmig.wait('after_slow');
CALL asyncmig.wait('after_late');
SELECT name, status, error FROM asyncmig.status
 WHERE name IN ('slow', 'after_slow', 'late', 'after_late') ORDER BY name;
SELECT started_at > created_at + interval '1 s' AS waited_longer_than_the_timeout
  FROM asyncmig.migration WHERE name = 'after_slow';

-- run() of one that gave up, once its dependency exists, runs it
SELECT asyncmig.run('parked');
CALL asyncmig.wait('parked');
SELECT asyncmig.run('m_parked');
CALL asyncmig.wait('m_parked');
SELECT name, status, error FROM asyncmig.status WHERE name IN ('parked', 'm_parked') ORDER BY name;

ALTER SYSTEM RESET asyncmig.dependency_timeout;
SELECT pg_reload_conf();
\c contrib_regression
SHOW asyncmig.dependency_timeout;
DROP DATABASE asyncmig_deps;
