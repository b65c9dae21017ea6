/*-------------------------------------------------------------------------
 *
 * registry.c
 *		Which databases have work: the pending set in shared memory (whom
 *		the launcher must look at now) and the durable registry (whom it
 *		must look at after a restart).
 *
 * The launcher's work grows with the databases that have work, not with
 * the databases that exist: a cluster with a thousand tenant databases and
 * nothing queued costs nothing, at start-up or later.
 *
 * The pending set is a fixed-size shared hash (asyncmig.max_databases
 * entries) of databases that may have runnable work, each with the time
 * from which it may and the order in which it was asked for.  A request
 * that does not fit is not lost: it sets a flag that makes the launcher
 * look at every database once, at most asyncmig.max_workers at a time
 * (launcher.c), and that scan ends.
 *
 * The registry is the file pg_asyncmig/databases in the data directory: the
 * databases that have queued or running migrations (or an INVALID index
 * left to drop), and the system identifier and timeline for which that
 * list is complete.  A transaction that queued work registers its database
 * before it commits (am_registry_pre_commit(), from functions.c's commit
 * path), and writes the file (a
 * temporary file, fsync, rename, fsync of the directory) only when the
 * database was not registered yet, so a crash can never lose queued work
 * from the list.  A worker that finds its database without work takes it
 * out.  At start-up the launcher looks only at the databases the file
 * names.  The file is not WAL-logged: a standby's copy (from
 * pg_basebackup) is stale.  So after a promotion (a new timeline), in a
 * copy of the data directory (registry_file.c removes the file before the
 * server starts), or when the file is missing, unreadable or from another
 * cluster, the launcher looks at every database once instead, and then
 * writes the file anew.
 *
 * The registry is an optimisation, never a reason for work not to run: a
 * file that cannot be written is logged once (a WARNING with what to do)
 * and removed or emptied, so that the next start-up looks at every
 * database; the registered set in shared memory stays right meanwhile.  A
 * failure to write it never undoes a claim or stops the launcher.  Only a
 * file that can be neither replaced nor made untrusted (still readable)
 * makes schedule() refuse work in a database it does not list.
 *
 * Locks: registry->lock protects the pending set and the flags; it is
 * taken after shmem.c's lock (am_shmem_lock()) when both are needed.  registry->file_lock
 * protects the registered set and the file.  Neither is held while the
 * other is taken.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"

#include "compat.h"
#include "registry.h"
#include "registry_file.h"
#include "settings.h"

/* the header line of the file; the format's version is its last word */
#define AM_REGISTRY_MAGIC		"asyncmig registry 1"

/* the shared state of this file */
typedef struct AmRegistryShared
{
	LWLock	   *lock;			/* pending set, scan_requested, next_seq */
	LWLock	   *file_lock;		/* registered set, the file, below */
	uint64		next_seq;		/* order of requests */
	bool		scan_requested; /* a request did not fit: look at all */
	bool		loaded;			/* the launcher has read the file */
	bool		complete;		/* every database with work is registered */
	bool		overflowed;		/* the registered set did not fit once */
	bool		write_failing;	/* the last write failed (logged once) */
	TimeLineID	timeline;		/* the file is complete for this timeline */
} AmRegistryShared;

/* a database that may have runnable work from wake_at on */
typedef struct AmPendingEntry
{
	Oid			dboid;			/* hash key */
	TimestampTz wake_at;
	uint64		seq;
} AmPendingEntry;

/* a database that has work (or may have: it is being registered) */
typedef struct AmRegisteredEntry
{
	Oid			dboid;			/* hash key */
	int			inflight;		/* transactions registering it now */
	bool		pruning;		/* a worker is checking that it is idle */
} AmRegisteredEntry;

/*
 * What a refused schedule() tells the user: the file is stale and can be
 * neither replaced nor made untrusted, so a restart would forget the work.
 */
#define AM_REGISTRY_WRITE_DETAIL \
	errdetail("asyncmig records in \"%s\", in the data directory, which databases have queued migrations, so that they run after a restart; it can neither replace nor remove that file, which a restart would trust.", AM_REGISTRY_FILE)
#define AM_REGISTRY_WRITE_HINT \
	errhint("Make the directory \"%s\" and its files writable by the server's operating system user (or remove them: they are made again, and every database is looked at once).", AM_REGISTRY_DIR)

static AmRegistryShared *registry = NULL;
static HTAB *pending_hash = NULL;
static HTAB *registered_hash = NULL;

/* this backend's transaction queued work and counts in this database */
static Oid	inflight_dboid = InvalidOid;

static Size am_registry_shmem_size(void);
static bool am_registry_write(void);
static bool am_registry_add(Oid dboid, bool inflight);
static void am_registry_load_locked(void);

/*
 * am_registry_shmem_size
 *		The shared state and its two hashes.
 */
static Size
am_registry_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(AmRegistryShared));

	size = add_size(size, hash_estimate_size(am_settings_max_databases,
											 sizeof(AmPendingEntry)));
	size = add_size(size, hash_estimate_size(am_settings_max_databases,
											 sizeof(AmRegisteredEntry)));
	return size;
}

/*
 * am_registry_shmem_request
 *		Reserve the shared memory and the two locks (from the shmem request
 *		hook).
 */
void
am_registry_shmem_request(void)
{
	RequestAddinShmemSpace(am_registry_shmem_size());
	RequestNamedLWLockTranche("asyncmig registry", 2);
}

/*
 * am_registry_shmem_startup
 *		Create or attach to the shared state (from the shmem startup hook,
 *		caller holds AddinShmemInitLock).  After a crash-restart it is
 *		created anew and the launcher reads the file again.
 */
void
am_registry_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	registry = ShmemInitStruct("asyncmig registry", sizeof(AmRegistryShared),
							   &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("asyncmig registry");

		memset(registry, 0, sizeof(AmRegistryShared));
		registry->lock = &locks[0].lock;
		registry->file_lock = &locks[1].lock;
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(Oid);
	info.entrysize = sizeof(AmPendingEntry);
	pending_hash = ShmemInitHash("asyncmig pending databases",
								 am_settings_max_databases,
								 am_settings_max_databases,
								 &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	info.entrysize = sizeof(AmRegisteredEntry);
	registered_hash = ShmemInitHash("asyncmig registered databases",
									am_settings_max_databases,
									am_settings_max_databases,
									&info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

/*
 * am_registry_request
 *		Database dboid may have runnable work from wake_at on (an earlier
 *		time wins).  A request that does not fit asks for a scan of every
 *		database instead: it is never lost.  Callers may hold
 *		shmem.c's lock; they wake the launcher themselves.
 */
void
am_registry_request(Oid dboid, TimestampTz wake_at)
{
	AmPendingEntry *e;
	bool		found;

	if (registry == NULL)
		return;
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	e = hash_search(pending_hash, &dboid, HASH_ENTER_NULL, &found);
	if (e == NULL)
		registry->scan_requested = true;
	else if (!found)
	{
		e->wake_at = wake_at;
		e->seq = registry->next_seq++;
	}
	else if (wake_at < e->wake_at)
		e->wake_at = wake_at;
	LWLockRelease(registry->lock);
}

/*
 * am_registry_take
 *		Remove and return (in *dboid) the database asked for first among
 *		those that are due and that busy() says have no worker.  *next is
 *		set to the earliest wake-up time still in the future, if earlier
 *		than what it holds (0: none).  With dboid NULL, only say whether
 *		there is one (the launcher asks so before it starts a worker
 *		early, see launcher.c).  Called by the launcher with shmem.c's lock
 *		held (busy() reads the worker slots).
 */
bool
am_registry_take(TimestampTz now, bool (*busy) (Oid dboid), Oid *dboid,
				 TimestampTz *next)
{
	HASH_SEQ_STATUS status;
	AmPendingEntry *e;
	AmPendingEntry *best = NULL;
	Oid			key;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	hash_seq_init(&status, pending_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->wake_at > now)
		{
			if (*next == 0 || e->wake_at < *next)
				*next = e->wake_at;
			continue;
		}
		if (busy(e->dboid))
			continue;			/* its worker's exit brings it back */
		if (best == NULL || e->seq < best->seq)
			best = e;
	}
	if (best != NULL && dboid != NULL)
	{
		key = best->dboid;
		*dboid = key;
		hash_search(pending_hash, &key, HASH_REMOVE, NULL);
	}
	LWLockRelease(registry->lock);
	return best != NULL;
}

/*
 * am_registry_scan_requested
 *		Did a request not fit since the last call?  Clears the flag.
 */
bool
am_registry_scan_requested(void)
{
	bool		result;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	result = registry->scan_requested;
	registry->scan_requested = false;
	LWLockRelease(registry->lock);
	return result;
}

/*
 * am_registry_pre_commit
 *		Before a transaction that queued work in this database commits
 *		(from functions.c's commit path): register the database and count
 *		the transaction in its inflight, so that no worker takes the
 *		database out meanwhile.  An error here (a file that could be
 *		neither written nor made untrusted) aborts the transaction: better
 *		no migration than one a restart would forget.
 */
void
am_registry_pre_commit(void)
{
	if (registry != NULL && OidIsValid(MyDatabaseId) &&
		am_registry_add(MyDatabaseId, true))
		inflight_dboid = MyDatabaseId;
}

/*
 * am_registry_end_xact
 *		After commit, abort or PREPARE: the transaction no longer counts in
 *		the inflight of its database.
 */
void
am_registry_end_xact(void)
{
	AmRegisteredEntry *e;

	if (!OidIsValid(inflight_dboid))
		return;
	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	e = hash_search(registered_hash, &inflight_dboid, HASH_FIND, NULL);
	if (e != NULL && e->inflight > 0)
		e->inflight--;
	LWLockRelease(registry->file_lock);
	inflight_dboid = InvalidOid;
}

/*
 * am_registry_add
 *		Register dboid (and with inflight, count this transaction in it),
 *		writing the file if it was not registered.  Returns false if the
 *		registered set is full: the file then says it is incomplete, and
 *		the next start-up looks at every database.  A file that cannot be
 *		written does not undo the registration (shared memory is right, and
 *		the next start-up looks at every database); only a committing
 *		transaction (inflight) is refused, when the file stays trusted.
 */
static bool
am_registry_add(Oid dboid, bool inflight)
{
	AmRegisteredEntry *e;
	bool		found;

	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	am_registry_load_locked();	/* never overwrite a file not read yet */
	e = hash_search(registered_hash, &dboid, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		if (!registry->overflowed)
		{
			registry->overflowed = true;
			registry->complete = false;
			am_registry_write();
			ereport(LOG,
					(errmsg("asyncmig: more than asyncmig.max_databases (%d) databases have work",
							am_settings_max_databases),
					 errdetail("The next start-up looks at every database."),
					 errhint("Raise asyncmig.max_databases.")));
		}
		LWLockRelease(registry->file_lock);
		return false;
	}
	if (!found)
	{
		e->inflight = 0;
		e->pruning = false;
		if (!am_registry_write() && inflight)
		{
			LWLockRelease(registry->file_lock);
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("asyncmig could not record that this database has queued migrations"),
					 AM_REGISTRY_WRITE_DETAIL, AM_REGISTRY_WRITE_HINT));
		}
	}
	e->pruning = false;			/* work is coming: a pruning worker backs off */
	if (inflight)
		e->inflight++;
	LWLockRelease(registry->file_lock);
	return true;
}

/*
 * am_registry_write
 *		Write the registered set to the file (registry_file.c stores it
 *		atomically and durably).  The timeline line is 0 while the set is
 *		not complete (a scan of every database is under way or something
 *		did not fit): a start-up then scans again.  Returns false only if
 *		the write failed and the old file could not be made untrusted: a
 *		start-up would trust a stale list.  Never throws for a file error.
 *		Caller holds file_lock exclusively.
 */
static bool
am_registry_write(void)
{
	StringInfoData buf;
	HASH_SEQ_STATUS status;
	AmRegisteredEntry *e;
	bool		stored;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s\nsystem_identifier " UINT64_FORMAT "\ntimeline %u\n",
					 AM_REGISTRY_MAGIC, GetSystemIdentifier(),
					 registry->complete ? registry->timeline : 0);
	hash_seq_init(&status, registered_hash);
	while ((e = hash_seq_search(&status)) != NULL)
		appendStringInfo(&buf, "%u\n", e->dboid);
	appendStringInfoString(&buf, "end\n");

	/* the first failure is a WARNING, the ones after it are not repeated */
	stored = am_registry_file_store(buf.data, buf.len,
									registry->write_failing ? DEBUG1 : WARNING);
	pfree(buf.data);
	if (stored)
	{
		if (registry->write_failing)
			ereport(LOG,
					(errmsg("asyncmig: \"%s\" is written again", AM_REGISTRY_FILE)));
		registry->write_failing = false;
		return true;
	}
	registry->write_failing = true;
	return am_registry_file_invalidate(DEBUG1);
}

/*
 * am_registry_retry
 *		Called by the launcher at every turn: while the file cannot be
 *		written, try again (quietly), so that once the operator has fixed
 *		its mode the file is right again within AM_REGISTRY_RETRY_MS.  (A
 *		file that was left unreadable is not trusted, but one made readable
 *		again would be, and it may be stale.)  Returns whether it still
 *		fails: the launcher then wakes up again for the next try.
 */
bool
am_registry_retry(void)
{
	bool		failing;

	if (registry == NULL || !registry->write_failing)
		return false;			/* unlocked read: the next turn sees a change */
	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	if (registry->write_failing && registry->loaded)
		(void) am_registry_write();
	failing = registry->write_failing;
	LWLockRelease(registry->file_lock);
	return failing;
}

/*
 * am_registry_load
 *		Whether the registry is complete for this cluster and timeline;
 *		then *dboids lists the registered databases.  If not (the file is
 *		missing, unreadable, incomplete, from another cluster or from
 *		before a promotion), every database must be looked at once, and
 *		am_registry_scan_done() says when that is over.  The file is read
 *		once per shared-memory lifetime, by the first process that needs it
 *		(the launcher at its start, or a transaction that queues work
 *		earlier); a restarted launcher gets the answer from shared memory.
 */
bool
am_registry_load(List **dboids)
{
	bool		complete;

	*dboids = NIL;
	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	am_registry_load_locked();
	complete = registry->complete;
	LWLockRelease(registry->file_lock);
	if (complete)
		*dboids = am_registry_registered();
	return complete;
}

/*
 * am_registry_load_locked
 *		Read the file into the registered set, if nobody has since the
 *		shared state was created.  Caller holds file_lock exclusively and
 *		is not in recovery.
 */
static void
am_registry_load_locked(void)
{
	FILE	   *f;
	char		line[128];
	int			lineno = 0;
	bool		ended = false;
	bool		valid = true;
	uint64		sysid = 0;
	unsigned int tli = 0;
	List	   *oids = NIL;
	ListCell   *lc;

	if (registry->loaded)
		return;
	registry->loaded = true;
	registry->timeline = GetWALInsertionTimeLine();

	f = am_registry_file_distrusted ? NULL : AllocateFile(AM_REGISTRY_FILE, "r");
	if (f == NULL)
	{
		if (!am_registry_file_distrusted && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\": %m", AM_REGISTRY_FILE),
					 errdetail("asyncmig records in it which databases have queued migrations; without it, every database is looked at once."),
					 errhint("Make the directory \"%s\" and its files readable and writable by the server's operating system user, or remove them: they are made again.",
							 AM_REGISTRY_DIR)));
		valid = false;
	}
	while (valid && fgets(line, sizeof(line), f) != NULL)
	{
		unsigned int oid;
		char		extra;

		lineno++;
		if (ended)
			valid = false;		/* nothing may follow "end" */
		else if (lineno == 1)
			valid = strcmp(line, AM_REGISTRY_MAGIC "\n") == 0;
		else if (lineno == 2)
			valid = sscanf(line, "system_identifier " UINT64_FORMAT "%c", &sysid, &extra) == 2 &&
				extra == '\n';
		else if (lineno == 3)
			valid = sscanf(line, "timeline %u%c", &tli, &extra) == 2 && extra == '\n';
		else if (strcmp(line, "end\n") == 0)
			ended = true;
		else if (sscanf(line, "%u%c", &oid, &extra) == 2 && extra == '\n' &&
				 OidIsValid(oid))
			oids = lappend_oid(oids, oid);
		else
			valid = false;
	}
	if (f != NULL)
		FreeFile(f);

	if (valid && !ended)
		valid = false;			/* cut short */
	if (valid && sysid != GetSystemIdentifier())
		valid = false;			/* another cluster's */
	if (valid && (tli == 0 || tli != registry->timeline))
		valid = false;			/* incomplete, or from before a promotion */

	if (valid)
	{
		foreach(lc, oids)
		{
			Oid			oid = lfirst_oid(lc);
			AmRegisteredEntry *e = hash_search(registered_hash, &oid,
											   HASH_ENTER_NULL, NULL);

			if (e == NULL)
			{
				valid = false;	/* asyncmig.max_databases was lowered */
				break;
			}
			e->inflight = 0;
			e->pruning = false;
		}
	}
	if (valid)
		registry->complete = true;
	else
	{
		/* start from nothing: the scan registers what it finds */
		HASH_SEQ_STATUS status;
		AmRegisteredEntry *e;

		hash_seq_init(&status, registered_hash);
		while ((e = hash_seq_search(&status)) != NULL)
			hash_search(registered_hash, &e->dboid, HASH_REMOVE, NULL);
		registry->complete = false;
	}
	list_free(oids);

	if (!valid)
		ereport(LOG,
				(errmsg("asyncmig: \"%s\" is missing, incomplete or from another timeline: looking at every database once",
						AM_REGISTRY_FILE)));
}

/*
 * am_registry_registered
 *		The registered databases, in a list the caller owns.
 */
List *
am_registry_registered(void)
{
	HASH_SEQ_STATUS status;
	AmRegisteredEntry *e;
	List	   *result = NIL;

	LWLockAcquire(registry->file_lock, LW_SHARED);
	hash_seq_init(&status, registered_hash);
	while ((e = hash_seq_search(&status)) != NULL)
		result = lappend_oid(result, e->dboid);
	LWLockRelease(registry->file_lock);
	return result;
}

/*
 * am_registry_scan_done
 *		Every database has been looked at and every worker of that scan has
 *		exited: the registered set is complete (unless it overflowed), and
 *		the file says so for this timeline.
 */
void
am_registry_scan_done(void)
{
	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	am_registry_load_locked();
	if (!registry->complete && !registry->overflowed)
	{
		registry->complete = true;
		am_registry_write();
	}
	LWLockRelease(registry->file_lock);
}

/*
 * am_registry_ensure
 *		A worker found work in dboid: make sure it is registered.
 */
void
am_registry_ensure(Oid dboid)
{
	if (registry != NULL)
		(void) am_registry_add(dboid, false);
}

/*
 * am_registry_prune_begin
 *		A worker is about to check that its database has no work.  Returns
 *		false if it need not (not registered) or must not (a transaction
 *		that queued work there is committing).  Otherwise the entry is
 *		marked: a transaction that registers work before
 *		am_registry_prune_end() clears the mark and keeps it.  The check
 *		must use a snapshot taken after this call.
 */
bool
am_registry_prune_begin(Oid dboid)
{
	AmRegisteredEntry *e;
	bool		result = false;

	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	e = hash_search(registered_hash, &dboid, HASH_FIND, NULL);
	if (e != NULL && e->inflight == 0)
	{
		e->pruning = true;
		result = true;
	}
	LWLockRelease(registry->file_lock);
	return result;
}

/*
 * am_registry_prune_end
 *		The worker's check is done: without work (and no transaction
 *		registered work meanwhile) the database leaves the registry.
 */
void
am_registry_prune_end(Oid dboid, bool has_work)
{
	AmRegisteredEntry *e;

	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	e = hash_search(registered_hash, &dboid, HASH_FIND, NULL);
	if (e != NULL && e->pruning)
	{
		e->pruning = false;
		if (!has_work)
		{
			hash_search(registered_hash, &dboid, HASH_REMOVE, NULL);
			am_registry_write();
		}
	}
	LWLockRelease(registry->file_lock);
}

/*
 * am_registry_forget
 *		The database is gone (dropped): forget it everywhere.
 */
void
am_registry_forget(Oid dboid)
{
	bool		found;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	hash_search(pending_hash, &dboid, HASH_REMOVE, NULL);
	LWLockRelease(registry->lock);

	LWLockAcquire(registry->file_lock, LW_EXCLUSIVE);
	am_registry_load_locked();
	hash_search(registered_hash, &dboid, HASH_REMOVE, &found);
	if (found)
		am_registry_write();
	LWLockRelease(registry->file_lock);
}
