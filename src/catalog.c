/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		What every reader and writer of asyncmig.migration shares: finding
 *		the table, acting as its owner, the worker's own transactions, SPI
 *		helpers, the row as an AmMigration, and NOTIFY.
 *
 * Every statement on the table is in catalog*.c: this file, the SQL
 * functions' side (catalog_functions.c) and the worker's side
 * (catalog_worker.c).  They run through SPI as the table's owner (the
 * extension owner) with search_path pinned to pg_catalog, pg_temp, inside
 * am_catalog_enter()/am_catalog_leave(): the callers of schedule() and
 * friends hold no privilege on the table, and no object they create can
 * capture a name we use.  Every status change also sends NOTIFY asyncmig
 * with {"name": ..., "status": ...}, in the same transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "commands/extension.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "asyncmig.h"
#include "catalog.h"
#include "compat.h"
#include "session.h"

static AmMigration *am_row_to_migration(HeapTuple tup, TupleDesc desc,
										MemoryContext cxt);

/*
 * lock_timeout of a worker's bookkeeping transactions: a session holding
 * the table or a row (LOCK TABLE, SELECT ... FOR UPDATE left open, a
 * PREPAREd transaction) makes the worker give up and come back (the
 * launcher starts it again), or try again (am_catalog_write_run()).
 */
#define AM_CATALOG_LOCK_TIMEOUT_MS	5000

/* the table a worker claimed its run in; InvalidOid before a claim */
static Oid	am_claimed_relid = InvalidOid;

pg_noreturn static void am_catalog_lost_table(void);

/*
 * am_extension_owner
 *		Owner and schema of extension extoid, from pg_extension.
 */
static void
am_extension_owner(Oid extoid, Oid *owner, Oid *nspid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	*owner = InvalidOid;
	*nspid = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
		*nspid = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * am_namespace_owner
 *		Owner of schema nspid.
 */
static Oid
am_namespace_owner(Oid nspid)
{
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nspid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nspid);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * am_catalog_relid
 *		OID of the extension's own table asyncmig.migration, or InvalidOid
 *		(with missing_ok) when the extension is not installed in this
 *		database.
 *
 * NB: the rows are execution rights, so the table must be the one CREATE
 * EXTENSION made, not whatever is called asyncmig.migration now: a member
 * of extension asyncmig (pg_depend deptype 'e'), in the extension's schema,
 * owned by the extension owner.  A database owner who squatted the schema
 * before the install (1.0 did not refuse that) could otherwise rename it
 * and put a table of its own there, with rows owned by a superuser; a
 * schema owned by anyone but a superuser (left by such an install) is
 * refused too, or its owner could swap the table between this check and a
 * statement.  Such a table is an error; with missing_ok (the worker) it is
 * logged and treated as no table at all.  The statements of catalog*.c name the table
 * asyncmig.migration: that name is the verified table as long as its
 * schema cannot be renamed, which takes its owner, a superuser (the 1.1
 * install script refuses a schema owned by anyone else).
 */
Oid
am_catalog_relid(bool missing_ok)
{
	Oid			extoid = get_extension_oid("asyncmig", true);
	Oid			nspid = get_namespace_oid("asyncmig", true);
	Oid			relid = InvalidOid;
	Oid			extowner;
	Oid			extnsp;
	const char *problem = NULL;

	if (OidIsValid(nspid))
		relid = get_relname_relid("migration", nspid);
	if (!OidIsValid(extoid) || !OidIsValid(relid))
	{
		if (OidIsValid(am_claimed_relid))
			am_catalog_lost_table();
		if (!missing_ok)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("asyncmig.migration does not exist"),
					 errhint("Run CREATE EXTENSION asyncmig in this database.")));
		return InvalidOid;
	}

	am_extension_owner(extoid, &extowner, &extnsp);
	if (getExtensionOfObject(RelationRelationId, relid) != extoid)
		problem = "It is not a member of the extension.";
	else if (!superuser_arg(am_namespace_owner(nspid)))
		problem = psprintf("Its schema is owned by role \"%s\", which is not a superuser and could replace the table.",
						   GetUserNameFromId(am_namespace_owner(nspid), true) ?
						   GetUserNameFromId(am_namespace_owner(nspid), true) : "?");
	else if (nspid != extnsp)
		problem = "It is not in the extension's schema.";
	else if (get_rel_relkind(relid) != RELKIND_RELATION)
		problem = "It is not a table.";
	else
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		if (((Form_pg_class) GETSTRUCT(tup))->relowner != extowner)
			problem = "It is not owned by the extension's owner.";
		ReleaseSysCache(tup);
	}
	if (problem && OidIsValid(am_claimed_relid))
		am_catalog_lost_table();
	if (problem)
	{
		ereport(missing_ok ? LOG : ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("asyncmig.migration is not the table of extension asyncmig"),
				 errdetail_internal("%s", problem),
				 errhint("Someone replaced the schema or the table asyncmig.migration; "
						 "nothing in it is run.  A superuser should drop it and the extension "
						 "and install the extension again.")));
		return InvalidOid;
	}

	/* a worker's bookkeeping: the table it claimed its run in, or stop */
	if (OidIsValid(am_claimed_relid) && relid != am_claimed_relid)
		am_catalog_lost_table();
	return relid;
}

/*
 * am_catalog_check_claimed
 *		Between the statements of a run: stop (FATAL, nothing written, no
 *		more statements run) if the table the run was claimed in is gone.
 *		A run whose row was dropped with the extension has nobody to report
 *		to, and its remaining statements were not asked for any more.
 */
void
am_catalog_check_claimed(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (!OidIsValid(am_claimed_relid))
		return;
	StartTransactionCommand();
	(void) am_catalog_relid(true);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/*
 * am_catalog_lost_table
 *		The table a worker claimed its run in is gone (DROP EXTENSION, maybe
 *		followed by CREATE EXTENSION: a new row may have the old id).  Stop
 *		without touching anything.
 */
static void
am_catalog_lost_table(void)
{
	ereport(FATAL,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("asyncmig.migration was dropped while this worker ran a migration of it"),
			 errdetail("The worker stops without recording anything: its run belongs to a table that is gone.")));
}

/*
 * am_catalog_claimed_in
 *		A worker claimed its run in table relid: from now on its bookkeeping
 *		touches that table or nothing (see am_catalog_relid()).
 */
void
am_catalog_claimed_in(Oid relid)
{
	am_claimed_relid = relid;
}

/*
 * am_catalog_origin
 *		Where a queued run was queued: this cluster's system identifier and
 *		this database's OID, as jsonb text.  A row restored by pg_restore
 *		into another database or cluster (or copied by CREATE DATABASE
 *		... TEMPLATE) carries another origin, and workers do not run it.
 */
Datum
am_catalog_origin(void)
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
	Oid			relid = am_catalog_relid(false);
	HeapTuple	tup;
	Oid			owner;

	cxt->relid = relid;
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
	am_session_own_settings_push(&cxt->save_settings);
	/* never wait without end on a lock a session holds: fail, come back */
	LockTimeout = AM_CATALOG_LOCK_TIMEOUT_MS;
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
	am_session_own_settings_pop(&cxt->save_settings);
	RESUME_CANCEL_INTERRUPTS();
}

/*
 * am_catalog_spi
 *		Run one statement through SPI and check its result code.  Returns
 *		SPI_processed.  The caller is connected to SPI.
 */
int
am_catalog_spi(const char *sql, int nargs, Oid *types, Datum *values,
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
 * am_catalog_exec
 *		am_catalog_spi() in an SPI connection of its own, for the many
 *		statements whose only result is how many rows they touched.
 */
int
am_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, bool read_only, int expected)
{
	int			n;

	SPI_connect();
	n = am_catalog_spi(sql, nargs, types, values, nulls, read_only, expected);
	SPI_finish();
	return n;
}

/*
 * am_catalog_spi_bool
 *		am_catalog_spi() of a SELECT of one boolean (EXISTS ...), in the
 *		caller's SPI connection: its value.
 */
bool
am_catalog_spi_bool(const char *sql, int nargs, Oid *types, Datum *values,
					bool read_only)
{
	bool		isnull;

	am_catalog_spi(sql, nargs, types, values, NULL, read_only, SPI_OK_SELECT);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * am_catalog_time
 *		Run a read-only SELECT of one timestamptz (a min() of wake-up times)
 *		in an SPI connection of its own: its value, or 0 for NULL.
 */
TimestampTz
am_catalog_time(const char *sql, int nargs, Oid *types, Datum *values)
{
	TimestampTz result = 0;
	bool		isnull;
	Datum		d;

	SPI_connect();
	am_catalog_spi(sql, nargs, types, values, NULL, true, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		result = DatumGetTimestampTz(d);
	SPI_finish();
	return result;
}

/*
 * am_catalog_update_by_id
 *		Run an UPDATE of one row whose id is its only parameter, $1.
 */
void
am_catalog_update_by_id(const char *sql, int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(id);
	am_catalog_exec(sql, 1, types, values, NULL, false, SPI_OK_UPDATE);
}

/*
 * am_catalog_strdup_value
 *		Column col of tup as text, copied into cxt; NULL for SQL NULL.
 */
char *
am_catalog_strdup_value(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* the words of AmStatus and AmDirection, in their order */
static const char *const am_status_names[] = {
	AM_STATUS_SCHEDULED, AM_STATUS_STARTED, AM_STATUS_IN_PROGRESS,
	AM_STATUS_FINISHED, AM_STATUS_ERROR
};
static const char *const am_direction_names[] = {
	AM_DIRECTION_FORWARDS, AM_DIRECTION_BACKWARDS
};

/*
 * am_catalog_status_parse
 *		The status of a row, as read: the one place that compares status
 *		words.  The table's CHECK admits no other word.
 */
AmStatus
am_catalog_status_parse(const char *status)
{
	int			i;

	for (i = 0; i < (int) lengthof(am_status_names); i++)
		if (status != NULL && strcmp(status, am_status_names[i]) == 0)
			return (AmStatus) i;
	elog(ERROR, "asyncmig: unknown status \"%s\"", status ? status : "(null)");
	return AM_ERROR;			/* keep the compiler quiet */
}

/*
 * am_catalog_status_name
 *		The word of status, for SQL and messages.
 */
const char *
am_catalog_status_name(AmStatus status)
{
	return am_status_names[status];
}

/*
 * am_catalog_direction_parse
 *		The direction of a row, as read (NULL: forwards).
 */
AmDirection
am_catalog_direction_parse(const char *direction)
{
	if (direction != NULL && strcmp(direction, AM_DIRECTION_BACKWARDS) == 0)
		return AM_BACKWARDS;
	return AM_FORWARDS;
}

/*
 * am_catalog_direction_name
 *		The word of direction, for SQL and messages.
 */
const char *
am_catalog_direction_name(AmDirection direction)
{
	return am_direction_names[direction];
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
	m->name = am_catalog_strdup_value(tup, desc, 2, cxt);
	m->status = am_catalog_status_parse(SPI_getvalue(tup, desc, 3));
	m->direction = am_catalog_direction_parse(SPI_getvalue(tup, desc, 4));
	m->forwards_sql = am_catalog_strdup_value(tup, desc, 5, cxt);
	m->backwards_sql = am_catalog_strdup_value(tup, desc, 6, cxt);
	m->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
	m->search_path = am_catalog_strdup_value(tup, desc, 8, cxt);
	m->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
	d = SPI_getbinval(tup, desc, 10, &isnull);
	m->timeout_ms = isnull ? 0 : DatumGetInt64(d);
	m->timeout_text = am_catalog_strdup_value(tup, desc, 11, cxt);
	m->guard = am_catalog_strdup_value(tup, desc, 12, cxt);
	m->cancel_requested = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
	m->pid = DatumGetInt32(SPI_getbinval(tup, desc, 14, &isnull));
	return m;
}

/*
 * am_catalog_fetch
 *		Run a statement that returns AM_COLUMNS rows; return them as a List
 *		of AmMigration in the caller's memory context.
 */
List *
am_catalog_fetch(const char *sql, int nargs, Oid *types, Datum *values,
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
 *		NOTIFY asyncmig, '{"id": ..., "status": ...}' (sent at commit) for
 *		the row named name.  Every role that can connect may LISTEN, and a
 *		payload cannot be filtered per listener: so it carries only the
 *		row's id and its new status, never its name, owner, SQL or error.
 *		A listener reads asyncmig.status again, which shows it only the
 *		rows of the roles it is a member of.
 */
void
am_catalog_notify(const char *name, const char *status)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(status);
	am_catalog_exec("SELECT pg_catalog.pg_notify('" AM_NOTIFY_CHANNEL "', "
		   "pg_catalog.json_build_object('id', m.id, 'status', $2)::pg_catalog.text) "
		   "FROM asyncmig.migration m WHERE m.name OPERATOR(pg_catalog.=) $1",
		   2, types, values, NULL, false, SPI_OK_SELECT);
}
