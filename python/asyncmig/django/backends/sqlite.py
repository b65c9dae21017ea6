"""The SQLite backend: the asyncmig_sqlite module loaded into Django's
connection, which runs each migration synchronously inside the call."""

import os
import shutil
import subprocess

from django.db.utils import DatabaseError

from ... import vocabulary as v
from .. import conf
from ..exceptions import MigrationFailed, SQLiteModuleNotFound
from ..util import to_interval
from .base import Backend

ENTRY_POINT = "sqlite3_asyncmigsqlite_init"


def module_path():
    """The path of asyncmig_sqlite.so: the setting ASYNCMIG_SQLITE_MODULE,
    else $(pg_config --pkglibdir)/asyncmig_sqlite.so."""
    path = conf.raw("ASYNCMIG_SQLITE_MODULE", None)
    if path:
        return str(path)
    pg_config = shutil.which("pg_config")
    if pg_config is None and os.path.isdir("/usr/lib/postgresql"):
        candidates = sorted((os.path.join("/usr/lib/postgresql", ver, "bin", "pg_config")
                             for ver in os.listdir("/usr/lib/postgresql")), reverse=True)
        pg_config = next((c for c in candidates if os.access(c, os.X_OK)), None)
    if pg_config is None:
        raise SQLiteModuleNotFound(
            "asyncmig: cannot find the SQLite module asyncmig_sqlite.so: pg_config "
            "is not on PATH. Set ASYNCMIG_SQLITE_MODULE (Django setting or "
            "environment variable) to its full path.")
    try:
        libdir = subprocess.run([pg_config, "--pkglibdir"], check=True, stdout=subprocess.PIPE,
                                universal_newlines=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SQLiteModuleNotFound(
            "asyncmig: cannot find the SQLite module: %s --pkglibdir failed (%s). "
            "Set ASYNCMIG_SQLITE_MODULE to the full path of asyncmig_sqlite.so." % (pg_config, exc))
    return os.path.join(libdir, "asyncmig_sqlite.so")


class SQLiteBackend(Backend):
    """asyncmig_schedule/run/cancel of the SQLite module."""

    vendor = "sqlite"
    synchronous = True
    status_view = "asyncmig_status"

    def _raw(self):
        self.connection.ensure_connection()
        return self.connection.connection

    def _loaded(self, raw):
        try:
            return raw.execute("SELECT 1 FROM pragma_function_list "
                               "WHERE name = 'asyncmig_schedule'").fetchone() is not None
        except Exception:
            return False

    def prepare(self):
        """Load asyncmig_sqlite.so into the connection (once per connection)."""
        raw = self._raw()
        if self._loaded(raw):
            return
        path = module_path()
        what = ("Build and install it (make && make install in the asyncmig source "
                "tree installs asyncmig_sqlite.so into $(pg_config --pkglibdir)), or set "
                "ASYNCMIG_SQLITE_MODULE to its full path.")
        if not os.path.exists(path):
            raise SQLiteModuleNotFound("asyncmig: the SQLite module %s does not exist. %s"
                                       % (path, what))
        if not hasattr(raw, "enable_load_extension"):
            raise SQLiteModuleNotFound(
                "asyncmig: this Python's sqlite3 cannot load extensions "
                "(built without SQLITE_ENABLE_LOAD_EXTENSION); use a Python that can "
                "(Debian's /usr/bin/python3 can).")
        raw.enable_load_extension(True)
        try:
            # explicit entry point: ASYNCMIG_SQLITE_MODULE may name a copy with
            # another file name (SQLite derives the entry point from the name)
            raw.execute("SELECT load_extension(?, ?)", [path, ENTRY_POINT]).fetchall()
        except Exception as exc:
            raise SQLiteModuleNotFound("asyncmig: cannot load the SQLite module %s: %s. %s"
                                       % (path, exc, what)) from exc
        finally:
            raw.enable_load_extension(False)

    def installed(self):
        """True when the file has the status view (loading the module
        creates it)."""
        query = "SELECT 1 FROM sqlite_master WHERE name = 'asyncmig_status'"
        if self._raw().execute(query).fetchone():
            return True
        self.prepare()
        return self._raw().execute(query).fetchone() is not None

    def _call(self, name, sql, params, allow_scheduled=None):
        self.prepare()
        with self.connection.cursor() as cur:
            previous = None
            if allow_scheduled is not None:
                cur.execute("SELECT asyncmig_allow_scheduled()")
                previous = cur.fetchone()[0]
                cur.execute("SELECT asyncmig_allow_scheduled(%s)", [1 if allow_scheduled else 0])
            try:
                cur.execute(sql, params)
                return cur.fetchone()[0]
            except DatabaseError as exc:
                if "no such function" in str(exc):
                    raise MigrationFailed("asyncmig: this asyncmig_sqlite module lacks %s: "
                                          "install a newer one" % sql.split("(")[0][7:],
                                          name=name) from exc
                raise MigrationFailed("%s failed: %s" % (sql.split("(")[0][7:], exc),
                                      name=name) from exc
            finally:
                if previous is not None:
                    cur.execute("SELECT asyncmig_allow_scheduled(%s)", [previous])

    def schedule(self, name, forwards_sql, backwards_sql=None, *, execute_immediately=False,
                 depends_on=None, timeout=None, not_before=None, allow_scheduled=None):
        """asyncmig_schedule(...) -> (status, []); depends_on, timeout and
        not_before do not apply to a synchronous run."""
        status = self._call(name, "SELECT asyncmig_schedule(%s, %s, %s, 1, %s)",
                            [name, forwards_sql, backwards_sql or None,
                             1 if execute_immediately else 0], allow_scheduled)
        return status, []

    def schedule_batches(self, name, table, batch_sql, backwards_sql=None, *, batch_size=None,
                         pause=None, key=None, execute_immediately=False, depends_on=None,
                         not_before=None, timeout=None, allow_scheduled=None):
        """asyncmig_schedule_batches(name, table, batch_sql, backwards_sql,
        batch_size, pause_seconds, key, 1, execute_immediately) -> (status,
        []); NULL is the module's default."""
        pause = to_interval(pause, "pause", allow_zero=True)
        status = self._call(name, "SELECT asyncmig_schedule_batches(%s, %s, %s, %s, %s, %s, %s, 1, %s)",
                            [name, table, batch_sql, backwards_sql or None, batch_size,
                             pause.total_seconds() if pause is not None else None, key,
                             1 if execute_immediately else 0], allow_scheduled)
        return status, []

    def run(self, name, backwards=False, restart=False):
        """asyncmig_run(name, backwards, restart) -> status (the run is over)."""
        if restart:
            return self._call(name, "SELECT asyncmig_run(%s, %s, 1)", [name, 1 if backwards else 0])
        return self._call(name, "SELECT asyncmig_run(%s, %s)", [name, 1 if backwards else 0])

    def cancel(self, name):
        """asyncmig_cancel(name) -> status."""
        return self._call(name, "SELECT asyncmig_cancel(%s)", [name])

    def wait(self, name=None, timeout=None):
        """Nothing runs in the background on SQLite: raise MigrationFailed
        when the migration (or, without a name, any) is in ERROR."""
        rows = [r for r in self.status_rows([name] if name else None) if r["status"] == v.ERROR]
        if rows:
            raise MigrationFailed("; ".join("asyncmig migration %s (%s) ended in ERROR: %s"
                                            % (r["name"], r["direction"], r["error"]) for r in rows),
                                  name=name)
        return []
