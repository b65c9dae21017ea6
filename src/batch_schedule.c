/*-------------------------------------------------------------------------
 *
 * batch_schedule.c
 *		asyncmig.schedule_batches(name, relation, batch_sql, backwards_sql,
 *		batch_size, pause, key, execute_immediately, depends_on, not_before,
 *		timeout): record a batched data migration and queue it.
 *
 * Everything is checked before anything is recorded: the key (the table's
 * single-column primary key, or a named column with a btree index in the
 * order $1 and $2 are compared in), the statement (one DML statement using
 * exactly $1 and $2, analyzed with both typed as the key, that does not
 * move keys or insert into the walked table, and that the caller, its
 * owner, has the privileges to run), batch_size and pause (a pause too long
 * for a timestamp is a pause until cancel or timeout, am_exec_sleep()).
 * Then it is schedule() with
 * the statement as forwards SQL (same name rules, idempotency, modes,
 * rights, transactionality), and the row gets its batch columns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "asyncmig.h"
#include "batch_catalog.h"
#include "batch_check.h"
#include "functions.h"

PG_FUNCTION_INFO_V1(asyncmig_schedule_batches);

/* the arguments of schedule_batches(), by position */
#define AM_SB_NAME			0
#define AM_SB_RELATION		1
#define AM_SB_BATCH_SQL		2
#define AM_SB_BACKWARDS		3		/* read as AM_SB_BATCH_SQL + 1 */
#define AM_SB_BATCH_SIZE	4
#define AM_SB_PAUSE			5
#define AM_SB_KEY			6
#define AM_SB_EXECUTE_IMMEDIATELY 7		/* then depends_on, not_before,
										 * timeout */

/*
 * asyncmig_schedule_batches
 *		The SQL function; returns the migration's status after the call.
 */
Datum
asyncmig_schedule_batches(PG_FUNCTION_ARGS)
{
	char	   *name = am_functions_text_arg(fcinfo, AM_SB_NAME, "migration name");
	Oid			relid;
	AmBatchKey key;
	AmBatchArgs batch;
	AmScheduleArgs a;
	ErrorContextCallback errcallback;
	AmSqlErrorContext sqlcxt;
	Interval	zero;

	am_functions_schedule_begin(&a, name);

	if (PG_ARGISNULL(AM_SB_RELATION))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be null")));
	relid = PG_GETARG_OID(AM_SB_RELATION);

	memset(&batch, 0, sizeof(batch));
	batch.relid = relid;
	if (PG_ARGISNULL(AM_SB_BATCH_SIZE))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("batch_size must not be null")));
	batch.batch_size = PG_GETARG_INT32(AM_SB_BATCH_SIZE);
	if (batch.batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive"),
				 errhint("It is the number of keys per batch; the default is %d.",
						 AM_BATCH_DEFAULT_SIZE)));
	if (PG_ARGISNULL(AM_SB_PAUSE))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pause must not be null"),
				 errhint("Pass '0' for no pause between batches.")));
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  PG_GETARG_DATUM(AM_SB_PAUSE),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pause must not be negative")));
	batch.pause = PG_GETARG_DATUM(AM_SB_PAUSE);

	am_batch_check_key(relid, PG_ARGISNULL(AM_SB_KEY) ? NULL :
					   NameStr(*PG_GETARG_NAME(AM_SB_KEY)), &key, true, InvalidOid);
	batch.key = key.attname;

	am_functions_schedule_sql(fcinfo, AM_SB_BATCH_SQL, "batch SQL", &a);
	am_functions_schedule_options(fcinfo, AM_SB_EXECUTE_IMMEDIATELY, &a);

	/*
	 * One DML statement with $1 and $2; analyzed unless it waits for
	 * migrations that may create what it names.
	 */
	sqlcxt.context = psprintf("checking the batch SQL of migration \"%s\"", name);
	sqlcxt.sql = a.forwards_sql;
	errcallback.callback = am_functions_sql_error_context;
	errcallback.arg = &sqlcxt;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	am_batch_check_sql(a.forwards_sql, &key, a.depends_on_null);
	error_context_stack = errcallback.previous;

	PG_RETURN_TEXT_P(cstring_to_text(am_functions_record(&a, &batch)));
}
