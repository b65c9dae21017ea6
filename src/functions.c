/*-------------------------------------------------------------------------
 *
 * functions.c
 *		The SQL-callable functions asyncmig.schedule(), asyncmig.run() and
 *		asyncmig.cancel(); the procedure asyncmig.wait() is in wait.c.
 *
 * They are transactional: they only write asyncmig.migration, and what
 * must happen outside the database (waking the launcher, interrupting a
 * running worker) is done by a transaction callback at commit, so that
 * nothing starts before the caller commits and a rollback leaves nothing.
 *
 * They are not SECURITY DEFINER.  The caller needs EXECUTE (revoked from
 * PUBLIC) but no privilege on the table: the C code writes it as the
 * table's owner (catalog.c), after checking that the caller may act for the
 * migration's owner.  A new migration's owner is the caller's current_user.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/scansup.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "batch_catalog.h"
#include "catalog.h"
#include "catalog_dependencies.h"
#include "catalog_functions.h"
#include "catalog_worker.h"
#include "executor.h"
#include "functions.h"
#include "preflight.h"
#include "registry.h"
#include "settings.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(asyncmig_schedule);
PG_FUNCTION_INFO_V1(asyncmig_run);
PG_FUNCTION_INFO_V1(asyncmig_cancel);
PG_FUNCTION_INFO_V1(asyncmig_note_inserted_rows);

/* a running migration to interrupt when the transaction commits */
typedef struct AmPendingCancel
{
	int64		migration_id;
	int			pid;			/* its worker, from the row's meta */
	int			nest_level;
} AmPendingCancel;

/* what this transaction asks for at commit */
static bool am_wake_at_commit = false;
static bool am_queued_at_commit = false;	/* ... and register the database */
static bool am_broadcast_at_commit = false;
static List *am_cancels_at_commit = NIL;	/* in TopMemoryContext */
static bool am_row_locked = false;	/* a call locked or changed a row */

static void am_xact_callback(XactEvent event, void *arg);
static void am_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);
static void am_forget_pending(void);
static void am_wake_launcher_at_commit(bool queued);
static AmMigration *am_existing(const char *name, Oid caller,
								const char *action, bool lock);
static bool am_run_has_worker(int64 migration_id, int run_pid);
static void am_warn_if_not_preloaded(const char *name, AmStatus status);

/*
 * am_functions_init
 *		Register the transaction callbacks (from _PG_init, in every backend
 *		that loads the module).
 */
void
am_functions_init(void)
{
	RegisterXactCallback(am_xact_callback, NULL);
	RegisterSubXactCallback(am_subxact_callback, NULL);
}

/*
 * am_xact_callback
 *		asyncmig's one commit path (as PostgreSQL's AtEOXact_ApplyLauncher()):
 *		before commit, register the database of queued work; at commit, do
 *		what the committed calls asked for (wake the launcher, cancel runs,
 *		say a status changed); at abort, forget it.  PREPARE TRANSACTION is refused after a call that locked or
 *		changed a row: COMMIT PREPARED runs no callback, so the work would
 *		not start, and a prepared transaction would hold the row lock
 *		(across restarts) that the worker's bookkeeping needs.  Calls that
 *		only looked lock nothing and do not stop PREPARE.
 */
static void
am_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (am_queued_at_commit)
				am_registry_pre_commit();
			break;
		case XACT_EVENT_COMMIT:
			am_registry_end_xact();
			if (am_wake_at_commit)
				am_shmem_request_database(MyDatabaseId, 0);
			foreach(lc, am_cancels_at_commit)
			{
				AmPendingCancel *pc = lfirst(lc);

				am_shmem_cancel_run(MyDatabaseId, pc->migration_id, pc->pid);
			}
			if (am_broadcast_at_commit || am_wake_at_commit)
				am_shmem_status_broadcast();
			am_forget_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			am_registry_end_xact();
			am_forget_pending();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (am_wake_at_commit || am_broadcast_at_commit ||
				am_cancels_at_commit != NIL || am_row_locked)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that called asyncmig functions"),
						 errdetail("COMMIT PREPARED could not start or cancel the migrations.")));
			break;
		default:
			break;
	}
}

/*
 * am_subxact_callback
 *		A rolled-back savepoint takes its cancel requests with it; a
 *		released one hands them to its parent.  (A wake-up of the launcher
 *		that is not needed costs one idle worker start, so it is kept.)
 */
static void
am_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, am_cancels_at_commit)
	{
		AmPendingCancel *pc = lfirst(lc);

		if (pc->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			am_cancels_at_commit = foreach_delete_current(am_cancels_at_commit, lc);
			pfree(pc);
		}
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			pc->nest_level = level - 1;
	}
}

/*
 * am_wake_launcher_at_commit
 *		The one way to wake the launcher for this database when the
 *		transaction commits (as PostgreSQL's ApplyLauncherWakeupAtCommit()),
 *		run by am_xact_callback().  With queued, the transaction queued work
 *		here: the database is registered before the commit
 *		(am_registry_pre_commit()), so that a restart cannot forget it.  (A
 *		rolled-back savepoint keeps both: a needless wake-up costs one idle
 *		worker, which prunes the registration.)
 */
static void
am_wake_launcher_at_commit(bool queued)
{
	am_wake_at_commit = true;
	am_queued_at_commit |= queued;
}

/*
 * am_forget_pending
 *		Clear what this transaction asked for.
 */
static void
am_forget_pending(void)
{
	am_wake_at_commit = false;
	am_queued_at_commit = false;
	am_broadcast_at_commit = false;
	am_row_locked = false;
	list_free_deep(am_cancels_at_commit);
	am_cancels_at_commit = NIL;
}

/*
 * am_run_has_worker
 *		Does a live worker of this database run the run (migration_id,
 *		run_pid)?  A run without a pid has none.
 */
static bool
am_run_has_worker(int64 migration_id, int run_pid)
{
	return run_pid != 0 &&
		am_shmem_run_has_worker(MyDatabaseId, migration_id, run_pid);
}

/*
 * am_functions_text_arg
 *		Argument argno as a C string; NULL is an error naming what.
 */
char *
am_functions_text_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * am_is_blank
 *		Is s empty or only white space?
 */
static bool
am_is_blank(const char *s)
{
	for (; *s; s++)
		if (!scanner_isspace(*s))
			return false;
	return true;
}

/*
 * am_functions_check_name
 *		A migration name is not blank and fits AM_MAX_NAME_LEN.
 */
void
am_functions_check_name(const char *name)
{
	if (am_is_blank(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration name must not be empty")));
	if (strlen(name) > AM_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("migration name is too long"),
				 errdetail("It has %zu bytes; the limit is %d.",
						   strlen(name), AM_MAX_NAME_LEN)));
}

/*
 * am_functions_sql_error_context
 *		Error context while checking a migration's SQL text (arg: an
 *		AmSqlErrorContext).  A position in the error is one in that text,
 *		not in the caller's query: report it as an internal position with
 *		the text as internal query, as SPI does, so that the caret points
 *		at the right place.
 */
void
am_functions_sql_error_context(void *arg)
{
	AmSqlErrorContext *c = (AmSqlErrorContext *) arg;
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(c->sql);
	}
	errcontext("%s", c->context);
}

/*
 * am_functions_check_sql
 *		SQL text is not blank, parses, and holds no statement a migration
 *		cannot run.  Only raw parsing: the objects it names may be created
 *		by its own earlier statements.
 */
void
am_functions_check_sql(const char *sql, const char *what, const char *name)
{
	ErrorContextCallback errcallback;
	AmSqlErrorContext ctx;

	if (am_is_blank(sql))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));

	ctx.context = psprintf("checking the %s of migration \"%s\"", what, name);
	ctx.sql = sql;
	errcallback.callback = am_functions_sql_error_context;
	errcallback.arg = &ctx;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	(void) am_exec_parse_sql(sql, what);
	error_context_stack = errcallback.previous;
}

/*
 * am_functions_check_member
 *		The caller may act on a migration only if it is a member of the
 *		migration's owner (superusers are members of every role).
 */
void
am_functions_check_member(Oid caller, AmMigration *m, const char *action)
{
	if (!is_member_of_role(caller, m->owner))
	{
		char	   *owner = GetUserNameFromId(m->owner, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s migration \"%s\"", action, m->name),
				 owner ?
				 errdetail("Only members of role \"%s\" may %s it.", owner, action) :
				 errdetail("The role that scheduled it no longer exists.")));
	}
}

/*
 * am_existing
 *		The row of that name for an action of caller's, locked if lock (to
 *		change it) or not (for a look): an unknown name and a caller that
 *		may not act for its owner are errors.  Don't lock what you don't
 *		change: a lock held by an idle (or prepared) transaction that only
 *		looked would hold up the worker's bookkeeping of that row.
 */
static AmMigration *
am_existing(const char *name, Oid caller, const char *action, bool lock)
{
	AmMigration *m = lock ? am_catalog_functions_lock(name) : am_catalog_functions_get(name);

	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("migration \"%s\" does not exist", name)));
	if (lock)
		am_row_locked = true;
	am_functions_check_member(caller, m, action);
	return m;
}

/*
 * am_is_requeueable
 *		Does schedule() queue this row again: ERROR, or FINISHED backwards?
 */
static bool
am_is_requeueable(AmMigration *m)
{
	return m->status == AM_ERROR ||
		(m->status == AM_FINISHED && m->direction == AM_BACKWARDS);
}

/*
 * am_is_queued
 *		Is this row SCHEDULED or STARTED (cancel() ends it without a run)?
 */
static bool
am_is_queued(AmMigration *m)
{
	return m->status == AM_SCHEDULED || m->status == AM_STARTED;
}

/*
 * am_warn_if_not_preloaded
 *		Without shared_preload_libraries nothing will run what was queued.
 */
static void
am_warn_if_not_preloaded(const char *name, AmStatus status)
{
	if (!am_shmem_preloaded && status == AM_STARTED)
		ereport(WARNING,
				(errmsg("asyncmig is not loaded by shared_preload_libraries: nothing will run migration \"%s\"",
						name),
				 errdetail("The migration is recorded as %s.", am_catalog_status_name(status)),
				 errhint("Add asyncmig to shared_preload_libraries in postgresql.conf and restart the server.")));
	else if (status == AM_STARTED)
		am_preflight_warn_queued(name);
}

/*
 * asyncmig_schedule
 *		asyncmig.schedule(name, forwards_sql, backwards_sql, execute_immediately,
 *		depends_on, not_before, timeout) returns the migration's status (see
 *		am_functions_record()).
 */
Datum
asyncmig_schedule(PG_FUNCTION_ARGS)
{
	char	   *name = am_functions_text_arg(fcinfo, 0, "migration name");
	AmScheduleArgs a;

	am_functions_schedule_begin(&a, name);
	am_functions_schedule_sql(fcinfo, 1, "forwards SQL", &a);
	am_functions_schedule_options(fcinfo, 3, &a);
	PG_RETURN_TEXT_P(cstring_to_text(am_functions_record(&a, NULL)));
}

/*
 * am_functions_schedule_begin
 *		What schedule() and schedule_batches() check first, before their
 *		arguments: a writable server, a database that serves migrations, a
 *		usable name.  Starts *a with that name.
 */
void
am_functions_schedule_begin(AmScheduleArgs *a, const char *name)
{
	am_preflight_check_writable("schedule");
	am_preflight_check_database("schedule");
	am_functions_check_name(name);
	memset(a, 0, sizeof(*a));
	a->name = name;
}

/*
 * am_functions_schedule_sql
 *		The SQL texts schedule() and schedule_batches() take: argument
 *		first (called what in messages), checked, and the backwards SQL
 *		after it, if not NULL.
 */
void
am_functions_schedule_sql(FunctionCallInfo fcinfo, int first, const char *what,
						  AmScheduleArgs *a)
{
	a->forwards_sql = am_functions_text_arg(fcinfo, first, what);
	am_functions_check_sql(a->forwards_sql, what, a->name);
	if (!PG_ARGISNULL(first + 1))
	{
		a->backwards_sql = text_to_cstring(PG_GETARG_TEXT_PP(first + 1));
		am_functions_check_sql(a->backwards_sql, "backwards SQL", a->name);
	}
}

/*
 * am_functions_schedule_options
 *		The options schedule() and schedule_batches() share, from argument
 *		first on: execute_immediately, depends_on, not_before, timeout; and
 *		who and where: the owner (current_user), the caller's search_path,
 *		the mode.
 */
void
am_functions_schedule_options(FunctionCallInfo fcinfo, int first,
							  AmScheduleArgs *a)
{
	bool		execute_immediately = PG_ARGISNULL(first) ? false : PG_GETARG_BOOL(first);

	a->depends_on_null = PG_ARGISNULL(first + 1);
	if (!a->depends_on_null)
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(first + 1);

		if (array_contains_nulls(arr))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("depends_on must not contain nulls")));
		a->depends_on = PointerGetDatum(arr);
	}
	a->not_before_null = PG_ARGISNULL(first + 2);
	if (!a->not_before_null)
	{
		/*
		 * Times are computed from it (the dependency timeout's deadline, in
		 * the worker and the status view): a finite time so far ahead that
		 * they overflow is refused; 'infinity' (never) stays as it is.
		 */
		a->not_before = PG_GETARG_DATUM(first + 2);
		if (!TIMESTAMP_IS_NOEND(DatumGetTimestampTz(a->not_before)) &&
			DatumGetTimestampTz(a->not_before) >
			DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													IntervalPGetDatum(am_exec_max_interval()))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("not_before must be within %d years, or infinity", AM_EXEC_MAX_INTERVAL_YEARS),
					 errhint("To hold a migration until someone runs it, schedule it with asyncmig.allow_scheduled_migrations on, then asyncmig.run() it.")));
	}
	a->timeout_null = PG_ARGISNULL(first + 3);
	if (!a->timeout_null)
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(first + 3);
		Interval	one_ms;

		memset(&one_ms, 0, sizeof(one_ms));
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
											  IntervalPGetDatum(&one_ms))) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("timeout must be positive")));
		/* the worker's timer counts milliseconds: less would be ignored */
		one_ms.time = 1000;
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
											  IntervalPGetDatum(&one_ms))) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("timeout must be at least 1 millisecond")));
		a->timeout = IntervalPGetDatum(iv);
	}
	a->owner = GetUserId();
	a->search_path = pstrdup(GetConfigOption("search_path", false, false));
	a->status = (am_settings_allow_scheduled && !execute_immediately) ?
		AM_SCHEDULED : AM_STARTED;
}

/*
 * am_functions_record
 *		Record a checked schedule() call, or with batch a schedule_batches()
 *		call, and return the migration's status.
 *
 * New name: a row, STARTED (queued) or, in scheduled mode, SCHEDULED.  An
 * existing SCHEDULED, STARTED, IN PROGRESS or FINISHED forwards row is
 * returned unchanged; an ERROR row or one whose last run was backwards is
 * queued again with the SQL given now (a batched one keeps its progress
 * and resumes; plain SQL makes it a plain migration again).  Concurrent
 * calls with one name: the unique index makes the second INSERT wait for
 * the first transaction, then see its row.
 */
char *
am_functions_record(AmScheduleArgs *a, const AmBatchArgs *batch)
{
	const char *name = a->name;
	AmStatus	status;
	AmCatalogContext cxt;
	bool		queued = false;

	am_catalog_enter(&cxt);
	if (!a->depends_on_null && am_catalog_functions_depends_cycle(cxt.relid, name, a->depends_on))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dependencies of migration \"%s\" form a cycle", name),
				 errdetail("Following depends_on from it leads back to it.")));

	if (am_catalog_functions_insert(a))
	{
		status = a->status;
		am_row_locked = true;
		if (batch)
			am_batch_catalog_set_spec(name, batch);
		am_catalog_notify(name, am_catalog_status_name(status));
		queued = true;
	}
	else
	{
		/* look first; lock only a row that is to be queued again */
		AmMigration *m = am_catalog_functions_get(name);

		if (m != NULL)
			am_functions_check_member(a->owner, m, "schedule");
		if (m != NULL && am_is_requeueable(m))
		{
			m = am_catalog_functions_lock(name);
			am_row_locked = true;
		}
		if (m == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("migration \"%s\" was deleted while it was being scheduled", name)));
		/* a row of another role is not even shown to the caller */
		am_functions_check_member(a->owner, m, "schedule");
		if (am_is_requeueable(m))
		{
			am_catalog_functions_requeue_forwards(m->id, a);
			if (batch)
				am_batch_catalog_set_spec(name, batch);
			else
				am_batch_catalog_clear_spec(name);
			am_catalog_notify(name, am_catalog_status_name(a->status));
			status = a->status;
			queued = true;
		}
		else
			status = m->status;
	}
	am_catalog_leave(&cxt);

	if (queued)
	{
		am_wake_launcher_at_commit(true);
		am_warn_if_not_preloaded(name, status);
	}
	return pstrdup(am_catalog_status_name(status));
}

/*
 * asyncmig_run
 *		asyncmig.run(name, backwards, restart) queues a run of a SCHEDULED,
 *		ERROR or FINISHED migration and returns STARTED.  A forwards run of
 *		a batched migration resumes after its last batch done, unless
 *		restart asks to start at its first key again.
 */
Datum
asyncmig_run(PG_FUNCTION_ARGS)
{
	char	   *name = am_functions_text_arg(fcinfo, 0, "migration name");
	bool		backwards = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	/* restart came with asyncmig 1.1: the 1.0 declaration passes two */
	bool		restart = PG_NARGS() > 2 && !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	Oid			caller = GetUserId();
	AmCatalogContext cxt;
	AmMigration *m;

	am_preflight_check_writable("run");
	am_preflight_check_database("run");
	am_catalog_enter(&cxt);
	m = am_existing(name, caller, "run", true);
	if (m->status == AM_STARTED || m->status == AM_IN_PROGRESS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("migration \"%s\" is already %s", name,
						am_catalog_status_name(m->status)),
				 errhint("Wait for it with CALL asyncmig.wait(), or stop it with asyncmig.cancel().")));
	if (backwards && m->backwards_sql == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" has no backwards SQL", name)));
	if (restart && (backwards || !am_batch_catalog_is_batched(name)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("restart applies to forwards runs of batched migrations"),
				 errdetail("Migration \"%s\" is %s.", name,
						   backwards ? "to run backwards, as a plain migration" :
						   "not batched: every run starts at its first statement")));
	am_catalog_functions_queue_run(m->id, backwards);
	if (restart)
		am_batch_catalog_forget_progress(m->id);
	am_catalog_notify(name, AM_STATUS_STARTED);
	am_catalog_leave(&cxt);

	am_wake_launcher_at_commit(true);
	am_warn_if_not_preloaded(name, AM_STARTED);
	PG_RETURN_TEXT_P(cstring_to_text(AM_STATUS_STARTED));
}

/*
 * asyncmig_cancel
 *		asyncmig.cancel(name): a SCHEDULED or STARTED migration ends ERROR
 *		without running; a running one is interrupted when the caller
 *		commits and ends ERROR ("canceled"), its INVALID index dropped.
 *		Returns the status after the call: ERROR, or IN PROGRESS for a
 *		running one until its worker has stopped.  Ended ones are left.
 */
Datum
asyncmig_cancel(PG_FUNCTION_ARGS)
{
	char	   *name = am_functions_text_arg(fcinfo, 0, "migration name");
	Oid			caller = GetUserId();
	AmCatalogContext cxt;
	AmMigration *m;
	AmStatus	status;

	am_preflight_check_writable("cancel");
	am_catalog_enter(&cxt);
	/* an ended row is only looked at: no lock */
	m = am_existing(name, caller, "cancel", false);
	if (am_is_queued(m))
		m = am_existing(name, caller, "cancel", true);
	status = m->status;
	if (am_is_queued(m))
	{
		bool		skipped;

		am_catalog_functions_cancel_queued(m->id);
		am_catalog_notify(name, AM_STATUS_ERROR);
		/* what depends on it can never run: it ends now, in this transaction */
		(void) am_catalog_fail_broken_dependencies(&skipped);
		am_broadcast_at_commit = true;
		if (skipped)
			am_wake_launcher_at_commit(false);	/* a worker comes back for them */
		status = AM_ERROR;
	}
	else if (m->status == AM_IN_PROGRESS &&
			 !am_run_has_worker(m->id, m->pid))
	{
		/*
		 * Nobody runs it (its worker is gone) and nothing may come to end
		 * it: asyncmig.enabled = off, a copy, no preloaded library.  It
		 * ends now, as the sweep would end it.
		 */
		m = am_existing(name, caller, "cancel", true);
		status = m->status;
		if (m->status == AM_IN_PROGRESS && !am_run_has_worker(m->id, m->pid))
		{
			ErrorData  *edata = palloc0(sizeof(ErrorData));
			bool		skipped;

			edata->sqlerrcode = ERRCODE_QUERY_CANCELED;
			edata->message = pstrdup("canceled");
			edata->detail = psprintf("Its worker (pid %d) was gone; no worker ran it any more.",
									 m->pid);
			if (am_catalog_worker_end_orphan_run(m->id, m->pid, edata))
			{
				(void) am_catalog_fail_broken_dependencies(&skipped);
				am_broadcast_at_commit = true;
				am_wake_launcher_at_commit(false);	/* its cleanup, its dependents */
				status = AM_ERROR;
			}
		}
	}
	else if (m->status == AM_IN_PROGRESS)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		AmPendingCancel *pc = palloc(sizeof(AmPendingCancel));

		pc->migration_id = m->id;
		pc->pid = m->pid;
		pc->nest_level = GetCurrentTransactionNestLevel();
		am_cancels_at_commit = lappend(am_cancels_at_commit, pc);
		MemoryContextSwitchTo(old);

		/*
		 * Nothing is written to the row: the request reaches the worker
		 * through shared memory at commit, and a row lock held by this
		 * transaction until then would hold up the worker's bookkeeping.
		 */
	}
	am_catalog_leave(&cxt);
	PG_RETURN_TEXT_P(cstring_to_text(am_catalog_status_name(status)));
}

/*
 * asyncmig_note_inserted_rows
 *		Row trigger after INSERT on asyncmig.migration: rows that did not
 *		come from schedule() (pg_restore's COPY of the history) may be
 *		queued runs, restored from elsewhere.  Register the database and
 *		wake the launcher at commit, as schedule() does, so that a worker
 *		ends them (they never run on their own) without a scan of every
 *		database.
 */
Datum
asyncmig_note_inserted_rows(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("asyncmig.note_inserted_rows() must be called as a trigger")));
	am_wake_launcher_at_commit(true);
	return PointerGetDatum(NULL);
}
