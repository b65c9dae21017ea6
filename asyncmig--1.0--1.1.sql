/* asyncmig--1.0--1.1.sql: from 1.0 to 1.1 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION asyncmig UPDATE TO '1.1'" to load this file. \quit

/*
 * CREATE EXTENSION asyncmig installs 1.0 and then runs this script, so a
 * fresh install and an upgraded one are the same database objects.  Same
 * rules as asyncmig--1.0.sql: every reference schema-qualified, no
 * IF NOT EXISTS, grants revoked from PUBLIC.
 */

/* ---- security (issue 11) ---- */

/*
 * The schema must be trustworthy: PostgreSQL reuses an existing schema
 * named in the control file, and a database owner who created "asyncmig"
 * before a superuser ran CREATE EXTENSION could later rename it and put a
 * table of its own in its place, with rows owned by a superuser.  Refuse a
 * schema owned by anyone but a superuser, or in which another role may
 * create objects.  An error here rolls back the whole CREATE EXTENSION (or
 * ALTER EXTENSION UPDATE of an install that 1.0 let into such a schema).
 * The C code checks in addition that the table it uses is the extension's
 * own (see am_catalog_relid()).
 */
DO $security$
DECLARE
	nsp_owner pg_catalog.name;
	nsp_super boolean;
	creator pg_catalog.name;
BEGIN
	SELECT r.rolname, r.rolsuper INTO nsp_owner, nsp_super
	  FROM pg_catalog.pg_namespace n
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig';
	IF NOT nsp_super THEN
		RAISE EXCEPTION 'schema "asyncmig" is owned by role "%", not by a superuser', nsp_owner
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The rows of asyncmig.migration are run with the rights of their owners; whoever owns the schema could replace the table.',
				  HINT = 'Drop or rename that schema (or make a superuser its owner) and run CREATE EXTENSION asyncmig again.';
	END IF;
	SELECT coalesce(r.rolname, 'PUBLIC') INTO creator
	  FROM pg_catalog.pg_namespace n,
		   LATERAL pg_catalog.aclexplode(n.nspacl) a
	  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig'
	   AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
	   AND NOT coalesce(r.rolsuper, false)
	 LIMIT 1;
	IF creator IS NOT NULL THEN
		RAISE EXCEPTION 'schema "asyncmig" grants CREATE to role "%"', creator
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A role that may create objects in the schema could capture names the extension uses.',
				  HINT = 'REVOKE CREATE ON SCHEMA asyncmig FROM that role and run the command again.';
	END IF;
	-- objects another role created there while it could
	SELECT r.rolname INTO creator
	  FROM (SELECT c.relowner AS o FROM pg_catalog.pg_class c, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND c.relnamespace OPERATOR(pg_catalog.=) n.oid
			UNION ALL
			SELECT p.proowner FROM pg_catalog.pg_proc p, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND p.pronamespace OPERATOR(pg_catalog.=) n.oid
			UNION ALL
			SELECT t.typowner FROM pg_catalog.pg_type t, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND t.typnamespace OPERATOR(pg_catalog.=) n.oid
			UNION ALL
			SELECT o.oprowner FROM pg_catalog.pg_operator o, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND o.oprnamespace OPERATOR(pg_catalog.=) n.oid) x
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) x.o
	 WHERE NOT r.rolsuper
	 LIMIT 1;
	IF creator IS NOT NULL THEN
		RAISE EXCEPTION 'schema "asyncmig" holds objects owned by role "%"', creator
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Objects of another role in the extension''s schema could capture names it uses.',
				  HINT = 'Drop them (or the schema) and run the command again.';
	END IF;
END
$security$;

/* ---- deps (issue 13, item 2) ---- */

/*
 * A queued run says in the progress column what it waits for:
 *   waiting until <not_before>
 *   waiting for dependency "x" (STARTED)
 *   waiting for dependency "x" (never scheduled; gives up at <time>)
 *   waiting for dependencies "a" (IN PROGRESS), "b" (SCHEDULED, nothing runs it; gives up at <time>)
 * A dependency that nothing will run (never scheduled, SCHEDULED, reverted)
 * is waited for at most asyncmig.dependency_timeout after the run was
 * queued (updated_at of a STARTED row) or its not_before, whichever is
 * later; then a worker ends the run ERROR (see catalog_dependencies.c,
 * which decides the same cases).  0 waits forever and shows no time.
 * CALL asyncmig.wait() says the same in a NOTICE: it reads this column.
 *
 * Only the WHEN m.status = 'STARTED' branch of "progress" is new; every
 * column, its name and order are as in 1.0.  CREATE OR REPLACE keeps the
 * grants given on the view.  The dependencies are read in the view (as
 * its owner), not in a function, so that a role with SELECT on the view
 * needs nothing more.
 */
CREATE OR REPLACE VIEW asyncmig.status WITH (security_barrier) AS
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
	-- deps: what a queued run waits for
	WHEN m.status OPERATOR(pg_catalog.=) 'STARTED' THEN
		NULLIF(pg_catalog.concat_ws('; ',
			CASE WHEN m.not_before OPERATOR(pg_catalog.>) pg_catalog.now() THEN
				'waiting until ' OPERATOR(pg_catalog.||) pg_catalog.to_char(m.not_before, 'YYYY-MM-DD HH24:MI:SS')
			END,
			(SELECT CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1
					THEN 'waiting for dependency ' ELSE 'waiting for dependencies ' END
				OPERATOR(pg_catalog.||) pg_catalog.string_agg(pg_catalog.format('"%s" (%s)', u.dn,
					CASE
						WHEN d.id IS NOT NULL AND d.status OPERATOR(pg_catalog.<>) 'SCHEDULED'
							AND NOT (d.status OPERATOR(pg_catalog.=) 'FINISHED' AND d.direction OPERATOR(pg_catalog.=) 'backwards')
						THEN d.status
						ELSE CASE
							WHEN d.id IS NULL THEN 'never scheduled'
							WHEN d.status OPERATOR(pg_catalog.=) 'SCHEDULED' THEN 'SCHEDULED, nothing runs it'
							ELSE 'reverted, nothing runs it forwards'
						END OPERATOR(pg_catalog.||) COALESCE('; gives up at ' OPERATOR(pg_catalog.||)
							pg_catalog.to_char(GREATEST(m.updated_at, m.not_before)
								OPERATOR(pg_catalog.+) NULLIF(COALESCE(pg_catalog.current_setting('asyncmig.dependency_timeout', true), '1h')::pg_catalog.interval, '0'),
								'YYYY-MM-DD HH24:MI:SS'), '')
					END), ', ' ORDER BY u.o)
			 FROM pg_catalog.unnest(m.depends_on) WITH ORDINALITY u(dn, o)
			 LEFT JOIN asyncmig.migration d ON d.name OPERATOR(pg_catalog.=) u.dn
			 WHERE m.direction OPERATOR(pg_catalog.=) 'forwards'
			   AND (d.id IS NULL OR d.status OPERATOR(pg_catalog.<>) 'FINISHED' OR d.direction OPERATOR(pg_catalog.<>) 'forwards')
			 HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0)), '')
	END AS progress,
	m.meta OPERATOR(pg_catalog.#>>) '{error,message}' AS error
FROM asyncmig.migration m
WHERE pg_catalog.pg_has_role(m.owner::pg_catalog.oid, 'MEMBER');

/* ---- field: standbys and cleanups in the status view (issue 12) ---- */

/*
 * progress: on a hot standby a running migration runs on the primary (the
 * standby has no worker to look up, and a pid of the primary could name an
 * unrelated process here): say so, and how far the standby has replayed.
 * An ended run whose INVALID index is still to be dropped (meta->'cleanup',
 * retried by the database's workers with a bounded wait) shows the cleanup:
 * the DROP running now, or the next try and why the last one failed.
 * This is the "deps" section's view with these two branches added (a
 * queued run whose cleanup is pending shows the cleanup, which it waits
 * for).  CREATE OR REPLACE keeps the grants on the view; PostgreSQL's
 * rules for extension scripts allow it for an object known to be a member
 * already, as this view is.  Same columns as in 1.0.
 */
CREATE OR REPLACE VIEW asyncmig.status WITH (security_barrier) AS
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
	CASE
	WHEN m.status = 'IN PROGRESS' AND pg_catalog.pg_is_in_recovery() THEN
		'runs on the primary (this standby has replayed up to '
			OPERATOR(pg_catalog.||) COALESCE(pg_catalog.pg_last_xact_replay_timestamp()::text, 'an unknown time')
			OPERATOR(pg_catalog.||) ')'
	WHEN m.status = 'IN PROGRESS' THEN
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
	-- field: an ended run (or one queued again) whose cleanup is pending
	WHEN m.meta OPERATOR(pg_catalog.?) 'cleanup' THEN
		'cleaning up after the interrupted run: ' OPERATOR(pg_catalog.||) COALESCE(
			(SELECT 'running ' OPERATOR(pg_catalog.||) pg_catalog.left(a.query, 200)
			 FROM pg_catalog.pg_stat_activity a
			 WHERE NOT pg_catalog.pg_is_in_recovery()
			   AND a.pid OPERATOR(pg_catalog.=) (m.meta OPERATOR(pg_catalog.#>>) '{cleanup,pid}')::integer
			   AND a.state OPERATOR(pg_catalog.=) 'active'),
			'INVALID index to drop, try '
				OPERATOR(pg_catalog.||) (COALESCE((m.meta OPERATOR(pg_catalog.#>>) '{cleanup,tries}')::integer, 0) OPERATOR(pg_catalog.+) 1)::text
				OPERATOR(pg_catalog.||) COALESCE(' at ' OPERATOR(pg_catalog.||) (m.meta OPERATOR(pg_catalog.#>>) '{cleanup,next_try}'), '')
				OPERATOR(pg_catalog.||) COALESCE(' (last try: ' OPERATOR(pg_catalog.||) (m.meta OPERATOR(pg_catalog.#>>) '{cleanup,last_error}') OPERATOR(pg_catalog.||) ')', ''))
	-- deps: what a queued run waits for
	WHEN m.status OPERATOR(pg_catalog.=) 'STARTED' THEN
		NULLIF(pg_catalog.concat_ws('; ',
			CASE WHEN m.not_before OPERATOR(pg_catalog.>) pg_catalog.now() THEN
				'waiting until ' OPERATOR(pg_catalog.||) pg_catalog.to_char(m.not_before, 'YYYY-MM-DD HH24:MI:SS')
			END,
			(SELECT CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1
					THEN 'waiting for dependency ' ELSE 'waiting for dependencies ' END
				OPERATOR(pg_catalog.||) pg_catalog.string_agg(pg_catalog.format('"%s" (%s)', u.dn,
					CASE
						WHEN d.id IS NOT NULL AND d.status OPERATOR(pg_catalog.<>) 'SCHEDULED'
							AND NOT (d.status OPERATOR(pg_catalog.=) 'FINISHED' AND d.direction OPERATOR(pg_catalog.=) 'backwards')
						THEN d.status
						ELSE CASE
							WHEN d.id IS NULL THEN 'never scheduled'
							WHEN d.status OPERATOR(pg_catalog.=) 'SCHEDULED' THEN 'SCHEDULED, nothing runs it'
							ELSE 'reverted, nothing runs it forwards'
						END OPERATOR(pg_catalog.||) COALESCE('; gives up at ' OPERATOR(pg_catalog.||)
							pg_catalog.to_char(GREATEST(m.updated_at, m.not_before)
								OPERATOR(pg_catalog.+) NULLIF(COALESCE(pg_catalog.current_setting('asyncmig.dependency_timeout', true), '1h')::pg_catalog.interval, '0'),
								'YYYY-MM-DD HH24:MI:SS'), '')
					END), ', ' ORDER BY u.o)
			 FROM pg_catalog.unnest(m.depends_on) WITH ORDINALITY u(dn, o)
			 LEFT JOIN asyncmig.migration d ON d.name OPERATOR(pg_catalog.=) u.dn
			 WHERE m.direction OPERATOR(pg_catalog.=) 'forwards'
			   AND (d.id IS NULL OR d.status OPERATOR(pg_catalog.<>) 'FINISHED' OR d.direction OPERATOR(pg_catalog.<>) 'forwards')
			 HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0)), '')
	END AS progress,
	m.meta OPERATOR(pg_catalog.#>>) '{error,message}' AS error
FROM asyncmig.migration m
WHERE pg_catalog.pg_has_role(m.owner::pg_catalog.oid, 'MEMBER');

/*
 * Rows inserted other than by schedule() - pg_restore's COPY of the
 * history - may be queued runs restored from elsewhere: the trigger (per
 * row: an INSERT ... ON CONFLICT DO NOTHING that inserts nothing, as
 * schedule() of an existing name does, must not count)
 * registers the database with work (pg_asyncmig/databases) and wakes the
 * launcher at commit, so that a worker ends them in ERROR ("not run: it was
 * queued in another database or cluster") without the launcher having to
 * look at every database.
 */
CREATE FUNCTION asyncmig.note_inserted_rows()
RETURNS trigger
AS 'MODULE_PATHNAME', 'asyncmig_note_inserted_rows'
LANGUAGE C;

REVOKE ALL ON FUNCTION asyncmig.note_inserted_rows() FROM PUBLIC;

CREATE TRIGGER note_inserted_rows AFTER INSERT ON asyncmig.migration
	FOR EACH ROW EXECUTE FUNCTION asyncmig.note_inserted_rows();
