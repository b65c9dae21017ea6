/*-------------------------------------------------------------------------
 *
 * databases.c
 *		The databases an asyncmig worker may connect to, read from
 *		pg_database by the launcher, which is connected to no database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "utils/snapmgr.h"

#include "asyncmig.h"
#include "databases.h"
#include "registry.h"

/*
 * am_databases_read
 *		The databases a worker may connect to (not a template, connections
 *		allowed, not half-dropped), as a list of OIDs in the caller's memory
 *		context: all of them, or only dboid if it is valid.  Then *found
 *		says whether dboid exists, and *name (unless NULL) is its name if a
 *		worker may not connect to it.
 *
 *		A heap scan of pg_database, not a syscache lookup: the launcher is
 *		connected to no database, and a syscache lookup goes through
 *		pg_database's OID index, whose relcache entry a database-less
 *		process cannot rebuild after a DROP DATABASE invalidated it
 *		(PostgreSQL 13 then fails with "cannot read pg_class without having
 *		selected a database" and the launcher dies).
 */
List *
am_databases_read(Oid dboid, bool *found, char **name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *result = NIL;
	MemoryContext caller = CurrentMemoryContext;

	if (found)
		*found = false;
	if (name)
		*name = NULL;
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext txcxt;

		if (OidIsValid(dboid) && db->oid != dboid)
			continue;
		if (found)
			*found = true;
		txcxt = MemoryContextSwitchTo(caller);
		if (!db->datistemplate && db->datallowconn &&
			!database_is_invalid_form(db))
			result = lappend_oid(result, db->oid);
		else if (OidIsValid(dboid) && name)
			*name = pstrdup(NameStr(db->datname));
		MemoryContextSwitchTo(txcxt);
		if (OidIsValid(dboid))
			break;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return result;
}

/*
 * am_databases_servable
 *		May a worker connect to dboid?  A dropped database is forgotten; a
 *		template (a worker there would make CREATE DATABASE fail) or one
 *		that refuses connections is not served, and stays registered for
 *		the next start-up.
 */
bool
am_databases_servable(Oid dboid)
{
	bool		exists;
	char	   *name;
	List	   *dboids = am_databases_read(dboid, &exists, &name);
	bool		servable = dboids != NIL;

	if (!exists)
		am_registry_forget(dboid);
	else if (!servable)
		ereport(LOG,
				(errmsg("asyncmig: not starting a worker in database \"%s\": it is a template or does not allow connections",
						name)));
	list_free(dboids);
	return servable;
}
