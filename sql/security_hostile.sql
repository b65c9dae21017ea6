--
-- hostile and careless input: what is checked is what runs, dependencies
-- that can never resolve, times at the edges
--
CREATE DATABASE asyncmig_hostile;
\c asyncmig_hostile
CREATE EXTENSION asyncmig;

\ir test/regress_try.sql

--
-- 1. What is checked is what runs: with standard_conforming_strings off,
-- 'x\', 1; DROP TABLE victim; SELECT 1 -- ' is one literal for the check,
-- three statements for a worker.  Refused, nothing recorded.
--
CREATE TABLE victim (a int);
SET standard_conforming_strings = off;
SELECT try($q$SELECT asyncmig.schedule('scs_off', $x$SELECT 'x\', 1; DROP TABLE victim; SELECT 1 -- '$x$)$q$);
SELECT try($q$SELECT asyncmig.schedule('scs_off_back', 'SELECT 1', $x$SELECT 'x\'; SELECT 1$x$)$q$);
RESET standard_conforming_strings;
SELECT count(*) AS recorded FROM asyncmig.migration WHERE name LIKE 'scs_off%';
SELECT to_regclass('victim') IS NOT NULL AS victim_exists;
-- a database default of off does not reach the worker: the text is split
-- as it was checked
ALTER DATABASE asyncmig_hostile SET standard_conforming_strings = off;
\c asyncmig_hostile
SET standard_conforming_strings = on;
SELECT asyncmig.schedule('scs_db', $x$SELECT 'x\'; CREATE TABLE scs_split (a int)$x$);
CALL asyncmig.wait('scs_db');
SELECT status, to_regclass('scs_split') IS NOT NULL AS split_as_checked
  FROM asyncmig.migration WHERE name = 'scs_db';
ALTER DATABASE asyncmig_hostile RESET standard_conforming_strings;
\c asyncmig_hostile

--
-- 2. Dependencies that can never resolve end at once, naming the cause.
-- Canceling a queued dependency ends its dependents (and theirs) in the
-- same transaction.
--
SELECT asyncmig.schedule('dep', 'SELECT 1', not_before => now() + interval '1 hour');
SELECT asyncmig.schedule('child', 'SELECT 1', depends_on => '{dep}');
SELECT asyncmig.schedule('grandchild', 'SELECT 1', depends_on => '{child}');
BEGIN;
SELECT asyncmig.cancel('dep');
SELECT name, status, meta->'error'->>'message' AS error
  FROM asyncmig.migration WHERE name IN ('dep', 'child', 'grandchild') ORDER BY id;
ROLLBACK;
SELECT name, status FROM asyncmig.migration WHERE name IN ('dep', 'child', 'grandchild') ORDER BY id;
SELECT asyncmig.cancel('dep');
SELECT name, status, meta->'error'->>'message' AS error
  FROM asyncmig.migration WHERE name IN ('dep', 'child', 'grandchild') ORDER BY id;
-- a dependency on itself is a cycle
SELECT try($$SELECT asyncmig.schedule('self', 'SELECT 1', depends_on => '{self}')$$);
-- CALL asyncmig.wait() inside a migration would wait for itself: refused
SELECT asyncmig.schedule('waits_for_itself', 'CALL asyncmig.wait()');
CALL asyncmig.wait('waits_for_itself', '60 s');
SELECT status, meta->'error'->>'sqlstate' AS sqlstate FROM asyncmig.migration WHERE name = 'waits_for_itself';

--
-- 3. Times at the edges: a timeout under a millisecond cannot be honoured
-- (refused); a wait with a huge timeout waits; not_before = infinity never
-- starts (and does not put the launcher to sleep forever).
--
SELECT try($$SELECT asyncmig.schedule('tiny', 'SELECT 1', timeout => '400 microseconds')$$);
SELECT try($$SELECT asyncmig.schedule('zero', 'SELECT 1', timeout => '0')$$);
SELECT count(*) AS recorded FROM asyncmig.migration WHERE name IN ('tiny', 'zero');
SELECT asyncmig.schedule('later', 'SELECT 1', not_before => clock_timestamp() + interval '1 second');
CALL asyncmig.wait('later', '300000 years');
SELECT status FROM asyncmig.migration WHERE name = 'later';
SELECT asyncmig.schedule('long_timeout', 'SELECT 1', timeout => '300000 years');
CALL asyncmig.wait('long_timeout');
SELECT status FROM asyncmig.migration WHERE name = 'long_timeout';
SELECT asyncmig.schedule('never', 'SELECT 1', not_before => 'infinity');
SELECT asyncmig.schedule('after_never', 'SELECT 1');
CALL asyncmig.wait('after_never');
SELECT name, status FROM asyncmig.migration WHERE name IN ('never', 'after_never') ORDER BY name;
SELECT asyncmig.cancel('never');

\c contrib_regression
DROP DATABASE asyncmig_hostile;
