/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The asyncmig launcher: starts a worker for each database that may
 *		have runnable migrations, at most asyncmig.max_workers at once and
 *		never two in one database.
 *
 * The launcher holds no database connection and no snapshot.  It learns of
 * work from shared memory: a committing schedule()/run() names its
 * database and sets the launcher's latch; a worker that ran a migration
 * asks for its database to be looked at again; a worker that found nothing
 * runnable but a not_before or the end of a wait for a dependency (see
 * catalog_dependencies.c) in the future leaves a wake-up time.  At its
 * start (after every server start and crash-restart) it looks at every
 * database once, so that queued work resumes and rows of workers that died
 * with the server are swept.  When idle it sleeps on its latch without a
 * timeout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "launcher.h"
#include "settings.h"
#include "shmem.h"

/* a worker that failed before claiming anything: look again after */
#define AM_RETRY_FAILED_MS		10000

/* the longest the launcher sleeps before it looks at the time again */
#define AM_LAUNCHER_MAX_SLEEP_MS	(3600 * 1000L)

/* handles of the workers this launcher started, by slot */
static BackgroundWorkerHandle **worker_handles = NULL;

static void launcher_detach(int code, Datum arg);
static bool launcher_worker_stopped(int slotno);
static void launcher_scan_databases(void);
static bool launcher_reap_workers(void);
static bool launcher_start_workers(long *timeout_ms);
static bool launcher_start_worker(int slotno, Oid dboid);
static bool launcher_database_busy(Oid dboid);
static void launcher_dependency_timeout_changed(int old_timeout);

/*
 * am_launcher_register
 *		Register the launcher with the postmaster (from _PG_init).  It is
 *		restarted a second after it dies.
 */
void
am_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "asyncmig");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "asyncmig_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "asyncmig launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "asyncmig launcher");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/*
 * asyncmig_launcher_main
 *		Entry point of the launcher.
 */
void
asyncmig_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* no database: we read only the shared catalog pg_database */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("asyncmig launcher");

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	if (am_shmem_state->launcher_pid != 0)
	{
		LWLockRelease(am_shmem_state->lock);
		ereport(LOG,
				(errmsg("asyncmig launcher already running as process %d, exiting",
						(int) am_shmem_state->launcher_pid)));
		proc_exit(0);
	}
	am_shmem_state->launcher_pid = MyProcPid;
	am_shmem_state->launcher_latch = MyLatch;
	am_shmem_state->rescan_all = true;	/* look at every database once */
	LWLockRelease(am_shmem_state->lock);
	before_shmem_exit(launcher_detach, (Datum) 0);

	worker_handles = MemoryContextAllocZero(TopMemoryContext,
											sizeof(BackgroundWorkerHandle *) *
											am_shmem_state->nslots);

	ereport(LOG, (errmsg("asyncmig launcher started")));

	for (;;)
	{
		long		timeout_ms = -1;
		bool		busy;
		bool		rescan;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			int			old_dependency_timeout = asyncmig_dependency_timeout;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			launcher_dependency_timeout_changed(old_dependency_timeout);
		}

		LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
		rescan = am_shmem_state->rescan_all;
		am_shmem_state->rescan_all = false;
		LWLockRelease(am_shmem_state->lock);
		if (rescan)
			launcher_scan_databases();

		busy = launcher_reap_workers();
		busy |= launcher_start_workers(&timeout_ms);

		/*
		 * While workers run we are woken by the postmaster when one exits
		 * (bgw_notify_pid); a one-second timeout also covers workers that a
		 * previous launcher started.  Idle, we sleep until woken or until
		 * the earliest not_before.
		 */
		if (busy && (timeout_ms < 0 || timeout_ms > 1000))
			timeout_ms = 1000;
		/* a not_before weeks ahead: WaitLatch's timeout is an int of ms */
		if (timeout_ms > AM_LAUNCHER_MAX_SLEEP_MS)
			timeout_ms = AM_LAUNCHER_MAX_SLEEP_MS;
		if (timeout_ms >= 0)
			elog(DEBUG1, "asyncmig launcher sleeps %ld ms", timeout_ms);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_EXIT_ON_PM_DEATH |
						 (timeout_ms >= 0 ? WL_TIMEOUT : 0),
						 timeout_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * launcher_detach
 *		Forget the launcher in shared memory when it exits.
 */
static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	if (am_shmem_state->launcher_pid == MyProcPid)
	{
		am_shmem_state->launcher_pid = 0;
		am_shmem_state->launcher_latch = NULL;
	}
	LWLockRelease(am_shmem_state->lock);
}

/*
 * launcher_dependency_timeout_changed
 *		A reload made asyncmig.dependency_timeout shorter, or turned it on:
 *		queued runs may now have waited long enough for an idle dependency,
 *		sooner than the wake-up times the workers left.  Look at every
 *		database once.  A longer timeout needs nothing: a worker that comes
 *		too early leaves the new deadline.
 */
static void
launcher_dependency_timeout_changed(int old_timeout)
{
	int			new_timeout = asyncmig_dependency_timeout;

	if (new_timeout <= 0 || (old_timeout > 0 && new_timeout >= old_timeout))
		return;
	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	am_shmem_state->rescan_all = true;
	LWLockRelease(am_shmem_state->lock);
}

/*
 * launcher_scan_databases
 *		Ask for a look at every database that accepts connections and is
 *		not a template.  Templates are never served: a worker connected to
 *		template1 would make CREATE DATABASE fail.
 */
static void
launcher_scan_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *dboids = NIL;
	ListCell   *lc;
	MemoryContext oldcxt = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext txcxt;

		if (db->datistemplate || !db->datallowconn ||
			database_is_invalid_form(db))
			continue;

		txcxt = MemoryContextSwitchTo(oldcxt);
		dboids = lappend_oid(dboids, db->oid);
		MemoryContextSwitchTo(txcxt);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	CommitTransactionCommand();
	MemoryContextSwitchTo(oldcxt);

	foreach(lc, dboids)
		am_shmem_request_database(lfirst_oid(lc), 0);
	list_free(dboids);
}

/*
 * launcher_worker_stopped
 *		Has the worker of slot slotno exited?  Caller holds the lock.  For a
 *		worker that an earlier launcher started we have no handle and look
 *		at its pid instead.
 */
static bool
launcher_worker_stopped(int slotno)
{
	AmWorkerSlot *slot = &am_shmem_state->slots[slotno];
	pid_t		pid;

	if (worker_handles[slotno] != NULL)
		return GetBackgroundWorkerPid(worker_handles[slotno], &pid) == BGWH_STOPPED;
	return slot->pid == 0 || kill(slot->pid, 0) != 0;
}

/*
 * launcher_reap_workers
 *		Free the slots of workers that have exited and act on what they
 *		reported.  A worker that ran a migration, or died inside one, gets
 *		its database looked at again (the next worker sweeps a dead run).
 *		Returns true if some worker is still running.
 */
static bool
launcher_reap_workers(void)
{
	bool		busy = false;
	bool		ended = false;
	int			i;
	List	   *failed = NIL;
	ListCell   *lc;

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];
		Oid			dboid;
		AmWorkerResult result;
		TimestampTz wake = -1;

		if (!slot->in_use)
			continue;
		if (!launcher_worker_stopped(i))
		{
			busy = true;
			continue;
		}

		dboid = slot->dboid;
		result = slot->result;
		if (result == AM_RESULT_RAN)
			wake = 0;
		else if (result == AM_RESULT_IDLE)
		{
			/* 0 means nothing to wait for: forget the database */
			if (slot->next_wakeup > 0)
				wake = slot->next_wakeup;
		}
		else if (slot->migration_id != 0)
		{
			/* died inside a migration: leave word for the sweep */
			AmObituary *ob;

			if (am_shmem_state->nobituaries == AM_MAX_OBITUARIES)
			{
				memmove(&am_shmem_state->obituaries[0],
						&am_shmem_state->obituaries[1],
						sizeof(AmObituary) * (AM_MAX_OBITUARIES - 1));
				am_shmem_state->nobituaries--;
			}
			ob = &am_shmem_state->obituaries[am_shmem_state->nobituaries++];
			ob->dboid = dboid;
			ob->migration_id = slot->migration_id;
			ob->pid = slot->pid;
			strlcpy(ob->message, slot->last_fatal, AM_OBITUARY_LEN);
			wake = 0;
		}
		else
		{
			/*
			 * Failed before it claimed anything (its database may have been
			 * dropped): look again later if the database still exists.
			 */
			failed = lappend_oid(failed, dboid);
		}

		memset(slot, 0, sizeof(AmWorkerSlot));
		if (worker_handles[i])
		{
			pfree(worker_handles[i]);
			worker_handles[i] = NULL;
		}
		ended = true;

		if (wake >= 0)
			am_shmem_add_pending(dboid, wake);
	}
	LWLockRelease(am_shmem_state->lock);

	if (ended)
		ConditionVariableBroadcast(&am_shmem_state->status_cv);

	foreach(lc, failed)
	{
		Oid			dboid = lfirst_oid(lc);
		bool		exists;

		StartTransactionCommand();
		exists = SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(dboid));
		CommitTransactionCommand();
		if (exists)
			am_shmem_request_database(dboid,
									  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																  AM_RETRY_FAILED_MS));
	}
	list_free(failed);

	return busy;
}

/*
 * launcher_database_busy
 *		Is a worker running in dboid?  Caller holds the lock.
 */
static bool
launcher_database_busy(Oid dboid)
{
	int			i;

	for (i = 0; i < am_shmem_state->nslots; i++)
		if (am_shmem_state->slots[i].in_use &&
			am_shmem_state->slots[i].dboid == dboid)
			return true;
	return false;
}

/*
 * launcher_start_workers
 *		Start a worker for each pending database that is due, has no worker
 *		and finds a free slot, in the order they were asked for.  Sets
 *		*timeout_ms to the time until the next one is due (-1: none).
 *		Returns true if it started a worker.
 */
static bool
launcher_start_workers(long *timeout_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	bool		started = false;
	int			i = 0;

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	while (i < am_shmem_state->npending)
	{
		AmPendingDb *p = &am_shmem_state->pending[i];
		int			slotno;

		if (p->wake_at > now)
		{
			if (next == 0 || p->wake_at < next)
				next = p->wake_at;
			i++;
			continue;
		}
		if (launcher_database_busy(p->dboid))
		{
			/* the running worker's exit brings it back; keep it anyway */
			i++;
			continue;
		}
		for (slotno = 0; slotno < am_shmem_state->nslots; slotno++)
			if (!am_shmem_state->slots[slotno].in_use)
				break;
		if (slotno == am_shmem_state->nslots)
			break;				/* all slots busy: wait for an exit */

		if (!launcher_start_worker(slotno, p->dboid))
		{
			/* out of bgworker slots: retry in a second */
			next = TimestampTzPlusMilliseconds(now, 1000);
			break;
		}
		started = true;

		/* remove entry i, keeping the order of the others */
		memmove(&am_shmem_state->pending[i], &am_shmem_state->pending[i + 1],
				sizeof(AmPendingDb) * (am_shmem_state->npending - i - 1));
		am_shmem_state->npending--;
	}
	LWLockRelease(am_shmem_state->lock);

	if (next != 0)
	{
		long		ms = TimestampDifferenceMilliseconds(now, next);

		*timeout_ms = Max(ms, 1);
	}
	return started;
}

/*
 * launcher_start_worker
 *		Register a worker for dboid in slot slotno.  Caller holds the lock
 *		exclusively.  Returns false (and logs) when the postmaster has no
 *		free background worker slot; the database stays pending.
 */
static bool
launcher_start_worker(int slotno, Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	AmWorkerSlot *slot = &am_shmem_state->slots[slotno];

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "asyncmig");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "asyncmig_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "asyncmig worker for database %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "asyncmig worker");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	worker.bgw_notify_pid = MyProcPid;

	memset(slot, 0, sizeof(AmWorkerSlot));
	slot->in_use = true;
	slot->dboid = dboid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		slot->in_use = false;
		ereport(LOG,
				(errmsg("asyncmig could not start a worker for database %u", dboid),
				 errhint("Raise max_worker_processes: it must leave room for asyncmig.max_workers plus the launcher.")));
		return false;
	}
	worker_handles[slotno] = handle;
	return true;
}
