/*-------------------------------------------------------------------------
 *
 * executor.h
 *		Running a migration's SQL text, statement by statement, each as a
 *		top-level command in its own transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_EXECUTOR_H
#define ASYNCMIG_EXECUTOR_H

#include "catalog.h"
#include "nodes/parsenodes.h"

/* how a run ended */
typedef struct AmExecResult
{
	ErrorData  *edata;			/* NULL on success */
	char	   *statement;		/* the statement that failed */
	char	   *message;		/* replaces edata->message, or NULL */
} AmExecResult;

extern List *am_parse_sql(const char *sql, const char *what);
extern void am_check_statement(RawStmt *raw, const char *sql, const char *what);

extern void am_executor_init(void);
extern void am_become_owner(Oid owner);
extern void am_set_session(AmMigration *m);
extern bool am_execute(AmMigration *m, const char *sql, AmExecResult *res);
extern void am_cleanup_guard(AmMigration *m, const char *guard_json);
extern void am_recover_from_error(void);

/* set by the worker's signal and timeout handlers */
extern volatile sig_atomic_t am_timed_out;
extern bool am_cancel_requested(void);

#endif							/* ASYNCMIG_EXECUTOR_H */
