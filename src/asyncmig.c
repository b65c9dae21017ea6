/*-------------------------------------------------------------------------
 *
 * asyncmig.c
 *		Module load: settings, shared memory, the SQL functions' callbacks,
 *		and the launcher's registration.
 *
 * asyncmig must be in shared_preload_libraries for anything to run: only
 * then can it reserve shared memory and register its launcher.  Loaded
 * later (by a call of one of its functions), it still records migrations,
 * and schedule() warns that nothing will run them.
 *
 * This file only calls into the others: nothing depends on it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "asyncmig.h"
#include "functions.h"
#include "launcher.h"
#include "preflight.h"
#include "registry.h"
#include "registry_file.h"
#include "settings.h"
#include "shmem.h"

PG_MODULE_MAGIC;

/*
 * _PG_init
 *		Define the settings; when preloaded, reserve shared memory,
 *		register the launcher and (in the postmaster) distrust the registry
 *		file of a copied data directory.
 */
void
_PG_init(void)
{
	am_preflight_define_settings();
	am_settings_define();
	am_functions_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	am_shmem_init();
	am_launcher_register();
	/* at postmaster start, before recovery: a copied registry is stale */
	if (!IsUnderPostmaster)
		am_registry_file_check_copy();
}
