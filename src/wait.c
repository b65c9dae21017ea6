/*-------------------------------------------------------------------------
 *
 * wait.c
 *		The procedures asyncmig.wait() and asyncmig.wait_for(): wait,
 *		across transactions, until migrations have ended.
 *
 * It must not hold a snapshot while it sleeps: CREATE INDEX CONCURRENTLY
 * waits for every transaction with an older snapshot, so a waiting session
 * that kept one would wait for the build that waits for it.  So it is a
 * procedure that commits after each look at the table and sleeps between
 * transactions, woken by the workers when a migration ends.
 *
 * wait() ends in an error when what it waits for ended in ERROR, or at its
 * timeout.  wait_for() is the way to poll: it waits for one migration at
 * most its timeout and returns the status it then has, raising nothing for
 * a migration that is still running or that failed (an application that
 * waits in slices would otherwise write an ERROR in the server log at every
 * slice, and trip every alert on ERROR lines).
 *
 * Neither is bounded by the caller's statement_timeout or lock_timeout:
 * those guard an application's queries (a web site sets a few seconds),
 * while a wait lasts as long as the build it waits for, and has its own
 * timeout argument for that.  Both are set aside for the wait and restored
 * after it (am_wait_timeouts_off()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
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
#include "funcapi.h"
#include "storage/proc.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "catalog.h"
#include "catalog_dependencies.h"
#include "catalog_functions.h"
#include "functions.h"
#include "settings.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(asyncmig_wait);
PG_FUNCTION_INFO_V1(asyncmig_wait_for);

/* what asyncmig.wait() waits for, kept across its transactions */
typedef struct AmWait
{
	const char *proc;			/* "asyncmig.wait()" or "asyncmig.wait_for()" */
	bool		poll;			/* wait_for(): no error, the status back */
	char	   *last_status;	/* poll: the status seen last (NULL: none) */
	bool		statement_timeout_was_on;	/* set aside for the wait */
	int			save_lock_timeout;
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
 *		migration.  proc names it in the errors, call in the hint.
 */
static void
am_wait_check_call(FunctionCallInfo fcinfo, const char *proc, const char *call)
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
				 errmsg("%s cannot be called inside a migration", proc),
				 errdetail("It would wait for the migration that calls it, or for one that cannot start before it ends."),
				 errhint("Order migrations with depends_on instead.")));

	if (fcinfo->context && IsA(fcinfo->context, CallContext))
		atomic = ((CallContext *) fcinfo->context)->atomic;
	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run inside a transaction block", proc),
				 errdetail("It commits while it waits, so that it holds no snapshot that a concurrent index build would wait for."),
				 errhint("Use CALL %s at top level, in autocommit mode.", call)));
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
		w->last_status = pstrdup(am_catalog_status_name(m->status));
		if (w->poll)
		{
			/* even a SCHEDULED one: it is answered, not waited for */
			if (m->status == AM_STARTED || m->status == AM_IN_PROGRESS)
				names = list_make1((char *) name);
		}
		else if (m->status == AM_SCHEDULED)
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
		AmStatus	status;
		bool		found;
		char	   *msg;
		char	   *sqlstate;

		/*
		 * NB: only the status (and an error), in a context emptied at every
		 * look: wait() may look thousands of times at a row whose SQL text
		 * is megabytes long, and must run in constant memory.
		 */
		MemoryContextReset(w->look_cxt);
		MemoryContextSwitchTo(w->look_cxt);
		found = am_catalog_functions_status_of(n, &status, &msg, &sqlstate);
		MemoryContextSwitchTo(w->cxt);
		if (w->poll)
		{
			/* wait_for() looks at one row and only tells its status */
			if (w->last_status)
				pfree(w->last_status);
			w->last_status = found ? pstrdup(am_catalog_status_name(status)) : NULL;
			if (found && (status == AM_STARTED || status == AM_IN_PROGRESS))
				still = lappend(still, n);
			continue;
		}
		if (!found)
			continue;			/* deleted by hand: nothing to wait for */
		if (status == AM_STARTED || status == AM_IN_PROGRESS)
		{
			if (status == AM_STARTED)
				am_wait_tell_blocked(w, n);
			still = lappend(still, n);
			appendStringInfo(&w->pending, "%s\"%s\"",
							 w->pending.len ? ", " : "", n);
		}
		else if (status == AM_ERROR)
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
 *		Sleep until a migration ends (am_shmem_status_broadcast()), a
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
	am_shmem_status_sleep(ms);
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
		am_shmem_status_prepare();

		am_wait_look(w);
		if (w->names == NIL)
			break;
		if (w->timeout_ms >= 0 && GetCurrentTimestamp() >= w->deadline)
		{
			if (w->poll)
				break;			/* the status says it is still going */
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("timed out waiting for asyncmig migration %s",
							w->pending.data),
					 errhint("CALL asyncmig.wait_for(name, timeout) waits without this error and returns the status.")));
		}

		/* end the transaction: no snapshot, no lock while we sleep */
		SPI_commit();
		MemoryContextSwitchTo(w->cxt);
		InvalidateCatalogSnapshot();
		pgstat_report_activity(STATE_RUNNING, w->poll ?
							   "CALL asyncmig.wait_for(...)" : "CALL asyncmig.wait(...)");

		am_wait_sleep(w);
		CHECK_FOR_INTERRUPTS();
	}
	am_shmem_status_done();
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
 * am_wait_timeouts_off
 *		Set aside, for the wait, the caller's statement_timeout and
 *		lock_timeout (see the top of this file).  PostgreSQL arms the
 *		statement timeout when the CALL starts and disarms it when the CALL
 *		ends; internal commits do not touch it.
 */
static void
am_wait_timeouts_off(AmWait *w)
{
	w->statement_timeout_was_on = get_timeout_active(STATEMENT_TIMEOUT);
	if (w->statement_timeout_was_on)
		disable_timeout(STATEMENT_TIMEOUT, false);
	/* its looks wait on no lock but ALTER EXTENSION's or a VACUUM FULL's */
	w->save_lock_timeout = LockTimeout;
	LockTimeout = 0;
}

/*
 * am_wait_timeouts_on
 *		Restore them: the rest of the statement that called the wait (a DO
 *		block, a procedure) has the whole of statement_timeout again, as if
 *		it had started when the wait ended.
 */
static void
am_wait_timeouts_on(AmWait *w)
{
	LockTimeout = w->save_lock_timeout;
	if (w->statement_timeout_was_on && StatementTimeout > 0 &&
		!get_timeout_active(STATEMENT_TIMEOUT))
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
}

/*
 * am_wait_run
 *		The wait of both procedures: name (NULL: every queued or running
 *		migration) in w, set up by the caller (proc, poll, caller,
 *		timeout).  Returns in the caller's memory context; w->cxt is
 *		deleted, except that the failures are raised first (wait()) and
 *		the status is copied out (wait_for(), *status, NULL if none).
 */
static void
am_wait_run(AmWait *w, const char *name_arg, char **status)
{
	MemoryContext old;
	char	   *name = NULL;

	w->cxt = AllocSetContextCreate(TopMemoryContext, "asyncmig wait",
								   ALLOCSET_DEFAULT_SIZES);
	w->look_cxt = AllocSetContextCreate(w->cxt, "asyncmig wait look",
										ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(w->cxt);
	if (name_arg)
		name = pstrdup(name_arg);
	initStringInfo(&w->pending);

	am_wait_timeouts_off(w);
	PG_TRY();
	{
		SPI_connect_ext(SPI_OPT_NONATOMIC);
		w->names = am_wait_targets(w, name);

		/*
		 * wait_for() is called in a loop: a WARNING at every call would
		 * fill the log.  It says it to the caller only.
		 */
		if (w->names != NIL && !am_shmem_preloaded)
			ereport(w->poll ? NOTICE : WARNING,
					(errmsg("asyncmig is not loaded by shared_preload_libraries: nothing will run the migrations waited for"),
					 errhint("Add asyncmig to shared_preload_libraries in postgresql.conf and restart the server.")));
		else if (w->names != NIL && !am_settings_enabled)
			ereport(w->poll ? NOTICE : WARNING,
					(errmsg("asyncmig.enabled is off on this server: nothing will run the migrations waited for"),
					 errdetail("Queued migrations stay STARTED until asyncmig.enabled is turned on; the wait waits for them meanwhile."),
					 errhint("Set asyncmig.enabled = on and reload the configuration, if this server should run migrations, or give the wait a timeout.")));
		am_wait_loop(w);
		SPI_finish();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		LockTimeout = w->save_lock_timeout;
		MemoryContextDelete(w->cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	am_wait_timeouts_on(w);

	MemoryContextSwitchTo(old);
	if (status)
		*status = w->last_status ? pstrdup(w->last_status) : NULL;
	if (w->failed != NIL)
		am_wait_raise_failed(w);
	MemoryContextDelete(w->cxt);
}

/*
 * asyncmig_wait
 *		CALL asyncmig.wait(name, timeout): wait until that migration, or
 *		every migration of this database that is queued or running now, has
 *		ended; raise an error naming those that ended in ERROR, or at the
 *		timeout.  A NOTICE says once what a migration waits for when
 *		nothing will run one of its dependencies (am_wait_tell_blocked()).
 *		What it waits for lives in its own memory context, which outlives
 *		the commits (see the top of this file).
 */
Datum
asyncmig_wait(PG_FUNCTION_ARGS)
{
	AmWait		w;

	am_wait_check_call(fcinfo, "asyncmig.wait()", "asyncmig.wait(...)");
	memset(&w, 0, sizeof(w));
	w.proc = "asyncmig.wait()";
	w.caller = GetUserId();
	am_wait_set_timeout(fcinfo, &w);
	am_wait_run(&w, PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)),
				NULL);
	PG_RETURN_VOID();
}

/*
 * asyncmig_wait_for
 *		CALL asyncmig.wait_for(name, timeout, status): wait at most timeout
 *		(NULL: no limit) until that migration is neither queued nor
 *		running, and return its status then, as the INOUT parameter
 *		status: FINISHED or ERROR when it ended, STARTED or IN PROGRESS
 *		when the timeout came first, SCHEDULED at once (nothing runs it),
 *		NULL if its row was deleted meanwhile.  Neither a timeout nor a
 *		failed migration is an error: this is how an application polls.
 */
Datum
asyncmig_wait_for(PG_FUNCTION_ARGS)
{
	AmWait		w;
	TupleDesc	desc;
	Datum		value;
	bool		isnull;
	char	   *status = NULL;

	am_wait_check_call(fcinfo, "asyncmig.wait_for()", "asyncmig.wait_for(...)");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null"),
				 errhint("CALL asyncmig.wait() waits for every queued and running migration.")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE ||
		desc->natts != 1)
		elog(ERROR, "asyncmig.wait_for() must return one column");
	desc = BlessTupleDesc(desc);

	memset(&w, 0, sizeof(w));
	w.proc = "asyncmig.wait_for()";
	w.poll = true;
	w.caller = GetUserId();
	am_wait_set_timeout(fcinfo, &w);
	am_wait_run(&w, text_to_cstring(PG_GETARG_TEXT_PP(0)), &status);

	isnull = (status == NULL);
	value = isnull ? (Datum) 0 : CStringGetTextDatum(status);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, &value, &isnull)));
}
