/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		Access to asyncmig.migration, the table that is the only durable
 *		truth of asyncmig: what its readers and writers share
 *		(src/catalog.c).  The SQL functions' statements are in
 *		catalog_functions.h, the worker's in catalog_worker.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_CATALOG_H
#define ASYNCMIG_CATALOG_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "nodes/pg_list.h"
#include "utils/palloc.h"
#include "utils/timestamp.h"

#include "session.h"

/*
 * A migration's status and direction, parsed once when its row is read
 * (am_catalog_status_parse(), am_catalog_direction_parse()); their words,
 * spelled in vocabulary.h, are only in SQL text and messages.  The state
 * machine, and which function makes each transition (the same table is in
 * docs/topics/how-it-runs.md, "The states of a run"):
 *
 *	from					to			by
 *	(new row)				SCHEDULED,	am_catalog_functions_insert()
 *							STARTED		(schedule())
 *	ERROR, FINISHED bw.		SCHEDULED,	am_catalog_functions_requeue_forwards()
 *							STARTED		(schedule())
 *	SCHEDULED, FINISHED,	STARTED		am_catalog_functions_queue_run() (run())
 *	ERROR
 *	STARTED					IN PROGRESS	am_catalog_worker_claim() (worker)
 *	IN PROGRESS				FINISHED	am_catalog_worker_finish() (worker)
 *	IN PROGRESS				ERROR		am_catalog_worker_finish() (worker),
 *										am_catalog_worker_end_dead_run() (the
 *										sweep), am_catalog_worker_end_orphan_run()
 *										(cancel() of a run without a worker)
 *	SCHEDULED, STARTED		ERROR		am_catalog_functions_cancel_queued()
 *										(cancel())
 *	STARTED, IN PROGRESS	ERROR		am_catalog_worker_fail_foreign() (rows
 *										restored or copied from elsewhere)
 *	STARTED					ERROR		because of a dependency, all in
 *										catalog_dependencies.c: one in ERROR
 *										(failed or canceled,
 *										am_catalog_fail_broken_dependencies()),
 *										one nothing runs (timed out,
 *										am_catalog_dependencies_fail_missing())
 *
 * A worker's writes to its run's row all go through AM_SAME_RUN below.
 */
typedef enum AmStatus
{
	AM_SCHEDULED,
	AM_STARTED,
	AM_IN_PROGRESS,
	AM_FINISHED,
	AM_ERROR
} AmStatus;

typedef enum AmDirection
{
	AM_FORWARDS = 0,			/* what a row built in C without one runs */
	AM_BACKWARDS
} AmDirection;

/* one row of asyncmig.migration, as the C code needs it */
typedef struct AmMigration
{
	int64		id;
	char	   *name;
	AmStatus	status;
	AmDirection direction;
	char	   *forwards_sql;
	char	   *backwards_sql;	/* NULL if none */
	Oid			owner;
	char	   *search_path;
	int			attempts;
	int64		timeout_ms;		/* 0: no timeout */
	char	   *timeout_text;	/* as the user wrote it, for messages */
	char	   *guard;			/* meta->'guard' as text, or NULL */
	bool		cancel_requested;	/* meta->'cancel_requested' */
	int			pid;			/* meta->'pid', 0 if none */
} AmMigration;

/* the columns that am_catalog_fetch() reads into an AmMigration, in order */
#define AM_COLUMNS \
	"id, name, status, direction, forwards_sql, backwards_sql, " \
	"owner::pg_catalog.oid, search_path, attempts, " \
	"(LEAST(pg_catalog.date_part('epoch', timeout), 1e12::pg_catalog.float8) * 1000)::pg_catalog.int8, " \
	"timeout::pg_catalog.text, meta -> 'guard', " \
	"coalesce((meta ->> 'cancel_requested')::pg_catalog.bool, false), " \
	"coalesce((meta ->> 'pid')::pg_catalog.int4, 0)"

/*
 * The row of one run, the one "same run" condition of every write of a
 * worker to its run's row: this id, still IN PROGRESS, claimed by this
 * pid.  A row that was ended meanwhile, or made again with the same id (a
 * new table after DROP and CREATE EXTENSION, see am_catalog_relid()), is
 * not touched.  $1 is the id (int8), $2 the pid (int4).
 */
#define AM_SAME_RUN \
	"id = $1 AND status = '" AM_STATUS_IN_PROGRESS "' " \
	"AND (meta ->> 'pid') = $2::pg_catalog.int4::pg_catalog.text"

/* saved state of am_catalog_enter() and am_catalog_begin() */
typedef struct AmCatalogContext
{
	Oid			relid;			/* the extension's table, verified */
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	MemoryContext save_mcxt;	/* am_catalog_begin()'s caller's context */
	AmOwnSettings save_settings;	/* the migration's, under ours */
} AmCatalogContext;

extern Oid	am_catalog_relid(bool missing_ok);
extern void am_catalog_claimed_in(Oid relid);
extern void am_catalog_check_claimed(void);
extern void am_catalog_enter(AmCatalogContext *cxt);
extern void am_catalog_leave(AmCatalogContext *cxt);
extern void am_catalog_begin(AmCatalogContext *cxt);
extern void am_catalog_commit(AmCatalogContext *cxt);
extern void am_catalog_notify(const char *name, const char *status);
extern AmStatus am_catalog_status_parse(const char *status);
extern const char *am_catalog_status_name(AmStatus status);
extern AmDirection am_catalog_direction_parse(const char *direction);
extern const char *am_catalog_direction_name(AmDirection direction);

/* for catalog_functions.c and catalog_worker.c */
extern Datum am_catalog_origin(void);
extern int	am_catalog_spi(const char *sql, int nargs, Oid *types, Datum *values,
						   const char *nulls, bool read_only, int expected);
extern int	am_catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
							const char *nulls, bool read_only, int expected);
extern bool am_catalog_spi_bool(const char *sql, int nargs, Oid *types,
								Datum *values, bool read_only);
extern TimestampTz am_catalog_time(const char *sql, int nargs, Oid *types,
								   Datum *values);
extern void am_catalog_update_by_id(const char *sql, int64 id);
extern char *am_catalog_strdup_value(HeapTuple tup, TupleDesc desc, int col,
									 MemoryContext cxt);
extern List *am_catalog_fetch(const char *sql, int nargs, Oid *types,
							  Datum *values, const char *nulls,
							  bool read_only);

#endif							/* ASYNCMIG_CATALOG_H */
