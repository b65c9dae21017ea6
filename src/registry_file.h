/*-------------------------------------------------------------------------
 *
 * registry_file.h
 *		The registry file on disk, under faults and in copies of the data
 *		directory.  See registry_file.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_REGISTRY_FILE_H
#define ASYNCMIG_REGISTRY_FILE_H

/* the registry file, relative to the data directory */
#define AM_REGISTRY_DIR			"pg_asyncmig"
#define AM_REGISTRY_FILE		AM_REGISTRY_DIR "/databases"

/* the file is not to be trusted by any process of this postmaster */
extern bool am_registry_file_distrusted;

extern bool am_registry_file_store(const char *data, int len, int elevel);
extern bool am_registry_file_invalidate(int elevel);
extern void am_registry_file_check_copy(void);

#endif							/* ASYNCMIG_REGISTRY_FILE_H */
