/*-------------------------------------------------------------------------
 *
 * settings.h
 *		The asyncmig.* settings (src/settings.c).  The variables keep the
 *		asyncmig_ prefix: they are what an operator sets, under that name.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ASYNCMIG_SETTINGS_H
#define ASYNCMIG_SETTINGS_H

extern bool asyncmig_allow_scheduled;
extern int	asyncmig_max_workers;
extern int	asyncmig_max_attempts;
extern int	asyncmig_lock_timeout;
extern int	asyncmig_statement_timeout;
extern bool asyncmig_enabled;
extern int	asyncmig_max_databases;
extern int	asyncmig_max_replica_lag;
extern int	asyncmig_dependency_timeout;

extern void am_settings_define(void);
extern int	am_settings_worker_processes_needed(void);
extern bool am_settings_check_worker_processes(int elevel);

#endif							/* ASYNCMIG_SETTINGS_H */
