/*-------------------------------------------------------------------------
 *
 * asyncmig.h
 *		The map of asyncmig's C files and the rules of their names.
 *
 * asyncmig runs migrations (SQL texts recorded in asyncmig.migration) in
 * background workers.  The table is the only durable truth; shared memory
 * only says which databases may have work and which worker runs what, and
 * the registry file only which databases to look at after a restart.
 *
 * src/asyncmig.c		_PG_init: calls the others, nothing depends on it
 * src/settings.c		the asyncmig.* settings
 * src/shmem.c			shared memory, private to it: the launcher's latch,
 *						the worker slots and their searches, "a status
 *						changed"
 * src/registry.c		which databases have work: pending requests (shared
 *						hash) and the registry file pg_asyncmig/databases
 * src/registry_file.c	... that file on disk: stored without reading the
 *						old one, made untrusted when it cannot be, and
 *						not trusted in a copy of the data directory
 * src/launcher.c		the launcher: starts one worker per runnable database,
 *						and a database's next worker early (successors)
 * src/obituary.c		what is known of a worker that died in a migration
 * src/databases.c		the databases a worker may connect to (pg_database)
 * src/preflight.c		standby, template and worker-slot checks and
 *						warnings of schedule(), run(), cancel(); the
 *						read-only asyncmig.worker_slot_wait the view reads
 * src/worker.c			a worker: sweeps, claims and runs one migration
 * src/executor.c		runs SQL text statement by statement, top-level;
 *						the migration's timeout; the one retry and
 *						interruption policy of statements and batches
 * src/guard.c			what an interrupted CONCURRENTLY statement leaves,
 *						and the statements that finish or undo it
 * src/session.c		the session a migration runs in: owner, settings,
 *						asyncmig's own settings under the migration's SETs
 * src/catalog.c		asyncmig.migration: what every access shares;
 *						statuses and directions parsed (AmStatus, the
 *						state machine in catalog.h), the "same run"
 *						condition of a worker's writes (AM_SAME_RUN)
 * src/catalog_functions.c	... the statements of schedule(), run(),
 *						cancel(), wait()
 * src/catalog_worker.c	... the statements of a worker, one write per
 *						transition of its run
 * src/catalog_dependencies.c	... what a queued run waits for, and every
 *						end of a run because of a dependency (failed,
 *						canceled, timed out)
 * src/functions.c		schedule(), run(), cancel()
 * src/wait.c			wait(), across transactions
 * src/batch_schedule.c	schedule_batches(): batched data migrations
 * src/batch_check.c	... their key and statement, checked in the catalogs
 * src/batch_catalog.c	... their columns and progress in asyncmig.migration
 * src/batch_run.c		... the worker's batch loop
 * src/vocabulary.h		statuses, directions, SQLSTATEs: spelled once
 *						(plain C, shared with src/sqlite/)
 * src/compat.h			what differs between PostgreSQL 13 and 18, and
 *						only there (no other file tests the version)
 *
 * Each file's exported functions are declared in its own header (x.c:
 * x.h), and only there.  A file calls only files of a lower layer, so
 * there is no cycle (test/lint/structure.py checks it, with the names
 * and sizes below, after every build of test/run.sh):
 *
 *	8  asyncmig.c
 *	7  wait.c, batch_schedule.c
 *	6  functions.c, worker.c
 *	5  batch_run.c
 *	4  executor.c
 *	3  catalog_functions.c, catalog_worker.c, catalog_dependencies.c,
 *	   batch_catalog.c, launcher.c, preflight.c
 *	2  catalog.c, shmem.c, databases.c
 *	1  session.c, registry.c, batch_check.c
 *	0  settings.c, guard.c, registry_file.c, obituary.c
 *
 * Names: asyncmig_* only for what PostgreSQL looks up by name (the
 * bgworker entry points asyncmig_launcher_main and asyncmig_worker_main,
 * the SQL-callable functions); the settings' C variables are
 * am_settings_<name> (am_settings_max_workers ..., named as the operator
 * sets them).  Every other exported function or variable carries its file's prefix:
 * am_shmem_*, am_settings_*, am_launcher_*, am_functions_*, am_exec_*
 * (executor.c), am_guard_*, am_session_*, am_catalog_* (catalog*.c),
 * am_registry_*, am_databases_*, am_obituary_*, am_preflight_*,
 * am_batch_check_*, am_batch_catalog_*, am_batch_run_*.  Types are Am*.
 * Statics may use any am_ name.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_H
#define ASYNCMIG_H

#include "vocabulary.h"

/* src/asyncmig.c; PostgreSQL 16 and later declare it in fmgr.h too */
extern PGDLLEXPORT void _PG_init(void);

#endif							/* ASYNCMIG_H */
