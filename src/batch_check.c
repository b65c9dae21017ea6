/*-------------------------------------------------------------------------
 *
 * batch_check.c
 *		What a batched migration needs, checked in the catalogs: a key
 *		column that a btree index walks in order, and a batch statement
 *		that is one DML statement using exactly $1 and $2.
 *
 * asyncmig.schedule_batches() checks both before it records anything (a
 * statement without $2 is an error at deploy time, not at 3 a.m.); the
 * worker resolves the key again at every batch, by OID, so that a renamed
 * table or column, or a dropped index, ends the run with a clear error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
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

static bool am_batch_usable_index(Oid indexid, AttrNumber attnum,
								  AmBatchKey *key);
static bool am_paramref_walker(Node *node, void *context);
static void am_batch_analyze(RawStmt *raw, const char *sql, Oid keytype);

/*
 * am_batch_usable_index
 *		Is indexid a valid, non-partial btree index whose first column is
 *		attnum?  If so, fill key's index fields from it.
 */
static bool
am_batch_usable_index(Oid indexid, AttrNumber attnum, AmBatchKey *key)
{
	HeapTuple	itup;
	HeapTuple	ctup;
	Form_pg_index idx;
	bool		usable;
	bool		isnull;
	Datum		d;
	oidvector  *indclass;
	oidvector  *indcoll;
	Oid			opfamily;

	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
	if (!HeapTupleIsValid(itup))
		return false;
	idx = (Form_pg_index) GETSTRUCT(itup);
	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(indexid));
	usable = HeapTupleIsValid(ctup) &&
		((Form_pg_class) GETSTRUCT(ctup))->relam == BTREE_AM_OID &&
		idx->indisvalid && idx->indnkeyatts >= 1 &&
		idx->indkey.values[0] == attnum &&
		heap_attisnull(itup, Anum_pg_index_indpred, NULL);
	if (HeapTupleIsValid(ctup))
		ReleaseSysCache(ctup);
	if (usable)
	{
		d = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indclass, &isnull);
		indclass = (oidvector *) DatumGetPointer(d);
		d = SysCacheGetAttr(INDEXRELID, itup, Anum_pg_index_indcollation, &isnull);
		indcoll = (oidvector *) DatumGetPointer(d);
		opfamily = get_opclass_family(indclass->values[0]);
		key->indexid = indexid;
		key->opcintype = get_opclass_input_type(indclass->values[0]);
		key->lt_opr = get_opfamily_member(opfamily, key->opcintype,
										  key->opcintype, BTLessStrategyNumber);
		key->gt_opr = get_opfamily_member(opfamily, key->opcintype,
										  key->opcintype, BTGreaterStrategyNumber);
		key->collation = indcoll->values[0];
		usable = OidIsValid(key->lt_opr) && OidIsValid(key->gt_opr);
	}
	ReleaseSysCache(itup);
	return usable;
}

/*
 * am_batch_check_key
 *		Resolve the key of a batched migration on relid: the column named
 *		keyname, or with NULL the table's single-column primary key, and a
 *		valid btree index led by it (the primary key's if it qualifies).
 *		Each failure is an error that says what to do.  At schedule time
 *		the caller must also be able to read the column.
 */
void
am_batch_check_key(Oid relid, const char *keyname, AmBatchKey *key,
					 bool at_schedule)
{
	Relation	rel;
	char		relkind = get_rel_relkind(relid);
	char	   *relname;
	Oid			pkey;
	List	   *indexes;
	ListCell   *lc;
	int32		typmod;
	Oid			attcoll;

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
	indexes = RelationGetIndexList(rel);

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
	get_atttypetypmodcoll(relid, key->attnum, &key->typid, &typmod, &attcoll);

	/* the primary key's index first, then any other */
	if (!(OidIsValid(pkey) && am_batch_usable_index(pkey, key->attnum, key)))
	{
		foreach(lc, indexes)
		{
			if (am_batch_usable_index(lfirst_oid(lc), key->attnum, key))
				break;
		}
	}
	if (!OidIsValid(key->indexid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of table \"%s\" has no btree index to walk in batches",
						key->attname, relname),
				 errdetail("Batches need a valid, non-partial btree index whose first column is the key."),
				 errhint("Create one first, e.g. CREATE INDEX CONCURRENTLY ON %s (%s).",
						 quote_identifier(relname), quote_identifier(key->attname))));
	if (key->collation == attcoll)
		key->collation = InvalidOid;
	list_free(indexes);
	relation_close(rel, AccessShareLock);

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
 * am_batch_analyze
 *		Parse analysis of the batch statement with $1 and $2 typed as the
 *		key, in a subtransaction that is rolled back: type errors (a uuid
 *		column compared with a bigint key) show now, and the locks analysis
 *		takes on the tables do not stay with the caller's transaction.
 */
static void
am_batch_analyze(RawStmt *raw, const char *sql, Oid keytype)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			types[2];

	types[0] = keytype;
	types[1] = keytype;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		(void) parse_analyze_fixedparams(copyObject(raw), sql, types, 2, NULL);
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
 *		analyzed with both typed as the key (without, when it depends on
 *		migrations that have not run yet, the objects it names may not
 *		exist yet).
 */
void
am_batch_check_sql(const char *sql, Oid keytype, bool analyze)
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
		am_batch_analyze(raw, sql, keytype);
}
