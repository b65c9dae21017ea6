/*-------------------------------------------------------------------------
 *
 * registry.h
 *		Which databases have work: the pending set in shared memory (whom
 *		the launcher looks at now) and the durable registry file (whom it
 *		looks at after a restart).  See registry.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_REGISTRY_H
#define ASYNCMIG_REGISTRY_H

#include "nodes/pg_list.h"
#include "utils/timestamp.h"

#include "registry_file.h"		/* AM_REGISTRY_DIR, AM_REGISTRY_FILE */

/* shared memory (shmem.c) */
extern void am_registry_shmem_request(void);
extern void am_registry_shmem_startup(void);

/* the pending set (launcher, committing backends, workers' results) */
extern void am_registry_request(Oid dboid, TimestampTz wake_at);
extern bool am_registry_take(TimestampTz now, bool (*busy) (Oid dboid),
							 Oid *dboid, TimestampTz *next);
extern bool am_registry_scan_requested(void);

/* the durable registry */
extern void am_registry_pre_commit(void);
extern void am_registry_end_xact(void);
extern bool am_registry_load(List **dboids);
extern List *am_registry_registered(void);
extern void am_registry_scan_done(void);
extern void am_registry_ensure(Oid dboid);
extern bool am_registry_prune_begin(Oid dboid);
extern void am_registry_prune_end(Oid dboid, bool has_work);
extern void am_registry_forget(Oid dboid);

/* while the file cannot be written, the launcher tries again this often */
#define AM_REGISTRY_RETRY_MS	5000
extern bool am_registry_retry(void);

#endif							/* ASYNCMIG_REGISTRY_H */
