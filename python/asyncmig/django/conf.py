"""Settings of the asyncmig Django package.

Each setting is read from Django's settings when it is defined there, else
from the environment variable of the same name, else its default:

``ALLOW_SCHEDULED_MIGRATIONS``  (default: not set = leave the database's
    ``asyncmig.allow_scheduled_migrations`` as it is, which is off unless a
    DBA changed it).  True: migrations that are not ``execute_immediately``
    are recorded ``SCHEDULED`` and wait for someone to run them.

``ASYNCMIG_CREATE_EXTENSION``  (default True): ``make_sql_migration`` runs
    ``CREATE EXTENSION IF NOT EXISTS asyncmig`` when the database lacks it
    (this needs a superuser; Django's test databases are copies of
    ``template1``, which has no extension).  False: fail with a message
    saying what to run instead.

``ASYNCMIG_WAIT_IN_MIGRATE``  (default: True under a test runner - Django's
    ``manage.py test``, pytest-django - else False): ``migrate`` waits for
    each migration it queued (after that migration's transaction committed)
    and fails if one ends ``ERROR``.  Label Studio's ``CI`` setting (else
    environment variable) and ``execute_immediately=True`` do the same.

``MIGRATION_JOB_START_DELAY_SECONDS``, ``ASYNCMIG_DEPENDENCY_TIMEOUT``: see
    ``start_delay()`` and ``dependency_timeout()``.

``ASYNCMIG_WAIT_TIMEOUT``  (seconds, default None = no limit): the limit of
    each such wait.

``ASYNCMIG_SQLITE_MODULE``  (full path of ``asyncmig_sqlite.so``; default
    ``$(pg_config --pkglibdir)/asyncmig_sqlite.so``).

``ASYNCMIG_DATABASE``  (default ``"default"``): the database alias that the
    admin page and the status model read.

``ASYNCMIG_FOLLOW_MIGRATION_GRAPH``  (default True; False in the Label
    Studio compatibility module ``asyncmig.django.label_studio``): an async
    migration whose Django migration depends (directly or through others,
    as ``migrate`` orders them) on the Django migration of another async
    migration of the same database waits for it as ``dependencies=`` would:
    the ancestor's name is added to its ``depends_on`` when it is queued,
    unless the ancestor already ended FINISHED.

``ASYNCMIG_PROGRESS_INTERVAL``  (seconds, default 5): how often a wait
    (``migrate`` with ASYNCMIG_WAIT_IN_MIGRATE, ``asyncmig_wait``,
    ``asyncmig_run --wait``) prints a line saying where the migration is.
"""

import os

from django.conf import settings

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def to_bool(value, name="setting"):
    """Parse a boolean setting: a bool, a number, or a string such as
    "true"/"1"/"yes"/"on" or "false"/"0"/"no"/"off"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise ValueError("%s: cannot read %r as a boolean (use true/false, 1/0, yes/no, on/off)" % (name, value))


_MISSING = object()


def raw(name, default=None):
    """The value of a setting: Django setting, else environment, else default."""
    value = getattr(settings, name, _MISSING) if settings.configured else _MISSING
    if value is _MISSING:
        value = os.environ.get(name, _MISSING)
    if value is _MISSING:
        return default
    return value


def get_bool(name, default=None):
    """A boolean setting (see ``raw``), default when it is not set."""
    value = raw(name, _MISSING)
    if value is _MISSING or value is None:
        return default
    return to_bool(value, name)


def allow_scheduled_migrations():
    """True/False when ALLOW_SCHEDULED_MIGRATIONS is defined, else None."""
    return get_bool("ALLOW_SCHEDULED_MIGRATIONS", None)


def create_extension():
    """ASYNCMIG_CREATE_EXTENSION (default True)."""
    return get_bool("ASYNCMIG_CREATE_EXTENSION", True)


def in_test_environment():
    """True between setup_test_environment() and teardown_test_environment(),
    which Django's test runner and pytest-django call."""
    try:
        from django.test.utils import _TestState
    except ImportError:  # pragma: no cover - other Django versions
        _TestState = None
    if _TestState is not None and hasattr(_TestState, "saved_data"):
        return True
    from django.core import mail

    return hasattr(mail, "outbox")


def wait_in_migrate():
    """ASYNCMIG_WAIT_IN_MIGRATE (default: True under a test runner)."""
    value = get_bool("ASYNCMIG_WAIT_IN_MIGRATE", None)
    if value is None:
        return in_test_environment()
    return value


def wait_timeout():
    """ASYNCMIG_WAIT_TIMEOUT in seconds (None: no limit)."""
    value = raw("ASYNCMIG_WAIT_TIMEOUT", None)
    if value in (None, ""):
        return None
    return float(value)


def database_alias():
    """ASYNCMIG_DATABASE (default "default")."""
    return raw("ASYNCMIG_DATABASE", None) or "default"


def ci():
    """Label Studio's ``settings.CI`` (else the environment variable CI,
    which CI services set, some to their own name): every migration runs
    to its end inside ``migrate``."""
    try:
        return get_bool("CI", False)
    except ValueError:
        return True  # CI=woodpecker and the like: set, so on


def _seconds(name, default):
    value = raw(name, None)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("%s: %r is not a number of seconds" % (name, value)) from None


def start_delay():
    """``MIGRATION_JOB_START_DELAY_SECONDS`` (Label Studio's name, default
    0): a migration queued by ``migrate`` starts no earlier than this many
    seconds later (asyncmig's ``not_before``), so that a rolling deploy can
    switch every server to the new code first.  Synchronous runs ignore it."""
    return _seconds("MIGRATION_JOB_START_DELAY_SECONDS", 0.0)


def dependency_timeout():
    """``ASYNCMIG_DEPENDENCY_TIMEOUT`` (seconds, default 600): how long a
    wait of ``migrate`` (or ``asyncmig_wait``) lets a migration stay queued
    behind a dependency that is missing or not FINISHED before it cancels
    it (it ends ERROR) and fails, naming the dependency."""
    return _seconds("ASYNCMIG_DEPENDENCY_TIMEOUT", 600.0)


def follow_migration_graph(default=True):
    """ASYNCMIG_FOLLOW_MIGRATION_GRAPH when it is set, else default (True
    for asyncmig.django, False for its Label Studio module)."""
    return get_bool("ASYNCMIG_FOLLOW_MIGRATION_GRAPH", default)


def progress_interval():
    """ASYNCMIG_PROGRESS_INTERVAL (seconds, default 5)."""
    return max(_seconds("ASYNCMIG_PROGRESS_INTERVAL", 5.0), 0.1)
