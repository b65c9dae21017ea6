/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		asyncmig's shared memory: the state that the launcher, the workers
 *		and the SQL-callable functions use to talk to each other, and a
 *		worker's own slot (what is known of dead workers is in
 *		src/obituary.c).  The state is private to this file; the others
 *		use the functions below (as PostgreSQL's logical replication
 *		launcher keeps LogicalRepCtx to itself).
 *
 * Only a server that preloads asyncmig has it; elsewhere the state is NULL
 * and every function here that may run there is a no-op.  Nothing in it is
 * durable: the table is the only truth.  The requests for a database to be
 * looked at live in src/registry.c (a shared hash, and the registry file
 * that says which databases to look at after a restart).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"

#include "asyncmig.h"
#include "compat.h"
#include "obituary.h"
#include "registry.h"
#include "settings.h"
#include "shmem.h"

typedef struct AmShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		no_bgworker_slot;	/* the last worker start found none */
	ConditionVariable status_cv;	/* broadcast when a status changed */
	int			nslots;
	AmWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} AmShared;

/*
 * A running worker, its successor, and three that are exiting (a process's
 * exit takes about as long as a short migration's run; see shmem.h).  With
 * every slot taken, a successor whose turn comes is dismissed and the next
 * worker started when a slot is free: slower, never wrong.
 */
#define AM_SLOTS_PER_WORKER		5

/* shared state, NULL unless preloaded */
static AmShared *am_shmem_state = NULL;

/* true in every process of a server that preloaded asyncmig */
bool		am_shmem_preloaded = false;

/* this worker's slot, NULL outside a worker */
static AmWorkerSlot *am_my_slot = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size am_shmem_size(void);
static void am_shmem_request(void);
static void am_shmem_startup(void);
static void am_shmem_launcher_detach(int code, Datum arg);

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
 *		Bytes of shared memory for AmShared with its slots:
 *		AM_SLOTS_PER_WORKER per worker.
 */
static Size
am_shmem_size(void)
{
	return add_size(offsetof(AmShared, slots),
					mul_size(mul_size(am_settings_max_workers, AM_SLOTS_PER_WORKER),
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
	am_obituary_shmem_request();
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
		am_shmem_state->nslots = am_settings_max_workers * AM_SLOTS_PER_WORKER;
		ConditionVariableInit(&am_shmem_state->status_cv);
	}
	am_registry_shmem_startup();
	am_obituary_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * am_shmem_lock
 *		Take the lock of the worker slots and the launcher's fields; see
 *		shmem.h for who takes it.  The registry's lock is taken after it
 *		when both are needed.
 */
void
am_shmem_lock(LWLockMode mode)
{
	LWLockAcquire(am_shmem_state->lock, mode);
}

/*
 * am_shmem_unlock
 *		Release the lock of am_shmem_lock().
 */
void
am_shmem_unlock(void)
{
	LWLockRelease(am_shmem_state->lock);
}

/*
 * am_shmem_request_database
 *		Tell the launcher that database dboid may have runnable work from
 *		wake_at on (0: now; src/registry.c keeps it, and never loses it),
 *		and wake it.  Caller holds no lock.
 */
void
am_shmem_request_database(Oid dboid, TimestampTz wake_at)
{
	if (am_shmem_state == NULL)
		return;

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	am_registry_request(dboid, wake_at);
	LWLockRelease(am_shmem_state->lock);

	am_shmem_wake_launcher();
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
 * am_shmem_status_broadcast
 *		Say that a migration's status changed: wake every wait() that
 *		sleeps in am_shmem_status_sleep().
 */
void
am_shmem_status_broadcast(void)
{
	if (am_shmem_state != NULL)
		ConditionVariableBroadcast(&am_shmem_state->status_cv);
}

/*
 * am_shmem_status_prepare
 *		Before looking at the statuses: a broadcast from then on ends the
 *		next am_shmem_status_sleep() at once.
 */
void
am_shmem_status_prepare(void)
{
	if (am_shmem_state != NULL)
		ConditionVariablePrepareToSleep(&am_shmem_state->status_cv);
}

/*
 * am_shmem_status_sleep
 *		Sleep until a status changed or ms milliseconds passed.  Without
 *		shared memory (asyncmig not preloaded) nobody broadcasts: it sleeps
 *		the time on the latch.
 */
void
am_shmem_status_sleep(long ms)
{
	if (am_shmem_state != NULL)
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
 * am_shmem_status_done
 *		The caller sleeps no more on a status change.
 */
void
am_shmem_status_done(void)
{
	if (am_shmem_state != NULL)
		ConditionVariableCancelSleep();
}

/*
 * am_shmem_find_run
 *		The slot of a live worker, not the caller's, that runs migration_id
 *		in database dboid, by worker pid (0: any), or NULL.  Caller holds
 *		the lock.  The launcher frees a slot only after its worker exited;
 *		a worker notes its migration in its slot before its claim commits,
 *		so a run seen IN PROGRESS without one has none.
 */
static AmWorkerSlot *
am_shmem_find_run(Oid dboid, int64 migration_id, pid_t pid)
{
	int			i;

	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (slot != am_my_slot && slot->in_use && slot->dboid == dboid &&
			slot->migration_id == migration_id &&
			(pid == 0 || slot->pid == pid) &&
			slot->pid != 0 && kill(slot->pid, 0) == 0)
			return slot;
	}
	return NULL;
}

/*
 * am_shmem_run_has_worker
 *		Does a live worker, other than the caller, run migration_id in
 *		database dboid (its run's worker pid, or 0: any)?  Without shared
 *		memory there is no worker at all.
 */
bool
am_shmem_run_has_worker(Oid dboid, int64 migration_id, pid_t pid)
{
	bool		result;

	if (am_shmem_state == NULL)
		return false;
	LWLockAcquire(am_shmem_state->lock, LW_SHARED);
	result = am_shmem_find_run(dboid, migration_id, pid) != NULL;
	LWLockRelease(am_shmem_state->lock);
	return result;
}

/*
 * am_shmem_cancel_run
 *		Ask the worker of the run (migration_id in dboid, worker pid) to
 *		stop: flag its slot and send it SIGINT, as pg_cancel_backend()
 *		would.  Only the worker of that run: an id alone may name a run of
 *		a table dropped and created again.
 */
void
am_shmem_cancel_run(Oid dboid, int64 migration_id, pid_t pid)
{
	pid_t		target = 0;
	int			i;

	if (am_shmem_state == NULL)
		return;
	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (slot->in_use && slot->dboid == dboid &&
			slot->migration_id == migration_id && slot->pid == pid)
		{
			slot->cancel_requested = true;
			target = slot->pid;
		}
	}
	LWLockRelease(am_shmem_state->lock);
	if (target != 0)
		kill(target, SIGINT);
}

/*
 * am_shmem_no_bgworker_slot
 *		Did the launcher's last try to start a worker find no free
 *		background worker slot?
 */
bool
am_shmem_no_bgworker_slot(void)
{
	bool		result = false;

	if (am_shmem_state != NULL)
	{
		LWLockAcquire(am_shmem_state->lock, LW_SHARED);
		result = am_shmem_state->no_bgworker_slot;
		LWLockRelease(am_shmem_state->lock);
	}
	return result;
}

/*
 * am_shmem_database_waits_for_slot
 *		Did the launcher's last try find no free background worker slot,
 *		while no worker runs in dboid?
 */
bool
am_shmem_database_waits_for_slot(Oid dboid)
{
	bool		waiting = false;
	int			i;

	if (am_shmem_state == NULL)
		return false;
	LWLockAcquire(am_shmem_state->lock, LW_SHARED);
	if (am_shmem_state->no_bgworker_slot)
	{
		waiting = true;
		for (i = 0; i < am_shmem_state->nslots; i++)
			if (am_shmem_state->slots[i].in_use &&
				!AM_SLOT_WAITS(&am_shmem_state->slots[i]) &&
				am_shmem_state->slots[i].dboid == dboid)
				waiting = false;
	}
	LWLockRelease(am_shmem_state->lock);
	return waiting;
}

/*
 * am_shmem_launcher_attach
 *		The launcher makes itself known (its pid, its latch), unless another
 *		one runs: then false, with its pid in *other.  It is forgotten when
 *		it exits.
 */
bool
am_shmem_launcher_attach(pid_t *other)
{
	int			i;

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	*other = am_shmem_state->launcher_pid;
	if (*other != 0)
	{
		LWLockRelease(am_shmem_state->lock);
		return false;
	}
	am_shmem_state->launcher_pid = MyProcPid;
	am_shmem_state->launcher_latch = MyLatch;
	/* what an earlier launcher handed over, this one has not */
	for (i = 0; i < am_shmem_state->nslots; i++)
		am_shmem_state->slots[i].handed_over = false;
	LWLockRelease(am_shmem_state->lock);
	before_shmem_exit(am_shmem_launcher_detach, (Datum) 0);
	return true;
}

/*
 * am_shmem_launcher_detach
 *		Forget the launcher in shared memory when it exits.
 */
static void
am_shmem_launcher_detach(int code, Datum arg)
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
 * am_shmem_nslots
 *		How many worker slots there are (AM_SLOTS_PER_WORKER per
 *		asyncmig.max_workers).
 */
int
am_shmem_nslots(void)
{
	return am_shmem_state->nslots;
}

/*
 * am_shmem_slot
 *		Worker slot slotno, for the launcher.  Caller holds the lock.
 */
AmWorkerSlot *
am_shmem_slot(int slotno)
{
	Assert(slotno >= 0 && slotno < am_shmem_state->nslots);
	return &am_shmem_state->slots[slotno];
}

/*
 * am_shmem_database_busy
 *		Is a worker running in dboid (one that is only exiting, handed
 *		over, or a successor that waits, does not count)?  Caller holds the
 *		lock.
 */
bool
am_shmem_database_busy(Oid dboid)
{
	int			i;

	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (slot->in_use && !slot->handed_over && !AM_SLOT_WAITS(slot) &&
			slot->dboid == dboid)
			return true;
	}
	return false;
}

/*
 * am_shmem_free_slot
 *		A free slot for one more worker, or -1 when max_running workers run
 *		(those only exiting and successors that wait do not count) or every
 *		slot is taken; *may_run (unless NULL) says whether fewer than
 *		max_running run.  Caller holds the lock.
 */
int
am_shmem_free_slot(int max_running, bool *may_run)
{
	int			running = 0;
	int			free_slot = -1;
	int			i;

	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (!slot->in_use)
		{
			if (free_slot < 0)
				free_slot = i;
		}
		else if (!slot->handed_over && !AM_SLOT_WAITS(slot))
			running++;
	}
	if (may_run)
		*may_run = running < max_running;
	return running < max_running ? free_slot : -1;
}

/*
 * am_shmem_database_unreleasable
 *		Is dboid busy (am_shmem_database_busy()), or without a successor
 *		that waits?  The databases the launcher may not give a turn to when
 *		every slot is taken.  Caller holds the lock.
 */
bool
am_shmem_database_unreleasable(Oid dboid)
{
	return am_shmem_database_busy(dboid) || am_shmem_successor_of(dboid) < 0;
}

/*
 * am_shmem_dismiss_successors
 *		Dismiss the successors that wait: all of them, or with idle_only
 *		those whose database has no running worker any more (its turn went
 *		to another database).  Caller holds the lock exclusively.
 */
void
am_shmem_dismiss_successors(bool idle_only)
{
	int			i;

	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (slot->in_use && AM_SLOT_WAITS(slot) && !slot->dismissed &&
			(!idle_only || !am_shmem_database_busy(slot->dboid)))
			am_shmem_successor_decide(i, false);
	}
}

/*
 * am_shmem_make_way
 *		The launcher needed a background worker slot and found none: every
 *		successor that waits is dismissed (a successor is only a head start,
 *		and never keeps another database's worker from starting), and the
 *		result says whether a worker that runs nothing (one that ended its
 *		run, or a successor) will free a slot when it exits.  Caller holds
 *		the lock exclusively.
 */
bool
am_shmem_make_way(void)
{
	int			i;

	am_shmem_dismiss_successors(false);
	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (slot->in_use && (slot->handed_over || AM_SLOT_WAITS(slot)))
			return true;
	}
	return false;
}

/*
 * am_shmem_slot_reserve
 *		The launcher gives free slot slotno to a worker (or a successor) it
 *		starts for dboid, and passes the slot's new generation to it, so
 *		that a worker registered by a launcher that died before the worker
 *		attached cannot take the slot given out since.  Caller holds the
 *		lock exclusively.
 */
uint32
am_shmem_slot_reserve(int slotno, Oid dboid, bool successor)
{
	AmWorkerSlot *slot = am_shmem_slot(slotno);
	uint32		generation = slot->generation + 1;

	memset(slot, 0, sizeof(AmWorkerSlot));
	slot->generation = generation;
	slot->in_use = true;
	slot->dboid = dboid;
	slot->successor = successor;
	return generation;
}

/*
 * am_shmem_slot_release
 *		Slot slotno is free again: its worker exited, or never started.
 *		Caller holds the lock exclusively.
 */
void
am_shmem_slot_release(int slotno)
{
	AmWorkerSlot *slot = am_shmem_slot(slotno);
	uint32		generation = slot->generation;

	memset(slot, 0, sizeof(AmWorkerSlot));
	slot->generation = generation;
}

/*
 * am_shmem_successor_of
 *		The slot of dboid's successor that still waits (neither released nor
 *		dismissed), or -1.  Caller holds the lock.
 */
int
am_shmem_successor_of(Oid dboid)
{
	int			i;

	for (i = 0; i < am_shmem_state->nslots; i++)
	{
		AmWorkerSlot *slot = &am_shmem_state->slots[i];

		if (slot->in_use && AM_SLOT_WAITS(slot) && !slot->dismissed &&
			slot->dboid == dboid)
			return i;
	}
	return -1;
}

/*
 * am_shmem_successor_decide
 *		The launcher releases the successor of slot slotno (it is now its
 *		database's worker and goes on to claim) or dismisses it (it exits),
 *		and wakes it.  Caller holds the lock exclusively.
 */
void
am_shmem_successor_decide(int slotno, bool release)
{
	AmWorkerSlot *slot = am_shmem_slot(slotno);

	Assert(AM_SLOT_WAITS(slot) && !slot->dismissed);
	if (release)
		slot->released = true;
	else
		slot->dismissed = true;
	if (slot->latch)
		SetLatch(slot->latch);
}

/*
 * am_shmem_set_no_bgworker_slot
 *		Remember whether the launcher's last try to start a worker found
 *		no free background worker slot.  Caller holds the lock exclusively.
 */
void
am_shmem_set_no_bgworker_slot(bool none)
{
	am_shmem_state->no_bgworker_slot = none;
}

/*
 * am_shmem_attach_slot
 *		A worker takes slot slotno, which the launcher filled for it (the
 *		start of the given generation, see am_shmem_slot_reserve()), and
 *		learns its database (*dboid) and whether it is a successor that
 *		must wait (am_shmem_successor_wait()); false if a launcher that
 *		died after starting the worker gave the slot away, or if it is a
 *		successor dismissed before it started (the worker must then exit).
 */
bool
am_shmem_attach_slot(int slotno, uint32 generation, Oid *dboid,
					 bool *successor)
{
	AmWorkerSlot *slot = &am_shmem_state->slots[slotno];

	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	if (!slot->in_use || slot->generation != generation || slot->pid != 0 ||
		slot->dismissed)
	{
		LWLockRelease(am_shmem_state->lock);
		return false;
	}
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	*dboid = slot->dboid;
	*successor = AM_SLOT_WAITS(slot);
	LWLockRelease(am_shmem_state->lock);
	am_my_slot = slot;
	return true;
}

/*
 * am_shmem_successor_wait
 *		A successor waits, without a transaction, until the launcher
 *		releases it (true: it goes on as its database's worker) or
 *		dismisses it, or give_up passed (false: it exits).  Giving up is
 *		said in the slot under the lock, so that the launcher never
 *		releases a successor that is leaving.
 */
bool
am_shmem_successor_wait(TimestampTz give_up)
{
	for (;;)
	{
		bool		released;
		bool		done;
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														 give_up);

		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
		released = am_my_slot->released;
		if (!released && ms <= 0)
			am_my_slot->dismissed = true;
		done = released || am_my_slot->dismissed;
		LWLockRelease(am_shmem_state->lock);
		if (done)
			return released;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * am_shmem_worker_claimed
 *		This worker claimed migration_id: said before the claim commits, so
 *		that nobody sees the run IN PROGRESS without its worker.  The
 *		launcher is woken: it may start this database's next worker early
 *		(launcher.c, successors).
 */
void
am_shmem_worker_claimed(int64 migration_id)
{
	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	am_my_slot->migration_id = migration_id;
	if (am_shmem_state->launcher_latch)
		SetLatch(am_shmem_state->launcher_latch);
	LWLockRelease(am_shmem_state->lock);
}

/*
 * am_shmem_worker_note_error
 *		Keep the message of the last error this worker reported, for the
 *		obituary if it then dies.  Called from emit_log_hook: no lock (only
 *		this worker writes the field, the launcher reads it after the
 *		worker exited).
 */
void
am_shmem_worker_note_error(const char *message)
{
	if (am_my_slot != NULL)
		strlcpy(am_my_slot->last_fatal, message, AM_OBITUARY_LEN);
}

/*
 * am_shmem_worker_ended
 *		This worker's work is over (its run's end is committed): report
 *		result and wakeup to the launcher, wake it, so that the next worker
 *		starts while this one is still exiting, and say a status changed.
 */
void
am_shmem_worker_ended(AmWorkerResult result, TimestampTz wakeup)
{
	LWLockAcquire(am_shmem_state->lock, LW_EXCLUSIVE);
	am_my_slot->result = result;
	am_my_slot->next_wakeup = wakeup;
	am_my_slot->ended = true;
	if (am_shmem_state->launcher_latch)
		SetLatch(am_shmem_state->launcher_latch);
	LWLockRelease(am_shmem_state->lock);
	ConditionVariableBroadcast(&am_shmem_state->status_cv);
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
