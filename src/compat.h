/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL releases asyncmig supports
 *		(13, 14, 15, 16, 17 and 18), in one place.
 *
 * The rest of the code is written against the newest API; this header maps
 * it onto older releases (or, where the newest release removed something,
 * the other way round).  Each difference says which release changed what,
 * and how the older route keeps the same behaviour.  No other file tests
 * PG_VERSION_NUM: a new difference goes here, with its comment.
 *
 * Include it after postgres.h, in every file that uses one of the names
 * below.
 *
 * IDENTIFICATION
 *		src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_COMPAT_H
#define ASYNCMIG_COMPAT_H

#if PG_VERSION_NUM < 130000
#error "asyncmig needs PostgreSQL 13 or later"
#endif

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "commands/defrem.h"
#include "storage/ipc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

/*
 * PostgreSQL 14 moved the backend status array (PgBackendStatus, MyBEEntry,
 * PGSTAT_BEGIN_WRITE_ACTIVITY, pgstat_report_activity/appname) out of
 * pgstat.h into utils/backend_status.h.
 */
#if PG_VERSION_NUM >= 140000
#include "utils/backend_status.h"
#else
#include "pgstat.h"
#include "storage/backendid.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#endif

/*
 * PostgreSQL 14 made MyBEEntry (this backend's entry of the status array
 * behind pg_stat_activity) a global; in 13 it is static in pgstat.c.  The
 * workers write the migration owner's OID into it, so that the owner sees
 * the worker's query and progress.  On 13 we find the same entry the way
 * pgstat_initialize() does: the shared array by its shared memory name (it
 * exists from postmaster start, so the lookup only attaches), at
 * MyBackendId - 1.  NULL when there is none (as MyBEEntry would be).
 */
#if PG_VERSION_NUM < 140000
static inline PgBackendStatus *
am_compat_my_beentry(void)
{
	PgBackendStatus *array;
	bool		found;

	if (MyBackendId == InvalidBackendId)
		return NULL;
	array = (PgBackendStatus *)
		ShmemInitStruct("Backend Status Array",
						mul_size(sizeof(PgBackendStatus),
								 MaxBackends + NUM_AUXPROCTYPES),
						&found);
	return found ? &array[MyBackendId - 1] : NULL;
}
#define MyBEEntry (am_compat_my_beentry())
#endif

/*
 * PostgreSQL 15 added shmem_request_hook: an extension must request its
 * shared memory and LWLock tranches (RequestAddinShmemSpace,
 * RequestNamedLWLockTranche) from it, and may no longer do so in _PG_init().
 * Before 15 the requests are made in _PG_init() itself, while
 * process_shared_preload_libraries_in_progress; the hook did not exist.
 *
 * am_compat_shmem_request(fn, &prev) does what this release wants: on 15
 * and later it chains fn into shmem_request_hook (fn must call *prev first);
 * before 15 it calls fn at once, with *prev NULL.  The result is the same
 * shared memory and the same tranche.  Call it from _PG_init(), after the
 * settings that size the memory are defined.
 */
#if PG_VERSION_NUM < 150000
typedef void (*shmem_request_hook_type) (void);
#endif

static inline void
am_compat_shmem_request(shmem_request_hook_type fn,
						shmem_request_hook_type *prev)
{
#if PG_VERSION_NUM >= 150000
	*prev = shmem_request_hook;
	shmem_request_hook = fn;
#else
	*prev = NULL;
	fn();
#endif
}

/*
 * PostgreSQL 15 renamed EmitWarningsOnPlaceholders() to
 * MarkGUCPrefixReserved() (which also removes placeholders already set and
 * refuses new ones).  On 13 and 14 the old function warns about unknown
 * asyncmig.* settings; it does not reserve the prefix, so a misspelt
 * asyncmig.* setting is kept as a placeholder there.
 */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(className) EmitWarningsOnPlaceholders(className)
#endif

/*
 * PostgreSQL 15 split pg_analyze_and_rewrite() into
 * pg_analyze_and_rewrite_fixedparams() and ..._varparams().  The fixed
 * parameter one takes the same arguments as the old function.
 */
#if PG_VERSION_NUM < 150000
#define pg_analyze_and_rewrite_fixedparams(parsetree, query_string, paramTypes, numParams, queryEnv) \
	pg_analyze_and_rewrite((parsetree), (query_string), (paramTypes), (numParams), (queryEnv))
#endif

/*
 * PostgreSQL 15 replaced the global ThisTimeLineID by
 * GetWALInsertionTimeLine(), the timeline WAL is written on (outside
 * recovery).  Before 15 ThisTimeLineID holds it once RecoveryInProgress()
 * has returned false (that call sets up this process's WAL access).
 */
#if PG_VERSION_NUM < 150000
#include "access/xlog.h"

static inline TimeLineID
GetWALInsertionTimeLine(void)
{
	(void) RecoveryInProgress();
	return ThisTimeLineID;
}
#endif

/*
 * PostgreSQL 15 renamed parse_analyze() to parse_analyze_fixedparams(), with
 * the same arguments.
 */
#if PG_VERSION_NUM < 150000
#define parse_analyze_fixedparams(parseTree, sourceText, paramTypes, numParams, queryEnv) \
	parse_analyze((parseTree), (sourceText), (paramTypes), (numParams), (queryEnv))
#endif

/*
 * PostgreSQL 18 gave RelationGetPrimaryKeyIndex() a deferrable_ok argument
 * (false: no primary key if it is DEFERRABLE).  Before 18 it returned the
 * primary key, deferrable or not; true keeps that.
 */
#if PG_VERSION_NUM >= 180000
#define am_compat_primary_key_index(rel) RelationGetPrimaryKeyIndex((rel), true)
#else
#define am_compat_primary_key_index(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/*
 * PostgreSQL 14 replaced ReindexStmt's "concurrent" flag (and its integer
 * options) by a list of DefElem options ("concurrently", "verbose",
 * "tablespace").  Is this REINDEX a REINDEX ... CONCURRENTLY?
 */
static inline bool
am_compat_reindex_is_concurrent(ReindexStmt *stmt)
{
#if PG_VERSION_NUM >= 140000
	ListCell   *lc;

	foreach(lc, stmt->params)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "concurrently") == 0)
			return defGetBoolean(opt);
	}
	return false;
#else
	return stmt->concurrent;
#endif
}

/*
 * PostgreSQL 14 added ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY and
 * DETACH PARTITION ... FINALIZE (PartitionCmd.concurrent,
 * AT_DetachPartitionFinalize, pg_inherits.inhdetachpending).  On 13 there
 * is no such statement, so nothing to guard: no command is a concurrent
 * detach, and no pg_inherits row is pending.
 */
#if PG_VERSION_NUM >= 140000
#define AM_IS_CONCURRENT_DETACH(cmd) \
	(((cmd)->subtype == AT_DetachPartition && \
	  ((PartitionCmd *) (cmd)->def)->concurrent) || \
	 (cmd)->subtype == AT_DetachPartitionFinalize)
#define AM_INHERITS_DETACH_PENDING(alias) alias ".inhdetachpending"
#else
#define AM_IS_CONCURRENT_DETACH(cmd) ((void) (cmd), false)
#define AM_INHERITS_DETACH_PENDING(alias) "false"
#endif

/*
 * PostgreSQL 18 replaced pg_attribute_noreturn(), written after the
 * declarator, by pg_noreturn, written in front of the declaration (C11
 * _Noreturn).  Before 18 the same attribute works in front as well:
 * declare "pg_noreturn static void f(void);" on every release.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * PostgreSQL 18 removed PortalRun()'s run_once argument (a portal is always
 * run to completion once by a simple query).  Before 18, exec_simple_query()
 * passed true, as we do.
 */
#if PG_VERSION_NUM >= 180000
#define am_compat_portal_run(portal, count, isTopLevel, dest, altdest, qc) \
	PortalRun((portal), (count), (isTopLevel), (dest), (altdest), (qc))
#else
#define am_compat_portal_run(portal, count, isTopLevel, dest, altdest, qc) \
	PortalRun((portal), (count), (isTopLevel), true, (dest), (altdest), (qc))
#endif

/*
 * PostgreSQL 17 added BGWORKER_BYPASS_ROLELOGINCHECK, which lets a
 * background worker connect as a role without LOGIN.  asyncmig does not use
 * it on any release: its workers connect as the bootstrap superuser
 * (InvalidOid) and then act as the migration's owner with
 * SetUserIdAndSecContext(), which works on 13 to 18 alike and needs no LOGIN
 * on the owner.  New code must keep to that route rather than use the flag.
 */

/*
 * PostgreSQL 16 moved a statement's permissions out of its range table
 * entries into RTEPermissionInfo nodes (PlannedStmt.permInfos), and renamed
 * ExecCheckRTPerms(rtable) to ExecCheckPermissions(rtable, permInfos).
 * Both check what the executor checks at ExecutorStart() (and raise the
 * same 42501 errors with ereport_on_violation).
 */
#if PG_VERSION_NUM >= 160000
#define am_compat_check_plan_permissions(plan) \
	ExecCheckPermissions((plan)->rtable, (plan)->permInfos, true)
#else
#define am_compat_check_plan_permissions(plan) \
	ExecCheckRTPerms((plan)->rtable, true)
#endif

/*
 * PostgreSQL 15 added MERGE (Query.mergeActionList of MergeAction, each an
 * INSERT, UPDATE, DELETE or DO NOTHING with its own target list).  Before
 * 15 no query has merge actions.
 */
#if PG_VERSION_NUM >= 150000
#define am_compat_merge_actions(query) ((query)->mergeActionList)
#define am_compat_merge_action_cmd(node) (((MergeAction *) (node))->commandType)
#define am_compat_merge_action_tlist(node) (((MergeAction *) (node))->targetList)
#else
#define am_compat_merge_actions(query) ((List *) NIL)
#define am_compat_merge_action_cmd(node) ((void) (node), CMD_UNKNOWN)
#define am_compat_merge_action_tlist(node) ((void) (node), (List *) NIL)
#endif

#endif							/* ASYNCMIG_COMPAT_H */
