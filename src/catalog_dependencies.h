/*-------------------------------------------------------------------------
 *
 * catalog_dependencies.h
 *		What a queued run waits for, and every way a run ends because of
 *		a dependency: one in ERROR (failed or canceled), one that nothing
 *		will run and that it waited for too long (timed out)
 *		(src/catalog_dependencies.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_CATALOG_DEPENDENCIES_H
#define ASYNCMIG_CATALOG_DEPENDENCIES_H

#include "utils/timestamp.h"

/* the worker, and cancel() in its transaction: dependencies in ERROR */
extern int	am_catalog_fail_broken_dependencies(bool *skipped);

/* for the worker, between am_catalog_begin() and am_catalog_commit() */
extern int	am_catalog_dependencies_fail_missing(bool *skipped);
extern TimestampTz am_catalog_dependencies_deadline(void);

/* for wait(), inside am_catalog_enter() */
extern char *am_catalog_dependencies_waiting_for(const char *name);

#endif							/* ASYNCMIG_CATALOG_DEPENDENCIES_H */
