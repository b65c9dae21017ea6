"""A project shaped like Label Studio (label_studio_project.py) with
core/migration_helpers.py reduced to one line that points at
asyncmig.django.label_studio: its migrations, its deploy command
locked_migrate, and the logic of its helper tests, on PostgreSQL and SQLite.
Run by run.sh."""

import os
import re
import sys
import unittest

import label_studio_project as lsp
from test_django import (HAVE_PG, PORT, PY, SQLITE_MODULE, WORK, Base, create_db, host_for,
                         pg_index_valid, pg_query, pg_statuses)

# The logic of Label Studio's label_studio/core/tests/test_migration_helpers.py,
# case by case, written with unittest (the real file needs pytest and rq:
# ASYNCMIG_LABEL_STUDIO_CHECKOUT runs it instead).
HELPER_TESTS = '''
from unittest.mock import MagicMock, patch

from core.migration_helpers import (
    DEPENDENCY_WAIT_ATTEMPTS_META, MigrationDependencyFailed, MigrationDependencyNotReady,
    Retry, execute_sql_job, make_sql_migration, run_migration_job, start_migration_job,
)
from core.models import AsyncMigrationStatus
from core.redis import start_job_async_or_sync as real_start
from django.db import connection
from django.test import TestCase, override_settings

NAME = "test.migrations.test_migration"
SQL = "CREATE INDEX test_idx ON test_table (col1);"
BACK = "DROP INDEX test_idx;"


def pg_editor(vendor="postgresql"):
    editor = MagicMock()
    editor.connection.vendor = vendor
    editor.collect_sql = False
    return editor


def mocked(test):
    """Patch core.migration_helpers.connection with a cursor that records."""
    def wrapper(self):
        with patch("core.migration_helpers.connection") as conn:
            self.cursor = MagicMock()
            conn.cursor.return_value.__enter__.return_value = self.cursor
            conn.vendor = "postgresql"
            self.conn = conn
            test(self)
    wrapper.__name__ = test.__name__
    return wrapper


class ExecuteSqlJob(TestCase):
    @mocked
    def test_creates_finished_row(self):
        execute_sql_job(migration_name=NAME, sql=SQL)
        self.assertEqual(AsyncMigrationStatus.objects.get(name=NAME).status, "FINISHED")
        self.cursor.execute.assert_called_once_with(SQL)

    @mocked
    def test_each_statement_on_its_own_cursor(self):
        execute_sql_job(migration_name=NAME, sql=["SQL A;", "SQL B;"])
        self.assertEqual([c.args[0] for c in self.cursor.execute.call_args_list], ["SQL A;", "SQL B;"])
        self.assertEqual(self.conn.cursor.call_count, 2)

    @mocked
    def test_finished_is_not_run_again(self):
        AsyncMigrationStatus.objects.create(name=NAME, status="FINISHED")
        execute_sql_job(migration_name=NAME, sql=SQL)
        self.cursor.execute.assert_not_called()

    @mocked
    def test_scheduled_runs(self):
        row = AsyncMigrationStatus.objects.create(name=NAME, status="SCHEDULED")
        execute_sql_job(migration_name=NAME, sql=SQL)
        row.refresh_from_db()
        self.assertEqual(row.status, "FINISHED")
        self.cursor.execute.assert_called_once_with(SQL)

    @mocked
    def test_sqlite_skipped_or_applied(self):
        self.conn.vendor = "sqlite"
        execute_sql_job(migration_name=NAME, sql=SQL, apply_on_sqlite=False)
        self.assertEqual(AsyncMigrationStatus.objects.get(name=NAME).status, "FINISHED")
        self.cursor.execute.assert_not_called()
        execute_sql_job(migration_name=NAME + "2", sql=SQL, apply_on_sqlite=True)
        self.cursor.execute.assert_called_once_with(SQL)
        execute_sql_job(migration_name=NAME, sql=SQL, apply_on_sqlite=False, reverse=True)
        self.cursor.execute.assert_called_once_with(SQL)

    @mocked
    def test_error_recorded_and_raised(self):
        self.cursor.execute.side_effect = Exception("Test error")
        with self.assertRaisesRegex(Exception, "Test error"):
            execute_sql_job(migration_name=NAME, sql=SQL)
        row = AsyncMigrationStatus.objects.get(name=NAME)
        self.assertEqual((row.status, row.meta["error"]), ("ERROR", "Test error"))

    @mocked
    def test_reverse_records_nothing_and_raises(self):
        execute_sql_job(migration_name=NAME, sql=SQL, reverse=True)
        self.assertFalse(AsyncMigrationStatus.objects.filter(name=NAME).exists())
        self.cursor.execute.assert_called_once_with(SQL)
        self.cursor.execute.side_effect = Exception("Test reverse error")
        with self.assertRaisesRegex(Exception, "Test reverse error"):
            execute_sql_job(migration_name=NAME, sql=SQL, reverse=True)


class MakeSqlMigration(TestCase):
    def test_requires_migration_name(self):
        with self.assertRaisesRegex(ValueError, "explicit migration_name"):
            make_sql_migration(SQL, BACK)

    @override_settings(ALLOW_SCHEDULED_MIGRATIONS=False, CI=False)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_queues_when_not_scheduled(self, start):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name=NAME)
        forwards(MagicMock(), pg_editor())
        start.assert_called_once()
        kwargs = start.call_args.kwargs
        self.assertEqual((kwargs["migration_name"], kwargs["sql"], kwargs["reverse"]), (NAME, SQL, False))
        self.assertNotIn("queue_name", kwargs)
        self.assertIs(kwargs["redis"], True)
        self.assertEqual((kwargs["retry"].max, kwargs["retry"].intervals), (3, [60, 300, 1800]))
        self.assertIsInstance(kwargs["retry"], Retry)

    @override_settings(ALLOW_SCHEDULED_MIGRATIONS=False, CI=False)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_callables_resolved_timeout_and_queue_passed(self, start):
        forwards, backwards = make_sql_migration(lambda: ["SQL A;", "SQL B;"], lambda: ["SQL C;"],
                                                 migration_name=NAME, job_timeout=36000,
                                                 queue_name="service")
        forwards(MagicMock(), pg_editor())
        kwargs = start.call_args.kwargs
        self.assertEqual((kwargs["sql"], kwargs["job_timeout"], kwargs["queue_name"]),
                         (["SQL A;", "SQL B;"], 36000, "service"))
        backwards(MagicMock(), pg_editor())
        kwargs = start.call_args.kwargs
        self.assertEqual((kwargs["sql"], kwargs["reverse"], kwargs["queue_name"]),
                         (["SQL C;"], True, "service"))

    @override_settings(ALLOW_SCHEDULED_MIGRATIONS=True, CI=False)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_scheduled_row_with_dependencies(self, start):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name=NAME, dependencies=["dep"])
        apps = MagicMock()
        apps.get_model.return_value = AsyncMigrationStatus
        forwards(apps, pg_editor())
        start.assert_not_called()
        row = AsyncMigrationStatus.objects.get(name=NAME)
        self.assertEqual((row.status, row.meta["dependencies"]), ("SCHEDULED", ["dep"]))

    @override_settings(ALLOW_SCHEDULED_MIGRATIONS=True, CI=False)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_execute_immediately_is_synchronous(self, start):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name=NAME, execute_immediately=True,
                                         apply_on_sqlite=True)
        forwards(MagicMock(), pg_editor())
        kwargs = start.call_args.kwargs
        self.assertEqual((kwargs["in_seconds"], kwargs["redis"], kwargs["apply_on_sqlite"]),
                         (0, False, True))

    def test_sqlite_skipped(self):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name=NAME)
        forwards(MagicMock(), pg_editor("sqlite"))
        self.assertFalse(AsyncMigrationStatus.objects.filter(name=NAME).exists())

    @override_settings(ALLOW_SCHEDULED_MIGRATIONS=False)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_dependencies_get_the_long_retry(self, start):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name=NAME, dependencies=["dep"])
        with override_settings(MIGRATION_DEPENDENCY_MAX_RETRIES=96,
                               MIGRATION_DEPENDENCY_RETRY_DELAY_SECONDS=900):
            forwards(MagicMock(), pg_editor())
        kwargs = start.call_args.kwargs
        self.assertEqual(kwargs["dependencies"], ["dep"])
        self.assertEqual((kwargs["retry"].max, kwargs["retry"].intervals), (96, [900] * 96))


class StartMigrationJob(TestCase):
    @override_settings(MIGRATION_JOB_START_DELAY_SECONDS=900)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_delay(self, start):
        job = MagicMock(__name__="my_job")
        start_migration_job(job, 1, queue_name="service")
        self.assertEqual(start.call_args.args, (job, 1))
        self.assertEqual(start.call_args.kwargs["in_seconds"], 900)
        start_migration_job(job, in_seconds=0)
        self.assertEqual(start.call_args.kwargs["in_seconds"], 0)
        start_migration_job("some.module.func", migration_name="m", queue_name="service")
        self.assertEqual(start.call_args.args, (run_migration_job, "some.module.func"))
        self.assertEqual(start.call_args.kwargs["in_seconds"], 900)

    @override_settings(CI=False, ALLOW_SCHEDULED_MIGRATIONS=False, MIGRATION_JOB_START_DELAY_SECONDS=900)
    @patch("core.migration_helpers.start_job_async_or_sync")
    def test_forwards_uses_delay(self, start):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name=NAME)
        forwards(MagicMock(), pg_editor())
        self.assertEqual((start.call_args.kwargs["in_seconds"], start.call_args.kwargs["redis"]),
                         (900, True))

    @override_settings(CI=True, ALLOW_SCHEDULED_MIGRATIONS=False)
    @mocked
    def test_ci_runs_synchronously(self):
        forwards, _ = make_sql_migration(SQL, BACK, migration_name="test.migrations.ci")
        forwards(MagicMock(), pg_editor())
        self.cursor.execute.assert_called_once()
        self.assertEqual(AsyncMigrationStatus.objects.get(name="test.migrations.ci").status, "FINISHED")


class ExecuteImmediatelyInProcess(TestCase):
    @override_settings(CI=False, MIGRATION_JOB_START_DELAY_SECONDS=900)
    @patch("core.redis.redis_connected", return_value=True)
    @patch("core.redis.django_rq")
    @patch("core.migration_helpers.start_job_async_or_sync", wraps=real_start)
    def test_ddl_visible_when_forwards_returns(self, start, django_rq, _connected):
        for allowed in (False, True):
            start.reset_mock()
            table = "imm_%d" % allowed
            with override_settings(ALLOW_SCHEDULED_MIGRATIONS=allowed):
                forwards, _ = make_sql_migration(
                    "CREATE TABLE %s (id INTEGER PRIMARY KEY)" % table, "DROP TABLE IF EXISTS %s" % table,
                    migration_name="test.migrations." + table, apply_on_sqlite=True,
                    execute_immediately=True, queue_name="service")
                forwards(MagicMock(), pg_editor())
            self.assertIn(table, connection.introspection.table_names())
            django_rq.get_queue.assert_not_called()
            kwargs = start.call_args.kwargs
            self.assertEqual((kwargs["in_seconds"], kwargs["redis"], kwargs["queue_name"]), (0, False, "service"))


class RunMigrationJob(TestCase):
    def test_imports_and_runs(self):
        func = MagicMock()
        with patch("django.utils.module_loading.import_string", return_value=func) as imp:
            run_migration_job("some.module.func", migration_name="m", custom_param="hello")
        imp.assert_called_once_with("some.module.func")
        func.assert_called_once_with(migration_name="m", custom_param="hello")

    def test_import_error_outside_a_worker_is_raised(self):
        with self.assertRaisesRegex(ImportError, "some.missing.func"):
            run_migration_job("some.missing.func", migration_name="m")


class Dependencies(TestCase):
    DEP = "test.migrations.prerequisite"

    def run_job(self):
        execute_sql_job(migration_name=NAME, sql=SQL, dependencies=[self.DEP])

    @mocked
    def test_runs_when_dependency_finished(self):
        AsyncMigrationStatus.objects.create(name=self.DEP, status="FINISHED")
        self.run_job()
        self.cursor.execute.assert_called_once_with(SQL)
        row = AsyncMigrationStatus.objects.get(name=NAME)
        self.assertEqual((row.status, row.meta["dependencies"]), ("FINISHED", [self.DEP]))
        self.assertNotIn(DEPENDENCY_WAIT_ATTEMPTS_META, row.meta)

    @mocked
    def test_waits_when_missing_or_pending(self):
        with self.assertRaisesRegex(MigrationDependencyNotReady, "waiting"):
            self.run_job()
        row = AsyncMigrationStatus.objects.get(name=NAME)
        self.assertEqual((row.status, row.meta[DEPENDENCY_WAIT_ATTEMPTS_META]), ("STARTED", 1))
        self.assertIsNone(row.meta["dependency_wait_last_statuses"][self.DEP])
        for status in ("IN PROGRESS", "SCHEDULED"):
            AsyncMigrationStatus.objects.update_or_create(name=self.DEP, defaults={"status": status})
            with self.assertRaisesRegex(MigrationDependencyNotReady, self.DEP):
                self.run_job()
            row.refresh_from_db()
            self.assertEqual(row.meta["dependency_wait_last_statuses"][self.DEP], status)
        self.cursor.execute.assert_not_called()

    @mocked
    def test_fails_when_dependency_failed(self):
        AsyncMigrationStatus.objects.create(name=self.DEP, status="ERROR")
        with self.assertRaisesRegex(MigrationDependencyFailed, "ERROR"):
            self.run_job()
        row = AsyncMigrationStatus.objects.get(name=NAME)
        self.assertEqual(row.status, "ERROR")
        self.assertIn(self.DEP, row.meta["error"])
        self.cursor.execute.assert_not_called()

    @override_settings(MIGRATION_DEPENDENCY_MAX_RETRIES=2, MIGRATION_DEPENDENCY_RETRY_DELAY_SECONDS=15)
    @mocked
    def test_budget_exhausted(self):
        AsyncMigrationStatus.objects.create(name=self.DEP, status="STARTED")
        for _ in range(2):
            with self.assertRaisesRegex(MigrationDependencyNotReady, "waiting"):
                self.run_job()
        with self.assertRaisesRegex(MigrationDependencyNotReady, "gave up waiting after 2 retries"):
            self.run_job()
        row = AsyncMigrationStatus.objects.get(name=NAME)
        self.assertEqual((row.status, row.meta[DEPENDENCY_WAIT_ATTEMPTS_META]), ("ERROR", 2))
        self.assertIn("gave up waiting", row.meta["error"])
'''


class LabelStudioProject:
    """The project written once per test class."""

    counter = 0

    def __init__(self, label):
        LabelStudioProject.counter += 1
        base = WORK or os.environ.get("TMPDIR", "/tmp")
        self.root = lsp.write_project(os.path.join(base, "ls-projects", "%s-%d" % (label, self.counter)),
                                      HELPER_TESTS)

    def env(self, db, engine="postgresql", **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASYNCMIG_", "ALLOW_SCHEDULED", "DJANGO_", "DB_", "CI"))}
        env.update({"PYTHONPATH": self.root, "PYTHONDONTWRITEBYTECODE": "1",
                    "DJANGO_SETTINGS_MODULE": "label_studio.settings",
                    "DB_ENGINE": engine, "DB_NAME": db})
        if engine == "postgresql":
            env.update({"DB_HOST": host_for(PORT), "DB_PORT": str(PORT)})
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def manage(self, env, *args, timeout=300):
        import subprocess
        proc = subprocess.run([PY, os.path.join(self.root, "manage.py")] + list(args), cwd=self.root,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)
        proc.output = "--- manage.py %s (exit %d)\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(args), proc.returncode, proc.stdout, proc.stderr)
        return proc


def assert_ran(test, proc):
    """The helper tests ran, all of them (24 here, 39 in Label Studio's file)."""
    ran = int(re.search(r"Ran (\d+) tests", proc.stderr).group(1))
    test.assertGreaterEqual(ran, 24, proc.output)
    test.assertNotIn("skipped", proc.stderr.splitlines()[-1], proc.output)
    print("\n   %d helper tests ran (%s)" % (ran, "Label Studio's own file"
                                             if os.environ.get("ASYNCMIG_LABEL_STUDIO_CHECKOUT")
                                             else "their logic, test_label_studio.HELPER_TESTS"),
          file=sys.stderr)


class HelperLine(unittest.TestCase):
    def test_one_line(self):
        self.assertEqual(lsp.HELPERS_LINE.count("\n"), 1)
        self.assertIn("asyncmig.django.label_studio", lsp.HELPERS_LINE)


@unittest.skipUnless(HAVE_PG, "run by test/django/run.sh (needs its clusters)")
class LabelStudioPostgres(Base):
    @classmethod
    def setUpClass(cls):
        cls.project = LabelStudioProject("pg")

    def assert_indexes(self, db, valid):
        for names in lsp.INDEXES.values():
            for index in names:
                self.assertIs(pg_index_valid(db, index), True if valid else None, index)

    def wait(self, db, env):
        return self.ok(self.project.manage(env, "asyncmig_wait", "--timeout", "120"))

    def test_locked_migrate_queues_then_reverts(self):
        db = "ls_deploy"
        create_db(db)
        env = self.project.env(db)
        p = self.ok(self.project.manage(env, "locked_migrate", "--noinput"))
        st = pg_statuses(db)
        for name in lsp.INDEXES:
            self.assertIn(st[name][0], ("STARTED", "IN PROGRESS", "FINISHED"), p.output)
        self.wait(db, env)
        for name in lsp.INDEXES:
            self.assertEqual(pg_statuses(db)[name], ("FINISHED", "forwards"))
        self.assert_indexes(db, True)
        # the data migration (tasks 0062's shape) ran as usual
        self.assertEqual(pg_query(db, "SELECT count(*) FROM task WHERE model_version = 'undefined'"), [(0,)])
        # queue_name (fsm) and the tuple of statements (projects) were taken
        rows = pg_query(db, "SELECT forwards_sql FROM asyncmig.migration WHERE name = %s",
                        ["projects.migrations.0002_projectimport_list_indexes_async"])
        self.assertEqual(rows[0][0].count("CREATE INDEX CONCURRENTLY"), 2)
        # migrate back: the reverse SQL runs (asyncmig's worker)
        for app in ("tasks", "fsm", "projects"):
            self.ok(self.project.manage(env, "locked_migrate", app, "0001", "--noinput"))
        self.wait(db, env)
        self.assert_indexes(db, False)
        # and forwards again builds again
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.wait(db, env)
        self.assert_indexes(db, True)

    def test_ci_runs_in_migrate(self):
        db = "ls_ci"
        create_db(db)
        env = self.project.env(db, CI="true", ALLOW_SCHEDULED_MIGRATIONS="true")
        self.ok(self.project.manage(env, "locked_migrate", "--noinput"))
        # synchronous: done when migrate returns, recorded in both tables
        self.assert_indexes(db, True)
        rows = dict(pg_query(db, "SELECT name, status FROM core_asyncmigrationstatus"))
        for name in lsp.INDEXES:
            self.assertEqual(rows.get(name), "FINISHED", rows)
            self.assertEqual(pg_statuses(db)[name], ("FINISHED", "forwards"))

    def test_scheduled_mode(self):
        db = "ls_sched"
        create_db(db)
        env = self.project.env(db, ALLOW_SCHEDULED_MIGRATIONS="true")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        rows = dict(pg_query(db, "SELECT name, status FROM core_asyncmigrationstatus"))
        for name in lsp.INDEXES:
            self.assertEqual(rows.get(name), "SCHEDULED", rows)
        self.assert_indexes(db, False)

    def test_start_delay_is_not_before(self):
        db = "ls_delay"
        create_db(db)
        env = self.project.env(db, MIGRATION_JOB_START_DELAY_SECONDS="3600")
        self.ok(self.project.manage(env, "migrate", "tasks", "0002", "--noinput"))
        name = "tasks.migrations.0002_task_completion_id_updated_at_idx_async"
        rows = pg_query(db, "SELECT status, not_before > now() + interval '50 minutes' "
                            "FROM asyncmig.migration WHERE name = %s", [name])
        self.assertEqual(rows, [("STARTED", True)])

    def test_helper_tests(self):
        db = "ls_helpers"
        create_db(db)
        p = self.ok(self.project.manage(self.project.env(db), "test", "core", "--noinput", "-v", "2"))
        assert_ran(self, p)


@unittest.skipUnless(os.path.exists(SQLITE_MODULE), "no %s" % SQLITE_MODULE)
class LabelStudioSQLite(Base):
    @classmethod
    def setUpClass(cls):
        cls.project = LabelStudioProject("sqlite")

    def test_migrate_and_helper_tests(self):
        path = os.path.join(self.project.root, "ls.sqlite3")
        env = self.project.env(path, engine="sqlite")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.ok(self.project.manage(env, "migrate", "tasks", "0001", "--noinput"))
        p = self.ok(self.project.manage(env, "test", "core", "--noinput", "-v", "2"))
        assert_ran(self, p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
