/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		Reads and writes of asyncmig.migration.
 *
 * Every statement on the table is here.  They run through SPI as the
 * table's owner (the extension owner) with search_path pinned to
 * pg_catalog, pg_temp, inside am_catalog_enter()/am_catalog_leave(): the
 * callers of schedule() and friends hold no privilege on the table, and no
 * object they create can capture a name we use.  Every status change also
 * sends NOTIFY asyncmig with {"name": ..., "status": ...}, in the same
 * transaction.
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
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "asyncmig.h"
#include "catalog.h"

/* the columns that am_row_to_migration() reads, in its order */
#define AM_COLUMNS \
	"id, name, status, direction, forwards_sql, backwards_sql, " \
	"owner::pg_catalog.oid, search_path, attempts, " \
	"(pg_catalog.date_part('epoch', timeout) * 1000)::pg_catalog.int8, " \
	"timeout::pg_catalog.text, meta -> 'guard', " \
	"coalesce((meta ->> 'cancel_requested')::pg_catalog.bool, false), " \
	"coalesce((meta ->> 'pid')::pg_catalog.int4, 0)"

/* jsonb of an error from the parameters $2 .. $7 */
#define AM_ERROR_JSON \
	"pg_catalog.jsonb_build_object('message', $2::pg_catalog.text, " \
	"'sqlstate', $3::pg_catalog.text, 'detail', $4::pg_catalog.text, " \
	"'hint', $5::pg_catalog.text, 'context', $6::pg_catalog.text, " \
	"'statement', $7::pg_catalog.text)"

static int	am_spi(const char *sql, int nargs, Oid *types, Datum *values,
				   const char *nulls, bool read_only, int expected);
static AmMigration *am_row_to_migration(HeapTuple tup, TupleDesc desc,
										MemoryContext cxt);
static List *am_fetch_migrations(const char *sql, int nargs, Oid *types,
								 Datum *values, const char *nulls,
								 bool read_only);
static char *am_strdup_value(HeapTuple tup, TupleDesc desc, int col,
							 MemoryContext cxt);
static void am_update_by_id(const char *sql, int64 id);
static AmMigration *am_fetch_by_name(const char *name, bool lock);

/*
 * am_migration_relid
 *		OID of asyncmig.migration, or InvalidOid (with missing_ok) when the
 *		extension is not installed in this database.
 */
Oid
am_migration_relid(bool missing_ok)
{
	Oid			nspid = get_namespace_oid("asyncmig", missing_ok);
	Oid			relid = InvalidOid;

	if (OidIsValid(nspid))
		relid = get_relname_relid("migration", nspid);
	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("asyncmig.migration does not exist"),
				 errhint("Run CREATE EXTENSION asyncmig in this database.")));
	return relid;
}

/*
 * am_origin
 *		Where a queued run was queued: this cluster's system identifier and
 *		this database's OID, as jsonb text.  A row restored by pg_restore
 *		into another database or cluster (or copied by CREATE DATABASE
 *		... TEMPLATE) carries another origin, and workers do not run it.
 */
static Datum
am_origin(void)
{
	return CStringGetTextDatum(psprintf("{\"system\": \"" UINT64_FORMAT "\", \"datid\": %u}",
										GetSystemIdentifier(), MyDatabaseId));
}

/*
 * am_catalog_enter
 *		Act as the owner of asyncmig.migration with a pinned search_path,
 *		until am_catalog_leave().  An error in between restores both when
 *		its (sub)transaction aborts.
 */
void
am_catalog_enter(AmCatalogContext *cxt)
{
	Oid			relid = am_migration_relid(false);
	HeapTuple	tup;
	Oid			owner;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&cxt->save_userid, &cxt->save_sec_context);
	SetUserIdAndSecContext(owner,
						   cxt->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	cxt->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * am_catalog_leave
 *		Undo am_catalog_enter().
 */
void
am_catalog_leave(AmCatalogContext *cxt)
{
	AtEOXact_GUC(true, cxt->save_nestlevel);
	SetUserIdAndSecContext(cxt->save_userid, cxt->save_sec_context);
}

/*
 * am_own_settings_push
 *		Make asyncmig's own statements immune to what a migration SET for its
 *		session (default_transaction_read_only, a serializable default
 *		isolation, statement_timeout, lock_timeout), until
 *		am_own_settings_pop().  The variables are set directly, not through
 *		the GUC machinery, so the migration's settings are back unchanged
 *		for its next statement.
 */
void
am_own_settings_push(AmOwnSettings *saved)
{
	saved->statement_timeout = StatementTimeout;
	saved->lock_timeout = LockTimeout;
	saved->read_only = DefaultXactReadOnly;
	saved->isolation = DefaultXactIsoLevel;
	StatementTimeout = 0;
	LockTimeout = 0;
	DefaultXactReadOnly = false;
	DefaultXactIsoLevel = XACT_READ_COMMITTED;
}

/*
 * am_own_settings_pop
 *		Undo am_own_settings_push().
 */
void
am_own_settings_pop(AmOwnSettings *saved)
{
	StatementTimeout = saved->statement_timeout;
	LockTimeout = saved->lock_timeout;
	DefaultXactReadOnly = saved->read_only;
	DefaultXactIsoLevel = saved->isolation;
}

/*
 * am_catalog_begin
 *		Start a transaction of a worker's own bookkeeping: snapshot, table
 *		owner, pinned search_path, none of the migration's settings, and
 *		no cancel (only the migration's statements may be canceled).  Ends
 *		with am_catalog_commit(), or with an error that ends the worker.
 */
void
am_catalog_begin(AmCatalogContext *cxt)
{
	cxt->save_mcxt = CurrentMemoryContext;
	HOLD_CANCEL_INTERRUPTS();
	am_own_settings_push(&cxt->save_settings);
	/* a background worker must move now() on by itself */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	am_catalog_enter(cxt);
}

/*
 * am_catalog_commit
 *		Commit a transaction begun by am_catalog_begin() and return to the
 *		caller's memory context (the transaction's is gone).
 */
void
am_catalog_commit(AmCatalogContext *cxt)
{
	am_catalog_leave(cxt);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt->save_mcxt);
	am_own_settings_pop(&cxt->save_settings);
	RESUME_CANCEL_INTERRUPTS();
}

/*
 * am_spi
 *		Run one statement through SPI and check its result code.  Returns
 *		SPI_processed.  The caller is connected to SPI.
 */
static int
am_spi(const char *sql, int nargs, Oid *types, Datum *values,
	   const char *nulls, bool read_only, int expected)
{
	int			rc;

	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	if (rc != expected)
		elog(ERROR, "asyncmig: SPI_execute failed (%s): %s",
			 SPI_result_code_string(rc), sql);
	return (int) SPI_processed;
}

/*
 * am_update_by_id
 *		Run an UPDATE of one row whose id is its only parameter, $1.
 */
static void
am_update_by_id(const char *sql, int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(id);
	SPI_connect();
	am_spi(sql, 1, types, values, NULL, false, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * am_strdup_value
 *		Column col of tup as text, copied into cxt; NULL for SQL NULL.
 */
static char *
am_strdup_value(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * am_row_to_migration
 *		Build an AmMigration in cxt from a row of AM_COLUMNS.
 */
static AmMigration *
am_row_to_migration(HeapTuple tup, TupleDesc desc, MemoryContext cxt)
{
	AmMigration *m = MemoryContextAllocZero(cxt, sizeof(AmMigration));
	bool		isnull;
	Datum		d;

	m->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	m->name = am_strdup_value(tup, desc, 2, cxt);
	m->status = am_strdup_value(tup, desc, 3, cxt);
	m->direction = am_strdup_value(tup, desc, 4, cxt);
	m->forwards_sql = am_strdup_value(tup, desc, 5, cxt);
	m->backwards_sql = am_strdup_value(tup, desc, 6, cxt);
	m->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
	m->search_path = am_strdup_value(tup, desc, 8, cxt);
	m->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
	d = SPI_getbinval(tup, desc, 10, &isnull);
	m->timeout_ms = isnull ? 0 : DatumGetInt64(d);
	m->timeout_text = am_strdup_value(tup, desc, 11, cxt);
	m->guard = am_strdup_value(tup, desc, 12, cxt);
	m->cancel_requested = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
	m->pid = DatumGetInt32(SPI_getbinval(tup, desc, 14, &isnull));
	return m;
}

/*
 * am_fetch_migrations
 *		Run a statement that returns AM_COLUMNS rows; return them as a List
 *		of AmMigration in the caller's memory context.
 */
static List *
am_fetch_migrations(const char *sql, int nargs, Oid *types, Datum *values,
					const char *nulls, bool read_only)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *result = NIL;
	uint64		i;
	int			rc;

	SPI_connect();
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "asyncmig: SPI_execute failed (%s): %s",
			 SPI_result_code_string(rc), sql);
	for (i = 0; i < SPI_processed; i++)
	{
		AmMigration *m = am_row_to_migration(SPI_tuptable->vals[i],
											 SPI_tuptable->tupdesc, cxt);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		result = lappend(result, m);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * am_catalog_notify
 *		NOTIFY asyncmig, '{"name": ..., "status": ...}' (sent at commit).
 */
void
am_catalog_notify(const char *name, const char *status)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(status);
	SPI_connect();
	am_spi("SELECT pg_catalog.pg_notify('asyncmig', "
		   "pg_catalog.json_build_object('name', $1, 'status', $2)::pg_catalog.text)",
		   2, types, values, NULL, false, SPI_OK_SELECT);
	SPI_finish();
}

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
	values[1] = CStringGetTextDatum(a->status);
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
	values[9] = am_origin();
}

/*
 * am_catalog_insert
 *		Insert a new forwards migration.  Returns its status, or NULL when a
 *		row of that name exists (committed, or inserted by a concurrent
 *		transaction that has committed since: the unique index waited).
 */
char *
am_catalog_insert(const AmScheduleArgs *a)
{
	Oid			types[AM_SCHEDULE_NPARAMS];
	Datum		values[AM_SCHEDULE_NPARAMS];
	char		nulls[AM_SCHEDULE_NPARAMS];
	char	   *result = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	am_schedule_params(a, types, values, nulls);
	types[0] = TEXTOID;
	values[0] = CStringGetTextDatum(a->name);
	nulls[0] = ' ';

	SPI_connect();
	if (am_spi("INSERT INTO asyncmig.migration (name, status, direction, "
			   "forwards_sql, backwards_sql, depends_on, not_before, timeout, "
			   "owner, search_path, meta) "
			   "VALUES ($1, $2, 'forwards', $3, $4, $5, $6, $7, $8, $9, "
			   "  pg_catalog.jsonb_build_object('origin', $10::pg_catalog.jsonb)) "
			   "ON CONFLICT (name) DO NOTHING RETURNING status",
			   AM_SCHEDULE_NPARAMS, types, values, nulls, false,
			   SPI_OK_INSERT_RETURNING) == 1)
		result = am_strdup_value(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								 1, cxt);
	SPI_finish();
	return result;
}

/*
 * am_fetch_by_name
 *		The row of that name, locked FOR UPDATE with lock, or NULL.
 */
static AmMigration *
am_fetch_by_name(const char *name, bool lock)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *rows;

	values[0] = CStringGetTextDatum(name);
	rows = am_fetch_migrations(lock ?
							   "SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE name = $1 FOR UPDATE" :
							   "SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE name = $1",
							   1, types, values, NULL, !lock);
	return rows ? linitial(rows) : NULL;
}

/*
 * am_catalog_lock
 *		The row of that name, locked FOR UPDATE, or NULL if there is none.
 */
AmMigration *
am_catalog_lock(const char *name)
{
	return am_fetch_by_name(name, true);
}

/*
 * am_catalog_get
 *		The row of that name, or NULL; not locked.
 */
AmMigration *
am_catalog_get(const char *name)
{
	return am_fetch_by_name(name, false);
}

/*
 * am_catalog_requeue_forwards
 *		Make an ERROR row, or one whose last run was backwards, a new
 *		forwards run with the SQL and options given now.
 */
void
am_catalog_requeue_forwards(int64 id, const AmScheduleArgs *a)
{
	Oid			types[AM_SCHEDULE_NPARAMS];
	Datum		values[AM_SCHEDULE_NPARAMS];
	char		nulls[AM_SCHEDULE_NPARAMS];

	am_schedule_params(a, types, values, nulls);
	types[0] = INT8OID;
	values[0] = Int64GetDatum(id);
	nulls[0] = ' ';

	SPI_connect();
	am_spi("UPDATE asyncmig.migration SET status = $2, direction = 'forwards', "
		   "forwards_sql = $3, backwards_sql = $4, depends_on = $5, "
		   "not_before = $6, timeout = $7, owner = $8, search_path = $9, "
		   "database = pg_catalog.current_database(), attempts = 0, "
		   "meta = (meta - 'error' - 'guard' - 'cancel_requested') || "
		   "  pg_catalog.jsonb_build_object('origin', $10::pg_catalog.jsonb), "
		   "started_at = NULL, finished_at = NULL, updated_at = pg_catalog.now() "
		   "WHERE id = $1",
		   AM_SCHEDULE_NPARAMS, types, values, nulls, false, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * am_catalog_queue_run
 *		Queue a new run (STARTED) of an existing row in one direction.
 */
void
am_catalog_queue_run(int64 id, bool backwards)
{
	Oid			types[3] = {INT8OID, BOOLOID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(id);
	values[1] = BoolGetDatum(backwards);
	values[2] = am_origin();
	SPI_connect();
	am_spi("UPDATE asyncmig.migration SET status = 'STARTED', "
		   "direction = CASE WHEN $2 THEN 'backwards' ELSE 'forwards' END, "
		   "attempts = 0, meta = (meta - 'error' - 'guard' - 'cancel_requested') || "
		   "  pg_catalog.jsonb_build_object('origin', $3::pg_catalog.jsonb), "
		   "started_at = NULL, finished_at = NULL, updated_at = pg_catalog.now() "
		   "WHERE id = $1",
		   3, types, values, NULL, false, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * am_catalog_cancel_queued
 *		End a SCHEDULED or STARTED row in ERROR without running it.
 */
void
am_catalog_cancel_queued(int64 id)
{
	am_update_by_id("UPDATE asyncmig.migration SET status = 'ERROR', "
					"finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
					"meta = (meta - 'cancel_requested') || pg_catalog.jsonb_build_object("
					"'error', pg_catalog.jsonb_build_object('message', 'canceled before it ran', "
					"'sqlstate', '57014')) "
					"WHERE id = $1", id);
}

/*
 * am_catalog_request_cancel
 *		Record that a running migration is to be canceled, so that whoever
 *		ends its run (its worker, or the sweep if the worker dies first)
 *		says "canceled".
 */
void
am_catalog_request_cancel(int64 id)
{
	am_update_by_id("UPDATE asyncmig.migration SET "
					"meta = meta || '{\"cancel_requested\": true}'::pg_catalog.jsonb "
					"WHERE id = $1", id);
}

/*
 * am_catalog_names_in
 *		Names of the rows in one of two statuses whose owner the role member
 *		is a member of, oldest first.
 */
List *
am_catalog_names_in(const char *status1, const char *status2, Oid member)
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
	am_spi("SELECT name FROM asyncmig.migration WHERE status IN ($1, $2) "
		   "AND pg_catalog.pg_has_role($3, owner::pg_catalog.oid, 'MEMBER') "
		   "ORDER BY id",
		   3, types, values, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = am_strdup_value(SPI_tuptable->vals[i],
										   SPI_tuptable->tupdesc, 1, cxt);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		result = lappend(result, name);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * am_catalog_error_message
 *		meta->'error'->>'message' of a row (NULL if none); *sqlstate gets
 *		its SQLSTATE or NULL.
 */
char *
am_catalog_error_message(const char *name, char **sqlstate)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	MemoryContext cxt = CurrentMemoryContext;
	char	   *message = NULL;

	*sqlstate = NULL;
	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (am_spi("SELECT meta #>> '{error,message}', meta #>> '{error,sqlstate}' "
			   "FROM asyncmig.migration WHERE name = $1",
			   1, types, values, NULL, true, SPI_OK_SELECT) == 1)
	{
		message = am_strdup_value(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								  1, cxt);
		*sqlstate = am_strdup_value(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 2, cxt);
	}
	SPI_finish();
	return message;
}

/*
 * am_catalog_depends_cycle
 *		Would a migration called name that depends on depends_on close a
 *		cycle of dependencies with the rows that exist?
 */
bool
am_catalog_depends_cycle(const char *name, Datum depends_on)
{
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		cycle;
	bool		isnull;

	values[0] = CStringGetTextDatum(name);
	values[1] = depends_on;
	SPI_connect();
	am_spi("WITH RECURSIVE d(n) AS ("
		   "  SELECT pg_catalog.unnest($2::pg_catalog.text[]) "
		   "  UNION "
		   "  SELECT pg_catalog.unnest(m.depends_on) "
		   "  FROM asyncmig.migration m JOIN d ON m.name = d.n) "
		   "SELECT EXISTS (SELECT 1 FROM d WHERE n = $1)",
		   2, types, values, NULL, true, SPI_OK_SELECT);
	cycle = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return cycle;
}

/*
 * am_catalog_in_progress
 *		Every IN PROGRESS row of this database.
 */
List *
am_catalog_in_progress(void)
{
	return am_fetch_migrations("SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE status = 'IN PROGRESS' ORDER BY id FOR UPDATE",
							   0, NULL, NULL, NULL, false);
}

/*
 * am_catalog_fail_broken_dependencies
 *		End in ERROR every queued row that depends on a row in ERROR, naming
 *		it; repeat along chains.  Returns how many rows it ended.
 */
int
am_catalog_fail_broken_dependencies(void)
{
	int			total = 0;

	SPI_connect();
	for (;;)
	{
		uint64		i;
		int			n;

		n = am_spi("WITH broken AS ("
				   "  SELECT m.id, (SELECT pg_catalog.string_agg("
				   "      '\"' || d.name || '\"', ', ' ORDER BY d.name) "
				   "    FROM asyncmig.migration d "
				   "    WHERE d.name = ANY (m.depends_on) AND d.status = 'ERROR') AS deps "
				   "  FROM asyncmig.migration m "
				   "  WHERE m.status = 'STARTED' AND m.direction = 'forwards' "
				   "    AND m.depends_on IS NOT NULL) "
				   "UPDATE asyncmig.migration m SET status = 'ERROR', "
				   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
				   "  meta = m.meta || pg_catalog.jsonb_build_object('error', "
				   "    pg_catalog.jsonb_build_object('message', "
				   "      'dependency ' || b.deps || ' ended in ERROR', "
				   "      'sqlstate', '55000')) "
				   "FROM broken b WHERE b.id = m.id AND b.deps IS NOT NULL "
				   "RETURNING m.name",
				   0, NULL, NULL, NULL, false, SPI_OK_UPDATE_RETURNING);
		if (n == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *name = SPI_getvalue(SPI_tuptable->vals[i],
											SPI_tuptable->tupdesc, 1);

			ereport(LOG,
					(errmsg("asyncmig migration \"%s\" failed: a dependency ended in ERROR",
							name)));
			am_catalog_notify(name, AM_STATUS_ERROR);
		}
		total += n;
	}
	SPI_finish();
	return total;
}

/*
 * am_catalog_fail_foreign
 *		End in ERROR the queued and running rows that were queued elsewhere
 *		(restored by pg_restore, copied from a template database): a
 *		restored database must not start executing on its own.  Returns how
 *		many it ended.
 */
int
am_catalog_fail_foreign(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	uint64		i;
	int			n;

	values[0] = am_origin();
	SPI_connect();
	n = am_spi("UPDATE asyncmig.migration SET status = 'ERROR', "
			   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
			   "  meta = (meta - 'guard') || pg_catalog.jsonb_build_object('error', "
			   "    pg_catalog.jsonb_build_object('message', "
			   "      'not run: it was queued in another database or cluster and restored or copied here', "
			   "      'hint', 'asyncmig.run() runs it here.', 'sqlstate', '55000')) "
			   "WHERE status IN ('STARTED', 'IN PROGRESS') "
			   "  AND meta -> 'origin' IS DISTINCT FROM $1::pg_catalog.jsonb "
			   "RETURNING name",
			   1, types, values, NULL, false, SPI_OK_UPDATE_RETURNING);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i],
										SPI_tuptable->tupdesc, 1);

		ereport(LOG,
				(errmsg("asyncmig migration \"%s\" not run: it was queued in another database or cluster",
						name)));
		am_catalog_notify(name, AM_STATUS_ERROR);
	}
	SPI_finish();
	return n;
}

/*
 * am_catalog_claim
 *		Mark the oldest runnable queued row IN PROGRESS for this worker and
 *		return it, or NULL.  Runnable: STARTED, queued here, not_before
 *		passed, and for a forwards run every dependency FINISHED forwards.
 *		A backwards run does not wait for its dependencies (they are undone
 *		after it, in the order the runs were queued).  Oldest: queued first.
 */
AmMigration *
am_catalog_claim(int pid)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2];
	List	   *rows;
	AmMigration *m;

	values[0] = Int32GetDatum(pid);
	values[1] = am_origin();
	rows = am_fetch_migrations(
							   "UPDATE asyncmig.migration SET status = 'IN PROGRESS', attempts = 1, "
							   "  started_at = pg_catalog.now(), finished_at = NULL, "
							   "  updated_at = pg_catalog.now(), "
							   "  meta = (meta - 'error' - 'guard') || pg_catalog.jsonb_build_object('pid', $1) "
							   "WHERE id = ("
							   "  SELECT m.id FROM asyncmig.migration m "
							   "  WHERE m.status = 'STARTED' "
							   "    AND m.meta -> 'origin' = $2::pg_catalog.jsonb "
							   "    AND (m.not_before IS NULL OR m.not_before <= pg_catalog.now()) "
							   "    AND (m.direction = 'backwards' OR "
							   "      NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(m.depends_on) dn "
							   "      WHERE NOT EXISTS (SELECT 1 FROM asyncmig.migration d "
							   "        WHERE d.name = dn AND d.status = 'FINISHED' "
							   "          AND d.direction = 'forwards'))) "
							   "  ORDER BY m.updated_at, m.id LIMIT 1 FOR UPDATE SKIP LOCKED) "
							   "RETURNING " AM_COLUMNS,
							   2, types, values, NULL, false);
	if (rows == NIL)
		return NULL;
	m = linitial(rows);
	am_catalog_notify(m->name, AM_STATUS_IN_PROGRESS);
	return m;
}

/*
 * am_catalog_next_wakeup
 *		The earliest not_before of a queued row still in the future, or 0.
 */
TimestampTz
am_catalog_next_wakeup(void)
{
	TimestampTz result = 0;
	bool		isnull;
	Datum		d;

	SPI_connect();
	am_spi("SELECT pg_catalog.min(not_before) FROM asyncmig.migration "
		   "WHERE status = 'STARTED' AND not_before > pg_catalog.now()",
		   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		result = DatumGetTimestampTz(d);
	SPI_finish();
	return result;
}

/*
 * am_catalog_set_guard
 *		Record (or with NULL, forget) what the sweep must clean up if the
 *		running statement dies: see executor.c.
 */
void
am_catalog_set_guard(int64 id, const char *guard_json)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = "  ";

	values[0] = Int64GetDatum(id);
	if (guard_json)
		values[1] = CStringGetTextDatum(guard_json);
	else
		nulls[1] = 'n';
	SPI_connect();
	am_spi("UPDATE asyncmig.migration SET meta = CASE WHEN $2 IS NULL "
		   "THEN meta - 'guard' "
		   "ELSE meta || pg_catalog.jsonb_build_object('guard', $2::pg_catalog.jsonb) END "
		   "WHERE id = $1",
		   2, types, values, nulls, false, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * am_catalog_count_attempt
 *		Count one more try of a running migration, after edata.
 */
void
am_catalog_count_attempt(int64 id, ErrorData *edata)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(edata->message ? edata->message : "");
	values[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	SPI_connect();
	am_spi("UPDATE asyncmig.migration SET attempts = attempts + 1, "
		   "updated_at = pg_catalog.now(), "
		   "meta = meta || pg_catalog.jsonb_build_object('retried_after', "
		   "  pg_catalog.jsonb_build_object('message', $2, 'sqlstate', $3)) "
		   "WHERE id = $1",
		   3, types, values, NULL, false, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * am_catalog_finish
 *		End a run: FINISHED when edata is NULL, else ERROR with the error's
 *		fields (message_override replaces its message) and the statement
 *		that failed in meta->'error'.
 */
void
am_catalog_finish(int64 id, ErrorData *edata, const char *statement,
				  const char *message_override)
{
	Oid			types[7] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	const char *message;
	char	   *name = NULL;
	const char *fields[4];
	int			i;

	values[0] = Int64GetDatum(id);
	SPI_connect();
	if (edata == NULL && message_override == NULL)
	{
		am_spi("UPDATE asyncmig.migration SET status = 'FINISHED', "
			   "finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
			   "meta = meta - 'error' - 'guard' - 'cancel_requested' "
			   "WHERE id = $1 RETURNING name",
			   1, types, values, NULL, false, SPI_OK_UPDATE_RETURNING);
	}
	else
	{
		message = message_override ? message_override :
			(edata && edata->message ? edata->message : "unknown error");
		values[1] = CStringGetTextDatum(message);
		values[2] = CStringGetTextDatum(edata ?
										unpack_sql_state(edata->sqlerrcode) :
										"57014");
		fields[0] = edata ? edata->detail : NULL;
		fields[1] = edata ? edata->hint : NULL;
		fields[2] = edata ? edata->context : NULL;
		fields[3] = statement;
		for (i = 0; i < 4; i++)
		{
			if (fields[i])
				values[3 + i] = CStringGetTextDatum(fields[i]);
			else
				nulls[3 + i] = 'n';
		}
		am_spi("UPDATE asyncmig.migration SET status = 'ERROR', "
			   "finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
			   "meta = (meta - 'guard' - 'cancel_requested') || "
			   "  pg_catalog.jsonb_build_object('error', "
			   "    pg_catalog.jsonb_strip_nulls(" AM_ERROR_JSON ")) "
			   "WHERE id = $1 RETURNING name",
			   7, types, values, nulls, false, SPI_OK_UPDATE_RETURNING);
	}
	if (SPI_processed == 1)
		name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (name)
		am_catalog_notify(name, edata || message_override ?
						  AM_STATUS_ERROR : AM_STATUS_FINISHED);
	SPI_finish();
}
