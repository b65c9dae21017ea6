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

/* one row of asyncmig.migration, as the C code needs it */
typedef struct AmMigration
{
	int64		id;
	char	   *name;
	char	   *status;
	char	   *direction;
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
extern int	am_catalog_fail_broken_dependencies(bool *skipped);

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
