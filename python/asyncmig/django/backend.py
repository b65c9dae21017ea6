"""Calls into the database: the asyncmig extension on PostgreSQL, the
asyncmig_sqlite module on SQLite.  Every function takes a Django connection
(``django.db.connections[alias]``)."""

import datetime
import logging
import os
import shutil
import subprocess
import sys

from django.core.management.base import CommandError
from django.db import transaction
from django.db.utils import DatabaseError

from . import conf

logger = logging.getLogger("asyncmig")

SCHEDULED = "SCHEDULED"
STARTED = "STARTED"
IN_PROGRESS = "IN PROGRESS"
FINISHED = "FINISHED"
ERROR = "ERROR"
STATUSES = (SCHEDULED, STARTED, IN_PROGRESS, FINISHED, ERROR)
PENDING = (STARTED, IN_PROGRESS)  # queued or running

STATUS_COLUMNS = (
    "name", "status", "direction", "owner", "attempts", "started_at",
    "finished_at", "duration", "progress", "error",
)


class AsyncmigError(CommandError):
    """Base class of the errors of the asyncmig Django package.

    A CommandError, so that manage.py (migrate, test, ...) prints the message
    alone, without a traceback that buries it, and exits with status 1."""


class ExtensionMissing(AsyncmigError):
    """The PostgreSQL database has no asyncmig extension."""


class WorkerNotRunning(AsyncmigError):
    """The server did not preload asyncmig: queued migrations never run."""


class SQLiteModuleNotFound(AsyncmigError):
    """asyncmig_sqlite.so could not be found or loaded."""


class MigrationFailed(AsyncmigError):
    """A migration ended in ERROR, a wait timed out, or a call was refused.

    ``sqlstate`` is the SQLSTATE that PostgreSQL reported (None on SQLite)."""

    def __init__(self, message, name=None, sqlstate=None):
        super().__init__(message)
        self.name = name
        self.sqlstate = sqlstate


class AsyncmigWarning(UserWarning):
    pass


def vendor_of(connection):
    return connection.vendor


# --------------------------------------------------------------------------
# helpers

def _pg_error(exc):
    """(message, sqlstate) of a Django/psycopg2 database error."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    sqlstate = getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)
    diag = getattr(cause, "diag", None)
    message = None
    if diag is not None and getattr(diag, "message_primary", None):
        message = diag.message_primary
        if getattr(diag, "message_detail", None):
            message += "\nDETAIL: " + diag.message_detail
        if getattr(diag, "message_hint", None):
            message += "\nHINT: " + diag.message_hint
    if not message:
        message = str(cause).strip()
    return message, sqlstate


def surface_warning(message):
    """Make a warning visible on the console of migrate (stderr), and in the
    log of the "asyncmig" logger when logging is configured for it."""
    if logger.hasHandlers():
        logger.warning(message)
    if not any(getattr(h, "stream", None) is sys.stderr for h in _handlers(logger)):
        sys.stderr.write("WARNING: %s\n" % message if not message.startswith("WARNING") else message + "\n")
        sys.stderr.flush()


def _handlers(log):
    while log is not None:
        for h in log.handlers:
            yield h
        if not log.propagate:
            break
        log = log.parent


def after_commit(connection, func):
    """Run func once the current transaction of ``connection`` committed
    (at once when there is none); nothing when it rolls back."""
    if connection.in_atomic_block:
        transaction.on_commit(func, using=connection.alias)
    else:
        func()


def seconds_to_interval(value):
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        td = value
    else:
        td = datetime.timedelta(seconds=float(value))
    if td.total_seconds() <= 0:
        raise ValueError("a timeout must be positive, not %r" % (value,))
    return td


# --------------------------------------------------------------------------
# PostgreSQL

GRANT_HINT = (
    "HINT: asyncmig grants nothing to PUBLIC. A superuser must grant the role %r: "
    "GRANT USAGE ON SCHEMA asyncmig TO role; GRANT SELECT ON asyncmig.status TO role; "
    "GRANT EXECUTE ON FUNCTION asyncmig.schedule(text, text, text, boolean, text[], "
    "timestamptz, interval), asyncmig.run(text, boolean), asyncmig.cancel(text) TO role; "
    "GRANT EXECUTE ON PROCEDURE asyncmig.wait(text, interval) TO role;")


def _dbname(connection):
    return connection.settings_dict.get("NAME") or "?"


def pg_extension_installed(connection):
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'asyncmig'")
        return cur.fetchone() is not None


def pg_ensure_extension(connection):
    """Create the extension when the database lacks it and
    ASYNCMIG_CREATE_EXTENSION allows it, else raise ExtensionMissing."""
    if pg_extension_installed(connection):
        return False
    db = _dbname(connection)
    what_to_run = (
        "Run, as a superuser, in database %r: CREATE EXTENSION asyncmig;  "
        "(for Django's test databases run it in template1 too, or let the "
        "migration create it by connecting as a superuser with "
        "ASYNCMIG_CREATE_EXTENSION = True)" % db
    )
    if not conf.create_extension():
        raise ExtensionMissing(
            "The PostgreSQL extension asyncmig is not installed in database %r "
            "and ASYNCMIG_CREATE_EXTENSION is False. %s" % (db, what_to_run))
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cur:
                cur.execute("CREATE EXTENSION IF NOT EXISTS asyncmig")
    except DatabaseError as exc:
        message, sqlstate = _pg_error(exc)
        if sqlstate == "58P01":  # undefined_file: no control file
            hint = ("The extension's files are not installed on the database "
                    "server: build and install them (make && make install in the "
                    "asyncmig source tree, as root), then %s" % what_to_run)
        elif sqlstate == "42501":  # insufficient_privilege
            hint = ("The role %r may not create it. %s"
                    % (connection.settings_dict.get("USER") or "?", what_to_run))
        else:
            hint = what_to_run
        raise ExtensionMissing(
            "The PostgreSQL extension asyncmig is not installed in database %r "
            "and CREATE EXTENSION asyncmig failed: %s\n%s" % (db, message, hint)) from exc
    logger.info("asyncmig: created extension asyncmig in database %r", db)
    return True


def _take_notices(connection):
    raw = connection.connection
    notices = list(getattr(raw, "notices", None) or [])
    if notices:
        del raw.notices[:]
    return [n.strip() for n in notices]


def _clear_notices(connection):
    raw = connection.connection
    if raw is not None and getattr(raw, "notices", None):
        del raw.notices[:]


def is_worker_warning(notice):
    text = notice.lower()
    return "preload" in text or "shared_preload_libraries" in text or "will not run" in text \
        or "nothing will run" in text


def pg_schedule(connection, name, forwards_sql, backwards_sql=None,
                execute_immediately=False, depends_on=None, timeout=None,
                allow_scheduled=None):
    """asyncmig.schedule(...) -> (status, [warnings]).

    ``allow_scheduled`` True/False sets asyncmig.allow_scheduled_migrations
    for this call only (transaction-local, restored afterwards); None leaves
    it as the session has it."""
    connection.ensure_connection()
    _clear_notices(connection)
    guc = "asyncmig.allow_scheduled_migrations"
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cur:
            prev = None
            if allow_scheduled is not None:
                cur.execute("SELECT pg_catalog.current_setting(%s, true)", [guc])
                prev = cur.fetchone()[0]
                cur.execute("SELECT pg_catalog.set_config(%s, %s, true)",
                            [guc, "on" if allow_scheduled else "off"])
            try:
                cur.execute(
                    "SELECT asyncmig.schedule(name => %s, forwards_sql => %s, "
                    "backwards_sql => %s, execute_immediately => %s, "
                    "depends_on => %s::text[], timeout => %s::interval)",
                    [name, forwards_sql, backwards_sql or None, bool(execute_immediately),
                     list(depends_on) if depends_on else None, seconds_to_interval(timeout)])
            except DatabaseError as exc:
                message, sqlstate = _pg_error(exc)
                if sqlstate == "42501":
                    message += "\n" + GRANT_HINT % (connection.settings_dict.get("USER") or "?")
                raise MigrationFailed(
                    "asyncmig.schedule(%r) failed: %s" % (name, message),
                    name=name, sqlstate=sqlstate) from exc
            status = cur.fetchone()[0]
            if allow_scheduled is not None:
                cur.execute("SELECT pg_catalog.set_config(%s, %s, true)",
                            [guc, prev if prev not in (None, "") else "off"])
    notices = [n for n in _take_notices(connection)
               if n.startswith("WARNING") or "asyncmig" in n.lower()]
    return status, notices


def pg_status(connection, name):
    """(status, direction) of a migration, or None."""
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT status, direction FROM asyncmig.status WHERE name = %s", [name])
            row = cur.fetchone()
    except DatabaseError as exc:
        message, sqlstate = _pg_error(exc)
        if sqlstate == "42501":
            message += "\n" + GRANT_HINT % (connection.settings_dict.get("USER") or "?")
        raise MigrationFailed("asyncmig: cannot read asyncmig.status: %s" % message,
                              name=name, sqlstate=sqlstate) from exc
    return tuple(row) if row else None


def _pg_call(connection, sql, params, name):
    try:
        with connection.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone() if cur.description else None
    except DatabaseError as exc:
        message, sqlstate = _pg_error(exc)
        if sqlstate == "42501":
            message += "\n" + GRANT_HINT % (connection.settings_dict.get("USER") or "?")
        raise MigrationFailed(message, name=name, sqlstate=sqlstate) from exc
    return row[0] if row else None


def pg_run(connection, name, backwards=False):
    return _pg_call(connection, "SELECT asyncmig.run(%s, backwards => %s)",
                    [name, bool(backwards)], name)


def pg_cancel(connection, name):
    return _pg_call(connection, "SELECT asyncmig.cancel(%s)", [name], name)


def pg_wait(connection, name=None, timeout=None):
    """CALL asyncmig.wait(name, timeout) on ``connection``, which must be in
    autocommit mode outside any transaction (the procedure commits while it
    waits).  Raises MigrationFailed when the migration (or, without a name,
    any pending one) ended in ERROR, or on timeout."""
    if connection.in_atomic_block or not connection.get_autocommit():
        raise AsyncmigError(
            "asyncmig: cannot wait inside a transaction: CALL asyncmig.wait must "
            "run in autocommit mode (wait after the transaction committed)")
    connection.ensure_connection()
    _clear_notices(connection)
    _pg_call(connection, "CALL asyncmig.wait(%s::text, %s::interval)",
             [name, seconds_to_interval(timeout)], name)
    return _take_notices(connection)


# --------------------------------------------------------------------------
# SQLite

def sqlite_module_path():
    path = conf.raw("ASYNCMIG_SQLITE_MODULE", None)
    if path:
        return str(path)
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        for candidate in sorted(
                (os.path.join("/usr/lib/postgresql", v, "bin", "pg_config")
                 for v in (os.listdir("/usr/lib/postgresql")
                           if os.path.isdir("/usr/lib/postgresql") else [])),
                reverse=True):
            if os.access(candidate, os.X_OK):
                pg_config = candidate
                break
    if pg_config is None:
        raise SQLiteModuleNotFound(
            "asyncmig: cannot find the SQLite module asyncmig_sqlite.so: pg_config "
            "is not on PATH. Set ASYNCMIG_SQLITE_MODULE (Django setting or "
            "environment variable) to its full path.")
    try:
        libdir = subprocess.run([pg_config, "--pkglibdir"], check=True,
                                stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SQLiteModuleNotFound(
            "asyncmig: cannot find the SQLite module: %s --pkglibdir failed (%s). "
            "Set ASYNCMIG_SQLITE_MODULE to the full path of asyncmig_sqlite.so." % (pg_config, exc))
    return os.path.join(libdir, "asyncmig_sqlite.so")


def _sqlite_module_loaded(raw):
    try:
        return raw.execute(
            "SELECT 1 FROM pragma_function_list WHERE name = 'asyncmig_schedule'").fetchone() is not None
    except Exception:
        return False


def sqlite_load(connection):
    """Load asyncmig_sqlite.so into Django's SQLite connection (once)."""
    connection.ensure_connection()
    raw = connection.connection
    if _sqlite_module_loaded(raw):
        return
    path = sqlite_module_path()
    what = ("Build and install it (make && make install in the asyncmig source "
            "tree installs asyncmig_sqlite.so into $(pg_config --pkglibdir)), or set "
            "ASYNCMIG_SQLITE_MODULE to its full path.")
    if not os.path.exists(path):
        raise SQLiteModuleNotFound(
            "asyncmig: the SQLite module %s does not exist. %s" % (path, what))
    if not hasattr(raw, "enable_load_extension"):
        raise SQLiteModuleNotFound(
            "asyncmig: this Python's sqlite3 cannot load extensions "
            "(built without SQLITE_ENABLE_LOAD_EXTENSION); use a Python that can "
            "(Debian's /usr/bin/python3 can).")
    raw.enable_load_extension(True)
    try:
        # explicit entry point: ASYNCMIG_SQLITE_MODULE may name a copy with
        # another file name (SQLite derives the entry point from the name)
        raw.execute("SELECT load_extension(?, 'sqlite3_asyncmigsqlite_init')", [path]).fetchall()
    except Exception as exc:
        raise SQLiteModuleNotFound(
            "asyncmig: cannot load the SQLite module %s: %s. %s" % (path, exc, what)) from exc
    finally:
        raw.enable_load_extension(False)


def sqlite_schedule(connection, name, forwards_sql, backwards_sql=None,
                    execute_immediately=False, allow_scheduled=None):
    sqlite_load(connection)
    with connection.cursor() as cur:
        prev = None
        if allow_scheduled is not None:
            cur.execute("SELECT asyncmig_allow_scheduled()")
            prev = cur.fetchone()[0]
            cur.execute("SELECT asyncmig_allow_scheduled(%s)", [1 if allow_scheduled else 0])
        try:
            cur.execute("SELECT asyncmig_schedule(%s, %s, %s, 1, %s)",
                        [name, forwards_sql, backwards_sql or None, 1 if execute_immediately else 0])
            status = cur.fetchone()[0]
        except DatabaseError as exc:
            raise MigrationFailed("asyncmig_schedule(%r) failed: %s" % (name, exc), name=name) from exc
        finally:
            if prev is not None:
                cur.execute("SELECT asyncmig_allow_scheduled(%s)", [prev])
    return status


def sqlite_status(connection, name):
    rows = status_rows(connection, [name])
    if not rows:
        return None
    return rows[0]["status"], rows[0]["direction"]


def sqlite_run(connection, name, backwards=False):
    sqlite_load(connection)
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT asyncmig_run(%s, %s)", [name, 1 if backwards else 0])
            return cur.fetchone()[0]
    except DatabaseError as exc:
        raise MigrationFailed(str(exc), name=name) from exc


def sqlite_error(connection, name):
    rows = status_rows(connection, [name])
    return rows[0]["error"] if rows else None


# --------------------------------------------------------------------------
# both

def status_rows(connection, names=None):
    """Rows of the status view as dicts (all migrations, or those named)."""
    if connection.vendor == "postgresql":
        table = "asyncmig.status"
        if not pg_extension_installed(connection):
            return []
    elif connection.vendor == "sqlite":
        table = "asyncmig_status"
        connection.ensure_connection()
        exists = connection.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'asyncmig_status'").fetchone()
        if not exists:
            sqlite_load(connection)
            exists = connection.connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'asyncmig_status'").fetchone()
            if not exists:
                return []
    else:
        raise AsyncmigError("asyncmig supports PostgreSQL and SQLite, not %s" % connection.vendor)
    sql = "SELECT %s FROM %s" % (", ".join(STATUS_COLUMNS), table)
    params = []
    if names:
        sql += " WHERE name IN (%s)" % ", ".join(["%s"] * len(names))
        params = list(names)
    sql += " ORDER BY started_at IS NULL, started_at, name"
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return [dict(zip(STATUS_COLUMNS, row)) for row in cur.fetchall()]


def run(connection, name, backwards=False):
    if connection.vendor == "postgresql":
        return pg_run(connection, name, backwards)
    if connection.vendor == "sqlite":
        return sqlite_run(connection, name, backwards)
    raise AsyncmigError("asyncmig supports PostgreSQL and SQLite, not %s" % connection.vendor)


def cancel(connection, name):
    if connection.vendor == "postgresql":
        return pg_cancel(connection, name)
    if connection.vendor == "sqlite":
        sqlite_load(connection)
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT asyncmig_cancel(%s)", [name])
                return cur.fetchone()[0]
        except DatabaseError as exc:
            raise MigrationFailed(str(exc), name=name) from exc
    raise AsyncmigError("asyncmig supports PostgreSQL and SQLite, not %s" % connection.vendor)
