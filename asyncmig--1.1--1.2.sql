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

/* ---- operating it: monitoring, the app role ---- */

/*
 * wait_for(): poll one migration without an error.  Waits at most timeout
 * (NULL: until it ends) and returns its status in status: FINISHED or
 * ERROR once it ended, STARTED or IN PROGRESS when the timeout came first,
 * SCHEDULED at once.  A procedure, as wait() is: it commits while it waits,
 * holding no snapshot a concurrent index build would wait for.
 */
CREATE PROCEDURE asyncmig.wait_for(name text, timeout interval DEFAULT NULL,
								   INOUT status text DEFAULT NULL)
AS 'MODULE_PATHNAME', 'asyncmig_wait_for'
LANGUAGE C;

COMMENT ON PROCEDURE asyncmig.wait_for(text, interval, text) IS
	'wait at most timeout for a migration to end, and return its status; no error for a timeout or a failed migration';

REVOKE ALL ON PROCEDURE asyncmig.wait_for(text, interval, text) FROM PUBLIC;

/* ---- the status view ---- */
