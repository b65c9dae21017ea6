/*-------------------------------------------------------------------------
 *
 * registry_file.c
 *		The registry file (registry.c) on disk, under faults and in copies:
 *		storing it without touching the old one, making a file that could
 *		not be brought up to date untrusted, and finding out at postmaster
 *		start that the data directory is a copy whose file may be stale.
 *
 * The registry is an optimisation: a start-up that cannot trust the file
 * looks at every database once.  What must never happen is a start-up that
 * trusts a file which misses a database with queued work.  So a file that
 * cannot be replaced is removed or emptied instead, and a file copied with
 * a data directory that went through a base backup or a standby's recovery
 * is removed before the server starts.
 *
 * Why a copy is recognised this way: the registry is written (and synced)
 * before every commit that queues work in a database it does not list, so
 * a data directory that is consistent at one instant (a clean stop, a
 * crash, a crash-consistent snapshot of a running server) has a file that
 * lists every database with work in it, and is trusted: a restart, and a
 * restart after a crash, read only the file.  A data directory assembled
 * over time is not consistent with its file: a base backup copies the file
 * at some point while WAL goes on (PostgreSQL itself then needs
 * backup_label to recover), and a standby replays WAL for ever after its
 * copy of the file was made.  Both leave a trace that the postmaster can
 * read before recovery begins: backup_label, a recovery or standby signal
 * file, or a control file that says the server was a standby (or in
 * archive recovery) when it stopped.  A standby started as a primary
 * without promotion (standby.signal removed) keeps its timeline, but its
 * control file still says DB_SHUTDOWNED_IN_RECOVERY (or
 * DB_IN_ARCHIVE_RECOVERY after a crash).  Nothing of this costs more than
 * a stat() and one read of the control file per postmaster start.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include "access/xlog.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "miscadmin.h"
#include "storage/fd.h"

#include "registry_file.h"

/*
 * Set in the postmaster when the data directory is a copy and its file
 * could be neither removed nor emptied: no process of this postmaster
 * trusts it (children inherit it; a crash restart keeps it).
 */
bool		am_registry_file_distrusted = false;

/*
 * What a failed write tells the log: what the file is, what a failure
 * costs and what to do.
 */
#define AM_REGISTRY_FILE_DETAIL \
	errdetail("asyncmig records in \"%s\" which databases have queued migrations; until it can be written, each start-up of the server looks at every database once.", AM_REGISTRY_FILE)
#define AM_REGISTRY_FILE_HINT \
	errhint("Make the directory \"%s\" and its files writable by the server's operating system user, or remove them: they are made again.", AM_REGISTRY_DIR)

/*
 * am_registry_file_store
 *		Replace the file with data, atomically and durably: a temporary
 *		file, fsync, rename() over the old one, fsync of the directory.
 *		Not durable_rename(): it opens the old file for writing first, so a
 *		file that cannot be written (mode 000) could never be replaced.
 *		Never throws: a failure is reported at elevel and returns false
 *		(the old file, if any, is then as it was, or already replaced).
 */
bool
am_registry_file_store(const char *data, int len, int elevel)
{
	char		tmppath[MAXPGPATH];
	int			fd;
	int			save_errno;

	if (MakePGDirectory(AM_REGISTRY_DIR) < 0 && errno != EEXIST)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", AM_REGISTRY_DIR),
				 AM_REGISTRY_FILE_DETAIL, AM_REGISTRY_FILE_HINT));
		return false;
	}
	snprintf(tmppath, sizeof(tmppath), "%s.tmp", AM_REGISTRY_FILE);
	fd = OpenTransientFile(tmppath, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmppath),
				 AM_REGISTRY_FILE_DETAIL, AM_REGISTRY_FILE_HINT));
		return false;
	}
	errno = 0;
	if (write(fd, data, len) != len || pg_fsync(fd) != 0)
	{
		save_errno = errno ? errno : ENOSPC;
		CloseTransientFile(fd);
		(void) unlink(tmppath);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmppath),
				 AM_REGISTRY_FILE_DETAIL, AM_REGISTRY_FILE_HINT));
		return false;
	}
	if (CloseTransientFile(fd) != 0 || rename(tmppath, AM_REGISTRY_FILE) != 0)
	{
		save_errno = errno;
		(void) unlink(tmppath);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not replace file \"%s\": %m", AM_REGISTRY_FILE),
				 AM_REGISTRY_FILE_DETAIL, AM_REGISTRY_FILE_HINT));
		return false;
	}
	/* the rename must survive a crash (fsync_fname_ext reports at elevel) */
	return fsync_fname_ext(AM_REGISTRY_DIR, true, false, elevel) == 0;
}

/*
 * am_registry_file_invalidate
 *		The file could not be brought up to date: make sure that no
 *		start-up trusts it.  Remove it; failing that (a directory that is
 *		not writable), empty it in place (an empty file is not a valid
 *		registry).  Returns true if no start-up will trust the file (gone,
 *		empty, or unreadable), false if it stays readable and unchanged.
 *		(A file that is unreadable now may be made readable again: the
 *		launcher keeps trying to write it, see am_registry_retry().)
 */
bool
am_registry_file_invalidate(int elevel)
{
	int			fd;
	struct stat st;
	bool		empty;

	if (unlink(AM_REGISTRY_FILE) == 0 || errno == ENOENT)
	{
		(void) fsync_fname_ext(AM_REGISTRY_DIR, true, true, elevel);
		return true;
	}
	fd = OpenTransientFile(AM_REGISTRY_FILE, O_WRONLY | O_TRUNC | PG_BINARY);
	if (fd >= 0)
	{
		bool		synced = pg_fsync(fd) == 0;

		CloseTransientFile(fd);
		if (synced)
			return true;
	}
	/* an unreadable file is not trusted either, nor an empty one */
	fd = OpenTransientFile(AM_REGISTRY_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return errno != ENOMEM && errno != EMFILE && errno != ENFILE;
	empty = fstat(fd, &st) == 0 && st.st_size == 0;
	CloseTransientFile(fd);
	return empty;
}

/*
 * am_registry_file_copied
 *		Why this data directory's registry may be stale (see the file
 *		header), or NULL.  Called in the postmaster before recovery begins,
 *		in the data directory.
 */
static const char *
am_registry_file_copied(void)
{
	struct stat st;
	ControlFileData *control;
	bool		crc_ok;
	const char *why = NULL;

	if (stat(BACKUP_LABEL_FILE, &st) == 0)
		return "The server starts from a base backup (\"" BACKUP_LABEL_FILE "\" is there)";
	if (stat(STANDBY_SIGNAL_FILE, &st) == 0 || stat(RECOVERY_SIGNAL_FILE, &st) == 0)
		return "The server starts in recovery (\"" STANDBY_SIGNAL_FILE "\" or \"" RECOVERY_SIGNAL_FILE "\" is there)";

	control = get_controlfile(".", &crc_ok);
	if (!crc_ok)
		why = "The control file could not be verified";
	else if (control->state == DB_SHUTDOWNED_IN_RECOVERY ||
			 control->state == DB_IN_ARCHIVE_RECOVERY)
		why = "The server was a standby, or in archive recovery, when it last stopped";
	pfree(control);
	return why;
}

/*
 * am_registry_file_check_copy
 *		At postmaster start (_PG_init of a preloaded asyncmig), before
 *		recovery: if the data directory is a copy whose registry may be
 *		stale, remove the file (or empty it), so that the launcher looks at
 *		every database once and writes it anew.  A plain restart, or a
 *		restart after a crash, keeps it.
 */
void
am_registry_file_check_copy(void)
{
	struct stat st;
	const char *why;

	if (stat(AM_REGISTRY_FILE, &st) != 0 && errno == ENOENT)
		return;					/* nothing to distrust */
	why = am_registry_file_copied();
	if (why == NULL)
		return;
	ereport(LOG,
			(errmsg("asyncmig: not trusting \"%s\": this data directory may be a copy made while its server ran",
					AM_REGISTRY_FILE),
			 errdetail("%s; the launcher looks at every database once.", why)));
	if (!am_registry_file_invalidate(LOG))
		am_registry_file_distrusted = true;
}
