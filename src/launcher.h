/*-------------------------------------------------------------------------
 *
 * launcher.h
 *		The launcher (src/launcher.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_LAUNCHER_H
#define ASYNCMIG_LAUNCHER_H

#include "postmaster/bgworker.h"

/* entry point, found by name by the postmaster */
extern PGDLLEXPORT void asyncmig_launcher_main(Datum main_arg);

extern void am_launcher_register(void);

#endif							/* ASYNCMIG_LAUNCHER_H */
