/*-------------------------------------------------------------------------
 *
 * executor.c
 *		Runs a migration's SQL text the way "psql -f" runs a file in
 *		autocommit mode: each statement a top-level command in its own
 *		transaction, in order, stopping at the first error.
 *
 * A statement is run as exec_simple_query() in src/backend/tcop/postgres.c
 * runs one: start a transaction, parse analysis and rewrite, planning, an
 * unnamed portal run with isTopLevel = true, commit.  That is what lets
 * CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM and ALTER TYPE
 * ... ADD VALUE run at all: they refuse to run inside SPI or inside a
 * transaction block, and the first two commit internally.  SET lasts for
 * the rest of the migration, as in a session.
 *
 * Concurrent index builds are guarded.  A failed or interrupted one leaves
 * an INVALID index (and REINDEX CONCURRENTLY leaves _ccnew and _ccold
 * indexes).  Before such a statement runs, the worker records in the row's
 * meta->'guard' which table it works on and which indexes existed; when the
 * statement fails the worker drops, with DROP INDEX CONCURRENTLY, the
 * INVALID indexes the statement left, and if the worker dies the next
 * worker of the database does it from meta->'guard'.  An INVALID index of
 * the same name found before CREATE INDEX CONCURRENTLY IF NOT EXISTS is
 * dropped first, so that the build is not silently skipped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "parser/scansup.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "asyncmig.h"
#include "catalog.h"
#include "catalog_worker.h"
#include "executor.h"
#include "session.h"
#include "settings.h"
#include "shmem.h"

/* what a guarded statement does to indexes */
typedef struct AmGuard
{
	Oid			relid;			/* the table whose indexes it builds */
	char	   *idxname;		/* CREATE INDEX's name, or NULL */
	bool		reindex;		/* REINDEX CONCURRENTLY */
	List	   *before;			/* OIDs of the table's indexes before */
} AmGuard;

static MemoryContext am_statement_context = NULL;

/* set by the migration's timeout, read between and after statements */
static volatile sig_atomic_t am_timed_out = false;
static TimeoutId am_timeout_id;

static void am_timeout_handler(void);
static bool am_is_concurrent(Node *stmt);
static void am_run_statement(RawStmt *raw, const char *sql,
							 const char *stmt_text);
static void am_run_text(const char *text);
static AmGuard *am_prepare_guard(AmMigration *m, Node *stmt);
static char *am_guard_to_json(AmGuard *g);
static void am_verify_guard(AmGuard *g);
static char *am_statement_text(RawStmt *raw, const char *sql);

/*
 * am_exec_parse_sql
 *		Split SQL text into raw statements with PostgreSQL's own parser, and
 *		check each with am_exec_check_statement().  Errors name what (e.g.
 *		"forwards SQL") in their context.  An empty list is an error.
 */
List *
am_exec_parse_sql(const char *sql, const char *what)
{
	List	   *stmts;
	ListCell   *lc;

	stmts = pg_parse_query(sql);
	if (stmts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s contains no statement", what),
				 errdetail("It is empty or holds only comments.")));
	foreach(lc, stmts)
		am_exec_check_statement(lfirst_node(RawStmt, lc), sql, what);
	return stmts;
}

/*
 * am_exec_check_statement
 *		Refuse statements that cannot run in a migration: transaction
 *		control (each statement already has its own transaction) and COPY
 *		from or to the client (a worker has no client).
 */
void
am_exec_check_statement(RawStmt *raw, const char *sql, const char *what)
{
	Node	   *stmt = raw->stmt;

	if (IsA(stmt, TransactionStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("%s must not contain transaction control statements",
						what),
				 errdetail("Statement: %s", am_statement_text(raw, sql)),
				 errhint("asyncmig runs each statement in its own transaction, "
						 "as psql does in autocommit mode.")));
	if (IsA(stmt, CopyStmt) && ((CopyStmt *) stmt)->filename == NULL &&
		!((CopyStmt *) stmt)->is_program)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s must not contain COPY FROM STDIN or COPY TO STDOUT",
						what),
				 errdetail("A migration runs in a background worker, which has no client.")));
}

/*
 * am_statement_text
 *		The text of one raw statement of sql.
 */
static char *
am_statement_text(RawStmt *raw, const char *sql)
{
	int			loc = raw->stmt_location > 0 ? raw->stmt_location : 0;
	int			len = raw->stmt_len > 0 ? raw->stmt_len : (int) strlen(sql + loc);

	/* the parser counts the white space after the previous semicolon */
	while (len > 0 && scanner_isspace(sql[loc]))
	{
		loc++;
		len--;
	}
	return pnstrdup(sql + loc, len);
}

/*
 * am_is_concurrent
 *		Is stmt one of the CONCURRENTLY commands, whose waits for older
 *		transactions are their design and must not hit lock_timeout?
 */
static bool
am_is_concurrent(Node *stmt)
{
	ListCell   *lc;

	switch (nodeTag(stmt))
	{
		case T_IndexStmt:
			return ((IndexStmt *) stmt)->concurrent;
		case T_DropStmt:
			return ((DropStmt *) stmt)->concurrent;
		case T_RefreshMatViewStmt:
			return ((RefreshMatViewStmt *) stmt)->concurrent;
		case T_ReindexStmt:
			foreach(lc, ((ReindexStmt *) stmt)->params)
			{
				DefElem    *opt = (DefElem *) lfirst(lc);

				if (strcmp(opt->defname, "concurrently") == 0)
					return defGetBoolean(opt);
			}
			return false;
		default:
			return false;
	}
}

/*
 * am_exec_init
 *		Per-worker set-up: the memory context that holds a statement's parse
 *		and plan trees across the commits a CONCURRENTLY command does, and
 *		the migration's timeout.
 */
void
am_exec_init(void)
{
	am_statement_context = AllocSetContextCreate(TopMemoryContext,
												 "asyncmig statement",
												 ALLOCSET_DEFAULT_SIZES);
	am_timeout_id = RegisterTimeout(USER_TIMEOUT, am_timeout_handler);
}

/*
 * am_timeout_handler
 *		The migration's own timeout: cancel what runs, like a
 *		statement_timeout that spans the whole migration.  am_exec_run()
 *		then tells the timeout from a cancel by am_timed_out.
 */
static void
am_timeout_handler(void)
{
	am_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/*
 * am_exec_start_timeout
 *		Arm the migration's timeout (0: none) before am_exec_run().
 */
void
am_exec_start_timeout(int64 timeout_ms)
{
	if (timeout_ms > 0)
		enable_timeout_after(am_timeout_id, (int) Min(timeout_ms, INT_MAX));
}

/*
 * am_exec_stop_timeout
 *		Disarm it once the run is decided.
 */
void
am_exec_stop_timeout(void)
{
	disable_timeout(am_timeout_id, false);
}

/*
 * am_run_statement
 *		Run one raw statement as a top-level command in its own transaction,
 *		as exec_simple_query() does.  Parse and plan trees live in
 *		am_statement_context, which survives the internal commits of
 *		CONCURRENTLY commands.  Errors propagate to the caller.
 */
static void
am_run_statement(RawStmt *raw, const char *sql, const char *stmt_text)
{
	CommandTag	commandTag;
	List	   *querytree_list;
	List	   *plantree_list;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	bool		snapshot_set = false;
	MemoryContext oldcontext;

	pgstat_report_activity(STATE_RUNNING, stmt_text);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	if (StatementTimeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);

	oldcontext = MemoryContextSwitchTo(am_statement_context);

	/* parse analysis may scribble on its input: a retry needs the original */
	raw = copyObject(raw);
	commandTag = CreateCommandTag(raw->stmt);
	set_ps_display(GetCommandTagName(commandTag));

	if (analyze_requires_snapshot(raw))
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		snapshot_set = true;
	}
	querytree_list = pg_analyze_and_rewrite_fixedparams(raw, sql, NULL, 0, NULL);
	plantree_list = pg_plan_queries(querytree_list, sql,
									CURSOR_OPT_PARALLEL_OK, NULL);
	if (snapshot_set)
		PopActiveSnapshot();

	CHECK_FOR_INTERRUPTS();

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, commandTag, plantree_list, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);

	receiver = CreateDestReceiver(DestNone);
	MemoryContextSwitchTo(oldcontext);
	(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
	receiver->rDestroy(receiver);
	PortalDrop(portal, false);

	if (StatementTimeout > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);

	CommitTransactionCommand();
	MemoryContextReset(am_statement_context);

	set_ps_display("idle");
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * am_run_text
 *		Run a statement we wrote ourselves (a DROP INDEX CONCURRENTLY).
 */
static void
am_run_text(const char *text)
{
	List	   *stmts = pg_parse_query(text);
	AmOwnSettings saved;

	/* not steered by what the migration SET (lock_timeout, read only ...) */
	am_session_own_settings_push(&saved);
	PG_TRY();
	{
		am_run_statement(linitial_node(RawStmt, stmts), text, text);
	}
	PG_FINALLY();
	{
		am_session_own_settings_pop(&saved);
	}
	PG_END_TRY();
}

/*
 * am_exec_recover_from_error
 *		After an error was caught and copied: what PostgresMain() does to
 *		get back to idle, short of telling a client.
 */
void
am_exec_recover_from_error(void)
{
	HOLD_INTERRUPTS();
	disable_timeout(STATEMENT_TIMEOUT, false);
	QueryCancelPending = false;
	AbortCurrentTransaction();
	PortalErrorCleanup();
	MemoryContextReset(am_statement_context);
	set_ps_display("idle");
	pgstat_report_activity(STATE_IDLE, NULL);
	RESUME_INTERRUPTS();
}

/*
 * am_prepare_guard
 *		For CREATE INDEX CONCURRENTLY and REINDEX {INDEX|TABLE} CONCURRENTLY:
 *		resolve the table (as the owner, with the migration's search_path),
 *		drop an INVALID index of the same name that IF NOT EXISTS would
 *		skip, and note the table's indexes.  NULL for other statements, or
 *		when the table does not exist (the statement will then fail on its
 *		own and leave nothing).
 */
static AmGuard *
am_prepare_guard(AmMigration *m, Node *stmt)
{
	AmGuard    *g = NULL;
	Oid			relid = InvalidOid;
	char	   *drop_first = NULL;
	Oid			drop_first_oid = InvalidOid;
	MemoryContext cxt = CurrentMemoryContext;

	if (!am_is_concurrent(stmt) ||
		!(IsA(stmt, IndexStmt) || IsA(stmt, ReindexStmt)))
		return NULL;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());

	if (IsA(stmt, IndexStmt))
	{
		IndexStmt  *istmt = (IndexStmt *) stmt;

		relid = RangeVarGetRelid(istmt->relation, NoLock, true);
		if (OidIsValid(relid))
		{
			g = MemoryContextAllocZero(cxt, sizeof(AmGuard));
			if (istmt->idxname)
				g->idxname = MemoryContextStrdup(cxt, istmt->idxname);
		}
		if (OidIsValid(relid) && istmt->idxname && istmt->if_not_exists)
		{
			Oid			idxoid = get_relname_relid(istmt->idxname,
												   get_rel_namespace(relid));

			if (OidIsValid(idxoid) && get_rel_relkind(idxoid) == RELKIND_INDEX &&
				IndexGetRelation(idxoid, true) == relid &&
				!get_index_isvalid(idxoid))
			{
				drop_first_oid = idxoid;
				drop_first = MemoryContextStrdup(cxt,
												 quote_qualified_identifier(get_namespace_name(get_rel_namespace(idxoid)),
																			get_rel_name(idxoid)));
			}
		}
	}
	else
	{
		ReindexStmt *rstmt = (ReindexStmt *) stmt;

		if (rstmt->kind == REINDEX_OBJECT_INDEX)
		{
			Oid			idxoid = RangeVarGetRelid(rstmt->relation, NoLock, true);

			if (OidIsValid(idxoid))
				relid = IndexGetRelation(idxoid, true);
		}
		else if (rstmt->kind == REINDEX_OBJECT_TABLE)
			relid = RangeVarGetRelid(rstmt->relation, NoLock, true);
		if (OidIsValid(relid))
		{
			g = MemoryContextAllocZero(cxt, sizeof(AmGuard));
			g->reindex = true;
		}
	}

	if (g)
	{
		Relation	rel = try_relation_open(relid, AccessShareLock);

		if (rel == NULL)
			g = NULL;
		else
		{
			List	   *indexes = RelationGetIndexList(rel);
			MemoryContext old = MemoryContextSwitchTo(cxt);

			g->relid = relid;
			g->before = list_copy(indexes);
			MemoryContextSwitchTo(old);
			relation_close(rel, AccessShareLock);
		}
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	if (drop_first)
	{
		char	   *drop = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
									drop_first);

		ereport(LOG,
				(errmsg("asyncmig migration \"%s\": dropping INVALID index %s before building it again",
						m->name, drop_first)));
		am_run_text(drop);
		/* it is gone: do not count it among the indexes that were there */
		if (g)
			g->before = list_delete_oid(g->before, drop_first_oid);
	}
	return g;
}

/*
 * am_guard_to_json
 *		meta->'guard' for a guard: {"relid": ..., "index": ..., "reindex":
 *		..., "before": [...]}.
 */
static char *
am_guard_to_json(AmGuard *g)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"relid\": %u, \"index\": ", g->relid);
	if (g->idxname)
		escape_json(&buf, g->idxname);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"reindex\": %s, \"before\": [",
					 g->reindex ? "true" : "false");
	foreach(lc, g->before)
	{
		appendStringInfo(&buf, "%s%u", first ? "" : ", ", lfirst_oid(lc));
		first = false;
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/*
 * am_exec_cleanup_guard
 *		Drop, concurrently and as the owner, the INVALID indexes that a
 *		failed guarded statement left: for CREATE INDEX the new index (of
 *		the given name, if it had one), for REINDEX the *_ccnew and *_ccold
 *		indexes of the table.  Used after an error and by the sweep after a
 *		worker died.  Failures to drop are logged, not raised: the run has
 *		failed already and its own error is what the row must say.
 */
void
am_exec_cleanup_guard(AmMigration *m, const char *guard_json)
{
	List	   *drops = NIL;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	uint64		i;
	int			save_nestlevel;

	/* cleanup is not canceled: the INVALID index must go */
	HOLD_CANCEL_INTERRUPTS();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	values[0] = CStringGetTextDatum(guard_json);
	SPI_connect();
	if (SPI_execute_with_args(
							  "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) "
							  "FROM pg_catalog.pg_index i "
							  "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
							  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, "
							  "  (SELECT $1::pg_catalog.jsonb AS g) AS g "
							  "WHERE i.indrelid = (g.g ->> 'relid')::pg_catalog.oid "
							  "  AND NOT i.indisvalid "
							  "  AND CASE WHEN (g.g ->> 'reindex')::pg_catalog.bool "
							  "    THEN c.relname OPERATOR(pg_catalog.~) '_cc(new|old)[0-9]*$' "
							  "    ELSE i.indexrelid::pg_catalog.text <> ALL (ARRAY("
							  "        SELECT pg_catalog.jsonb_array_elements_text(g.g -> 'before'))) "
							  "      AND (g.g ->> 'index' IS NULL OR c.relname::pg_catalog.text = g.g ->> 'index') "
							  "  END",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "asyncmig: could not look for INVALID indexes");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i],
										SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		drops = lappend(drops, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);

	foreach(lc, drops)
	{
		char	   *idx = lfirst(lc);
		char	   *drop = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", idx);

		PG_TRY();
		{
			am_run_text(drop);
			ereport(LOG,
					(errmsg("asyncmig migration \"%s\": dropped INVALID index %s left by its failed run",
							m->name, idx)));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			EmitErrorReport();
			FlushErrorState();
			am_exec_recover_from_error();
			/* the error reset the hold-off count */
			HOLD_CANCEL_INTERRUPTS();
			ereport(LOG,
					(errmsg("asyncmig migration \"%s\": could not drop INVALID index %s",
							m->name, idx)));
		}
		PG_END_TRY();
	}
	RESUME_CANCEL_INTERRUPTS();
	/* a cancel that came meanwhile is for a run that has failed already */
	QueryCancelPending = false;
}

/*
 * am_verify_guard
 *		After a CREATE INDEX CONCURRENTLY with a name succeeded: the index
 *		must exist and be valid, or the run must not end FINISHED.
 */
static void
am_verify_guard(AmGuard *g)
{
	Oid			idxoid;
	bool		valid;

	if (g->reindex || g->idxname == NULL)
		return;
	StartTransactionCommand();
	idxoid = get_relname_relid(g->idxname, get_rel_namespace(g->relid));
	valid = !OidIsValid(idxoid) || get_rel_relkind(idxoid) != RELKIND_INDEX ||
		get_index_isvalid(idxoid);
	CommitTransactionCommand();
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"%s\" is INVALID after its concurrent build",
						g->idxname)));
}

/*
 * am_exec_timed_out
 *		Has the migration's timeout fired?  (The batch loop tells a timeout
 *		from a cancel by it, as am_exec_run() does.)
 */
bool
am_exec_timed_out(void)
{
	return am_timed_out;
}

/*
 * am_exec_sleep
 *		Sleep ms milliseconds on the latch, waking at once for a cancel, the
 *		migration's timeout or a shutdown: the back-off between tries, and
 *		the pause between batches.
 */
void
am_exec_sleep(int64 ms)
{
	TimestampTz end = GetCurrentTimestamp() + ms * 1000;

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		/* a cancel is raised by the next statement's check, in its PG_TRY */
		if (ProcDiePending)
			CHECK_FOR_INTERRUPTS();
		if (left <= 0 || am_timed_out || am_shmem_cancel_requested() ||
			QueryCancelPending)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, 60000L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * am_exec_backoff
 *		Sleep before try number attempt + 1: 1 s, 2 s, 4 s ... up to 60 s.
 */
void
am_exec_backoff(int attempt)
{
	am_exec_sleep(Min(1000L << Min(attempt - 1, 6), 60000L));
}

/*
 * am_exec_run
 *		Run sql (the migration's forwards or backwards text) as its owner.
 *		Returns true on success; else fills *res.  Lock timeouts, deadlocks
 *		and serialization failures are tried again, up to
 *		asyncmig.max_attempts tries in all, each counted in the row.
 */
bool
am_exec_run(AmMigration *m, const char *sql, AmExecResult *res)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *stmts = NIL;
	ListCell   *lc;
	int			attempt = 1;
	char		lock_timeout[32];
	AmCatalogContext ccxt;

	memset(res, 0, sizeof(AmExecResult));

	PG_TRY();
	{
		stmts = am_exec_parse_sql(sql, m->direction && strcmp(m->direction, AM_DIRECTION_BACKWARDS) == 0 ?
							 "backwards SQL" : "forwards SQL");
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		res->edata = CopyErrorData();
		FlushErrorState();
		am_exec_recover_from_error();
		return false;
	}
	PG_END_TRY();

	foreach(lc, stmts)
	{
		RawStmt    *raw = lfirst_node(RawStmt, lc);
		char	   *stmt_text = am_statement_text(raw, sql);
		bool		concurrent = am_is_concurrent(raw->stmt);

		for (;;)
		{
			AmGuard    *volatile guard = NULL;
			ErrorData  *edata = NULL;

			PG_TRY();
			{
				if (am_timed_out || am_shmem_cancel_requested())
				{
					/* interrupted between statements */
					QueryCancelPending = true;
					InterruptPending = true;
					CHECK_FOR_INTERRUPTS();
				}
				guard = am_prepare_guard(m, raw->stmt);
				if (guard)
				{
					am_catalog_begin(&ccxt);
					am_catalog_set_guard(m->id, am_guard_to_json(guard));
					am_catalog_commit(&ccxt);
				}

				snprintf(lock_timeout, sizeof(lock_timeout), "%d",
						 concurrent ? 0 : asyncmig_lock_timeout);
				(void) set_config_option("lock_timeout", lock_timeout,
										 PGC_SUSET, PGC_S_CLIENT,
										 GUC_ACTION_SET, true, 0, false);

				am_run_statement(raw, sql, stmt_text);

				if (guard)
				{
					am_verify_guard(guard);
					am_catalog_begin(&ccxt);
					am_catalog_set_guard(m->id, NULL);
					am_catalog_commit(&ccxt);
				}
			}
			PG_CATCH();
			{
				MemoryContextSwitchTo(cxt);
				edata = CopyErrorData();
				FlushErrorState();
				am_exec_recover_from_error();
			}
			PG_END_TRY();
			MemoryContextSwitchTo(cxt);

			if (edata == NULL)
				break;			/* next statement */

			if (guard)
			{
				char	   *json = am_guard_to_json(guard);

				am_exec_cleanup_guard(m, json);
				am_catalog_begin(&ccxt);
				am_catalog_set_guard(m->id, NULL);
				am_catalog_commit(&ccxt);
			}

			if (am_timed_out)
				res->message = psprintf("timed out after %s", m->timeout_text);
			else if (am_shmem_cancel_requested() &&
					 edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
				res->message = pstrdup("canceled");
			else if ((edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
					  edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
					  edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE) &&
					 attempt < asyncmig_max_attempts)
			{
				ereport(LOG,
						(errmsg("asyncmig migration \"%s\": try %d failed, trying again: %s",
								m->name, attempt, edata->message)));
				am_catalog_begin(&ccxt);
				am_catalog_count_attempt(m->id, edata);
				am_catalog_commit(&ccxt);
				am_exec_backoff(attempt);
				attempt++;
				continue;
			}

			res->edata = edata;
			res->statement = stmt_text;
			return false;
		}
	}
	return true;
}
