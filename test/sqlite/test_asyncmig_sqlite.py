"""The asyncmig SQLite module from Python's sqlite3 module (unittest).

Environment:
  ASYNCMIG_SQLITE_MODULE  path of the module, without its suffix
  ASYNCMIG_TEST_TMP       a directory for the databases (default: a new one)

Run with /usr/bin/python3 (Debian's python3 allows load_extension).
"""

import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

MODULE = os.environ.get("ASYNCMIG_SQLITE_MODULE", "")
TMP = os.environ.get("ASYNCMIG_TEST_TMP") or tempfile.mkdtemp(prefix="asyncmig-py-")


def connect(path, **kwargs):
    """A connection to path with the module loaded (no entry point given)."""
    conn = sqlite3.connect(path, **kwargs)
    conn.enable_load_extension(True)
    conn.load_extension(MODULE)
    conn.enable_load_extension(False)
    return conn


class Base(unittest.TestCase):
    """A fresh database file per test, with table t and a log table."""

    def setUp(self):
        self.path = os.path.join(TMP, "%s.db" % self.id().rsplit(".", 1)[-1])
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.unlink(self.path + suffix)
        self.conn = connect(self.path, isolation_level=None)
        self.conn.executescript(
            "CREATE TABLE t(a, b);"
            "INSERT INTO t VALUES(1,'x'),(2,'y'),(3,'z');"
            "CREATE TABLE log(x);")

    def tearDown(self):
        self.conn.close()

    def one(self, sql, *args, conn=None):
        return (conn or self.conn).execute(sql, args).fetchone()[0]

    def schedule(self, *args, conn=None):
        marks = ", ".join("?" * len(args))
        return self.one("SELECT asyncmig_schedule(%s)" % marks, *args, conn=conn)

    def has(self, name):
        return self.one("SELECT count(*) FROM sqlite_master WHERE name=?", name)

    def row(self, name):
        cur = self.conn.execute(
            "SELECT status, direction, attempts, meta FROM asyncmig_migration"
            " WHERE name=?", (name,))
        return cur.fetchone()


class TestBasics(Base):

    def test_load_with_suffix_and_objects(self):
        conn = sqlite3.connect(self.path)
        conn.enable_load_extension(True)
        conn.load_extension(MODULE + ".so")
        kinds = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name LIKE 'asyncmig%'"
            " AND type<>'index' ORDER BY name").fetchall()
        self.assertEqual(kinds, [("table", "asyncmig_migration"),
                                 ("view", "asyncmig_status")])
        conn.close()

    def test_apply_on_sqlite_false(self):
        self.assertIsNone(self.schedule("m", "CREATE INDEX CONCURRENTLY i ON t(a)", None))
        self.assertIsNone(self.schedule("m", "CREATE INDEX CONCURRENTLY i ON t(a)", None, False))
        self.assertEqual(self.one("SELECT count(*) FROM asyncmig_migration"), 0)
        self.assertEqual(self.has("i"), 0)

    def test_finished_idempotent_backwards_forwards(self):
        fwd = "INSERT INTO log VALUES(1); CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a)"
        bwd = "DROP INDEX CONCURRENTLY IF EXISTS i"
        self.assertEqual(self.schedule("m", fwd, bwd, True), "FINISHED")
        self.assertEqual(self.has("i"), 1)
        self.assertEqual(self.schedule("m", fwd, bwd, True), "FINISHED")
        self.assertEqual(self.one("SELECT count(*) FROM log"), 1)
        self.assertEqual(self.row("m")[:3], ("FINISHED", "forwards", 1))
        self.assertEqual(self.one("SELECT asyncmig_run('m', 1)"), "FINISHED")
        self.assertEqual(self.has("i"), 0)
        self.assertEqual(self.row("m")[:3], ("FINISHED", "backwards", 2))
        self.assertEqual(self.schedule("m", fwd, bwd, True), "FINISHED")
        self.assertEqual(self.has("i"), 1)
        self.assertEqual(self.one("SELECT count(*) FROM log"), 2)
        self.assertEqual(self.row("m")[:3], ("FINISHED", "forwards", 3))

    def test_error_rolls_back_everything(self):
        fwd = ("CREATE INDEX CONCURRENTLY i ON t(a);\n"
               "CREATE TABLE u(x);\n"
               "INSERT INTO nosuch VALUES('it''s')")
        self.assertEqual(self.schedule("bad", fwd, None, 1), "ERROR")
        self.assertEqual(self.has("i") + self.has("u"), 0)
        status, direction, attempts, meta = self.row("bad")
        self.assertEqual((status, direction, attempts), ("ERROR", "forwards", 1))
        import json
        err = json.loads(meta)["error"]
        self.assertEqual(err["message"], "no such table: nosuch")
        self.assertIsNone(err["sqlstate"])
        self.assertEqual(err["statement"], "INSERT INTO nosuch VALUES('it''s')")
        self.assertEqual(self.one("SELECT error FROM asyncmig_status WHERE name='bad'"),
                         "no such table: nosuch")
        # run again after ERROR, with the SQL given now
        self.assertEqual(self.schedule("bad", "CREATE TABLE u(x)", None, 1), "FINISHED")
        self.assertEqual(self.row("bad")[:3], ("FINISHED", "forwards", 2))
        self.assertEqual(self.has("u"), 1)

    def test_scheduled_mode(self):
        self.assertEqual(self.one("SELECT asyncmig_allow_scheduled()"), 0)
        self.assertEqual(self.one("SELECT asyncmig_allow_scheduled(1)"), 1)
        self.assertEqual(self.schedule("s", "CREATE INDEX s_idx ON t(b)", None, 1), "SCHEDULED")
        self.assertEqual(self.has("s_idx"), 0)
        self.assertEqual(self.schedule("s", "CREATE INDEX s_idx ON t(b)", None, 1, 1), "SCHEDULED")
        self.assertEqual(self.one("SELECT asyncmig_run('s')"), "FINISHED")
        self.assertEqual(self.has("s_idx"), 1)
        self.assertEqual(self.schedule("s2", "CREATE INDEX s2_idx ON t(b)", None, 1, 1), "FINISHED")
        self.assertEqual(self.one("SELECT asyncmig_allow_scheduled(0)"), 0)

    def test_bad_input(self):
        cases = [
            ("SELECT asyncmig_schedule(NULL, 'SELECT 1', NULL, 1)", "migration name must not be NULL"),
            ("SELECT asyncmig_schedule(' ', 'SELECT 1', NULL, 1)", "migration name must not be empty"),
            ("SELECT asyncmig_schedule('n', NULL, NULL, 1)", "forwards SQL must not be NULL"),
            ("SELECT asyncmig_schedule('n', ' \n ', NULL, 1)", "forwards SQL must not be empty"),
            ("SELECT asyncmig_schedule('n')", "takes 3 to 5 arguments"),
            ("SELECT asyncmig_run('nope')", 'there is no migration named "nope"'),
            ("SELECT asyncmig_run()", "takes 1 to 3 arguments"),
            ("SELECT asyncmig_schedule('n', 'SAVEPOINT a; SELECT 1', NULL, 1)",
             "transaction control statement (SAVEPOINT)"),
            ("SELECT asyncmig_schedule('n', 'SELECT 1; rollback', NULL, 1)",
             "transaction control statement (rollback)"),
        ]
        for sql, message in cases:
            with self.subTest(sql=sql):
                with self.assertRaises(sqlite3.OperationalError) as cm:
                    self.conn.execute(sql).fetchall()
                self.assertTrue(str(cm.exception).startswith("asyncmig: "), str(cm.exception))
                self.assertIn(message, str(cm.exception))
        self.assertEqual(self.one("SELECT count(*) FROM asyncmig_migration"), 0)
        self.schedule("nb", "CREATE TABLE nb(x)", None, 1)
        with self.assertRaisesRegex(sqlite3.OperationalError, 'asyncmig: migration "nb" has no backwards SQL'):
            self.one("SELECT asyncmig_run('nb', 1)")

    def test_concurrently_in_strings(self):
        fwd = ("CREATE TABLE s(x TEXT DEFAULT 'DROP INDEX CONCURRENTLY x');"
               "INSERT INTO s VALUES('CREATE INDEX CONCURRENTLY y ON t(a)');"
               'CREATE INDEX "CONCURRENTLY" ON t(b)')
        self.assertEqual(self.schedule("str", fwd, None, 1), "FINISHED")
        self.assertEqual(self.one("SELECT x FROM s"), "CREATE INDEX CONCURRENTLY y ON t(a)")
        self.assertEqual(self.has("CONCURRENTLY"), 1)

    def test_python_implicit_transaction(self):
        """Python opens a transaction before an INSERT: schedule joins it."""
        conn = connect(self.path)          # default isolation_level: implicit BEGIN
        conn.execute("INSERT INTO log VALUES('x')")
        self.assertTrue(conn.in_transaction)
        self.assertEqual(self.schedule("tx", "CREATE INDEX tx_idx ON t(a)", None, 1, conn=conn),
                         "FINISHED")
        conn.rollback()
        self.assertEqual(self.one("SELECT count(*) FROM asyncmig_migration"), 0)
        self.assertEqual(self.has("tx_idx"), 0)
        conn.execute("INSERT INTO log VALUES('x')")
        self.assertEqual(self.schedule("tx", "CREATE INDEX tx_idx ON t(a)", None, 1, conn=conn),
                         "FINISHED")
        conn.commit()
        self.assertEqual(self.row("tx")[:3], ("FINISHED", "forwards", 1))
        self.assertEqual(self.has("tx_idx"), 1)
        conn.close()

    def test_busy_gives_an_error_and_writes_nothing(self):
        other = connect(self.path, isolation_level=None, timeout=0.2)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.monotonic()
            with self.assertRaisesRegex(sqlite3.OperationalError, "database is locked"):
                self.schedule("busy", "CREATE TABLE busy(x)", None, 1, conn=other)
            self.assertGreaterEqual(time.monotonic() - t0, 0.15)  # waited the timeout
        finally:
            self.conn.execute("ROLLBACK")
        self.assertEqual(self.one("SELECT count(*) FROM asyncmig_migration"), 0)
        self.assertEqual(self.schedule("busy", "CREATE TABLE busy(x)", None, 1, conn=other),
                         "FINISHED")
        other.close()

    def test_load_with_sql_function_and_entry_point(self):
        """The Django package loads with SELECT load_extension(path, entry),
        possibly inside a transaction that is then rolled back: the table
        and view come back with the first call."""
        path = os.path.join(TMP, "load_sql.db")
        if os.path.exists(path):
            os.unlink(path)
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE z(a)")
        conn.execute("INSERT INTO z VALUES(1)")
        self.assertTrue(conn.in_transaction)
        conn.enable_load_extension(True)
        conn.execute("SELECT load_extension(?, 'sqlite3_asyncmigsqlite_init')",
                     (MODULE + ".so",)).fetchall()
        conn.rollback()
        self.assertEqual(conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'asyncmig%'").fetchone()[0], 0)
        self.assertEqual(conn.execute(
            "SELECT asyncmig_schedule('z', 'CREATE INDEX z_a ON z(a)', NULL, 1)").fetchone()[0],
            "FINISHED")
        self.assertEqual(conn.execute(
            "SELECT name, status FROM asyncmig_status").fetchall(), [("z", "FINISHED")])
        conn.close()

    def test_nul_characters_refused(self):
        with self.assertRaisesRegex(sqlite3.OperationalError, "name must not contain NUL"):
            self.schedule("a\x00b", "SELECT 1", None, 1)
        with self.assertRaisesRegex(sqlite3.OperationalError, "forwards SQL must not contain NUL"):
            self.schedule("ab", "SELECT 1;\x00DROP TABLE t", None, 1)
        self.assertEqual(self.one("SELECT count(*) FROM asyncmig_migration"), 0)

    def test_huge_sql(self):
        n = 20000
        fwd = "".join("INSERT INTO log VALUES(%d);\n" % i for i in range(n))
        fwd += "INSERT INTO log VALUES('%s')" % ("x" * 1000000)
        self.assertEqual(self.schedule("huge", fwd, None, 1), "FINISHED")
        self.assertEqual(self.one("SELECT count(*) FROM log"), n + 1)
        self.assertEqual(self.one("SELECT length(forwards_sql) FROM asyncmig_migration"), len(fwd))
        # and a huge failing one: everything undone
        self.assertEqual(self.schedule("huge2", fwd + ";SELECT * FROM nosuch", None, 1), "ERROR")
        self.assertEqual(self.one("SELECT count(*) FROM log"), n + 1)

    def test_nested_call_from_migration_sql(self):
        fwd = ("CREATE TABLE n(a);"
               "SELECT asyncmig_schedule('inner', 'CREATE INDEX n_a ON n(a)', NULL, 1)")
        self.assertEqual(self.schedule("outer", fwd, None, 1), "FINISHED")
        self.assertEqual(self.has("n_a"), 1)
        self.assertEqual(self.schedule("self", "SELECT asyncmig_run('self')", None, 1), "ERROR")
        self.assertIn('"self" is IN PROGRESS',
                      self.one("SELECT error FROM asyncmig_status WHERE name='self'"))

    def test_interrupt_leaves_nothing(self):
        """sqlite3_interrupt() during a run (Ctrl-C in the shell): the call
        fails, the whole transaction is rolled back, and the connection is
        not left inside a transaction holding the write lock."""
        endless_read = ("CREATE TABLE a(x); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL"
                        " SELECT i+1 FROM c WHERE i<1000000000) SELECT count(*) FROM c")
        endless_write = ("CREATE TABLE a(x); INSERT INTO a SELECT i FROM (WITH RECURSIVE"
                         " c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<1000000000)"
                         " SELECT i FROM c) WHERE i<0")
        for kind, sql in (("read", endless_read), ("write", endless_write)):
            for in_txn in (False, True):
                with self.subTest(kind=kind, in_txn=in_txn):
                    conn = connect(self.path, isolation_level=None, check_same_thread=False)
                    if in_txn:
                        conn.execute("BEGIN")
                        conn.execute("INSERT INTO log VALUES('caller')")
                    done = threading.Event()

                    def interrupter():
                        time.sleep(0.2)
                        while not done.wait(0.05):
                            conn.interrupt()
                    th = threading.Thread(target=interrupter)
                    th.start()
                    try:
                        with self.assertRaisesRegex(sqlite3.OperationalError, "interrupted"):
                            conn.execute("SELECT asyncmig_schedule('intr', ?, NULL, 1)",
                                         (sql,)).fetchall()
                    finally:
                        done.set()
                        th.join()
                    self.assertFalse(conn.in_transaction)
                    self.assertEqual(self.one("SELECT count(*) FROM asyncmig_migration"), 0)
                    self.assertEqual(self.has("a"), 0)
                    self.assertEqual(self.one("SELECT count(*) FROM log"), 0)
                    other = sqlite3.connect(self.path, timeout=0.1, isolation_level=None)
                    other.execute("BEGIN IMMEDIATE")
                    other.execute("ROLLBACK")
                    other.close()
                    conn.close()


# One scheduling process; prints the status it got.
CHILD = r"""
import os, sqlite3, sys, time
path, module, name, sql, ready, go = sys.argv[1:7]
conn = sqlite3.connect(path, timeout=60, isolation_level=None)
conn.enable_load_extension(True)
conn.load_extension(module)
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
print(conn.execute("SELECT asyncmig_schedule(?, ?, NULL, 1)", (name, sql)).fetchone()[0])
"""

# The forwards SQL of the concurrency tests: counts its executions, and is
# slow enough (a few hundred ms) for the callers to overlap.
CONC_SQL = ("INSERT INTO runs VALUES(1);"
            "CREATE TABLE big AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL"
            " SELECT i+1 FROM c WHERE i<200000) SELECT i, i%97 AS v FROM c;"
            "CREATE INDEX CONCURRENTLY big_v ON big(v, i)")


class TestConcurrency(unittest.TestCase):

    def fresh(self, name, journal_mode):
        path = os.path.join(TMP, name + ".db")
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=%s" % journal_mode)
        conn.execute("CREATE TABLE runs(x)")
        conn.close()
        return path

    def check(self, path, results):
        self.assertEqual(results, ["FINISHED"] * len(results))
        conn = connect(path)
        self.assertEqual(conn.execute("SELECT count(*) FROM runs").fetchone()[0], 1)
        self.assertEqual(conn.execute(
            "SELECT count(*), max(attempts), max(status) FROM asyncmig_migration").fetchone(),
            (1, 1, "FINISHED"))
        self.assertEqual(conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name='big_v'").fetchone()[0], 1)
        conn.close()

    def run_processes(self, path, n):
        """n processes load the module (the table does not exist yet) and
        schedule one name at the same moment."""
        tag = os.path.basename(path)
        go = os.path.join(TMP, tag + ".go")
        ready = [os.path.join(TMP, "%s.ready%d" % (tag, i)) for i in range(n)]
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, path, MODULE, "conc",
                                   CONC_SQL, ready[i], go],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True)
                 for i in range(n)]
        deadline = time.monotonic() + 60
        while not all(os.path.exists(r) for r in ready):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        open(go, "w").close()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            results.append(out.strip())
        return results

    def test_processes_rollback_journal(self):
        path = self.fresh("procs_delete", "DELETE")
        self.check(path, self.run_processes(path, 4))

    def test_processes_wal(self):
        path = self.fresh("procs_wal", "WAL")
        self.check(path, self.run_processes(path, 4))

    def test_threads(self):
        path = self.fresh("threads", "DELETE")
        n = 3
        barrier = threading.Barrier(n)
        results = [None] * n
        errors = []

        def work(i):
            try:
                conn = connect(path, timeout=60, isolation_level=None,
                               check_same_thread=False)
                barrier.wait()
                results[i] = conn.execute(
                    "SELECT asyncmig_schedule('conc', ?, NULL, 1)", (CONC_SQL,)).fetchone()[0]
                conn.close()
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertEqual(errors, [])
        self.check(path, results)


BATCH_SQL = "UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2"

# One process that runs a slow batched migration (killed by the test)
BATCH_CHILD = r"""
import sqlite3, sys
path, module, sql = sys.argv[1:4]
conn = sqlite3.connect(path, timeout=60, isolation_level=None)
conn.enable_load_extension(True)
conn.load_extension(module)
print(conn.execute("SELECT asyncmig_schedule_batches('slow', 't', ?, NULL, 400,"
                   " '20ms', NULL, 1)", (sql,)).fetchone()[0])
"""


class TestBatches(unittest.TestCase):
    """asyncmig_schedule_batches(): exactly once, across errors, interrupts
    and a killed process."""

    N = 20000

    def setUp(self):
        self.path = os.path.join(TMP, "b_%s.db" % self.id().rsplit(".", 1)[-1])
        for suffix in ("", "-journal", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.unlink(self.path + suffix)
        self.conn = connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0)")
        ids = random.Random(15).sample(range(1, 10 ** 12), self.N)   # sparse, random gaps
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO t(id) VALUES(?)", ((i,) for i in ids))
        self.conn.execute("COMMIT")
        self.max_id = max(ids)

    def tearDown(self):
        self.conn.close()

    def one(self, sql, *args, conn=None):
        return (conn or self.conn).execute(sql, args).fetchone()[0]

    def batches(self, name, conn=None):
        """meta's "batches" of migration name, as a dict"""
        meta = self.one("SELECT meta FROM asyncmig_migration WHERE name=?", name, conn=conn)
        return json.loads(meta)["batches"]

    def assert_exactly_once(self):
        self.assertEqual(self.conn.execute("SELECT count(*), min(n), max(n) FROM t").fetchone(),
                         (self.N, 1, 1))

    def test_random_gaps(self):
        self.assertEqual(self.one("SELECT asyncmig_schedule_batches('g', 't', ?, NULL, 333,"
                                  " 0, NULL, 1)", BATCH_SQL), "FINISHED")
        self.assert_exactly_once()
        b = self.batches("g")
        self.assertEqual((b["rows"], b["rows_affected"], b["batches"], b["last_key"]),
                         (self.N, self.N, (self.N + 332) // 333, self.max_id))
        self.assertEqual(self.conn.execute(
            "SELECT batch_relation, batch_key, batch_size FROM asyncmig_migration").fetchone(),
            ("t", "id", 333))

    def test_text_keys(self):
        self.conn.execute("CREATE TABLE s(k TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0)")
        keys = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(3000)]
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO s(k) VALUES(?)", ((k,) for k in keys))
        self.conn.execute("COMMIT")
        self.assertEqual(self.one(
            "SELECT asyncmig_schedule_batches('s', 's', 'UPDATE s SET n = n + 1"
            " WHERE k BETWEEN $1 AND $2', NULL, 128, 0, 'k', 1)"), "FINISHED")
        self.assertEqual(self.conn.execute("SELECT count(*), min(n), max(n) FROM s").fetchone(),
                         (3000, 1, 1))
        self.assertEqual(self.batches("s")["last_key"], max(keys))

    def test_interrupt_in_the_middle_then_resume(self):
        """sqlite3_interrupt() between or during batches: the call fails, the
        batches done stay done (with their progress), and asyncmig_run in
        the same process resumes: every row exactly once."""
        watcher = connect(self.path, isolation_level=None, timeout=10,
                          check_same_thread=False)
        done = threading.Event()

        def interrupter():
            while not done.is_set():
                try:
                    b = self.batches("i", conn=watcher)
                except (TypeError, KeyError, sqlite3.OperationalError):
                    b = {"batches": 0}
                if b["batches"] >= 3:
                    self.conn.interrupt()
                    return
                time.sleep(0.005)
        th = threading.Thread(target=interrupter)
        th.start()
        try:
            with self.assertRaisesRegex(sqlite3.OperationalError, "interrupted"):
                self.one("SELECT asyncmig_schedule_batches('i', 't', ?, NULL, 400, '10ms',"
                         " NULL, 1)", BATCH_SQL)
        finally:
            done.set()
            th.join()
        self.assertFalse(self.conn.in_transaction)
        b = self.batches("i")
        self.assertGreaterEqual(b["batches"], 3)
        self.assertLess(b["batches"], self.N // 400)
        # the progress committed with each batch says exactly what was done
        self.assertEqual(self.one("SELECT sum(n) FROM t"), b["rows"])
        self.assertEqual(self.one("SELECT max(n) FROM t"), 1)
        self.assertEqual(self.one("SELECT asyncmig_run('i')"), "FINISHED")
        self.assert_exactly_once()
        self.assertEqual(self.one("SELECT attempts FROM asyncmig_migration WHERE name='i'"), 2)
        watcher.close()

    def test_cancel_from_another_connection_then_resume(self):
        """asyncmig_cancel() of a batched run going on in another connection
        returns IN PROGRESS; the run stops after its current batch and ends
        ERROR ("canceled", 57014); asyncmig_run resumes: exactly once."""
        other = connect(self.path, isolation_level=None, timeout=10,
                        check_same_thread=False)
        result = []
        th = threading.Thread(target=lambda: result.append(self.one(
            "SELECT asyncmig_schedule_batches('c', 't', ?, NULL, 400, '10ms', NULL, 1)",
            BATCH_SQL)))
        th.start()
        try:
            deadline = time.monotonic() + 60
            while True:
                self.assertLess(time.monotonic(), deadline)
                try:
                    if self.batches("c", conn=other)["batches"] >= 3:
                        break
                except (TypeError, KeyError, sqlite3.OperationalError):
                    pass
                time.sleep(0.002)
            self.assertEqual(self.one("SELECT asyncmig_cancel('c')", conn=other),
                             "IN PROGRESS")
        finally:
            th.join()
        self.assertEqual(result, ["ERROR"])
        self.assertEqual(other.execute(
            "SELECT error, json_extract(meta, '$.error.sqlstate') FROM asyncmig_status"
            " JOIN asyncmig_migration USING (name)").fetchone(), ("canceled", "57014"))
        b = self.batches("c")
        self.assertLess(b["batches"], self.N // 400)
        self.assertEqual(self.one("SELECT sum(n) FROM t"), b["rows"])
        self.assertEqual(self.one("SELECT asyncmig_run('c')"), "FINISHED")
        self.assert_exactly_once()
        self.assertIsNone(self.one("SELECT json_extract(meta, '$.cancel_requested')"
                                   " FROM asyncmig_migration"))
        other.close()

    def test_kill_in_the_middle_then_resume(self):
        """kill -9 of the process in the middle: the row stays IN PROGRESS
        with progress that matches the table exactly; the next asyncmig_run
        ends it ERROR (its process is gone) and resumes."""
        p = subprocess.Popen([sys.executable, "-c", BATCH_CHILD, self.path, MODULE, BATCH_SQL],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        deadline = time.monotonic() + 60
        try:
            while True:
                self.assertIsNone(p.poll(), "the batched run ended before it was killed")
                self.assertLess(time.monotonic(), deadline)
                try:
                    if self.batches("slow")["batches"] >= 3:
                        break
                except (TypeError, KeyError, sqlite3.OperationalError):
                    pass
                time.sleep(0.005)
        finally:
            p.kill()
            p.communicate()
        self.assertEqual(self.one("SELECT status FROM asyncmig_migration WHERE name='slow'"),
                         "IN PROGRESS")
        b = self.batches("slow")
        # as PostgreSQL words it, with an eta from the run's pace so far
        self.assertRegex(self.one("SELECT progress FROM asyncmig_status"),
                         r"^batch %d: %d of ~%d rows \(%d%%\), eta \d+(\.\d)? (s|min|h)$"
                         % (b["batches"], b["rows"], self.N, b["rows"] * 100 // self.N))
        self.assertEqual(self.one("SELECT sum(n) FROM t"), b["rows"])
        self.assertEqual(self.one("SELECT max(n) FROM t"), 1)
        self.assertEqual(self.one("SELECT asyncmig_run('slow')"), "FINISHED")
        self.assert_exactly_once()
        self.assertEqual(self.one("SELECT attempts FROM asyncmig_migration WHERE name='slow'"), 2)

    def test_killed_run_is_error_for_schedule_too(self):
        """A row left IN PROGRESS by a process that is gone counts as ERROR:
        scheduling it again resumes it (and cancel leaves it ERROR)."""
        self.assertEqual(self.one("SELECT asyncmig_schedule_batches('dead', 't', ?, NULL,"
                                  " 1000, 0, NULL, 1)", BATCH_SQL), "FINISHED")
        # as a killed process leaves it: IN PROGRESS, a pid that is gone
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        self.conn.execute("UPDATE t SET n = 0 WHERE id > (SELECT id FROM t ORDER BY id"
                          " LIMIT 1 OFFSET 9999)")
        self.conn.execute("UPDATE asyncmig_migration SET status='IN PROGRESS',"
                          " meta=json_set(meta, '$.pid', ?, '$.batches.last_key',"
                          " (SELECT id FROM t ORDER BY id LIMIT 1 OFFSET 9999))",
                          (gone.pid,))
        self.assertEqual(self.one("SELECT asyncmig_cancel('dead')"), "ERROR")
        self.assertIn("interrupted", self.one("SELECT error FROM asyncmig_status"))
        self.assertEqual(self.one("SELECT json_extract(meta, '$.error.sqlstate')"
                                  " FROM asyncmig_migration"), "57014")
        self.assertEqual(self.one("SELECT asyncmig_schedule_batches('dead', 't', ?, NULL,"
                                  " 1000, 0, NULL, 1)", BATCH_SQL), "FINISHED")
        self.assert_exactly_once()

    def test_upper_bound(self):
        """A trigger that moves every updated row ahead of the walk: the run
        still ends at the key's maximum when it started (before: never), and
        every row of that range is updated exactly once."""
        self.conn.execute("CREATE TABLE m(id INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0)")
        self.conn.execute("WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 500)"
                          " INSERT INTO m(id) SELECT i FROM g")
        self.conn.execute("CREATE TRIGGER m_move AFTER UPDATE OF n ON m BEGIN"
                          " UPDATE m SET id = id + 1000000 WHERE id = NEW.id; END")
        steps = [0]

        def bounded():                  # the old endless walk is interrupted
            steps[0] += 1
            return steps[0] > 20000
        self.conn.set_progress_handler(bounded, 1000)
        try:
            status = self.one("SELECT asyncmig_schedule_batches('m', 'm', 'UPDATE m SET n = n + 1"
                              " WHERE id BETWEEN $1 AND $2', NULL, 50, 0, NULL, 1)")
        finally:
            self.conn.set_progress_handler(None, 0)
        self.assertEqual(status, "FINISHED")
        self.assertEqual(self.conn.execute("SELECT count(*), min(n), max(n), min(id) FROM m").fetchone(),
                         (500, 1, 1, 1000001))
        self.assertEqual(self.batches("m")["upper_key"], 500)


if __name__ == "__main__":
    if not MODULE:
        sys.exit("set ASYNCMIG_SQLITE_MODULE to the module path (without .so)")
    unittest.main(verbosity=2)
