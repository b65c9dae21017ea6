"""asyncmig: run heavy schema changes (CREATE INDEX CONCURRENTLY, ...) in a
PostgreSQL background worker and record every migration's status.

This Python package holds the Django integration, ``asyncmig.django``
(``from asyncmig.django import make_sql_migration``).  Importing ``asyncmig``
itself imports nothing from Django.
"""

__version__ = "1.1"
