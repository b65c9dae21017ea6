/*-------------------------------------------------------------------------
 *
 * catalog_functions.h
 *		The statements on asyncmig.migration of schedule(), run(), cancel()
 *		and wait() (src/catalog_functions.c).  The caller is inside
 *		am_catalog_enter().
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_CATALOG_FUNCTIONS_H
#define ASYNCMIG_CATALOG_FUNCTIONS_H

#include "catalog.h"

/* what schedule() records: the arguments, the caller and its search_path */
typedef struct AmScheduleArgs
{
	const char *name;
	AmStatus	status;			/* AM_STARTED or AM_SCHEDULED */
	const char *forwards_sql;
	const char *backwards_sql;	/* NULL if none */
	Datum		depends_on;		/* text[] */
	bool		depends_on_null;
	Datum		not_before;		/* timestamptz */
	bool		not_before_null;
	Datum		timeout;		/* interval */
	bool		timeout_null;
	Oid			owner;
	const char *search_path;
} AmScheduleArgs;

extern bool am_catalog_functions_insert(const AmScheduleArgs *a);
extern AmMigration *am_catalog_functions_lock(const char *name);
extern void am_catalog_functions_requeue_forwards(int64 id, const AmScheduleArgs *a);
extern void am_catalog_functions_queue_run(int64 id, bool backwards);
extern void am_catalog_functions_cancel_queued(int64 id);
extern List *am_catalog_functions_names_in(const char *status1, const char *status2,
								 Oid member);
extern AmMigration *am_catalog_functions_get(const char *name);
extern bool am_catalog_functions_status_of(const char *name, AmStatus *status,
										   char **message,
								  char **sqlstate);
extern bool am_catalog_functions_depends_cycle(Oid relid, const char *name,
									 Datum depends_on);

#endif							/* ASYNCMIG_CATALOG_FUNCTIONS_H */
