"""make_sql_migration: a drop-in for Label Studio's helper of the same name."""

import inspect
import logging
import re

from . import backend, conf
from .backend import (ERROR, FINISHED, IN_PROGRESS, PENDING, SCHEDULED, STARTED,
                      AsyncmigError, MigrationFailed, WorkerNotRunning)

logger = logging.getLogger("asyncmig")

_VENDOR_KWARG = re.compile(r"^sql_[a-z0-9]+_(forwards|backwards)$")


def _call_sql(sql, apps, schema_editor):
    """Call a callable SQL, with (apps, schema_editor) if it takes them."""
    try:
        sig = inspect.signature(sql)
    except (TypeError, ValueError):
        return sql()
    try:
        sig.bind(apps, schema_editor)
    except TypeError:
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
    if migration_name is None:
        raise TypeError(
            "make_sql_migration() requires migration_name=..., a stable unique name "
            "of the async migration; write migration_name=__name__ in the migration file")
    if not isinstance(migration_name, str) or not migration_name.strip():
        raise ValueError("make_sql_migration(): migration_name must be a non-empty string, "
                         "not %r (write migration_name=__name__)" % (migration_name,))
    for key in vendor_kwargs:
        if not _VENDOR_KWARG.match(key):
            raise TypeError("make_sql_migration() got an unexpected keyword argument %r" % key)
    if isinstance(dependencies, str):
        dependencies = (dependencies,)
    depends_on = tuple(dependencies or ())
    for dep in depends_on:
        if not isinstance(dep, str) or not dep:
            raise ValueError("make_sql_migration(): dependencies must be names of other "
                             "asyncmig migrations, not %r" % (dep,))
    timeout = backend.seconds_to_interval(job_timeout) if job_timeout is not None else None
    name = migration_name
    del queue_name  # there is no queue: one worker per database runs them in order

    def _connection_to_use(schema_editor):
        """schema_editor's connection, or None when this run does nothing:
        under sqlmigrate, on SQLite without apply_on_sqlite, on other vendors."""
        if getattr(schema_editor, "collect_sql", False):
            return None  # sqlmigrate: nothing to show, nothing to do
        connection = schema_editor.connection
        if connection.vendor == "sqlite" and not apply_on_sqlite:
            logger.info("asyncmig: %s skipped on SQLite (apply_on_sqlite=False)", name)
            return None
        if connection.vendor not in ("postgresql", "sqlite"):
            logger.warning("asyncmig: %s skipped: asyncmig supports PostgreSQL and SQLite, "
                           "not %s", name, connection.vendor)
            return None
        return connection

    def forwards(apps, schema_editor):
        connection = _connection_to_use(schema_editor)
        if connection is None:
            return
        vendor = connection.vendor
        fwd = resolve_sql(sql_forwards, apps, schema_editor, "sql_forwards of %s" % name)
        bwd = resolve_sql(sql_backwards, apps, schema_editor, "sql_backwards of %s" % name)
        if _is_blank(fwd):
            raise ValueError("asyncmig: the forwards SQL of %s is empty" % name)
        if _is_blank(bwd):
            bwd = None
        allow = conf.allow_scheduled_migrations()
        if vendor == "postgresql":
            _pg_forwards(connection, fwd, bwd, allow)
        else:
            _sqlite_forwards(connection, fwd, bwd, allow)

    def _pg_forwards(connection, fwd, bwd, allow):
        backend.pg_ensure_extension(connection)
        row = backend.pg_status(connection, name)
        if row is not None and row[1] == "backwards" and row[0] in PENDING:
            # a backwards run is still queued or running: stop it first
            status = backend.pg_cancel(connection, name)
            logger.info("asyncmig: %s backwards run canceled (%s)", name, status)
            if status in PENDING:
                backend.after_commit(
                    connection, lambda: _schedule_after_cancel(connection, fwd, bwd, allow))
                return
        _pg_schedule(connection, fwd, bwd, allow)

    def _schedule_after_cancel(connection, fwd, bwd, allow):
        try:
            backend.pg_wait(connection, name, 60)
        except MigrationFailed:
            pass  # the canceled run ended in ERROR, as expected
        _pg_schedule(connection, fwd, bwd, allow)

    def _pg_schedule(connection, fwd, bwd, allow):
        status, notices = backend.pg_schedule(
            connection, name, fwd, bwd, execute_immediately=execute_immediately,
            depends_on=depends_on, timeout=timeout, allow_scheduled=allow)
        no_worker = False
        for notice in notices:
            backend.surface_warning("asyncmig: %s: %s" % (name, notice))
            if backend.is_worker_warning(notice):
                no_worker = True
        logger.info("asyncmig: %s %s", name, status)
        if conf.wait_in_migrate() and status in PENDING:
            if no_worker:
                raise WorkerNotRunning(
                    "asyncmig: %s was queued but the server does not run asyncmig "
                    "workers, so waiting for it (ASYNCMIG_WAIT_IN_MIGRATE) would never "
                    "end: add asyncmig to shared_preload_libraries in postgresql.conf "
                    "and restart PostgreSQL" % name)
            backend.after_commit(connection, lambda: _wait(connection))

    def _wait(connection):
        try:
            backend.pg_wait(connection, name, conf.wait_timeout())
        except MigrationFailed as exc:
            raise MigrationFailed("asyncmig: migration %s failed: %s" % (name, exc),
                                  name=name, sqlstate=exc.sqlstate) from exc

    def _sqlite_forwards(connection, fwd, bwd, allow):
        status = backend.sqlite_schedule(connection, name, fwd, bwd,
                                         execute_immediately=execute_immediately,
                                         allow_scheduled=allow)
        logger.info("asyncmig: %s %s", name, status)
        _sqlite_check(connection, status, "forwards")

    def _sqlite_check(connection, status, direction):
        if status != ERROR:
            return
        error = backend.sqlite_error(connection, name)
        message = "asyncmig: migration %s (%s) ended in ERROR on SQLite: %s" % (name, direction, error)
        if conf.wait_in_migrate():
            raise MigrationFailed(message, name=name)
        backend.surface_warning(message)

    def backwards(apps, schema_editor):
        connection = _connection_to_use(schema_editor)
        if connection is None:
            return
        vendor = connection.vendor
        bwd = resolve_sql(sql_backwards, apps, schema_editor, "sql_backwards of %s" % name)
        has_backwards = not _is_blank(bwd)
        if vendor == "postgresql":
            _pg_backwards(connection, has_backwards)
        else:
            _sqlite_backwards(connection, has_backwards)

    def _pg_backwards(connection, has_backwards):
        if not backend.pg_extension_installed(connection):
            logger.warning("asyncmig: %s: no asyncmig extension in this database, "
                           "nothing to revert", name)
            return
        row = backend.pg_status(connection, name)
        if row is None:
            backend.surface_warning("asyncmig: %s was never scheduled in this database "
                                    "(faked migration?): nothing to revert" % name)
            return
        status, direction = row
        if direction == "backwards" and status in (STARTED, IN_PROGRESS, FINISHED):
            logger.info("asyncmig: %s already reverted (%s)", name, status)
            return
        if direction != "backwards" and status in (SCHEDULED, STARTED, IN_PROGRESS):
            status = backend.pg_cancel(connection, name)
            logger.info("asyncmig: %s forwards run canceled (%s)", name, status)
        if not has_backwards:
            logger.info("asyncmig: %s has no backwards SQL", name)
            return
        if status in PENDING:
            # The canceled run is still being interrupted by its worker: queue
            # the backwards run once it ended (after this transaction).
            backend.after_commit(connection, lambda: _run_backwards_after_cancel(connection))
            return
        _queue_backwards(connection)

    def _run_backwards_after_cancel(connection):
        try:
            backend.pg_wait(connection, name, 60)
        except MigrationFailed:
            pass  # the canceled run ended in ERROR, as expected
        _queue_backwards(connection)

    def _queue_backwards(connection):
        status = backend.pg_run(connection, name, backwards=True)
        logger.info("asyncmig: %s backwards %s", name, status)
        if conf.wait_in_migrate() and status in PENDING:
            backend.after_commit(connection, lambda: _wait(connection))

    def _sqlite_backwards(connection, has_backwards):
        backend.sqlite_load(connection)
        row = backend.sqlite_status(connection, name)
        if row is None:
            logger.info("asyncmig: %s was never recorded on SQLite: nothing to revert", name)
            return
        status, direction = row
        if direction == "backwards" and status == FINISHED:
            return
        if not has_backwards:
            return
        status = backend.sqlite_run(connection, name, backwards=True)
        logger.info("asyncmig: %s backwards %s", name, status)
        _sqlite_check(connection, status, "backwards")

    forwards.asyncmig_name = name
    backwards.asyncmig_name = name
    return forwards, backwards


__all__ = ["make_sql_migration", "resolve_sql", "AsyncmigError", "MigrationFailed",
           "WorkerNotRunning"]
