/*-------------------------------------------------------------------------
 *
 * session.c
 *		The session a migration runs in, for the executor: whom it runs as,
 *		its settings, and asyncmig's own settings that its SETs must not
 *		reach.
 *
 * A file of its own (not executor.c) because the worker's bookkeeping
 * (catalog.c) needs asyncmig's own settings too, and executor.c calls the
 * bookkeeping: this way neither file depends on the other in a circle.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "utils/guc.h"

#include "asyncmig.h"
#include "catalog.h"
#include "compat.h"
#include "session.h"
#include "settings.h"

/*
 * am_session_own_settings_push
 *		Make asyncmig's own statements immune to what a migration SET for its
 *		session (default_transaction_read_only, a serializable default
 *		isolation, statement_timeout, lock_timeout), until
 *		am_session_own_settings_pop().  The variables are set directly, not through
 *		the GUC machinery, so the migration's settings are back unchanged
 *		for its next statement.
 */
void
am_session_own_settings_push(AmOwnSettings *saved)
{
	saved->statement_timeout = StatementTimeout;
	saved->lock_timeout = LockTimeout;
	saved->read_only = DefaultXactReadOnly;
	saved->isolation = DefaultXactIsoLevel;
	StatementTimeout = 0;
	LockTimeout = 0;
	DefaultXactReadOnly = false;
	DefaultXactIsoLevel = XACT_READ_COMMITTED;
}

/*
 * am_session_own_settings_pop
 *		Undo am_session_own_settings_push().
 */
void
am_session_own_settings_pop(AmOwnSettings *saved)
{
	StatementTimeout = saved->statement_timeout;
	LockTimeout = saved->lock_timeout;
	DefaultXactReadOnly = saved->read_only;
	DefaultXactIsoLevel = saved->isolation;
}

/*
 * am_session_become_owner
 *		Act as the migration's owner from now on, as a SECURITY DEFINER
 *		function acts as its owner: SECURITY_LOCAL_USERID_CHANGE forbids SET
 *		ROLE, RESET ROLE and SET SESSION AUTHORIZATION, so the migration
 *		cannot climb back to the superuser the worker connected as.  The
 *		worker shows in pg_stat_activity as that role, so the owner sees its
 *		query and progress.
 */
void
am_session_become_owner(Oid owner)
{
	SetUserIdAndSecContext(owner, SECURITY_LOCAL_USERID_CHANGE);

	if (MyBEEntry != NULL)
	{
		volatile PgBackendStatus *beentry = MyBEEntry;

		PGSTAT_BEGIN_WRITE_ACTIVITY(beentry);
		beentry->st_userid = owner;
		PGSTAT_END_WRITE_ACTIVITY(beentry);
	}
}

/*
 * am_session_set
 *		Session settings of a migration: the search_path captured when it
 *		was scheduled, asyncmig.statement_timeout over any role or database
 *		setting (a web-tuned statement_timeout must not kill a 3-hour
 *		build), an application_name that names it, and the parser settings
 *		the text was checked with in schedule() (standard_conforming_strings
 *		on, backslash_quote at its default), whatever the database or role
 *		say: the migration's text must split into the statements that were
 *		checked.  PGC_S_CLIENT ranks above database and role settings and
 *		below the migration's own SET (which comes after the text is parsed).
 */
void
am_session_set(AmMigration *m)
{
	char		buf[32];
	char		appname[NAMEDATALEN];

	StartTransactionCommand();
	(void) set_config_option("search_path", m->search_path,
							 PGC_USERSET, PGC_S_CLIENT,
							 GUC_ACTION_SET, true, 0, false);
	snprintf(buf, sizeof(buf), "%d", am_settings_statement_timeout);
	(void) set_config_option("statement_timeout", buf,
							 PGC_SUSET, PGC_S_CLIENT,
							 GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("standard_conforming_strings", "on",
							 PGC_USERSET, PGC_S_CLIENT,
							 GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("backslash_quote", "safe_encoding",
							 PGC_USERSET, PGC_S_CLIENT,
							 GUC_ACTION_SET, true, 0, false);
	snprintf(appname, sizeof(appname), AM_NOTIFY_CHANNEL ": %s", m->name);
	(void) set_config_option("application_name", appname,
							 PGC_USERSET, PGC_S_CLIENT,
							 GUC_ACTION_SET, true, 0, false);
	CommitTransactionCommand();
}
