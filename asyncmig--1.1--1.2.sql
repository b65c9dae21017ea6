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

/*
 * Reading it: members of pg_read_all_stats (and so of pg_monitor) may read
 * the view (USAGE on the schema, SELECT on the view, granted here) and see
 * every row, as pg_stat_activity shows them every session; the caller's own
 * roles' rows stay what they were.  A row of a role the caller is not a
 * member of shows no SQL text, as pg_stat_activity shows another role's
 * query to a role without pg_read_all_stats: the query a worker runs (in
 * progress, also a cleanup's) and the error message, which may quote the
 * SQL or the data, read '<insufficient privilege>'.  Its SQLSTATE
 * (error_sqlstate) is shown to every reader.  The schema's functions and
 * the table stay revoked: these roles read, they do not act.
 *
 * A queued run with nothing else to wait for, while the launcher finds no
 * free background worker slot, says so in progress, e.g.
 *   waiting for a background worker slot (raise max_worker_processes, now 8; asyncmig alone needs 4)
 * from the read-only setting asyncmig.worker_slot_wait (src/preflight.c:
 * the launcher's flag in shared memory, nothing written per migration; a
 * setting because every reader of the view may read it, where a function
 * would need a grant to each of them).
 *
 * Numbers for programs (postgres_exporter, alerts), after the 1.1 columns
 * (CREATE OR REPLACE VIEW adds columns only at the end):
 *   error_sqlstate	   text: the SQLSTATE of the error of an ERROR row
 *   duration_seconds	   duration, in seconds
 *   progress_fraction	   0..1: 1 when FINISHED; a batched migration's rows
 *						   done of its estimate; an index build's phase and
 *						   its blocks or tuples, as an estimate; else NULL
 *   rows_done			   a batched migration's rows updated so far
 *   eta_seconds		   a running batched migration's estimate
 *   queued_seconds		   a queued (STARTED) run: since it was queued
 *   dependencies_waiting  a queued run: how many of its dependencies have
 *						   not FINISHED forwards (0 otherwise)
 *   id				   the row's id: what a NOTIFY asyncmig payload
 *						   ({"id": ..., "status": ...}, src/catalog.c) names
 * The numbers of a batched migration come from meta->'batches', as its
 * progress text does (b below); the text names the batches' size when
 * asyncmig.batch_target_time made it other than batch_size, e.g.
 *   batch 12: 31200 of ~2000000 rows (1%), size 1800, eta 4 min
 *
 * Cost: a read by name or id uses the table's unique indexes.  Only the
 * live rows (queued, running, a cleanup left: the predicates of
 * migration_queue_idx and migration_cleanup_idx) look things up per row
 * (pg_stat_activity, the progress views, their dependencies' rows); the
 * history is read with plain columns, in the other branch of a UNION ALL.
 * The planner charges every subquery of a row's expressions, whichever
 * CASE branch runs: with them on every row, 100,000 finished rows were
 * estimated at 10 M and JIT-compiled for ~2 s; now ~0.3 a history row.
 * sql/history_plans.sql checks both.
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
	WHEN m.status = 'IN PROGRESS' AND NOT m.worker_alive THEN
		'no worker runs it (its worker, pid ' OPERATOR(pg_catalog.||) COALESCE(m.meta OPERATOR(pg_catalog.->>) 'pid', '?')
			OPERATOR(pg_catalog.||) ', is gone): '
			OPERATOR(pg_catalog.||) CASE
				WHEN pg_catalog.current_setting('asyncmig.enabled', true) OPERATOR(pg_catalog.=) 'off'
				THEN 'asyncmig.enabled is off on this server; asyncmig.cancel() ends it'
				ELSE 'it ends ERROR when a worker next looks at this database'
			END
	-- an ended run (or one queued again) whose cleanup is pending
	WHEN m.meta OPERATOR(pg_catalog.?) 'cleanup' THEN
		'cleaning up after the interrupted run: ' OPERATOR(pg_catalog.||) COALESCE(
			m.cleanup_activity,
			'INVALID index to drop, try '
				OPERATOR(pg_catalog.||) (COALESCE((m.meta OPERATOR(pg_catalog.#>>) '{cleanup,tries}')::integer, 0) OPERATOR(pg_catalog.+) 1)::text
				OPERATOR(pg_catalog.||) COALESCE(' at ' OPERATOR(pg_catalog.||) (m.meta OPERATOR(pg_catalog.#>>) '{cleanup,next_try}'), '')
				OPERATOR(pg_catalog.||) COALESCE(' (last try: ' OPERATOR(pg_catalog.||) CASE
					WHEN v.own THEN m.meta OPERATOR(pg_catalog.#>>) '{cleanup,last_error}'
					WHEN m.meta OPERATOR(pg_catalog.#>) '{cleanup,last_error}' IS NOT NULL THEN '<insufficient privilege>'
					END OPERATOR(pg_catalog.||) ')', ''))
	-- deps: what a queued run waits for
	WHEN m.status OPERATOR(pg_catalog.=) 'STARTED'
		AND (m.not_before OPERATOR(pg_catalog.>) pg_catalog.now() OR m.waits_for IS NOT NULL) THEN
		pg_catalog.concat_ws('; ',
			CASE WHEN m.not_before OPERATOR(pg_catalog.>) pg_catalog.now() THEN
				'waiting until ' OPERATOR(pg_catalog.||) COALESCE(pg_catalog.to_char(m.not_before, 'YYYY-MM-DD HH24:MI:SS'), m.not_before::text)
			END,
			m.waits_for)
	-- else: a queued run, a worker slot (monitor); where a batched run is
	-- (batches); what a running one's worker does
	ELSE NULLIF(pg_catalog.concat_ws('; ',
		CASE WHEN m.status OPERATOR(pg_catalog.=) 'STARTED' THEN
			NULLIF(pg_catalog.current_setting('asyncmig.worker_slot_wait', true), '')
		END,
		COALESCE(bp.progress, m.activity)), '')
	END AS progress,
	CASE WHEN v.own OR m.meta OPERATOR(pg_catalog.#>) '{error,message}' IS NULL
		THEN m.meta OPERATOR(pg_catalog.#>>) '{error,message}'
		ELSE '<insufficient privilege>'
	END AS error,
	m.meta OPERATOR(pg_catalog.#>>) '{error,sqlstate}' AS error_sqlstate,
	pg_catalog.date_part('epoch', CASE
		WHEN m.started_at IS NULL THEN NULL
		WHEN m.status = 'IN PROGRESS' THEN pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) m.started_at
		ELSE m.finished_at OPERATOR(pg_catalog.-) m.started_at
	END)::double precision AS duration_seconds,
	CASE
		WHEN m.status OPERATOR(pg_catalog.=) 'FINISHED' THEN 1::double precision
		WHEN b.n IS NOT NULL THEN
			CASE WHEN b.e OPERATOR(pg_catalog.>) 0
				THEN LEAST(b.r::double precision OPERATOR(pg_catalog./) b.e::double precision, 1) END
		WHEN m.status OPERATOR(pg_catalog.=) 'IN PROGRESS' AND NOT pg_catalog.pg_is_in_recovery() THEN
			m.index_fraction
	END AS progress_fraction,
	b.r AS rows_done,
	CASE
		WHEN m.status OPERATOR(pg_catalog.=) 'IN PROGRESS' AND b.run_r OPERATOR(pg_catalog.>) 0 AND b.secs OPERATOR(pg_catalog.>) 0 THEN
			((b.e OPERATOR(pg_catalog.-) b.r)::pg_catalog.numeric OPERATOR(pg_catalog.*) b.secs OPERATOR(pg_catalog./) b.run_r)::double precision
	END AS eta_seconds,
	CASE WHEN m.status OPERATOR(pg_catalog.=) 'STARTED' THEN
		pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) m.updated_at)::double precision
	END AS queued_seconds,
	CASE WHEN m.status OPERATOR(pg_catalog.=) 'STARTED' AND m.direction OPERATOR(pg_catalog.=) 'forwards' THEN
		m.dependencies_waiting
		ELSE 0
	END AS dependencies_waiting,
	m.id
FROM (
	-- cost: the live rows (queued, running, a cleanup left; the
	-- predicates of migration_queue_idx and migration_cleanup_idx) with
	-- what is looked up elsewhere for them (pg_stat_activity, the progress
	-- views, their dependencies' rows)...
	SELECT l.id, l.name, l.status, l.direction, l.owner, l.attempts,
		l.started_at, l.finished_at, l.updated_at, l.not_before,
		l.batch_relation, l.batch_size, l.meta,
		-- batches: a batched migration's numbers, from meta->'batches'
		CASE WHEN l.batch_relation IS NOT NULL AND l.direction OPERATOR(pg_catalog.=) 'forwards'
				AND l.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE((l.meta OPERATOR(pg_catalog.#>>) '{batches,batches}')::pg_catalog.int8, 0) END AS b_n,
		CASE WHEN l.batch_relation IS NOT NULL AND l.direction OPERATOR(pg_catalog.=) 'forwards'
				AND l.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE((l.meta OPERATOR(pg_catalog.#>>) '{batches,rows}')::pg_catalog.int8, 0) END AS b_r,
		CASE WHEN l.batch_relation IS NOT NULL AND l.direction OPERATOR(pg_catalog.=) 'forwards'
				AND l.meta OPERATOR(pg_catalog.?) 'batches' THEN
			GREATEST(COALESCE((l.meta OPERATOR(pg_catalog.#>>) '{batches,estimate_rows}')::pg_catalog.int8, 0),
				COALESCE((l.meta OPERATOR(pg_catalog.#>>) '{batches,rows}')::pg_catalog.int8, 0)) END AS b_e,
		CASE WHEN l.batch_relation IS NOT NULL AND l.direction OPERATOR(pg_catalog.=) 'forwards'
				AND l.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE((l.meta OPERATOR(pg_catalog.#>>) '{batches,run_rows}')::pg_catalog.int8, 0) END AS b_run_r,
		CASE WHEN l.batch_relation IS NOT NULL AND l.direction OPERATOR(pg_catalog.=) 'forwards'
				AND l.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) l.started_at), 0)::pg_catalog.numeric END AS b_secs,
		-- is its worker there?
		CASE WHEN l.status OPERATOR(pg_catalog.=) 'IN PROGRESS' THEN
			EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
				WHERE a.pid OPERATOR(pg_catalog.=) (l.meta OPERATOR(pg_catalog.->>) 'pid')::integer
				  AND a.backend_type OPERATOR(pg_catalog.=) 'asyncmig worker')
		END AS worker_alive,
		-- what its worker does: an index build's or a vacuum's phase, or
		-- the statement it runs (SQL shown to the owner's roles only)
		CASE WHEN l.status OPERATOR(pg_catalog.=) 'IN PROGRESS' THEN COALESCE(
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
			 WHERE p.pid OPERATOR(pg_catalog.=) (l.meta OPERATOR(pg_catalog.->>) 'pid')::integer),
			(SELECT 'vacuuming: ' OPERATOR(pg_catalog.||) p.phase
				OPERATOR(pg_catalog.||) COALESCE(
					CASE WHEN p.heap_blks_total OPERATOR(pg_catalog.>) 0 THEN ' ' OPERATOR(pg_catalog.||)
						(100 OPERATOR(pg_catalog.*) p.heap_blks_scanned OPERATOR(pg_catalog./) p.heap_blks_total)::text OPERATOR(pg_catalog.||) '%'
					END, '')
			 FROM pg_catalog.pg_stat_progress_vacuum p
			 WHERE p.pid OPERATOR(pg_catalog.=) (l.meta OPERATOR(pg_catalog.->>) 'pid')::integer),
			(SELECT 'running: ' OPERATOR(pg_catalog.||) CASE
					WHEN pg_catalog.pg_has_role(l.owner::pg_catalog.oid, 'MEMBER') THEN pg_catalog.left(a.query, 200)
					ELSE '<insufficient privilege>' END
			 FROM pg_catalog.pg_stat_activity a
			 WHERE a.pid OPERATOR(pg_catalog.=) (l.meta OPERATOR(pg_catalog.->>) 'pid')::integer
			   AND a.state OPERATOR(pg_catalog.=) 'active'))
		END AS activity,
		-- the statement of a cleanup that runs now
		CASE WHEN l.meta OPERATOR(pg_catalog.?) 'cleanup' THEN
			(SELECT 'running ' OPERATOR(pg_catalog.||) CASE
					WHEN pg_catalog.pg_has_role(l.owner::pg_catalog.oid, 'MEMBER') THEN pg_catalog.left(a.query, 200)
					ELSE '<insufficient privilege>' END
			 FROM pg_catalog.pg_stat_activity a
			 WHERE NOT pg_catalog.pg_is_in_recovery()
			   AND a.pid OPERATOR(pg_catalog.=) (l.meta OPERATOR(pg_catalog.#>>) '{cleanup,pid}')::integer
			   AND a.state OPERATOR(pg_catalog.=) 'active')
		END AS cleanup_activity,
		dep.waits_for,
		-- monitor: an index build's phase as a fraction
		CASE WHEN l.status OPERATOR(pg_catalog.=) 'IN PROGRESS' THEN
			(SELECT LEAST(GREATEST(CASE
					WHEN p.phase OPERATOR(pg_catalog.~~) 'building index: scanning table%' THEN 0.4 OPERATOR(pg_catalog.*) f.f
					WHEN p.phase OPERATOR(pg_catalog.~~) 'building index: sorting%' THEN 0.4
					WHEN p.phase OPERATOR(pg_catalog.~~) 'building index%' THEN 0.45 OPERATOR(pg_catalog.+) 0.05 OPERATOR(pg_catalog.*) f.f
					WHEN p.phase OPERATOR(pg_catalog.=) 'waiting for writers before validation' THEN 0.5
					WHEN p.phase OPERATOR(pg_catalog.=) 'index validation: scanning index' THEN 0.5 OPERATOR(pg_catalog.+) 0.1 OPERATOR(pg_catalog.*) f.f
					WHEN p.phase OPERATOR(pg_catalog.=) 'index validation: sorting tuples' THEN 0.6
					WHEN p.phase OPERATOR(pg_catalog.=) 'index validation: scanning table' THEN 0.65 OPERATOR(pg_catalog.+) 0.3 OPERATOR(pg_catalog.*) f.f
					WHEN p.phase OPERATOR(pg_catalog.~~) 'waiting for%' AND p.phase OPERATOR(pg_catalog.<>) 'waiting for writers before build' THEN 0.95
					ELSE 0
				END, 0), 1)::double precision
			 FROM pg_catalog.pg_stat_progress_create_index p
				CROSS JOIN LATERAL (SELECT CASE
					WHEN p.blocks_total OPERATOR(pg_catalog.>) 0 THEN p.blocks_done::double precision OPERATOR(pg_catalog./) p.blocks_total
					WHEN p.tuples_total OPERATOR(pg_catalog.>) 0 THEN p.tuples_done::double precision OPERATOR(pg_catalog./) p.tuples_total
					ELSE 0 END AS f) f
			 WHERE p.pid OPERATOR(pg_catalog.=) (l.meta OPERATOR(pg_catalog.->>) 'pid')::integer)
		END AS index_fraction,
		dep.n AS dependencies_waiting
	FROM asyncmig.migration l
		-- deps: the dependencies a queued forwards run waits for (one look
		-- at them for the text and the count), and when it gives up on one
		-- that nothing runs: the worker's deadline (AM_DEPENDENCY_DEADLINE,
		-- src/catalog_dependencies.c), not_before counting at most 1000
		-- years after the row was queued, so that no time of a row (one
		-- stored before schedule() refused far times included) makes it
		-- "timestamp out of range"
		CROSS JOIN LATERAL (SELECT pg_catalog.count(*)::integer AS n,
				CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 1
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
							pg_catalog.to_char(GREATEST(l.updated_at,
									CASE WHEN l.not_before OPERATOR(pg_catalog.>) (l.updated_at OPERATOR(pg_catalog.+) '1000 years'::pg_catalog.interval)
										THEN l.updated_at OPERATOR(pg_catalog.+) '1000 years'::pg_catalog.interval
										ELSE l.not_before END)
								OPERATOR(pg_catalog.+) NULLIF(COALESCE(pg_catalog.current_setting('asyncmig.dependency_timeout', true), '1h')::pg_catalog.interval, '0'),
								'YYYY-MM-DD HH24:MI:SS'), '')
					END), ', ' ORDER BY u.o) AS waits_for
			 FROM pg_catalog.unnest(l.depends_on) WITH ORDINALITY u(dn, o)
			 LEFT JOIN asyncmig.migration d ON d.name OPERATOR(pg_catalog.=) u.dn
			 WHERE l.status OPERATOR(pg_catalog.=) 'STARTED' AND l.direction OPERATOR(pg_catalog.=) 'forwards'
			   AND (d.id IS NULL OR d.status OPERATOR(pg_catalog.<>) 'FINISHED' OR d.direction OPERATOR(pg_catalog.<>) 'forwards')) dep
	WHERE l.status OPERATOR(pg_catalog.=) ANY ('{STARTED,IN PROGRESS}'::text[]) OR l.meta OPERATOR(pg_catalog.?) 'cleanup'
	UNION ALL
	-- ... and the history (FINISHED, ERROR, SCHEDULED), which needs none
	-- of it: the planner's estimate (and so its choice to JIT-compile)
	-- and the time of a read grow with the history by a few plain columns
	-- a row
	SELECT h.id, h.name, h.status, h.direction, h.owner, h.attempts,
		h.started_at, h.finished_at, h.updated_at, h.not_before,
		h.batch_relation, h.batch_size, h.meta,
		-- batches: a batched migration's numbers, from meta->'batches'
		CASE WHEN h.batch_relation IS NOT NULL AND h.direction OPERATOR(pg_catalog.=) 'forwards'
				AND h.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE((h.meta OPERATOR(pg_catalog.#>>) '{batches,batches}')::pg_catalog.int8, 0) END AS b_n,
		CASE WHEN h.batch_relation IS NOT NULL AND h.direction OPERATOR(pg_catalog.=) 'forwards'
				AND h.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE((h.meta OPERATOR(pg_catalog.#>>) '{batches,rows}')::pg_catalog.int8, 0) END AS b_r,
		CASE WHEN h.batch_relation IS NOT NULL AND h.direction OPERATOR(pg_catalog.=) 'forwards'
				AND h.meta OPERATOR(pg_catalog.?) 'batches' THEN
			GREATEST(COALESCE((h.meta OPERATOR(pg_catalog.#>>) '{batches,estimate_rows}')::pg_catalog.int8, 0),
				COALESCE((h.meta OPERATOR(pg_catalog.#>>) '{batches,rows}')::pg_catalog.int8, 0)) END AS b_e,
		CASE WHEN h.batch_relation IS NOT NULL AND h.direction OPERATOR(pg_catalog.=) 'forwards'
				AND h.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE((h.meta OPERATOR(pg_catalog.#>>) '{batches,run_rows}')::pg_catalog.int8, 0) END AS b_run_r,
		CASE WHEN h.batch_relation IS NOT NULL AND h.direction OPERATOR(pg_catalog.=) 'forwards'
				AND h.meta OPERATOR(pg_catalog.?) 'batches' THEN
			COALESCE(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) h.started_at), 0)::pg_catalog.numeric END AS b_secs,
		NULL::boolean, NULL::text, NULL::text, NULL::text, NULL::double precision, NULL::integer
	FROM asyncmig.migration h
	WHERE NOT (h.status OPERATOR(pg_catalog.=) ANY ('{STARTED,IN PROGRESS}'::text[]) OR h.meta OPERATOR(pg_catalog.?) 'cleanup')
	) m
	-- monitor: is the row the caller's own (its SQL shown)?
	CROSS JOIN LATERAL (SELECT pg_catalog.pg_has_role(m.owner::pg_catalog.oid, 'MEMBER') AS own) v
	-- batches: a batched migration's numbers (NULL for others), computed
	-- once a row in the branches above
	CROSS JOIN LATERAL (SELECT m.b_n AS n, m.b_r AS r, m.b_e AS e, m.b_run_r AS run_r, m.b_secs AS secs,
		(m.meta OPERATOR(pg_catalog.#>>) '{batches,size}')::pg_catalog.int8 AS size) b
	CROSS JOIN LATERAL (SELECT (b.e OPERATOR(pg_catalog.-) b.r)::pg_catalog.numeric
		OPERATOR(pg_catalog.*) b.secs OPERATOR(pg_catalog./) NULLIF(b.run_r, 0) AS eta) t
	-- batches: a batched migration's progress
	CROSS JOIN LATERAL (SELECT CASE
		WHEN b.n IS NULL THEN NULL
		WHEN m.status OPERATOR(pg_catalog.=) 'FINISHED' THEN
			pg_catalog.format('%s batches: %s rows', b.n, b.r)
		ELSE
			pg_catalog.format('batch %s: %s of ~%s rows (%s%%)', b.n, b.r, b.e,
				CASE WHEN b.e OPERATOR(pg_catalog.>) 0
					THEN pg_catalog.floor(100 OPERATOR(pg_catalog.*) b.r OPERATOR(pg_catalog./) b.e)::pg_catalog.int8
					ELSE 0 END)
			-- batches: the size asyncmig.batch_target_time chose, when not batch_size
			OPERATOR(pg_catalog.||)
			CASE WHEN b.size OPERATOR(pg_catalog.<>) m.batch_size
				THEN pg_catalog.format(', size %s', b.size) ELSE '' END
			OPERATOR(pg_catalog.||)
			CASE
				WHEN m.status OPERATOR(pg_catalog.<>) 'IN PROGRESS' OR b.run_r OPERATOR(pg_catalog.<=) 0
					OR b.secs OPERATOR(pg_catalog.<=) 0 THEN ''
				ELSE ', eta ' OPERATOR(pg_catalog.||) CASE
						WHEN t.eta OPERATOR(pg_catalog.<) 90 THEN pg_catalog.round(t.eta)::pg_catalog.text OPERATOR(pg_catalog.||) ' s'
						WHEN t.eta OPERATOR(pg_catalog.<) 5400 THEN pg_catalog.round(t.eta OPERATOR(pg_catalog./) 60)::pg_catalog.text OPERATOR(pg_catalog.||) ' min'
						ELSE pg_catalog.round(t.eta OPERATOR(pg_catalog./) 3600, 1)::pg_catalog.text OPERATOR(pg_catalog.||) ' h'
					END
			END
		END AS progress) bp
WHERE v.own OR pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER');

COMMENT ON VIEW asyncmig.status IS
	'asyncmig migrations of the current role''s roles (every one for members of pg_read_all_stats, without SQL texts), with duration, progress and error, and numbers for monitoring';

/* monitoring roles read the view (only the view) */
GRANT USAGE ON SCHEMA asyncmig TO pg_read_all_stats;
GRANT SELECT ON asyncmig.status TO pg_read_all_stats;
