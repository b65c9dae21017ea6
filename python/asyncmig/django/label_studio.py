"""Label Studio's ``core.migration_helpers`` on top of asyncmig.

A Label Studio checkout keeps its migration files as they are and replaces
``label_studio/core/migration_helpers.py`` with this one line::

    import sys, asyncmig.django.label_studio as helpers; sys.modules[__name__] = helpers

so that ``core.migration_helpers`` *is* this module (and the tests that
patch ``core.migration_helpers.connection`` or ``.start_job_async_or_sync``
reach the names used here).  The public names are Label Studio's:
``make_sql_migration``, ``execute_sql_job``, ``start_migration_job``,
``start_job_async_or_sync``, ``run_migration_job``,
``wait_for_async_migration_dependencies``, ``dependency_retry_policy``,
``MigrationDependencyNotReady``, ``MigrationDependencyFailed``, and the meta
keys.  What changes is who runs the SQL:

- the asynchronous path (Label Studio: an RQ job) is asyncmig's background
  worker: ``start_job_async_or_sync(execute_sql_job, ..., redis=True)`` on
  PostgreSQL queues the SQL with ``asyncmig.schedule`` (``in_seconds`` ->
  ``not_before``, ``job_timeout`` -> ``timeout``, ``dependencies`` ->
  ``depends_on``); it starts only after the migration's transaction
  commits, and a failed ``CREATE INDEX CONCURRENTLY`` leaves no INVALID
  index;
- the synchronous path (``settings.CI``, ``execute_immediately=True``, the
  admin action) is ``execute_sql_job``: the SQL runs to its end before
  ``migrate`` goes on, recorded in Label Studio's ``AsyncMigrationStatus``;
  on PostgreSQL outside a transaction it too runs through asyncmig (same
  guarantees), inside one it runs in the calling transaction;
- Python jobs (``start_migration_job("app.migrations.0005_x.func", ...)``)
  go to Label Studio's own ``core.redis.start_job_async_or_sync`` (the
  setting ``ASYNCMIG_PYTHON_JOB_RUNNER``), else run in this process:
  asyncmig's worker runs SQL, not Python.
"""

import logging
import types

import django.db
from django.apps import apps as django_apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils.module_loading import import_string

from .. import vocabulary as v
from . import conf
from .backends import backend_for
from .exceptions import AsyncmigError, ExtensionMissing, SQLiteModuleNotFound
from .migration import SqlMigration, check_name

try:
    from rq import Retry
except ImportError:  # no RQ: a stand-in with the same attributes
    class Retry:
        """RQ's retry policy (max retries, intervals in seconds)."""

        def __init__(self, max, interval=0):  # noqa: A002 - RQ's name
            self.max = max
            self.intervals = list(interval) if isinstance(interval, (list, tuple)) else [interval]

logger = logging.getLogger(__name__)

DEPENDENCY_WAIT_ATTEMPTS_META = "dependency_wait_attempts"
DEPENDENCY_WAIT_LAST_STATUSES_META = "dependency_wait_last_statuses"
DEFAULT_RETRY = (3, [60, 300, 1800])

# make_sql_migration's SQL by migration name, for the asynchronous path
# (a backwards job carries only the backwards SQL)
_SQL = {}


class MigrationDependencyNotReady(Exception):
    """A named async-migration dependency is not FINISHED yet."""


class MigrationDependencyFailed(Exception):
    """A named async-migration dependency is in ERROR."""


def _setting(name, default):
    return getattr(settings, name, default)


def _status_model():
    """Label Studio's AsyncMigrationStatus (the setting
    ASYNCMIG_LABEL_STUDIO_STATUS_MODEL), or None in another project."""
    try:
        return django_apps.get_model(_setting("ASYNCMIG_LABEL_STUDIO_STATUS_MODEL",
                                              "core.AsyncMigrationStatus"))
    except (LookupError, ValueError):
        return None


def _normalize_dependencies(dependencies):
    return tuple(dependencies) if dependencies else ()


def dependency_retry_policy():
    """The retry policy of a job with dependencies (Label Studio's settings
    MIGRATION_DEPENDENCY_MAX_RETRIES, MIGRATION_DEPENDENCY_RETRY_DELAY_SECONDS)."""
    retries = _setting("MIGRATION_DEPENDENCY_MAX_RETRIES", 96)
    return Retry(max=retries, interval=[_setting("MIGRATION_DEPENDENCY_RETRY_DELAY_SECONDS", 900)] * retries)


def _asyncmig_statuses(names):
    """{name: status} of the names recorded by asyncmig (the asynchronous
    path records there, not in AsyncMigrationStatus)."""
    backend = backend_for(connections[DEFAULT_DB_ALIAS])
    if backend is None:
        return {}
    try:
        if backend.synchronous and backend.status_view not in \
                backend.connection.introspection.table_names(include_views=True):
            return {}  # nothing recorded, and no need to load the module
        return {row["name"]: row["status"] for row in backend.status_rows(list(names))}
    except (ExtensionMissing, SQLiteModuleNotFound):
        return {}  # nothing recorded there (errors reading it are raised)


def _unfinished_dependency_statuses(names):
    """{dependency: status or None} of the dependencies not FINISHED, in
    AsyncMigrationStatus or else in asyncmig."""
    if not names:
        return {}
    model = _status_model()
    statuses = {}
    if model is not None:
        statuses = dict(model.objects.filter(name__in=names).values_list("name", "status"))
    if any(statuses.get(n) != v.FINISHED for n in names):
        for name, status in _asyncmig_statuses(names).items():
            if statuses.get(name) != v.FINISHED:
                statuses[name] = status
    return {n: statuses.get(n) for n in names if statuses.get(n) != v.FINISHED}


def _mark_error(migration, message):
    migration.meta = dict(migration.meta or {}, error=message)
    migration.status = v.ERROR
    migration.save(update_fields=["status", "meta"])


def wait_for_async_migration_dependencies(migration, dependencies):
    """Return when every named dependency is FINISHED; else record the
    wait on the migration's row and raise MigrationDependencyNotReady (a
    dependency missing or pending; ERROR once the retry budget
    MIGRATION_DEPENDENCY_MAX_RETRIES is spent) or MigrationDependencyFailed
    (a dependency in ERROR)."""
    names = _normalize_dependencies(dependencies)
    if not names:
        return
    meta = dict(migration.meta or {}, dependencies=list(names))
    unfinished = _unfinished_dependency_statuses(names)
    if not unfinished:
        meta.pop(DEPENDENCY_WAIT_ATTEMPTS_META, None)
        meta.pop(DEPENDENCY_WAIT_LAST_STATUSES_META, None)
        migration.meta = meta
        migration.save(update_fields=["meta"])
        return
    failed = [n for n, s in unfinished.items() if s == v.ERROR]
    if failed:
        message = ("Async migration %s cannot start because required migration(s) are ERROR: "
                   "%s. Fix or re-run those jobs, then re-run %s."
                   % (migration.name, ", ".join("%s=ERROR" % n for n in failed), migration.name))
        _mark_error(migration, message)
        raise MigrationDependencyFailed(message)
    retries = _setting("MIGRATION_DEPENDENCY_MAX_RETRIES", 96)
    attempts = int(meta.get(DEPENDENCY_WAIT_ATTEMPTS_META, 0)) + 1
    what = ", ".join("%s=%s" % (n, s or "missing") for n, s in unfinished.items())
    if attempts > retries:
        message = ("Async migration %s gave up waiting after %d retries (%ss apart). Still not "
                   "FINISHED: %s. Fix those jobs, then re-run %s."
                   % (migration.name, retries, _setting("MIGRATION_DEPENDENCY_RETRY_DELAY_SECONDS", 900),
                      what, migration.name))
        _mark_error(migration, message)
        raise MigrationDependencyNotReady(message)
    meta[DEPENDENCY_WAIT_ATTEMPTS_META] = attempts
    meta[DEPENDENCY_WAIT_LAST_STATUSES_META] = unfinished
    if migration.status != v.ERROR:
        migration.status = v.STARTED
    migration.meta = meta
    migration.save(update_fields=["status", "meta"])
    message = ("Async migration %s is waiting for %s (attempt %d/%d). Re-run %s after those "
               "jobs finish." % (migration.name, what, attempts, retries, migration.name))
    logger.info(message)
    raise MigrationDependencyNotReady(message)


def _statements(sql):
    return (sql,) if isinstance(sql, str) else tuple(sql)


def _through_asyncmig():
    """The backend to run synchronous SQL with, when asyncmig can give its
    guarantees here: Django's own PostgreSQL connection, outside any
    transaction (asyncmig runs nothing before a commit), with the extension
    (created when missing and ASYNCMIG_CREATE_EXTENSION allows)."""
    if connection is not django.db.connection:
        return None  # a connection object of someone else's (a test's mock)
    backend = backend_for(connections[DEFAULT_DB_ALIAS])
    if backend is None or backend.synchronous or backend.connection.in_atomic_block:
        return None
    try:
        backend.prepare()  # CREATE EXTENSION when ASYNCMIG_CREATE_EXTENSION allows
    except AsyncmigError as exc:
        logger.warning("asyncmig cannot run this migration (%s): running it in this process", exc)
        return None
    return backend


def _schema_editor(backend):
    return types.SimpleNamespace(connection=backend.connection, collect_sql=False)


def _run_sql(migration_name, sql, reverse):
    """Run the SQL to its end: through asyncmig when it can (see
    _through_asyncmig), else statement by statement on ``connection``."""
    backend = _through_asyncmig()
    if backend is None:
        for statement in _statements(sql):
            with connection.cursor() as cursor:
                cursor.execute(statement)
        return
    forwards, backwards = _SQL.get(migration_name, (sql, None))
    migration = SqlMigration(migration_name, forwards if not reverse else (forwards or sql),
                             sql if reverse else backwards, apply_on_sqlite=True,
                             execute_immediately=True)
    (migration.backwards if reverse else migration.forwards)(None, _schema_editor(backend))


def execute_sql_job(*, migration_name, sql, apply_on_sqlite=False, reverse=False, dependencies=None):
    """Run a migration's SQL now, recording it in AsyncMigrationStatus
    (forwards only): STARTED, then FINISHED or ERROR (meta['error']); a
    FINISHED row is not run again; dependencies must be FINISHED first."""
    model = _status_model()
    skip = connection.vendor == "sqlite" and not apply_on_sqlite
    if reverse or model is None:
        if skip:
            logger.info("SQLite detected; skipping SQL execution as requested")
            return
        try:
            _run_sql(migration_name, sql, reverse)
        except Exception as exc:
            logger.exception("%s migration %s failed: %s", "Reverse" if reverse else "Forwards",
                             migration_name, exc)
            raise
        return
    names = _normalize_dependencies(dependencies)
    migration, created = model.objects.get_or_create(
        name=migration_name,
        defaults={"status": v.STARTED, "meta": {"dependencies": list(names)} if names else {}})
    if names:
        migration.meta = dict(migration.meta or {}, dependencies=list(names))
        migration.save(update_fields=["meta"])
    if not created and migration.status == v.FINISHED:
        logger.info("Migration %s already executed with status FINISHED", migration_name)
        return
    wait_for_async_migration_dependencies(migration, names)
    if migration.status == v.SCHEDULED:
        migration.status = v.STARTED
        migration.save()
    try:
        if skip:
            logger.info("SQLite detected; skipping SQL execution as requested")
        else:
            _run_sql(migration_name, sql, False)
        migration.status = v.FINISHED
        migration.save()
    except Exception as exc:
        logger.exception("Migration %s failed: %s", migration_name, exc)
        migration.status = v.ERROR
        migration.meta = dict(migration.meta or {}, error=str(exc))
        migration.save()
        raise


def _queue_in_asyncmig(job_kwargs, in_seconds, job_timeout):
    """The asynchronous path of execute_sql_job: asyncmig's worker.  Returns
    False when this database is not asyncmig's (the caller runs the job)."""
    backend = backend_for(connections[DEFAULT_DB_ALIAS])
    if backend is None or backend.synchronous:
        return False
    name = job_kwargs["migration_name"]
    sql = job_kwargs["sql"]
    forwards, backwards = _SQL.get(name, (None, None))
    if job_kwargs.get("reverse"):
        migration = SqlMigration(name, forwards or sql, sql)
    else:
        migration = SqlMigration(name, sql, backwards, job_timeout=job_timeout,
                                 dependencies=job_kwargs.get("dependencies") or ())
    migration.start_delay = in_seconds
    # Label Studio orders its jobs by dependencies= alone: Django's migration
    # graph adds nothing unless ASYNCMIG_FOLLOW_MIGRATION_GRAPH says so
    migration.follow_graph_default = False
    editor = _schema_editor(backend)
    (migration.backwards if job_kwargs.get("reverse") else migration.forwards)(None, editor)
    return True


def _python_job_runner():
    path = _setting("ASYNCMIG_PYTHON_JOB_RUNNER", "core.redis.start_job_async_or_sync")
    try:
        return import_string(path) if path else None
    except ImportError:
        return None


def start_job_async_or_sync(job, *args, in_seconds=0, **kwargs):
    """Label Studio's job starter, asyncmig's way: execute_sql_job with
    redis=True is queued in asyncmig (PostgreSQL); with redis=False it runs
    now; other (Python) jobs go to Label Studio's own starter
    (ASYNCMIG_PYTHON_JOB_RUNNER), else run now."""
    if job is execute_sql_job:
        redis = kwargs.pop("redis", True)
        kwargs.pop("queue_name", None)
        kwargs.pop("retry", None)
        job_timeout = kwargs.pop("job_timeout", None)
        if redis and _queue_in_asyncmig(kwargs, in_seconds, job_timeout):
            return None
        return job(*args, **kwargs)
    runner = _python_job_runner()
    if runner is not None and runner is not start_job_async_or_sync:
        return runner(job, *args, in_seconds=in_seconds, **kwargs)
    for key in ("redis", "queue_name", "retry", "job_timeout"):
        kwargs.pop(key, None)
    logger.info("asyncmig runs SQL in its worker, not Python: running %s now",
                getattr(job, "__name__", job))
    return job(*args, **kwargs)


def run_migration_job(target_func_path, *args, **kwargs):
    """Import the job named by a dotted path and run it.  In an RQ worker
    whose code is older than the path, reschedule it (queue and timeout of
    the current job kept); elsewhere the import error is raised."""
    from django.utils import module_loading  # looked up at call time (patchable)

    try:
        func = module_loading.import_string(target_func_path)
    except (ImportError, AttributeError) as exc:
        current = None
        try:
            import rq
            current = rq.get_current_job()
        except Exception:  # no RQ, or not in a worker
            current = None
        if current is None:
            raise ImportError("cannot import the migration job %s: %s" % (target_func_path, exc)) from exc
        logger.warning("Failed to import migration function %s; worker codebase may not be "
                       "updated yet. Rescheduling. Error: %s", target_func_path, exc)
        start_job_async_or_sync(
            run_migration_job, target_func_path, *args,
            in_seconds=_setting("MIGRATION_JOB_RESCHEDULE_DELAY_SECONDS", 60),
            queue_name=getattr(current, "origin", "default"),
            job_timeout=getattr(current, "timeout", None), **kwargs)
        return
    func(*args, **kwargs)


def start_migration_job(job, *args, **kwargs):
    """Start a migration job delayed by MIGRATION_JOB_START_DELAY_SECONDS
    (unless in_seconds is given); a dotted-path string goes through
    run_migration_job."""
    kwargs.setdefault("in_seconds", conf.start_delay())
    if isinstance(job, str):
        return start_job_async_or_sync(run_migration_job, job, *args, **kwargs)
    return start_job_async_or_sync(job, *args, **kwargs)


def _resolve(sql):
    return sql() if callable(sql) else sql


def make_sql_migration(sql_forwards, sql_backwards, *, apply_on_sqlite=False,
                       execute_immediately=False, migration_name=None, queue_name=None,
                       job_timeout=None, dependencies=()):
    """Label Studio's make_sql_migration -> (forwards, backwards) for
    migrations.RunPython.  forwards queues the SQL (asyncmig's worker), runs
    it now (settings.CI, execute_immediately), or records it SCHEDULED
    (ALLOW_SCHEDULED_MIGRATIONS); backwards always queues the reverse SQL."""
    check_name(migration_name, "make_sql_migration")
    dep_names = _normalize_dependencies(dependencies)
    _SQL[migration_name] = (sql_forwards, sql_backwards)

    def job_kwargs(**extra):
        """Label Studio's optional job keywords, only when given."""
        if queue_name is not None:
            extra["queue_name"] = queue_name
        if job_timeout is not None:
            extra["job_timeout"] = job_timeout
        return extra

    def forwards(apps, schema_editor):
        """Queue, run now, or record SCHEDULED (see make_sql_migration)."""
        if getattr(schema_editor, "collect_sql", False) is True:
            return
        if schema_editor.connection.vendor == "sqlite" and not apply_on_sqlite:
            logger.info("Skipping migration for SQLite (apply_on_sqlite=False)")
            return
        if execute_immediately or not conf.allow_scheduled_migrations() or conf.ci():
            force_sync = conf.ci() or execute_immediately
            extra = {"in_seconds": 0} if execute_immediately else {}
            start_migration_job(
                execute_sql_job, migration_name=migration_name, sql=_resolve(sql_forwards),
                apply_on_sqlite=apply_on_sqlite, reverse=False, dependencies=list(dep_names),
                retry=dependency_retry_policy() if dep_names else Retry(max=DEFAULT_RETRY[0],
                                                                         interval=DEFAULT_RETRY[1]),
                redis=not force_sync, **job_kwargs(**extra))
            return
        model = apps.get_model(*_setting("ASYNCMIG_LABEL_STUDIO_STATUS_MODEL",
                                         "core.AsyncMigrationStatus").split("."))
        model.objects.get_or_create(
            name=migration_name, defaults={"status": v.SCHEDULED,
                                           "meta": {"dependencies": list(dep_names)}})

    def backwards(apps, schema_editor):
        """Queue the reverse SQL."""
        if getattr(schema_editor, "collect_sql", False) is True:
            return
        start_job_async_or_sync(
            execute_sql_job, migration_name=migration_name, sql=_resolve(sql_backwards),
            apply_on_sqlite=apply_on_sqlite, reverse=True,
            retry=Retry(max=DEFAULT_RETRY[0], interval=DEFAULT_RETRY[1]), **job_kwargs())

    forwards.asyncmig_name = backwards.asyncmig_name = migration_name
    return forwards, backwards


__all__ = [
    "DEPENDENCY_WAIT_ATTEMPTS_META", "DEPENDENCY_WAIT_LAST_STATUSES_META",
    "MigrationDependencyFailed", "MigrationDependencyNotReady", "Retry",
    "dependency_retry_policy", "execute_sql_job", "make_sql_migration",
    "run_migration_job", "start_job_async_or_sync", "start_migration_job",
    "wait_for_async_migration_dependencies",
]
