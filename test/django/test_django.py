"""Tests of asyncmig.django against real Django projects (see projects.py),
on the clusters that run.sh started, and on SQLite files.  Run by run.sh."""

import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import projects

PY = os.environ.get("ASYNCMIG_TEST_PYTHON", sys.executable)
REPO = os.environ.get("ASYNCMIG_TEST_REPO", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
WORK = os.environ.get("ASYNCMIG_TEST_WORK")
SOCK = os.environ.get("ASYNCMIG_TEST_SOCKDIR")
SOCK_NOPRELOAD = os.environ.get("ASYNCMIG_TEST_SOCKDIR_NOPRELOAD")
PORT = os.environ.get("ASYNCMIG_TEST_PORT")
PORT_NOPRELOAD = os.environ.get("ASYNCMIG_TEST_PORT_NOPRELOAD")
PKGLIBDIR = os.environ.get("ASYNCMIG_TEST_PKGLIBDIR", "/usr/lib/postgresql/15/lib")
SQLITE_MODULE = (os.environ.get("ASYNCMIG_TEST_SQLITE_MODULE")
                 or os.path.join(PKGLIBDIR, "asyncmig_sqlite.so"))

SOCK_APP = os.environ.get("ASYNCMIG_TEST_SOCKDIR_APP")
PORT_APP = os.environ.get("ASYNCMIG_TEST_PORT_APP")
GRANTS = os.environ.get("ASYNCMIG_TEST_GRANTS")
APP_LOG = os.environ.get("ASYNCMIG_TEST_APP_LOG")
APP_ROLE = "webapp"
BROWSER = os.environ.get("ASYNCMIG_TEST_BROWSER", "optional")

HAVE_PG = bool(WORK and SOCK and PORT)
HAVE_APP = bool(HAVE_PG and SOCK_APP and PORT_APP and GRANTS)
NAME2 = "shop.migrations.0002_item_ab_idx_async"
NAME3 = "shop.0003_item_b_idx"
NAME4 = "shop.0004_item_a_idx"
NAME5 = "shop.0005_item_ba_idx"
SHOP_INDEXES = {NAME2: "shop_item_ab_idx", NAME3: "shop_item_b_idx",
                NAME4: "shop_item_a_idx", NAME5: "shop_item_ba_idx"}


# --------------------------------------------------------------------------
# helpers

def pg_connect(dbname="postgres", port=None, user=None):
    try:
        import psycopg2 as driver
    except ImportError:
        import psycopg as driver
    if user is None:  # the clusters' superusers
        user = "postgres" if port and str(port) == str(PORT_APP) else "django"
    conn = driver.connect(host=host_for(port), port=port or PORT, user=user, dbname=dbname)
    conn.autocommit = True
    return conn


def host_for(port):
    """The socket directory of the cluster on that port."""
    if port and str(port) == str(PORT_APP):
        return SOCK_APP
    return SOCK_NOPRELOAD if port and str(port) == str(PORT_NOPRELOAD) else SOCK


def pg_query(dbname, sql, params=(), port=None):
    conn = pg_connect(dbname, port)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def grant_app(dbname, role="app", port=None):
    """Give role exactly what docs/grants.sql (the one recipe) gives."""
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host_for(port),
                    "-p", str(port or PORT), "-U", "django", "-d", dbname,
                    "-v", "app_role=%s" % role, "-f", os.path.join(REPO, "docs", "grants.sql")],
                   check=True)


def create_db(name, port=None, owner="django"):
    conn = pg_connect("postgres", port)
    try:
        with conn.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            cur.execute('CREATE DATABASE "%s" OWNER "%s"' % (name, owner))
    finally:
        conn.close()


def db_exists(name, port=None):
    return bool(pg_query("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", [name], port))


def pg_index_valid_on(dbname, index, port):
    rows = pg_query(dbname, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid WHERE c.relname = %s", [index], port=port)
    return rows[0][0] if rows else None


def pg_statuses(dbname, port=None):
    rows = pg_query(dbname, "SELECT name, status, direction FROM asyncmig.status", port=port)
    return {name: (status, direction) for name, status, direction in rows}


def pg_index_valid(dbname, index):
    """True: valid; False: INVALID; None: absent."""
    rows = pg_query(dbname, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                            "ON c.oid = i.indexrelid WHERE c.relname = %s", [index])
    return rows[0][0] if rows else None


def sqlite_connect(path):
    return sqlite3.connect(path)  # the status view is plain SQL: no module needed


def sqlite_statuses(path):
    conn = sqlite_connect(path)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'asyncmig_status'").fetchone():
            return {}
        return {r[0]: (r[1], r[2]) for r in
                conn.execute("SELECT name, status, direction FROM asyncmig_status")}
    finally:
        conn.close()


def sqlite_has_index(path, index):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                            [index]).fetchone() is not None
    finally:
        conn.close()


class Project:
    counter = 0

    def __init__(self, label):
        Project.counter += 1
        base = WORK or os.environ.get("TMPDIR", "/tmp")
        self.root = projects.write_project(
            os.path.join(base, "projects", "%s-%d" % (label, Project.counter)))

    def env(self, db, engine="postgresql", port=None, extra_apps=(), **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ASYNCMIG_", "ALLOW_SCHEDULED", "DJANGO_", "DB_"))}
        env.update({
            "PYTHONPATH": self.root,  # asyncmig itself is pip-installed
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "proj.settings",
            "DB_ENGINE": engine,
            "DB_NAME": db,
            "EXTRA_APPS": ",".join(extra_apps),
        })
        if engine == "postgresql":
            env.update({"DB_HOST": host_for(port), "DB_PORT": str(port or PORT)})
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def manage(self, env, *args, timeout=300):
        proc = subprocess.run([PY, os.path.join(self.root, "manage.py")] + list(args),
                              cwd=self.root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
        proc.output = "--- manage.py %s (exit %d)\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(args), proc.returncode, proc.stdout, proc.stderr)
        return proc


class Base(unittest.TestCase):
    def ok(self, proc):
        self.assertEqual(proc.returncode, 0, proc.output)
        return proc

    def fails(self, proc, *texts):
        self.assertNotEqual(proc.returncode, 0, proc.output)
        for text in texts:
            self.assertIn(text, proc.stdout + proc.stderr, proc.output)
        return proc

    def assert_manage_py_test(self, env, scheduled):
        """manage.py test of the shop app passes (its admin tests too, and
        the scheduled-mode admin action when scheduled)."""
        p = self.ok(self.project.manage(env, "test", "shop", "--noinput", "-v", "2"))
        self.assertIn("OK", p.stderr)
        self.assertRegex(p.stderr, r"test_changelist \(shop\.tests\.AdminTests[^)]*\) \.\.\. ok")
        if scheduled:
            self.assertRegex(p.stderr, r"test_run_scheduled_action \(shop\.tests\.AdminTests"
                                       r"[^)]*\) \.\.\. ok")


# --------------------------------------------------------------------------
# pure Python

class PurePythonTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import django
        from django.conf import settings
        if not settings.configured:
            settings.configure(
                INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                                "asyncmig.django"],
                DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            )
            django.setup()

    def test_import(self):
        from asyncmig.django import make_sql_migration  # noqa: F401
        import asyncmig
        self.assertTrue(asyncmig.__version__)

    def test_migration_name_required(self):
        from asyncmig.django import make_sql_migration
        with self.assertRaises(ValueError) as cm:  # as Label Studio's helper
            make_sql_migration("SELECT 1", "SELECT 2")
        self.assertIn("migration_name", str(cm.exception))
        with self.assertRaises(ValueError):
            make_sql_migration("SELECT 1", "SELECT 2", migration_name="  ")

    def test_keywords(self):
        from asyncmig.django import make_sql_migration
        f, b = make_sql_migration("SELECT 1", "SELECT 2", migration_name="x",
                                  queue_name="low", job_timeout=30, dependencies=("y",),
                                  sql_mysql_forwards="x", sql_mysql_backwards="y",
                                  sql_oracle_forwards="z")
        self.assertTrue(callable(f) and callable(b))
        with self.assertRaises(TypeError):
            make_sql_migration("SELECT 1", "SELECT 2", migration_name="x", sql_forward="typo")
        with self.assertRaises(ValueError):
            make_sql_migration("SELECT 1", "SELECT 2", migration_name="x", job_timeout=-1)

    def test_batched_arguments(self):
        from asyncmig.django import make_batched_migration
        f, b = make_batched_migration("t", "UPDATE t SET x = 1 WHERE id BETWEEN $1 AND $2",
                                      migration_name="x", batch_size=10, pause=0.5, key="id")
        self.assertTrue(callable(f) and callable(b))
        with self.assertRaises(ValueError):
            make_batched_migration("t", "UPDATE t SET x = 1", migration_name=None)
        with self.assertRaises(ValueError):
            make_batched_migration("t", "UPDATE t SET x = 1", migration_name="x", batch_size=0)
        with self.assertRaises(ValueError):
            make_batched_migration("t", "UPDATE t SET x = 1", migration_name="x", pause=-1)
        with self.assertRaises(ValueError):
            make_batched_migration("", "UPDATE t SET x = 1", migration_name="x")

    def test_resolve_sql(self):
        from asyncmig.django.migration import resolve_sql
        self.assertEqual(resolve_sql("SELECT 1;"), "SELECT 1;")
        self.assertEqual(resolve_sql(["SELECT 1;", " SELECT 2 ", ""]), "SELECT 1;\nSELECT 2")
        self.assertEqual(resolve_sql(("SELECT 1",)), "SELECT 1")
        self.assertEqual(resolve_sql(lambda: ["A", "B"]), "A;\nB")
        self.assertEqual(resolve_sql(lambda apps, se: "%s %s" % (apps, se), "X", "Y"), "X Y")
        self.assertEqual(resolve_sql(lambda *a: "n=%d" % len(a), 1, 2), "n=2")
        self.assertIsNone(resolve_sql(None))
        self.assertIsNone(resolve_sql(lambda: None))
        with self.assertRaises(TypeError):
            resolve_sql(42)
        with self.assertRaises(TypeError):
            resolve_sql(["SELECT 1", 2])

    def test_collect_sql_does_nothing(self):
        from asyncmig.django import make_sql_migration

        class Exploding:
            def __getattr__(self, name):
                raise AssertionError("touched the connection: %s" % name)

        class SchemaEditor:
            collect_sql = True
            connection = Exploding()

        calls = []
        f, b = make_sql_migration(lambda: calls.append(1) or "SELECT 1", "SELECT 2",
                                  migration_name="x")
        self.assertIsNone(f(None, SchemaEditor()))
        self.assertIsNone(b(None, SchemaEditor()))
        self.assertEqual(calls, [])

    def test_bool_settings(self):
        from asyncmig.django.conf import to_bool
        for v in ("true", "1", "yes", "on", "TRUE", " y ", True, 1):
            self.assertIs(to_bool(v), True, v)
        for v in ("false", "0", "no", "off", "", False, 0):
            self.assertIs(to_bool(v), False, v)
        with self.assertRaises(ValueError):
            to_bool("maybe")

    def test_label_studio_module_does_not_follow_the_graph(self):
        # the migration graph: Label Studio's own behaviour (dependencies= only)
        from django.test import override_settings
        from asyncmig.django import label_studio
        from asyncmig.django.migration import SqlMigration
        seen = []
        saved = SqlMigration.forwards
        SqlMigration.forwards = lambda self, apps, editor: seen.append(self.follow_graph())

        class Backend:
            synchronous = False

        saved_backend, saved_editor = label_studio.backend_for, label_studio._schema_editor
        label_studio.backend_for = lambda connection: Backend()
        label_studio._schema_editor = lambda backend: None
        try:
            label_studio._queue_in_asyncmig({"migration_name": "x", "sql": "SELECT 1"}, 0, None)
            with override_settings(ASYNCMIG_FOLLOW_MIGRATION_GRAPH=True):
                label_studio._queue_in_asyncmig({"migration_name": "x", "sql": "SELECT 1"}, 0, None)
        finally:
            SqlMigration.forwards = saved
            label_studio.backend_for, label_studio._schema_editor = saved_backend, saved_editor
        self.assertEqual(seen, [False, True])
        self.assertTrue(SqlMigration("y", "SELECT 1").follow_graph())
        with override_settings(ASYNCMIG_FOLLOW_MIGRATION_GRAPH=False):
            self.assertFalse(SqlMigration("y", "SELECT 1").follow_graph())

    def test_packaging_hygiene(self):
        # packaging: what "pip install ./python" leaves in the tree
        # is ignored by git and left out of the source package
        tmp = tempfile.mkdtemp(prefix="asyncmig-pkg-")
        try:
            tree = os.path.join(tmp, "asyncmig-1.2")
            os.makedirs(tree)
            for part in ("python", "debian"):
                shutil.copytree(os.path.join(REPO, part), os.path.join(tree, part),
                                ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
            shutil.copy(os.path.join(REPO, ".gitignore"), tree)
            p = subprocess.run([PY, "-m", "pip", "install", "-q", "--no-build-isolation",
                                "--no-deps", "--no-index", "--target", os.path.join(tmp, "t"),
                                "./python"], cwd=tree, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True)
            self.assertEqual(p.returncode, 0, p.stdout)
            left = sorted(n for n in os.listdir(os.path.join(tree, "python"))
                          if n == "build" or n.endswith(".egg-info"))
            self.assertTrue(left, "pip left nothing behind: nothing to check")
            if shutil.which("git"):
                subprocess.run(["git", "init", "-q", tree], check=True)
                for name in left:
                    p = subprocess.run(["git", "-C", tree, "check-ignore", "-q", "python/" + name])
                    self.assertEqual(p.returncode, 0, "python/%s is not in .gitignore" % name)
                shutil.rmtree(os.path.join(tree, ".git"))
            if shutil.which("dpkg-source"):
                p = subprocess.run(["dpkg-source", "-b", "asyncmig-1.2"], cwd=tmp,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True)
                self.assertEqual(p.returncode, 0, p.stdout)
                tarball = [n for n in os.listdir(tmp) if n.startswith("asyncmig_") and ".tar." in n]
                listing = subprocess.run(["tar", "-tf", os.path.join(tmp, tarball[0])],
                                         stdout=subprocess.PIPE, universal_newlines=True,
                                         check=True).stdout
                for name in left:
                    self.assertNotIn("python/%s" % name, listing)
            with open(os.path.join(REPO, "docs", "howto", "django.md")) as f:
                self.assertIn("pip install --no-build-isolation --no-index ./python", f.read())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_sqlite_module_not_found(self):
        from django.db import connection
        from django.test import override_settings
        from asyncmig.django import SQLiteModuleNotFound, make_sql_migration

        class SchemaEditor:
            collect_sql = False

        SchemaEditor.connection = connection
        f, b = make_sql_migration("SELECT 1", None, migration_name="x", apply_on_sqlite=True)
        with override_settings(ASYNCMIG_SQLITE_MODULE="/nonexistent/asyncmig_sqlite.so"):
            with self.assertRaises(SQLiteModuleNotFound) as cm:
                f(None, SchemaEditor())
        self.assertIn("ASYNCMIG_SQLITE_MODULE", str(cm.exception))
        self.assertIn("/nonexistent/asyncmig_sqlite.so", str(cm.exception))
        # apply_on_sqlite=False: nothing to do, no module needed
        f, b = make_sql_migration("SELECT 1", None, migration_name="x")
        with override_settings(ASYNCMIG_SQLITE_MODULE="/nonexistent/asyncmig_sqlite.so"):
            f(None, SchemaEditor())
            b(None, SchemaEditor())


# --------------------------------------------------------------------------
# PostgreSQL

@unittest.skipUnless(HAVE_PG, "run by test/django/run.sh (needs its clusters)")
class PostgresTests(Base):
    @classmethod
    def setUpClass(cls):
        cls.project = Project("pg")

    def wait_all(self, env, *names):
        return self.ok(self.project.manage(env, "asyncmig_wait", *names, "--timeout", "120"))

    def migrate_scheduled(self, db):
        """Create db and migrate it in scheduled mode, up to the end of the
        one run that is immediate (NAME5); returns the environment."""
        create_db(db)
        env = self.project.env(db, ALLOW_SCHEDULED_MIGRATIONS="true")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.wait_all(env, NAME5)
        return env

    def assert_shop(self, db, direction, names=(NAME2, NAME3, NAME4, NAME5)):
        st = pg_statuses(db)
        for name in names:
            self.assertEqual(st.get(name), ("FINISHED", direction), st)
            valid = pg_index_valid(db, SHOP_INDEXES[name])
            if direction == "forwards":
                self.assertIs(valid, True, SHOP_INDEXES[name])
            else:
                self.assertIsNone(valid, SHOP_INDEXES[name])

    def test_forwards_backwards_forwards(self):
        db = "shop_fbf"
        create_db(db)
        env = self.project.env(db)
        p = self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assertTrue(pg_query(db, "SELECT 1 FROM pg_extension WHERE extname = 'asyncmig'"))
        # execute_immediately=True: migrate ran it to its end (Label Studio's helper too)
        self.assertEqual(pg_statuses(db)[NAME5], ("FINISHED", "forwards"))
        self.assertIs(pg_index_valid(db, SHOP_INDEXES[NAME5]), True)
        self.wait_all(env)
        self.assert_shop(db, "forwards")
        # the sequence of statements was joined; names as given (the LS
        # example uses __name__); dependencies and timeout recorded
        rows = pg_query(db, "SELECT forwards_sql, backwards_sql FROM asyncmig.migration "
                            "WHERE name = %s", [NAME3])
        self.assertEqual(rows[0][0], "SELECT 1;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "
                                     "shop_item_b_idx ON shop_item (b);\nANALYZE shop_item")
        self.assertEqual(rows[0][1], "DROP INDEX CONCURRENTLY IF EXISTS shop_item_b_idx")
        rows = pg_query(db, "SELECT depends_on, timeout::text, owner::text FROM asyncmig.migration "
                            "WHERE name = %s", [NAME3])
        self.assertEqual(rows, [([NAME2], "00:10:00", "django")])
        rows = pg_query(db, "SELECT backwards_sql FROM asyncmig.migration WHERE name = %s", [NAME4])
        self.assertEqual(rows[0][0], "DROP INDEX CONCURRENTLY IF EXISTS shop_item_a_idx")

        # status command
        p = self.ok(self.project.manage(env, "asyncmig_status"))
        for name in SHOP_INDEXES:
            self.assertIn(name, p.stdout)
        self.assertIn("FINISHED", p.stdout)
        p = self.ok(self.project.manage(env, "asyncmig_status", "--json"))
        data = {r["name"]: r for r in json.loads(p.stdout)}
        self.assertEqual(data[NAME5]["status"], "FINISHED")
        self.assertEqual(data[NAME5]["direction"], "forwards")
        self.assertIsInstance(data[NAME5]["duration"], float)
        p = self.ok(self.project.manage(env, "asyncmig_status", NAME3, "--json"))
        self.assertEqual([r["name"] for r in json.loads(p.stdout)], [NAME3])

        # sqlmigrate shows and does nothing
        before = pg_query(db, "SELECT name, updated_at FROM asyncmig.migration ORDER BY name")
        self.ok(self.project.manage(env, "sqlmigrate", "shop", "0002"))
        self.ok(self.project.manage(env, "sqlmigrate", "shop", "0003", "--backwards"))
        self.assertEqual(before, pg_query(db, "SELECT name, updated_at FROM asyncmig.migration "
                                              "ORDER BY name"))

        # migrate again: nothing to do, nothing re-run
        self.ok(self.project.manage(env, "migrate", "--noinput"))

        # backwards (waiting for each: see test_revert_dependent_without_waiting)
        self.ok(self.project.manage(self.project.env(db, ASYNCMIG_WAIT_IN_MIGRATE="1"),
                                    "migrate", "shop", "0001", "--noinput"))
        self.wait_all(env)
        self.assert_shop(db, "backwards")
        # and forwards again builds again
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.wait_all(env)
        self.assert_shop(db, "forwards")
        p = self.ok(self.project.manage(env, "asyncmig_wait", NAME2, NAME5, "--timeout", "30"))

    def test_revert_dependent_without_waiting(self):
        # 0003 depends on 0002; migrate back to 0001 queues 0003's backwards
        # run, then 0002's, back to back. Both must run (0003's first).
        db = "shop_revdep"
        create_db(db)
        env = self.project.env(db)
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.wait_all(env)
        self.ok(self.project.manage(env, "migrate", "shop", "0001", "--noinput"))
        p = self.project.manage(env, "asyncmig_wait", "--timeout", "15")
        st = pg_statuses(db)
        self.assertEqual(st[NAME3], ("FINISHED", "backwards"),
                         "extension bug? a backwards run waits for its depends_on to be "
                         "FINISHED forwards: %s\n%s" % (st, p.output))
        self.ok(p)
        self.assert_shop(db, "backwards")

    def test_scheduled_mode(self):
        db = "shop_sched"
        env = self.migrate_scheduled(db)
        st = pg_statuses(db)
        for name in (NAME2, NAME3, NAME4):
            self.assertEqual(st[name], ("SCHEDULED", "forwards"), st)
            self.assertIsNone(pg_index_valid(db, SHOP_INDEXES[name]))
        self.assertEqual(st[NAME5], ("FINISHED", "forwards"))  # execute_immediately
        # nothing runs by itself
        time.sleep(1)
        self.assertEqual(pg_statuses(db)[NAME4], ("SCHEDULED", "forwards"))
        # asyncmig_status shows them
        p = self.ok(self.project.manage(env, "asyncmig_status"))
        self.assertIn("SCHEDULED", p.stdout)
        # run one and wait
        p = self.ok(self.project.manage(env, "asyncmig_run", NAME4, "--wait", "--timeout", "60"))
        self.assertIn(NAME4, p.stdout)
        self.assertEqual(pg_statuses(db)[NAME4], ("FINISHED", "forwards"))
        self.assertIs(pg_index_valid(db, SHOP_INDEXES[NAME4]), True)
        # run two; the second depends on the first
        self.ok(self.project.manage(env, "asyncmig_run", NAME2, NAME3, "--wait", "--timeout", "60"))
        self.assert_finished(db, (NAME2, NAME3))
        # unknown name: fails, naming it
        self.fails(self.project.manage(env, "asyncmig_run", "no.such.migration"),
                   "no.such.migration")
        # backwards run of one, by the command
        self.ok(self.project.manage(env, "asyncmig_run", NAME4, "--backwards", "--wait"))
        self.assertEqual(pg_statuses(db)[NAME4], ("FINISHED", "backwards"))
        self.assertIsNone(pg_index_valid(db, SHOP_INDEXES[NAME4]))

    def test_revert_scheduled(self):
        db = "shop_revsched"
        env = self.migrate_scheduled(db)
        self.assertEqual(pg_statuses(db)[NAME4], ("SCHEDULED", "forwards"))
        # reverting a SCHEDULED migration cancels it and runs its backwards SQL
        self.ok(self.project.manage(env, "migrate", "shop", "0003", "--noinput"))
        self.wait_all(env, NAME4, NAME5)
        st = pg_statuses(db)
        self.assertEqual(st[NAME4], ("FINISHED", "backwards"), st)
        self.assertEqual(st[NAME5], ("FINISHED", "backwards"), st)
        self.assertIsNone(pg_index_valid(db, SHOP_INDEXES[NAME5]))
        # forwards again, not in scheduled mode: both build
        env = self.project.env(db)
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.wait_all(env, NAME4, NAME5)
        self.assert_finished(db, (NAME4, NAME5))

    def assert_finished(self, db, names):
        st = pg_statuses(db)
        for name in names:
            self.assertEqual(st[name], ("FINISHED", "forwards"), st)
            self.assertIs(pg_index_valid(db, SHOP_INDEXES[name]), True)

    SHELL_SCRIPT = '''
from django.db import connection, transaction
from asyncmig.django import make_sql_migration

class SE:
    collect_sql = False
    connection = connection

def guc():
    with connection.cursor() as c:
        c.execute("SELECT current_setting('asyncmig.allow_scheduled_migrations', true)")
        return c.fetchone()[0]

def status(name):
    with connection.cursor() as c:
        c.execute("SELECT status FROM asyncmig.status WHERE name = %s", [name])
        return c.fetchone()[0]

f, b = make_sql_migration("CREATE INDEX CONCURRENTLY IF NOT EXISTS t_idx ON shop_item (b)",
                          None, migration_name=NAME)
print("BEFORE", guc())
with transaction.atomic():
    f(None, SE())
    print("INSIDE", guc())
print("AFTER", guc())
print("STATUS", status(NAME))
'''

    def shell(self, env, name):
        p = self.ok(self.project.manage(env, "shell", "-c",
                                        "NAME = %r\n" % name + self.SHELL_SCRIPT))
        return dict(line.split(" ", 1) for line in p.stdout.splitlines() if " " in line)

    def test_scheduled_setting_does_not_leak(self):
        db = "shop_guc"
        create_db(db)
        env = self.project.env(db, ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        out = self.shell(self.project.env(db, ALLOW_SCHEDULED_MIGRATIONS="yes"), "t.env")
        self.assertEqual(out["STATUS"], "SCHEDULED", out)
        self.assertEqual(out["INSIDE"], out["BEFORE"], out)
        self.assertEqual(out["AFTER"], out["BEFORE"], out)
        self.assertNotEqual(out["AFTER"], "on", out)
        # the Django setting wins over the environment variable
        out = self.shell(self.project.env(db, ALLOW_SCHEDULED_MIGRATIONS="yes",
                                          ALLOW_SCHEDULED_MIGRATIONS_SETTING="0"), "t.setting")
        self.assertIn(out["STATUS"], ("STARTED", "IN PROGRESS", "FINISHED"), out)
        self.ok(self.project.manage(self.project.env(db), "asyncmig_wait", "t.setting",
                                    "--timeout", "60"))

    def test_wait_in_migrate(self):
        db = "shop_waitmig"
        create_db(db)
        env = self.project.env(db, ASYNCMIG_WAIT_IN_MIGRATE="true")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        # no asyncmig_wait: migrate itself waited
        self.assert_shop(db, "forwards")
        # a migration that fails when it runs: migrate fails, naming it
        env = self.project.env(db, ASYNCMIG_WAIT_IN_MIGRATE="true", extra_apps=["bad"])
        p = self.fails(self.project.manage(env, "migrate", "--noinput"),
                       "bad.0001_nonatomic", "no_such_column")
        self.assertEqual(pg_statuses(db)["bad.0001_nonatomic"], ("ERROR", "forwards"))
        # backwards waits too
        env = self.project.env(db, ASYNCMIG_WAIT_IN_MIGRATE="true")
        self.ok(self.project.manage(env, "migrate", "shop", "0003", "--noinput"))
        st = pg_statuses(db)
        self.assertEqual(st[NAME4], ("FINISHED", "backwards"))
        self.assertEqual(st[NAME5], ("FINISHED", "backwards"))

    def test_failures_reported_by_wait(self):
        # the migration graph: bad.0002 Django-depends on bad.0001, so it waits
        # for it as dependencies= would: 0001 ending ERROR ends it ERROR,
        # naming 0001 (0002's own SQL, which would fail on no_such_table,
        # never runs)
        db = "shop_bad"
        create_db(db)
        env = self.project.env(db, extra_apps=["bad"])
        p = self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assertIn("bad.0002_atomic queued (STARTED) after bad.0001_nonatomic", p.stdout,
                      p.output)
        rows = pg_query(db, "SELECT depends_on FROM asyncmig.migration WHERE name = %s",
                        ["bad.0002_atomic"])
        self.assertEqual(rows, [(["bad.0001_nonatomic"],)])
        # without names: fails, naming the project's migrations in ERROR;
        # 0002 ended ERROR because its dependency did, as with dependencies=
        p = self.fails(self.project.manage(env, "asyncmig_wait", "--timeout", "60"),
                       "bad.0001_nonatomic", "bad.0002_atomic",
                       'dependency "bad.0001_nonatomic" ended in ERROR')
        st = pg_statuses(db)
        self.assertEqual(st["bad.0001_nonatomic"][0], "ERROR", st)
        self.assertEqual(st["bad.0002_atomic"][0], "ERROR", st)
        rows = pg_query(db, "SELECT meta->'error'->>'message' FROM asyncmig.migration "
                            "WHERE name = %s", ["bad.0002_atomic"])
        self.assertNotIn("no_such_table", rows[0][0] or "", rows)
        # off: ASYNCMIG_FOLLOW_MIGRATION_GRAPH = False (dependencies= only)
        db = "shop_bad_nograph"
        create_db(db)
        env = self.project.env(db, extra_apps=["bad"], ASYNCMIG_FOLLOW_MIGRATION_GRAPH="false")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        p = self.fails(self.project.manage(env, "asyncmig_wait", "--timeout", "60"),
                       "bad.0001_nonatomic", "bad.0002_atomic")
        st = pg_statuses(db)
        self.assertEqual(st["bad.0001_nonatomic"][0], "ERROR", st)
        self.assertEqual(st["bad.0002_atomic"][0], "ERROR", st)
        rows = pg_query(db, "SELECT meta->'error'->>'message' FROM asyncmig.migration "
                            "WHERE name = %s", ["bad.0002_atomic"])
        self.assertIn("no_such_table", rows[0][0] or "", rows)
        # named: fails as well, after the fact
        self.fails(self.project.manage(env, "asyncmig_wait", "bad.0002_atomic", "--timeout", "10"),
                   "bad.0002_atomic")
        self.ok(self.project.manage(env, "asyncmig_wait", NAME5, "--timeout", "10"))
        p = self.ok(self.project.manage(env, "asyncmig_status"))
        self.assertIn("no_such_column", p.stdout)
        p = self.ok(self.project.manage(env, "asyncmig_status", "--json"))
        data = {r["name"]: r for r in json.loads(p.stdout)}
        self.assertIn("no_such_table", data["bad.0002_atomic"]["error"])

    def test_atomic_migration_that_fails_leaves_no_row(self):
        db = "shop_rollback"
        create_db(db)
        env = self.project.env(db)
        self.ok(self.project.manage(env, "migrate", "shop", "0001", "--noinput"))
        env = self.project.env(db, extra_apps=["rollback"])
        self.fails(self.project.manage(env, "migrate", "rollback", "--noinput"),
                   "no_such_function_asyncmig_test")
        self.assertFalse(pg_query(db, "SELECT 1 FROM pg_extension WHERE extname = 'asyncmig'")
                         and pg_query(db, "SELECT 1 FROM asyncmig.migration "
                                          "WHERE name = 'rollback.0001_fails'"))
        time.sleep(1.5)
        self.assertIsNone(pg_index_valid(db, "rollback_idx"))
        # now with the extension in place already
        self.ok(self.project.manage(self.project.env(db), "migrate", "shop", "--noinput"))
        self.fails(self.project.manage(env, "migrate", "rollback", "--noinput"),
                   "no_such_function_asyncmig_test")
        self.assertEqual(pg_query(db, "SELECT count(*) FROM asyncmig.migration "
                                      "WHERE name = 'rollback.0001_fails'"), [(0,)])
        time.sleep(1.5)
        self.assertIsNone(pg_index_valid(db, "rollback_idx"))

    def test_revert_while_running(self):
        db = "shop_slow"
        create_db(db)
        env = self.project.env(db, extra_apps=["slow"])
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        deadline = time.time() + 20
        while pg_statuses(db)["slow.0001_slow"][0] != "IN PROGRESS" and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(pg_statuses(db)["slow.0001_slow"], ("IN PROGRESS", "forwards"))
        # the deploy script's wait gives up
        t0 = time.time()
        self.fails(self.project.manage(env, "asyncmig_wait", "slow.0001_slow", "--timeout", "1"))
        self.assertLess(time.time() - t0, 15)
        t0 = time.time()
        self.ok(self.project.manage(env, "migrate", "slow", "zero", "--noinput"))
        self.ok(self.project.manage(env, "asyncmig_wait", "slow.0001_slow", "--timeout", "60"))
        self.assertLess(time.time() - t0, 25, "the forwards run was not canceled")
        self.assertEqual(pg_statuses(db)["slow.0001_slow"], ("FINISHED", "backwards"))
        self.assertIsNone(pg_index_valid(db, "slow_idx"))

    def test_manage_py_test(self):
        db = "shop_tr"
        create_db(db)
        for extra in ({}, {"ALLOW_SCHEDULED_MIGRATIONS": "true"}):
            env = self.project.env(db, **extra)
            self.assert_manage_py_test(env, scheduled=bool(extra))
            self.assertFalse(db_exists("test_" + db), "test database left behind")
        # no extension in template1 and not allowed to create it: clear error
        env = self.project.env(db, ASYNCMIG_CREATE_EXTENSION="False")
        self.fails(self.project.manage(env, "test", "shop", "--noinput"),
                   "CREATE EXTENSION asyncmig", "template1")
        pg_query("postgres", 'DROP DATABASE IF EXISTS "test_%s" WITH (FORCE)' % db)

    def test_extension_missing(self):
        db = "shop_noext"
        create_db(db)
        env = self.project.env(db, ASYNCMIG_CREATE_EXTENSION="0")
        self.fails(self.project.manage(env, "migrate", "--noinput"),
                   "CREATE EXTENSION asyncmig", "ASYNCMIG_CREATE_EXTENSION", db)
        self.fails(self.project.manage(env, "asyncmig_status"), "CREATE EXTENSION asyncmig")
        self.fails(self.project.manage(env, "asyncmig_wait"), "CREATE EXTENSION asyncmig")
        # as a role that may not create it
        db = "shop_noext_app"
        create_db(db, owner="app")
        env = self.project.env(db, DB_USER="app")
        self.fails(self.project.manage(env, "migrate", "--noinput"),
                   "CREATE EXTENSION asyncmig", "superuser")

    def test_ordinary_role(self):
        db = "shop_app"
        create_db(db, owner="app")
        pg_query(db, "CREATE EXTENSION asyncmig")
        grant_app(db)
        env = self.project.env(db, DB_USER="app", ASYNCMIG_CREATE_EXTENSION="false",
                               ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assert_shop(db, "forwards")
        owners = pg_query(db, "SELECT DISTINCT owner::text FROM asyncmig.migration")
        self.assertEqual(owners, [("app",)])
        self.ok(self.project.manage(env, "migrate", "shop", "0003", "--noinput"))
        self.assertEqual(pg_statuses(db)[NAME4], ("FINISHED", "backwards"))
        # without the grants: a clear error
        db = "shop_app_nogrant"
        create_db(db, owner="app")
        pg_query(db, "CREATE EXTENSION asyncmig")
        env = self.project.env(db, DB_USER="app", ASYNCMIG_CREATE_EXTENSION="false")
        self.fails(self.project.manage(env, "migrate", "--noinput"), "GRANT USAGE ON SCHEMA asyncmig")

    def test_backwards_without_row(self):
        # applied with --fake (or by Label Studio's own helper): no row in
        # asyncmig, not even the extension; the backwards SQL still runs
        db = "shop_fake"
        create_db(db)
        env = self.project.env(db, ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.ok(self.project.manage(env, "migrate", "shop", "0001", "--noinput"))
        self.ok(self.project.manage(env, "migrate", "shop", "0002", "--fake", "--noinput"))
        pg_query(db, "CREATE INDEX shop_item_ab_idx ON shop_item (a, b)")
        self.assertFalse(pg_query(db, "SELECT 1 FROM pg_extension WHERE extname = 'asyncmig'"))
        self.ok(self.project.manage(env, "migrate", "shop", "0001", "--noinput"))
        self.assertEqual(pg_statuses(db)[NAME2], ("FINISHED", "backwards"))
        self.assertIsNone(pg_index_valid(db, "shop_item_ab_idx"))
        # and forwards again builds it
        self.ok(self.project.manage(env, "migrate", "shop", "0002", "--noinput"))
        self.assertIs(pg_index_valid(db, "shop_item_ab_idx"), True)

    def test_missing_dependency(self):
        db = "shop_deps"
        create_db(db)
        self.ok(self.project.manage(self.project.env(db), "migrate", "shop", "--noinput"))
        # synchronous: an error at once, naming it; nothing recorded
        env = self.project.env(db, extra_apps=["deps"], ASYNCMIG_WAIT_IN_MIGRATE="1")
        t0 = time.time()
        self.fails(self.project.manage(env, "migrate", "deps", "--noinput", timeout=60),
                   "never.scheduled")
        self.assertLess(time.time() - t0, 30)
        self.assertNotIn("deps.0001_missing_dep", pg_statuses(db))
        # queued: a wait gives up after ASYNCMIG_DEPENDENCY_TIMEOUT, says what
        # it waited for, and the row ends ERROR
        env = self.project.env(db, extra_apps=["deps"])
        p = self.ok(self.project.manage(env, "migrate", "deps", "--noinput"))
        self.assertIn("never.scheduled, which is not recorded", p.stderr, p.output)
        self.assertEqual(pg_statuses(db)["deps.0001_missing_dep"], ("STARTED", "forwards"))
        env = self.project.env(db, extra_apps=["deps"], ASYNCMIG_DEPENDENCY_TIMEOUT="3")
        p = self.fails(self.project.manage(env, "asyncmig_wait", "deps.0001_missing_dep",
                                           "--timeout", "60", timeout=90),
                       "never.scheduled (missing)", "gave up")
        self.assertIn("waits for never.scheduled (missing)", p.stdout, p.output)
        time.sleep(0.5)
        self.assertEqual(pg_statuses(db)["deps.0001_missing_dep"], ("ERROR", "forwards"))

    def test_ci_setting_runs_in_migrate(self):
        # Label Studio's settings.CI: synchronous, even in scheduled mode
        db = "shop_ci"
        create_db(db)
        env = self.project.env(db, CI="true", ALLOW_SCHEDULED_MIGRATIONS="true")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assert_shop(db, "forwards")

    def test_start_delay(self):
        db = "shop_delay"
        create_db(db)
        env = self.project.env(db, MIGRATION_JOB_START_DELAY_SECONDS="3600")
        self.ok(self.project.manage(env, "migrate", "shop", "0002", "--noinput"))
        rows = pg_query(db, "SELECT status, not_before > now() + interval '50 minutes' "
                            "FROM asyncmig.migration WHERE name = %s", [NAME2])
        self.assertEqual(rows, [("STARTED", True)])
        self.assertIsNone(pg_index_valid(db, SHOP_INDEXES[NAME2]))
        # execute_immediately ignores the delay (without Django's graph
        # order: with it, 0005 would wait for its delayed ancestors)
        env = self.project.env(db, MIGRATION_JOB_START_DELAY_SECONDS="3600",
                               ASYNCMIG_FOLLOW_MIGRATION_GRAPH="0")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assertEqual(pg_statuses(db)[NAME5], ("FINISHED", "forwards"))

    def test_batched_migration(self):
        db = "shop_batch"
        create_db(db)
        env = self.project.env(db, extra_apps=["batch"], ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.ok(self.project.manage(env, "migrate", "shop", "0001", "--noinput"))
        pg_query(db, "CREATE EXTENSION IF NOT EXISTS asyncmig")
        if not pg_query(db, "SELECT 1 FROM pg_proc WHERE proname = 'schedule_batches' "
                            "AND pronamespace = 'asyncmig'::regnamespace"):
            self.skipTest("asyncmig.schedule_batches is not in this build of the extension")
        self.ok(self.project.manage(env, "migrate", "batch", "--noinput"))
        self.assertEqual(pg_statuses(db)["batch.0001_bump"], ("FINISHED", "forwards"))
        # every row updated exactly once
        self.assertEqual(pg_query(db, "SELECT count(*), count(*) FILTER (WHERE a >= 1000000 "
                                      "AND a < 2000000) FROM shop_item"), [(5000, 5000)])
        self.ok(self.project.manage(env, "migrate", "batch", "zero", "--noinput"))
        self.assertEqual(pg_statuses(db)["batch.0001_bump"], ("FINISHED", "backwards"))
        self.assertEqual(pg_query(db, "SELECT count(*) FROM shop_item WHERE a >= 1000000"), [(0,)])

    @unittest.skipUnless(PORT_NOPRELOAD, "no second cluster")
    def test_worker_not_preloaded(self):
        db = "shop_nopreload"
        create_db(db, port=PORT_NOPRELOAD)
        env = self.project.env(db, port=PORT_NOPRELOAD)
        p = self.ok(self.project.manage(env, "migrate", "shop", "0002", "--noinput"))
        self.assertIn("WARNING", p.stderr, p.output)
        self.assertIn("shared_preload_libraries", p.stderr, p.output)
        st = pg_statuses(db, port=PORT_NOPRELOAD)
        self.assertEqual(st[NAME2], ("STARTED", "forwards"))
        env = self.project.env(db, port=PORT_NOPRELOAD, ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.fails(self.project.manage(env, "migrate", "--noinput"), "shared_preload_libraries")


# --------------------------------------------------------------------------
# PostgreSQL, as the application: a role that is no superuser, with exactly
# the grants of docs/grants.sql (run.sh ran them in template1)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    """Just enough of the W3C WebDriver protocol (chromedriver), over plain
    HTTP with the standard library."""

    def __init__(self, tmpdir):
        self.port = free_port()
        self.log = open(os.path.join(tmpdir, "chromedriver.log"), "w")
        self.proc = subprocess.Popen(["chromedriver", "--port=%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 30
        while True:
            try:
                self._req("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--user-data-dir=" + tempfile.mkdtemp(dir=tmpdir),
                     "--window-size=1400,900"]}}}}
        self.session = self._req("POST", "/session", caps)["sessionId"]

    def _req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read().decode())["value"]

    def cmd(self, method, path, body=None):
        return self._req(method, "/session/%s%s" % (self.session, path), body)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(script)
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError("timed out waiting in the browser for: %s" % script)

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))
        return path

    def quit(self):
        try:
            self.cmd("DELETE", "")
        except OSError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@unittest.skipUnless(HAVE_APP, "run by test/django/run.sh (needs its app cluster)")
class AppRoleTests(Base):
    """What the application does, as a role with exactly docs/grants.sql."""

    @classmethod
    def setUpClass(cls):
        cls.project = Project("app")

    def app_db(self, db):
        """db owned by the app role; the grants run by a superuser in it, as
        the documentation says (template1 had them already)."""
        create_db(db, port=PORT_APP, owner=APP_ROLE)
        p = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v",
                            "ON_ERROR_STOP=1", "-h", SOCK_APP, "-p", str(PORT_APP), "-U",
                            "postgres", "-d", db, "-v", "app_role=" + APP_ROLE, "-f", GRANTS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        rows = pg_query(db, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [APP_ROLE],
                        port=PORT_APP)
        self.assertEqual(rows, [(False,)])
        return db

    def env(self, db, **extra):
        return self.project.env(db, port=PORT_APP, DB_USER=APP_ROLE,
                                ASYNCMIG_CREATE_EXTENSION="false", **extra)

    def statuses(self, db):
        return pg_statuses(db, port=PORT_APP)

    def log_since(self, offset):
        with open(APP_LOG, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def log_size(self):
        return os.path.getsize(APP_LOG)

    def test_migrate_wait_and_dependency_give_up(self):
        # the app role sees what it waits for
        db = self.app_db("app_deps")
        start = self.log_size()
        env = self.env(db)
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        p = self.ok(self.project.manage(env, "asyncmig_wait", "--timeout", "120"))
        for name in SHOP_INDEXES:
            self.assertEqual(self.statuses(db)[name], ("FINISHED", "forwards"))
            self.assertIs(pg_index_valid_on(db, SHOP_INDEXES[name], PORT_APP), True)
        owners = pg_query(db, "SELECT DISTINCT owner::text FROM asyncmig.migration",
                          port=PORT_APP)
        self.assertEqual(owners, [(APP_ROLE,)])
        # queued behind a dependency never scheduled: the wait gives up with
        # the message a superuser gets (the old code hung until --timeout)
        denv = self.env(db, extra_apps=["deps"])
        p = self.ok(self.project.manage(denv, "migrate", "deps", "--noinput"))
        denv = self.env(db, extra_apps=["deps"], ASYNCMIG_DEPENDENCY_TIMEOUT="3")
        p = self.fails(self.project.manage(denv, "asyncmig_wait", "deps.0001_missing_dep",
                                           "--timeout", "40", timeout=90),
                       "gave up", "never.scheduled (missing)")
        self.assertIn("waits for never.scheduled (missing)", p.stdout, p.output)
        self.assertEqual(self.statuses(db)["deps.0001_missing_dep"], ("ERROR", "forwards"))
        # and through migrate itself (ASYNCMIG_WAIT_IN_MIGRATE): its own
        # dependency check refuses at once
        log = self.log_since(start)
        self.assertNotIn("permission denied", log, "the app role was refused something:\n" + log)

    def test_commands_say_what_happened(self):
        # output: migrate says queued / waits; waits print progress
        db = self.app_db("app_output")
        env = self.env(db)
        p = self.ok(self.project.manage(env, "migrate", "shop", "0002", "--noinput"))
        self.assertRegex(p.stdout, r"Applying shop\.0002_item_ab_idx_async\.\.\.\n\s+asyncmig: "
                                   + re.escape(NAME2) + r" queued \((STARTED|IN PROGRESS)\)"
                                   r"[^\n]*migrate does not wait for it[^\n]*\n OK", p.output)
        # waiting in migrate: queued, then how it ended, then OK
        wenv = self.env(db, ASYNCMIG_WAIT_IN_MIGRATE="1")
        p = self.ok(self.project.manage(wenv, "migrate", "shop", "0004", "--noinput"))
        self.assertRegex(p.stdout, re.escape(NAME3) + r" queued \([A-Z ]+\)[^\n]*; migrate waits",
                         p.output)
        self.assertRegex(p.stdout, re.escape(NAME3) + r" FINISHED \(forwards\) in [0-9.]+ s\n OK",
                         p.output)
        # a wait prints where it is every ASYNCMIG_PROGRESS_INTERVAL seconds
        senv = self.env(db, extra_apps=["sleepy"], ASYNCMIG_PROGRESS_INTERVAL="1")
        self.ok(self.project.manage(senv, "migrate", "sleepy", "--noinput"))
        p = self.ok(self.project.manage(senv, "asyncmig_wait", "sleepy.0001_sleep", "-v", "2",
                                        "--timeout", "60"))
        lines = [l for l in p.stdout.splitlines() if "sleepy.0001_sleep IN PROGRESS" in l]
        self.assertGreaterEqual(len(lines), 2, p.output)
        self.assertRegex(p.stdout, r"sleepy\.0001_sleep FINISHED \(forwards\) in [0-9.]+ s",
                         p.output)
        self.assertIn("all done", p.stdout)
        # unnamed: what it waits for and what ended
        self.ok(self.project.manage(senv, "asyncmig_run", "sleepy.0001_sleep"))
        p = self.ok(self.project.manage(senv, "asyncmig_wait", "--timeout", "60"))
        self.assertIn("waiting for sleepy.0001_sleep", p.stdout, p.output)
        self.assertRegex(p.stdout, r"ended: [^\n]*sleepy\.0001_sleep FINISHED \(forwards\)",
                         p.output)

    def test_run_restart(self):
        # asyncmig_run --restart runs a batched migration
        # from its first key again (batch_sql adds 1000000: twice now)
        db = self.app_db("app_restart")
        env = self.env(db, extra_apps=["batch"], ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assertEqual(self.statuses(db)["batch.0001_bump"], ("FINISHED", "forwards"))
        p = self.ok(self.project.manage(env, "asyncmig_run", "batch.0001_bump", "--restart",
                                        "--wait", "--timeout", "60"))
        self.assertIn("batch.0001_bump FINISHED (forwards)", p.stdout, p.output)
        self.assertEqual(pg_query(db, "SELECT count(*), count(*) FILTER (WHERE a >= 2000000 "
                                      "AND a < 3000000) FROM shop_item", port=PORT_APP),
                         [(5000, 5000)])
        self.fails(self.project.manage(env, "asyncmig_run", "batch.0001_bump", "--restart",
                                       "--backwards"), "--restart")

    def test_admin_in_chromium(self):
        # the admin page at 1400 px, and an action with
        # its confirmation page and its result, in headless Chromium
        if not (shutil.which("chromium") and shutil.which("chromedriver")):
            if BROWSER == "required":
                self.fail("chromium and chromedriver are missing (run.sh installs them)")
            self.skipTest("no chromium/chromedriver in this chroot: the admin page is "
                          "checked in headless Chromium on the host only")
        db = self.app_db("app_admin")
        env = self.env(db, extra_apps=["bad", "batch"])
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.fails(self.project.manage(self.env(db, extra_apps=["bad", "batch"],
                                                ASYNCMIG_DEPENDENCY_TIMEOUT="2"),
                                       "asyncmig_wait", "bad.0001_nonatomic", "bad.0002_atomic",
                                       "--timeout", "60"))
        # a migration that stays queued (its dependency is never scheduled)
        env = self.env(db, extra_apps=["bad", "batch", "deps"])
        self.ok(self.project.manage(env, "migrate", "deps", "--noinput"))
        self.assertEqual(self.statuses(db)["bad.0001_nonatomic"][0], "ERROR")
        self.ok(self.project.manage(dict(env, DJANGO_SUPERUSER_PASSWORD="pw"),
                                    "createsuperuser", "--noinput", "--username", "admin",
                                    "--email", "admin@example.com"))
        port = free_port()
        tmp = tempfile.mkdtemp(prefix="asyncmig-admin-", dir="/tmp")
        server_log = open(os.path.join(tmp, "runserver.log"), "w")
        server = subprocess.Popen(
            [PY, os.path.join(self.project.root, "manage.py"), "runserver", "--noreload",
             "127.0.0.1:%d" % port], cwd=self.project.root, env=dict(env, DJANGO_DEBUG="1"),
            stdout=server_log, stderr=subprocess.STDOUT)
        browser = None
        base = "http://127.0.0.1:%d" % port
        try:
            deadline = time.time() + 30
            while True:
                try:
                    urllib.request.urlopen(base + "/admin/login/", timeout=5).read()
                    break
                except OSError:
                    if time.time() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.3)
            browser = WebDriver(tmp)
            changelist = base + "/admin/asyncmig/asyncmigration/"
            browser.get(base + "/admin/login/?next=/admin/asyncmig/asyncmigration/")
            browser.js("document.getElementById('id_username').value = 'admin';"
                       "document.getElementById('id_password').value = 'pw';"
                       "document.getElementById('login-form').submit();")
            browser.wait_for("return location.pathname == '/admin/asyncmig/asyncmigration/' "
                             "&& document.readyState == 'complete'")
            shot = browser.screenshot("/tmp/asyncmig-admin-changelist.png")
            cols = browser.js("""
                var r = {width: window.innerWidth};
                // the right edge of a column, or 99999 when it is hidden
                // in the table's scrolled-off part
                document.querySelectorAll('#result_list thead th').forEach(function (th) {
                    var box = th.closest('.results') || document.body;
                    var right = th.getBoundingClientRect().right;
                    if (right > box.getBoundingClientRect().right + 1) right = 99999;
                    r[th.innerText.trim().toLowerCase()] = right;
                });
                r.bar = document.querySelectorAll('#result_list progress').length;
                r.crumbs = (document.querySelector('.breadcrumbs') || {}).innerText;
                return r;""")
            self.assertEqual(cols["width"], 1400, cols)
            for column in ("progress", "error"):
                self.assertIn(column, cols, cols)
                self.assertLessEqual(cols[column], 1400, "%s off-screen (see %s): %s"
                                     % (column, shot, cols))
            self.assertGreater(cols["bar"], 0, cols)
            self.assertNotIn("Async migrations \u203a Async migrations", cols["crumbs"], cols)
            # run again: the confirmation page, then the result
            browser.js("""
                document.querySelector('input[name=_selected_action][value="bad.0001_nonatomic"]').checked = true;
                document.querySelector('select[name=action]').value = 'run_again';
                document.getElementById('changelist-form').submit();""")
            browser.wait_for("return document.getElementById('asyncmig-confirm') != null")
            text = browser.js("return document.getElementById('asyncmig-confirm').innerText")
            self.assertIn("bad.0001_nonatomic (ERROR, forwards)", text)
            browser.screenshot("/tmp/asyncmig-admin-confirm.png")
            browser.js("document.getElementById('asyncmig-confirm-yes').click()")
            browser.wait_for("return document.querySelector('.messagelist') != null")
            msg = browser.js("return document.querySelector('.messagelist').innerText")
            self.assertRegex(msg, r"Queued again: bad\.0001_nonatomic \(now (STARTED|IN PROGRESS"
                                  r"|ERROR)\)")
            # cancel: deps.0001 waits for a dependency never scheduled
            browser.get(changelist)
            browser.js("""
                document.querySelector('input[name=_selected_action][value="deps.0001_missing_dep"]').checked = true;
                document.querySelector('select[name=action]').value = 'cancel';
                document.getElementById('changelist-form').submit();""")
            browser.wait_for("return document.getElementById('asyncmig-confirm') != null")
            text = browser.js("return document.getElementById('asyncmig-confirm').innerText")
            self.assertRegex(text, r"deps\.0001_missing_dep \(STARTED, forwards\)",
                             "%s\n%s" % (text, self.statuses(db)))
            browser.js("document.getElementById('asyncmig-confirm-yes').click()")
            browser.wait_for("return document.querySelector('.messagelist') != null")
            msg = browser.js("return document.querySelector('.messagelist').innerText")
            self.assertIn("Canceled: deps.0001_missing_dep (now ERROR)", msg)
            self.assertEqual(self.statuses(db)["deps.0001_missing_dep"], ("ERROR", "forwards"))
            # the detail page: the whole error and the SQL
            browser.get(changelist + "bad.0001_nonatomic/change/")
            page = browser.wait_for("return document.readyState == 'complete' && "
                                    "document.body.innerText")
            self.assertIn("no_such_column", page)
            self.assertIn("CREATE INDEX CONCURRENTLY bad_idx ON shop_item (no_such_column)", page)
            browser.screenshot("/tmp/asyncmig-admin-detail.png")
        finally:
            if browser is not None:
                browser.quit()
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
            server_log.close()


# --------------------------------------------------------------------------
# SQLite

@unittest.skipUnless(os.path.exists(SQLITE_MODULE), "no %s" % SQLITE_MODULE)
class SQLiteTests(Base):
    @classmethod
    def setUpClass(cls):
        cls.project = Project("sqlite")
        cls.dir = os.path.join(cls.project.root, "db")
        os.makedirs(cls.dir, exist_ok=True)

    def fresh(self, name):
        path = os.path.join(self.dir, name + ".sqlite3")
        if os.path.exists(path):
            os.unlink(path)
        return path

    def env(self, path, **kw):
        if os.environ.get("ASYNCMIG_TEST_SQLITE_MODULE"):
            kw.setdefault("ASYNCMIG_SQLITE_MODULE", SQLITE_MODULE)
        return self.project.env(path, engine="sqlite", **kw)

    def assert_shop(self, path, direction):
        st = sqlite_statuses(path)
        self.assertNotIn(NAME2, st)  # apply_on_sqlite=False: nothing recorded
        self.assertFalse(sqlite_has_index(path, "shop_item_ab_idx"))
        for name in (NAME3, NAME4, NAME5):
            self.assertEqual(st.get(name), ("FINISHED", direction), st)
            self.assertEqual(sqlite_has_index(path, SHOP_INDEXES[name]), direction == "forwards")

    def test_forwards_backwards_forwards(self):
        path = self.fresh("fbf")
        env = self.env(path)
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assert_shop(path, "forwards")
        self.ok(self.project.manage(env, "asyncmig_wait"))
        self.ok(self.project.manage(env, "asyncmig_wait", NAME3, NAME4))
        p = self.ok(self.project.manage(env, "asyncmig_status"))
        self.assertIn(NAME3, p.stdout)
        p = self.ok(self.project.manage(env, "asyncmig_status", "--json"))
        self.assertEqual({r["name"]: r["status"] for r in json.loads(p.stdout)},
                         {NAME3: "FINISHED", NAME4: "FINISHED", NAME5: "FINISHED"})
        self.ok(self.project.manage(env, "sqlmigrate", "shop", "0003"))
        self.ok(self.project.manage(env, "migrate", "shop", "0001", "--noinput"))
        self.assert_shop(path, "backwards")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assert_shop(path, "forwards")

    def test_errors(self):
        path = self.fresh("bad")
        env = self.env(path, extra_apps=["bad"])
        p = self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assertIn("bad.0001_nonatomic", p.stderr)
        st = sqlite_statuses(path)
        self.assertEqual(st["bad.0001_nonatomic"][0], "ERROR", st)
        self.assertEqual(st["bad.0002_atomic"][0], "ERROR", st)
        self.fails(self.project.manage(env, "asyncmig_wait", "bad.0001_nonatomic"),
                   "bad.0001_nonatomic")
        self.ok(self.project.manage(env, "asyncmig_wait", NAME3))
        self.fails(self.project.manage(env, "asyncmig_wait"), "bad.0002_atomic")
        self.ok(self.project.manage(self.env(path), "asyncmig_wait"))  # bad not installed
        p = self.ok(self.project.manage(env, "asyncmig_status", "--json"))
        data = {r["name"]: r for r in json.loads(p.stdout)}
        self.assertIn("no_such_column", data["bad.0001_nonatomic"]["error"] or "")
        # with ASYNCMIG_WAIT_IN_MIGRATE, migrate fails
        path = self.fresh("bad_wait")
        env = self.env(path, extra_apps=["bad"], ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.fails(self.project.manage(env, "migrate", "--noinput"), "bad.0001_nonatomic")

    def test_atomic_migration_that_fails_leaves_no_row(self):
        path = self.fresh("rollback")
        env = self.env(path, extra_apps=["rollback"])
        self.ok(self.project.manage(env, "migrate", "shop", "--noinput"))
        self.fails(self.project.manage(env, "migrate", "rollback", "--noinput"),
                   "no_such_function_asyncmig_test")
        self.assertNotIn("rollback.0001_fails", sqlite_statuses(path))
        self.assertFalse(sqlite_has_index(path, "rollback_idx"))

    def test_scheduled_mode(self):
        path = self.fresh("sched")
        env = self.env(path, ALLOW_SCHEDULED_MIGRATIONS="true")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        st = sqlite_statuses(path)
        self.assertEqual(st[NAME3], ("SCHEDULED", "forwards"), st)
        self.assertEqual(st[NAME4], ("SCHEDULED", "forwards"), st)
        self.assertEqual(st[NAME5], ("FINISHED", "forwards"), st)
        self.assertFalse(sqlite_has_index(path, "shop_item_a_idx"))
        p = self.ok(self.project.manage(env, "asyncmig_run", NAME4, "--wait"))
        self.assertIn("FINISHED", p.stdout)
        self.assertEqual(sqlite_statuses(path)[NAME4], ("FINISHED", "forwards"))
        self.assertTrue(sqlite_has_index(path, "shop_item_a_idx"))

    def test_batched_migration(self):
        conn = sqlite3.connect(":memory:")
        conn.enable_load_extension(True)
        conn.execute("SELECT load_extension(?, 'sqlite3_asyncmigsqlite_init')", [SQLITE_MODULE])
        has = conn.execute("SELECT 1 FROM pragma_function_list "
                           "WHERE name = 'asyncmig_schedule_batches'").fetchone()
        conn.close()
        if not has:
            self.skipTest("this asyncmig_sqlite module has no asyncmig_schedule_batches")
        path = self.fresh("batch")
        env = self.env(path, extra_apps=["batch"], ASYNCMIG_WAIT_IN_MIGRATE="1")
        self.ok(self.project.manage(env, "migrate", "--noinput"))
        self.assertEqual(sqlite_statuses(path)["batch.0001_bump"], ("FINISHED", "forwards"))
        conn = sqlite3.connect(path)
        self.assertEqual(conn.execute("SELECT count(*), sum(a >= 1000000 AND a < 2000000) "
                                      "FROM shop_item").fetchone(), (5000, 5000))
        conn.close()

    def test_module_not_found(self):
        path = self.fresh("nomodule")
        env = self.env(path, ASYNCMIG_SQLITE_MODULE="/nonexistent/asyncmig_sqlite.so")
        self.fails(self.project.manage(env, "migrate", "--noinput"),
                   "/nonexistent/asyncmig_sqlite.so", "ASYNCMIG_SQLITE_MODULE", "make install")

    def test_manage_py_test(self):
        path = self.fresh("tr")
        for extra in ({}, {"ALLOW_SCHEDULED_MIGRATIONS": "true"}):
            env = self.env(path, **extra)
            self.assert_manage_py_test(env, scheduled=bool(extra))


if __name__ == "__main__":
    unittest.main(verbosity=2)
