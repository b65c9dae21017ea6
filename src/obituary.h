/*-------------------------------------------------------------------------
 *
 * obituary.h
 *		What is known of a worker that died inside a migration
 *		(src/obituary.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_OBITUARY_H
#define ASYNCMIG_OBITUARY_H

/* exits of workers that left a migration behind, remembered at once */
#define AM_MAX_OBITUARIES		32
#define AM_OBITUARY_LEN			256

extern void am_obituary_shmem_request(void);
extern void am_obituary_shmem_startup(void);
extern void am_obituary_add(Oid dboid, int64 migration_id, pid_t pid,
							const char *message);
extern bool am_obituary_take(Oid dboid, int64 migration_id, pid_t pid,
							 bool consume, char *message);

#endif							/* ASYNCMIG_OBITUARY_H */
