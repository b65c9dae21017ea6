/*-------------------------------------------------------------------------
 *
 * obituary.c
 *		What the launcher knows of a worker that died inside a migration
 *		(terminated, or ended by an error in asyncmig's own bookkeeping):
 *		its pid and last error, kept in shared memory until the worker
 *		that sweeps the dead run has said it in the row.  After a server
 *		restart there is none, and the sweep says that the server stopped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "asyncmig.h"
#include "obituary.h"

typedef struct AmObituary
{
	Oid			dboid;
	int64		migration_id;
	pid_t		pid;
	char		message[AM_OBITUARY_LEN];
} AmObituary;

typedef struct AmObituaries
{
	LWLock	   *lock;
	int			n;
	AmObituary	list[AM_MAX_OBITUARIES];	/* oldest first */
} AmObituaries;

static AmObituaries *obituaries = NULL;

/*
 * am_obituary_shmem_request
 *		Reserve the shared memory and the lock (from shmem.c's request).
 */
void
am_obituary_shmem_request(void)
{
	RequestAddinShmemSpace(sizeof(AmObituaries));
	RequestNamedLWLockTranche("asyncmig obituaries", 1);
}

/*
 * am_obituary_shmem_startup
 *		Create or attach to the list (from shmem.c's startup, which holds
 *		AddinShmemInitLock).  After a crash-restart it is empty.
 */
void
am_obituary_shmem_startup(void)
{
	bool		found;

	obituaries = ShmemInitStruct("asyncmig obituaries", sizeof(AmObituaries),
								 &found);
	if (!found)
	{
		memset(obituaries, 0, sizeof(AmObituaries));
		obituaries->lock = &(GetNamedLWLockTranche("asyncmig obituaries"))->lock;
	}
}

/*
 * am_obituary_add
 *		The worker pid died inside migration_id of dboid: leave word (its
 *		last error, or "") for the worker that sweeps its run.  The oldest
 *		word gives way when the list is full.
 */
void
am_obituary_add(Oid dboid, int64 migration_id, pid_t pid, const char *message)
{
	AmObituary *ob;

	LWLockAcquire(obituaries->lock, LW_EXCLUSIVE);
	if (obituaries->n == AM_MAX_OBITUARIES)
	{
		memmove(&obituaries->list[0], &obituaries->list[1],
				sizeof(AmObituary) * (AM_MAX_OBITUARIES - 1));
		obituaries->n--;
	}
	ob = &obituaries->list[obituaries->n++];
	ob->dboid = dboid;
	ob->migration_id = migration_id;
	ob->pid = pid;
	strlcpy(ob->message, message, AM_OBITUARY_LEN);
	LWLockRelease(obituaries->lock);
}

/*
 * am_obituary_take
 *		The launcher's word on the dead run (migration_id in dboid, worker
 *		pid): false if it has none (shared memory was rebuilt since), else
 *		true with the worker's last error (or "") in message, a buffer of
 *		AM_OBITUARY_LEN bytes.  With consume, the word is removed (once the
 *		row says it).
 */
bool
am_obituary_take(Oid dboid, int64 migration_id, pid_t pid, bool consume,
				 char *message)
{
	bool		found = false;
	int			i;

	LWLockAcquire(obituaries->lock, LW_EXCLUSIVE);
	for (i = 0; i < obituaries->n; i++)
	{
		AmObituary *ob = &obituaries->list[i];

		if (ob->dboid == dboid && ob->migration_id == migration_id &&
			ob->pid == pid)
		{
			found = true;
			strlcpy(message, ob->message, AM_OBITUARY_LEN);
			if (consume)
			{
				memmove(ob, ob + 1, sizeof(AmObituary) * (obituaries->n - i - 1));
				obituaries->n--;
			}
			break;
		}
	}
	LWLockRelease(obituaries->lock);
	return found;
}
