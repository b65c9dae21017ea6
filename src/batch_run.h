/*-------------------------------------------------------------------------
 *
 * batch_run.h
 *		The worker's batch loop (src/batch_run.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_BATCH_RUN_H
#define ASYNCMIG_BATCH_RUN_H

#include "batch_catalog.h"
#include "catalog.h"
#include "executor.h"

extern bool am_batch_run_forwards(AmMigration *m, AmBatchSpec *spec,
								  AmExecResult *res);

#endif							/* ASYNCMIG_BATCH_RUN_H */
