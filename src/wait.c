/*-------------------------------------------------------------------------
 *
 * wait.c
 *		The procedure asyncmig.wait(): wait, across transactions, until
 *		migrations have ended.
 *
 * It must not hold a snapshot while it sleeps: CREATE INDEX CONCURRENTLY
 * waits for every transaction with an older snapshot, so a waiting session
 * that kept one would wait for the build that waits for it.  So it is a
 * procedure that commits after each look at the table and sleeps between
 * transactions, woken by the workers when a migration ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "catalog.h"
#include "catalog_dependencies.h"
#include "catalog_functions.h"
#include "functions.h"
#include "settings.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(asyncmig_wait);

/* what asyncmig.wait() waits for, kept across its transactions */
typedef struct AmWait
{
	MemoryContext cxt;			/* holds all of this; outlives commits */
	MemoryContext look_cxt;		/* one look at one row, emptied each time */
	Oid			caller;
	int64		timeout_ms;		/* -1: no timeout */
	TimestampTz deadline;
	List	   *names;			/* still queued or running */
	StringInfoData pending;		/* the same, quoted, for a timeout error */
	List	   *failed;			/* messages of those that ended in ERROR */
	char	   *first_sqlstate; /* of the first of them */
	List	   *told;			/* names said to wait for an idle dependency */
} AmWait;

/*
 * am_wait_check_call
 *		wait() commits while it waits, so it must be CALLed at top level,
 *		not inside a transaction block or a function, and not by a
 *		migration.
 */
static void
am_wait_check_call(FunctionCallInfo fcinfo)
{
	bool		atomic = true;

	/*
	 * In a worker it would wait for the migration that calls it, or for a
	 * migration of its own database, which cannot run while it does.
	 */
	if (MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_type, "asyncmig worker") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("asyncmig.wait() cannot be called inside a migration"),
				 errdetail("It would wait for the migration that calls it, or for one that cannot start before it ends."),
				 errhint("Order migrations with depends_on instead.")));

	if (fcinfo->context && IsA(fcinfo->context, CallContext))
		atomic = ((CallContext *) fcinfo->context)->atomic;
	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("asyncmig.wait() cannot run inside a transaction block"),
				 errdetail("It commits while it waits, so that it holds no snapshot that a concurrent index build would wait for."),
				 errhint("Use CALL asyncmig.wait(...) at top level, in autocommit mode.")));
}

/*
 * am_wait_set_timeout
 *		The timeout argument as milliseconds and a deadline; NULL: none.
 */
static void
am_wait_set_timeout(FunctionCallInfo fcinfo, AmWait *w)
{
	Interval   *iv;
	float8		secs;
	TimestampTz now;

	w->timeout_ms = -1;
	w->deadline = 0;
	if (PG_ARGISNULL(1))
		return;
	iv = PG_GETARG_INTERVAL_P(1);
	secs = DatumGetFloat8(DirectFunctionCall2(interval_part,
											  CStringGetTextDatum("epoch"),
											  IntervalPGetDatum(iv)));
	if (secs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	/* a deadline past the end of time is none ('300000 years' must wait) */
	now = GetCurrentTimestamp();
	if (secs * 1000.0 >= (double) ((DT_NOEND - now) / 1000))
	{
		w->timeout_ms = PG_INT64_MAX / 1000;
		w->deadline = DT_NOEND;
		return;
	}
	w->timeout_ms = (int64) (secs * 1000.0);
	w->deadline = TimestampTzPlusMilliseconds(now, w->timeout_ms);
}

/*
 * am_wait_targets
 *		The names to wait for: the one named (which the caller must be
 *		allowed to act for), or every queued or running migration of this
 *		database the caller is a member of the owner of.  A SCHEDULED one
 *		is not waited for: nothing would run it.
 */
static List *
am_wait_targets(AmWait *w, const char *name)
{
	AmCatalogContext cxt;
	List	   *names = NIL;

	PushActiveSnapshot(GetTransactionSnapshot());
	am_catalog_enter(&cxt);
	MemoryContextSwitchTo(w->cxt);
	if (name)
	{
		AmMigration *m = am_catalog_functions_get(name);

		if (m == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("migration \"%s\" does not exist", name)));
		am_functions_check_member(w->caller, m, "wait for");
		if (strcmp(m->status, AM_STATUS_SCHEDULED) == 0)
			ereport(NOTICE,
					(errmsg("migration \"%s\" is " AM_STATUS_SCHEDULED ": nothing runs it until asyncmig.run() is called",
							name)));
		else
			names = list_make1((char *) name);
	}
	else
		names = am_catalog_functions_names_in(AM_STATUS_STARTED, AM_STATUS_IN_PROGRESS,
									w->caller);
	am_catalog_leave(&cxt);
	PopActiveSnapshot();
	return names;
}

/*
 * am_wait_tell_blocked
 *		Say once (a NOTICE) what a queued migration waits for when nothing
 *		will run one of its dependencies (never scheduled, SCHEDULED,
 *		reverted): a wait that would otherwise look like a hang, until
 *		asyncmig.dependency_timeout ends it.  Dependencies that are queued
 *		or running end by themselves and are not told.
 */
static void
am_wait_tell_blocked(AmWait *w, char *name)
{
	char	   *what;
	MemoryContext old;

	if (list_member_ptr(w->told, name))
		return;
	old = MemoryContextSwitchTo(w->look_cxt);
	what = am_catalog_dependencies_waiting_for(name);
	if (what)
		ereport(NOTICE,
				(errmsg("migration \"%s\" is %s", name, what),
				 errhint("Schedule the dependency (or asyncmig.run() it, if it is " AM_STATUS_SCHEDULED "), "
						 "or asyncmig.cancel() this migration.")));
	MemoryContextSwitchTo(w->cxt);
	if (what)
		w->told = lappend(w->told, name);
	MemoryContextSwitchTo(old);
}

/*
 * am_wait_look
 *		One look at the table, in one snapshot: keep in w->names those still
 *		queued or running, remember those that ended in ERROR, forget the
 *		others (ended well, or deleted by hand).
 */
static void
am_wait_look(AmWait *w)
{
	AmCatalogContext cxt;
	List	   *still = NIL;
	ListCell   *lc;

	PushActiveSnapshot(GetTransactionSnapshot());
	am_catalog_enter(&cxt);
	MemoryContextSwitchTo(w->cxt);
	resetStringInfo(&w->pending);
	foreach(lc, w->names)
	{
		char	   *n = lfirst(lc);
		char	   *status;
		char	   *msg;
		char	   *sqlstate;

		/*
		 * NB: only the status (and an error), in a context emptied at every
		 * look: wait() may look thousands of times at a row whose SQL text
		 * is megabytes long, and must run in constant memory.
		 */
		MemoryContextReset(w->look_cxt);
		MemoryContextSwitchTo(w->look_cxt);
		status = am_catalog_functions_status_of(n, &msg, &sqlstate);
		MemoryContextSwitchTo(w->cxt);
		if (status == NULL)
			continue;			/* deleted by hand: nothing to wait for */
		if (strcmp(status, AM_STATUS_STARTED) == 0 ||
			strcmp(status, AM_STATUS_IN_PROGRESS) == 0)
		{
			if (strcmp(status, AM_STATUS_STARTED) == 0)
				am_wait_tell_blocked(w, n);
			still = lappend(still, n);
			appendStringInfo(&w->pending, "%s\"%s\"",
							 w->pending.len ? ", " : "", n);
		}
		else if (strcmp(status, AM_STATUS_ERROR) == 0)
		{
			w->failed = lappend(w->failed,
								psprintf("\"%s\" ended in " AM_STATUS_ERROR ": %s", n,
										 msg ? msg : "unknown error"));
			if (w->first_sqlstate == NULL && sqlstate)
				w->first_sqlstate = pstrdup(sqlstate);
		}
	}
	am_catalog_leave(&cxt);
	PopActiveSnapshot();
	list_free(w->names);
	w->names = still;
	MemoryContextReset(w->look_cxt);
}

/*
 * am_wait_sleep
 *		Sleep until a migration ends (the workers broadcast status_cv), a
 *		second passes or the deadline comes.  Without shared memory
 *		(asyncmig not preloaded) nobody broadcasts: poll every second.
 */
static void
am_wait_sleep(AmWait *w)
{
	long		ms = 1000;

	if (w->timeout_ms >= 0)
		ms = Min(ms, Max(1, TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
															w->deadline)));
	if (am_shmem_state)
		(void) ConditionVariableTimedSleep(&am_shmem_state->status_cv, ms,
										   PG_WAIT_EXTENSION);
	else
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * am_wait_loop
 *		Look, commit, sleep, until nothing waited for is queued or running;
 *		an error at the deadline.  The caller is connected to SPI
 *		(non-atomic) and holds the first names in w->names.
 */
static void
am_wait_loop(AmWait *w)
{
	for (;;)
	{
		if (am_shmem_state)
			ConditionVariablePrepareToSleep(&am_shmem_state->status_cv);

		am_wait_look(w);
		if (w->names == NIL)
			break;
		if (w->timeout_ms >= 0 && GetCurrentTimestamp() >= w->deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("timed out waiting for asyncmig migration %s",
							w->pending.data)));

		/* end the transaction: no snapshot, no lock while we sleep */
		SPI_commit();
		MemoryContextSwitchTo(w->cxt);
		InvalidateCatalogSnapshot();
		pgstat_report_activity(STATE_RUNNING, "CALL asyncmig.wait(...)");

		am_wait_sleep(w);
		CHECK_FOR_INTERRUPTS();
	}
	if (am_shmem_state)
		ConditionVariableCancelSleep();
}

/*
 * am_wait_raise_failed
 *		Raise one error naming every migration waited for that ended in
 *		ERROR, with the SQLSTATE of the first; frees w->cxt first.
 */
static void
am_wait_raise_failed(AmWait *w)
{
	StringInfoData buf;
	int			code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, w->failed)
		appendStringInfo(&buf, "%s%s", buf.len ? "; " : "", (char *) lfirst(lc));
	if (w->first_sqlstate && strlen(w->first_sqlstate) == 5)
		code = MAKE_SQLSTATE(w->first_sqlstate[0], w->first_sqlstate[1],
							 w->first_sqlstate[2], w->first_sqlstate[3],
							 w->first_sqlstate[4]);
	MemoryContextDelete(w->cxt);
	ereport(ERROR,
			(errcode(code),
			 errmsg("asyncmig migration %s", buf.data),
			 errhint("SELECT * FROM asyncmig.status shows the errors; asyncmig.run() runs a migration again.")));
}

/*
 * asyncmig_wait
 *		CALL asyncmig.wait(name, timeout): wait until that migration, or
 *		every migration of this database that is queued or running now, has
 *		ended; raise an error naming those that ended in ERROR.  A NOTICE
 *		says once what a migration waits for when nothing will run one of
 *		its dependencies (am_wait_tell_blocked()).  What it
 *		waits for lives in its own memory context, which outlives the
 *		commits (see the top of this file).
 */
Datum
asyncmig_wait(PG_FUNCTION_ARGS)
{
	AmWait		w;
	char	   *name = NULL;
	MemoryContext old;

	am_wait_check_call(fcinfo);
	memset(&w, 0, sizeof(w));
	w.caller = GetUserId();
	am_wait_set_timeout(fcinfo, &w);

	w.cxt = AllocSetContextCreate(TopMemoryContext, "asyncmig wait",
								  ALLOCSET_DEFAULT_SIZES);
	w.look_cxt = AllocSetContextCreate(w.cxt, "asyncmig wait look",
									   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(w.cxt);
	if (!PG_ARGISNULL(0))
		name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	initStringInfo(&w.pending);

	PG_TRY();
	{
		SPI_connect_ext(SPI_OPT_NONATOMIC);
		w.names = am_wait_targets(&w, name);
		if (w.names != NIL && !am_shmem_preloaded)
			ereport(WARNING,
					(errmsg("asyncmig is not loaded by shared_preload_libraries: nothing will run the migrations waited for"),
					 errhint("Add asyncmig to shared_preload_libraries in postgresql.conf and restart the server.")));
		else if (w.names != NIL && !am_settings_enabled)
			ereport(WARNING,
					(errmsg("asyncmig.enabled is off on this server: nothing will run the migrations waited for"),
					 errdetail("Queued migrations stay STARTED until asyncmig.enabled is turned on; wait() waits for them meanwhile."),
					 errhint("Set asyncmig.enabled = on and reload the configuration, if this server should run migrations, or give wait() a timeout.")));
		am_wait_loop(&w);
		SPI_finish();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(w.cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	MemoryContextSwitchTo(old);
	if (w.failed != NIL)
		am_wait_raise_failed(&w);
	MemoryContextDelete(w.cxt);
	PG_RETURN_VOID();
}
