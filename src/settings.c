/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The asyncmig.* settings (GUCs), as the user's reference of the
 *		settings documents them.
 *
 * The C variables are am_settings_<name>: named as an operator sets them,
 * with this file's prefix.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "replication/logicallauncher.h"
#include "utils/guc.h"

#include "asyncmig.h"
#include "compat.h"
#include "settings.h"

bool		am_settings_allow_scheduled = false;
int			am_settings_max_workers = 2;
int			am_settings_max_attempts = 3;
int			am_settings_lock_timeout = 5000;
int			am_settings_statement_timeout = 0;
bool		am_settings_enabled = true;
int			am_settings_max_databases = 1024;
int			am_settings_max_replica_lag = 0;
int			am_settings_dependency_timeout = 3600 * 1000;
int			am_settings_batch_target_time = 200;

/*
 * am_settings_define
 *		The asyncmig.* GUCs.  lock_timeout and statement_timeout are SIGHUP
 *		so that an operator, not a migration's author or a role's settings,
 *		decides how long a worker's statements may wait or run.
 */
void
am_settings_define(void)
{
	DefineCustomBoolVariable("asyncmig.allow_scheduled_migrations",
							 "Records new migrations as " AM_STATUS_SCHEDULED " instead of running them.",
							 "A scheduled migration runs when asyncmig.run() is called for it. "
							 "execute_immediately => true overrides this setting.",
							 &am_settings_allow_scheduled,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	/* a PGC_POSTMASTER setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("asyncmig.max_workers",
								"Maximum number of migrations running at once, cluster-wide.",
								"One database runs its migrations one at a time.",
								&am_settings_max_workers,
								2,
								1, 64,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.max_attempts",
							"Tries of a statement that failed on a lock timeout, deadlock or serialization failure.",
							NULL,
							&am_settings_max_attempts,
							3,
							1, 100,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.lock_timeout",
							"lock_timeout of migration statements other than the CONCURRENTLY ones.",
							"0 turns it off.  A migration's own SET lock_timeout wins.",
							&am_settings_lock_timeout,
							5000,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.statement_timeout",
							"statement_timeout of migration statements.",
							"0 turns it off.  It wins over role and database settings; "
							"a migration's own SET statement_timeout wins over it.",
							&am_settings_statement_timeout,
							0,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("asyncmig.max_replica_lag",
							"Batched migrations hold off between batches while a streaming replica's replay is further behind than this.",
							"Measured as WAL not yet replayed by the replica furthest behind; 0 turns it off.",
							&am_settings_max_replica_lag,
							0,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	/*
	 * How long one batch may hold its rows: writers that touch them wait
	 * for it.  SIGHUP, as lock_timeout: the operator decides what writers
	 * may wait, and the worker takes a reload between batches.
	 */
	DefineCustomIntVariable("asyncmig.batch_target_time",
							"Time one batch of a batched migration should take: later batches are sized to it.",
							"The first batch has the migration's batch_size, the largest size; each next size "
							"follows the time of the batches done.  0 keeps batch_size for every batch.",
							&am_settings_batch_target_time,
							200,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * A copy of a primary (pg_basebackup, a PITR restore, a staging clone)
	 * has its queued work and cannot tell itself from a promoted standby:
	 * the operator decides, before starting it, with this switch.
	 */
	DefineCustomBoolVariable("asyncmig.enabled",
							 "Runs queued migrations on this server.",
							 "Off: the launcher starts no worker; queued migrations stay "
							 AM_STATUS_STARTED " until it is turned on (a reload is enough).",
							 &am_settings_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("asyncmig.max_databases",
								"Databases with work that shared memory keeps track of at once.",
								"More still work: the launcher then looks at every database once.",
								&am_settings_max_databases,
								1024,
								16, 1000000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);

	/*
	 * NB: a queued run whose dependency nothing will run (never scheduled,
	 * SCHEDULED, reverted) would otherwise wait forever, and with it every
	 * CALL asyncmig.wait() for it.  Dependencies that are queued or running
	 * are not bounded: they end by themselves.  SIGHUP, like the other
	 * limits: the operator decides how long work may sit queued.
	 */
	DefineCustomIntVariable("asyncmig.dependency_timeout",
							"How long a queued migration waits for a dependency that nothing will run.",
							"Counted from when the run was queued (or from its not_before, if later); "
							"then it ends ERROR naming the dependency.  0 waits forever.",
							&am_settings_dependency_timeout,
							3600 * 1000,
							0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("asyncmig");
}

/*
 * am_settings_worker_processes_needed
 *		The background worker slots that asyncmig and the server itself
 *		take for sure: asyncmig.max_workers, the asyncmig launcher, and the
 *		logical replication launcher (registered unless
 *		max_logical_replication_workers is 0).  Other extensions, parallel
 *		queries and subscriptions need more.
 */
int
am_settings_worker_processes_needed(void)
{
	return am_settings_max_workers + 1 + (max_logical_replication_workers > 0 ? 1 : 0);
}

/*
 * am_settings_check_worker_processes
 *		Is max_worker_processes too small for asyncmig to ever start a
 *		worker?  If so, say so at elevel (the launcher's start, schedule())
 *		and return true.
 */
bool
am_settings_check_worker_processes(int elevel)
{
	int			needed = am_settings_worker_processes_needed();

	if (max_worker_processes >= needed)
		return false;
	ereport(elevel,
			(errmsg("max_worker_processes (%d) is too small for asyncmig: migrations may never run",
					max_worker_processes),
			 errdetail("asyncmig.max_workers (%d), the asyncmig launcher and the logical replication launcher need %d background worker slots.",
					   am_settings_max_workers, needed),
			 errhint("Set max_worker_processes to at least %d, plus the workers of other extensions and parallel queries, and restart the server.",
					 needed)));
	return true;
}
