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

extern bool am_settings_allow_scheduled;
extern int	am_settings_max_workers;
extern int	am_settings_max_attempts;
extern int	am_settings_lock_timeout;
extern int	am_settings_statement_timeout;
extern bool am_settings_enabled;
extern int	am_settings_max_databases;
extern int	am_settings_max_replica_lag;
extern int	am_settings_dependency_timeout;
extern int	am_settings_batch_target_time;

extern void am_settings_define(void);
extern int	am_settings_worker_processes_needed(void);
extern bool am_settings_check_worker_processes(int elevel);

#endif							/* ASYNCMIG_SETTINGS_H */
