/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		asyncmig's shared memory: the state that the launcher, the workers
 *		and the SQL-callable functions use to talk to each other, the
 *		requests for a database to be looked at, and a worker's own slot.
 *
 * Only a server that preloads asyncmig has it; elsewhere am_shmem_state is
 * NULL and every function here is a no-op.  Nothing in it is durable: the
 * table is the only truth.  The requests for a database to be looked at
 * live in src/registry.c (a shared hash, and the registry file that says
 * which databases to look at after a restart).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "asyncmig.h"
#include "compat.h"
#include "registry.h"
#include "settings.h"
#include "shmem.h"

/* shared state, NULL unless preloaded */
AmShared   *am_shmem_state = NULL;

/* true in every process of a server that preloaded asyncmig */
bool		am_shmem_preloaded = false;

/* this worker's slot, NULL outside a worker */
static AmWorkerSlot *am_my_slot = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size am_shmem_size(void);
static void am_shmem_request(void);
static void am_shmem_startup(void);

/*
 * am_shmem_init
 *		While preloading (from _PG_init): reserve shared memory when the
 *		postmaster asks for it (PostgreSQL 15 and later), or at once (13
 *		and 14; see compat.h).
 */
void
am_shmem_init(void)
{
	am_shmem_preloaded = true;

	/* after am_settings_define(): the size depends on max_workers */
	am_compat_shmem_request(am_shmem_request, &prev_shmem_request_hook);
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = am_shmem_startup;
}

/*
 * am_shmem_size
 *		Bytes of shared memory for AmShared with its slots: two per worker
 *		(one for a worker that is exiting, see shmem.h).
 */
static Size
am_shmem_size(void)
{
	return add_size(offsetof(AmShared, slots),
					mul_size(mul_size(am_settings_max_workers, 2),
							 sizeof(AmWorkerSlot)));
}

/*
 * am_shmem_request
 *		Reserve our shared memory and LWLock (PostgreSQL 15's request hook).
 */
static void
am_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(am_shmem_size());
	RequestNamedLWLockTranche("asyncmig", 1);
	am_registry_shmem_request();
}

/*
 * am_shmem_startup
 *		Create or attach to AmShared and the registry's state.  After a
 *		crash-restart they are created anew.
 */
static void
am_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	am_shmem_state = ShmemInitStruct("asyncmig", am_shmem_size(), &found);
	if (!found)
	{
		memset(am_shmem_state, 0, am_shmem_size());
		am_shmem_state->lock = &(GetNamedLWLockTranche("asyncmig"))->lock;
		am_shmem_state->nslots = am_settings_max_workers * 2;
		ConditionVariableInit(&am_shmem_state->status_cv);
	}
	am_registry_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * am_shmem_request_database
 *		Tell the launcher that database dboid may have runnable work from
 *		wake_at on (0: now).  Caller holds no lock; the launcher is woken.
 */
void
am_shmem_request_database(Oid dboid, TimestampTz wake_at)
{
	if (am_shmem_state == NULL)
		return;

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	am_shmem_add_pending(dboid, wake_at);
	LWLockRelease(am_shmem_state->lock);

	am_shmem_wake_launcher();
}

/*
 * am_shmem_add_pending
 *		Remember that dboid may have work from wake_at on (an earlier time
 *		wins); src/registry.c keeps it, and never loses it.  The caller may
 *		hold am_shmem_state->lock and wakes the launcher.
 */
void
am_shmem_add_pending(Oid dboid, TimestampTz wake_at)
{
	am_registry_request(dboid, wake_at);
}

/*
 * am_shmem_wake_launcher
 *		Set the launcher's latch, if there is a launcher.
 */
void
am_shmem_wake_launcher(void)
{
	Latch	   *latch = NULL;

	if (am_shmem_state == NULL)
		return;

	LWLockAcquire(am_shmem_state->lock, LW_SHARED);
	latch = am_shmem_state->launcher_latch;
	if (latch)
		SetLatch(latch);
	LWLockRelease(am_shmem_state->lock);
}

/*
 * am_shmem_attach_slot
 *		A worker takes slot slotno, which the launcher filled for it, and
 *		returns it; NULL if a launcher that died after starting the worker
 *		gave the slot away (the worker must then exit).
 */
AmWorkerSlot *
am_shmem_attach_slot(int slotno)
{
	AmWorkerSlot *slot = &am_shmem_state->slots[slotno];

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	if (!slot->in_use || slot->pid != 0)
	{
		LWLockRelease(am_shmem_state->lock);
		return NULL;
	}
	slot->pid = MyProcPid;
	LWLockRelease(am_shmem_state->lock);
	am_my_slot = slot;
	return slot;
}

/*
 * am_shmem_cancel_requested
 *		Has asyncmig.cancel() asked this worker to stop?
 */
bool
am_shmem_cancel_requested(void)
{
	bool		result;

	if (am_my_slot == NULL)
		return false;
	LWLockAcquire(am_shmem_state->lock, LW_SHARED);
	result = am_my_slot->cancel_requested;
	LWLockRelease(am_shmem_state->lock);
	return result;
}
