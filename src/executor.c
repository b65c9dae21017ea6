/*-------------------------------------------------------------------------
 *
 * executor.c
 *		Runs a migration's SQL text the way "psql -f" runs a file in
 *		autocommit mode: each statement a top-level command in its own
 *		transaction, in order, stopping at the first error.
 *
 * A statement is run as exec_simple_query() in src/backend/tcop/postgres.c
 * runs one: start a transaction, parse analysis and rewrite, planning, an
 * unnamed portal run with isTopLevel = true, commit.  That is what lets
 * CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM and ALTER TYPE
 * ... ADD VALUE run at all: they refuse to run inside SPI or inside a
 * transaction block, and the first two commit internally.  SET lasts for
 * the rest of the migration, as in a session.
 *
 * Concurrent index builds are guarded.  A failed or interrupted one leaves
 * an INVALID index (and REINDEX CONCURRENTLY leaves _ccnew and _ccold
 * indexes).  Before such a statement runs, the worker records in the row's
 * meta->'guard' which table it works on and which indexes existed; when the
 * statement fails the worker drops, with DROP INDEX CONCURRENTLY, the
 * INVALID indexes the statement left, and if the worker dies the next
 * worker of the database does it from meta->'guard'.  An INVALID index of
 * the same name found before CREATE INDEX CONCURRENTLY IF NOT EXISTS is
 * dropped first, so that the build is not silently skipped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/scansup.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "catalog.h"
#include "compat.h"
#include "catalog_worker.h"
#include "executor.h"
#include "guard.h"
#include "session.h"
#include "settings.h"
#include "shmem.h"

/* the guarded statement that runs now, for am_guard_xact_callback() */
static struct
{
	AmGuard    *guard;
	int64		id;
	int			pid;
	bool		recorded;		/* its created index is in the row */
}			am_running;

static void am_guard_xact_callback(XactEvent event, void *arg);

/* tries of a cleanup statement that hit a deadlock or a lock timeout */
#define AM_CLEANUP_TRIES		5

static MemoryContext am_statement_context = NULL;

/* set by the migration's timeout, read between and after statements */
static volatile sig_atomic_t am_timed_out = false;
static TimeoutId am_timeout_id;

static void am_timeout_handler(void);
static void am_run_statement(RawStmt *raw, const char *sql,
							 const char *stmt_text);
static void am_run_text(const char *text, int lock_timeout_ms);
static AmGuard *am_prepare_guard(AmMigration *m, Node *stmt);
static char *am_statement_text(RawStmt *raw, const char *sql);
static void am_exec_backoff(int attempt);

/*
 * am_exec_parse_sql
 *		Split SQL text into raw statements with PostgreSQL's own parser, and
 *		check each with am_exec_check_statement().  Errors name what (e.g.
 *		"forwards SQL") in their context.  An empty list is an error.
 */
List *
am_exec_parse_sql(const char *sql, const char *what)
{
	List	   *stmts;
	ListCell   *lc;

	/*
	 * NB: what is checked must be what runs.  With standard_conforming_strings
	 * off, 'x\' ... ' is one literal that swallows what follows, and a text
	 * checked that way is split differently by a worker, which always parses
	 * with it on (am_session_set()).  Refuse the old mode rather than carry
	 * it into the worker: every driver in use sets it on.
	 */
	if (!standard_conforming_strings)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot be checked with standard_conforming_strings = off", what),
				 errdetail("asyncmig runs SQL texts parsed with standard_conforming_strings = on; "
						   "with it off, backslashes in string literals would split the text differently."),
				 errhint("SET standard_conforming_strings = on before the call.")));

	stmts = pg_parse_query(sql);
	if (stmts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s contains no statement", what),
				 errdetail("It is empty or holds only comments.")));
	foreach(lc, stmts)
		am_exec_check_statement(lfirst_node(RawStmt, lc), sql, what);
	return stmts;
}

/*
 * am_exec_check_statement
 *		Refuse statements that cannot run in a migration: transaction
 *		control (each statement already has its own transaction) and COPY
 *		from or to the client (a worker has no client).
 */
void
am_exec_check_statement(RawStmt *raw, const char *sql, const char *what)
{
	Node	   *stmt = raw->stmt;

	if (IsA(stmt, TransactionStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("%s must not contain transaction control statements",
						what),
				 errdetail("Statement: %s", am_statement_text(raw, sql)),
				 errhint("asyncmig runs each statement in its own transaction, "
						 "as psql does in autocommit mode.")));
	if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->filename == NULL &&
		!((CopyStmt *) stmt)->is_program)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must not contain COPY FROM STDIN or COPY TO STDOUT",
						what),
				 errdetail("A migration runs in a background worker, which has no client.")));
}

/*
 * am_statement_text
 *		The text of one raw statement of sql.
 */
static char *
am_statement_text(RawStmt *raw, const char *sql)
{
	int			loc = raw->stmt_location > 0 ? raw->stmt_location : 0;
	int			len = raw->stmt_len > 0 ? raw->stmt_len : (int) strlen(sql + loc);

	/* the parser counts the white space after the previous semicolon */
	while (len > 0 && scanner_isspace(sql[loc]))
	{
		loc++;
		len--;
	}
	return pnstrdup(sql + loc, len);
}

/*
 * am_exec_init
 *		Per-worker set-up: the memory context that holds a statement's parse
 *		and plan trees across the commits a CONCURRENTLY command does, and
 *		the migration's timeout.
 */
void
am_exec_init(void)
{
	am_statement_context = AllocSetContextCreate(TopMemoryContext,
												 "asyncmig statement",
												 ALLOCSET_DEFAULT_SIZES);
	am_timeout_id = RegisterTimeout(USER_TIMEOUT, am_timeout_handler);
	am_guard_init();
	RegisterXactCallback(am_guard_xact_callback, NULL);
}

/*
 * am_guard_xact_callback
 *		When the first transaction of a guarded CREATE INDEX CONCURRENTLY
 *		commits, the index it created is recorded in the row's guard, in
 *		that same transaction: the index and the record of it are committed
 *		together, so that even after a crash the sweep drops exactly that
 *		index (see guard.c).  An error here (the row locked for more than a
 *		second) fails the build before it built anything.
 */
static void
am_guard_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_PRE_COMMIT || am_running.guard == NULL ||
		am_running.recorded || !OidIsValid(am_running.guard->created))
		return;
	am_running.recorded = true;

	/*
	 * NB: DefineIndex() has popped the portal's snapshot before this commit,
	 * as it must: the build waits later for every older snapshot.  Without
	 * one of our own, SPI would push a new portal snapshot
	 * (EnsurePortalSnapshotExists()) that nothing pops before the commit:
	 * "WARNING: snapshot ... still active" at every build.  So push one for
	 * the write and pop it, leaving the stack as DefineIndex() left it.
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	am_catalog_worker_set_guard_in_xact(am_running.id, am_running.pid,
								 am_guard_to_json(am_running.guard));
	PopActiveSnapshot();
}

/*
 * am_timeout_handler
 *		The migration's own timeout: cancel what runs, like a
 *		statement_timeout that spans the whole migration.  am_exec_run()
 *		then tells the timeout from a cancel by am_timed_out.
 */
static void
am_timeout_handler(void)
{
	am_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/*
 * am_exec_start_timeout
 *		Arm the migration's timeout (0: none) before am_exec_run().
 */
void
am_exec_start_timeout(int64 timeout_ms)
{
	TimestampTz now = GetCurrentTimestamp();

	/*
	 * By its end time, not by a delay: enable_timeout_after() takes an int
	 * of milliseconds, and '30 days' would fire after 24.8 days.  A timeout
	 * past the end of what a timestamp holds never fires.
	 */
	if (timeout_ms > 0 && timeout_ms < (DT_NOEND - now) / 1000)
		enable_timeout_at(am_timeout_id, TimestampTzPlusMilliseconds(now, timeout_ms));
}

/*
 * am_exec_stop_timeout
 *		Disarm it once the run is decided.
 */
void
am_exec_stop_timeout(void)
{
	disable_timeout(am_timeout_id, false);
}

/*
 * am_run_statement
 *		Run one raw statement as a top-level command in its own transaction,
 *		as exec_simple_query() does.  Parse and plan trees live in
 *		am_statement_context, which survives the internal commits of
 *		CONCURRENTLY commands.  Errors propagate to the caller.
 */
static void
am_run_statement(RawStmt *raw, const char *sql, const char *stmt_text)
{
	CommandTag	commandTag;
	List	   *querytree_list;
	List	   *plantree_list;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	bool		snapshot_set = false;
	MemoryContext oldcontext;

	pgstat_report_activity(STATE_RUNNING, stmt_text);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);

	oldcontext = MemoryContextSwitchTo(am_statement_context);

	/* parse analysis may scribble on its input: a retry needs the original */
	raw = copyObject(raw);
	commandTag = CreateCommandTag(raw->stmt);
	set_ps_display(GetCommandTagName(commandTag));

	if (analyze_requires_snapshot(raw))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot_set = true;
	}
	querytree_list = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
	plantree_list = pg_plan_queries(querytree_list, sql,
									CURSOR_OPT_PARALLEL_OK, NULL);
	if (snapshot_set)
		PopActiveSnapshot();

	CHECK_FOR_INTERRUPTS();

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, commandTag, plantree_list, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);

	receiver = CreateDestReceiver(DestNone);
	MemoryContextSwitchTo(oldcontext);
	(void) am_compat_portal_run(portal, FETCH_ALL, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);

	if (StatementTimeout > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);

	CommitTransactionCommand();
	MemoryContextReset(am_statement_context);

	set_ps_display("idle");
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * am_run_text
 *		Run a statement we wrote ourselves (a DROP INDEX CONCURRENTLY), its
 *		waits for locks bounded by lock_timeout_ms (0: unbounded).
 */
static void
am_run_text(const char *text, int lock_timeout_ms)
{
	List	   *stmts = pg_parse_query(text);
	AmOwnSettings saved;

	/* not steered by what the migration SET (lock_timeout, read only ...) */
	am_session_own_settings_push(&saved);
	LockTimeout = lock_timeout_ms;
	PG_TRY();
	{
		am_run_statement(linitial_node(RawStmt, stmts), text, text);
	}
	PG_FINALLY();
	{
		am_session_own_settings_pop(&saved);
	}
	PG_END_TRY();
}

/*
 * am_exec_recover_from_error
 *		After an error was caught and copied: what PostgresMain() does to
 *		get back to idle, short of telling a client.
 */
void
am_exec_recover_from_error(void)
{
	HOLD_INTERRUPTS();
	disable_timeout(STATEMENT_TIMEOUT, false);
	QueryCancelPending = false;
	AbortCurrentTransaction();
	PortalErrorCleanup();
	MemoryContextReset(am_statement_context);
	set_ps_display("idle");
	pgstat_report_activity(STATE_IDLE, NULL);
	RESUME_INTERRUPTS();
}

/*
 * am_exec_catch
 *		In a PG_CATCH block: copy the error into cxt (and log it, if
 *		report), then recover as am_exec_recover_from_error() does.  The
 *		one way every caught error of a run, a batch or a cleanup is taken.
 */
ErrorData *
am_exec_catch(MemoryContext cxt, bool report)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (report)
		EmitErrorReport();
	FlushErrorState();
	am_exec_recover_from_error();
	return edata;
}

/*
 * The one retry and interruption policy of a run, shared by its statements
 * (am_exec_run()) and its batches (batch_run.c), as autoprewarm's
 * apw_dump_now() is shared by its worker and its SQL function: a run is
 * interrupted by its timeout or a cancel (am_exec_interrupted()), between
 * two units (am_exec_check_interrupted()) or inside one (the unit's
 * error); a unit that failed is tried again, or ends the run
 * (am_exec_retry()).
 */

/*
 * am_exec_interrupted
 *		Has the run's timeout passed, or cancel() asked the worker to stop?
 */
bool
am_exec_interrupted(void)
{
	return am_timed_out || am_shmem_cancel_requested();
}

/*
 * am_exec_check_interrupted
 *		Between two statements or batches: an interrupted run raises its
 *		cancel now (a query-canceled error), as inside a unit.  Call in the
 *		PG_TRY of the next unit.
 */
void
am_exec_check_interrupted(void)
{
	if (am_exec_interrupted())
	{
		QueryCancelPending = true;
		InterruptPending = true;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * am_exec_interruption
 *		Why a run (or one of its batches) that failed with edata ends, if
 *		not by its own error: "timed out after ..." or "canceled" (in the
 *		current memory context).  NULL: edata is the reason.
 */
static char *
am_exec_interruption(AmMigration *m, ErrorData *edata)
{
	if (am_timed_out)
		return psprintf("timed out after %s", m->timeout_text);
	if (am_shmem_cancel_requested() &&
		edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		return pstrdup("canceled");
	return NULL;
}

/*
 * am_exec_retryable
 *		May a statement (or a batch) that failed with edata on this attempt
 *		be tried again?  Lock timeouts, deadlocks and serialization failures
 *		pass with time, up to asyncmig.max_attempts.
 */
static bool
am_exec_retryable(ErrorData *edata, int attempt)
{
	return (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
			edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
			edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE) &&
		attempt < am_settings_max_attempts;
}

/*
 * am_exec_retry
 *		A unit of run m (a statement, or with unit a batch: "batch 3")
 *		failed with edata on try *attempt.  If the run was not interrupted,
 *		the error passes with time (am_exec_retryable()) and what the unit
 *		left was undone, count the try in the row, back off, and return
 *		true: try again (*attempt is the next try's).  Else false, with
 *		res->message the interruption, if it was one.
 */
bool
am_exec_retry(AmMigration *m, ErrorData *edata, const char *unit, bool undone,
			  int *attempt, AmExecResult *res)
{
	res->message = am_exec_interruption(m, edata);
	if (res->message != NULL || !am_exec_retryable(edata, *attempt) || !undone)
		return false;
	ereport(LOG,
			(errmsg("asyncmig migration \"%s\": %s%stry %d failed, trying again: %s",
					m->name, unit ? unit : "", unit ? ", " : "", *attempt,
					edata->message)));
	am_catalog_worker_count_attempt(m->id, m->pid, edata);
	am_exec_backoff(*attempt);
	(*attempt)++;
	return true;
}

/*
 * am_prepare_guard
 *		Note what a concurrent statement works on (guard.c), and drop first
 *		an INVALID index of the name that CREATE INDEX CONCURRENTLY IF NOT
 *		EXISTS would otherwise skip.  NULL for statements without a guard.
 */
static AmGuard *
am_prepare_guard(AmMigration *m, Node *stmt)
{
	AmGuard    *g = am_guard_prepare(stmt);

	if (g && g->drop_first)
	{
		char	   *drop = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
									g->drop_first);

		ereport(LOG,
				(errmsg("asyncmig migration \"%s\": dropping INVALID index %s before building it again",
						m->name, g->drop_first)));
		/* only that index, and only if nobody built it meanwhile */
		am_guard_expect_drop(g->drop_first_oid);
		PG_TRY();
		{
			am_run_text(drop, 0);
		}
		PG_FINALLY();
		{
			am_guard_expect_drop(InvalidOid);
		}
		PG_END_TRY();
		/* it is gone: do not count it among the indexes that were there */
		g->before = list_delete_oid(g->before, g->drop_first_oid);
	}
	return g;
}

/*
 * am_exec_cleanup_guard
 *		Finish or undo, as the migration's owner, what a failed guarded
 *		statement left (guard.c): drop the INVALID index a build left, the
 *		*_ccnew and *_ccold indexes of a REINDEX, complete an interrupted
 *		DROP INDEX CONCURRENTLY, finalize an interrupted DETACH PARTITION
 *		CONCURRENTLY.  Used after an error and by the sweep after a worker
 *		died.  Failures are logged, not raised: the run has failed already
 *		and its own error is what the row must say.  Returns true if it
 *		restored the state before the statement (a retry may then run it
 *		again) or found nothing to do.
 *
 *		Each statement waits for the transactions that use the table at
 *		most max(asyncmig.lock_timeout, AM_CLEANUP_WAIT_MS): a report that
 *		keeps the table open must not hold the database's queue.  What
 *		could not be done then is left for later: *left says what, and the
 *		caller keeps the guard (it becomes the row's cleanup).
 */
bool
am_exec_cleanup_guard(AmMigration *m, const char *guard_json, char **left)
{
	List	   *actions;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;
	bool		undoes;

	*left = NULL;
	/* finding what to do is not canceled */
	HOLD_CANCEL_INTERRUPTS();
	actions = am_guard_actions(guard_json, &undoes);
	MemoryContextSwitchTo(cxt);
	RESUME_CANCEL_INTERRUPTS();

	foreach(lc, actions)
	{
		AmGuardAction *a = lfirst(lc);
		int			try;
		char	   *message = NULL;

		/*
		 * A concurrent build of another session on the same table waits for
		 * our drop's snapshot while our drop waits for its lock: the
		 * deadlock detector then cancels one of them.  Try again a few
		 * times, a second apart.  A cancel (asyncmig.cancel(), the run's
		 * timeout) is for the run, which has failed already: try again at
		 * once.  (Holding cancel interrupts would hold lock_timeout too.)
		 * The lock timeout ends the tries: the rest is left for later.
		 */
		for (try = 1; try <= AM_CLEANUP_TRIES; try++)
		{
			int			sqlerrcode = 0;

			QueryCancelPending = false;
			message = NULL;
			am_guard_expect_drop(a->check_oid);
			PG_TRY();
			{
				am_run_text(a->sql, Max(am_settings_lock_timeout, AM_CLEANUP_WAIT_MS));
				ereport(LOG,
						(errmsg("asyncmig migration \"%s\": cleaned up %s left by its failed run",
								m->name, a->label),
						 errdetail("Statement: %s", a->sql)));
			}
			PG_CATCH();
			{
				ErrorData  *edata = am_exec_catch(cxt, true);

				sqlerrcode = edata->sqlerrcode;
				message = edata->message;
				ereport(LOG,
						(errmsg("asyncmig migration \"%s\": could not clean up %s (try %d)",
								m->name, a->label, try)));
			}
			PG_END_TRY();
			am_guard_expect_drop(InvalidOid);
			if (sqlerrcode == ERRCODE_QUERY_CANCELED)
				continue;
			if (sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (ProcDiePending)
				CHECK_FOR_INTERRUPTS();
		}
		if (message != NULL && *left == NULL)
			*left = psprintf("%s: %s", a->label, message);
	}
	/* a cancel that came meanwhile is for a run that has failed already */
	QueryCancelPending = false;
	return undoes || actions == NIL;
}

/* the longest interval asyncmig turns into a time */
Interval *
am_exec_max_interval(void)
{
	Interval   *max = palloc0(sizeof(Interval));

	max->month = AM_EXEC_MAX_INTERVAL_YEARS * MONTHS_PER_YEAR;
	return max;
}

/*
 * am_exec_sleep
 *		Sleep ms milliseconds on the latch, waking at once for a cancel, the
 *		migration's timeout or a shutdown: the back-off between tries, and
 *		the pause between batches.
 */
void
am_exec_sleep(int64 ms)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz end;

	/* past what a timestamp holds ('300000 years' overflowed): for ever */
	if (ms >= (DT_NOEND - now) / 1000)
		end = DT_NOEND;
	else
		end = TimestampTzPlusMilliseconds(now, Max(ms, 0));

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		/* a cancel is raised by the next statement's check, in its PG_TRY */
		if (ProcDiePending)
			CHECK_FOR_INTERRUPTS();
		if (left <= 0 || am_exec_interrupted() || QueryCancelPending)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, 60000L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * am_exec_backoff
 *		Sleep before try number attempt + 1: 1 s, 2 s, 4 s ... up to 60 s.
 */
static void
am_exec_backoff(int attempt)
{
	am_exec_sleep(Min(1000L << Min(attempt - 1, 6), 60000L));
}

/*
 * am_exec_run
 *		Run sql (the migration's forwards or backwards text) as its owner.
 *		Returns true on success; else fills *res.  Lock timeouts, deadlocks
 *		and serialization failures are tried again, up to
 *		asyncmig.max_attempts tries in all, each counted in the row.
 */
bool
am_exec_run(AmMigration *m, const char *sql, AmExecResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *stmts = NIL;
	ListCell   *lc;
	int			attempt = 1;
	char		lock_timeout[32];

	memset(res, 0, sizeof(AmExecResult));

	PG_TRY();
	{
		stmts = am_exec_parse_sql(sql, m->direction == AM_BACKWARDS ?
							 "backwards SQL" : "forwards SQL");
	}
	PG_CATCH();
	{
		res->edata = am_exec_catch(cxt, false);
		return false;
	}
	PG_END_TRY();

	foreach(lc, stmts)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		char	   *stmt_text = am_statement_text(raw, sql);
		bool		concurrent = am_guard_is_concurrent(raw->stmt);

		for (;;)
		{
			AmGuard    *volatile guard = NULL;
			ErrorData  *edata = NULL;
			bool		undone = true;

			PG_TRY();
			{
				/* the extension (and the row) dropped meanwhile: stop */
				am_catalog_check_claimed();
				am_exec_check_interrupted();
				guard = am_prepare_guard(m, raw->stmt);
				if (guard)
					am_catalog_worker_set_guard(m->id, m->pid, am_guard_to_json(guard));

				snprintf(lock_timeout, sizeof(lock_timeout), "%d",
						 concurrent ? 0 : am_settings_lock_timeout);
				(void) set_config_option("lock_timeout", lock_timeout,
										 PGC_SUSET, PGC_S_CLIENT,
										 GUC_ACTION_SET, true, 0, false);

				am_guard_watch((AmGuard *) guard);
				am_running.guard = (AmGuard *) guard;
				am_running.id = m->id;
				am_running.pid = m->pid;
				am_running.recorded = false;
				am_run_statement(raw, sql, stmt_text);
				am_running.guard = NULL;
				am_guard_watch(NULL);

				if (guard)
				{
					am_guard_verify((AmGuard *) guard);
					am_catalog_worker_set_guard(m->id, m->pid, NULL);
				}
			}
			PG_CATCH();
			{
				am_running.guard = NULL;
				am_guard_watch(NULL);
				edata = am_exec_catch(cxt, false);
			}
			PG_END_TRY();
			MemoryContextSwitchTo(cxt);

			if (edata == NULL)
				break;			/* next statement */

			if (guard)
			{
				/* with the index it created, if it saw it */
				char	   *json = am_guard_to_json((AmGuard *) guard);
				char	   *left;

				undone = am_exec_cleanup_guard(m, json, &left);
				/* what is left stays: ending the run makes it a cleanup */
				if (left == NULL)
					am_catalog_worker_set_guard(m->id, m->pid, NULL);
				else
					undone = false;
			}

			if (am_exec_retry(m, edata, NULL, undone, &attempt, res))
				continue;

			res->edata = edata;
			res->statement = stmt_text;
			return false;
		}
	}
	return true;
}
