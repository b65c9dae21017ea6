"""One backend per database vendor, chosen once per connection.

``backend_for(connection)`` returns the backend of a Django connection
(PostgreSQL: the asyncmig extension; SQLite: the asyncmig_sqlite module), or
None for a vendor asyncmig does not serve.  The rest of the package talks to
the database only through the small interface of ``base.Backend``.
"""

from .postgresql import PostgresBackend
from .sqlite import SQLiteBackend

BACKENDS = {cls.vendor: cls for cls in (PostgresBackend, SQLiteBackend)}


def backend_for(connection):
    """The backend of a Django connection (made once, kept on the
    connection), or None when asyncmig does not serve its vendor."""
    backend = getattr(connection, "_asyncmig_backend", None)
    if backend is None or backend.connection is not connection:
        cls = BACKENDS.get(connection.vendor)
        if cls is None:
            return None
        backend = cls(connection)
        connection._asyncmig_backend = backend
    return backend


def supported_vendors():
    """The vendors asyncmig serves, for messages."""
    return " and ".join(sorted(BACKENDS))
