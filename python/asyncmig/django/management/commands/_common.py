"""Helpers of the management commands."""

import datetime

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from ... import conf
from ...backends import backend_for, supported_vendors


def add_database_argument(parser):
    """--database ALIAS."""
    parser.add_argument(
        "--database", default=None,
        help="Database alias (default: the setting ASYNCMIG_DATABASE, else %r)." % DEFAULT_DB_ALIAS)


def get_backend(options):
    """The backend of the --database connection; an error when asyncmig
    does not serve it or (PostgreSQL) the extension is missing."""
    alias = options.get("database") or conf.database_alias()
    if alias not in connections.databases:
        raise CommandError("unknown database alias %r" % alias)
    connection = connections[alias]
    backend = backend_for(connection)
    if backend is None:
        raise CommandError("asyncmig supports %s, not %s" % (supported_vendors(), connection.vendor))
    missing = backend.missing()
    if missing:
        raise CommandError(missing)
    return backend


def to_json_value(value):
    """A value of a status row as JSON can hold it."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def fmt(value):
    """A value of a status row as one line of text."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, datetime.timedelta):
        total = value.total_seconds()
        h, rem = divmod(int(total), 3600)
        m, s = divmod(rem, 60)
        return "%d:%02d:%02d.%01d" % (h, m, s, int((total - int(total)) * 10))
    return str(value).replace("\n", " ")


def project_asyncmig_names(connection):
    """The asyncmig names of this project's migration files (RunPython
    operations made by make_sql_migration), in migration order."""
    from django.db.migrations.loader import MigrationLoader

    from ...migration import _asyncmig_names

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    names = []
    for key in sorted(loader.disk_migrations):
        for name in _asyncmig_names(loader.disk_migrations[key]):
            if name not in names:
                names.append(name)
    return names
