"""asyncmig for Django.

``from asyncmig.django import make_sql_migration`` in migration files (no
need to install the app for that); add ``"asyncmig.django"`` to
INSTALLED_APPS for the admin page and the management commands
``asyncmig_status``, ``asyncmig_run`` and ``asyncmig_wait``.
"""

from .backend import (AsyncmigError, AsyncmigWarning, ExtensionMissing,  # noqa: F401
                      MigrationFailed, SQLiteModuleNotFound, WorkerNotRunning)
from .migration import make_sql_migration  # noqa: F401

__all__ = [
    "make_sql_migration", "AsyncmigError", "AsyncmigWarning", "ExtensionMissing",
    "MigrationFailed", "SQLiteModuleNotFound", "WorkerNotRunning",
]
