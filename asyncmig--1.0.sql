/* asyncmig--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION asyncmig" to load this file. \quit

/*
 * The rows of asyncmig.migration are execution rights: a worker runs their
 * SQL with the rights of their owner.  Only the extension owner may write
 * the table; everyone else goes through the functions below, which check
 * that the caller may act for the owner.  No object here is created with
 * CREATE OR REPLACE or IF NOT EXISTS, every reference is schema-qualified,
 * and nothing is granted to PUBLIC.
 */

REVOKE ALL ON SCHEMA asyncmig FROM PUBLIC;

CREATE TABLE asyncmig.migration (
	id bigserial PRIMARY KEY,
	name text NOT NULL UNIQUE,
	status text NOT NULL DEFAULT 'STARTED'
		CONSTRAINT migration_status_check CHECK (status IN
			('SCHEDULED', 'STARTED', 'IN PROGRESS', 'FINISHED', 'ERROR')),
	direction text NOT NULL DEFAULT 'forwards'
		CONSTRAINT migration_direction_check CHECK (direction IN
			('forwards', 'backwards')),
	forwards_sql text NOT NULL,
	backwards_sql text,
	owner pg_catalog.regrole NOT NULL,
	database name NOT NULL DEFAULT pg_catalog.current_database(),
	search_path text NOT NULL,
	attempts integer NOT NULL DEFAULT 0,
	meta jsonb NOT NULL DEFAULT '{}',
	depends_on text[],
	not_before timestamptz,
	timeout interval,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	started_at timestamptz,
	finished_at timestamptz,
	CONSTRAINT migration_name_check CHECK (pg_catalog.btrim(name) <> '')
);

COMMENT ON TABLE asyncmig.migration IS
	'asyncmig migrations: what to run, with whose rights, and how its last run went';

CREATE INDEX migration_queue_idx ON asyncmig.migration (updated_at, id)
	WHERE status IN ('STARTED', 'IN PROGRESS');

REVOKE ALL ON TABLE asyncmig.migration FROM PUBLIC;
REVOKE ALL ON SEQUENCE asyncmig.migration_id_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('asyncmig.migration', '');
SELECT pg_catalog.pg_extension_config_dump('asyncmig.migration_id_seq', '');

/*
 * What people read in psql.  A role sees the migrations of the roles it is
 * a member of (a superuser sees all); the SQL texts are not in it.
 */
CREATE VIEW asyncmig.status WITH (security_barrier) AS
SELECT m.name,
	m.status,
	m.direction,
	m.owner,
	m.attempts,
	m.started_at,
	m.finished_at,
	CASE
		WHEN m.started_at IS NULL THEN NULL
		WHEN m.status = 'IN PROGRESS' THEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) m.started_at
		ELSE m.finished_at OPERATOR(pg_catalog.-) m.started_at
	END AS duration,
	CASE WHEN m.status = 'IN PROGRESS' THEN
		COALESCE(
			(SELECT p.phase
				OPERATOR(pg_catalog.||) COALESCE(
					CASE
						WHEN p.blocks_total OPERATOR(pg_catalog.>) 0 THEN ' ' OPERATOR(pg_catalog.||)
							(100 OPERATOR(pg_catalog.*) p.blocks_done OPERATOR(pg_catalog./) p.blocks_total)::text OPERATOR(pg_catalog.||) '%'
						WHEN p.tuples_total OPERATOR(pg_catalog.>) 0 THEN ' ' OPERATOR(pg_catalog.||)
							(100 OPERATOR(pg_catalog.*) p.tuples_done OPERATOR(pg_catalog./) p.tuples_total)::text OPERATOR(pg_catalog.||) '%'
						WHEN p.lockers_total OPERATOR(pg_catalog.>) 0 THEN ' ' OPERATOR(pg_catalog.||)
							p.lockers_done::text OPERATOR(pg_catalog.||) ' of ' OPERATOR(pg_catalog.||) p.lockers_total::text
					END, '')
			 FROM pg_catalog.pg_stat_progress_create_index p
			 WHERE p.pid OPERATOR(pg_catalog.=) (m.meta OPERATOR(pg_catalog.->>) 'pid')::integer),
			(SELECT 'vacuuming: ' OPERATOR(pg_catalog.||) p.phase
				OPERATOR(pg_catalog.||) COALESCE(
					CASE WHEN p.heap_blks_total OPERATOR(pg_catalog.>) 0 THEN ' ' OPERATOR(pg_catalog.||)
						(100 OPERATOR(pg_catalog.*) p.heap_blks_scanned OPERATOR(pg_catalog./) p.heap_blks_total)::text OPERATOR(pg_catalog.||) '%'
					END, '')
			 FROM pg_catalog.pg_stat_progress_vacuum p
			 WHERE p.pid OPERATOR(pg_catalog.=) (m.meta OPERATOR(pg_catalog.->>) 'pid')::integer),
			(SELECT 'running: ' OPERATOR(pg_catalog.||) pg_catalog.left(a.query, 200)
			 FROM pg_catalog.pg_stat_activity a
			 WHERE a.pid OPERATOR(pg_catalog.=) (m.meta OPERATOR(pg_catalog.->>) 'pid')::integer
			   AND a.state OPERATOR(pg_catalog.=) 'active'))
	END AS progress,
	m.meta OPERATOR(pg_catalog.#>>) '{error,message}' AS error
FROM asyncmig.migration m
WHERE pg_catalog.pg_has_role(m.owner::pg_catalog.oid, 'MEMBER');

COMMENT ON VIEW asyncmig.status IS
	'asyncmig migrations visible to the current role, with duration, progress and error';

REVOKE ALL ON TABLE asyncmig.status FROM PUBLIC;

CREATE FUNCTION asyncmig.schedule(name text,
								  forwards_sql text,
								  backwards_sql text DEFAULT NULL,
								  execute_immediately boolean DEFAULT false,
								  depends_on text[] DEFAULT NULL,
								  not_before timestamptz DEFAULT NULL,
								  timeout interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'asyncmig_schedule'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval) IS
	'record a migration and queue it (or, in scheduled mode, keep it SCHEDULED); returns its status';

CREATE FUNCTION asyncmig.run(name text, backwards boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'asyncmig_run'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION asyncmig.run(text, boolean) IS
	'queue a run of a SCHEDULED, ERROR or FINISHED migration, forwards or backwards';

CREATE FUNCTION asyncmig.cancel(name text)
RETURNS text
AS 'MODULE_PATHNAME', 'asyncmig_cancel'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION asyncmig.cancel(text) IS
	'end a queued migration in ERROR, or interrupt a running one';

CREATE PROCEDURE asyncmig.wait(name text DEFAULT NULL, timeout interval DEFAULT NULL)
AS 'MODULE_PATHNAME', 'asyncmig_wait'
LANGUAGE C;

COMMENT ON PROCEDURE asyncmig.wait(text, interval) IS
	'wait until a migration (or every queued and running one) has ended; error if one ended in ERROR';

REVOKE ALL ON FUNCTION asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION asyncmig.run(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION asyncmig.cancel(text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE asyncmig.wait(text, interval) FROM PUBLIC;
