/*-------------------------------------------------------------------------
 *
 * guard.c
 *		What an interrupted concurrent statement leaves, and how to finish
 *		or undo it, for the executor (executor.c) and the sweep (worker.c).
 *
 * The CONCURRENTLY forms commit between their steps, so an error or a
 * dead worker can leave their work half done:
 *
 *	CREATE INDEX CONCURRENTLY		an INVALID index: dropped
 *	REINDEX ... CONCURRENTLY		*_ccnew / *_ccold indexes, TOAST ones
 *									too, for INDEX, TABLE, SCHEMA, DATABASE:
 *									dropped
 *	DROP INDEX CONCURRENTLY			the index, now INVALID: the drop is
 *									completed
 *	ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY
 *									a partition pending detach: finalized
 *									(DETACH ... FINALIZE, PostgreSQL 14+)
 *
 * Before such a statement runs, am_guard_prepare() notes what is there
 * (the worker records it in the row's meta->'guard', so that the sweep can
 * act after the worker died); afterwards am_guard_actions() says which
 * statements finish or undo it.
 *
 * NB: only what the statement itself left may be dropped: another
 * session's build on the same table is INVALID too while it runs.  While a
 * CREATE INDEX CONCURRENTLY runs, am_guard_hook() records the OID of the
 * index it creates, and the executor writes it into the row's guard in the
 * transaction that creates the index (its first), so the worker and the
 * sweep of a dead worker drop exactly that index.  (A guard of asyncmig
 * 1.0 only has the indexes that existed before.)  And every drop is
 * checked again once DROP INDEX CONCURRENTLY holds its lock on the table
 * (the same lock a build holds to its end): the index must still be the
 * one meant, and still INVALID, or the drop is refused (see
 * am_guard_expect_drop()).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "guard.h"

/* the guard whose created index the hook records, while its statement runs */
static AmGuard *am_watched = NULL;
/* the only index a DROP INDEX CONCURRENTLY of ours may drop, while it runs */
static Oid	am_expected_drop = InvalidOid;
static object_access_hook_type prev_object_access_hook = NULL;

static void am_guard_hook(ObjectAccessType access, Oid classId, Oid objectId,
						  int subId, void *arg);
static List *am_guard_reindex_candidates(const char *guard_json);

/*
 * am_guard_init
 *		Install the object access hook (in a worker, once).
 */
void
am_guard_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = am_guard_hook;
}

/*
 * am_guard_hook
 *		While a guarded CREATE INDEX CONCURRENTLY runs: remember the index
 *		it creates.  While one of our drops runs: refuse to drop anything
 *		but the expected index, and that one only if it is still INVALID
 *		now that the drop holds its locks.
 */
static void
am_guard_hook(ObjectAccessType access, Oid classId, Oid objectId, int subId,
			  void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (classId != RelationRelationId || subId != 0)
		return;

	if (access == OAT_POST_CREATE && am_watched != NULL &&
		am_watched->kind == AM_GUARD_INDEX && !OidIsValid(am_watched->created))
		am_watched->created = objectId;

	if (access == OAT_DROP && OidIsValid(am_expected_drop))
	{
		HeapTuple	tup;
		bool		valid = true;

		if (objectId != am_expected_drop)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("asyncmig: not dropping relation %u: it is not the index the interrupted statement left",
							objectId)));
		tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(objectId));
		if (HeapTupleIsValid(tup))
		{
			valid = ((Form_pg_index) GETSTRUCT(tup))->indisvalid;
			ReleaseSysCache(tup);
		}
		if (valid)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("asyncmig: not dropping index %u: it is valid now",
							objectId),
					 errdetail("Another session built it meanwhile.")));
	}
}

/*
 * am_guard_watch
 *		Record in g the index its statement creates, until called with NULL.
 */
void
am_guard_watch(AmGuard *g)
{
	am_watched = g;
}

/*
 * am_guard_expect_drop
 *		The next drops may only drop index indexoid (InvalidOid: no check).
 */
void
am_guard_expect_drop(Oid indexoid)
{
	am_expected_drop = indexoid;
}

/*
 * am_guard_is_concurrent
 *		Is stmt one of the CONCURRENTLY commands, whose waits for older
 *		transactions are their design and must not hit lock_timeout?
 */
bool
am_guard_is_concurrent(Node *stmt)
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
			return am_compat_reindex_is_concurrent((ReindexStmt *) stmt);
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			{
				AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

				if (AM_IS_CONCURRENT_DETACH(cmd))
					return true;
			}
			return false;
		default:
			return false;
	}
}

/*
 * am_guard_name_of
 *		The qualified name of a relation, for a statement text.
 */
static char *
am_guard_name_of(Oid relid)
{
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));
	char	   *rel = get_rel_name(relid);

	if (nsp == NULL || rel == NULL)
		return NULL;
	return quote_qualified_identifier(nsp, rel);
}

/*
 * am_guard_prepare
 *		For a concurrent statement that can leave work half done: resolve
 *		its objects (as the owner, with the migration's search_path, in a
 *		transaction of its own) and note what is there.  NULL for other
 *		statements, or when the objects do not exist (the statement then
 *		fails on its own and leaves nothing).  For CREATE INDEX CONCURRENTLY
 *		IF NOT EXISTS over an INVALID index of that name, g->drop_first
 *		names it: the caller drops it first, or the build would be skipped.
 */
AmGuard *
am_guard_prepare(Node *stmt)
{
	AmGuard    *g = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (!am_guard_is_concurrent(stmt))
		return NULL;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	g = MemoryContextAllocZero(cxt, sizeof(AmGuard));

	if (IsA(stmt, IndexStmt))
	{
		IndexStmt  *istmt = (IndexStmt *) stmt;
		Relation	rel;

		g->kind = AM_GUARD_INDEX;
		g->relid = RangeVarGetRelid(istmt->relation, NoLock, true);
		rel = OidIsValid(g->relid) ? try_relation_open(g->relid, AccessShareLock) : NULL;
		if (rel)
		{
			List	   *indexes = RelationGetIndexList(rel);
			MemoryContext old = MemoryContextSwitchTo(cxt);

			g->before = list_copy(indexes);
			if (istmt->idxname)
				g->idxname = pstrdup(istmt->idxname);
			MemoryContextSwitchTo(old);
			relation_close(rel, AccessShareLock);
		}
		else
			g = NULL;
		if (g && istmt->idxname && istmt->if_not_exists)
		{
			Oid			idxoid = get_relname_relid(istmt->idxname,
												   get_rel_namespace(g->relid));

			if (OidIsValid(idxoid) && get_rel_relkind(idxoid) == RELKIND_INDEX &&
				IndexGetRelation(idxoid, true) == g->relid &&
				!get_index_isvalid(idxoid))
			{
				g->drop_first_oid = idxoid;
				g->drop_first = MemoryContextStrdup(cxt, am_guard_name_of(idxoid));
			}
		}
	}
	else if (IsA(stmt, ReindexStmt))
	{
		ReindexStmt *rstmt = (ReindexStmt *) stmt;

		g->kind = AM_GUARD_REINDEX;
		if (rstmt->kind == REINDEX_OBJECT_INDEX)
		{
			Oid			idxoid = RangeVarGetRelid(rstmt->relation, NoLock, true);

			g->scope = 't';
			if (OidIsValid(idxoid))
				g->relid = IndexGetRelation(idxoid, true);
		}
		else if (rstmt->kind == REINDEX_OBJECT_TABLE)
		{
			g->scope = 't';
			g->relid = RangeVarGetRelid(rstmt->relation, NoLock, true);
		}
		else if (rstmt->kind == REINDEX_OBJECT_SCHEMA)
		{
			g->scope = 'n';
			g->nspid = get_namespace_oid(rstmt->name, true);
		}
		else
			g->scope = 'd';		/* DATABASE, SYSTEM */
		if ((g->scope == 't' && !OidIsValid(g->relid)) ||
			(g->scope == 'n' && !OidIsValid(g->nspid)))
			g = NULL;
		else
		{
			/* the leftovers that were there before are not ours */
			char	   *json = am_guard_to_json(g);
			List	   *before = am_guard_reindex_candidates(json);
			MemoryContext old = MemoryContextSwitchTo(cxt);

			g->before = list_copy(before);
			MemoryContextSwitchTo(old);
		}
	}
	else if (IsA(stmt, DropStmt) && ((DropStmt *) stmt)->removeType == OBJECT_INDEX &&
			 list_length(((DropStmt *) stmt)->objects) == 1)
	{
		List	   *name = linitial(((DropStmt *) stmt)->objects);
		Oid			idxoid = RangeVarGetRelid(makeRangeVarFromNameList(name),
											  NoLock, true);

		g->kind = AM_GUARD_DROP;
		g->target = idxoid;
		if (OidIsValid(idxoid) && get_rel_relkind(idxoid) == RELKIND_INDEX)
			g->relid = IndexGetRelation(idxoid, true);
		if (!OidIsValid(g->relid))
			g = NULL;
	}
	else if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *astmt = (AlterTableStmt *) stmt;
		ListCell   *lc;

		g->kind = AM_GUARD_DETACH;
		g->relid = RangeVarGetRelid(astmt->relation, NoLock, true);
		foreach(lc, astmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if (AM_IS_CONCURRENT_DETACH(cmd))
				g->target = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
											 NoLock, true);
		}
		if (!OidIsValid(g->relid) || !OidIsValid(g->target))
			g = NULL;
	}
	else
		g = NULL;				/* REFRESH MATERIALIZED VIEW: nothing left */

	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return g;
}

/*
 * am_guard_to_json
 *		meta->'guard': {"kind": ..., "relid": ..., "target": ..., "created":
 *		..., "index": ..., "scope": ..., "nspid": ..., "before": [...]}.
 *		(Rows of asyncmig 1.0 have {"relid", "index", "reindex", "before"};
 *		am_guard_actions() reads both.)
 */
char *
am_guard_to_json(AmGuard *g)
{
	static const char *const kinds[] = {"index", "reindex", "drop", "detach"};
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"kind\": \"%s\", \"relid\": %u, \"target\": %u, \"created\": %u, \"index\": ",
					 kinds[g->kind], g->relid, g->target, g->created);
	if (g->idxname)
		escape_json(&buf, g->idxname);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"reindex\": %s, \"scope\": \"%c\", \"nspid\": %u, \"before\": [",
					 g->kind == AM_GUARD_REINDEX ? "true" : "false",
					 g->scope ? g->scope : 't', g->nspid);
	foreach(lc, g->before)
	{
		appendStringInfo(&buf, "%s%u", first ? "" : ", ", lfirst_oid(lc));
		first = false;
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/*
 * The INVALID *_ccnew / *_ccold indexes in the scope of a REINDEX guard:
 * its table, the table's partitions and their TOAST tables ('t'), the
 * tables of a schema and their TOAST tables ('n'), or the database ('d').
 * $1 is the guard.
 */
#define AM_REINDEX_LEFTOVERS \
	"WITH RECURSIVE g AS (SELECT $1::pg_catalog.jsonb AS g), " \
	"tabs(oid) AS (" \
	"  SELECT (g.g ->> 'relid')::pg_catalog.oid FROM g " \
	"  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tabs ON i.inhparent = tabs.oid), " \
	"scope(oid) AS (" \
	"  SELECT c.oid FROM pg_catalog.pg_class c, g " \
	"  WHERE CASE coalesce(g.g ->> 'scope', 't') " \
	"    WHEN 't' THEN c.oid IN (SELECT oid FROM tabs) " \
	"    WHEN 'n' THEN c.relnamespace = (g.g ->> 'nspid')::pg_catalog.oid " \
	"    ELSE true END) " \
	"SELECT i.indexrelid FROM pg_catalog.pg_index i " \
	"JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid " \
	"WHERE NOT i.indisvalid " \
	"  AND c.relname OPERATOR(pg_catalog.~) '_cc(new|old)[0-9]*$' " \
	"  AND (i.indrelid IN (SELECT oid FROM scope) " \
	"    OR i.indrelid IN (SELECT t.reltoastrelid FROM pg_catalog.pg_class t " \
	"      WHERE t.oid IN (SELECT oid FROM scope)))"

/*
 * am_guard_oids
 *		Run a query that returns OIDs (parameter $1: the guard as jsonb text)
 *		and return them in the caller's memory context.  Caller is in a
 *		transaction with a snapshot.
 */
static List *
am_guard_oids(const char *sql, const char *guard_json)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *result = NIL;
	uint64		i;
	int			save_nestlevel;

	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	values[0] = CStringGetTextDatum(guard_json);
	SPI_connect();
	if (SPI_execute_with_args(sql, 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "asyncmig: could not look for what a statement left");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		if (!isnull)
			result = lappend_oid(result, DatumGetObjectId(d));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);
	return result;
}

/*
 * am_guard_reindex_candidates
 *		The leftovers in a REINDEX guard's scope now.
 */
static List *
am_guard_reindex_candidates(const char *guard_json)
{
	return am_guard_oids(AM_REINDEX_LEFTOVERS, guard_json);
}

/*
 * am_guard_drop_action
 *		An action that drops index idxoid concurrently, checked again under
 *		the drop's lock.  Caller is in a transaction.
 */
static AmGuardAction *
am_guard_drop_action(Oid idxoid)
{
	char	   *name = am_guard_name_of(idxoid);
	AmGuardAction *a;

	if (name == NULL)
		return NULL;
	a = palloc0(sizeof(AmGuardAction));
	a->check_oid = idxoid;
	a->label = psprintf("INVALID index %s", name);
	a->sql = psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", name);
	return a;
}

/*
 * am_guard_actions
 *		What finishes or undoes the work a guarded statement left (after an
 *		error, or after its worker died): a List of AmGuardAction, in the
 *		caller's memory context, to run as the migration's owner.  Looks in
 *		a transaction of its own.
 */
List *
am_guard_actions(const char *guard_json, bool *undoes)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *actions = NIL;
	List	   *oids;
	ListCell   *lc;
	const char *kind_sql =
		"SELECT CASE WHEN g ? 'kind' THEN g ->> 'kind' "
		"  WHEN (g ->> 'reindex')::pg_catalog.bool THEN 'reindex' ELSE 'index' END "
		"FROM (SELECT $1::pg_catalog.jsonb AS g) s";
	char	   *kind = NULL;

	*undoes = true;
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());

	/* which kind of guard (1.0 rows have none: index or reindex) */
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		int			save_nestlevel = NewGUCNestLevel();

		(void) set_config_option("search_path", "pg_catalog, pg_temp",
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		values[0] = CStringGetTextDatum(guard_json);
		SPI_connect();
		if (SPI_execute_with_args(kind_sql, 1, types, values, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "asyncmig: could not read a guard");
		kind = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1));
		SPI_finish();
		AtEOXact_GUC(true, save_nestlevel);
	}

	if (strcmp(kind, "index") == 0)
	{
		/*
		 * The index the build created, if the worker saw it; else (the sweep
		 * of a dead worker) the table's INVALID indexes that were not there
		 * before, of the given name if it had one.
		 */
		oids = am_guard_oids("SELECT i.indexrelid FROM pg_catalog.pg_index i "
							 "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid, "
							 "  (SELECT $1::pg_catalog.jsonb AS g) AS g "
							 "WHERE i.indrelid = (g.g ->> 'relid')::pg_catalog.oid "
							 "  AND NOT i.indisvalid "
							 "  AND CASE WHEN coalesce((g.g ->> 'created')::pg_catalog.oid, 0) <> 0 "
							 "    THEN i.indexrelid = (g.g ->> 'created')::pg_catalog.oid "
							 "    ELSE i.indexrelid::pg_catalog.text <> ALL (ARRAY("
							 "        SELECT pg_catalog.jsonb_array_elements_text(g.g -> 'before'))) "
							 "      AND (g.g ->> 'index' IS NULL OR c.relname::pg_catalog.text = g.g ->> 'index') "
							 "  END",
							 guard_json);
	}
	else if (strcmp(kind, "reindex") == 0)
	{
		List	   *before;

		oids = am_guard_oids(AM_REINDEX_LEFTOVERS, guard_json);
		before = am_guard_oids("SELECT pg_catalog.jsonb_array_elements_text(g -> 'before')::pg_catalog.oid "
							   "FROM (SELECT $1::pg_catalog.jsonb AS g) s "
							   "WHERE g ? 'kind'",	/* 1.0: before = all indexes */
							   guard_json);
		oids = list_difference_oid(oids, before);
	}
	else if (strcmp(kind, "drop") == 0)
	{
		*undoes = false;
		oids = am_guard_oids("SELECT i.indexrelid FROM pg_catalog.pg_index i, "
							 "  (SELECT $1::pg_catalog.jsonb AS g) AS g "
							 "WHERE i.indexrelid = (g.g ->> 'target')::pg_catalog.oid "
							 "  AND NOT i.indisvalid",
							 guard_json);
	}
	else
	{
		/* detach: a partition left pending detach is finalized */
		List	   *pending;

		*undoes = false;
		oids = NIL;
		pending = am_guard_oids("SELECT i.inhparent FROM pg_catalog.pg_inherits i, "
								"  (SELECT $1::pg_catalog.jsonb AS g) AS g "
								"WHERE i.inhrelid = (g.g ->> 'target')::pg_catalog.oid "
								"  AND i.inhparent = (g.g ->> 'relid')::pg_catalog.oid "
								"  AND " AM_INHERITS_DETACH_PENDING("i"),
								guard_json);
		if (pending != NIL)
		{
			Oid			parent = linitial_oid(pending);
			Oid			part = InvalidOid;
			char	   *pname;
			char	   *cname;

			part = linitial_oid(am_guard_oids("SELECT ($1::pg_catalog.jsonb ->> 'target')::pg_catalog.oid",
											  guard_json));
			pname = am_guard_name_of(parent);
			cname = am_guard_name_of(part);
			if (pname && cname)
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);
				AmGuardAction *a = palloc0(sizeof(AmGuardAction));

				a->label = psprintf("partition %s pending detach", cname);
				a->sql = psprintf("ALTER TABLE %s DETACH PARTITION %s FINALIZE",
								  pname, cname);
				actions = lappend(actions, a);
				MemoryContextSwitchTo(old);
			}
		}
	}

	foreach(lc, oids)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		AmGuardAction *a = am_guard_drop_action(lfirst_oid(lc));

		if (a)
			actions = lappend(actions, a);
		MemoryContextSwitchTo(old);
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return actions;
}

/*
 * am_guard_verify
 *		After a CREATE INDEX CONCURRENTLY succeeded: the index it made (or,
 *		with IF NOT EXISTS, the index of that name) must be valid, or the
 *		run must not end FINISHED.
 */
void
am_guard_verify(AmGuard *g)
{
	Oid			idxoid = InvalidOid;
	bool		valid = true;

	if (g->kind != AM_GUARD_INDEX)
		return;
	StartTransactionCommand();
	if (OidIsValid(g->created))
		idxoid = g->created;
	else if (g->idxname)
		idxoid = get_relname_relid(g->idxname, get_rel_namespace(g->relid));
	if (OidIsValid(idxoid) && get_rel_relkind(idxoid) == RELKIND_INDEX)
		valid = get_index_isvalid(idxoid);
	CommitTransactionCommand();
	if (!valid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index %s is INVALID after its concurrent build",
						g->idxname ? g->idxname : "(unnamed)")));
}
