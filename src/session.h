/*-------------------------------------------------------------------------
 *
 * session.h
 *		The session a migration runs in (src/session.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_SESSION_H
#define ASYNCMIG_SESSION_H

struct AmMigration;

/*
 * Settings a migration may have SET for its session that must not steer
 * asyncmig's own statements (bookkeeping, cleanup); see am_session_own_settings_push().
 */
typedef struct AmOwnSettings
{
	int			statement_timeout;
	int			lock_timeout;
	bool		read_only;
	int			isolation;
} AmOwnSettings;

extern void am_session_own_settings_push(AmOwnSettings *saved);
extern void am_session_own_settings_pop(AmOwnSettings *saved);
extern void am_session_become_owner(Oid owner);
extern void am_session_set(struct AmMigration *m);

#endif							/* ASYNCMIG_SESSION_H */
