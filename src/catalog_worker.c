/*-------------------------------------------------------------------------
 *
 * catalog_worker.c
 *		The statements on asyncmig.migration of a worker (worker.c,
 *		executor.c): sweep, claim, guard, attempts and the end of a run.
 *
 * They run in the worker's own transactions, between am_catalog_begin()
 * and am_catalog_commit() (see catalog.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "pgstat.h"
#include "storage/latch.h"

#include "asyncmig.h"
#include "catalog.h"
#include "catalog_worker.h"

/* "is there a row of asyncmig.migration WHERE ...", as one literal (so
 * that test/meta/history_queries.py sees the statement the code runs) */
#define AM_ANY_ROW(where) \
	"SELECT EXISTS (SELECT 1 FROM asyncmig.migration WHERE " where ")"

/*
 * am_catalog_worker_any
 *		Whether a row matches, read in an SPI connection of its own: the
 *		first, cheap look of the functions below.  What they look for is
 *		mostly not there, and a plain EXISTS costs a fresh backend far less
 *		to plan than the statement that fetches or changes the rows.
 */
static bool
am_catalog_worker_any(const char *sql)
{
	bool		result;

	SPI_connect();
	result = am_catalog_spi_bool(sql, 0, NULL, NULL, true);
	SPI_finish();
	return result;
}

/*
 * am_catalog_worker_in_progress
 *		Every IN PROGRESS row of this database, not locked: the sweep ends
 *		each dead one with am_catalog_worker_end_dead_run(), which skips those a
 *		user holds.
 */
List *
am_catalog_worker_in_progress(void)
{
	/*
	 * Mostly there is none (the previous worker's run is ended before the
	 * launcher starts the next).  Both reads are in this transaction; a row
	 * that turns IN PROGRESS in between is a live worker's new claim, which
	 * the sweep leaves alone anyway.
	 */
	if (!am_catalog_worker_any(AM_ANY_ROW("status = '" AM_STATUS_IN_PROGRESS "'")))
		return NIL;
	return am_catalog_fetch("SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE status = '" AM_STATUS_IN_PROGRESS "' ORDER BY id",
							   0, NULL, NULL, NULL, false);
}

/*
 * am_catalog_worker_cleanups_due
 *		Ended runs whose INVALID indexes are still to be dropped and whose
 *		next try is due (meta->'cleanup', see am_catalog_worker_finish()).
 */
List *
am_catalog_worker_cleanups_due(void)
{
	List	   *result = NIL;
	uint64		i;
	MemoryContext cxt = CurrentMemoryContext;

	/*
	 * Mostly there is none (the EXISTS uses the partial index
	 * migration_cleanup_idx).  A cleanup recorded in between is a run ended
	 * just now, which the next worker finds.
	 */
	if (!am_catalog_worker_any(AM_ANY_ROW("meta ? 'cleanup'")))
		return NIL;
	SPI_connect();
	am_catalog_spi("SELECT id, name, owner::pg_catalog.oid, "
				   "  (meta -> 'cleanup' -> 'guard')::pg_catalog.text "
				   "FROM asyncmig.migration WHERE meta ? 'cleanup' "
				   "  AND coalesce((meta -> 'cleanup' ->> 'next_try')::pg_catalog.timestamptz, "
				   "    '-infinity') <= pg_catalog.now() "
				   "ORDER BY id",
				   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		AmCleanup  *c = palloc0(sizeof(AmCleanup));
		bool		isnull;

		c->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		c->name = SPI_getvalue(tup, desc, 2);
		c->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		c->guard = SPI_getvalue(tup, desc, 4);
		result = lappend(result, c);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * am_catalog_worker_cleanup_begin
 *		Say in the row that this worker (pid) is dropping its INVALID
 *		indexes now, for the status view.  False if a user holds the row:
 *		try later.
 */
bool
am_catalog_worker_cleanup_begin(int64 id, int pid)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(pid);
	return am_catalog_exec("UPDATE asyncmig.migration SET meta = pg_catalog.jsonb_set(meta, "
				   "  '{cleanup,pid}', pg_catalog.to_jsonb($2)) "
				   "WHERE id = (SELECT id FROM asyncmig.migration "
				   "  WHERE id = $1 AND meta ? 'cleanup' FOR UPDATE SKIP LOCKED)",
				   2, types, values, NULL, false, SPI_OK_UPDATE) == 1;
}

/*
 * am_catalog_worker_cleanup_end
 *		After a try: with error NULL the INVALID indexes are gone and so is
 *		the cleanup; else count the try, say why, and set the next one
 *		(1 s, 2 s, 4 s ... up to a minute later).  False if a user holds the
 *		row: the next sweep tries again.
 */
bool
am_catalog_worker_cleanup_end(int64 id, const char *error)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = "  ";

	values[0] = Int64GetDatum(id);
	if (error)
		values[1] = CStringGetTextDatum(error);
	else
		nulls[1] = 'n';
	return am_catalog_exec("UPDATE asyncmig.migration SET meta = CASE WHEN $2 IS NULL "
				   "  THEN meta - 'cleanup' "
				   "  ELSE pg_catalog.jsonb_set(meta, '{cleanup}', "
				   "    ((meta -> 'cleanup') - 'pid') || pg_catalog.jsonb_build_object("
				   "      'tries', coalesce((meta -> 'cleanup' ->> 'tries')::pg_catalog.int4, 0) + 1, "
				   "      'last_error', $2::pg_catalog.text, "
				   "      'next_try', pg_catalog.now() + pg_catalog.make_interval(secs => "
				   "        LEAST(60.0, 2.0 ^ coalesce((meta -> 'cleanup' ->> 'tries')::pg_catalog.int4, 0))))) "
				   "  END "
				   "WHERE id = (SELECT id FROM asyncmig.migration "
				   "  WHERE id = $1 AND meta ? 'cleanup' FOR UPDATE SKIP LOCKED)",
				   2, types, values, nulls, false, SPI_OK_UPDATE) == 1;
}

/*
 * am_catalog_worker_has_work
 *		Does this database have queued or running migrations, or a cleanup
 *		left?  (Then it must stay in the registry.)
 */
bool
am_catalog_worker_has_work(void)
{
	return am_catalog_worker_any(AM_ANY_ROW("status IN ('" AM_STATUS_STARTED "', '" AM_STATUS_IN_PROGRESS "') "
											"OR meta ? 'cleanup'"));
}

/*
 * am_catalog_worker_queued_with_dependencies
 *		Is some queued row waiting on dependencies?  Only such rows can
 *		have a dependency in ERROR (am_catalog_fail_broken_dependencies())
 *		or one that nothing runs (am_catalog_dependencies_fail_missing()):
 *		without one a worker skips both, which a fresh backend pays
 *		for dearly (planned anew in every worker).
 */
bool
am_catalog_worker_queued_with_dependencies(void)
{
	return am_catalog_worker_any(AM_ANY_ROW("status = '" AM_STATUS_STARTED "' AND depends_on IS NOT NULL"));
}

/*
 * am_catalog_worker_fail_foreign
 *		End in ERROR the queued and running rows that were queued elsewhere
 *		(restored by pg_restore, copied from a template database): a
 *		restored database must not start executing on its own.  Returns how
 *		many it ended.
 */
int
am_catalog_worker_fail_foreign(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	uint64		i;
	int			n;

	values[0] = am_catalog_origin();
	SPI_connect();

	/*
	 * Mostly there are none: a plain EXISTS says so first.  Every worker
	 * runs this at its start, in a fresh backend that plans it anew, and
	 * the UPDATE below costs far more to parse and plan than this read.
	 * Skipping the UPDATE when the read finds nothing changes nothing: the
	 * UPDATE would find the same rows (both in read committed, a row
	 * queued elsewhere that commits after either snapshot is caught by a
	 * later worker, which its INSERT's trigger wakes), and a row that the
	 * read sees but a session holds locked is skipped by the UPDATE as
	 * before (the claim's *skipped then brings a worker back for it).
	 */
	if (!am_catalog_spi_bool(AM_ANY_ROW("status IN ('" AM_STATUS_STARTED "', '" AM_STATUS_IN_PROGRESS "') "
										"AND meta -> 'origin' IS DISTINCT FROM $1::pg_catalog.jsonb"),
							 1, types, values, true))
	{
		SPI_finish();
		return 0;
	}
	n = am_catalog_spi("UPDATE asyncmig.migration SET status = '" AM_STATUS_ERROR "', "
			   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
			   "  meta = (meta - 'guard') || pg_catalog.jsonb_build_object('error', "
			   "    pg_catalog.jsonb_build_object('message', "
			   "      'not run: it was queued in another database or cluster and restored or copied here', "
			   "      'hint', 'asyncmig.run() runs it here.', 'sqlstate', '55000')) "
			   "WHERE id IN (SELECT id FROM asyncmig.migration "
			   "  WHERE status IN ('" AM_STATUS_STARTED "', '" AM_STATUS_IN_PROGRESS "') "
			   "    AND meta -> 'origin' IS DISTINCT FROM $1::pg_catalog.jsonb "
			   "  FOR UPDATE SKIP LOCKED) "
			   "RETURNING name",
			   1, types, values, NULL, false, SPI_OK_UPDATE_RETURNING);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i],
										SPI_tuptable->tupdesc, 1);

		ereport(LOG,
				(errmsg("asyncmig migration \"%s\" not run: it was queued in another database or cluster",
						name)));
		am_catalog_notify(name, AM_STATUS_ERROR);
	}
	SPI_finish();
	return n;
}

/*
 * The rows a worker may claim: STARTED, queued here, not_before passed,
 * and for a forwards run every dependency FINISHED forwards.  A backwards
 * run does not wait for its dependencies (they are undone after it, in the
 * order the runs were queued).  $2 is this database's origin.
 */
#define AM_RUNNABLE \
	"m.status = '" AM_STATUS_STARTED "' " \
	"AND m.meta -> 'origin' = $2::pg_catalog.jsonb " \
	"AND NOT m.meta ? 'cleanup' " \
	"AND (m.not_before IS NULL OR m.not_before <= pg_catalog.now()) " \
	"AND (m.direction = '" AM_DIRECTION_BACKWARDS "' OR " \
	"  NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(m.depends_on) dn " \
	"  WHERE NOT EXISTS (SELECT 1 FROM asyncmig.migration d " \
	"    WHERE d.name = dn AND d.status = '" AM_STATUS_FINISHED "' " \
	"      AND d.direction = '" AM_DIRECTION_FORWARDS "'))) "

/*
 * What am_catalog_worker_claim() first tries: AM_RUNNABLE for a row
 * without dependencies, where the dependency subqueries are true.
 */
#define AM_CLAIMABLE_WITHOUT_DEPENDENCIES \
	"m.status = '" AM_STATUS_STARTED "' " \
	"AND m.meta -> 'origin' = $2::pg_catalog.jsonb " \
	"AND NOT m.meta ? 'cleanup' " \
	"AND (m.not_before IS NULL OR m.not_before <= pg_catalog.now()) " \
	"AND m.depends_on IS NULL "

/*
 * The claim: the oldest row that where (AM_RUNNABLE or the above) allows,
 * IN PROGRESS for worker pid $1.  One literal each, for
 * test/meta/history_queries.py.
 */
#define AM_CLAIM(where) \
	"UPDATE asyncmig.migration SET status = '" AM_STATUS_IN_PROGRESS "', attempts = 1, " \
	"  started_at = pg_catalog.now(), finished_at = NULL, " \
	"  updated_at = pg_catalog.now(), " \
	"  meta = (meta - 'error' - 'guard') || pg_catalog.jsonb_build_object('pid', $1) " \
	"WHERE id = (" \
	"  SELECT m.id FROM asyncmig.migration m " \
	"  WHERE " where \
	"  ORDER BY m.updated_at, m.id LIMIT 1 FOR UPDATE SKIP LOCKED) " \
	"RETURNING " AM_COLUMNS

/*
 * am_catalog_worker_claim
 *		Mark the oldest runnable queued row (AM_RUNNABLE) IN PROGRESS for
 *		this worker and return it, or NULL.  Oldest: queued first.  A row a
 *		session holds locked is skipped, never waited for; *skipped then
 *		says that a runnable row (or one queued elsewhere, which
 *		am_catalog_worker_fail_foreign() ends) was left, so that the caller comes
 *		back for it (nothing else may ever wake the launcher for that
 *		database).
 */
AmMigration *
am_catalog_worker_claim(int pid, bool with_dependencies, bool *skipped)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	List	   *rows = NIL;
	AmMigration *m;
	bool		isnull;

	values[0] = Int32GetDatum(pid);
	values[1] = am_catalog_origin();
	*skipped = false;

	/*
	 * No queued row had dependencies (am_catalog_worker_queued_with_dependencies(),
	 * just before in this transaction): first the same claim among the rows
	 * without any, which spares a fresh backend the planning of the
	 * dependency subqueries.  Safe: a row without dependencies is runnable
	 * by AM_RUNNABLE exactly when it is by this shorter test, so this never
	 * claims a row the full claim would not; a row with dependencies queued
	 * in between (or with an empty list) is left to the full claim below,
	 * which runs when this one claimed nothing.
	 */
	if (!with_dependencies)
		rows = am_catalog_fetch(AM_CLAIM(AM_CLAIMABLE_WITHOUT_DEPENDENCIES),
								2, types, values, NULL, false);
	if (rows == NIL)
		rows = am_catalog_fetch(AM_CLAIM(AM_RUNNABLE),
								2, types, values, NULL, false);
	if (rows == NIL)
	{
		/*
		 * Nothing claimed: was a runnable row skipped because it is held?
		 * Or a row queued elsewhere that am_catalog_worker_fail_foreign() had to
		 * skip?
		 */
		SPI_connect();
		am_catalog_spi("SELECT EXISTS (SELECT 1 FROM asyncmig.migration m "
					   "  WHERE (" AM_RUNNABLE ") OR (m.status IN ('" AM_STATUS_STARTED "', '"
					   AM_STATUS_IN_PROGRESS "') AND m.meta -> 'origin' IS DISTINCT FROM $2::pg_catalog.jsonb))",
					   2, types, values, NULL, true, SPI_OK_SELECT);
		*skipped = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
		SPI_finish();
		return NULL;
	}
	m = linitial(rows);
	am_catalog_notify(m->name, AM_STATUS_IN_PROGRESS);
	return m;
}

/*
 * am_catalog_worker_next_wakeup
 *		The earliest not_before of a queued row still in the future or
 *		next try of a cleanup, or 0.
 */
TimestampTz
am_catalog_worker_next_wakeup(void)
{
	return am_catalog_time("SELECT pg_catalog.min(t) FROM ("
		   "  SELECT not_before AS t FROM asyncmig.migration "
		   "  WHERE status = '" AM_STATUS_STARTED "' AND not_before > pg_catalog.now() "
		   "  UNION ALL "
		   "  SELECT coalesce((meta -> 'cleanup' ->> 'next_try')::pg_catalog.timestamptz, "
		   "    pg_catalog.now()) FROM asyncmig.migration WHERE meta ? 'cleanup') s",
		   0, NULL, NULL);
}

/*
 * What a worker writes into the row of the run it claimed, by named
 * fields: each transition's function (am_run_write_*) reads its own.
 */
typedef struct AmRunWrite
{
	int64		id;
	int			pid;			/* the run's worker, meta->'pid' */
	const char *guard_json;		/* guard: NULL forgets it */
	ErrorData  *edata;			/* attempt, error */
	const char *statement;		/* error: the statement that failed */
	const char *message_override;	/* error: replaces edata's message */
	const char *error_extra;	/* error: jsonb object merged into
								 * meta->'error' (a batch's bounds), or NULL */
} AmRunWrite;

/* one write of a run, in the current transaction: false if not its row */
typedef bool (*AmRunWriteFn) (const AmRunWrite *w);

/* jsonb of an error from the parameters $3 .. $8 */
#define AM_RUN_ERROR_JSON \
	"pg_catalog.jsonb_build_object('message', $3::pg_catalog.text, " \
	"'sqlstate', $4::pg_catalog.text, 'detail', $5::pg_catalog.text, " \
	"'hint', $6::pg_catalog.text, 'context', $7::pg_catalog.text, " \
	"'statement', $8::pg_catalog.text)"

/* how long one try of a write may wait for a row lock a session holds */
#define AM_RUN_WRITE_LOCK_TIMEOUT_MS	1000

/*
 * am_run_update
 *		Run UPDATE sql, whose WHERE is AM_SAME_RUN, on the row of w's run
 *		with nargs parameters (values and nulls from $3 on are the
 *		caller's).  With ended, the run ends in that status (sql returns
 *		its name): listeners are told.  False if the row is not that run's
 *		any more.
 */
static bool
am_run_update(const AmRunWrite *w, const char *sql, int nargs, Datum *values,
			  const char *nulls, const char *ended)
{
	Oid			types[9] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	int			n;

	values[0] = Int64GetDatum(w->id);
	values[1] = Int32GetDatum(w->pid);
	SPI_connect();
	n = am_catalog_spi(sql, nargs, types, values, nulls, false,
					   ended ? SPI_OK_UPDATE_RETURNING : SPI_OK_UPDATE);
	if (ended && n == 1)
		am_catalog_notify(SPI_getvalue(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1), ended);
	SPI_finish();
	return n == 1;
}

/*
 * am_run_write_guard
 *		Record w->guard_json as the run's guard, or forget it (NULL).
 */
static bool
am_run_write_guard(const AmRunWrite *w)
{
	Datum		values[3];
	char		nulls[3] = "   ";

	if (w->guard_json)
		values[2] = CStringGetTextDatum(w->guard_json);
	else
		nulls[2] = 'n';
	return am_run_update(w, "UPDATE asyncmig.migration SET meta = CASE WHEN $3 IS NULL "
						 "THEN meta - 'guard' "
						 "ELSE meta || pg_catalog.jsonb_build_object('guard', $3::pg_catalog.jsonb) END "
						 "WHERE " AM_SAME_RUN,
						 3, values, nulls, NULL);
}

/*
 * am_run_write_attempt
 *		Count one more try of the run, after w->edata.
 */
static bool
am_run_write_attempt(const AmRunWrite *w)
{
	Datum		values[4];

	values[2] = CStringGetTextDatum(w->edata->message ? w->edata->message : "");
	values[3] = CStringGetTextDatum(unpack_sql_state(w->edata->sqlerrcode));
	return am_run_update(w, "UPDATE asyncmig.migration SET attempts = attempts + 1, "
						 "updated_at = pg_catalog.now(), "
						 "meta = meta || pg_catalog.jsonb_build_object('retried_after', "
						 "  pg_catalog.jsonb_build_object('message', $3, 'sqlstate', $4)) "
						 "WHERE " AM_SAME_RUN,
						 4, values, NULL, NULL);
}

/*
 * am_run_write_finished
 *		IN PROGRESS -> FINISHED.
 */
static bool
am_run_write_finished(const AmRunWrite *w)
{
	Datum		values[2];

	return am_run_update(w, "UPDATE asyncmig.migration SET status = '" AM_STATUS_FINISHED "', "
						 "finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
						 "meta = meta - 'error' - 'guard' - 'cancel_requested' "
						 "WHERE " AM_SAME_RUN " RETURNING name",
						 2, values, NULL, AM_STATUS_FINISHED);
}

/*
 * am_run_write_error
 *		IN PROGRESS -> ERROR, with the error's fields and the statement in
 *		meta->'error' (and w->error_extra merged into it); a guard still
 *		recorded becomes meta->'cleanup'.
 */
static bool
am_run_write_error(const AmRunWrite *w)
{
	ErrorData  *edata = w->edata;
	Datum		values[9];
	char		nulls[9] = "         ";
	const char *fields[4];
	int			i;

	values[2] = CStringGetTextDatum(w->message_override ? w->message_override :
									(edata && edata->message ? edata->message : "unknown error"));
	values[3] = CStringGetTextDatum(edata ?
									unpack_sql_state(edata->sqlerrcode) :
									AM_SQLSTATE_QUERY_CANCELED);
	fields[0] = edata ? edata->detail : NULL;
	fields[1] = edata ? edata->hint : NULL;
	fields[2] = edata ? edata->context : NULL;
	fields[3] = w->statement;
	for (i = 0; i < 4; i++)
	{
		if (fields[i])
			values[4 + i] = CStringGetTextDatum(fields[i]);
		else
			nulls[4 + i] = 'n';
	}
	if (w->error_extra)
		values[8] = CStringGetTextDatum(w->error_extra);
	else
		nulls[8] = 'n';
	return am_run_update(w, "UPDATE asyncmig.migration SET status = '" AM_STATUS_ERROR "', "
						 "finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
						 "meta = (meta - 'guard' - 'cancel_requested') || "
						 "  CASE WHEN meta ? 'guard' THEN pg_catalog.jsonb_build_object('cleanup', "
						 "    pg_catalog.jsonb_build_object('guard', meta -> 'guard', 'tries', 0)) "
						 "  ELSE '{}'::pg_catalog.jsonb END || "
						 "  pg_catalog.jsonb_build_object('error', "
						 "    pg_catalog.jsonb_strip_nulls(" AM_RUN_ERROR_JSON ") || "
						 "    COALESCE($9::pg_catalog.jsonb, '{}'::pg_catalog.jsonb)) "
						 "WHERE " AM_SAME_RUN " RETURNING name",
						 9, values, nulls, AM_STATUS_ERROR);
}

/*
 * am_catalog_write_run
 *		Do write(w) in a transaction of its own.  A lock on the row that a session
 *		holds (a superuser's SELECT ... FOR UPDATE left open, a PREPAREd
 *		transaction) is waited for in bounded tries, with the log saying
 *		who holds it, never in one wait without end; a shutdown request
 *		ends the wait.  Other errors end the worker (the sweep then ends the
 *		row).
 */
static void
am_catalog_write_run(AmRunWriteFn write, const AmRunWrite *w)
{
	MemoryContext mcxt = CurrentMemoryContext;
	int			tries = 0;

	for (;;)
	{
		AmCatalogContext cxt;
		ErrorData  *edata = NULL;
		bool		matched = false;

		PG_TRY();
		{
			am_catalog_begin(&cxt);
			LockTimeout = AM_RUN_WRITE_LOCK_TIMEOUT_MS;
			matched = write(w);
			LockTimeout = 0;
			am_catalog_commit(&cxt);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(mcxt);
			edata = CopyErrorData();
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
				PG_RE_THROW();
			FlushErrorState();
			AbortCurrentTransaction();
			am_session_own_settings_pop(&cxt.save_settings);
			RESUME_CANCEL_INTERRUPTS();
		}
		PG_END_TRY();

		if (edata == NULL)
		{
			if (!matched)
				ereport(LOG,
						(errmsg("asyncmig migration %lld: its row is no longer the run of worker %d; nothing recorded",
								(long long) w->id, w->pid)));
			return;
		}
		if (tries++ % 60 == 0)
			ereport(LOG,
					(errmsg("asyncmig migration %lld: its row is locked by another session; trying again",
							(long long) w->id),
					 errhint("End the transaction that locked it (see pg_locks and pg_prepared_xacts).")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (ProcDiePending)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * am_catalog_worker_set_guard
 *		Record (or with NULL, forget) what the sweep must clean up if the
 *		running statement dies: see executor.c.  Its own transaction.
 */
void
am_catalog_worker_set_guard(int64 id, int pid, const char *guard_json)
{
	AmRunWrite	w = {.id = id, .pid = pid, .guard_json = guard_json};

	am_catalog_write_run(am_run_write_guard, &w);
}

/*
 * am_catalog_worker_count_attempt
 *		Count one more try of a running migration, after edata.  Its own
 *		transaction.
 */
void
am_catalog_worker_count_attempt(int64 id, int pid, ErrorData *edata)
{
	AmRunWrite	w = {.id = id, .pid = pid, .edata = edata};

	am_catalog_write_run(am_run_write_attempt, &w);
}

/*
 * am_catalog_worker_finish
 *		End the run of worker pid: FINISHED when edata is NULL, else ERROR
 *		with the error's fields (message_override replaces its message) and
 *		the statement that failed in meta->'error', and error_extra (a
 *		jsonb object, or NULL) merged into it in the same write, so that
 *		nobody sees the ERROR without it.  Its own transaction.
 *		A guard still recorded (what the failed statement left could not be
 *		undone yet: the drop waited too long) becomes meta->'cleanup', which
 *		the database's workers retry (worker.c) until it is done.
 */
void
am_catalog_worker_finish(int64 id, int pid, ErrorData *edata, const char *statement,
						 const char *message_override, const char *error_extra)
{
	AmRunWrite	w = {.id = id, .pid = pid, .edata = edata, .statement = statement,
		.message_override = message_override, .error_extra = error_extra};

	if (edata == NULL && message_override == NULL)
		am_catalog_write_run(am_run_write_finished, &w);
	else
		am_catalog_write_run(am_run_write_error, &w);
}

/*
 * am_catalog_worker_set_guard_in_xact
 *		Record the guard in the current transaction (a transaction callback
 *		of the executor's, see am_guard_xact_callback()), as the table's
 *		owner, waiting at most a second for the row.
 */
void
am_catalog_worker_set_guard_in_xact(int64 id, int pid, const char *guard_json)
{
	AmRunWrite	w = {.id = id, .pid = pid, .guard_json = guard_json};
	AmCatalogContext cxt;
	int			save_lock_timeout = LockTimeout;

	am_catalog_enter(&cxt);
	LockTimeout = AM_RUN_WRITE_LOCK_TIMEOUT_MS;
	PG_TRY();
	{
		(void) am_run_write_guard(&w);
	}
	PG_FINALLY();
	{
		LockTimeout = save_lock_timeout;
	}
	PG_END_TRY();
	am_catalog_leave(&cxt);
}

/*
 * am_catalog_worker_end_orphan_run
 *		End in ERROR (edata), in the caller's transaction, the run (id,
 *		pid) that no worker runs any more: cancel() of a run whose worker
 *		is gone and that no sweep will end (asyncmig.enabled = off, a copy
 *		of a primary, a server without the preloaded library).  Its guard
 *		becomes the row's cleanup, as in the sweep.  False if the row is
 *		not that run's any more.
 */
bool
am_catalog_worker_end_orphan_run(int64 id, int pid, ErrorData *edata)
{
	AmRunWrite	w = {.id = id, .pid = pid, .edata = edata};

	return am_run_write_error(&w);
}

/*
 * am_catalog_worker_end_dead_run
 *		End in ERROR (edata) the run of a worker that is gone, in a
 *		transaction of its own, without waiting for its row: false if the
 *		row is not that run's any more or a session holds it locked (the
 *		sweep comes back later; it never waits on a user's lock).  Its
 *		guard becomes the row's cleanup (see am_catalog_worker_finish()).
 */
bool
am_catalog_worker_end_dead_run(int64 id, int pid, ErrorData *edata)
{
	AmRunWrite	w = {.id = id, .pid = pid, .edata = edata};
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	AmCatalogContext cxt;
	bool		locked;

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(pid);
	am_catalog_begin(&cxt);
	SPI_connect();
	am_catalog_spi("SELECT 1 FROM asyncmig.migration WHERE " AM_SAME_RUN
				   " FOR UPDATE SKIP LOCKED",
				   2, types, values, NULL, false, SPI_OK_SELECT);
	locked = SPI_processed == 1;
	SPI_finish();
	if (locked)
		(void) am_run_write_error(&w);
	am_catalog_commit(&cxt);
	return locked;
}
