/*-------------------------------------------------------------------------
 *
 * batch_check.c
 *		What a batched migration needs, checked in the catalogs: a key
 *		column that a btree index walks in the order the batch statement
 *		compares in, and a batch statement that is one DML statement using
 *		exactly $1 and $2, that moves no key and that its owner may run.
 *
 * The walk's order is the order "BETWEEN $1 AND $2" compares keys in: the
 * key type's default btree operator class and the column's collation.  An
 * index led by the key in another order (text_pattern_ops, another
 * collation) would walk the keys in an order the statement does not
 * compare in, skipping some rows and repeating others: it is not the key's
 * index.  asyncmig.schedule_batches() checks all this before it records
 * anything (a statement without $2 is an error at deploy time, not at
 * 3 a.m.); the worker resolves the key once per run and then checks it by
 * OID at every batch (am_batch_check_pinned()), so that a changed column
 * or a dropped index ends the run with a clear error, never a walk in
 * another order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/partition.h"
#include "catalog/pg_opclass.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/cmdtag.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "batch_check.h"
#include "compat.h"

/* the parameters a batch statement refers to */
typedef struct AmParamRefs
{
	bool		used[3];		/* $1, $2 */
	int			highest;
} AmParamRefs;

static void am_batch_key_order(AmBatchKey *key, const char *relname);
static bool am_batch_usable_index(Oid indexid, const AmBatchKey *key);
static bool am_batch_find_index(AmBatchKey *key, Oid prefer);
static bool am_paramref_walker(Node *node, void *context);
static void am_batch_check_writes(Query *q, const AmBatchKey *key,
								  List *walked);
static void am_batch_analyze(RawStmt *raw, const char *sql,
							 const AmBatchKey *key);

/*
 * am_batch_key_order
 *		The walk's order for key->typid and key->collation: the type's
 *		default btree operator class, and its <, <= and > for the type.
 *		A type without one cannot be walked in order.
 */
static void
am_batch_key_order(AmBatchKey *key, const char *relname)
{
	Oid			opfamily;

	key->opclass = GetDefaultOpClass(key->typid, BTREE_AM_OID);
	if (!OidIsValid(key->opclass))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("column \"%s\" of table \"%s\" cannot be walked in batches",
						key->attname, relname),
				 errdetail("Its type %s has no default btree operator class, so keys have no order to walk in.",
						   format_type_be(key->typid)),
				 errhint("Name another column with a btree index: key => 'column'.")));
	opfamily = get_opclass_family(key->opclass);
	key->opcintype = get_opclass_input_type(key->opclass);
	key->lt_opr = get_opfamily_member(opfamily, key->opcintype,
									  key->opcintype, BTLessStrategyNumber);
	key->le_opr = get_opfamily_member(opfamily, key->opcintype,
									  key->opcintype, BTLessEqualStrategyNumber);
	key->gt_opr = get_opfamily_member(opfamily, key->opcintype,
									  key->opcintype, BTGreaterStrategyNumber);
	if (!OidIsValid(key->lt_opr) || !OidIsValid(key->le_opr) ||
		!OidIsValid(key->gt_opr))
		elog(ERROR, "operator class %u has no <, <= or > for type %u",
			 key->opclass, key->opcintype);
}

/*
 * am_batch_usable_index
 *		Is indexid a valid, non-partial btree index whose first column is
 *		the key, in the walk's order (the key's operator class and
 *		collation)?  Descending or NULLS FIRST is the same order read the
 *		other way: usable.
 */
static bool
am_batch_usable_index(Oid indexid, const AmBatchKey *key)
{
	HeapTuple	itup;
	HeapTuple	ctup;
	Form_pg_index idx;
	bool		usable;
	bool		isnull;
	Datum		d;

	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
	if (!HeapTupleIsValid(itup))
		return false;
	idx = (Form_pg_index) GETSTRUCT(itup);
	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexid));
	usable = HeapTupleIsValid(ctup) &&
		((Form_pg_class) GETSTRUCT(ctup))->relam == BTREE_AM_OID &&
		idx->indrelid == key->relid &&
		idx->indisvalid && idx->indnkeyatts >= 1 &&
		idx->indkey.values[0] == key->attnum &&
		heap_attisnull(itup, Anum_pg_index_indpred, NULL);
	if (HeapTupleIsValid(ctup))
		ReleaseSysCache(ctup);
	if (usable)
	{
		d = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indclass, &isnull);
		usable = ((oidvector *) DatumGetPointer(d))->values[0] == key->opclass;
		d = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indcollation, &isnull);
		usable = usable &&
			((oidvector *) DatumGetPointer(d))->values[0] == key->collation;
	}
	ReleaseSysCache(itup);
	return usable;
}

/*
 * am_batch_find_index
 *		Set key->indexid to an index in the walk's order: prefer if it
 *		still is one, else the primary key's, else any other.  False if
 *		there is none.
 */
static bool
am_batch_find_index(AmBatchKey *key, Oid prefer)
{
	Relation	rel = relation_open(key->relid, AccessShareLock);
	Oid			pkey = am_compat_primary_key_index(rel);
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	key->indexid = InvalidOid;
	if (OidIsValid(prefer) && am_batch_usable_index(prefer, key))
		key->indexid = prefer;
	else if (OidIsValid(pkey) && am_batch_usable_index(pkey, key))
		key->indexid = pkey;
	else
	{
		foreach(lc, indexes)
		{
			if (am_batch_usable_index(lfirst_oid(lc), key))
			{
				key->indexid = lfirst_oid(lc);
				break;
			}
		}
	}
	list_free(indexes);
	relation_close(rel, AccessShareLock);
	return OidIsValid(key->indexid);
}

/*
 * am_batch_check_describe_order
 *		"type text, collation \"C\", operator class text_ops": the walk's
 *		order in words, for messages.
 */
char *
am_batch_check_describe_order(Oid typid, Oid collation, Oid opclass)
{
	HeapTuple	tup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclass));
	char	   *opcname = "?";

	if (HeapTupleIsValid(tup))
	{
		opcname = pstrdup(NameStr(((Form_pg_opclass) GETSTRUCT(tup))->opcname));
		ReleaseSysCache(tup);
	}
	if (OidIsValid(collation))
		return psprintf("type %s, collation %s, operator class %s",
						format_type_be(typid),
						quote_identifier(get_collation_name(collation)), opcname);
	return psprintf("type %s, operator class %s", format_type_be(typid), opcname);
}

/*
 * am_batch_check_key
 *		Resolve the key of a batched migration on relid: the column named
 *		keyname, or with NULL the table's single-column primary key, its
 *		order (am_batch_key_order()) and a valid btree index led by it in
 *		that order (prefer if it still is one, else the primary key's).
 *		Each failure is an error that says what to do.  At schedule time
 *		the caller must also be able to read the column.
 */
void
am_batch_check_key(Oid relid, const char *keyname, AmBatchKey *key,
				   bool at_schedule, Oid prefer)
{
	Relation	rel;
	char		relkind = get_rel_relkind(relid);
	char	   *relname;
	Oid			pkey;
	int32		typmod;

	memset(key, 0, sizeof(AmBatchKey));
	key->relid = relid;
	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("A batched migration walks the table it was scheduled on; schedule it again for the new table.")));
	relname = get_rel_name(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", relname),
				 errdetail("A batched migration walks the key of a table.")));
	/* the worker's session cannot see this one's temporary tables */
	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("\"%s\" is a temporary table", relname),
				 errdetail("A batched migration runs in a worker's session, which cannot see the temporary tables of other sessions."),
				 errhint("Walk a permanent (or unlogged) table.")));

	rel = relation_open(relid, AccessShareLock);
	pkey = am_compat_primary_key_index(rel);
	if (keyname == NULL)
	{
		HeapTuple	itup;
		Form_pg_index idx;

		if (!OidIsValid(pkey))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" has no primary key to walk in batches", relname),
					 errhint("Name a column with a btree index: key => 'column'.")));
		itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkey));
		if (!HeapTupleIsValid(itup))
			elog(ERROR, "cache lookup failed for index %u", pkey);
		idx = (Form_pg_index) GETSTRUCT(itup);
		if (idx->indnkeyatts != 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the primary key of table \"%s\" has %d columns", relname,
							idx->indnkeyatts),
					 errdetail("Batches walk one column in order."),
					 errhint("Name a column with a btree index: key => 'column'.")));
		key->attnum = idx->indkey.values[0];
		ReleaseSysCache(itup);
		key->attname = get_attname(relid, key->attnum, false);
	}
	else
	{
		key->attnum = get_attnum(relid, keyname);
		if (key->attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							keyname, relname)));
		if (key->attnum < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("cannot walk system column \"%s\" in batches", keyname),
					 errhint("Name a column with a btree index: key => 'column'.")));
		key->attname = pstrdup(keyname);
	}
	relation_close(rel, AccessShareLock);
	get_atttypetypmodcoll(relid, key->attnum, &key->typid, &typmod, &key->collation);
	am_batch_key_order(key, relname);

	if (!am_batch_find_index(key, prefer))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of table \"%s\" has no btree index to walk in batches",
						key->attname, relname),
				 errdetail("Batches walk a valid, non-partial btree index whose first column is the key, in the order \"BETWEEN $1 AND $2\" compares it in: %s. An index with another operator class (text_pattern_ops) or collation walks another order.",
						   am_batch_check_describe_order(key->typid, key->collation, key->opclass)),
				 errhint("Create one first, e.g. CREATE INDEX CONCURRENTLY ON %s (%s).",
						 quote_identifier(relname), quote_identifier(key->attname))));

	if (at_schedule &&
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, key->attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", relname),
				 errdetail("A batched migration reads column \"%s\" with the rights of the role that schedules it.",
						   key->attname)));
}

/*
 * am_batch_check_pinned
 *		Before each batch: is the key still what the run resolved (the
 *		column there, of the same type and collation), and its index still
 *		one in the walk's order?  An index dropped or rebuilt (REINDEX
 *		CONCURRENTLY gives it a new OID) is replaced by another in exactly
 *		the same order, if there is one: the walk's order is what the run
 *		pinned, the index only how it is read, so nothing is skipped.
 *		Returns true if the index changed (key->indexid is the new one);
 *		*attname is the column's current name.
 */
bool
am_batch_check_pinned(AmBatchKey *key, char **attname)
{
	HeapTuple	tup;
	Form_pg_attribute att;
	Oid			old = key->indexid;

	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(key->relid),
						  Int16GetDatum(key->attnum));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the table that this batched migration walks (OID %u) is gone", key->relid),
				 errhint("Schedule it again for the new table.")));
	att = (Form_pg_attribute) GETSTRUCT(tup);
	if (att->attisdropped || att->atttypid != key->typid ||
		att->attcollation != key->collation)
	{
		char	   *now = att->attisdropped ? pstrdup("dropped") :
			psprintf("now of %s", am_batch_check_describe_order(att->atttypid, att->attcollation,
														  GetDefaultOpClass(att->atttypid, BTREE_AM_OID)));

		ReleaseSysCache(tup);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the key of this batched migration changed during its walk"),
				 errdetail("Column \"%s\" of table \"%s\" was of %s when the walk began; it is %s. The keys recorded would be read in another order.",
						   key->attname, get_rel_name(key->relid),
						   am_batch_check_describe_order(key->typid, key->collation, key->opclass), now),
				 errhint("Start the walk again from its first key with asyncmig.run(name, restart => true); the batch statement is then applied again to the rows done already.")));
	}
	*attname = pstrdup(NameStr(att->attname));
	ReleaseSysCache(tup);

	if (am_batch_usable_index(key->indexid, key))
		return false;
	if (!am_batch_find_index(key, InvalidOid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the index that this batched migration walks is gone, and column \"%s\" of table \"%s\" has no other in the walk's order",
						*attname, get_rel_name(key->relid)),
				 errdetail("The walk's order is %s; an index in another order would skip rows or repeat them.",
						   am_batch_check_describe_order(key->typid, key->collation, key->opclass)),
				 errhint("Create one (e.g. CREATE INDEX CONCURRENTLY ON %s (%s)), then asyncmig.run(name) resumes the walk where it stopped.",
						 quote_identifier(get_rel_name(key->relid)), quote_identifier(*attname))));
	ereport(LOG,
			(errmsg("asyncmig: the walk of column \"%s\" goes on with index \"%s\" (index %u is gone or no longer usable); the order is the same",
					*attname, get_rel_name(key->indexid), old)));
	return true;
}

/*
 * am_paramref_walker
 *		Note which $n a raw parse tree refers to.
 */
static bool
am_paramref_walker(Node *node, void *context)
{
	AmParamRefs *refs = (AmParamRefs *) context;

	if (node == NULL)
		return false;
	if (IsA(node, ParamRef))
	{
		int			n = ((ParamRef *) node)->number;

		if (n >= 1 && n <= 2)
			refs->used[n] = true;
		refs->highest = Max(refs->highest, n);
		return false;
	}
	return raw_expression_tree_walker(node, am_paramref_walker, context);
}

/*
 * am_batch_check_action
 *		One write of a batch statement (its command, or a MERGE action) on
 *		a table the walk covers (target): no INSERT, and no UPDATE that
 *		assigns to the key.  Both move rows ahead of the walk, where later
 *		batches take them again: the walk would run over rows an earlier
 *		batch created or moved (a statement that copies rows into its own
 *		table grew it without end).  The upper bound of the walk stops
 *		that, but rows moved behind the walk would be skipped, and rows
 *		moved within the range updated twice: not "exactly once".
 */
static void
am_batch_check_action(CmdType cmd, List *tlist, const AmBatchKey *key,
					  Oid target)
{
	ListCell   *lc;

	if (cmd == CMD_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch SQL must not insert into the table it walks"),
				 errdetail("Rows it inserts ahead of the walk would be walked again by later batches, so no row would be done exactly once."),
				 errhint("Insert into another table, or copy rows within a table with asyncmig.schedule().")));
	if (cmd != CMD_UPDATE)
		return;
	foreach(lc, tlist)
	{
		TargetEntry *te = lfirst_node(TargetEntry, lc);
		char	   *col;

		if (te->resjunk)
			continue;
		col = get_attname(target, te->resno, true);
		if (col && strcmp(col, key->attname) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("batch SQL must not assign to the key column \"%s\"", key->attname),
					 errdetail("A batch that changes keys moves rows across the walk: rows moved ahead of it are updated again, rows moved behind it never."),
					 errhint("Walk another column with a btree index (key => 'column'), or change the key with asyncmig.schedule().")));
	}
}

/*
 * am_batch_check_writes
 *		The writes of an analyzed (and rewritten) batch statement, and of
 *		its data-modifying WITH queries, on the tables the walk covers
 *		(walked: the table, its partitions or children, and the tables it
 *		is a partition of): am_batch_check_action().  What triggers do
 *		cannot be seen here; the walk's upper bound keeps such a run
 *		finite.
 */
static void
am_batch_check_writes(Query *q, const AmBatchKey *key, List *walked)
{
	ListCell   *lc;

	if (q->resultRelation > 0)
	{
		Oid			target = rt_fetch(q->resultRelation, q->rtable)->relid;

		if (list_member_oid(walked, target))
		{
			am_batch_check_action(q->commandType, q->targetList, key, target);
			foreach(lc, am_compat_merge_actions(q))
				am_batch_check_action(am_compat_merge_action_cmd(lfirst(lc)),
									  am_compat_merge_action_tlist(lfirst(lc)),
									  key, target);
		}
	}
	foreach(lc, q->cteList)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

		if (IsA(cte->ctequery, Query))
			am_batch_check_writes((Query *) cte->ctequery, key, walked);
	}
}

/*
 * am_batch_analyze
 *		Parse analysis of the batch statement with $1 and $2 typed as the
 *		key, its rewriting (rules, views, row security) and planning, in a
 *		subtransaction that is rolled back: type errors (a uuid column
 *		compared with a bigint key) show now, the statement's writes are
 *		checked (am_batch_check_writes()), and so are the current user's
 *		privileges for everything it reads and writes, as the executor
 *		checks them (a SELECT-only owner would fail at batch 1).  The locks
 *		analysis takes on the tables do not stay with the caller's
 *		transaction.
 */
static void
am_batch_analyze(RawStmt *raw, const char *sql, const AmBatchKey *key)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			types[2];

	types[0] = key->typid;
	types[1] = key->typid;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Query	   *q = parse_analyze_fixedparams(copyObject(raw), sql, types, 2, NULL);
		List	   *walked = find_all_inheritors(key->relid, NoLock, NULL);
		ListCell   *lc;

		if (get_rel_relispartition(key->relid))
			walked = list_concat(walked, get_partition_ancestors(key->relid));
		/* QueryRewrite(), not pg_rewrite_query(): static before 14 */
		foreach(lc, q->commandType == CMD_UTILITY ? list_make1(q) : QueryRewrite(q))
		{
			Query	   *rq = lfirst_node(Query, lc);
			PlannedStmt *plan;

			if (rq->commandType == CMD_UTILITY)
				continue;
			am_batch_check_writes(rq, key, walked);
			plan = pg_plan_query(rq, sql, CURSOR_OPT_PARALLEL_OK, NULL);
			(void) am_compat_check_plan_permissions(plan);
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * am_batch_check_sql
 *		A batch statement is one INSERT, UPDATE, DELETE or MERGE that uses
 *		$1 and $2 and no other parameter.  With analyze, it is also
 *		analyzed with both typed as the key, and its writes and privileges
 *		checked (am_batch_analyze(); without, when it depends on
 *		migrations that have not run yet, the objects it names may not
 *		exist yet: the worker checks it when the run begins).
 */
void
am_batch_check_sql(const char *sql, const AmBatchKey *key, bool analyze)
{
	List	   *stmts = pg_parse_query(sql);
	RawStmt    *raw;
	const char *tag;
	AmParamRefs refs;

	if (list_length(stmts) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch SQL must be exactly one statement"),
				 errdetail("It holds %d statements.", list_length(stmts)),
				 errhint("Run other statements in a migration of their own (asyncmig.schedule()), with depends_on.")));
	raw = linitial_node(RawStmt, stmts);
	tag = GetCommandTagName(CreateCommandTag(raw->stmt));
	if (strcmp(tag, "INSERT") != 0 && strcmp(tag, "UPDATE") != 0 &&
		strcmp(tag, "DELETE") != 0 && strcmp(tag, "MERGE") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch SQL must be an INSERT, UPDATE, DELETE or MERGE statement"),
				 errdetail("It is a %s statement.", tag),
				 errhint("Schema changes and other statements go through asyncmig.schedule().")));

	memset(&refs, 0, sizeof(refs));
	(void) raw_expression_tree_walker(raw->stmt, am_paramref_walker, &refs);
	if (refs.highest > 2)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PARAMETER),
				 errmsg("there is no parameter $%d in batch SQL", refs.highest),
				 errdetail("A batch statement gets two parameters: $1, the first key of the batch, and $2, the last."),
				 errhint("e.g. UPDATE t SET ... WHERE id BETWEEN $1 AND $2")));
	if (!refs.used[1] || !refs.used[2])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch SQL must use both $1 and $2"),
				 errdetail("$1 is the first key of the batch and $2 the last, both inclusive; a statement without them would run over the whole table once per batch."),
				 errhint("e.g. UPDATE t SET ... WHERE id BETWEEN $1 AND $2")));
	if (analyze)
		am_batch_analyze(raw, sql, key);
}
