/*-------------------------------------------------------------------------
 *
 * worker.c
 *		An asyncmig worker: started by the launcher for one database, it
 *		sweeps the runs of workers that died, ends queued migrations whose
 *		dependencies failed or never came, claims the oldest runnable
 *		migration, runs it and exits.
 *
 * One worker runs one migration and exits, so no session state (SET,
 * temporary tables, advisory locks, prepared statements) leaks from one
 * migration into the next, and the worker leaves its database as soon as
 * there is nothing to run there: DROP DATABASE is never blocked by an idle
 * asyncmig process for long.  The launcher starts the next worker at once
 * when there may be more, or early, as a successor that waits (at most a
 * second) until this one's end is committed (launcher.c).
 *
 * The worker connects as the bootstrap superuser (PostgreSQL 15 refuses a
 * background worker connection as a NOLOGIN role) and, before it runs any
 * of the migration's SQL, becomes its owner in the way a SECURITY DEFINER
 * function does; see am_session_become_owner().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "asyncmig.h"
#include "batch_catalog.h"
#include "batch_run.h"
#include "catalog.h"
#include "catalog_dependencies.h"
#include "catalog_worker.h"
#include "executor.h"
#include "obituary.h"
#include "registry.h"
#include "session.h"
#include "shmem.h"
#include "worker.h"

/*
 * A phase boundary of a worker, in the log at DEBUG1 (quiet by default):
 * with log_line_prefix's %m the log tells where a migration's time goes
 * (bench/RESULTS.md, "Where a tiny migration's time goes").
 */
#define AM_PHASE(what) elog(DEBUG1, "asyncmig worker phase: %s", (what))

/* a row that a session held locked was skipped: look again after */
#define AM_SKIPPED_RETRY_MS		1000

/*
 * The longest a successor waits (from its start) for the running worker
 * of its database: it is for queues of short migrations, and must not hold
 * a connection (DROP DATABASE waits 5 s for them) through a long one.
 */
#define AM_SUCCESSOR_WAIT_MS	1000

/* what pg_stat_activity says of a successor while it waits */
#define AM_SUCCESSOR_APPNAME	"asyncmig worker: waiting for its turn"

/* the earliest a worker asks to be started again, when it has a reason */
#define AM_MIN_WAKEUP_MS		1000

static Oid	am_superuser = InvalidOid;

/* the sweep skipped something: look again from then on (or 0) */
static TimestampTz am_retry_at = 0;
static emit_log_hook_type prev_emit_log_hook = NULL;

static void am_worker_emit_log(ErrorData *edata);
static void am_worker_exit(AmWorkerResult result, TimestampTz wakeup);
static void am_sweep(void);
static void am_sweep_cleanups(MemoryContext sweep_cxt);
static void am_retry_later(void);
static void am_settle_registry(void);
static char *am_obituary(int64 migration_id, int pid, int *sqlstate,
						 bool consume);
static void am_run_claimed(AmMigration *m);
static bool am_successor_wait_turn(TimestampTz started_at);
static uint32 am_worker_generation(void);
static bool am_has_table(void);

/*
 * am_worker_emit_log
 *		Keep the message of the last error this worker reported in its slot:
 *		if the worker then ends (a pg_terminate_backend(), a shutdown, an
 *		error in its own bookkeeping), the sweep says in the row what
 *		happened.
 */
static void
am_worker_emit_log(ErrorData *edata)
{
	if (edata->elevel >= ERROR && edata->message != NULL)
		am_shmem_worker_note_error(edata->message);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * am_worker_exit
 *		Report the result to the launcher and exit.  The worker's work in
 *		its database is over (its run's end is committed): the launcher is
 *		woken at once, so that the next worker starts while this one is
 *		still exiting.
 */
static void
am_worker_exit(AmWorkerResult result, TimestampTz wakeup)
{
	am_shmem_worker_ended(result, wakeup);
	proc_exit(0);
}

/*
 * asyncmig_worker_main
 *		Entry point of a worker; main_arg is its slot number.
 */
void
asyncmig_worker_main(Datum main_arg)
{
	int			slotno = DatumGetInt32(main_arg);
	Oid			dboid;
	AmMigration *m;
	AmCatalogContext cxt;
	TimestampTz wakeup = 0;
	bool		skipped = false;
	bool		skipped_missing = false;
	bool		skipped_claim = false;
	bool		with_dependencies;
	bool		successor;
	TimestampTz started_at = GetCurrentTimestamp();

	pqsignal(SIGTERM, die);
	/* settings are read again between batches (asyncmig.max_replica_lag) */
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* a launcher that died gave the slot away, or a dismissed successor */
	if (!am_shmem_attach_slot(slotno, am_worker_generation(), &dboid,
							  &successor))
		proc_exit(0);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = am_worker_emit_log;

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("asyncmig worker");
	am_superuser = GetUserId();
	am_exec_init();
	AM_PHASE("connected");

	/* started early: the running worker of this database ends first */
	if (successor && !am_successor_wait_turn(started_at))
		proc_exit(0);

	/* a database without the extension has nothing for us */
	if (!am_has_table())
	{
		if (am_registry_prune_begin(MyDatabaseId))
			am_registry_prune_end(MyDatabaseId, false);
		am_worker_exit(AM_RESULT_IDLE, 0);
	}

	/* rows restored or copied from elsewhere never run on their own */
	am_catalog_begin(&cxt);
	(void) am_catalog_worker_fail_foreign();
	am_catalog_commit(&cxt);

	AM_PHASE("foreign rows checked");
	am_sweep();
	AM_PHASE("swept");

	/* end what cannot run any more, then claim the oldest runnable */
	am_catalog_begin(&cxt);
	/* both look only at queued rows with dependencies: mostly there are none */
	with_dependencies = am_catalog_worker_queued_with_dependencies();
	if (with_dependencies)
	{
		(void) am_catalog_fail_broken_dependencies(&skipped);
		if (am_catalog_dependencies_fail_missing(&skipped_missing) > 0)
			(void) am_catalog_fail_broken_dependencies(&skipped);
		skipped |= skipped_missing;
	}
	{
		/* the row must outlive this transaction */
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		m = am_catalog_worker_claim(MyProcPid, with_dependencies, &skipped_claim);
		MemoryContextSwitchTo(old);
	}
	skipped |= skipped_claim;
	if (m)
	{
		/* before the launcher may count this database as looked at */
		am_registry_ensure(MyDatabaseId);
		am_catalog_claimed_in(cxt.relid);
		am_shmem_worker_claimed(m->id);
	}
	else
	{
		TimestampTz deadline = am_catalog_dependencies_deadline();

		wakeup = am_catalog_worker_next_wakeup();
		if (deadline != 0 && (wakeup == 0 || deadline < wakeup))
			wakeup = deadline;
		/* a locked row was skipped: come back for it */
		if (skipped)
			am_retry_later();
		if (am_retry_at != 0 && (wakeup == 0 || am_retry_at < wakeup))
			wakeup = am_retry_at;
	}

	/*
	 * NB: the claim's commit waits for its WAL flush (synchronous_commit),
	 * although an asynchronous one would be flushed by any later durable
	 * commit of the run (the migration's own, a batch's, the end's), so
	 * that nothing in the database could ever show the run's effects with
	 * its claim lost.  Effects outside this cluster's WAL (dblink, COPY TO
	 * PROGRAM) could: after a crash before the WAL writer's flush the row
	 * would be STARTED again and run a second time, where the sweep now
	 * ends it in ERROR ("interrupted").  The flush is about 0.2 ms here
	 * (bench/RESULTS.md): not worth that.
	 */
	am_catalog_commit(&cxt);
	am_shmem_status_broadcast();
	AM_PHASE(m ? "claimed" : "nothing to claim");

	if (m == NULL)
	{
		TimestampTz earliest = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   AM_MIN_WAKEUP_MS);

		/* a due cleanup we could not lock must not make a busy loop */
		if (wakeup != 0 && wakeup < earliest)
			wakeup = earliest;
		am_settle_registry();
		AM_PHASE("registry settled");
		am_worker_exit(AM_RESULT_IDLE, wakeup);
	}

	am_run_claimed(m);
	am_worker_exit(AM_RESULT_RAN, 0);
}

/*
 * am_has_table
 *		Does this database have the extension and its table?  In a
 *		transaction of its own.
 */
static bool
am_has_table(void)
{
	bool		result;

	StartTransactionCommand();
	result = OidIsValid(get_extension_oid("asyncmig", true)) &&
		OidIsValid(am_catalog_relid(true));
	CommitTransactionCommand();
	return result;
}

/*
 * am_worker_generation
 *		The generation of the slot start this worker was registered for,
 *		from bgw_extra (see am_shmem_slot_reserve()).
 */
static uint32
am_worker_generation(void)
{
	uint32		generation;

	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));
	return generation;
}

/*
 * am_successor_wait_turn
 *		A successor, started while its database's worker runs: warm this
 *		backend's caches with the reads it will make (the table's relcache
 *		entry and its indexes, the planner's catalog look-ups are the most
 *		of a fresh worker's cost; bench/RESULTS.md), then wait until the
 *		launcher releases it, at most AM_SUCCESSOR_WAIT_MS after the
 *		process started (started_at).  It only reads, and nothing it reads
 *		here decides anything: released, it does all of a worker's steps
 *		from the start, in snapshots taken after the previous run's end was
 *		committed.  False: dismissed or gave up, exit.
 */
static bool
am_successor_wait_turn(TimestampTz started_at)
{
	AmCatalogContext cxt;

	pgstat_report_appname(AM_SUCCESSOR_APPNAME);
	if (am_has_table())
	{
		am_catalog_begin(&cxt);
		(void) am_catalog_worker_in_progress();
		(void) am_catalog_worker_cleanups_due();
		(void) am_catalog_worker_queued_with_dependencies();
		am_catalog_commit(&cxt);
	}
	AM_PHASE("successor waits");
	if (!am_shmem_successor_wait(TimestampTzPlusMilliseconds(started_at,
															  AM_SUCCESSOR_WAIT_MS)))
		return false;
	pgstat_report_appname("asyncmig worker");
	AM_PHASE("successor released");
	return true;
}

/*
 * am_run_claimed
 *		Run a migration this worker marked IN PROGRESS, and end its run.
 */
static void
am_run_claimed(AmMigration *m)
{
	bool		backwards = m->direction == AM_BACKWARDS;
	const char *direction = am_catalog_direction_name(m->direction);
	const char *sql = backwards ? m->backwards_sql : m->forwards_sql;
	AmExecResult res;
	AmCatalogContext cxt;
	bool		ok;
	bool		owner_exists;
	AmBatchSpec *batch = NULL;
	TimestampTz start = GetCurrentTimestamp();
	char		appname[NAMEDATALEN];

	snprintf(appname, sizeof(appname), AM_NOTIFY_CHANNEL ": %s", m->name);
	set_ps_display(appname);
	ereport(LOG,
			(errmsg("asyncmig migration \"%s\" started (%s)", m->name,
					direction)));

	StartTransactionCommand();
	owner_exists = SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(m->owner));
	CommitTransactionCommand();

	/* a forwards run of a batched migration walks its key (batch_run.c) */
	if (!backwards)
	{
		MemoryContext old;

		am_catalog_begin(&cxt);
		old = MemoryContextSwitchTo(cxt.save_mcxt);
		batch = am_batch_catalog_spec(m->id);
		MemoryContextSwitchTo(old);
		am_catalog_commit(&cxt);
	}

	memset(&res, 0, sizeof(res));
	if (!owner_exists)
	{
		ErrorData  *edata = palloc0(sizeof(ErrorData));

		edata->sqlerrcode = ERRCODE_UNDEFINED_OBJECT;
		edata->message = psprintf("role with OID %u does not exist", m->owner);
		edata->detail = pstrdup("The role that scheduled this migration was dropped; nobody's rights are left to run it with.");
		res.edata = edata;
		ok = false;
	}
	else if (sql == NULL)
	{
		ErrorData  *edata = palloc0(sizeof(ErrorData));

		edata->sqlerrcode = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		edata->message = pstrdup("migration has no backwards SQL");
		res.edata = edata;
		ok = false;
	}
	else
	{
		am_session_become_owner(m->owner);
		am_session_set(m);
		AM_PHASE("session ready");
		am_exec_start_timeout(m->timeout_ms);
		if (batch)
			ok = am_batch_run_forwards(m, batch, &res);
		else
			ok = am_exec_run(m, sql, &res);
		am_exec_stop_timeout();
		/* the run is decided: a late cancel must not hit our bookkeeping */
		QueryCancelPending = false;
		AM_PHASE("statements run");
	}

	/* the migration's SETs must not steer our own bookkeeping */
	StartTransactionCommand();
	ResetAllOptions();
	CommitTransactionCommand();

	/*
	 * A backwards run undid the batches: the next forwards run starts at
	 * the first key.  Forgotten before the run is recorded FINISHED, so
	 * that a crash in between cannot leave the progress of undone batches.
	 */
	if (ok && backwards)
	{
		am_catalog_begin(&cxt);
		am_batch_catalog_forget_progress(m->id);
		am_catalog_commit(&cxt);
	}
	am_catalog_worker_finish(m->id, m->pid, ok ? NULL : res.edata, res.statement,
							 res.message,
							 batch && !ok ? am_batch_catalog_error_json(batch) : NULL);
	AM_PHASE("end recorded");

	if (ok)
		ereport(LOG,
				(errmsg("asyncmig migration \"%s\" finished (%s) in %.3f s",
						m->name, direction,
						(double) (GetCurrentTimestamp() - start) / 1000000.0)));
	else
		ereport(LOG,
				(errmsg("asyncmig migration \"%s\" failed (%s): %s",
						m->name, direction,
						res.message ? res.message :
						(res.edata && res.edata->message ? res.edata->message : "unknown error"))));
}

/*
 * am_obituary
 *		What is known of how the worker of a dead run ended: the launcher's
 *		record of its FATAL message, or, with none (shared memory was
 *		rebuilt), a server restart.  With consume, the record is removed
 *		(once the row says it).
 */
static char *
am_obituary(int64 migration_id, int pid, int *sqlstate, bool consume)
{
	char		message[AM_OBITUARY_LEN];

	if (!am_obituary_take(MyDatabaseId, migration_id, pid, consume, message))
	{
		*sqlstate = ERRCODE_CRASH_SHUTDOWN;
		return psprintf("interrupted: the server shut down or restarted while it ran (worker pid %d)",
						pid);
	}
	*sqlstate = ERRCODE_ADMIN_SHUTDOWN;
	if (message[0])
		return psprintf("interrupted: %s", message);
	return psprintf("interrupted: its worker (pid %d) exited while it ran", pid);
}

/*
 * am_retry_later
 *		A row was skipped because someone holds it: this database must be
 *		looked at again in a few seconds, never waited for.
 */
static void
am_retry_later(void)
{
	TimestampTz t = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												AM_SKIPPED_RETRY_MS);

	if (am_retry_at == 0 || t < am_retry_at)
		am_retry_at = t;
}

/*
 * am_settle_registry
 *		Before an idle exit: a database without queued or running work (or
 *		cleanup) leaves the registry; one with work is in it.  The check
 *		runs in a snapshot taken after am_registry_prune_begin(), so a
 *		transaction that queues work meanwhile keeps its database there.
 */
static void
am_settle_registry(void)
{
	bool		pruning = am_registry_prune_begin(MyDatabaseId);
	bool		has_work;
	AmCatalogContext cxt;

	am_catalog_begin(&cxt);
	has_work = am_catalog_worker_has_work();
	am_catalog_commit(&cxt);
	if (pruning)
		am_registry_prune_end(MyDatabaseId, has_work);
	else if (has_work)
		am_registry_ensure(MyDatabaseId);
}

/*
 * am_sweep
 *		End in ERROR, at once, every IN PROGRESS row whose worker is gone
 *		(terminated, crashed, cut off by a shutdown); the INVALID indexes
 *		its interrupted statement left become a cleanup in the row, which
 *		am_sweep_cleanups() then tries, with a bounded wait.  Rows of live
 *		workers are not touched: a worker's slot says which migration it
 *		runs.  A row that a user holds locked is skipped and looked at
 *		again a few seconds later.
 */
static void
am_sweep(void)
{
	List	   *rows;
	List	   *dead = NIL;
	ListCell   *lc;
	AmCatalogContext cxt;
	MemoryContext sweep_cxt = AllocSetContextCreate(TopMemoryContext,
													"asyncmig sweep",
													ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;

	am_catalog_begin(&cxt);
	old = MemoryContextSwitchTo(sweep_cxt);
	rows = am_catalog_worker_in_progress();
	foreach(lc, rows)
	{
		AmMigration *m = lfirst(lc);

		/* a live worker, other than this one, runs it */
		if (!am_shmem_run_has_worker(MyDatabaseId, m->id, 0))
			dead = lappend(dead, m);
	}
	am_catalog_commit(&cxt);
	MemoryContextSwitchTo(old);

	foreach(lc, dead)
	{
		AmMigration *m = lfirst(lc);
		ErrorData  *edata;
		int			sqlstate;

		MemoryContextSwitchTo(sweep_cxt);
		edata = palloc0(sizeof(ErrorData));
		if (m->cancel_requested)
		{
			edata->sqlerrcode = ERRCODE_QUERY_CANCELED;
			edata->message = pstrdup("canceled");
		}
		else
		{
			edata->message = am_obituary(m->id, m->pid, &sqlstate, false);
			edata->sqlerrcode = sqlstate;
		}
		if (!am_catalog_worker_end_dead_run(m->id, m->pid, edata))
		{
			/* ended meanwhile, or a session holds it: not now */
			am_retry_later();
			continue;
		}
		(void) am_obituary(m->id, m->pid, &sqlstate, true);

		ereport(LOG,
				(errmsg("asyncmig migration \"%s\" failed: %s",
						m->name, edata->message)));
	}

	am_sweep_cleanups(sweep_cxt);
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(sweep_cxt);
}

/*
 * am_sweep_cleanups
 *		Drop, as each row's owner, the INVALID indexes that ended runs left
 *		(meta->'cleanup') and whose next try is due.  Each drop waits for
 *		readers of the table only a bounded time (am_exec_cleanup_guard());
 *		a cleanup that could not finish says why in the row and is tried
 *		again later, so the database's queue never waits behind it.
 */
static void
am_sweep_cleanups(MemoryContext sweep_cxt)
{
	List	   *cleanups;
	ListCell   *lc;
	AmCatalogContext cxt;

	am_catalog_begin(&cxt);
	MemoryContextSwitchTo(sweep_cxt);
	cleanups = am_catalog_worker_cleanups_due();
	am_catalog_commit(&cxt);

	foreach(lc, cleanups)
	{
		AmCleanup  *c = lfirst(lc);
		AmMigration m;
		char	   *volatile error = NULL;
		volatile bool done = false;
		bool		owner_exists;
		bool		begun;

		StartTransactionCommand();
		owner_exists = SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(c->owner));
		CommitTransactionCommand();

		am_catalog_begin(&cxt);
		begun = am_catalog_worker_cleanup_begin(c->id, MyProcPid);
		am_catalog_commit(&cxt);
		if (!begun)
		{
			am_retry_later();
			continue;
		}

		MemoryContextSwitchTo(sweep_cxt);
		memset(&m, 0, sizeof(m));
		m.id = c->id;
		m.name = c->name;
		m.owner = c->owner;
		if (!owner_exists)
		{
			/* nobody's rights to drop it with: say so once and stop */
			ereport(LOG,
					(errmsg("asyncmig migration \"%s\": its owner was dropped; the INVALID index its run left must be dropped by hand",
							c->name)));
			done = true;
		}
		else
		{
			am_session_become_owner(c->owner);
			PG_TRY();
			{
				char	   *left;

				(void) am_exec_cleanup_guard(&m, c->guard, &left);
				error = left;
				done = left == NULL;
			}
			PG_CATCH();
			{
				ErrorData  *edata = am_exec_catch(sweep_cxt, true);

				error = edata->message;
				done = false;
			}
			PG_END_TRY();
			SetUserIdAndSecContext(am_superuser, 0);
		}

		am_catalog_begin(&cxt);
		if (!am_catalog_worker_cleanup_end(c->id, done ? NULL : (error ? error : "failed")))
			am_retry_later();
		am_catalog_commit(&cxt);
		if (done && owner_exists)
			ereport(LOG,
					(errmsg("asyncmig migration \"%s\": cleanup after its interrupted run done",
							c->name)));
	}
}
