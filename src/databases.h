/*-------------------------------------------------------------------------
 *
 * databases.h
 *		The databases an asyncmig worker may connect to (src/databases.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_DATABASES_H
#define ASYNCMIG_DATABASES_H

#include "nodes/pg_list.h"

extern List *am_databases_read(Oid dboid, bool *found, char **name);
extern bool am_databases_servable(Oid dboid);

#endif							/* ASYNCMIG_DATABASES_H */
