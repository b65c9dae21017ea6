"""The interface every backend offers (see ``backend_for``)."""

from ...vocabulary import STATUS_COLUMNS


class Backend:
    """What the package asks of a database.  One object per connection.

    ``synchronous``: the backend runs a migration inside the call that
    queues it (SQLite), so there is never anything to wait for."""

    vendor = None
    synchronous = False
    status_view = None

    def __init__(self, connection):
        self.connection = connection

    # -- set-up
    def prepare(self):
        """Make the database ready for schedule() (create the extension,
        load the module), or raise a clear AsyncmigError."""
        raise NotImplementedError

    def installed(self):
        """True when the database can answer status queries."""
        raise NotImplementedError

    def missing(self):
        """What an administrator must do before the commands can work here
        (None: nothing)."""
        return None

    # -- the calls
    def schedule(self, name, forwards_sql, backwards_sql=None, *, execute_immediately=False,
                 depends_on=None, timeout=None, not_before=None, allow_scheduled=None):
        """Record (and queue or run) a migration -> (status, [warnings])."""
        raise NotImplementedError

    def schedule_batches(self, name, table, batch_sql, backwards_sql=None, *, batch_size=None,
                         pause=None, key=None, execute_immediately=False, depends_on=None,
                         not_before=None, timeout=None, allow_scheduled=None):
        """Record (and queue or run) a batched migration -> (status, [warnings])."""
        raise NotImplementedError

    def run(self, name, backwards=False, restart=False):
        """Queue (or run) a recorded migration -> its status; restart: a
        batched migration starts again from its first key."""
        raise NotImplementedError

    def cancel(self, name):
        """Cancel a queued, scheduled or running migration -> its status."""
        raise NotImplementedError

    def wait(self, name=None, timeout=None):
        """Block until the migration (or every pending one) ended; raise
        MigrationFailed when it ended in ERROR or on timeout."""
        raise NotImplementedError

    def poll(self, name, timeout):
        """Wait at most timeout seconds for the migration to end -> True
        when it ended (not in ERROR), False when it is still queued or
        running; MigrationFailed when it ended in ERROR.  The one place
        where a wait polls (wait_for, the commands and the admin call it)."""
        self.wait(name, timeout)
        return True

    def waiting_for(self, name, row=None):
        """{dependency: its status or None when missing} of the
        dependencies a queued migration still waits for (row: its status
        row, when the caller has just read it)."""
        return {}

    def worker_missing(self, warnings):
        """True when warnings of schedule() say no worker will run it."""
        return False

    # -- reading
    def status_rows(self, names=None):
        """Rows of the status view as dicts (all migrations, or those named)."""
        if not self.installed():
            return []
        sql = "SELECT %s FROM %s" % (", ".join(STATUS_COLUMNS), self.status_view)
        params = []
        if names:
            sql += " WHERE name IN (%s)" % ", ".join(["%s"] * len(names))
            params = list(names)
        sql += " ORDER BY started_at IS NULL, started_at, name"
        with self.connection.cursor() as cur:
            cur.execute(sql, params)
            return [dict(zip(STATUS_COLUMNS, row)) for row in cur.fetchall()]

    def status(self, name):
        """(status, direction) of a migration, or None when it has no row."""
        rows = self.status_rows([name])
        return (rows[0]["status"], rows[0]["direction"]) if rows else None

    def error(self, name):
        """The error message of a migration (None without one)."""
        rows = self.status_rows([name])
        return rows[0]["error"] if rows else None
