/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		Access to asyncmig.migration, the table that is the only durable
 *		truth of asyncmig.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_CATALOG_H
#define ASYNCMIG_CATALOG_H

#include "utils/elog.h"
#include "utils/palloc.h"

/* one row of asyncmig.migration, as the C code needs it */
typedef struct AmMigration
{
	int64		id;
	char	   *name;
	char	   *status;
	char	   *direction;
	char	   *forwards_sql;
	char	   *backwards_sql;	/* NULL if none */
	Oid			owner;
	char	   *search_path;
	int			attempts;
	int64		timeout_ms;		/* 0: no timeout */
	char	   *timeout_text;	/* as the user wrote it, for messages */
	char	   *guard;			/* meta->'guard' as text, or NULL */
	bool		cancel_requested;	/* meta->'cancel_requested' */
	int			pid;			/* meta->'pid', 0 if none */
} AmMigration;

/*
 * Settings a migration may have SET for its session that must not steer
 * asyncmig's own statements (bookkeeping, cleanup); see am_own_settings().
 */
typedef struct AmOwnSettings
{
	int			statement_timeout;
	int			lock_timeout;
	bool		read_only;
	int			isolation;
} AmOwnSettings;

/* saved state of am_catalog_enter() and am_catalog_begin() */
typedef struct AmCatalogContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	MemoryContext save_mcxt;	/* am_catalog_begin()'s caller's context */
	AmOwnSettings save_settings;	/* the migration's, under ours */
} AmCatalogContext;

extern void am_own_settings_push(AmOwnSettings *saved);
extern void am_own_settings_pop(AmOwnSettings *saved);

extern Oid	am_migration_relid(bool missing_ok);
extern void am_catalog_enter(AmCatalogContext *cxt);
extern void am_catalog_leave(AmCatalogContext *cxt);
extern void am_catalog_begin(AmCatalogContext *cxt);
extern void am_catalog_commit(AmCatalogContext *cxt);

/* for schedule(), run(), cancel(): caller is in am_catalog_enter() */
/* what schedule() records: the arguments, the caller and its search_path */
typedef struct AmScheduleArgs
{
	const char *name;
	const char *status;			/* STARTED or SCHEDULED */
	const char *forwards_sql;
	const char *backwards_sql;	/* NULL if none */
	Datum		depends_on;		/* text[] */
	bool		depends_on_null;
	Datum		not_before;		/* timestamptz */
	bool		not_before_null;
	Datum		timeout;		/* interval */
	bool		timeout_null;
	Oid			owner;
	const char *search_path;
} AmScheduleArgs;

extern char *am_catalog_insert(const AmScheduleArgs *a);
extern AmMigration *am_catalog_lock(const char *name);
extern void am_catalog_requeue_forwards(int64 id, const AmScheduleArgs *a);
extern void am_catalog_queue_run(int64 id, bool backwards);
extern void am_catalog_cancel_queued(int64 id);
extern void am_catalog_request_cancel(int64 id);
extern List *am_catalog_names_in(const char *status1, const char *status2,
								 Oid member);
extern AmMigration *am_catalog_get(const char *name);
extern char *am_catalog_error_message(const char *name, char **sqlstate);
extern bool am_catalog_depends_cycle(const char *name, Datum depends_on);

/* for the worker */
extern List *am_catalog_in_progress(void);
extern int	am_catalog_fail_broken_dependencies(void);
extern int	am_catalog_fail_foreign(void);
extern AmMigration *am_catalog_claim(int pid);
extern TimestampTz am_catalog_next_wakeup(void);
extern void am_catalog_set_guard(int64 id, const char *guard_json);
extern void am_catalog_count_attempt(int64 id, ErrorData *edata);
extern void am_catalog_finish(int64 id, ErrorData *edata, const char *statement,
							  const char *message_override);

extern void am_catalog_notify(const char *name, const char *status);

#endif							/* ASYNCMIG_CATALOG_H */
