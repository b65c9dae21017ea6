/*-------------------------------------------------------------------------
 *
 * catalog_worker.h
 *		The statements on asyncmig.migration of a worker
 *		(src/catalog_worker.c).  The caller is between am_catalog_begin()
 *		and am_catalog_commit().
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_CATALOG_WORKER_H
#define ASYNCMIG_CATALOG_WORKER_H

#include "utils/elog.h"
#include "utils/timestamp.h"

#include "catalog.h"

/* an ended run whose INVALID indexes are still to be dropped */
typedef struct AmCleanup
{
	int64		id;
	char	   *name;
	Oid			owner;
	char	   *guard;			/* meta->'cleanup'->'guard' as text */
} AmCleanup;

extern List *am_catalog_worker_in_progress(void);
extern bool am_catalog_worker_end_dead_run(int64 id, int pid, ErrorData *edata);
extern bool am_catalog_worker_end_orphan_run(int64 id, int pid, ErrorData *edata);
extern List *am_catalog_worker_cleanups_due(void);
extern bool am_catalog_worker_cleanup_begin(int64 id, int pid);
extern bool am_catalog_worker_cleanup_end(int64 id, const char *error);
extern bool am_catalog_worker_has_work(void);
extern bool am_catalog_worker_queued_with_dependencies(void);
extern int	am_catalog_worker_fail_foreign(void);
extern AmMigration *am_catalog_worker_claim(int pid, bool with_dependencies,
											 bool *skipped);
extern TimestampTz am_catalog_worker_next_wakeup(void);
/* writes of a run's own row, each in its own transaction (see AM_SAME_RUN) */
extern void am_catalog_worker_set_guard(int64 id, int pid, const char *guard_json);
extern void am_catalog_worker_set_guard_in_xact(int64 id, int pid,
										 const char *guard_json);
extern void am_catalog_worker_count_attempt(int64 id, int pid, ErrorData *edata);
extern void am_catalog_worker_finish(int64 id, int pid, ErrorData *edata,
							  const char *statement,
							  const char *message_override,
							  const char *error_extra);

#endif							/* ASYNCMIG_CATALOG_WORKER_H */
