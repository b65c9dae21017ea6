-- docs/grants.sql: what an application role needs to use asyncmig.
--
-- The one recipe: the documentation shows it, the test suites run it, and
-- asyncmig's permission errors point to it.  Run it as a superuser in each
-- database the application uses (and in template1, where Django's test
-- databases are copied from):
--
--   psql -d mydb -v app_role=app -f docs/grants.sql
--
-- The role then schedules, runs, cancels and waits for its own migrations
-- (and those of roles it is a member of), and reads their rows in the view.
-- The worker runs each migration with its owner's rights: the role needs
-- the privileges its migrations' SQL needs, as it would to run it itself.
\set ON_ERROR_STOP on
GRANT USAGE ON SCHEMA asyncmig TO :"app_role";
GRANT SELECT ON asyncmig.status TO :"app_role";
GRANT EXECUTE ON FUNCTION
	asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval),
	asyncmig.schedule_batches(text, regclass, text, text, integer, interval, name, boolean, text[], timestamptz, interval),
	asyncmig.run(text, boolean, boolean),
	asyncmig.cancel(text)
	TO :"app_role";
GRANT EXECUTE ON PROCEDURE
	asyncmig.wait(text, interval),
	asyncmig.wait_for(text, interval, text)
	TO :"app_role";
