/*-------------------------------------------------------------------------
 *
 * functions.h
 *		The SQL-callable functions (src/functions.c).  asyncmig_schedule(),
 *		asyncmig_run() and asyncmig_cancel() are found by name through
 *		PG_FUNCTION_INFO_V1 and declared there.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_FUNCTIONS_H
#define ASYNCMIG_FUNCTIONS_H

#include "catalog.h"

extern void am_functions_init(void);
extern void am_functions_check_member(Oid caller, AmMigration *m,
									  const char *action);

#endif							/* ASYNCMIG_FUNCTIONS_H */
