/*-------------------------------------------------------------------------
 *
 * vocabulary.h
 *		The words asyncmig stores and answers with, spelled once for the
 *		PostgreSQL extension (the .c files of src/) and the SQLite module
 *		(src/sqlite/).
 *
 * Plain C: no PostgreSQL or SQLite includes, so both builds can use it.
 * SQL text is built from these macros by string-literal concatenation,
 * e.g. "WHERE status = '" AM_STATUS_STARTED "'".  The Python package spells
 * the same words once, in python/asyncmig/vocabulary.py.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_VOCABULARY_H
#define ASYNCMIG_VOCABULARY_H

/* the five statuses, exactly as stored in asyncmig.migration.status */
#define AM_STATUS_SCHEDULED		"SCHEDULED"		/* waits for run() */
#define AM_STATUS_STARTED		"STARTED"		/* queued for a worker */
#define AM_STATUS_IN_PROGRESS	"IN PROGRESS"	/* a worker runs it now */
#define AM_STATUS_FINISHED		"FINISHED"		/* last run succeeded */
#define AM_STATUS_ERROR			"ERROR"			/* last run failed */

/* asyncmig.migration.direction */
#define AM_DIRECTION_FORWARDS	"forwards"
#define AM_DIRECTION_BACKWARDS	"backwards"

/* the channel of NOTIFY and the prefix of application_name */
#define AM_NOTIFY_CHANNEL		"asyncmig"

/*
 * SQLSTATEs written as text (meta->'error'->>'sqlstate', the SQLite module,
 * the Python package); the C extension itself uses ERRCODE_* macros.
 */
#define AM_SQLSTATE_QUERY_CANCELED			"57014"
#define AM_SQLSTATE_LOCK_NOT_AVAILABLE		"55P03"
#define AM_SQLSTATE_DEADLOCK_DETECTED		"40P01"
#define AM_SQLSTATE_SERIALIZATION_FAILURE	"40001"

/* longest migration name accepted, in bytes */
#define AM_MAX_NAME_LEN			1000

#endif							/* ASYNCMIG_VOCABULARY_H */
