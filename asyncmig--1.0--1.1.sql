/* asyncmig--1.0--1.1.sql: from 1.0 to 1.1 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION asyncmig UPDATE TO '1.1'" to load this file. \quit

/*
 * CREATE EXTENSION asyncmig installs 1.0 and then runs this script, so a
 * fresh install and an upgraded one are the same database objects.  Same
 * rules as asyncmig--1.0.sql: every reference schema-qualified, no
 * IF NOT EXISTS, grants revoked from PUBLIC.
 */

/* ---- security ---- */

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

/* ---------------------------------------------------------------------
 * batches: asyncmig.schedule_batches(), batched data migrations
 *
 * A batched migration is a row with batch_relation set: its forwards_sql is
 * one DML statement run once per batch of keys, with $1 and $2 the first
 * and the last key of the batch; its backwards_sql is a plain migration.
 * The worker records its progress in meta->'batches' in the transaction of
 * each batch.
 * ---------------------------------------------------------------------
 */
ALTER TABLE asyncmig.migration
	ADD COLUMN batch_relation pg_catalog.regclass,
	ADD COLUMN batch_key name,
	ADD COLUMN batch_size integer,
	ADD COLUMN batch_pause interval,
	ADD CONSTRAINT migration_batch_check CHECK (
		(batch_relation IS NULL AND batch_key IS NULL AND
		 batch_size IS NULL AND batch_pause IS NULL) OR
		(batch_relation IS NOT NULL AND batch_key IS NOT NULL AND
		 batch_size OPERATOR(pg_catalog.>) 0 AND
		 batch_pause OPERATOR(pg_catalog.>=) '0'::interval));

COMMENT ON COLUMN asyncmig.migration.batch_relation IS
	'batched migrations: the table whose key is walked (NULL for plain migrations)';
COMMENT ON COLUMN asyncmig.migration.batch_key IS
	'batched migrations: the key column, walked in order by its btree index';
COMMENT ON COLUMN asyncmig.migration.batch_size IS
	'batched migrations: keys per batch';
COMMENT ON COLUMN asyncmig.migration.batch_pause IS
	'batched migrations: sleep between batches';

CREATE FUNCTION asyncmig.schedule_batches(name text,
										  relation pg_catalog.regclass,
										  batch_sql text,
										  backwards_sql text DEFAULT NULL,
										  batch_size integer DEFAULT 10000,
										  pause interval DEFAULT '0',
										  key name DEFAULT NULL,
										  execute_immediately boolean DEFAULT false,
										  depends_on text[] DEFAULT NULL,
										  not_before timestamptz DEFAULT NULL,
										  timeout interval DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'asyncmig_schedule_batches'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION asyncmig.schedule_batches(text, pg_catalog.regclass, text, text, integer, interval, name, boolean, text[], timestamptz, interval) IS
	'record a batched data migration (one DML statement run per batch of keys, each batch in its own transaction) and queue it; returns its status';

REVOKE ALL ON FUNCTION asyncmig.schedule_batches(text, pg_catalog.regclass, text, text, integer, interval, name, boolean, text[], timestamptz, interval) FROM PUBLIC;

/*
 * run(name, backwards, restart): restart => true starts a batched migration
 * from its first key again (every other forwards run resumes after the
 * last batch done).  A new argument makes a new function, so the 1.0 one
 * is dropped; the grants given on it are given again on the new one, and
 * pg_init_privs keeps the extension's own privileges only, so that pg_dump
 * still dumps those grants as the user's.
 */
DO LANGUAGE plpgsql $batches$
DECLARE
	old_acl pg_catalog.aclitem[];
	new_oid pg_catalog.oid;
	init_acl pg_catalog.aclitem[];
	g record;
BEGIN
	SELECT p.proacl INTO old_acl FROM pg_catalog.pg_proc p
	WHERE p.oid OPERATOR(pg_catalog.=) 'asyncmig.run(text, boolean)'::pg_catalog.regprocedure;

	DROP FUNCTION asyncmig.run(text, boolean);
	CREATE FUNCTION asyncmig.run(name text, backwards boolean DEFAULT false,
								 restart boolean DEFAULT false)
	RETURNS text
	AS 'MODULE_PATHNAME', 'asyncmig_run'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
	COMMENT ON FUNCTION asyncmig.run(text, boolean, boolean) IS
		'queue a run of a SCHEDULED, ERROR or FINISHED migration, forwards or backwards; restart => true starts a batched one from its first key again';
	REVOKE ALL ON FUNCTION asyncmig.run(text, boolean, boolean) FROM PUBLIC;

	new_oid := 'asyncmig.run(text, boolean, boolean)'::pg_catalog.regprocedure;
	SELECT p.proacl INTO init_acl FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) new_oid;

	FOR g IN
		SELECT a.grantee, a.is_grantable
		FROM pg_catalog.aclexplode(old_acl) a
		JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) new_oid
		WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
		  AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION asyncmig.run(text, boolean, boolean) TO %s%s',
			CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'public'
				 ELSE g.grantee::pg_catalog.regrole::text END,
			CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;

	UPDATE pg_catalog.pg_init_privs SET initprivs = init_acl
	WHERE objoid OPERATOR(pg_catalog.=) new_oid
	  AND classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
	  AND objsubid OPERATOR(pg_catalog.=) 0;
END
$batches$;

/* ---- the status view: dependencies, batches, runs with no worker, standbys, cleanups ---- */

/*
 * One definition, replacing 1.0's; the columns, their names and order are
 * as in 1.0, and CREATE OR REPLACE keeps the grants given on the view
 * (PostgreSQL's rules for extension scripts allow it for an object that is
 * a member of the extension already, as this view is).  What is new is in
 * the progress column:
 *
 * deps: a queued run says what it waits for:
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
 * The dependencies are read in the view (as its owner), not in a function,
 * so that a role with SELECT on the view needs nothing more.
 *
 * batches: the progress of a batched migration (bp, from meta->'batches'):
 * "batch 412: 4120000 of ~10000000 rows (41%), eta 6 min" while it runs,
 * where it stopped when it is ERROR (or queued again, unless it waits for
 * something), and "412 batches: 4120000 rows" when it has FINISHED.
 *
 * runs with no worker: a running migration whose worker is gone says so,
 * and what ends it (asyncmig.enabled = off: nothing but cancel()).
 *
 * standbys and cleanups: on a hot standby a running migration runs on the primary (the
 * standby has no worker to look up, and a pid of the primary could name an
 * unrelated process here): say so, and how far the standby has replayed.
 * An ended run whose INVALID index is still to be dropped (meta->'cleanup',
 * retried by the database's workers with a bounded wait) shows the cleanup:
 * the DROP running now, or the next try and why the last one failed (a
 * queued run whose cleanup is pending shows the cleanup, which it waits
 * for).
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
	-- a run whose worker is gone (the next sweep ends it; with
	-- asyncmig.enabled = off nothing does until cancel())
	WHEN m.status = 'IN PROGRESS' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
			WHERE a.pid OPERATOR(pg_catalog.=) (m.meta OPERATOR(pg_catalog.->>) 'pid')::integer
			  AND a.backend_type OPERATOR(pg_catalog.=) 'asyncmig worker') THEN
		'no worker runs it (its worker, pid ' OPERATOR(pg_catalog.||) COALESCE(m.meta OPERATOR(pg_catalog.->>) 'pid', '?')
			OPERATOR(pg_catalog.||) ', is gone): '
			OPERATOR(pg_catalog.||) CASE
				WHEN pg_catalog.current_setting('asyncmig.enabled', true) OPERATOR(pg_catalog.=) 'off'
				THEN 'asyncmig.enabled is off on this server; asyncmig.cancel() ends it'
				ELSE 'it ends ERROR when a worker next looks at this database'
			END
	WHEN m.status = 'IN PROGRESS' THEN
		COALESCE(
			bp.progress,
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
	-- an ended run (or one queued again) whose cleanup is pending
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
		COALESCE(NULLIF(pg_catalog.concat_ws('; ',
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
			 HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0)), ''), bp.progress)
	-- batches: where a batched migration is (ERROR, FINISHED, SCHEDULED)
	ELSE bp.progress
	END AS progress,
	m.meta OPERATOR(pg_catalog.#>>) '{error,message}' AS error
FROM asyncmig.migration m
	-- batches: a batched migration's progress, from meta->'batches'
	CROSS JOIN LATERAL (SELECT CASE
		WHEN m.batch_relation IS NOT NULL AND m.direction OPERATOR(pg_catalog.=) 'forwards'
			AND m.meta OPERATOR(pg_catalog.?) 'batches' THEN
			(SELECT CASE
				WHEN m.status OPERATOR(pg_catalog.=) 'FINISHED' THEN
					pg_catalog.format('%s batches: %s rows', b.n, b.r)
				ELSE
					pg_catalog.format('batch %s: %s of ~%s rows (%s%%)', b.n, b.r, b.e,
						CASE WHEN b.e OPERATOR(pg_catalog.>) 0
							THEN pg_catalog.floor(100 OPERATOR(pg_catalog.*) b.r OPERATOR(pg_catalog./) b.e)::pg_catalog.int8
							ELSE 0 END)
					OPERATOR(pg_catalog.||)
					CASE
						WHEN m.status OPERATOR(pg_catalog.<>) 'IN PROGRESS' OR b.run_r OPERATOR(pg_catalog.<=) 0
							OR b.secs OPERATOR(pg_catalog.<=) 0 THEN ''
						ELSE ', eta ' OPERATOR(pg_catalog.||) (SELECT
							CASE
								WHEN t.eta OPERATOR(pg_catalog.<) 90 THEN pg_catalog.round(t.eta)::pg_catalog.text OPERATOR(pg_catalog.||) ' s'
								WHEN t.eta OPERATOR(pg_catalog.<) 5400 THEN pg_catalog.round(t.eta OPERATOR(pg_catalog./) 60)::pg_catalog.text OPERATOR(pg_catalog.||) ' min'
								ELSE pg_catalog.round(t.eta OPERATOR(pg_catalog./) 3600, 1)::pg_catalog.text OPERATOR(pg_catalog.||) ' h'
							END
							FROM (SELECT (b.e OPERATOR(pg_catalog.-) b.r)::pg_catalog.numeric
								OPERATOR(pg_catalog.*) b.secs OPERATOR(pg_catalog./) b.run_r AS eta) t)
					END
			END
			FROM (SELECT s.n, s.r, s.run_r, s.secs,
					GREATEST(s.e, s.r) AS e
				FROM (SELECT
						COALESCE((m.meta OPERATOR(pg_catalog.#>>) '{batches,batches}')::pg_catalog.int8, 0) AS n,
						COALESCE((m.meta OPERATOR(pg_catalog.#>>) '{batches,rows}')::pg_catalog.int8, 0) AS r,
						COALESCE((m.meta OPERATOR(pg_catalog.#>>) '{batches,estimate_rows}')::pg_catalog.int8, 0) AS e,
						COALESCE((m.meta OPERATOR(pg_catalog.#>>) '{batches,run_rows}')::pg_catalog.int8, 0) AS run_r,
						COALESCE(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) m.started_at), 0)::pg_catalog.numeric AS secs
					) s) b)
		END AS progress) bp
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
