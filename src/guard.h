/*-------------------------------------------------------------------------
 *
 * guard.h
 *		What an interrupted concurrent statement leaves, and how to finish
 *		or undo it (see guard.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_GUARD_H
#define ASYNCMIG_GUARD_H

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"

typedef enum AmGuardKind
{
	AM_GUARD_INDEX,				/* CREATE INDEX CONCURRENTLY */
	AM_GUARD_REINDEX,			/* REINDEX ... CONCURRENTLY */
	AM_GUARD_DROP,				/* DROP INDEX CONCURRENTLY */
	AM_GUARD_DETACH				/* ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY */
} AmGuardKind;

/* what a guarded statement works on, noted before it runs */
typedef struct AmGuard
{
	AmGuardKind kind;
	Oid			relid;			/* its table (DETACH: the parent) */
	Oid			target;			/* DROP: the index; DETACH: the partition */
	Oid			created;		/* INDEX: the index it created, once seen */
	char	   *idxname;		/* INDEX: the name given, or NULL */
	char		scope;			/* REINDEX: 't' table, 'n' schema, 'd' database */
	Oid			nspid;			/* REINDEX SCHEMA */
	List	   *before;			/* INDEX: the table's indexes; REINDEX: the
								 * leftovers in scope, both before it ran */
	char	   *drop_first;		/* INDEX IF NOT EXISTS: an INVALID index of
								 * that name, to drop before */
	Oid			drop_first_oid;
} AmGuard;

/* one statement that finishes or undoes what a guarded statement left */
typedef struct AmGuardAction
{
	char	   *sql;			/* run as the migration's owner */
	char	   *label;			/* for the log */
	Oid			check_oid;		/* a drop: the only index it may drop */
} AmGuardAction;

extern void am_guard_init(void);
extern bool am_guard_is_concurrent(Node *stmt);
extern AmGuard *am_guard_prepare(Node *stmt);
extern char *am_guard_to_json(AmGuard *g);
extern void am_guard_watch(AmGuard *g);
extern void am_guard_expect_drop(Oid indexoid);
extern List *am_guard_actions(const char *guard_json, bool *undoes);
extern void am_guard_verify(AmGuard *g);

#endif							/* ASYNCMIG_GUARD_H */
