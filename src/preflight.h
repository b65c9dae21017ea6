/*-------------------------------------------------------------------------
 *
 * preflight.h
 *		Checks of the server and database before schedule(), run() and
 *		cancel() record anything, and warnings after they queued work
 *		(src/preflight.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_PREFLIGHT_H
#define ASYNCMIG_PREFLIGHT_H

extern void am_preflight_define_settings(void);
extern void am_preflight_check_writable(const char *action);
extern void am_preflight_check_database(const char *action);
extern void am_preflight_warn_queued(const char *name);

#endif							/* ASYNCMIG_PREFLIGHT_H */
