/*-------------------------------------------------------------------------
 *
 * catalog_dependencies.c
 *		What a queued run waits for, and every way a run ends because of
 *		a dependency: a dependency in ERROR (it failed, or was canceled)
 *		ends its dependents at once; one that nothing will run is waited
 *		for at most asyncmig.dependency_timeout (timed out).
 *
 * A queued forwards run starts once every name of its depends_on is
 * FINISHED forwards (am_catalog_worker_claim()).  A dependency that is queued or
 * running will end by itself; one in ERROR ends its dependents at once
 * (am_catalog_fail_broken_dependencies()).  The rest is idle: never
 * scheduled, SCHEDULED (waiting for an asyncmig.run() that may never
 * come) or reverted (FINISHED backwards).  A run behind an idle dependency
 * waits for it at most asyncmig.dependency_timeout, counted from when it
 * was queued (updated_at of a STARTED row, which is also the order of the
 * queue) or from its not_before if that is later; then it ends ERROR
 * naming the dependency, and its own dependents after it.  The deadline
 * is not stored: it follows the setting, so a reload moves it (and the
 * launcher looks again, see launcher.c).
 *
 * The worker ends the runs (am_catalog_dependencies_fail_missing()) and
 * tells the launcher when to come back (am_catalog_dependencies_deadline());
 * wait() tells its caller what a run waits for (am_catalog_dependencies_waiting_for()),
 * in the words of the status view's progress column, which spells them
 * once (asyncmig--1.0--1.1.sql, section "deps").
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "asyncmig.h"
#include "catalog.h"
#include "catalog_dependencies.h"
#include "settings.h"

/*
 * A dependency row d (LEFT JOINed by name, so NULL when there is none)
 * that nothing will run: missing, SCHEDULED, or FINISHED backwards.
 */
#define AM_IDLE_DEPENDENCY(d) \
	"(" d ".id IS NULL OR " d ".status = '" AM_STATUS_SCHEDULED "' " \
	"OR (" d ".status = '" AM_STATUS_FINISHED "' " \
	"AND " d ".direction = '" AM_DIRECTION_BACKWARDS "'))"

/* a queued forwards row (alias m) with at least one idle dependency */
#define AM_WAITS_ON_IDLE_DEPENDENCY \
	"(m.status = '" AM_STATUS_STARTED "' " \
	"AND m.direction = '" AM_DIRECTION_FORWARDS "' " \
	"AND EXISTS (SELECT 1 FROM pg_catalog.unnest(m.depends_on) u(dn) " \
	"  LEFT JOIN asyncmig.migration d ON d.name = u.dn " \
	"  WHERE " AM_IDLE_DEPENDENCY("d") "))"

/*
 * when row m stops waiting; $1 is asyncmig.dependency_timeout as text.  A
 * not_before further than 1000 years ahead counts as that (adding to a time
 * near the end of the timestamp range would be an error); none (NULL) is
 * left to GREATEST, which ignores it.
 */
#define AM_DEPENDENCY_DEADLINE \
	"(GREATEST(m.updated_at, CASE WHEN m.not_before > m.updated_at + '1000 years'::pg_catalog.interval " \
	"  THEN m.updated_at + '1000 years'::pg_catalog.interval ELSE m.not_before END) " \
	"  + $1::pg_catalog.interval)"

/*
 * am_timeout_param
 *		asyncmig.dependency_timeout as the text of an interval.
 */
static Datum
am_timeout_param(void)
{
	return CStringGetTextDatum(psprintf("%d ms", am_settings_dependency_timeout));
}

/*
 * am_catalog_dependencies_fail_missing
 *		End in ERROR (55000) every queued forwards row that has waited
 *		asyncmig.dependency_timeout for an idle dependency, with a message
 *		naming each such dependency and why nothing runs it.  Returns how
 *		many rows it ended; the caller then ends their dependents
 *		(am_catalog_fail_broken_dependencies()).  Rows that a session
 *		holds locked are skipped, never waited for: *skipped says whether
 *		to come back.  With the setting at 0 nothing is ended.
 */
int
am_catalog_dependencies_fail_missing(bool *skipped)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	uint64		i;
	int			n;

	*skipped = false;
	if (am_settings_dependency_timeout <= 0)
		return 0;

	values[0] = am_timeout_param();
	values[1] = CStringGetTextDatum(psprintf("It waited asyncmig.dependency_timeout (%s), counted from when it was queued (or from its not_before, if later).",
											 GetConfigOptionByName("asyncmig.dependency_timeout", NULL, false)));
	values[2] = CStringGetTextDatum("Schedule the dependency (or asyncmig.run() it, if it is " AM_STATUS_SCHEDULED "), "
									"then asyncmig.run() this migration again.");
	SPI_connect();
	n = am_catalog_spi("WITH due AS ("
					   "  SELECT m.id, m.depends_on FROM asyncmig.migration m "
					   "  WHERE " AM_WAITS_ON_IDLE_DEPENDENCY " "
					   "    AND " AM_DEPENDENCY_DEADLINE " <= pg_catalog.now() "
					   "  FOR UPDATE OF m SKIP LOCKED), "
					   "why AS ("
					   "  SELECT due.id, pg_catalog.string_agg(pg_catalog.format('dependency \"%s\" %s', u.dn, "
					   "      CASE WHEN d.id IS NULL THEN 'was never scheduled' "
					   "        WHEN d.status = '" AM_STATUS_SCHEDULED "' "
					   "          THEN 'is " AM_STATUS_SCHEDULED " and nothing runs it' "
					   "        ELSE 'was reverted (" AM_STATUS_FINISHED " " AM_DIRECTION_BACKWARDS ") "
					   "and nothing runs it " AM_DIRECTION_FORWARDS "' END), "
					   "    '; ' ORDER BY u.o) AS message "
					   "  FROM due, pg_catalog.unnest(due.depends_on) WITH ORDINALITY u(dn, o) "
					   "  LEFT JOIN asyncmig.migration d ON d.name = u.dn "
					   "  WHERE " AM_IDLE_DEPENDENCY("d") " "
					   "  GROUP BY due.id) "
					   "UPDATE asyncmig.migration m SET status = '" AM_STATUS_ERROR "', "
					   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
					   "  meta = m.meta || pg_catalog.jsonb_build_object('error', "
					   "    pg_catalog.jsonb_build_object('message', why.message, "
					   "      'sqlstate', '55000', 'detail', $2, 'hint', $3)) "
					   "FROM why WHERE why.id = m.id "
					   "RETURNING m.name, why.message",
					   3, types, values, NULL, false, SPI_OK_UPDATE_RETURNING);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i],
										SPI_tuptable->tupdesc, 1);
		char	   *message = SPI_getvalue(SPI_tuptable->vals[i],
										   SPI_tuptable->tupdesc, 2);

		ereport(LOG,
				(errmsg("asyncmig migration \"%s\" failed: %s", name, message)));
		am_catalog_notify(name, AM_STATUS_ERROR);
	}

	/* one that was due but locked: the caller comes back for it */
	*skipped = am_catalog_spi_bool("SELECT EXISTS (SELECT 1 FROM asyncmig.migration m "
				   "WHERE " AM_WAITS_ON_IDLE_DEPENDENCY " "
				   "  AND " AM_DEPENDENCY_DEADLINE " <= pg_catalog.now())",
				   1, types, values, false);
	SPI_finish();
	return n;
}

/*
 * am_catalog_dependencies_deadline
 *		The earliest time a queued row stops waiting for an idle dependency,
 *		if it is still to come, or 0: the worker leaves it to the launcher
 *		as a wake-up time, as it does a not_before.
 */
TimestampTz
am_catalog_dependencies_deadline(void)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (am_settings_dependency_timeout <= 0)
		return 0;
	values[0] = am_timeout_param();
	return am_catalog_time("SELECT pg_catalog.min(" AM_DEPENDENCY_DEADLINE ") "
				   "FROM asyncmig.migration m "
				   "WHERE " AM_WAITS_ON_IDLE_DEPENDENCY " "
				   "  AND " AM_DEPENDENCY_DEADLINE " > pg_catalog.now()",
						   1, types, values);
}

/*
 * am_catalog_dependencies_waiting_for
 *		If the row of that name is queued behind an idle dependency, what
 *		it waits for, as the status view's progress says it ("waiting for
 *		dependency "x" (never scheduled; gives up at ...)"), in the
 *		caller's memory context; else NULL.  Reads no SQL text.
 */
char *
am_catalog_dependencies_waiting_for(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	MemoryContext cxt = CurrentMemoryContext;
	char	   *result = NULL;

	values[0] = CStringGetTextDatum(name);
	SPI_connect();
	if (am_catalog_spi("SELECT s.progress FROM asyncmig.migration m "
					   "JOIN asyncmig.status s ON s.name = m.name "
					   "WHERE m.name = $1 AND " AM_WAITS_ON_IDLE_DEPENDENCY,
					   1, types, values, NULL, false, SPI_OK_SELECT) == 1)
		result = am_catalog_strdup_value(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, cxt);
	SPI_finish();
	return result;
}

/* queued forwards rows of which a dependency is in ERROR (alias m) */
#define AM_BROKEN_DEPENDENT \
	"m.status = '" AM_STATUS_STARTED "' AND m.direction = '" AM_DIRECTION_FORWARDS "' " \
	"AND m.depends_on IS NOT NULL " \
	"AND EXISTS (SELECT 1 FROM asyncmig.migration d " \
	"  WHERE d.name = ANY (m.depends_on) AND d.status = '" AM_STATUS_ERROR "')"

/*
 * am_catalog_fail_broken_dependencies
 *		End in ERROR every queued row that depends on a row in ERROR (a
 *		dependency that failed or was canceled), naming it and its error
 *		(the cause, along a chain); repeat along chains.  Returns how many
 *		rows it ended.  Used by a worker before it claims, and by cancel()
 *		in the same transaction that ends the dependency.  Rows that a
 *		session holds locked are skipped, never waited for: *skipped says
 *		whether to come back.
 */
int
am_catalog_fail_broken_dependencies(bool *skipped)
{
	int			total = 0;

	SPI_connect();
	for (;;)
	{
		uint64		i;
		int			n;

		n = am_catalog_spi("WITH broken AS ("
						   "  SELECT m.id, (SELECT pg_catalog.string_agg("
						   "      '\"' || d.name || '\" ended in " AM_STATUS_ERROR ": ' || "
						   "      coalesce(d.meta #>> '{error,message}', 'unknown error'), '; ' ORDER BY d.name) "
						   "    FROM asyncmig.migration d "
						   "    WHERE d.name = ANY (m.depends_on) AND d.status = '" AM_STATUS_ERROR "') AS deps "
						   "  FROM asyncmig.migration m "
						   "  WHERE " AM_BROKEN_DEPENDENT " "
						   "  FOR UPDATE OF m SKIP LOCKED) "
						   "UPDATE asyncmig.migration m SET status = '" AM_STATUS_ERROR "', "
						   "  finished_at = pg_catalog.now(), updated_at = pg_catalog.now(), "
						   "  meta = m.meta || pg_catalog.jsonb_build_object('error', "
						   "    pg_catalog.jsonb_build_object('message', "
						   "      'dependency ' || b.deps, "
						   "      'sqlstate', '55000')) "
						   "FROM broken b WHERE b.id = m.id "
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
	*skipped = am_catalog_spi_bool("SELECT EXISTS (SELECT 1 FROM asyncmig.migration m WHERE " AM_BROKEN_DEPENDENT ")",
				   0, NULL, NULL, false);
	SPI_finish();
	return total;
}
