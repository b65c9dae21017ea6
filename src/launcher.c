/*-------------------------------------------------------------------------
 *
 * launcher.c
 *		The asyncmig launcher: starts a worker for each database that may
 *		have runnable migrations, at most asyncmig.max_workers at once and
 *		never two in one database.  A worker that has recorded its run's
 *		end and is only exiting does not count: the next one starts beside
 *		it, so that a queue of small migrations does not wait for each
 *		process's exit.  Nor does a successor: while a worker runs, and no
 *		other database waits for a worker, the next worker of its database
 *		is started early; it connects, warms its caches and waits (without
 *		a transaction, at most a second) until the running one's end is
 *		committed.  Then the launcher releases it, as it would start a
 *		worker for that database, or dismisses it when another database's
 *		turn came first.  One process per migration stays; what a queue of
 *		short migrations no longer waits for is each one's fork, connection
 *		and first look at the table.
 *
 * The launcher holds no database connection and no snapshot, and its work
 * grows with the databases that have work, not with the databases that
 * exist.  It learns of work from src/registry.c: a committing
 * schedule()/run() names its database and sets the launcher's latch; a
 * worker that ran a migration asks for its database to be looked at again;
 * a worker that found nothing runnable but a not_before, the end of a
 * wait for a dependency (see catalog_dependencies.c), a cleanup to retry
 * or a locked row leaves a wake-up time.  At its start it looks at
 * the databases of the registry file (those with queued or running work),
 * so that queued work resumes and rows of workers that died with the
 * server are swept.  Without a valid registry (first start, promotion,
 * lost file), or when a request did not fit in shared memory, it looks at
 * every database once instead: at most asyncmig.max_workers at a time,
 * each once, and then the scan is over.  When idle it sleeps on its latch
 * without a timeout.
 *
 * With asyncmig.enabled off it starts no worker: requests wait in shared
 * memory, queued rows stay STARTED, until a reload turns it on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/logicallauncher.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "databases.h"
#include "launcher.h"
#include "obituary.h"
#include "registry.h"
#include "settings.h"
#include "shmem.h"

/* a worker that failed before claiming anything: look again after */
#define AM_RETRY_FAILED_MS		10000

/* no free background worker slot: try again after, log at most every */
#define AM_RETRY_NO_SLOT_MS		1000
#define AM_LOG_NO_SLOT_MS		60000

/* the longest the launcher sleeps before it looks at the time again */
#define AM_LAUNCHER_MAX_SLEEP_MS	(3600 * 1000L)

/*
 * A background worker of asyncmig, by named fields (as TimescaleDB's
 * ts_bgw_start_worker()): launcher_bgw_start() fills the rest.
 */
typedef struct AmBackgroundWorker
{
	const char *function;		/* entry point in asyncmig's library */
	const char *name;			/* bgw_name */
	const char *type;			/* bgw_type */
	int			restart_time;	/* seconds, or BGW_NEVER_RESTART */
	Datum		main_arg;
	uint32		generation;		/* bgw_extra: a worker's slot generation */
} AmBackgroundWorker;

/* handles of the workers this launcher started, by slot */
static BackgroundWorkerHandle **worker_handles = NULL;

/* which slots run a worker of the scan of every database */
static bool *worker_from_scan = NULL;

/* has this launcher looked at the registry (or begun a scan) yet? */
static bool started_up = false;

/* the scan of every database: its list, how far it is, what follows */
static List *scan_list = NIL;
static int	scan_pos = 0;
static bool scan_active = false;
static bool scan_again = false;	/* a request did not fit during a scan */
static bool scan_completes_registry = false;

/* rate limit of "could not start a worker" */
static TimestampTz no_slot_logged_at = 0;
static int	no_slot_suppressed = 0;

static bool launcher_worker_stopped(int slotno);
static bool launcher_bgw_start(const AmBackgroundWorker *w,
							   BackgroundWorkerHandle **handle);
static void launcher_start_up(void);
static int	launcher_look_at_registered(bool completes_registry);
static void launcher_scan_begin(bool completes_registry);
static bool launcher_scan_next(Oid *dboid);
static void launcher_scan_check_done(void);
static bool launcher_reap_workers(void);
static bool launcher_start_workers(long *timeout_ms);
static bool launcher_start_worker(int slotno, Oid dboid, bool successor);
static void launcher_successors(bool enabled);
static void launcher_log_no_slot(Oid dboid);
static void launcher_dependency_timeout_changed(int old_timeout);

/*
 * am_launcher_register
 *		Register the launcher with the postmaster (from _PG_init).  It is
 *		restarted a second after it dies.
 *
 *		Not in binary-upgrade mode: pg_upgrade starts the old and the new
 *		server with -b to dump and restore the schema, and no migration may
 *		run (or be swept) then, beside pg_dump and on a cluster about to be
 *		copied.  The rows are carried over as they are; on the new cluster
 *		its queued runs end in ERROR as queued elsewhere
 *		(docs/howto/install.md, "pg_upgrade").
 */
void
am_launcher_register(void)
{
	AmBackgroundWorker launcher = {
		.function = "asyncmig_launcher_main",
		.name = "asyncmig launcher",
		.type = "asyncmig launcher",
		.restart_time = 1,
		.main_arg = (Datum) 0,
	};

	if (IsBinaryUpgrade)
		return;
	(void) launcher_bgw_start(&launcher, NULL);
}

/*
 * launcher_bgw_start
 *		Start background worker w: with handle, a worker of the launcher's
 *		(registered now, the launcher told of its exit; false when the
 *		postmaster has no free background worker slot), else one
 *		registered while the library is preloaded.  Every asyncmig process
 *		connects to a database (or to none) and starts once recovery is
 *		over.
 */
static bool
launcher_bgw_start(const AmBackgroundWorker *w,
				   BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = w->restart_time;
	strlcpy(worker.bgw_library_name, "asyncmig", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, w->function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, w->name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, w->type, BGW_MAXLEN);
	worker.bgw_main_arg = w->main_arg;
	memcpy(worker.bgw_extra, &w->generation, sizeof(w->generation));
	if (handle == NULL)
	{
		RegisterBackgroundWorker(&worker);
		return true;
	}
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/*
 * asyncmig_launcher_main
 *		Entry point of the launcher.
 */
void
asyncmig_launcher_main(Datum main_arg)
{
	pid_t		other;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* no database: we read only the shared catalog pg_database */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("asyncmig launcher");

	if (!am_shmem_launcher_attach(&other))
	{
		ereport(LOG,
				(errmsg("asyncmig launcher already running as process %d, exiting",
						(int) other)));
		proc_exit(0);
	}

	worker_handles = MemoryContextAllocZero(TopMemoryContext,
											sizeof(BackgroundWorkerHandle *) *
											am_shmem_nslots());
	worker_from_scan = MemoryContextAllocZero(TopMemoryContext,
											  sizeof(bool) * am_shmem_nslots());

	ereport(LOG, (errmsg("asyncmig launcher started")));
	(void) am_settings_check_worker_processes(WARNING);

	for (;;)
	{
		long		timeout_ms = -1;
		bool		busy;

		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			int			old_dependency_timeout = am_settings_dependency_timeout;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			launcher_dependency_timeout_changed(old_dependency_timeout);
		}

		elog(DEBUG1, "asyncmig launcher woken");
		busy = launcher_reap_workers();
		if (am_settings_enabled)
		{
			if (!started_up)
				launcher_start_up();
			if (am_registry_scan_requested())
				launcher_scan_begin(false);
			busy |= launcher_start_workers(&timeout_ms);
			launcher_scan_check_done();
			/* a registry file that could not be written: try again soon */
			if (am_registry_retry() &&
				(timeout_ms < 0 || timeout_ms > AM_REGISTRY_RETRY_MS))
				timeout_ms = AM_REGISTRY_RETRY_MS;
		}
		launcher_successors(am_settings_enabled);

		/*
		 * While workers run we are woken by the postmaster when one exits
		 * (bgw_notify_pid); a one-second timeout also covers workers that a
		 * previous launcher started.  Idle, we sleep until woken or until
		 * the earliest wake-up time.
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
 * launcher_start_up
 *		Look at the databases that have work: those of the registry file,
 *		or, if it is not valid for this cluster and timeline, every
 *		database once.  Done once per launcher, when it first may start
 *		workers (asyncmig.enabled); a restarted launcher gets the
 *		registered databases from shared memory.
 */
static void
launcher_start_up(void)
{
	int			registered;

	started_up = true;
	registered = launcher_look_at_registered(true);
	if (registered >= 0)
		ereport(LOG,
				(errmsg("asyncmig launcher: %d database(s) with work in the registry",
						registered)));
}

/*
 * launcher_look_at_registered
 *		Ask for every database of the registry to be looked at, and return
 *		how many it has; without a valid registry, begin a scan of every
 *		database instead (see launcher_scan_begin() for
 *		completes_registry) and return -1.
 */
static int
launcher_look_at_registered(bool completes_registry)
{
	List	   *dboids;
	ListCell   *lc;
	int			n;

	if (!am_registry_load(&dboids))
	{
		launcher_scan_begin(completes_registry);
		return -1;
	}
	foreach(lc, dboids)
		am_registry_request(lfirst_oid(lc), 0);
	n = list_length(dboids);
	list_free(dboids);
	return n;
}

/*
 * launcher_dependency_timeout_changed
 *		A reload made asyncmig.dependency_timeout shorter, or turned it on:
 *		queued runs may now have waited long enough for an idle dependency,
 *		sooner than the wake-up times the workers left.  Look at every
 *		database with work (queued runs keep their database registered), or,
 *		without a complete registry, at every database once.  A longer
 *		timeout needs nothing: a worker that comes too early leaves the new
 *		deadline.
 */
static void
launcher_dependency_timeout_changed(int old_timeout)
{
	int			new_timeout = am_settings_dependency_timeout;

	if (new_timeout <= 0 || (old_timeout > 0 && new_timeout >= old_timeout))
		return;
	if (!started_up)
		return;					/* the start-up looks at them anyway */
	(void) launcher_look_at_registered(false);
}

/*
 * launcher_scan_begin
 *		Begin looking at every database that accepts connections and is
 *		not a template, at most max_workers at a time, each once.  With
 *		completes_registry, the registry is complete when the scan is over
 *		(it is the start-up's scan).  Asked for while a scan runs, another
 *		one follows it: a request that did not fit may be for a database
 *		the running scan has passed.
 */
static void
launcher_scan_begin(bool completes_registry)
{
	MemoryContext oldcxt;

	scan_completes_registry |= completes_registry;
	if (scan_active)
	{
		scan_again = true;
		return;
	}

	list_free(scan_list);
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	scan_list = am_databases_read(InvalidOid, NULL, NULL);
	MemoryContextSwitchTo(oldcxt);

	scan_pos = 0;
	scan_active = true;
	ereport(LOG,
			(errmsg("asyncmig launcher: looking at every database once (%d)",
					list_length(scan_list))));
}

/*
 * launcher_scan_next
 *		The next database of the scan that has no worker now (one that has
 *		one was looked at by it), or false when the scan has none left.
 *		Caller holds the lock.
 */
static bool
launcher_scan_next(Oid *dboid)
{
	while (scan_active && scan_pos < list_length(scan_list))
	{
		Oid			oid = list_nth_oid(scan_list, scan_pos++);

		if (!am_shmem_database_busy(oid))
		{
			*dboid = oid;
			return true;
		}
	}
	return false;
}

/*
 * launcher_scan_check_done
 *		The scan is over when its list is through and its last worker has
 *		exited (a worker registers its database when it finds work there):
 *		then the registry is complete, if that was the scan's purpose.
 */
static void
launcher_scan_check_done(void)
{
	int			i;

	if (!scan_active || scan_pos < list_length(scan_list))
		return;
	for (i = 0; i < am_shmem_nslots(); i++)
		if (worker_from_scan[i])
			return;

	scan_active = false;
	ereport(LOG,
			(errmsg("asyncmig: looked at all %d databases",
					list_length(scan_list))));
	if (scan_completes_registry)
	{
		am_registry_scan_done();
		scan_completes_registry = false;
	}
	if (scan_again)
	{
		scan_again = false;
		launcher_scan_begin(false);
	}
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
	AmWorkerSlot *slot = am_shmem_slot(slotno);
	pid_t		pid;

	if (worker_handles[slotno] != NULL)
		return GetBackgroundWorkerPid(worker_handles[slotno], &pid) == BGWH_STOPPED;
	return slot->pid == 0 || kill(slot->pid, 0) != 0;
}

/*
 * launcher_reap_workers
 *		Free the slots of workers that have exited and act on what they
 *		reported.  A worker that ran a migration, or died inside one, gets
 *		its database looked at again (the next worker sweeps a dead run);
 *		one that ran a migration as soon as its run's end is committed
 *		(ended), while it is still exiting: a process's exit takes as long
 *		as the next one's start, and a database's queue drains one worker
 *		after the other.  Returns true if some worker is still running.
 */
static bool
launcher_reap_workers(void)
{
	bool		busy = false;
	bool		ended = false;
	int			i;
	List	   *failed = NIL;
	ListCell   *lc;

	am_shmem_lock(LW_EXCLUSIVE);
	for (i = 0; i < am_shmem_nslots(); i++)
	{
		AmWorkerSlot *slot = am_shmem_slot(i);
		Oid			dboid;
		AmWorkerResult result;
		TimestampTz wake = -1;

		if (!slot->in_use)
			continue;
		if (!launcher_worker_stopped(i))
		{
			busy = true;
			if (slot->ended && slot->result == AM_RESULT_RAN && !slot->handed_over)
			{
				slot->handed_over = true;
				am_registry_request(slot->dboid, 0);
			}
			continue;
		}

		dboid = slot->dboid;
		result = slot->result;
		if (AM_SLOT_WAITS(slot))
			;					/* a successor never released: nothing ran */
		else if (result == AM_RESULT_RAN && !slot->handed_over)
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
			am_obituary_add(slot->dboid, slot->migration_id, slot->pid,
							slot->last_fatal);
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

		am_shmem_slot_release(i);
		worker_from_scan[i] = false;
		if (worker_handles[i])
		{
			pfree(worker_handles[i]);
			worker_handles[i] = NULL;
		}
		ended = true;

		if (wake >= 0)
			am_registry_request(dboid, wake);
	}
	am_shmem_unlock();

	if (ended)
		am_shmem_status_broadcast();

	foreach(lc, failed)
	{
		Oid			dboid = lfirst_oid(lc);
		bool		exists;

		list_free(am_databases_read(dboid, &exists, NULL));
		if (exists)
			am_shmem_request_database(dboid,
									  TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																  AM_RETRY_FAILED_MS));
		else
			am_registry_forget(dboid);
	}
	list_free(failed);

	return busy;
}

/*
 * launcher_start_workers
 *		While a slot is free: start a worker for the pending database that
 *		is due, has no worker and was asked for first, or else for the next
 *		database of a running scan.  Sets *timeout_ms to the time until the
 *		next pending one is due (-1: none).  Returns true if it started a
 *		worker.
 */
static bool
launcher_start_workers(long *timeout_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	bool		started = false;

	for (;;)
	{
		int			slotno;
		Oid			dboid = InvalidOid;
		bool		from_scan = false;
		bool		ok;
		bool		exiting;
		bool		may_run;
		bool		servable;
		int			successor;

		am_shmem_lock(LW_EXCLUSIVE);
		slotno = am_shmem_free_slot(am_settings_max_workers, &may_run);
		if (!may_run)
		{
			am_shmem_unlock();
			break;				/* max_workers run: wait for an end */
		}

		/*
		 * With every slot taken (by workers that exit), only a database
		 * whose successor waits can have its turn now: releasing it takes no
		 * slot.  The others keep their place in the queue.
		 */
		if (!am_registry_take(now, slotno >= 0 ? am_shmem_database_busy :
							  am_shmem_database_unreleasable, &dboid, &next) &&
			slotno >= 0)
			from_scan = launcher_scan_next(&dboid);
		am_shmem_unlock();
		if (!OidIsValid(dboid))
			break;

		/* slots are only given out here: slotno is still free */
		servable = am_databases_servable(dboid);
		am_shmem_lock(LW_EXCLUSIVE);
		successor = am_shmem_successor_of(dboid);
		if (successor >= 0)
		{
			/* its successor, started early, is its worker now */
			am_shmem_successor_decide(successor, servable);
			worker_from_scan[successor] = from_scan && servable;
			am_shmem_unlock();
			if (servable)
				elog(DEBUG1, "asyncmig launcher: successor for database %u released", dboid);
			started |= servable;
			continue;
		}
		am_shmem_unlock();
		if (!servable)
			continue;
		am_shmem_lock(LW_EXCLUSIVE);
		ok = launcher_start_worker(slotno, dboid, false);
		exiting = !ok && am_shmem_make_way();
		am_shmem_set_no_bgworker_slot(!ok && !exiting);
		am_shmem_unlock();
		if (exiting)
		{
			/*
			 * The postmaster's background worker slots are full, but a
			 * worker that ended its run, or a successor just dismissed,
			 * still holds one: its exit wakes us (bgw_notify_pid), and we
			 * start this one then.
			 */
			if (from_scan)
				scan_pos--;
			else
				am_registry_request(dboid, 0);
			break;
		}
		if (!ok)
		{
			/* out of background worker slots: again in a second */
			launcher_log_no_slot(dboid);
			if (from_scan)
				scan_pos--;
			else
				am_registry_request(dboid,
									TimestampTzPlusMilliseconds(now, AM_RETRY_NO_SLOT_MS));
			next = TimestampTzPlusMilliseconds(now, AM_RETRY_NO_SLOT_MS);
			break;
		}
		worker_from_scan[slotno] = from_scan;
		started = true;
	}

	if (next != 0)
	{
		long		ms = TimestampDifferenceMilliseconds(now, next);

		*timeout_ms = Max(ms, 1);
	}
	return started;
}

/*
 * launcher_successors
 *		Dismiss the successors whose database's turn went to another one
 *		(or that asyncmig.enabled off leaves unused): a successor waits only
 *		while its database's worker runs.  Then, enabled, start a successor
 *		for each running worker that has claimed its migration or is itself
 *		a released successor (a queue drains: the next one starts as early
 *		as it can), once per worker, while no other database waits for a
 *		worker (the registry has none due without a worker, no scan is
 *		under way, the last start of a worker found a background worker
 *		slot): a successor must never take a turn that is another
 *		database's.  A successor is only a head start: with no free slot
 *		it is not started, and with no free background worker slot nothing
 *		is logged or retried.
 */
static void
launcher_successors(bool enabled)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	bool		starved = am_shmem_no_bgworker_slot();
	bool		others_wait;
	int			i;

	am_shmem_lock(LW_EXCLUSIVE);
	am_shmem_dismiss_successors(enabled);
	others_wait = !enabled || starved ||
		am_registry_take(now, am_shmem_database_busy, NULL, &next) ||
		(scan_active && scan_pos < list_length(scan_list));
	for (i = 0; i < am_shmem_nslots() && !others_wait; i++)
	{
		AmWorkerSlot *slot = am_shmem_slot(i);
		int			free_slot;

		if (!slot->in_use || slot->handed_over || slot->ended ||
			AM_SLOT_WAITS(slot) || slot->successor_started ||
			(slot->migration_id == 0 && !slot->successor))
			continue;
		free_slot = am_shmem_free_slot(am_shmem_nslots(), NULL);
		if (free_slot < 0)
			break;				/* after an exit, the next wake-up */
		slot->successor_started = true;
		(void) launcher_start_worker(free_slot, slot->dboid, true);
	}
	am_shmem_unlock();
}

/*
 * launcher_start_worker
 *		Register a worker (or a successor, see launcher_successors()) for
 *		dboid in slot slotno.  Caller holds the lock exclusively.  Returns
 *		false when the postmaster has no free background worker slot.
 */
static bool
launcher_start_worker(int slotno, Oid dboid, bool successor)
{
	char		name[BGW_MAXLEN];
	AmBackgroundWorker worker = {
		.function = "asyncmig_worker_main",
		.name = name,
		.type = "asyncmig worker",
		.restart_time = BGW_NEVER_RESTART,
		.main_arg = Int32GetDatum(slotno),
	};
	BackgroundWorkerHandle *handle;

	snprintf(name, sizeof(name), "asyncmig worker for database %u", dboid);
	worker.generation = am_shmem_slot_reserve(slotno, dboid, successor);
	if (!launcher_bgw_start(&worker, &handle))
	{
		am_shmem_slot_release(slotno);
		return false;
	}
	worker_handles[slotno] = handle;
	elog(DEBUG1, "asyncmig launcher: %s for database %u registered",
		 successor ? "successor" : "worker", dboid);
	return true;
}

/*
 * launcher_log_no_slot
 *		Say that no background worker slot was free, at most once a minute
 *		(the launcher tries again every second), with how often since.
 */
static void
launcher_log_no_slot(Oid dboid)
{
	TimestampTz now = GetCurrentTimestamp();

	if (no_slot_logged_at != 0 &&
		!TimestampDifferenceExceeds(no_slot_logged_at, now, AM_LOG_NO_SLOT_MS))
	{
		no_slot_suppressed++;
		return;
	}
	ereport(WARNING,
			(errmsg("asyncmig could not start a worker for database %u: no free background worker slot",
					dboid),
			 no_slot_suppressed > 0 ?
			 errdetail("It failed %d more times since the last message; it is tried again every second.",
					   no_slot_suppressed) :
			 errdetail("It is tried again every second; this message is repeated at most once a minute."),
			 errhint("Raise max_worker_processes to at least %d (asyncmig.max_workers, the asyncmig launcher, the logical replication launcher, plus the workers of other extensions and parallel queries) and restart the server.",
					 am_settings_worker_processes_needed())));
	no_slot_logged_at = now;
	no_slot_suppressed = 0;
}
