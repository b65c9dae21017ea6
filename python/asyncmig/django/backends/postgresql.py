"""The PostgreSQL backend: calls into the asyncmig extension."""

import logging
import re
from contextlib import contextmanager

from django.db import transaction
from django.db.utils import DatabaseError

from ... import vocabulary as v
from .. import conf
from ..exceptions import AsyncmigError, ExtensionMissing, MigrationFailed
from ..util import to_interval
from .base import Backend

logger = logging.getLogger("asyncmig")

# what docs/grants.sql grants (the one recipe; keep the two the same)
GRANT_HINT = (
    "HINT: asyncmig grants nothing to PUBLIC. A superuser must run asyncmig's docs/grants.sql "
    "for the role %r in this database and in template1 for Django's test databases (psql -d DB -v app_role=ROLE -f docs/grants.sql), "
    "which grants: "
    "GRANT USAGE ON SCHEMA asyncmig TO role; GRANT SELECT ON asyncmig.status TO role; "
    "GRANT EXECUTE ON FUNCTION asyncmig.schedule(text, text, text, boolean, text[], "
    "timestamptz, interval), asyncmig.schedule_batches(text, regclass, text, text, integer, "
    "interval, name, boolean, text[], timestamptz, interval), asyncmig.run(text, boolean, "
    "boolean), asyncmig.cancel(text) TO role; "
    "GRANT EXECUTE ON PROCEDURE asyncmig.wait(text, interval), "
    "asyncmig.wait_for(text, interval, text) TO role;")

# the status view's progress of a queued run that waits for dependencies:
# 'waiting for dependency "a" (ERROR)', 'waiting for dependencies "a"
# (never scheduled; gives up at ...), "b" (IN PROGRESS)'
_WAITING_FOR = re.compile(r'waiting for dependenc(?:y|ies) (.*)$', re.S)
_DEPENDENCY = re.compile(r'"(.*?)" \(([^()]*)\)(?:, |$)', re.S)

ALLOW_SCHEDULED_GUC = "asyncmig.allow_scheduled_migrations"


def pg_error(exc):
    """(message, sqlstate) of a Django database error raised by psycopg2
    or psycopg 3."""
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
    return message or str(cause).strip(), sqlstate


class PostgresBackend(Backend):
    """asyncmig.schedule/run/cancel/wait on a PostgreSQL connection."""

    vendor = "postgresql"
    status_view = "asyncmig.status"

    def _user(self):
        return self.connection.settings_dict.get("USER") or "?"

    def _dbname(self):
        return self.connection.settings_dict.get("NAME") or "?"

    # -- set-up
    def installed(self):
        """True when the database has the asyncmig extension."""
        with self.connection.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'asyncmig'")
            return cur.fetchone() is not None

    def missing(self):
        """How to install the extension, when the database lacks it."""
        if self.installed():
            return None
        return ("The PostgreSQL extension asyncmig is not installed in database %r: run, as a "
                "superuser, CREATE EXTENSION asyncmig; (migrations made with make_sql_migration "
                "create it when ASYNCMIG_CREATE_EXTENSION allows)" % self._dbname())

    def prepare(self):
        """Create the extension when the database lacks it and
        ASYNCMIG_CREATE_EXTENSION allows it, else raise ExtensionMissing."""
        if self.installed():
            return
        db = self._dbname()
        what_to_run = (
            "Run, as a superuser, in database %r: CREATE EXTENSION asyncmig;  "
            "(for Django's test databases run it in template1 too, or let the "
            "migration create it by connecting as a superuser with "
            "ASYNCMIG_CREATE_EXTENSION = True)" % db)
        if not conf.create_extension():
            raise ExtensionMissing(
                "The PostgreSQL extension asyncmig is not installed in database %r "
                "and ASYNCMIG_CREATE_EXTENSION is False. %s" % (db, what_to_run))
        try:
            with transaction.atomic(using=self.connection.alias):
                with self.connection.cursor() as cur:
                    cur.execute("CREATE EXTENSION IF NOT EXISTS asyncmig")
        except DatabaseError as exc:
            message, sqlstate = pg_error(exc)
            if sqlstate == v.SQLSTATE_UNDEFINED_FILE:
                hint = ("The extension's files are not installed on the database "
                        "server: build and install them (make && make install in the "
                        "asyncmig source tree, as root), then %s" % what_to_run)
            elif sqlstate == v.SQLSTATE_INSUFFICIENT_PRIVILEGE:
                hint = "The role %r may not create it. %s" % (self._user(), what_to_run)
            else:
                hint = what_to_run
            raise ExtensionMissing(
                "The PostgreSQL extension asyncmig is not installed in database %r "
                "and CREATE EXTENSION asyncmig failed: %s\n%s" % (db, message, hint)) from exc
        logger.info("asyncmig: created extension asyncmig in database %r", db)

    # -- notices: psycopg2 keeps them on the connection, psycopg 3 hands them
    # to a handler, which collects them here
    def _notices(self, take=True):
        raw = self.connection.connection
        if hasattr(raw, "add_notice_handler"):
            if getattr(self, "_notice_raw", None) is not raw:
                buffer = self._notice_buffer = []
                self._notice_raw = raw
                # a Diagnostic is readable only inside the handler
                raw.add_notice_handler(
                    lambda d: buffer.append("%s:  %s" % (d.severity, d.message_primary)))
            notices = list(self._notice_buffer)
            if take:
                del self._notice_buffer[:]
        else:
            notices = list(getattr(raw, "notices", None) or [])
            if notices and take:
                del raw.notices[:]
        return [n.strip() for n in notices]

    def worker_missing(self, warnings):
        """True when a warning of schedule() says that no worker runs."""
        return any("shared_preload_libraries" in w or "nothing will run" in w.lower()
                   for w in warnings)

    def _call(self, sql, params, name, what):
        """Run one call; a database error becomes MigrationFailed with the
        server's message (and how to grant, for a privilege error)."""
        try:
            with self.connection.cursor() as cur:
                cur.execute(sql, params)
                row = cur.fetchone() if cur.description else None
        except DatabaseError as exc:
            message, sqlstate = pg_error(exc)
            if sqlstate == v.SQLSTATE_INSUFFICIENT_PRIVILEGE:
                message += "\n" + GRANT_HINT % self._user()
            raise MigrationFailed("%s failed: %s" % (what, message), name=name,
                                  sqlstate=sqlstate) from exc
        return row[0] if row else None

    @contextmanager
    def _scheduled_mode(self, allow_scheduled):
        """asyncmig.allow_scheduled_migrations for one call: True/False sets
        it for the enclosing transaction and restores it; None leaves it."""
        if allow_scheduled is None:
            yield
            return
        with self.connection.cursor() as cur:
            cur.execute("SELECT pg_catalog.current_setting(%s, true)", [ALLOW_SCHEDULED_GUC])
            previous = cur.fetchone()[0] or "off"
            cur.execute("SELECT pg_catalog.set_config(%s, %s, true)",
                        [ALLOW_SCHEDULED_GUC, "on" if allow_scheduled else "off"])
        yield
        with self.connection.cursor() as cur:
            cur.execute("SELECT pg_catalog.set_config(%s, %s, true)", [ALLOW_SCHEDULED_GUC, previous])

    def _schedule_call(self, name, sql, params, allow_scheduled, what):
        self.connection.ensure_connection()
        self._notices()
        with transaction.atomic(using=self.connection.alias):
            with self._scheduled_mode(allow_scheduled):
                status = self._call(sql, params, name, what)
        warnings = [n for n in self._notices()
                    if n.startswith("WARNING") or "asyncmig" in n.lower()]
        return status, warnings

    # -- the calls
    def schedule(self, name, forwards_sql, backwards_sql=None, *, execute_immediately=False,
                 depends_on=None, timeout=None, not_before=None, allow_scheduled=None):
        """asyncmig.schedule(...) -> (status, [warnings])."""
        return self._schedule_call(
            name,
            "SELECT asyncmig.schedule(name => %s, forwards_sql => %s, backwards_sql => %s, "
            "execute_immediately => %s, depends_on => %s::text[], "
            "not_before => %s::timestamptz, timeout => %s::interval)",
            [name, forwards_sql, backwards_sql or None, bool(execute_immediately),
             list(depends_on) if depends_on else None, not_before, to_interval(timeout)],
            allow_scheduled, "asyncmig.schedule(%r)" % name)

    def schedule_batches(self, name, table, batch_sql, backwards_sql=None, *, batch_size=None,
                         pause=None, key=None, execute_immediately=False, depends_on=None,
                         not_before=None, timeout=None, allow_scheduled=None):
        """asyncmig.schedule_batches(...) -> (status, [warnings]); the
        defaults of batch_size, pause and key are the extension's."""
        args = ["name => %s", "relation => %s::regclass", "batch_sql => %s",
                "backwards_sql => %s", "execute_immediately => %s",
                "depends_on => %s::text[]", "not_before => %s::timestamptz",
                "timeout => %s::interval"]
        params = [name, table, batch_sql, backwards_sql or None, bool(execute_immediately),
                  list(depends_on) if depends_on else None, not_before, to_interval(timeout)]
        for arg, value in (("batch_size => %s::integer", batch_size),
                           ("pause => %s::interval", to_interval(pause, "pause", allow_zero=True)),
                           ("key => %s::name", key)):
            if value is not None:
                args.append(arg)
                params.append(value)
        try:
            return self._schedule_call(
                name, "SELECT asyncmig.schedule_batches(%s)" % ", ".join(args), params,
                allow_scheduled, "asyncmig.schedule_batches(%r)" % name)
        except MigrationFailed as exc:
            if exc.sqlstate == v.SQLSTATE_UNDEFINED_FUNCTION and "schedule_batches" in str(exc):
                raise MigrationFailed(
                    "asyncmig.schedule_batches does not exist in database %r: it arrives "
                    "with asyncmig 1.1; run ALTER EXTENSION asyncmig UPDATE as a superuser"
                    % self._dbname(), name=name, sqlstate=exc.sqlstate) from exc
            raise

    def run(self, name, backwards=False, restart=False):
        """asyncmig.run(name, backwards, restart) -> status."""
        if restart:
            return self._call("SELECT asyncmig.run(%s, backwards => %s, restart => true)",
                              [name, bool(backwards)], name, "asyncmig.run(%r, restart)" % name)
        return self._call("SELECT asyncmig.run(%s, backwards => %s)", [name, bool(backwards)],
                          name, "asyncmig.run(%r)" % name)

    def cancel(self, name):
        """asyncmig.cancel(name) -> status."""
        return self._call("SELECT asyncmig.cancel(%s)", [name], name, "asyncmig.cancel(%r)" % name)

    def _check_autocommit(self):
        if self.connection.in_atomic_block or not self.connection.get_autocommit():
            raise AsyncmigError(
                "asyncmig: cannot wait inside a transaction: CALL asyncmig.wait must "
                "run in autocommit mode (wait after the transaction committed)")

    def wait_for(self, name, timeout=None):
        """CALL asyncmig.wait_for(name, timeout) -> the migration's status
        when it ended or the timeout came (STARTED or IN PROGRESS then).
        No error for a timeout or a failed migration: the way to poll
        without an ERROR line in the server log at every slice."""
        self._check_autocommit()
        self.connection.ensure_connection()
        return self._call("CALL asyncmig.wait_for(%s::text, %s::interval)",
                          [name, to_interval(timeout, allow_zero=True)], name,
                          "asyncmig.wait_for(%r)" % name)

    def wait(self, name=None, timeout=None):
        """Wait in autocommit mode outside any transaction (the procedures
        commit while they wait) -> notices.  A named wait polls with
        asyncmig.wait_for() and raises MigrationFailed (57014, "timed out")
        itself, so that waiting in slices logs no ERROR; then CALL
        asyncmig.wait(name, 0) raises the migration's own error if it
        failed.  Unnamed: CALL asyncmig.wait(NULL, timeout)."""
        self._check_autocommit()
        self.connection.ensure_connection()
        self._notices()
        if name is not None:
            status = self.wait_for(name, timeout)
            if status in (v.STARTED, v.IN_PROGRESS):
                raise MigrationFailed(
                    "asyncmig.wait(%r) failed: timed out waiting for asyncmig migration \"%s\""
                    % (name, name), name=name, sqlstate=v.SQLSTATE_QUERY_CANCELED)
            timeout = 0
        self._call("CALL asyncmig.wait(%s::text, %s::interval)",
                   [name, to_interval(timeout, allow_zero=name is not None)], name, "asyncmig.wait(%r)" % name if name else "asyncmig.wait()")
        return self._notices()

    def status_rows(self, names=None):
        """Rows of asyncmig.status; a privilege error says what to grant."""
        try:
            return super().status_rows(names)
        except DatabaseError as exc:
            message, sqlstate = pg_error(exc)
            if sqlstate == v.SQLSTATE_INSUFFICIENT_PRIVILEGE:
                message += "\n" + GRANT_HINT % self._user()
            raise MigrationFailed("asyncmig: cannot read asyncmig.status: %s" % message,
                                  sqlstate=sqlstate) from exc

    def poll(self, name, timeout):
        """CALL asyncmig.wait(name, timeout) -> True when the run ended,
        False on the timeout of this slice; MigrationFailed when it ended
        in ERROR (or the call failed for any other reason)."""
        try:
            self.wait(name, timeout)
        except MigrationFailed as exc:
            if exc.sqlstate == v.SQLSTATE_QUERY_CANCELED and "timed out" in str(exc):
                return False
            raise
        return True

    def waiting_for(self, name, row=None):
        """{dependency: status, or None when it was never scheduled} that a
        queued forwards run of name still waits for.  Read from the status
        view (what an application role may read, docs/grants.sql), whose
        progress names each unfinished dependency and its status; an error
        reading it is raised (MigrationFailed), never taken for "nothing"."""
        if row is None:
            rows = self.status_rows([name])
            row = rows[0] if rows else None
        if row is None or row["status"] != v.STARTED or row["direction"] != v.FORWARDS:
            return {}
        match = _WAITING_FOR.search(row.get("progress") or "")
        if not match:
            return {}
        found = {}
        for dep, state in _DEPENDENCY.findall(match.group(1)):
            state = state.split(";")[0].strip()
            found[dep] = None if state.startswith("never scheduled") else state
        if not found:  # a wording this package does not know: say it as it is
            found[match.group(0).strip()] = "?"
        return found
