"""Writes real Django projects into a directory, for test_django.py.

One project layout, configured by environment variables at run time
(DB_ENGINE, DB_NAME, DB_USER, DB_HOST, DB_PORT, EXTRA_APPS), with apps:

shop      0001 a model; 0002 the Label Studio example, copied, only the import
          changed (atomic = False, CONCURRENTLY, apply_on_sqlite=False);
          0003 atomic, statements as a list, a callable backwards, dependencies,
          job_timeout, queue_name, vendor keywords, apply_on_sqlite=True;
          0004 execute_immediately=False (SCHEDULED in scheduled mode);
          0005 execute_immediately=True, apply_on_sqlite=True.
bad       0001 a migration whose SQL fails when it runs (atomic = False),
          0002 one that fails in an atomic migration, apply_on_sqlite=True
          (Django-depends on 0001: on PostgreSQL it waits for 0001).
rollback  0001 an atomic migration that schedules, then fails: no row.
slow      0001 a migration that runs for a while (to revert while it runs).
deps      0001 a migration that depends on an asyncmig name never scheduled.
sleepy    0001 a migration that sleeps 4 s, then builds an index (progress).
batch     0001 a batched data migration (make_batched_migration).
"""

import os
import textwrap

SETTINGS = '''
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = "asyncmig-test"
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"  # runserver serves the admin's CSS
STATIC_URL = "/static/"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "asyncmig.django",
    "shop",
] + [a for a in os.environ.get("EXTRA_APPS", "").split(",") if a]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "proj.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
if os.environ.get("DB_ENGINE", "postgresql") == "sqlite":
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DB_NAME"],
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["DB_NAME"],
        "USER": os.environ.get("DB_USER", "django"),
        "HOST": os.environ["DB_HOST"],
        "PORT": os.environ["DB_PORT"],
    }}
for _name in ("ALLOW_SCHEDULED_MIGRATIONS_SETTING",):
    if _name in os.environ:
        ALLOW_SCHEDULED_MIGRATIONS = os.environ[_name] == "1"
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"asyncmig": {"handlers": ["console"], "level": "INFO"}},
}
'''

URLS = '''
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
'''

MANAGE = '''#!/usr/bin/python3
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
'''

SHOP_MODELS = '''
from django.db import models


class Item(models.Model):
    a = models.IntegerField()
    b = models.TextField()
'''

SHOP_0001 = '''
from django.db import migrations, models


def fill(apps, schema_editor):
    Item = apps.get_model("shop", "Item")
    Item.objects.bulk_create([Item(a=i, b="b%d" % (i % 97)) for i in range(5000)])


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("a", models.IntegerField()),
                ("b", models.TextField()),
            ],
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
'''

# The example of reference/label-studio-async-migrations.txt, copied; only
# the import line differs (and the table, index and dependency names).
SHOP_0002 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration

# SQL for forward migration
sql_forwards = (
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS shop_item_ab_idx '
    'ON shop_item (a, b);'
)

# SQL for rollback
sql_backwards = (
    'DROP INDEX CONCURRENTLY IF EXISTS shop_item_ab_idx;'
)


class Migration(migrations.Migration):
    atomic = False  # Important for CONCURRENTLY operations in PostgreSQL

    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(
            *make_sql_migration(
                sql_forwards,
                sql_backwards,
                migration_name=__name__,  # Automatically uses module name
                apply_on_sqlite=False,  # Optional: whether to apply on SQLite (default False)
                execute_immediately=False,  # Optional: execute immediately or allow scheduling
            )
        ),
    ]
'''

SHOP_0003 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


def backwards_sql(apps, schema_editor):
    assert apps is not None and schema_editor is not None
    return "DROP INDEX CONCURRENTLY IF EXISTS shop_item_b_idx"


class Migration(migrations.Migration):
    # atomic (the default): the schedule commits with the migration

    dependencies = [("shop", "0002_item_ab_idx_async")]

    operations = [
        migrations.RunPython(
            *make_sql_migration(
                [
                    "SELECT 1",
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS shop_item_b_idx ON shop_item (b);",
                    "ANALYZE shop_item",
                ],
                backwards_sql,
                migration_name="shop.0003_item_b_idx",
                apply_on_sqlite=True,
                dependencies=["shop.migrations.0002_item_ab_idx_async"],
                job_timeout=600,
                queue_name="low",
                sql_mysql_forwards="CREATE INDEX shop_item_b_idx ON shop_item (b(10))",
                sql_mysql_backwards="DROP INDEX shop_item_b_idx ON shop_item",
            )
        ),
    ]
'''

SHOP_0004 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0003_item_b_idx")]
    operations = [
        migrations.RunPython(
            *make_sql_migration(
                lambda: "CREATE INDEX CONCURRENTLY IF NOT EXISTS shop_item_a_idx ON shop_item (a)",
                lambda: ["DROP INDEX CONCURRENTLY IF EXISTS shop_item_a_idx"],
                migration_name="shop.0004_item_a_idx",
                apply_on_sqlite=True,
            )
        ),
    ]
'''

SHOP_0005 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    dependencies = [("shop", "0004_item_a_idx")]
    operations = [
        migrations.RunPython(
            *make_sql_migration(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS shop_item_ba_idx ON shop_item (b, a)",
                "DROP INDEX CONCURRENTLY IF EXISTS shop_item_ba_idx",
                migration_name="shop.0005_item_ba_idx",
                apply_on_sqlite=True,
                execute_immediately=True,
            )
        ),
    ]
'''

SHOP_TESTS = '''
import os

from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import TestCase, TransactionTestCase

from asyncmig.django.models import AsyncMigration

SCHEDULED_MODE = os.environ.get("ALLOW_SCHEDULED_MIGRATIONS") == "true"
NAME_A = "shop.0004_item_a_idx"


def index_valid(name):
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = %s", [name])
            return cur.fetchone() is not None
        cur.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname = %s", [name])
        row = cur.fetchone()
        return bool(row and row[0])


class TestDatabaseTests(TestCase):
    def test_migrations_ran_in_the_test_database(self):
        statuses = dict(AsyncMigration.objects.values_list("name", "status"))
        self.assertEqual(statuses.get("shop.0005_item_ba_idx"), "FINISHED", statuses)
        self.assertTrue(index_valid("shop_item_ba_idx"))
        if SCHEDULED_MODE:
            self.assertEqual(statuses[NAME_A], "SCHEDULED")
            self.assertFalse(index_valid("shop_item_a_idx"))
        else:
            self.assertEqual(statuses[NAME_A], "FINISHED")
            self.assertTrue(index_valid("shop_item_a_idx"))
            self.assertTrue(index_valid("shop_item_b_idx"))


class AdminTests(TransactionTestCase):
    def setUp(self):
        self.user = User.objects.create_superuser("admin", "admin@example.com", "pw")
        self.assertTrue(self.client.login(username="admin", password="pw"))

    def test_changelist(self):
        response = self.client.get("/admin/asyncmig/asyncmigration/")
        self.assertEqual(response.status_code, 200)
        content = response.content.decode()
        for text in ("shop.0005_item_ba_idx", "FINISHED", "forwards",
                     "Run selected scheduled migrations"):
            self.assertIn(text, content)
        response = self.client.get("/admin/asyncmig/asyncmigration/?status__exact=FINISHED")
        self.assertEqual(response.status_code, 200)

    def test_run_scheduled_action(self):
        if not SCHEDULED_MODE:
            self.skipTest("needs ALLOW_SCHEDULED_MIGRATIONS=true")
        self.assertEqual(AsyncMigration.objects.get(name=NAME_A).status, "SCHEDULED")
        response = self.client.post("/admin/asyncmig/asyncmigration/", {
            "action": "run_scheduled_migrations",
            "_selected_action": [NAME_A, "shop.0005_item_ba_idx"],
        }, follow=True)
        self.assertEqual(response.status_code, 200)
        content = response.content.decode()
        self.assertIn("Started: " + NAME_A, content)
        self.assertIn("Skipped, not SCHEDULED: shop.0005_item_ba_idx (FINISHED)", content)
        if connection.vendor == "postgresql":
            self.assertIn(AsyncMigration.objects.get(name=NAME_A).status,
                          ("STARTED", "IN PROGRESS", "FINISHED"))
            call_command("asyncmig_wait", NAME_A, timeout=60)
        self.assertEqual(AsyncMigration.objects.get(name=NAME_A).status, "FINISHED")
        self.assertTrue(index_valid("shop_item_a_idx"))
'''

BAD_0001 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunPython(*make_sql_migration(
            "CREATE INDEX CONCURRENTLY bad_idx ON shop_item (no_such_column)",
            "DROP INDEX CONCURRENTLY IF EXISTS bad_idx",
            migration_name="bad.0001_nonatomic",
            apply_on_sqlite=True,
        )),
    ]
'''

BAD_0002 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    dependencies = [("bad", "0001_nonatomic")]
    operations = [
        migrations.RunPython(*make_sql_migration(
            "CREATE INDEX CONCURRENTLY bad2_idx ON no_such_table (a)",
            None,
            migration_name="bad.0002_atomic",
            apply_on_sqlite=True,
        )),
    ]
'''

ROLLBACK_0001 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    # atomic: the schedule is part of this migration's transaction
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunPython(*make_sql_migration(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS rollback_idx ON shop_item (a, b)",
            "DROP INDEX CONCURRENTLY IF EXISTS rollback_idx",
            migration_name="rollback.0001_fails",
            apply_on_sqlite=True,
        )),
        migrations.RunSQL("SELECT no_such_function_asyncmig_test()"),
    ]
'''

SLOW_0001 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunPython(*make_sql_migration(
            ["SELECT pg_sleep(30)",
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS slow_idx ON shop_item (a)"],
            "DROP INDEX CONCURRENTLY IF EXISTS slow_idx",
            migration_name="slow.0001_slow",
        )),
    ]
'''


DEPS_0001 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunPython(*make_sql_migration(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS deps_idx ON shop_item (a, id)",
            "DROP INDEX CONCURRENTLY IF EXISTS deps_idx",
            migration_name="deps.0001_missing_dep",
            dependencies=["never.scheduled"],
        )),
    ]
'''

BATCH_0001 = '''
from django.db import migrations
from asyncmig.django import make_batched_migration


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunPython(*make_batched_migration(
            "shop_item",
            "UPDATE shop_item SET a = a + 1000000 WHERE id BETWEEN $1 AND $2",
            "UPDATE shop_item SET a = a - 1000000 WHERE a >= 1000000",
            migration_name="batch.0001_bump",
            batch_size=700,
            pause=0,
            apply_on_sqlite=True,
        )),
    ]
'''

SLEEPY_0001 = '''
from django.db import migrations
from asyncmig.django import make_sql_migration


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.RunPython(*make_sql_migration(
            ["SELECT pg_sleep(4)",
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS sleepy_idx ON shop_item (b, a)"],
            "DROP INDEX CONCURRENTLY IF EXISTS sleepy_idx",
            migration_name="sleepy.0001_sleep",
        )),
    ]
'''


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip("\n"))


def write_project(root):
    """Write the project into root (created); returns root."""
    _write(os.path.join(root, "manage.py"), MANAGE)
    _write(os.path.join(root, "proj", "__init__.py"), "")
    _write(os.path.join(root, "proj", "settings.py"), SETTINGS)
    _write(os.path.join(root, "proj", "urls.py"), URLS)
    apps = {
        "shop": {"0001_initial": SHOP_0001, "0002_item_ab_idx_async": SHOP_0002,
                 "0003_item_b_idx": SHOP_0003, "0004_item_a_idx": SHOP_0004,
                 "0005_item_ba_idx": SHOP_0005},
        "bad": {"0001_nonatomic": BAD_0001, "0002_atomic": BAD_0002},
        "rollback": {"0001_fails": ROLLBACK_0001},
        "slow": {"0001_slow": SLOW_0001},
        "deps": {"0001_missing_dep": DEPS_0001},
        "batch": {"0001_bump": BATCH_0001},
        "sleepy": {"0001_sleep": SLEEPY_0001},
    }
    for app, migs in apps.items():
        _write(os.path.join(root, app, "__init__.py"), "")
        _write(os.path.join(root, app, "migrations", "__init__.py"), "")
        for name, text in migs.items():
            _write(os.path.join(root, app, "migrations", name + ".py"), text)
    _write(os.path.join(root, "shop", "models.py"), SHOP_MODELS)
    _write(os.path.join(root, "shop", "tests.py"), SHOP_TESTS)
    return root
