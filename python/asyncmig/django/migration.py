"""make_sql_migration and make_batched_migration: the RunPython pairs that
record a migration in asyncmig.

A migration is an object (``SqlMigration``, ``BatchedMigration``) that knows
its name, its SQL and its options; its ``forwards`` and ``backwards`` methods
are what ``migrations.RunPython`` calls.  The database is reached through the
backend of the connection (``backends.backend_for``): the PostgreSQL
extension or the SQLite module.
"""

import datetime
import inspect
import logging
import re
import time

from .. import vocabulary as v
from . import conf
from .backends import backend_for, supported_vendors
from .exceptions import MigrationFailed, WorkerNotRunning
from .util import Output, after_commit, seconds_text, surface_warning, to_interval

logger = logging.getLogger("asyncmig")

_VENDOR_KWARG = re.compile(r"^sql_[a-z0-9]+_(forwards|backwards)$")
WAIT_SLICE = 2.0  # seconds: how often a wait looks at what blocks it


def _call_sql(sql, apps, schema_editor):
    """Call a callable SQL, with (apps, schema_editor) if it takes them."""
    try:
        inspect.signature(sql).bind(apps, schema_editor)
    except TypeError:
        return sql()
    except ValueError:  # no signature (a builtin)
        return sql()
    return sql(apps, schema_editor)


def resolve_sql(sql, apps=None, schema_editor=None, what="sql"):
    """A string, a sequence of statements (joined with ';\\n'), or a
    callable returning either -> one SQL text (None when there is none)."""
    if callable(sql):
        sql = _call_sql(sql, apps, schema_editor)
        if callable(sql):
            raise TypeError("%s: the callable returned a callable" % what)
    if sql is None:
        return None
    if isinstance(sql, bytes):
        sql = sql.decode("utf-8")
    if isinstance(sql, str):
        return sql
    try:
        parts = list(sql)
    except TypeError:
        raise TypeError("%s must be a string, a sequence of strings or a callable "
                        "returning one, not %r" % (what, type(sql).__name__)) from None
    statements = []
    for part in parts:
        if not isinstance(part, str):
            raise TypeError("%s: every statement must be a string, not %r" % (what, part))
        part = part.strip().rstrip(";").rstrip()
        if part:
            statements.append(part)
    return ";\n".join(statements)


def _is_blank(sql):
    return sql is None or not sql.strip().strip(";").strip()


def check_name(migration_name, caller):
    """Refuse a missing or blank migration_name with ValueError (as Label
    Studio's helper does)."""
    if not migration_name or not isinstance(migration_name, str) or not migration_name.strip():
        raise ValueError(
            "%s requires explicit migration_name=..., a stable unique name of the "
            "async migration (write migration_name=__name__ in the migration file), "
            "not %r" % (caller, migration_name))


def _dependencies(dependencies):
    if isinstance(dependencies, str):
        dependencies = (dependencies,)
    names = tuple(dependencies or ())
    for dep in names:
        if not isinstance(dep, str) or not dep:
            raise ValueError("dependencies must be names of other asyncmig migrations, "
                             "not %r" % (dep,))
    return names


class SqlMigration:
    """One asyncmig migration of a Django migration file: SQL to run
    forwards and backwards, and how (see make_sql_migration)."""

    caller = "make_sql_migration()"
    start_delay = None  # seconds before a queued run may start (None: the setting)
    follow_graph_default = True  # ASYNCMIG_FOLLOW_MIGRATION_GRAPH when it is not set
    out = Output()  # where to say what happened (forwards/backwards: the command's output)

    def __init__(self, name, sql_forwards, sql_backwards=None, *, apply_on_sqlite=False,
                 execute_immediately=False, job_timeout=None, dependencies=()):
        check_name(name, self.caller)
        self.name = name
        self.sql_forwards = sql_forwards
        self.sql_backwards = sql_backwards
        self.apply_on_sqlite = apply_on_sqlite
        self.execute_immediately = execute_immediately
        self.timeout = to_interval(job_timeout, "job_timeout")
        self.depends_on = _dependencies(dependencies)

    # -- what RunPython calls
    def pair(self):
        """(forwards, backwards) functions for migrations.RunPython."""
        def forwards(apps, schema_editor):
            """RunPython's code: SqlMigration.forwards."""
            self.forwards(apps, schema_editor)

        def backwards(apps, schema_editor):
            """RunPython's reverse_code: SqlMigration.backwards."""
            self.backwards(apps, schema_editor)

        forwards.asyncmig_name = backwards.asyncmig_name = self.name
        forwards.asyncmig_migration = backwards.asyncmig_migration = self
        return forwards, backwards

    def _backend(self, schema_editor):
        """The backend to use, or None when this run does nothing: under
        sqlmigrate, on SQLite without apply_on_sqlite, on other vendors."""
        if getattr(schema_editor, "collect_sql", False):
            return None  # sqlmigrate: nothing to show, nothing to do
        backend = backend_for(schema_editor.connection)
        if backend is None:
            logger.warning("asyncmig: %s skipped: asyncmig supports %s, not %s", self.name,
                           supported_vendors(), schema_editor.connection.vendor)
        elif backend.vendor == "sqlite" and not self.apply_on_sqlite:
            logger.info("asyncmig: %s skipped on SQLite (apply_on_sqlite=False)", self.name)
            return None
        return backend

    def _sql(self, sql, apps, schema_editor, what):
        text = resolve_sql(sql, apps, schema_editor, "%s of %s" % (what, self.name))
        return None if _is_blank(text) else text

    def synchronous(self):
        """True when migrate must run this migration to its end: Label
        Studio's CI setting, execute_immediately, ASYNCMIG_WAIT_IN_MIGRATE."""
        return self.execute_immediately or conf.ci() or conf.wait_in_migrate()

    def forwards(self, apps, schema_editor):
        """Record the migration and queue it (run it, on SQLite)."""
        self.out = Output.of_command()
        backend = self._backend(schema_editor)
        if backend is None:
            return
        fwd = self._sql(self.sql_forwards, apps, schema_editor, "sql_forwards")
        bwd = self._sql(self.sql_backwards, apps, schema_editor, "sql_backwards")
        if fwd is None:
            raise ValueError("asyncmig: the forwards SQL of %s is empty" % self.name)
        backend.prepare()
        row = backend.status(self.name)
        if row is not None and row[1] == v.BACKWARDS and row[0] in v.PENDING:
            # a backwards run is still queued or running: stop it first
            status = backend.cancel(self.name)
            logger.info("asyncmig: %s backwards run canceled (%s)", self.name, status)
            if status in v.PENDING:
                after_commit(backend.connection,
                             lambda: self._after_cancel(backend, lambda: self._queue(backend, fwd, bwd)))
                return
        self._queue(backend, fwd, bwd)

    def _after_cancel(self, backend, then):
        try:
            backend.wait(self.name, 60)
        except MigrationFailed:
            # the canceled run ended in ERROR, as expected; anything else
            # (a timeout, a missing grant) is not swallowed
            row = backend.status(self.name)
            if row is None or row[0] != v.ERROR:
                raise
        then()

    def _schedule(self, backend, fwd, bwd, allow_scheduled, execute_immediately, not_before,
                  depends_on=None):
        return backend.schedule(self.name, fwd, bwd, execute_immediately=execute_immediately,
                                depends_on=self.depends_on if depends_on is None else depends_on,
                                timeout=self.timeout, not_before=not_before,
                                allow_scheduled=allow_scheduled)

    def follow_graph(self):
        """ASYNCMIG_FOLLOW_MIGRATION_GRAPH (default: follow_graph_default)."""
        return conf.follow_migration_graph(self.follow_graph_default)

    def _graph_dependencies(self, backend):
        """The async migrations of this database that this one's Django
        migration depends on (through Django's migration graph) and that
        are queued, running or in ERROR: they are added to depends_on."""
        if backend.synchronous or not self.follow_graph():
            return []
        ancestors = [n for n in graph_ancestors(self.name) if n not in self.depends_on]
        if not ancestors:
            return []
        rows = {r["name"]: r for r in backend.status_rows(ancestors)}
        # queued, running or failed: wait for it.  FINISHED: nothing to
        # wait for; SCHEDULED (scheduled mode): the operator runs them, in
        # the order they choose; not recorded (--fake): nothing will run it
        return [n for n in ancestors if n in rows
                and rows[n]["status"] in v.PENDING + (v.ERROR,)]

    def _queue(self, backend, fwd, bwd):
        sync = self.synchronous()
        allow = conf.allow_scheduled_migrations()
        if conf.ci():
            allow = False  # Label Studio runs every migration in CI
        not_before = None
        delay = conf.start_delay() if self.start_delay is None else self.start_delay
        if not sync and delay > 0:
            not_before = (datetime.datetime.now(datetime.timezone.utc)
                          + datetime.timedelta(seconds=delay))
        if not backend.synchronous:
            self._check_dependencies_exist(backend, fatal=sync)
        graph = self._graph_dependencies(backend)
        status, warnings = self._schedule(backend, fwd, bwd, allow, self.execute_immediately,
                                          not_before, self.depends_on + tuple(graph))
        for warning in warnings:
            surface_warning("asyncmig: %s: %s" % (self.name, warning))
        self._say_queued(backend, status, v.FORWARDS, sync, graph)
        self._after_queue(backend, status, v.FORWARDS, sync, backend.worker_missing(warnings))

    def _say_queued(self, backend, status, direction, sync, graph=()):
        """Say on migrate's output what recording the migration did: queued
        (and whether migrate waits for it), SCHEDULED, or (SQLite) how the
        run ended."""
        what = "" if direction == v.FORWARDS else " backwards"
        after = ""
        if graph:
            after = " after %s (Django's migration graph)" % ", ".join(graph)
        if backend.synchronous:
            row = _row(backend, self.name)
            self.out("asyncmig: %s%s ran on SQLite: %s" % (self.name, what, describe(row)),
                     style="ERROR" if status == v.ERROR else None)
        elif status == v.SCHEDULED:
            self.out("asyncmig: %s recorded SCHEDULED: nothing runs it until it is run "
                     "(manage.py asyncmig_run %s, or the admin page)" % (self.name, self.name))
        elif status in v.PENDING and sync:
            self.out("asyncmig: %s%s queued (%s)%s; migrate waits for it once this migration "
                     "has committed" % (self.name, what, status, after))
        elif status in v.PENDING:
            self.out("asyncmig: %s%s queued (%s)%s: a background worker runs it once this "
                     "migration has committed; migrate does not wait for it (manage.py "
                     "asyncmig_wait %s)" % (self.name, what, status, after, self.name),
                     style="WARNING")
        else:
            self.out("asyncmig: %s%s %s" % (self.name, what, describe(_row(backend, self.name))))

    def _check_dependencies_exist(self, backend, fatal):
        """A dependency that is not recorded: an error when migrate runs
        this migration synchronously (it would wait forever), else a
        warning (it waits, queued, until the dependency is recorded)."""
        missing = [dep for dep in self.depends_on if backend.status(dep) is None]
        if not missing:
            return
        what = "%s depends on %s, which %s not recorded in this database" % (
            self.name, ", ".join(missing), "is" if len(missing) == 1 else "are")
        if not fatal:
            surface_warning("asyncmig: %s: it waits, queued, until it is" % what)
            return
        raise MigrationFailed(
            "asyncmig: %s, and migrate runs it synchronously (CI, execute_immediately or "
            "ASYNCMIG_WAIT_IN_MIGRATE): it would wait forever. Apply the migration that "
            "records %s first, or fix dependencies=." % (what, " and ".join(missing)),
            name=self.name)

    def _after_queue(self, backend, status, direction, sync, no_worker):
        """Check a synchronous run: on SQLite it is over, on PostgreSQL wait
        for it once the transaction committed."""
        if backend.synchronous:
            if status == v.ERROR:
                message = ("asyncmig: migration %s (%s) ended in ERROR on SQLite: %s"
                           % (self.name, direction, backend.error(self.name)))
                if sync:
                    raise MigrationFailed(message, name=self.name)
                surface_warning(message)
            return
        if not sync or status not in v.PENDING:
            return
        if no_worker:
            raise WorkerNotRunning(
                "asyncmig: %s was queued but the server does not run asyncmig "
                "workers, so waiting for it would never end: add asyncmig to "
                "shared_preload_libraries in postgresql.conf and restart PostgreSQL" % self.name)
        after_commit(backend.connection, lambda: wait_for(backend, self.name, report=self.out))

    def backwards(self, apps, schema_editor):
        """Queue the backwards SQL (canceling a pending forwards run first);
        a migration asyncmig has no row for is recorded, then reverted."""
        self.out = Output.of_command()
        backend = self._backend(schema_editor)
        if backend is None:
            return
        bwd = self._sql(self.sql_backwards, apps, schema_editor, "sql_backwards")
        if bwd is None:
            row = backend.status(self.name) if backend.installed() else None
            if row is not None and row[1] == v.FORWARDS and row[0] in (v.SCHEDULED,) + v.PENDING:
                logger.info("asyncmig: %s canceled (%s)", self.name, backend.cancel(self.name))
            logger.info("asyncmig: %s has no backwards SQL", self.name)
            return
        backend.prepare()
        row = backend.status(self.name)
        if row is None:
            # applied by Label Studio's own helper, or with --fake: record
            # it (without running it), then revert it like any other
            fwd = self._sql(self.sql_forwards, apps, schema_editor, "sql_forwards") or bwd
            self._schedule(backend, fwd, bwd, True, False, None)
            logger.info("asyncmig: %s was not recorded in this database: recorded, "
                        "now reverted", self.name)
            row = (v.SCHEDULED, v.FORWARDS)
        status, direction = row
        if direction == v.BACKWARDS and status in (v.STARTED, v.IN_PROGRESS, v.FINISHED):
            logger.info("asyncmig: %s already reverted (%s)", self.name, status)
            return
        if direction == v.FORWARDS and status in (v.STARTED, v.IN_PROGRESS):
            status = backend.cancel(self.name)
            logger.info("asyncmig: %s forwards run canceled (%s)", self.name, status)
        if status in v.PENDING:
            # the canceled run is still being interrupted by its worker:
            # queue the backwards run once it ended (after this transaction)
            after_commit(backend.connection,
                         lambda: self._after_cancel(backend, lambda: self._revert(backend)))
            return
        self._revert(backend)

    def _revert(self, backend):
        status = backend.run(self.name, backwards=True)
        sync = conf.ci() or conf.wait_in_migrate()
        self._say_queued(backend, status, v.BACKWARDS, sync)
        self._after_queue(backend, status, v.BACKWARDS, sync, False)


class BatchedMigration(SqlMigration):
    """A batched data migration (asyncmig.schedule_batches): batch_sql runs
    once per batch of keys of table, each batch in its own transaction."""

    caller = "make_batched_migration()"

    def __init__(self, name, table, batch_sql, backwards_sql=None, *, batch_size=None,
                 pause=None, key=None, **options):
        super().__init__(name, batch_sql, backwards_sql, **options)
        if not table or not isinstance(table, str):
            raise ValueError("%s: table must be the name of a table, not %r" % (self.caller, table))
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError("%s: batch_size must be a positive integer, not %r"
                             % (self.caller, batch_size))
        self.table = table
        self.batch_size = batch_size
        self.pause = to_interval(pause, "pause", allow_zero=True)
        self.key = key

    def _schedule(self, backend, fwd, bwd, allow_scheduled, execute_immediately, not_before,
                  depends_on=None):
        return backend.schedule_batches(
            self.name, self.table, fwd, bwd, batch_size=self.batch_size, pause=self.pause,
            key=self.key, execute_immediately=execute_immediately,
            depends_on=self.depends_on if depends_on is None else depends_on,
            not_before=not_before, timeout=self.timeout, allow_scheduled=allow_scheduled)


_LOADER = {}


def _disk_loader():
    """Django's migration graph of the migration files on disk (built once
    per process; no database needed)."""
    if "loader" not in _LOADER:
        from django.db.migrations.loader import MigrationLoader
        _LOADER["loader"] = MigrationLoader(None, ignore_no_migrations=True)
    return _LOADER["loader"]


def _asyncmig_names(migration):
    from django.db.migrations.operations.special import RunPython
    names = []
    for op in migration.operations:
        if isinstance(op, RunPython):
            name = getattr(op.code, "asyncmig_name", None)
            if name and name not in names:
                names.append(name)
    return names


def graph_ancestors(name):
    """The asyncmig names of the async migrations in the Django migrations
    that the one holding name depends on, directly or not (migrate's own
    order), nearest last; [] when no migration file holds name."""
    loader = _disk_loader()
    graph = loader.graph
    keys = [key for key in graph.nodes if name in _asyncmig_names(graph.nodes[key])]
    found = []
    for key in keys:
        for ancestor in graph.forwards_plan(key):
            if ancestor == key:
                continue
            for dep in _asyncmig_names(graph.nodes[ancestor]):
                if dep != name and dep not in found:
                    found.append(dep)
    return found


def _row(backend, name):
    rows = backend.status_rows([name])
    return rows[0] if rows else None


def describe(row):
    """One line about a status row: 'IN PROGRESS (forwards) for 12 s:
    building index: scanning table 42%'."""
    if row is None:
        return "not recorded (or not visible to this role)"
    text = "%s (%s)" % (row["status"], row["direction"])
    if row.get("duration") is not None:
        text += " %s %s" % ("in" if row["status"] in (v.FINISHED, v.ERROR) else "for",
                            seconds_text(row["duration"]))
    if row["status"] == v.ERROR and row.get("error"):
        text += ": " + str(row["error"]).splitlines()[0]
    elif row.get("progress"):
        text += ": " + str(row["progress"]).replace("\n", " ")
    return text


def wait_for(backend, name, timeout=None, report=None):
    """Wait until the migration ended (after the transaction that queued it
    committed) -> its status row; raise MigrationFailed when it ended in
    ERROR, on timeout (ASYNCMIG_WAIT_TIMEOUT), or when it stayed queued
    behind a missing or unfinished dependency for ASYNCMIG_DEPENDENCY_TIMEOUT
    (it is canceled, so its row ends ERROR).  report(text) is told where
    it is every ASYNCMIG_PROGRESS_INTERVAL seconds, what it waits for, and
    how it ended (default: the "asyncmig" logger).  Everything it reads
    goes through the status view and the functions of docs/grants.sql."""
    report = report or Output()
    timeout = conf.wait_timeout() if timeout is None else timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = conf.progress_interval()
    blocked_since, told, last_line = None, None, time.monotonic()
    while True:
        step = min(WAIT_SLICE, interval)
        if deadline is not None:
            step = min(step, deadline - time.monotonic())
        if step <= 0:
            raise MigrationFailed("asyncmig: timed out after %g s waiting for migration %s: %s"
                                  % (timeout, name, describe(_row(backend, name))), name=name,
                                  sqlstate=v.SQLSTATE_QUERY_CANCELED)
        try:
            ended = backend.poll(name, step)
        except MigrationFailed as exc:
            raise MigrationFailed("asyncmig: migration %s failed: %s" % (name, exc),
                                  name=name, sqlstate=exc.sqlstate) from exc
        row = _row(backend, name)
        if ended:
            report("asyncmig: %s %s" % (name, describe(row)))
            return row
        now = time.monotonic()
        blockers = backend.waiting_for(name, row)
        if not blockers:
            blocked_since = None
            if now - last_line >= interval:
                report("asyncmig: %s %s" % (name, describe(row)))
                last_line = now
            continue
        blocked_since = blocked_since or now
        what = ", ".join("%s (%s)" % (dep, status or "missing") for dep, status in blockers.items())
        if what != told or now - last_line >= interval:
            report("asyncmig: %s waits for %s" % (name, what))
            told, last_line = what, now
        if now - blocked_since >= conf.dependency_timeout():
            backend.cancel(name)
            raise MigrationFailed(
                "asyncmig: migration %s gave up after %g s waiting for its dependencies: %s; "
                "it was canceled (ERROR). Apply or run those first, then run %s again."
                % (name, conf.dependency_timeout(), what, name), name=name)


def make_sql_migration(sql_forwards, sql_backwards=None, *, migration_name=None,
                       apply_on_sqlite=False, execute_immediately=False,
                       queue_name=None, job_timeout=None, dependencies=(),
                       **vendor_kwargs):
    """Return ``(forwards, backwards)`` for ``migrations.RunPython``.

    forwards records the migration with ``asyncmig.schedule`` (PostgreSQL: a
    background worker runs it once the migration's transaction committed;
    SQLite: the asyncmig_sqlite module runs it now when ``apply_on_sqlite``).
    backwards queues the backwards SQL (canceling a forwards run that is
    still queued or running).  ``migration_name`` is required (use
    ``__name__``).  ``queue_name`` and vendor keywords such as
    ``sql_mysql_forwards`` are accepted for compatibility and ignored.
    """
    for key in vendor_kwargs:
        if not _VENDOR_KWARG.match(key):
            raise TypeError("make_sql_migration() got an unexpected keyword argument %r" % key)
    del queue_name  # there is no queue: one worker per database runs them in order
    return SqlMigration(migration_name, sql_forwards, sql_backwards,
                        apply_on_sqlite=apply_on_sqlite, execute_immediately=execute_immediately,
                        job_timeout=job_timeout, dependencies=dependencies).pair()


def make_batched_migration(table, batch_sql, backwards_sql=None, *, migration_name=None,
                           batch_size=None, pause=None, key=None, apply_on_sqlite=False,
                           execute_immediately=False, job_timeout=None, dependencies=()):
    """Return ``(forwards, backwards)`` for ``migrations.RunPython`` that
    record a batched data migration with ``asyncmig.schedule_batches``.

    ``batch_sql`` is one DML statement with the parameters ``$1`` and ``$2``, the first and last key of a batch (inclusive), e.g.
    ``UPDATE task SET is_labeled = (total_annotations > 0) WHERE id BETWEEN $1 AND $2``.
    ``key`` names the column the batches walk (default: the table's primary
    key), ``batch_size`` the keys per batch (default 10000), ``pause``
    (seconds or a timedelta) the sleep between batches.  ``backwards_sql``
    runs as one plain migration.  The other keywords are those of
    make_sql_migration; on SQLite the module runs the batches at once.
    """
    return BatchedMigration(migration_name, table, batch_sql, backwards_sql,
                            batch_size=batch_size, pause=pause, key=key,
                            apply_on_sqlite=apply_on_sqlite,
                            execute_immediately=execute_immediately, job_timeout=job_timeout,
                            dependencies=dependencies).pair()


__all__ = ["make_sql_migration", "make_batched_migration", "resolve_sql", "wait_for", "graph_ancestors",
           "SqlMigration", "BatchedMigration"]
