/*-------------------------------------------------------------------------
 *
 * catalog_worker.c
 *		The statements on asyncmig.migration of a worker (worker.c,
 *		executor.c): sweep, claim, guard, attempts and the end of a run.
 *
 * They run in the worker's own transactions, between am_catalog_begin()
 * and am_catalog_commit() (see catalog.c).
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
#include "catalog_worker.h"

/* jsonb of an error from the parameters $2 .. $7 */
#define AM_ERROR_JSON \
	"pg_catalog.jsonb_build_object('message', $2::pg_catalog.text, " \
	"'sqlstate', $3::pg_catalog.text, 'detail', $4::pg_catalog.text, " \
	"'hint', $5::pg_catalog.text, 'context', $6::pg_catalog.text, " \
	"'statement', $7::pg_catalog.text)"

/*
 * am_catalog_in_progress
 *		Every IN PROGRESS row of this database.
 */
List *
am_catalog_in_progress(void)
{
	return am_catalog_fetch("SELECT " AM_COLUMNS " FROM asyncmig.migration "
							   "WHERE status = '" AM_STATUS_IN_PROGRESS "' ORDER BY id FOR UPDATE",
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

		n = am_catalog_spi("WITH broken AS ("
				   "  SELECT m.id, (SELECT pg_catalog.string_agg("
				   "      '\"' || d.name || '\"', ', ' ORDER BY d.name) "
				   "    FROM asyncmig.migration d "
				   "    WHERE d.name = ANY (m.depends_on) AND d.status = '" AM_STATUS_ERROR "') AS deps "
				   "  FROM asyncmig.migration m "
				   "  WHERE m.status = '" AM_STATUS_STARTED "' AND m.direction = '" AM_DIRECTION_FORWARDS "' "
				   "    AND m.depends_on IS NOT NULL) "
				   "UPDATE asyncmig.migration m SET status = '" AM_STATUS_ERROR "', "
				   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
				   "  meta = m.meta || pg_catalog.jsonb_build_object('error', "
				   "    pg_catalog.jsonb_build_object('message', "
				   "      'dependency ' || b.deps || ' ended in " AM_STATUS_ERROR "', "
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
					(errmsg("asyncmig migration \"%s\" failed: a dependency ended in " AM_STATUS_ERROR,
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

	values[0] = am_catalog_origin();
	SPI_connect();
	n = am_catalog_spi("UPDATE asyncmig.migration SET status = '" AM_STATUS_ERROR "', "
			   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
			   "  meta = (meta - 'guard') || pg_catalog.jsonb_build_object('error', "
			   "    pg_catalog.jsonb_build_object('message', "
			   "      'not run: it was queued in another database or cluster and restored or copied here', "
			   "      'hint', 'asyncmig.run() runs it here.', 'sqlstate', '55000')) "
			   "WHERE status IN ('" AM_STATUS_STARTED "', '" AM_STATUS_IN_PROGRESS "') "
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
	values[1] = am_catalog_origin();
	rows = am_catalog_fetch(
							   "UPDATE asyncmig.migration SET status = '" AM_STATUS_IN_PROGRESS "', attempts = 1, "
							   "  started_at = pg_catalog.now(), finished_at = NULL, "
							   "  updated_at = pg_catalog.now(), "
							   "  meta = (meta - 'error' - 'guard') || pg_catalog.jsonb_build_object('pid', $1) "
							   "WHERE id = ("
							   "  SELECT m.id FROM asyncmig.migration m "
							   "  WHERE m.status = '" AM_STATUS_STARTED "' "
							   "    AND m.meta -> 'origin' = $2::pg_catalog.jsonb "
							   "    AND (m.not_before IS NULL OR m.not_before <= pg_catalog.now()) "
							   "    AND (m.direction = '" AM_DIRECTION_BACKWARDS "' OR "
							   "      NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(m.depends_on) dn "
							   "      WHERE NOT EXISTS (SELECT 1 FROM asyncmig.migration d "
							   "        WHERE d.name = dn AND d.status = '" AM_STATUS_FINISHED "' "
							   "          AND d.direction = '" AM_DIRECTION_FORWARDS "'))) "
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
	am_catalog_spi("SELECT pg_catalog.min(not_before) FROM asyncmig.migration "
		   "WHERE status = '" AM_STATUS_STARTED "' AND not_before > pg_catalog.now()",
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
	am_catalog_spi("UPDATE asyncmig.migration SET meta = CASE WHEN $2 IS NULL "
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
	am_catalog_spi("UPDATE asyncmig.migration SET attempts = attempts + 1, "
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
		am_catalog_spi("UPDATE asyncmig.migration SET status = '" AM_STATUS_FINISHED "', "
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
		am_catalog_spi("UPDATE asyncmig.migration SET status = '" AM_STATUS_ERROR "', "
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
