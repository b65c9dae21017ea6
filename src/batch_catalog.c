/*-------------------------------------------------------------------------
 *
 * batch_catalog.c
 *		The batch columns of asyncmig.migration (batch_relation, batch_key,
 *		batch_size, batch_pause) and a batched run's progress in
 *		meta->'batches':
 *
 *		{"last_key": "4130000",	the last key done, as text (NULL: none)
 *		 "batches": 413,		batches done, over every run
 *		 "rows": 4130000,		keys walked, over every run
 *		 "rows_affected": 4129874,	rows the statement processed
 *		 "estimate_rows": 10000000,	the table's size when the run began
 *		 "run_batches": 13, "run_rows": 130000,	done in the current run
 *		 "upper_key": "10000000",	the key's maximum when the run began:
 *							its batches stop there (NULL: no key)
 *		 "walk": {"column": "id", "index": "t_pkey", "index_oid": 16390,
 *				  "type": "bigint", "type_oid": 20, "collation": null,
 *				  "collation_oid": 0, "opclass": "int8_ops",
 *				  "opclass_oid": 3124},	the walk's key and order
 *		 "size": 4700,			keys the next batch asks for
 *		 "target_ms": 200,		asyncmig.batch_target_time (0: fixed size)
 *		 "last_batch_ms": 212}	how long the last batch took
 *
 * "walk" is written when a walk begins from its first key and kept while
 * it resumes: a run whose key no longer has that type, collation and
 * operator class ends ERROR (batch_run.c); restart => true forgets it with
 * the rest of the progress.  "upper_key" is written at the start of each
 * run; "size" and "target_ms" then and with each batch, so that a run
 * resumes with the size the last one had reached (batch_run.c).
 *
 * Every function runs inside am_catalog_enter() (as the table's owner,
 * search_path pinned).  The batch columns come with asyncmig 1.1: a
 * database whose extension is still 1.0 has none, and
 * am_batch_catalog_available() says so before anything reads them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "asyncmig.h"
#include "batch_catalog.h"
#include "catalog.h"

/*
 * am_batch_catalog_available
 *		Does this database's asyncmig.migration have the batch columns
 *		(extension 1.1 or later)?
 */
bool
am_batch_catalog_available(void)
{
	Oid			relid = am_catalog_relid(true);

	return OidIsValid(relid) &&
		get_attnum(relid, "batch_relation") != InvalidAttrNumber;
}

/*
 * am_batch_catalog_set_spec
 *		Make the row of that name (just inserted or queued again by the
 *		caller, and locked) a batched migration.  Its progress is kept, so
 *		that the new run resumes, unless it walked another table or key:
 *		then the keys it recorded mean nothing here, and guessing could
 *		apply a batch twice, so it is an error.
 */
void
am_batch_catalog_set_spec(const char *name, const AmBatchArgs *batch)
{
	Oid			types[5] = {TEXTOID, OIDOID, NAMEOID, INT4OID, INTERVALOID};
	Datum		values[5];

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(batch->relid);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(batch->key));
	values[3] = Int32GetDatum(batch->batch_size);
	values[4] = batch->pause;

	SPI_connect();
	if (am_catalog_spi("SELECT meta ->> 'batches' FROM asyncmig.migration "
					 "WHERE name = $1 AND meta ? 'batches' "
					 "AND (batch_relation IS DISTINCT FROM $2::pg_catalog.regclass "
					 "  OR batch_key IS DISTINCT FROM $3)",
					 3, types, values, NULL, true, SPI_OK_SELECT) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration \"%s\" has done batches over another table or key", name),
				 errdetail("Its progress: %s.",
						   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errhint("Schedule the new batches under a new name, or run it again as it was recorded with asyncmig.run(name, restart => true).")));
	am_catalog_spi("UPDATE asyncmig.migration SET batch_relation = $2, "
				 "batch_key = $3, batch_size = $4, batch_pause = $5 "
				 "WHERE name = $1",
				 5, types, values, NULL, false, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * am_batch_catalog_clear_spec
 *		The row of that name, queued again by schedule() with plain SQL, is
 *		no longer batched: forget its batch settings and progress.
 */
void
am_batch_catalog_clear_spec(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (!am_batch_catalog_available())
		return;
	values[0] = CStringGetTextDatum(name);
	am_catalog_exec("UPDATE asyncmig.migration SET batch_relation = NULL, "
				 "batch_key = NULL, batch_size = NULL, batch_pause = NULL, "
				 "meta = meta - 'batches' "
				 "WHERE name = $1 AND batch_relation IS NOT NULL",
				 1, types, values, NULL, false, SPI_OK_UPDATE);
}

/*
 * am_batch_catalog_is_batched
 *		Is the row of that name a batched migration?
 */
bool
am_batch_catalog_is_batched(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			n;

	if (!am_batch_catalog_available())
		return false;
	values[0] = CStringGetTextDatum(name);
	n = am_catalog_exec("SELECT 1 FROM asyncmig.migration "
					 "WHERE name = $1 AND batch_relation IS NOT NULL",
					 1, types, values, NULL, true, SPI_OK_SELECT);
	return n > 0;
}

/*
 * am_batch_catalog_forget_progress
 *		Start the next forwards run of a batched migration at its first key:
 *		after run(restart => true), and after a backwards run undid it.
 */
void
am_batch_catalog_forget_progress(int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	if (!am_batch_catalog_available())
		return;
	values[0] = Int64GetDatum(id);
	am_catalog_exec("UPDATE asyncmig.migration SET meta = meta - 'batches' "
				 "WHERE id = $1 AND meta ? 'batches'",
				 1, types, values, NULL, false, SPI_OK_UPDATE);
}

/*
 * am_batch_catalog_spec
 *		The batch settings and progress of row id, or NULL if it is not a
 *		batched migration (or the table has no batch columns).  Allocated
 *		in the caller's memory context.
 */
AmBatchSpec *
am_batch_catalog_spec(int64 id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	MemoryContext cxt = CurrentMemoryContext;
	AmBatchSpec *spec = NULL;

	if (!am_batch_catalog_available())
		return NULL;
	values[0] = Int64GetDatum(id);
	SPI_connect();
	if (am_catalog_spi("SELECT batch_relation::pg_catalog.oid, batch_key::pg_catalog.text, batch_size, "
					 "  (LEAST(pg_catalog.date_part('epoch', batch_pause), 1e12::pg_catalog.float8) * 1000)::pg_catalog.int8, "
					 "  meta #>> '{batches,last_key}', "
					 "  coalesce((meta #>> '{batches,batches}')::pg_catalog.int8, 0), "
					 "  coalesce((meta #>> '{batches,rows}')::pg_catalog.int8, 0), "
					 "  coalesce((meta #>> '{batches,rows_affected}')::pg_catalog.int8, 0), "
					 "  coalesce((meta #>> '{batches,walk,index_oid}')::pg_catalog.oid, 0), "
					 "  coalesce((meta #>> '{batches,walk,type_oid}')::pg_catalog.oid, 0), "
					 "  coalesce((meta #>> '{batches,walk,collation_oid}')::pg_catalog.oid, 0), "
					 "  coalesce((meta #>> '{batches,walk,opclass_oid}')::pg_catalog.oid, 0), "
					 "  coalesce(meta -> 'batches' ? 'upper_key', false), "
					 "  meta #>> '{batches,upper_key}', "
					 "  coalesce((meta #>> '{batches,size}')::pg_catalog.int4, 0) "
					 "FROM asyncmig.migration WHERE id = $1 AND batch_relation IS NOT NULL",
					 1, types, values, NULL, true, SPI_OK_SELECT) == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *v;

		spec = MemoryContextAllocZero(cxt, sizeof(AmBatchSpec));
		spec->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		spec->key = MemoryContextStrdup(cxt, SPI_getvalue(tup, desc, 2));
		spec->batch_size = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		spec->pause_ms = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		v = SPI_getvalue(tup, desc, 5);
		spec->last_key = v ? MemoryContextStrdup(cxt, v) : NULL;
		spec->batches = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
		spec->rows = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
		spec->rows_affected = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
		spec->walk_index = DatumGetObjectId(SPI_getbinval(tup, desc, 9, &isnull));
		spec->walk_typid = DatumGetObjectId(SPI_getbinval(tup, desc, 10, &isnull));
		spec->walk_collation = DatumGetObjectId(SPI_getbinval(tup, desc, 11, &isnull));
		spec->walk_opclass = DatumGetObjectId(SPI_getbinval(tup, desc, 12, &isnull));
		spec->has_upper = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
		v = SPI_getvalue(tup, desc, 14);
		spec->upper_key = v ? MemoryContextStrdup(cxt, v) : NULL;
		spec->size = DatumGetInt32(SPI_getbinval(tup, desc, 15, &isnull));
	}
	SPI_finish();
	return spec;
}

/*
 * am_batch_catalog_start_run
 *		A run of a batched migration begins: note the table's estimated size,
 *		count this run's batches from zero, and record the walk's key and
 *		order (walk_json, a jsonb object), its upper bound (NULL: the
 *		table had no key to walk), and the size of its first batch under
 *		the target time in effect.
 */
void
am_batch_catalog_start_run(int64 id, int64 estimate_rows, const char *walk_json,
						   const char *upper_key, int size, int target_ms)
{
	Oid			types[6] = {INT8OID, INT8OID, TEXTOID, TEXTOID, INT4OID, INT4OID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(id);
	values[1] = Int64GetDatum(estimate_rows);
	values[2] = CStringGetTextDatum(walk_json);
	values[3] = upper_key ? CStringGetTextDatum(upper_key) : (Datum) 0;
	nulls[3] = upper_key ? ' ' : 'n';
	values[4] = Int32GetDatum(size);
	values[5] = Int32GetDatum(target_ms);
	am_catalog_exec("UPDATE asyncmig.migration SET meta = meta || "
				 "pg_catalog.jsonb_build_object('batches', "
				 "  pg_catalog.jsonb_build_object('last_key', NULL, 'batches', 0, "
				 "    'rows', 0, 'rows_affected', 0) "
				 "  || coalesce(meta -> 'batches', '{}') "
				 "  || pg_catalog.jsonb_build_object('estimate_rows', $2, "
				 "    'run_batches', 0, 'run_rows', 0, "
				 "    'walk', $3::pg_catalog.jsonb, 'upper_key', $4, "
				 "    'size', $5, 'target_ms', $6)) "
				 "WHERE id = $1",
				 6, types, values, nulls, false, SPI_OK_UPDATE);
}

/*
 * am_batch_catalog_repin
 *		The walk goes on with another index in the same order (the pinned
 *		one was dropped or rebuilt): record it, in the batch's transaction.
 */
void
am_batch_catalog_repin(int64 id, Oid indexid)
{
	Oid			types[3] = {INT8OID, INT8OID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(id);
	values[1] = Int64GetDatum((int64) indexid);
	values[2] = CStringGetTextDatum(get_rel_name(indexid));
	am_catalog_exec("UPDATE asyncmig.migration SET meta = pg_catalog.jsonb_set(meta, "
				 "'{batches,walk}', (meta #> '{batches,walk}') || "
				 "pg_catalog.jsonb_build_object('index_oid', $2, 'index', $3)) "
				 "WHERE id = $1 AND meta #> '{batches,walk}' IS NOT NULL",
				 3, types, values, NULL, false, SPI_OK_UPDATE);
}

/*
 * am_batch_catalog_lock_run
 *		Lock the row of the run (id, claimed by pid) at the start of a
 *		batch's transaction, before the batch touches the table, without
 *		waiting: false if a session holds it (a superuser's SELECT ... FOR
 *		UPDATE left open).  The batch then does not run, and the worker
 *		comes back to it: waiting here, or for the progress's UPDATE after
 *		the batch, would wait without end (asyncmig.lock_timeout = 0) and
 *		would hold the batch's rows of the table meanwhile.  A row that is
 *		not that run's any more is an error.
 */
bool
am_batch_catalog_lock_run(int64 id, int pid)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		locked;

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(pid);
	SPI_connect();
	locked = am_catalog_spi("SELECT 1 FROM asyncmig.migration "
							"WHERE " AM_SAME_RUN " FOR UPDATE SKIP LOCKED",
							2, types, values, NULL, false, SPI_OK_SELECT) == 1;
	if (!locked &&
		am_catalog_spi("SELECT 1 FROM asyncmig.migration WHERE " AM_SAME_RUN,
					   2, types, values, NULL, true, SPI_OK_SELECT) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("asyncmig migration %lld is no longer IN PROGRESS in this worker", (long long) id),
				 errdetail("Its next batch was not run.")));
	SPI_finish();
	return locked;
}

/*
 * am_batch_catalog_progress
 *		One more batch done, up to last_key, in batch_ms, and the size of
 *		the next one: called in the batch's own transaction, so that the
 *		batch and this record commit together or not at all.  updated_at is
 *		left alone, so that the update can be HOT (it is in the queue
 *		index).
 */
void
am_batch_catalog_progress(int64 id, int pid, const char *last_key,
						  int64 walked, int64 affected, int size,
						  int target_ms, int64 batch_ms)
{
	Oid			types[8] = {INT8OID, INT4OID, TEXTOID, INT8OID, INT8OID,
							INT4OID, INT4OID, INT8OID};
	Datum		values[8];

	values[0] = Int64GetDatum(id);
	values[1] = Int32GetDatum(pid);
	values[2] = CStringGetTextDatum(last_key);
	values[3] = Int64GetDatum(walked);
	values[4] = Int64GetDatum(affected);
	values[5] = Int32GetDatum(size);
	values[6] = Int32GetDatum(target_ms);
	values[7] = Int64GetDatum(batch_ms);
	SPI_connect();
	if (am_catalog_spi("UPDATE asyncmig.migration m SET meta = m.meta || "
					 "pg_catalog.jsonb_build_object('batches', b.b || "
					 "  pg_catalog.jsonb_build_object('last_key', $3, "
					 "    'batches', (b.b ->> 'batches')::pg_catalog.int8 + 1, "
					 "    'rows', (b.b ->> 'rows')::pg_catalog.int8 + $4, "
					 "    'rows_affected', (b.b ->> 'rows_affected')::pg_catalog.int8 + $5, "
					 "    'run_batches', (b.b ->> 'run_batches')::pg_catalog.int8 + 1, "
					 "    'run_rows', (b.b ->> 'run_rows')::pg_catalog.int8 + $4, "
					 "    'size', $6, 'target_ms', $7, 'last_batch_ms', $8)) "
					 "FROM (SELECT meta -> 'batches' AS b FROM asyncmig.migration WHERE id = $1) b "
					 "WHERE " AM_SAME_RUN,
					 8, types, values, NULL, false, SPI_OK_UPDATE) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("asyncmig migration %lld is no longer " AM_STATUS_IN_PROGRESS " in this worker", (long long) id),
				 errdetail("Its batch was not applied.")));
	SPI_finish();
}

/*
 * am_batch_catalog_error_json
 *		The batch that failed, if one did, as a jsonb object text
 *		{"batch": {"number", "first_key", "last_key"}} for the worker to
 *		merge into meta->'error' in the write that ends the run ERROR (a
 *		second write would let wait() see the ERROR without it), or NULL.
 */
char *
am_batch_catalog_error_json(const AmBatchSpec *spec)
{
	StringInfoData buf;

	if (spec->failed_batch == 0)
		return NULL;
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"batch\": {\"number\": " INT64_FORMAT ", \"first_key\": ",
					 spec->failed_batch);
	if (spec->failed_first)
		escape_json(&buf, spec->failed_first);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"last_key\": ");
	if (spec->failed_last)
		escape_json(&buf, spec->failed_last);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, "}}");
	return buf.data;
}
