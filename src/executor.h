/*-------------------------------------------------------------------------
 *
 * executor.h
 *		Running a migration's SQL text, statement by statement, each as a
 *		top-level command in its own transaction (src/executor.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_EXECUTOR_H
#define ASYNCMIG_EXECUTOR_H

#include "catalog.h"
#include "datatype/timestamp.h"
#include "nodes/parsenodes.h"

/*
 * Longest wait, in ms, of a cleanup statement for the transactions that use
 * the table (asyncmig.lock_timeout if longer); the cleanup is retried later.
 */
#define AM_CLEANUP_WAIT_MS		5000

/* how a run ended */
typedef struct AmExecResult
{
	ErrorData  *edata;			/* NULL on success */
	char	   *statement;		/* the statement that failed */
	char	   *message;		/* replaces edata->message, or NULL */
} AmExecResult;

extern List *am_exec_parse_sql(const char *sql, const char *what);
extern void am_exec_check_statement(RawStmt *raw, const char *sql, const char *what);

extern void am_exec_init(void);
extern void am_exec_start_timeout(int64 timeout_ms);
extern void am_exec_stop_timeout(void);
extern bool am_exec_run(AmMigration *m, const char *sql, AmExecResult *res);
extern bool am_exec_cleanup_guard(AmMigration *m, const char *guard_json,
								  char **left);
extern void am_exec_recover_from_error(void);
extern ErrorData *am_exec_catch(MemoryContext cxt, bool report);
extern void am_exec_sleep(int64 ms);

/* the one retry and interruption policy of a run's units (executor.c) */
extern bool am_exec_interrupted(void);
extern void am_exec_check_interrupted(void);
extern bool am_exec_retry(AmMigration *m, ErrorData *edata, const char *unit,
						  bool undone, int *attempt, AmExecResult *res);

/* the furthest not_before ahead that is accepted (besides infinity) */
#define AM_EXEC_MAX_INTERVAL_YEARS	100
extern Interval *am_exec_max_interval(void);

#endif							/* ASYNCMIG_EXECUTOR_H */
