/*-------------------------------------------------------------------------
 *
 * worker.h
 *		A worker (src/worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_WORKER_H
#define ASYNCMIG_WORKER_H

#include "postmaster/bgworker.h"

/* entry point, found by name by the postmaster (see launcher.c) */
extern PGDLLEXPORT void asyncmig_worker_main(Datum main_arg);

#endif							/* ASYNCMIG_WORKER_H */
