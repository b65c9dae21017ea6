/*-------------------------------------------------------------------------
 *
 * catalog_dependencies.h
 *		What a queued run waits for: the dependencies that nothing will
 *		run, how long it waits for them, and the end of the runs that
 *		waited too long (src/catalog_dependencies.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_CATALOG_DEPENDENCIES_H
#define ASYNCMIG_CATALOG_DEPENDENCIES_H

#include "utils/timestamp.h"

/* for the worker, between am_catalog_begin() and am_catalog_commit() */
extern int	am_catalog_dependencies_fail_missing(bool *skipped);
extern TimestampTz am_catalog_dependencies_deadline(void);

/* for wait(), inside am_catalog_enter() */
extern char *am_catalog_dependencies_waiting_for(const char *name);

#endif							/* ASYNCMIG_CATALOG_DEPENDENCIES_H */
