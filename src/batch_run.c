/*-------------------------------------------------------------------------
 *
 * batch_run.c
 *		The worker's batch loop: walk a table's key in order, batch_size
 *		keys at a time, and run the migration's statement once per batch
 *		with $1 and $2 the first and the last key of the batch.
 *
 * Exactly once: each batch is one transaction that finds the batch's
 * bounds, runs the statement and records the last key done in the row
 * (meta->'batches'); they commit together or not at all.  A crash, a
 * terminate, a cancel or a timeout loses at most the batch that was
 * running, and the next forwards run starts after the last key recorded.
 *
 * The walk is keyset pagination over the key's btree index:
 *		WHERE key > last AND key <= upper ORDER BY key LIMIT batch_size
 * never OFFSET and never arithmetic on keys, so gaps, uuids, text and
 * timestamps all work, and each batch costs the same at the end of the
 * table as at its start.  It compares with the key type's default btree
 * operators and the column's collation, the order in which the statement's
 * "BETWEEN $1 AND $2" compares (batch_check.c); that order, the index and
 * the upper bound (the key's maximum when the run began: rows moved or
 * created beyond it are not part of the run, so a batch that moves keys
 * ahead cannot make the run endless) are fixed when the run begins and
 * recorded with its progress.  A resumed run whose key no longer has that
 * type, collation and operator class ends ERROR.  A key value shared by
 * several rows is never split: the statement's "BETWEEN $1 AND $2" takes
 * every row of the last key, and the next batch starts after it.  Rows
 * whose key is NULL are not walked.
 *
 * Sized to a time: under asyncmig.batch_target_time, batch_size is the
 * first and the largest size, and each next batch asks for as many keys as
 * the target time holds at the time per key of the batches done
 * (am_batch_run_next_size()).  The size changes only the LIMIT of the
 * walk: each batch still starts after the last key recorded, so sizes
 * cannot skip or repeat a key.  The size is recorded with each batch, and
 * a resumed run starts with it.
 *
 * Gentle: asyncmig.lock_timeout applies to each batch; a batch that fails
 * on a lock timeout, deadlock or serialization failure is tried again (the
 * executor's policy, counted per batch); between batches the worker
 * sleeps the migration's pause and looks for a cancel and its timeout.
 *
 * The caller (the worker) has become the migration's owner and set its
 * session (search_path, statement_timeout) before; the statement runs
 * through SPI as that owner.  Keys are converted to and from text (the
 * form they have in meta->'batches') with fixed DateStyle, IntervalStyle
 * and extra_float_digits, so that a key reads back as the same value.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "optimizer/plancat.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "asyncmig.h"
#include "batch_check.h"
#include "batch_run.h"
#include "catalog_worker.h"
#include "settings.h"

/* a session holds the run's row: look again after */
#define AM_BATCH_BUSY_RETRY_MS	1000

/*
 * Sizing to asyncmig.batch_target_time (am_batch_run_next_size()).  The
 * time per key is smoothed over the batches done, the last one weighing
 * half, so that one batch slowed by a lock wait or a checkpoint halves the
 * size at most.  A size shrinks at most 4 times per batch and grows at
 * most 2 times: a batch over its time makes writers wait now, one under
 * it only costs a little throughput, so slow batches are cut fast and
 * sizes come back with care.  Within 10% of the target the size stays (no
 * jitter).  Never below batch_size / 100: a statement whose time is mostly
 * per batch (a scan of another table) gets no faster with fewer keys, and
 * that floor bounds what sizing can cost it at 100 times the batches.
 */
#define AM_BATCH_SMOOTHING		0.5
#define AM_BATCH_MAX_SHRINK		4.0
#define AM_BATCH_MAX_GROWTH		2.0
#define AM_BATCH_TOLERANCE		0.1
#define AM_BATCH_MIN_FRACTION	100

/* what one batch did */
typedef struct AmBatchDone
{
	char	   *first_key;		/* NULL until the bounds are known */
	char	   *last_key;
	int64		walked;
	int64		affected;
	int64		ms;				/* how long it took, up to its record */
	int			next_size;		/* and the next batch's size */
	double		key_ms;
} AmBatchDone;

static int	am_batch_fixed_settings(void);
static char *am_batch_operator(Oid opr);
static char *am_batch_bounds_sql(AmBatchKey *key, const char *attname,
								 bool after);
static char *am_batch_walk_json(AmBatchKey *key);
static char *am_batch_upper_key(AmBatchKey *key, MemoryContext into);
static void am_batch_pin(AmMigration *m, AmBatchSpec *spec, AmBatchKey *key,
						 MemoryContext into);
static int64 am_batch_estimate(Oid relid);
static int	am_batch_run_first_size(const AmBatchSpec *spec);
static int	am_batch_run_next_size(const AmBatchSpec *spec, int64 walked,
								   double ms, double *key_ms);
static int64 am_batch_replica_lag_kb(void);
static void am_batch_wait_for_replicas(AmMigration *m, AmBatchSpec *spec);
static bool am_batch_one(AmMigration *m, AmBatchSpec *spec, AmBatchKey *key,
						 MemoryContext keep, AmBatchDone *b, bool *busy);

/*
 * am_batch_fixed_settings
 *		Pin, until AtEOXact_GUC() with the returned level, the settings that
 *		key text depends on, and search_path for the statements we write.
 */
static int
am_batch_fixed_settings(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("datestyle", "ISO, YMD",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/*
 * am_batch_operator
 *		OPERATOR(schema.name) for an operator, so that the walk uses exactly
 *		the index's operators, whatever the search_path holds.
 */
static char *
am_batch_operator(Oid opr)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Form_pg_operator op;
	char	   *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)",
					  quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

/*
 * am_batch_bounds_sql
 *		The query that finds the next batch: its first key, its last key and
 *		how many keys it walked.  $1 is batch_size, $2 the upper bound; with
 *		after, $3 is the last key done.  The window keeps memory constant
 *		however large the batch: only one row leaves the LIMIT's sort.  No
 *		COLLATE: the column's own collation, as in the batch statement.
 */
static char *
am_batch_bounds_sql(AmBatchKey *key, const char *attname, bool after)
{
	char	   *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(key->relid)),
												 get_rel_name(key->relid));
	const char *col = quote_identifier(attname);
	char	   *lt = am_batch_operator(key->lt_opr);

	return psprintf("SELECT pg_catalog.first_value(k) OVER w, k, pg_catalog.row_number() OVER w "
					"FROM (SELECT %s AS k FROM %s WHERE %s %s $2%s%s%s "
					"  ORDER BY %s USING %s LIMIT $1) s "
					"WINDOW w AS (ORDER BY k USING %s ROWS UNBOUNDED PRECEDING) "
					"ORDER BY 3 DESC LIMIT 1",
					col, rel, col, am_batch_operator(key->le_opr),
					after ? " AND " : "", after ? col : "",
					after ? psprintf(" %s $3", am_batch_operator(key->gt_opr)) : "",
					col, lt, lt);
}

/*
 * am_batch_walk_json
 *		The walk's key and order as recorded in meta->'batches'->'walk'.
 */
static char *
am_batch_walk_json(AmBatchKey *key)
{
	StringInfoData buf;
	HeapTuple	tup = SearchSysCache1(CLAOID, ObjectIdGetDatum(key->opclass));

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator class %u", key->opclass);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"column\": ");
	escape_json(&buf, key->attname);
	appendStringInfoString(&buf, ", \"index\": ");
	escape_json(&buf, get_rel_name(key->indexid));
	appendStringInfo(&buf, ", \"index_oid\": %u, \"type\": ", key->indexid);
	escape_json(&buf, format_type_be(key->typid));
	appendStringInfo(&buf, ", \"type_oid\": %u, \"collation\": ", key->typid);
	if (OidIsValid(key->collation))
		escape_json(&buf, get_collation_name(key->collation));
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"collation_oid\": %u, \"opclass\": ", key->collation);
	escape_json(&buf, NameStr(((Form_pg_opclass) GETSTRUCT(tup))->opcname));
	appendStringInfo(&buf, ", \"opclass_oid\": %u}", key->opclass);
	ReleaseSysCache(tup);
	return buf.data;
}

/*
 * am_batch_upper_key
 *		The key's maximum now, as text (NULL: no key to walk): the upper
 *		bound of a walk that begins.  Read in the walk's order, through
 *		its index, with the settings key text depends on.
 */
static char *
am_batch_upper_key(AmBatchKey *key, MemoryContext into)
{
	int			level = am_batch_fixed_settings();
	char	   *rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(key->relid)),
												 get_rel_name(key->relid));
	const char *col = quote_identifier(key->attname);
	char	   *upper = NULL;

	SPI_connect();
	if (SPI_execute(psprintf("SELECT %s FROM %s WHERE %s IS NOT NULL ORDER BY %s USING %s LIMIT 1",
							 col, rel, col, col, am_batch_operator(key->gt_opr)),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "asyncmig: could not read the key's maximum");
	if (SPI_processed == 1)
		upper = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	upper = upper ? MemoryContextStrdup(into, upper) : NULL;
	SPI_finish();
	AtEOXact_GUC(true, level);
	return upper;
}

/*
 * am_batch_pin
 *		When a run begins: a walk that began before (progress recorded)
 *		goes on only with the key it began with (its type, collation and
 *		operator class); a new walk records them.  Either way the run's
 *		upper bound is the key's maximum now: rows beyond it are not part
 *		of this run (a later run walks on from the last key done).
 *		Progress recorded before the walk was (asyncmig 1.1) is resumed in
 *		today's order, which the LOG says.
 */
static void
am_batch_pin(AmMigration *m, AmBatchSpec *spec, AmBatchKey *key,
			 MemoryContext into)
{
	if (spec->last_key && OidIsValid(spec->walk_typid) &&
		(spec->walk_typid != key->typid ||
		 spec->walk_collation != key->collation ||
		 spec->walk_opclass != key->opclass))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the key of batched migration \"%s\" changed since its walk began", m->name),
				 errdetail("Column \"%s\" was of %s when the walk began, and is now of %s: the last key done (%s) would be read in another order.",
						   key->attname,
						   am_batch_check_describe_order(spec->walk_typid, spec->walk_collation, spec->walk_opclass),
						   am_batch_check_describe_order(key->typid, key->collation, key->opclass),
						   spec->last_key),
				 errhint("Start the walk again from its first key with asyncmig.run('%s', restart => true); the batch statement is then applied again to the rows done already.",
						 m->name)));
	spec->has_upper = true;
	spec->upper_key = am_batch_upper_key(key, into);
	if (spec->last_key && !OidIsValid(spec->walk_typid))
		ereport(LOG,
				(errmsg("asyncmig migration \"%s\": its progress has no recorded walk; resuming in the order of %s, up to key %s",
						m->name, am_batch_check_describe_order(key->typid, key->collation, key->opclass),
						spec->upper_key ? spec->upper_key : "(none)")));
}

/*
 * am_batch_estimate
 *		The rows of a table and of its partitions or children (the walk
 *		sees them all), as the planner estimates them: the "~N rows" of
 *		the status.
 */
static int64
am_batch_estimate(Oid relid)
{
	List	   *rels = find_all_inheritors(relid, AccessShareLock, NULL);
	ListCell   *lc;
	double		total = 0;

	foreach(lc, rels)
	{
		Relation	rel = try_relation_open(lfirst_oid(lc), AccessShareLock);
		BlockNumber pages;
		double		tuples;
		double		allvisfrac;

		if (rel == NULL)
			continue;
		if (rel->rd_rel->relkind == RELKIND_RELATION ||
			rel->rd_rel->relkind == RELKIND_MATVIEW)
		{
			/* live rows as of the last VACUUM/ANALYZE, else from its size */
			tuples = rel->rd_rel->reltuples;
			if (tuples < 0)
				estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
			total += tuples;
		}
		relation_close(rel, AccessShareLock);
	}
	return (int64) total;
}

/*
 * am_batch_run_first_size
 *		The size of a run's first batch: batch_size, or with a target time
 *		the size a run before this one had reached (its last key is where
 *		this one goes on), within the bounds of am_batch_run_next_size().
 */
static int
am_batch_run_first_size(const AmBatchSpec *spec)
{
	int			floor_size = Max(1, spec->batch_size / AM_BATCH_MIN_FRACTION);

	if (am_settings_batch_target_time <= 0 || spec->size <= 0)
		return spec->batch_size;
	return Min(Max(spec->size, floor_size), spec->batch_size);
}

/*
 * am_batch_run_next_size
 *		The size of the next batch, after one that walked that many keys in
 *		ms milliseconds at spec->size keys: as many keys as
 *		asyncmig.batch_target_time holds at the smoothed time per key
 *		(*key_ms, updated), within the bounds said above AM_BATCH_SMOOTHING.
 *		Without a target, batch_size.
 */
static int
am_batch_run_next_size(const AmBatchSpec *spec, int64 walked, double ms,
					   double *key_ms)
{
	double		target = am_settings_batch_target_time;
	double		size = spec->size;
	double		per_key;
	double		next;

	*key_ms = 0;
	if (target <= 0 || walked <= 0)
		return spec->batch_size;
	per_key = ms / (double) walked;
	*key_ms = spec->key_ms > 0 ?
		AM_BATCH_SMOOTHING * per_key + (1 - AM_BATCH_SMOOTHING) * spec->key_ms :
		per_key;
	next = *key_ms > 0 ? target / *key_ms : size * AM_BATCH_MAX_GROWTH;
	if (next >= size * (1 - AM_BATCH_TOLERANCE) &&
		next <= size * (1 + AM_BATCH_TOLERANCE))
		next = size;
	next = Max(next, size / AM_BATCH_MAX_SHRINK);
	next = Min(next, size * AM_BATCH_MAX_GROWTH);
	next = Max(next, (double) Max(1, spec->batch_size / AM_BATCH_MIN_FRACTION));
	next = Min(next, (double) spec->batch_size);
	return (int) next;
}

/*
 * am_batch_one
 *		Run the next batch in a transaction of its own, and record it in
 *		the row in that same transaction.  Returns true when no key is left
 *		(nothing was run).  b's keys are copied into keep as soon as they
 *		are known, so that an error can name the batch.  *busy says that a
 *		session held the run's row: nothing was run, try again later.
 */
static bool
am_batch_one(AmMigration *m, AmBatchSpec *spec, AmBatchKey *key,
			 MemoryContext keep, AmBatchDone *b, bool *busy)
{
	AmCatalogContext ccxt;
	int			level;
	bool		done;
	bool		repinned;
	char	   *attname;
	Oid			types[3];
	Datum		values[3];
	Datum		bounds[2];
	Oid			infunc;
	Oid			ioparam;
	bool		isnull;
	Oid			outfunc;
	bool		varlena;
	int			rc;
	TimestampTz begun;

	memset(b, 0, sizeof(AmBatchDone));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	PushActiveSnapshot(GetTransactionSnapshot());

	/* the run's row first, without waiting (am_batch_catalog_lock_run()) */
	am_catalog_enter(&ccxt);
	*busy = !am_batch_catalog_lock_run(m->id, MyProcPid);
	am_catalog_leave(&ccxt);
	if (*busy)
	{
		PopActiveSnapshot();
		if (StatementTimeout > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);
		CommitTransactionCommand();
		return false;
	}
	SPI_connect();
	begun = GetCurrentTimestamp();

	/*
	 * The bounds, in the walk's pinned order, up to its upper bound; the key
	 * and its index checked by OID (an index rebuilt in the same order is
	 * taken instead, and recorded with this batch).
	 */
	level = am_batch_fixed_settings();
	repinned = am_batch_check_pinned(key, &attname);
	if (spec->upper_key == NULL)
	{
		/* the table had no key when the walk began */
		AtEOXact_GUC(true, level);
		SPI_finish();
		PopActiveSnapshot();
		if (StatementTimeout > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);
		CommitTransactionCommand();
		return true;
	}
	getTypeInputInfo(key->typid, &infunc, &ioparam);
	types[0] = INT8OID;
	values[0] = Int64GetDatum(spec->size);
	types[1] = types[2] = key->typid;
	values[1] = OidInputFunctionCall(infunc, spec->upper_key, ioparam, -1);
	if (spec->last_key)
		values[2] = OidInputFunctionCall(infunc, spec->last_key, ioparam, -1);
	rc = SPI_execute_with_args(am_batch_bounds_sql(key, attname, spec->last_key != NULL),
							   spec->last_key ? 3 : 2, types, values, NULL,
							   false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "asyncmig: could not find the next batch (%s)",
			 SPI_result_code_string(rc));
	done = (SPI_processed == 0);
	if (!done)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		bounds[0] = SPI_getbinval(tup, desc, 1, &isnull);
		bounds[1] = SPI_getbinval(tup, desc, 2, &isnull);
		b->walked = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		getTypeOutputInfo(key->typid, &outfunc, &varlena);
		b->first_key = MemoryContextStrdup(keep, OidOutputFunctionCall(outfunc, bounds[0]));
		b->last_key = MemoryContextStrdup(keep, OidOutputFunctionCall(outfunc, bounds[1]));
	}
	AtEOXact_GUC(true, level);

	/* the statement, as the owner, with the migration's search_path */
	if (!done)
	{
		char	   *activity = psprintf("/* asyncmig batch %lld: keys %s to %s */ %s",
										(long long) (spec->batches + 1),
										b->first_key, b->last_key,
										m->forwards_sql);

		pgstat_report_activity(STATE_RUNNING, activity);
		set_ps_display(psprintf("batch %lld", (long long) (spec->batches + 1)));
		types[0] = types[1] = key->typid;
		rc = SPI_execute_with_args(m->forwards_sql, 2, types, bounds, NULL,
								   false, 0);
		if (rc < 0)
			elog(ERROR, "asyncmig: the batch statement failed (%s)",
				 SPI_result_code_string(rc));
		b->affected = (int64) SPI_processed;
	}
	SPI_finish();

	/* the progress and the next size, in the batch's transaction */
	if (!done)
	{
		int64		us = GetCurrentTimestamp() - begun;

		b->ms = us / 1000;
		b->next_size = am_batch_run_next_size(spec, b->walked, us / 1000.0,
											  &b->key_ms);
		am_catalog_enter(&ccxt);
		am_batch_catalog_progress(m->id, MyProcPid, b->last_key, b->walked,
								  b->affected, b->next_size,
								  am_settings_batch_target_time, b->ms);
		if (repinned)
			am_batch_catalog_repin(m->id, key->indexid);
		am_catalog_leave(&ccxt);
	}
	PopActiveSnapshot();
	if (StatementTimeout > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);
	CommitTransactionCommand();
	set_ps_display("idle");
	pgstat_report_activity(STATE_IDLE, NULL);
	return done;
}

/*
 * am_batch_replica_lag_kb
 *		WAL (kB) that the streaming replica furthest behind has not replayed
 *		yet; 0 without replicas.  Read as the table's owner (the extension
 *		owner: pg_stat_replication shows positions to privileged roles only).
 */
static int64
am_batch_replica_lag_kb(void)
{
	AmCatalogContext ccxt;
	int64		lag = 0;
	bool		isnull;
	Datum		d;

	am_catalog_begin(&ccxt);
	SPI_connect();
	if (SPI_execute("SELECT (pg_catalog.max(pg_catalog.pg_wal_lsn_diff("
					"  pg_catalog.pg_current_wal_lsn(), replay_lsn)) / 1024)::pg_catalog.int8 "
					"FROM pg_catalog.pg_stat_replication WHERE replay_lsn IS NOT NULL",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "asyncmig: could not read pg_stat_replication");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		lag = DatumGetInt64(d);
	SPI_finish();
	am_catalog_commit(&ccxt);
	return lag;
}

/*
 * am_batch_wait_for_replicas
 *		Between batches, hold off while a replica's replay lag is over
 *		asyncmig.max_replica_lag (a backfill must not leave the replicas
 *		that serve reads behind), looking again every second; a cancel or
 *		the timeout ends the wait (the next batch's check raises it).
 */
static void
am_batch_wait_for_replicas(AmMigration *m, AmBatchSpec *spec)
{
	bool		reported = false;

	for (;;)
	{
		int64		lag;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (am_settings_max_replica_lag <= 0)
			return;
		lag = am_batch_replica_lag_kb();
		if (lag <= am_settings_max_replica_lag)
		{
			if (reported)
				ereport(LOG,
						(errmsg("asyncmig migration \"%s\": replicas caught up (%lld kB behind), going on",
								m->name, (long long) lag)));
			return;
		}
		if (!reported)
			ereport(LOG,
					(errmsg("asyncmig migration \"%s\": holding off after batch %lld: a replica is %lld kB behind, over asyncmig.max_replica_lag (%d kB)",
							m->name, (long long) spec->batches, (long long) lag,
							am_settings_max_replica_lag)));
		reported = true;
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("/* asyncmig batch %lld: waiting for replicas, %lld kB behind */",
										(long long) (spec->batches + 1), (long long) lag));
		am_exec_sleep(1000);
		if (am_exec_interrupted() || QueryCancelPending || ProcDiePending)
			return;
	}
}

/*
 * am_batch_run_forwards
 *		Run a batched migration's forwards run, from spec's last key on.
 *		Returns true when every key has been walked; else fills *res (and
 *		spec->failed_* when a batch failed).
 */
bool
am_batch_run_forwards(AmMigration *m, AmBatchSpec *spec, AmExecResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext keep = AllocSetContextCreate(cxt, "asyncmig batch",
											   ALLOCSET_SMALL_SIZES);
	AmBatchDone *batch_done = palloc(sizeof(AmBatchDone));
	AmCatalogContext ccxt;
	AmBatchKey key;
	char		lock_timeout[32];
	int			attempt = 1;
	int			busy_tries = 0;
	TimestampTz start = GetCurrentTimestamp();
	int64		run_batches = 0;

	memset(res, 0, sizeof(AmExecResult));
	snprintf(lock_timeout, sizeof(lock_timeout), "%d", am_settings_lock_timeout);
	(void) set_config_option("lock_timeout", lock_timeout,
							 PGC_SUSET, PGC_S_CLIENT, GUC_ACTION_SET, true, 0, false);

	/* the key must still be there; note the table's size for the status */
	PG_TRY();
	{
		int64		estimate;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		am_batch_check_key(spec->relid, spec->key, &key, false, spec->walk_index);
		key.attname = MemoryContextStrdup(cxt, key.attname);
		am_batch_pin(m, spec, &key, cxt);

		/*
		 * The statement as this worker parses it must be what was checked:
		 * one DML statement with $1 and $2 (SPI would run every statement
		 * of a text that parses differently here, with other settings than
		 * the caller's, e.g. standard_conforming_strings), that moves no
		 * key and that the owner may run.  Checked here again also because
		 * one scheduled with depends_on could not be analyzed then.
		 */
		am_batch_check_sql(m->forwards_sql, &key, true);
		estimate = am_batch_estimate(spec->relid);
		spec->size = am_batch_run_first_size(spec);
		spec->key_ms = 0;
		am_catalog_enter(&ccxt);
		am_batch_catalog_start_run(m->id, estimate, am_batch_walk_json(&key),
								   spec->upper_key, spec->size,
								   am_settings_batch_target_time);
		am_catalog_leave(&ccxt);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		res->edata = am_exec_catch(cxt, false);
		res->statement = m->forwards_sql;
		return false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);

	if (spec->last_key)
		ereport(LOG,
				(errmsg("asyncmig migration \"%s\": resuming after key %s (%lld batches, %lld rows done), %d keys per batch%s",
						m->name, spec->last_key, (long long) spec->batches,
						(long long) spec->rows, spec->size,
						am_settings_batch_target_time > 0 ? " at first" : "")));
	else
		ereport(LOG,
				(errmsg("asyncmig migration \"%s\": walking the key from its first value up to %s, %d keys per batch%s",
						m->name, spec->upper_key ? spec->upper_key : "(none: no key)",
						spec->size,
						am_settings_batch_target_time > 0 ? " at first" : "")));

	for (;;)
	{
		/*
		 * Through a pointer: am_batch_one() fills it inside PG_TRY, and a
		 * local struct changed between setjmp and longjmp may be read back
		 * stale on the error path (it was, with gcc 14: no batch bounds).
		 */
		AmBatchDone *b = batch_done;
		ErrorData  *edata = NULL;
		bool		done = false;
		bool		busy = false;

		MemoryContextReset(keep);
		memset(b, 0, sizeof(AmBatchDone));
		PG_TRY();
		{
			am_exec_check_interrupted();
			done = am_batch_one(m, spec, &key, keep, b, &busy);
		}
		PG_CATCH();
		{
			edata = am_exec_catch(cxt, false);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(cxt);

		if (edata == NULL && busy)
		{
			/* a session holds the row: come back, never wait on it */
			if (busy_tries++ % 60 == 0)
				ereport(LOG,
						(errmsg("asyncmig migration \"%s\": its row is locked by another session; batch %lld waits",
								m->name, (long long) (spec->batches + 1)),
						 errhint("End the transaction that locked it (see pg_locks and pg_prepared_xacts).")));
			am_exec_sleep(AM_BATCH_BUSY_RETRY_MS);
			continue;
		}
		busy_tries = 0;
		if (edata == NULL)
		{
			if (done)
				break;
			if (spec->last_key)
				pfree(spec->last_key);
			spec->last_key = pstrdup(b->last_key);
			spec->batches++;
			spec->rows += b->walked;
			spec->rows_affected += b->affected;
			spec->size = b->next_size;
			spec->key_ms = b->key_ms;
			run_batches++;
			attempt = 1;
			am_exec_sleep(spec->pause_ms);
			am_batch_wait_for_replicas(m, spec);
			continue;
		}

		if (am_exec_retry(m, edata,
						  psprintf("batch %lld", (long long) (spec->batches + 1)),
						  true, &attempt, res))
			continue;

		res->edata = edata;
		res->statement = m->forwards_sql;
		if (b->first_key && res->message == NULL)
		{
			spec->failed_batch = spec->batches + 1;
			spec->failed_first = pstrdup(b->first_key);
			spec->failed_last = pstrdup(b->last_key);
			edata->context = psprintf("%s%sbatch %lld, keys %s to %s",
									  edata->context ? edata->context : "",
									  edata->context ? "\n" : "",
									  (long long) spec->failed_batch,
									  spec->failed_first, spec->failed_last);
		}
		MemoryContextDelete(keep);
		return false;
	}

	ereport(LOG,
			(errmsg("asyncmig migration \"%s\": %lld batches in this run, %lld in all, %lld rows walked, %lld affected, in %.3f s",
					m->name, (long long) run_batches, (long long) spec->batches,
					(long long) spec->rows, (long long) spec->rows_affected,
					(double) (GetCurrentTimestamp() - start) / 1000000.0)));
	MemoryContextDelete(keep);
	return true;
}
