/*-------------------------------------------------------------------------
 *
 * preflight.c
 *		What schedule(), run() and cancel() check about the server and the
 *		database before they record anything, and what they warn about
 *		after they queued work that this server will not run soon.
 *
 * Operators run asyncmig on hot standbys, promoted standbys, restored
 * copies and clusters with template databases; each gets a clear answer
 * instead of PostgreSQL's raw error from asyncmig's internal statements
 * or silence.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "utils/syscache.h"

#include "preflight.h"
#include "settings.h"
#include "shmem.h"
#include "vocabulary.h"

/*
 * am_preflight_check_writable
 *		A hot standby cannot record or change a migration: say so with the
 *		SQLSTATE of a read-only transaction (25006) and where to call it.
 *		action is the function's verb ("schedule", "run", "cancel").
 */
void
am_preflight_check_writable(const char *action)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s migrations on a standby", action),
				 errdetail("This server is in recovery: asyncmig.migration is replicated from the primary, and migrations run only there."),
				 errhint("Call it on the primary server; asyncmig.status here shows what the standby has replayed.")));
}

/*
 * am_preflight_check_database
 *		Migrations are not queued in a template database: a worker
 *		connected to it would make CREATE DATABASE ... TEMPLATE fail while
 *		it runs, and the launcher does not serve templates.  action as
 *		above.
 */
void
am_preflight_check_database(const char *action)
{
	HeapTuple	tup;
	bool		is_template = false;
	char	   *name = NULL;

	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (HeapTupleIsValid(tup))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		is_template = db->datistemplate;
		name = pstrdup(NameStr(db->datname));
		ReleaseSysCache(tup);
	}
	if (is_template)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot %s migrations in template database \"%s\"", action, name),
				 errdetail("A worker connected to a template database would make CREATE DATABASE from it fail."),
				 errhint("Schedule it in the databases created from the template, or run ALTER DATABASE %s IS_TEMPLATE false first.",
						 name)));
}

/*
 * am_preflight_warn_queued
 *		Work was queued on a server that preloads asyncmig: warn if this
 *		server will not start it (asyncmig.enabled is off, too few
 *		background worker slots).
 */
void
am_preflight_warn_queued(const char *name)
{
	bool		no_slot = false;

	if (!am_settings_enabled)
	{
		ereport(WARNING,
				(errmsg("asyncmig.enabled is off on this server: nothing will run migration \"%s\"",
						name),
				 errdetail("The migration stays queued (" AM_STATUS_STARTED ") until asyncmig.enabled is turned on."),
				 errhint("Set asyncmig.enabled = on and reload the configuration, if this server should run migrations.")));
		return;
	}
	if (am_settings_check_worker_processes(WARNING))
		return;
	if (am_shmem_state != NULL)
	{
		LWLockAcquire(am_shmem_state->lock, LW_SHARED);
		no_slot = am_shmem_state->no_bgworker_slot;
		LWLockRelease(am_shmem_state->lock);
	}
	if (no_slot)
		ereport(WARNING,
				(errmsg("asyncmig could not start its last worker: no free background worker slot"),
				 errdetail("Migration \"%s\" waits until a slot is free.", name),
				 errhint("Raise max_worker_processes to at least %d plus the workers of other extensions and parallel queries, and restart the server.",
						 am_settings_worker_processes_needed())));
}
