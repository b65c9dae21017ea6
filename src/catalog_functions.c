/*-------------------------------------------------------------------------
 *
 * catalog_functions.c
 *		The statements on asyncmig.migration of schedule(), run(), cancel()
 *		and wait() (functions.c).
 *
 * They run in the caller's transaction, inside am_catalog_enter() (see
 * catalog.c): as the table's owner, with a pinned search_path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "asyncmig.h"
#include "catalog.h"
#include "catalog_functions.h"

/* second key of the advisory lock that serializes dependency checks ("amdc") */
#define AM_DEPENDS_LOCK_KEY		0x616d6463

static AmMigration *am_fetch_by_name(const char *name, bool lock);

/*
 * am_schedule_params
 *		Parameters $2 .. $11 of the statements that record a schedule() call:
 *		status, forwards and backwards SQL, depends_on, not_before, timeout,
 *		owner, search_path, origin.  $1 is the caller's.
 */
#define AM_SCHEDULE_NPARAMS 10
static void
am_schedule_params(const AmScheduleArgs *a, Oid *types, Datum *values,
				   char *nulls)
{
	static const Oid param_types[AM_SCHEDULE_NPARAMS - 1] = {
		TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TIMESTAMPTZOID, INTERVALOID,
		REGROLEOID, TEXTOID, TEXTOID
	};
	int			i;

	for (i = 0; i < AM_SCHEDULE_NPARAMS - 1; i++)
	{
		types[i + 1] = param_types[i];
		nulls[i + 1] = ' ';
	}
	values[1] = CStringGetTextDatum(am_catalog_status_name(a->status));
	values[2] = CStringGetTextDatum(a->forwards_sql);
	if (a->backwards_sql)
		values[3] = CStringGetTextDatum(a->backwards_sql);
	else
		nulls[3] = 'n';
	values[4] = a->depends_on;
	nulls[4] = a->depends_on_null ? 'n' : ' ';
	values[5] = a->not_before;
	nulls[5] = a->not_before_null ? 'n' : ' ';
	values[6] = a->timeout;
	nulls[6] = a->timeout_null ? 'n' : ' ';
	values[7] = ObjectIdGetDatum(a->owner);
	values[8] = CStringGetTextDatum(a->search_path);
	values[9] = am_catalog_origin();
}

/*
 * am_catalog_functions_insert
 *		Insert a new forwards migration (in status a->status).  Returns
 *		false when a row of that name exists (committed, or inserted by a concurrent
 *		transaction that has committed since: the unique index waited).
 */
bool
am_catalog_functions_insert(const AmScheduleArgs *a)
{
	Oid			types[AM_SCHEDULE_NPARAMS];
	Datum		values[AM_SCHEDULE_NPARAMS];
	char		nulls[AM_SCHEDULE_NPARAMS];
	bool		inserted;

	am_schedule_params(a, types, values, nulls);
	types[0] = TEXTOID;
	values[0] = CStringGetTextDatum(a->name);
	nulls[0] = ' ';

	SPI_connect();
	inserted = am_catalog_spi("INSERT INTO asyncmig.migration (name, status, direction, "
			   "forwards_sql, backwards_sql, depends_on, not_before, timeout, "
			   "owner, search_path, meta) "
			   "VALUES ($1, $2, '" AM_DIRECTION_FORWARDS "', $3, $4, $5, $6, $7, $8, $9, "
			   "  pg_catalog.jsonb_build_object('origin', $10::pg_catalog.jsonb)) "
			   "ON CONFLICT (name) DO NOTHING RETURNING status",
			   AM_SCHEDULE_NPARAMS, types, values, nulls, false,
			   SPI_OK_INSERT_RETURNING) == 1;
	SPI_finish();
	return inserted;
}

/*
 * am_fetch_by_name
 *		The row of that name, locked FOR UPDATE with lock, or NULL.  Not
 *		read-only either way: SPI then takes a new snapshot, and (in READ
 *		COMMITTED) a row that a concurrent schedule() committed while our
 *		INSERT waited for it is seen.
 */
static AmMigration *
am_fetch_by_name(const char *name, bool lock)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *rows;

	values[0] = CStringGetTextDatum(name);
	rows = am_catalog_fetch(lock ?
							   "SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE name = $1 FOR UPDATE" :
							   "SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE name = $1",
							   1, types, values, NULL, false);
	return rows ? linitial(rows) : NULL;
}

/*
 * am_catalog_functions_lock
 *		The row of that name, locked FOR UPDATE, or NULL if there is none.
 */
AmMigration *
am_catalog_functions_lock(const char *name)
{
	return am_fetch_by_name(name, true);
}

/*
 * am_catalog_functions_get
 *		The row of that name, or NULL; not locked.
 */
AmMigration *
am_catalog_functions_get(const char *name)
{
	return am_fetch_by_name(name, false);
}

/*
 * am_catalog_functions_requeue_forwards
 *		Make an ERROR row, or one whose last run was backwards, a new
 *		forwards run with the SQL and options given now.
 */
void
am_catalog_functions_requeue_forwards(int64 id, const AmScheduleArgs *a)
{
	Oid			types[AM_SCHEDULE_NPARAMS];
	Datum		values[AM_SCHEDULE_NPARAMS];
	char		nulls[AM_SCHEDULE_NPARAMS];

	am_schedule_params(a, types, values, nulls);
	types[0] = INT8OID;
	values[0] = Int64GetDatum(id);
	nulls[0] = ' ';

	am_catalog_exec("UPDATE asyncmig.migration SET status = $2, direction = '" AM_DIRECTION_FORWARDS "', "
		   "forwards_sql = $3, backwards_sql = $4, depends_on = $5, "
		   "not_before = $6, timeout = $7, owner = $8, search_path = $9, "
		   "database = pg_catalog.current_database(), attempts = 0, "
		   "meta = (meta - 'error' - 'guard' - 'cancel_requested') || "
		   "  pg_catalog.jsonb_build_object('origin', $10::pg_catalog.jsonb), "
		   "started_at = NULL, finished_at = NULL, updated_at = pg_catalog.now() "
		   "WHERE id = $1",
		   AM_SCHEDULE_NPARAMS, types, values, nulls, false, SPI_OK_UPDATE);
}

/*
 * am_catalog_functions_queue_run
 *		Queue a new run (STARTED) of an existing row in one direction.
 */
void
am_catalog_functions_queue_run(int64 id, bool backwards)
{
	Oid			types[3] = {INT8OID, BOOLOID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(id);
	values[1] = BoolGetDatum(backwards);
	values[2] = am_catalog_origin();
	am_catalog_exec("UPDATE asyncmig.migration SET status = '" AM_STATUS_STARTED "', "
		   "direction = CASE WHEN $2 THEN '" AM_DIRECTION_BACKWARDS "' ELSE '" AM_DIRECTION_FORWARDS "' END, "
		   "attempts = 0, meta = (meta - 'error' - 'guard' - 'cancel_requested') || "
		   "  pg_catalog.jsonb_build_object('origin', $3::pg_catalog.jsonb), "
		   "started_at = NULL, finished_at = NULL, updated_at = pg_catalog.now() "
		   "WHERE id = $1",
		   3, types, values, NULL, false, SPI_OK_UPDATE);
}

/*
 * am_catalog_functions_cancel_queued
 *		End a SCHEDULED or STARTED row in ERROR without running it.
 */
void
am_catalog_functions_cancel_queued(int64 id)
{
	am_catalog_update_by_id("UPDATE asyncmig.migration SET status = '" AM_STATUS_ERROR "', "
					"finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
					"meta = (meta - 'cancel_requested') || pg_catalog.jsonb_build_object("
					"'error', pg_catalog.jsonb_build_object('message', 'canceled before it ran', "
					"'sqlstate', '" AM_SQLSTATE_QUERY_CANCELED "')) "
					"WHERE id = $1", id);
}

/*
 * am_catalog_functions_names_in
 *		Names of the rows in one of two statuses whose owner the role member
 *		is a member of, oldest first.
 */
List *
am_catalog_functions_names_in(const char *status1, const char *status2, Oid member)
{
	Oid			types[3] = {TEXTOID, TEXTOID, OIDOID};
	Datum		values[3];
	MemoryContext cxt = CurrentMemoryContext;
	List	   *result = NIL;
	uint64		i;

	values[0] = CStringGetTextDatum(status1);
	values[1] = CStringGetTextDatum(status2);
	values[2] = ObjectIdGetDatum(member);
	SPI_connect();
	am_catalog_spi("SELECT name FROM asyncmig.migration WHERE status IN ($1, $2) "
		   "AND pg_catalog.pg_has_role($3, owner::pg_catalog.oid, 'MEMBER') "
		   "ORDER BY id",
		   3, types, values, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = am_catalog_strdup_value(SPI_tuptable->vals[i],
										   SPI_tuptable->tupdesc, 1, cxt);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		result = lappend(result, name);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * am_catalog_functions_depends_cycle
 *		Would a migration called name that depends on depends_on close a
 *		cycle of dependencies with the rows that exist?
 *
 * NB: two concurrent calls, each adding one edge, would each miss the
 * other's uncommitted row and build a cycle together.  So the checks are
 * serialized: a transaction lock (an advisory lock keyed by the table's
 * OID, held to commit) makes the second call wait for the first
 * transaction, and the check reads the latest committed rows (not the
 * transaction's snapshot, which in REPEATABLE READ predates the first
 * commit).  Only calls with depends_on take the lock; a cycle needs an
 * edge from each of its members.
 */
bool
am_catalog_functions_depends_cycle(Oid relid, const char *name, Datum depends_on)
{
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		cycle;
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) relid,
						 AM_DEPENDS_LOCK_KEY, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	values[0] = CStringGetTextDatum(name);
	values[1] = depends_on;
	PushActiveSnapshot(GetLatestSnapshot());
	SPI_connect();
	cycle = am_catalog_spi_bool("WITH RECURSIVE d(n) AS ("
		   "  SELECT pg_catalog.unnest($2::pg_catalog.text[]) "
		   "  UNION "
		   "  SELECT pg_catalog.unnest(m.depends_on) "
		   "  FROM asyncmig.migration m JOIN d ON m.name = d.n) "
		   "SELECT EXISTS (SELECT 1 FROM d WHERE n = $1)",
		   2, types, values, true);
	SPI_finish();
	PopActiveSnapshot();
	return cycle;
}

/*
 * am_catalog_functions_status_of
 *		The status of the row of that name (false if there is none) and,
 *		in *message and *sqlstate, its error (NULL if none), in the
 *		caller's memory context.  Nothing else is read: wait() calls this at every
 *		look, and the SQL texts may be megabytes long (they stay TOASTed).
 */
bool
am_catalog_functions_status_of(const char *name, AmStatus *status,
							   char **message, char **sqlstate)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	MemoryContext cxt = CurrentMemoryContext;
	bool		found = false;

	*message = NULL;
	*sqlstate = NULL;
	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (am_catalog_spi("SELECT status, meta #>> '{error,message}', meta #>> '{error,sqlstate}' "
					   "FROM asyncmig.migration WHERE name = $1",
					   1, types, values, NULL, false, SPI_OK_SELECT) == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		found = true;
		*status = am_catalog_status_parse(SPI_getvalue(tup, desc, 1));
		*message = am_catalog_strdup_value(tup, desc, 2, cxt);
		*sqlstate = am_catalog_strdup_value(tup, desc, 3, cxt);
	}
	SPI_finish();
	return found;
}
