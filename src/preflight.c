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
 * It also defines asyncmig.worker_slot_wait, a read-only setting whose
 * value is computed when it is read: what the status view says of a
 * queued run while the launcher finds no free background worker slot.
 * A setting, not a function, because the view's readers (an application
 * role, a pg_monitor member) may read any setting but execute no function
 * of asyncmig that they were not granted; and the launcher only keeps a
 * flag in shared memory, so nothing is written per migration.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "preflight.h"
#include "settings.h"
#include "shmem.h"
#include "vocabulary.h"

/* never read: the value of asyncmig.worker_slot_wait is its show hook's */
static char *worker_slot_wait_value = NULL;

static const char *preflight_show_worker_slot_wait(void);

/*
 * am_preflight_define_settings
 *		Define asyncmig.worker_slot_wait (see the file's header).
 */
void
am_preflight_define_settings(void)
{
	DefineCustomStringVariable("asyncmig.worker_slot_wait",
							   "Why migrations queued in this database do not start, if for lack of a background worker slot.",
							   "Read-only; empty unless asyncmig's launcher found no free background worker slot for its last worker "
							   "and no asyncmig worker runs in this database.  The status view shows it as the progress of a queued migration.",
							   &worker_slot_wait_value,
							   "",
							   PGC_INTERNAL,
							   GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							   NULL, NULL, preflight_show_worker_slot_wait);
}

/*
 * preflight_show_worker_slot_wait
 *		The value of asyncmig.worker_slot_wait: in a backend of a database
 *		in which no asyncmig worker runs, while the launcher's last try to
 *		start a worker found no free slot, what to raise; else empty.
 */
static const char *
preflight_show_worker_slot_wait(void)
{
	static char buf[256];

	/* shared memory only in a backend, with asyncmig preloaded */
	if (MyProc == NULL || !OidIsValid(MyDatabaseId) ||
		!am_shmem_database_waits_for_slot(MyDatabaseId))
		return "";
	snprintf(buf, sizeof(buf),
			 "waiting for a background worker slot (raise max_worker_processes, now %d; asyncmig alone needs %d)",
			 max_worker_processes, am_settings_worker_processes_needed());
	return buf;
}

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
	if (am_shmem_no_bgworker_slot())
		ereport(WARNING,
				(errmsg("asyncmig could not start its last worker: no free background worker slot"),
				 errdetail("Migration \"%s\" waits until a slot is free.", name),
				 errhint("Raise max_worker_processes to at least %d plus the workers of other extensions and parallel queries, and restart the server.",
						 am_settings_worker_processes_needed())));
}
