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
	Oid			indexid;		/* a valid btree index led by the column */
	Oid			opcintype;		/* its operator class's input type */
	Oid			lt_opr;			/* its < and > */
	Oid			gt_opr;
	Oid			collation;		/* the index's collation if it differs */
} AmBatchKey;

extern void am_batch_check_key(Oid relid, const char *keyname,
							   AmBatchKey *key, bool at_schedule);
extern void am_batch_check_sql(const char *sql, Oid keytype, bool analyze);

#endif							/* ASYNCMIG_BATCH_CHECK_H */
