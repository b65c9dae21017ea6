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

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

/* exits of workers that left a migration behind, remembered at once */
#define AM_MAX_OBITUARIES		32
#define AM_OBITUARY_LEN			256

/* what a worker reports in its slot when it exits */
typedef enum AmWorkerResult
{
	AM_RESULT_NONE = 0,			/* exited before saying anything */
	AM_RESULT_RAN,				/* ran one migration (there may be more) */
	AM_RESULT_IDLE				/* nothing runnable in its database */
} AmWorkerResult;

/*
 * Two slots per possible worker (asyncmig.max_workers): one for a worker
 * that runs, one for a worker that has ended its work (ended) and is
 * only exiting, so that the next worker of its database can start at once
 * (see launcher.c).  The launcher fills dboid (and keeps the worker's
 * handle in its own memory); the worker sets pid, migration_id, result
 * and ended; anyone may set cancel_requested.  All fields are protected
 * by AmShared->lock.  A slot stays in_use until the launcher has seen its
 * worker exit.
 */
typedef struct AmWorkerSlot
{
	bool		in_use;
	Oid			dboid;
	pid_t		pid;
	int64		migration_id;	/* 0 until the worker claimed one */
	bool		cancel_requested;
	AmWorkerResult result;
	bool		ended;			/* result is final: it only exits now */
	TimestampTz next_wakeup;	/* with AM_RESULT_IDLE: 0 or not_before */
	char		last_fatal[AM_OBITUARY_LEN];	/* FATAL that ended it */
} AmWorkerSlot;

/* what the launcher knows of a worker that ended inside a migration */
typedef struct AmObituary
{
	Oid			dboid;
	int64		migration_id;
	pid_t		pid;
	char		message[AM_OBITUARY_LEN];
} AmObituary;

typedef struct AmShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		no_bgworker_slot;	/* the last worker start found none */
	int			nobituaries;
	AmObituary obituaries[AM_MAX_OBITUARIES];
	ConditionVariable status_cv;	/* broadcast when a migration ends */
	int			nslots;
	AmWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} AmShared;

extern AmShared *am_shmem_state;
extern bool am_shmem_preloaded;

extern void am_shmem_init(void);
extern void am_shmem_request_database(Oid dboid, TimestampTz wake_at);
extern void am_shmem_add_pending(Oid dboid, TimestampTz wake_at);
extern void am_shmem_wake_launcher(void);

/* for a worker */
extern AmWorkerSlot *am_shmem_attach_slot(int slotno);
extern bool am_shmem_cancel_requested(void);

#endif							/* ASYNCMIG_SHMEM_H */
