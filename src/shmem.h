/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		asyncmig's shared memory (src/shmem.c): which databases may have
 *		work, which worker runs what, and the condition variable that
 *		wait() sleeps on.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_SHMEM_H
#define ASYNCMIG_SHMEM_H

#include "obituary.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"


/* what a worker reports in its slot when it exits */
typedef enum AmWorkerResult
{
	AM_RESULT_NONE = 0,			/* exited before saying anything */
	AM_RESULT_RAN,				/* ran one migration (there may be more) */
	AM_RESULT_IDLE				/* nothing runnable in its database */
} AmWorkerResult;

/*
 * Five slots per possible worker (asyncmig.max_workers): one for a worker
 * that runs, one for its successor, a worker started early for the same
 * database that connects and then waits until the running one's end is
 * committed (released) or it is not needed (dismissed), and three for
 * workers that have ended their work (ended) and are only exiting (see
 * launcher.c).  The launcher fills dboid, successor, released, dismissed,
 * successor_started and handed_over (and keeps the worker's handle in its
 * own memory); the worker sets pid, latch, migration_id, result and
 * ended, and dismissed when it gives up waiting; asyncmig.cancel() sets
 * cancel_requested.  All fields are protected by the lock of
 * am_shmem_lock().  A slot stays in_use until the launcher has seen its
 * worker exit.  The rest of the shared state is private to shmem.c.
 */
typedef struct AmWorkerSlot
{
	uint32		generation;		/* counts the slot's starts: a worker attaches
								 * only to the start it was registered for */
	bool		in_use;
	Oid			dboid;
	pid_t		pid;
	Latch	   *latch;			/* the worker's, from when it attached */
	int64		migration_id;	/* 0 until the worker claimed one */
	bool		cancel_requested;
	AmWorkerResult result;
	bool		ended;			/* result is final: it only exits now */
	TimestampTz next_wakeup;	/* with AM_RESULT_IDLE: 0 or not_before */
	bool		handed_over;	/* the launcher asked for the next worker of
								 * its database: it counts neither against
								 * max_workers nor as its database's worker */
	bool		successor;		/* started early, see AM_SLOT_WAITS() */
	bool		released;		/* a successor that now is its database's
								 * worker */
	bool		dismissed;		/* a successor that exits unused */
	bool		successor_started;	/* the launcher started (or tried) a
									 * successor for this running worker */
	char		last_fatal[AM_OBITUARY_LEN];	/* FATAL that ended it */
} AmWorkerSlot;

/*
 * A successor not (yet) released: it runs nothing, counts neither against
 * max_workers nor as its database's worker, and exits unless released.
 */
#define AM_SLOT_WAITS(slot)	((slot)->successor && !(slot)->released)

extern bool am_shmem_preloaded;

extern void am_shmem_init(void);

/*
 * The lock that protects every slot and the launcher's fields.  Functions
 * that say "caller holds the lock" leave taking it to the caller, who may
 * need several of them at once (the launcher); the others take it.
 */
extern void am_shmem_lock(LWLockMode mode);
extern void am_shmem_unlock(void);

/* the launcher: wake it, or wake it for a database */
extern void am_shmem_wake_launcher(void);
extern void am_shmem_request_database(Oid dboid, TimestampTz wake_at);

/* "a status changed": wait() sleeps on it, the others broadcast it */
extern void am_shmem_status_broadcast(void);
extern void am_shmem_status_prepare(void);
extern void am_shmem_status_sleep(long ms);
extern void am_shmem_status_done(void);

/* SQL functions: the worker of a run, the launcher's last start */
extern bool am_shmem_run_has_worker(Oid dboid, int64 migration_id, pid_t pid);
extern void am_shmem_cancel_run(Oid dboid, int64 migration_id, pid_t pid);
extern bool am_shmem_no_bgworker_slot(void);
extern bool am_shmem_database_waits_for_slot(Oid dboid);

/* the launcher (caller holds the lock unless said otherwise) */
extern bool am_shmem_launcher_attach(pid_t *other);
extern int	am_shmem_nslots(void);
extern AmWorkerSlot *am_shmem_slot(int slotno);
extern bool am_shmem_database_busy(Oid dboid);
extern int	am_shmem_free_slot(int max_running, bool *may_run);
extern bool am_shmem_database_unreleasable(Oid dboid);
extern void am_shmem_dismiss_successors(bool idle_only);
extern bool am_shmem_make_way(void);
extern uint32 am_shmem_slot_reserve(int slotno, Oid dboid, bool successor);
extern void am_shmem_slot_release(int slotno);
extern int	am_shmem_successor_of(Oid dboid);
extern void am_shmem_successor_decide(int slotno, bool release);
extern void am_shmem_set_no_bgworker_slot(bool none);

/* a worker: its own slot */
extern bool am_shmem_attach_slot(int slotno, uint32 generation, Oid *dboid,
								 bool *successor);
extern bool am_shmem_successor_wait(TimestampTz give_up);
extern void am_shmem_worker_claimed(int64 migration_id);
extern void am_shmem_worker_note_error(const char *message);
extern void am_shmem_worker_ended(AmWorkerResult result, TimestampTz wakeup);
extern bool am_shmem_cancel_requested(void);

#endif							/* ASYNCMIG_SHMEM_H */
