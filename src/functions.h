/*-------------------------------------------------------------------------
 *
 * functions.h
 *		The SQL-callable functions (src/functions.c).  asyncmig_schedule(),
 *		asyncmig_run(), asyncmig_cancel() and asyncmig_wait() are found by
 *		name through PG_FUNCTION_INFO_V1 and declared there.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_FUNCTIONS_H
#define ASYNCMIG_FUNCTIONS_H

extern void am_functions_init(void);

#endif							/* ASYNCMIG_FUNCTIONS_H */
