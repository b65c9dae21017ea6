"""The errors of the asyncmig Django package."""

from django.core.management.base import CommandError


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
