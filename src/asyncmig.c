/*-------------------------------------------------------------------------
 *
 * asyncmig.c
 *		Module load: settings, shared memory, and the launcher's
 *		registration.
 *
 * asyncmig must be in shared_preload_libraries for anything to run: only
 * then can it reserve shared memory and register its launcher.  Loaded
 * later (by a call of one of its functions), it still records migrations,
 * and schedule() warns that nothing will run them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "asyncmig.h"

PG_MODULE_MAGIC;

/* settings */
bool		asyncmig_allow_scheduled = false;
int			asyncmig_max_workers = 2;
int			asyncmig_max_attempts = 3;
int			asyncmig_lock_timeout = 5000;
int			asyncmig_statement_timeout = 0;

/* shared state, NULL unless preloaded */
AsyncmigShared *AsyncmigState = NULL;

/* true in every process of a server that preloaded asyncmig */
bool		asyncmig_preloaded = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);
static void asyncmig_define_settings(void);
static Size asyncmig_shmem_size(void);
static void asyncmig_shmem_request(void);
static void asyncmig_shmem_startup(void);

extern void asyncmig_functions_init(void);

/*
 * _PG_init
 *		Define the settings; when preloaded, reserve shared memory and
 *		register the launcher.
 */
void
_PG_init(void)
{
	asyncmig_define_settings();
	asyncmig_functions_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	asyncmig_preloaded = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = asyncmig_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = asyncmig_shmem_startup;

	asyncmig_register_launcher();
}

/*
 * asyncmig_define_settings
 *		The GUCs of SPEC.md.  lock_timeout and statement_timeout are SIGHUP
 *		so that an operator, not a migration's author or a role's settings,
 *		decides how long a worker's statements may wait or run.
 */
static void
asyncmig_define_settings(void)
{
	DefineCustomBoolVariable("asyncmig.allow_scheduled_migrations",
							 "Records new migrations as SCHEDULED instead of running them.",
							 "A scheduled migration runs when asyncmig.run() is called for it. "
							 "execute_immediately => true overrides this setting.",
							 &asyncmig_allow_scheduled,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* a PGC_POSTMASTER setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("asyncmig.max_workers",
								"Maximum number of migrations running at once, cluster-wide.",
								"One database runs its migrations one at a time.",
								&asyncmig_max_workers,
								2,
								1, 64,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.max_attempts",
							"Tries of a statement that failed on a lock timeout, deadlock or serialization failure.",
							NULL,
							&asyncmig_max_attempts,
							3,
							1, 100,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.lock_timeout",
							"lock_timeout of migration statements other than the CONCURRENTLY ones.",
							"0 turns it off.  A migration's own SET lock_timeout wins.",
							&asyncmig_lock_timeout,
							5000,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.statement_timeout",
							"statement_timeout of migration statements.",
							"0 turns it off.  It wins over role and database settings; "
							"a migration's own SET statement_timeout wins over it.",
							&asyncmig_statement_timeout,
							0,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("asyncmig");
}

/*
 * asyncmig_shmem_size
 *		Bytes of shared memory for AsyncmigShared with max_workers slots.
 */
static Size
asyncmig_shmem_size(void)
{
	return add_size(offsetof(AsyncmigShared, slots),
					mul_size(asyncmig_max_workers, sizeof(AsyncmigWorkerSlot)));
}

/*
 * asyncmig_shmem_request
 *		Reserve our shared memory and LWLock (PostgreSQL 15's request hook).
 */
static void
asyncmig_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(asyncmig_shmem_size());
	RequestNamedLWLockTranche("asyncmig", 1);
}

/*
 * asyncmig_shmem_startup
 *		Create or attach to AsyncmigShared.  After a crash-restart it is
 *		created anew: every database is then looked at again.
 */
static void
asyncmig_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	AsyncmigState = ShmemInitStruct("asyncmig", asyncmig_shmem_size(), &found);
	if (!found)
	{
		memset(AsyncmigState, 0, asyncmig_shmem_size());
		AsyncmigState->lock = &(GetNamedLWLockTranche("asyncmig"))->lock;
		AsyncmigState->rescan_all = true;
		AsyncmigState->nslots = asyncmig_max_workers;
		ConditionVariableInit(&AsyncmigState->status_cv);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * asyncmig_request_database
 *		Tell the launcher that database dboid may have runnable work from
 *		wake_at on (0: now).  Caller holds no lock; the launcher is woken.
 */
void
asyncmig_request_database(Oid dboid, TimestampTz wake_at)
{
	if (AsyncmigState == NULL)
		return;

	LWLockAcquire(AsyncmigState->lock, LW_EXCLUSIVE);
	asyncmig_add_pending(dboid, wake_at);
	LWLockRelease(AsyncmigState->lock);

	asyncmig_wake_launcher();
}

/*
 * asyncmig_add_pending
 *		Remember that dboid may have work from wake_at on (an earlier time
 *		wins).  When the list is full, every database will be looked at.
 *		Caller holds AsyncmigState->lock exclusively.
 */
void
asyncmig_add_pending(Oid dboid, TimestampTz wake_at)
{
	int			i;

	for (i = 0; i < AsyncmigState->npending; i++)
	{
		if (AsyncmigState->pending[i].dboid == dboid)
		{
			if (wake_at < AsyncmigState->pending[i].wake_at)
				AsyncmigState->pending[i].wake_at = wake_at;
			return;
		}
	}
	if (i < AM_MAX_PENDING_DBS)
	{
		AsyncmigState->pending[i].dboid = dboid;
		AsyncmigState->pending[i].wake_at = wake_at;
		AsyncmigState->npending++;
	}
	else
		AsyncmigState->rescan_all = true;
}

/*
 * asyncmig_wake_launcher
 *		Set the launcher's latch, if there is a launcher.
 */
void
asyncmig_wake_launcher(void)
{
	Latch	   *latch = NULL;

	if (AsyncmigState == NULL)
		return;

	LWLockAcquire(AsyncmigState->lock, LW_SHARED);
	latch = AsyncmigState->launcher_latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(AsyncmigState->lock);
}
