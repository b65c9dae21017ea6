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

#include "fmgr.h"

#include "batch_catalog.h"
#include "catalog.h"
#include "catalog_functions.h"

extern void am_functions_init(void);
extern void am_functions_check_member(Oid caller, AmMigration *m,
									  const char *action);

/* shared with schedule_batches() (batch_schedule.c) */
extern char *am_functions_text_arg(FunctionCallInfo fcinfo, int argno,
								   const char *what);
extern void am_functions_check_name(const char *name);
extern void am_functions_check_sql(const char *sql, const char *what,
								   const char *name);
extern void am_functions_schedule_begin(AmScheduleArgs *a, const char *name);
extern void am_functions_schedule_sql(FunctionCallInfo fcinfo, int first,
									  const char *what, AmScheduleArgs *a);

/* error context while checking a migration's SQL text */
typedef struct AmSqlErrorContext
{
	const char *context;		/* "checking the ... of migration ..." */
	const char *sql;			/* the text checked */
} AmSqlErrorContext;

extern void am_functions_sql_error_context(void *arg);
extern void am_functions_schedule_options(FunctionCallInfo fcinfo, int first,
										  AmScheduleArgs *a);
extern char *am_functions_record(AmScheduleArgs *a, const AmBatchArgs *batch);

#endif							/* ASYNCMIG_FUNCTIONS_H */
