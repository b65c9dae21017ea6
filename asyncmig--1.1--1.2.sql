/* asyncmig--1.1--1.2.sql: from 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION asyncmig UPDATE TO '1.2'" to load this file. \quit

/*
 * CREATE EXTENSION asyncmig installs 1.0 and then runs the update scripts
 * (1.0 -> 1.1 -> 1.2), so a fresh install and an upgraded one are the same
 * database objects.  Same rules as asyncmig--1.0.sql: every reference
 * schema-qualified, no IF NOT EXISTS, grants revoked from PUBLIC.
 *
 * The parts below are by subject; each keeps to its own section.
 */

/* ---- batched migrations: the walk's order, bounds and key ---- */

/* ---- a flat cost as the history grows: indexes ---- */

/*
 * Every statement a worker, schedule(), run(), cancel() or wait() runs on
 * asyncmig.migration reads the live rows (queued, running, with a cleanup
 * left) or one row by id or name, never the history of finished runs: a
 * long-lived install with 100,000 finished rows drains its queue as fast
 * as a new one.  The queue's rows are in migration_queue_idx (1.0) and
 * rows by name or id in the unique indexes; the runs whose INVALID indexes
 * are still to be dropped are here (the sweep, the next wake-up and the
 * registry's "has work" look for them at every worker start).  Each is a
 * partial index on a predicate that finished rows do not have, so it stays
 * as small as the live work.  sql/history_plans.sql checks that no such
 * statement reads the history.
 */
CREATE INDEX migration_cleanup_idx ON asyncmig.migration (id)
	WHERE meta OPERATOR(pg_catalog.?) 'cleanup';

/* ---- operating it: monitoring, the app role ---- */

/* ---- the status view ---- */
