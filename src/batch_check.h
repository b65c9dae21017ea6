/*-------------------------------------------------------------------------
 *
 * batch_check.h
 *		What a batched migration needs, checked in the catalogs
 *		(src/batch_check.c): its key and its batch statement.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_BATCH_CHECK_H
#define ASYNCMIG_BATCH_CHECK_H

#include "access/attnum.h"

/* the key a batched migration walks, as resolved in the catalogs */
typedef struct AmBatchKey
{
	Oid			relid;
	AttrNumber	attnum;
	char	   *attname;
	Oid			typid;			/* the column's type: $1 and $2 have it */
	Oid			collation;		/* the column's collation (0: none) */
	Oid			opclass;		/* the type's default btree operator class */
	Oid			opcintype;		/* its input type */
	Oid			lt_opr;			/* its <, <= and > */
	Oid			le_opr;
	Oid			gt_opr;
	Oid			indexid;		/* a valid btree index led by the column,
								 * in that order */
} AmBatchKey;

extern void am_batch_check_key(Oid relid, const char *keyname,
							   AmBatchKey *key, bool at_schedule, Oid prefer);
extern bool am_batch_check_pinned(AmBatchKey *key, char **attname);
extern char *am_batch_check_describe_order(Oid typid, Oid collation, Oid opclass);
extern void am_batch_check_sql(const char *sql, const AmBatchKey *key,
							   bool analyze);

#endif							/* ASYNCMIG_BATCH_CHECK_H */
