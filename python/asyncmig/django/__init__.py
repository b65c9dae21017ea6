"""asyncmig for Django.

``from asyncmig.django import make_sql_migration`` (or
``make_batched_migration``) in migration files (no need to install the app
for that); add ``"asyncmig.django"`` to INSTALLED_APPS for the admin page and
the management commands ``asyncmig_status``, ``asyncmig_run`` and
``asyncmig_wait``.  Label Studio projects can point
``core/migration_helpers.py`` at ``asyncmig.django.label_studio``.
"""

from .exceptions import (AsyncmigError, ExtensionMissing, MigrationFailed,  # noqa: F401
                         SQLiteModuleNotFound, WorkerNotRunning)
from .migration import make_batched_migration, make_sql_migration  # noqa: F401

__all__ = [
    "make_sql_migration", "make_batched_migration", "AsyncmigError", "ExtensionMissing",
    "MigrationFailed", "SQLiteModuleNotFound", "WorkerNotRunning",
]
