/*-------------------------------------------------------------------------
 *
 * asyncmig.h
 *		Shared declarations of asyncmig: settings, the shared-memory state
 *		that the launcher, the workers and the SQL-callable functions use to
 *		talk to each other, and the entry points of each source file.
 *
 * asyncmig runs migrations (SQL texts recorded in asyncmig.migration) in
 * background workers.  The table is the only durable truth; shared memory
 * only says which databases may have work and which worker runs what, and
 * is rebuilt from the table after every restart.
 *
 * src/asyncmig.c	module load, settings, shared memory
 * src/launcher.c	the launcher: starts one worker per runnable database
 * src/worker.c		a worker: sweeps, claims and runs one migration
 * src/executor.c	runs SQL text statement by statement, top-level
 * src/catalog.c	reads and writes asyncmig.migration
 * src/functions.c	schedule(), run(), cancel(), wait()
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_H
#define ASYNCMIG_H

#include "postmaster/bgworker.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

/* status strings, exactly as stored in asyncmig.migration.status */
#define AM_STATUS_SCHEDULED		"SCHEDULED"
#define AM_STATUS_STARTED		"STARTED"
#define AM_STATUS_IN_PROGRESS	"IN PROGRESS"
#define AM_STATUS_FINISHED		"FINISHED"
#define AM_STATUS_ERROR			"ERROR"

/* longest migration name accepted, in bytes */
#define AM_MAX_NAME_LEN			1000

/* databases that may be waiting for a worker, remembered at once */
#define AM_MAX_PENDING_DBS		256

/* a worker that failed before claiming anything: look again after */
#define AM_RETRY_FAILED_MS		10000

/* exits of workers that left a migration behind, remembered at once */
#define AM_MAX_OBITUARIES		32
#define AM_OBITUARY_LEN			256

/* what a worker reports in its slot when it exits */
typedef enum AsyncmigWorkerResult
{
	AM_RESULT_NONE = 0,			/* exited before saying anything */
	AM_RESULT_RAN,				/* ran one migration (there may be more) */
	AM_RESULT_IDLE				/* nothing runnable in its database */
} AsyncmigWorkerResult;

/*
 * One slot per possible worker (asyncmig.max_workers).  The launcher fills
 * dboid (and keeps the worker's handle in its own memory); the worker sets
 * pid and migration_id; anyone may set cancel_requested.  All fields are
 * protected by AsyncmigShared->lock.  A slot stays in_use until the
 * launcher has seen its worker exit.
 */
typedef struct AsyncmigWorkerSlot
{
	bool		in_use;
	Oid			dboid;
	pid_t		pid;
	int64		migration_id;	/* 0 until the worker claimed one */
	bool		cancel_requested;
	AsyncmigWorkerResult result;
	TimestampTz next_wakeup;	/* with AM_RESULT_IDLE: 0 or not_before */
	char		last_fatal[AM_OBITUARY_LEN];	/* FATAL that ended it */
} AsyncmigWorkerSlot;

/* a database that may have runnable work, from wake_at on */
typedef struct AsyncmigPendingDb
{
	Oid			dboid;
	TimestampTz wake_at;
} AsyncmigPendingDb;

/* what the launcher knows of a worker that ended inside a migration */
typedef struct AsyncmigObituary
{
	Oid			dboid;
	int64		migration_id;
	pid_t		pid;
	char		message[AM_OBITUARY_LEN];
} AsyncmigObituary;

typedef struct AsyncmigShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan_all;		/* every database must be looked at */
	int			npending;
	AsyncmigPendingDb pending[AM_MAX_PENDING_DBS];
	int			nobituaries;
	AsyncmigObituary obituaries[AM_MAX_OBITUARIES];
	ConditionVariable status_cv;	/* broadcast when a migration ends */
	int			nslots;
	AsyncmigWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} AsyncmigShared;

/* settings (src/asyncmig.c) */
extern bool asyncmig_allow_scheduled;
extern int	asyncmig_max_workers;
extern int	asyncmig_max_attempts;
extern int	asyncmig_lock_timeout;
extern int	asyncmig_statement_timeout;

/* src/asyncmig.c */
extern AsyncmigShared *AsyncmigState;
extern bool asyncmig_preloaded;
extern void asyncmig_request_database(Oid dboid, TimestampTz wake_at);
extern void asyncmig_add_pending(Oid dboid, TimestampTz wake_at);
extern void asyncmig_wake_launcher(void);

/* src/launcher.c */
extern PGDLLEXPORT void asyncmig_launcher_main(Datum main_arg);
extern void asyncmig_register_launcher(void);

/* src/worker.c */
extern PGDLLEXPORT void asyncmig_worker_main(Datum main_arg);

#endif							/* ASYNCMIG_H */
