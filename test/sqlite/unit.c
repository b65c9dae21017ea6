/*
** 2025-11-25
**
** unit.c - unit test of src/sqlite/translate.c, the tokenizer and the
** translator of the asyncmig SQLite module.
**
** Built by "make -f src/sqlite/sqlite.mk sqlite-unit" (plain and with
** ASan/UBSan) with -DSQLITE_CORE against libsqlite3, and run by
** test/sqlite/run.sh.  No database is opened: these are pure functions.
** Prints one "ok"/"not ok" line per check; exits 1 if any check failed.
*/
#include "asyncmig_sqlite.h"
#include <stdio.h>
#include <string.h>

static int nPass = 0;
static int nFail = 0;

/* Print z on one line (new lines as spaces) */
static void printLine(const char *z){
  for(; *z; z++) putchar(*z=='\n' ? ' ' : *z);
  putchar('\n');
}

/* Record one check */
static void check(int bOk, const char *zWhat, const char *zGot){
  if( bOk ){
    nPass++;
    printf("ok - ");
    printLine(zWhat);
  }else{
    nFail++;
    printf("not ok - ");
    printLine(zWhat);
    printf("    | got: ");
    printLine(zGot ? zGot : "(null)");
  }
}

/* amTranslate(zIn) gives zWant with nStmt statements */
static void translates(const char *zIn, const char *zWant, int nWant){
  char *zOut = 0, *zErr = 0;
  int nStmt = -1;
  int rc = amTranslate(zIn, "forwards", &zOut, &nStmt, &zErr);
  char *zWhat = sqlite3_mprintf("translate %s", zIn);
  check(rc==SQLITE_OK && zOut && strcmp(zOut, zWant)==0 && nStmt==nWant,
        zWhat, zErr ? zErr : zOut);
  sqlite3_free(zWhat);
  sqlite3_free(zOut);
  sqlite3_free(zErr);
}

/* f(zIn) fails with a message that contains zMsg */
static void refuses(int (*f)(const char*, char**, char**), const char *zIn,
                    const char *zMsg){
  char *zOut = 0, *zErr = 0;
  int rc = f(zIn, &zOut, &zErr);
  char *zWhat = sqlite3_mprintf("refuse %s", zIn ? zIn : "NULL");
  check(rc!=SQLITE_OK && zOut==0 && zErr && strstr(zErr, zMsg), zWhat,
        zErr ? zErr : zOut);
  sqlite3_free(zWhat);
  sqlite3_free(zOut);
  sqlite3_free(zErr);
}

/* amTranslate() of the forwards SQL, in the shape of amTranslateBatch() */
static int translateForwards(const char *zIn, char **pzOut, char **pzErr){
  int nStmt;
  return amTranslate(zIn, "forwards", pzOut, &nStmt, pzErr);
}

/* amTranslateBatch(zIn) gives zWant */
static void batch(const char *zIn, const char *zWant){
  char *zOut = 0, *zErr = 0;
  int rc = amTranslateBatch(zIn, &zOut, &zErr);
  char *zWhat = sqlite3_mprintf("batch %s", zIn);
  check(rc==SQLITE_OK && zOut && strcmp(zOut, zWant)==0, zWhat,
        zErr ? zErr : zOut);
  sqlite3_free(zWhat);
  sqlite3_free(zOut);
  sqlite3_free(zErr);
}

/* amScan(zIn) finds nWant statements, the first one being zFirst */
static void scans(const char *zIn, int nWant, const char *zFirst){
  AmScan s;
  char *zGot = 0;
  int rc = amScan(&s, zIn);
  char *zWhat = sqlite3_mprintf("scan %s", zIn);
  if( rc==SQLITE_OK && s.nStmt>0 ){
    zGot = sqlite3_mprintf("%d: %.*s", s.nStmt, amStmtLen(&s, 0),
                           zIn + amStmtStart(&s, 0));
  }
  check(rc==SQLITE_OK && s.nStmt==nWant
        && (nWant==0 || (zGot && strcmp(strchr(zGot, ' ')+1, zFirst)==0)),
        zWhat, zGot);
  amScanFree(&s);
  sqlite3_free(zWhat);
  sqlite3_free(zGot);
}

/* amParsePause(zIn) gives rWant, or fails when rWant<0 */
static void pause(const char *zIn, double rWant){
  double r = -1.0;
  int rc = amParsePause(zIn, &r);
  char *zWhat = sqlite3_mprintf("pause '%s' is %g", zIn, rWant);
  char *zGot = sqlite3_mprintf("rc %d, %g", rc, r);
  check(rWant<0 ? rc!=0 : (rc==0 && r>rWant-1e-9 && r<rWant+1e-9),
        zWhat, zGot);
  sqlite3_free(zWhat);
  sqlite3_free(zGot);
}

int main(void){
  /* The tokenizer: statements, strings, comments, trigger bodies */
  scans("", 0, 0);
  scans(" -- only a comment\n/* and another */ ; ;", 0, 0);
  scans("SELECT 1; SELECT 2", 2, "SELECT 1");
  scans("SELECT ';' AS x; SELECT 2", 2, "SELECT ';' AS x");
  scans("SELECT \"a;b\", [c;d], `e;f` FROM t", 1,
        "SELECT \"a;b\", [c;d], `e;f` FROM t");
  scans("SELECT 'it''s;' -- ;\n; SELECT 3", 2, "SELECT 'it''s;'");
  scans("CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2"
        " END; DELETE FROM u; END; SELECT 4", 2,
        "CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2"
        " END; DELETE FROM u; END");
  scans("CREATE TEMP TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END", 1,
        "CREATE TEMP TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END");
  scans("SELECT 'unterminated; SELECT 2", 1, "SELECT 'unterminated; SELECT 2");

  /* The translator: PostgreSQL-only words go, the rest stays as it is */
  translates("CREATE INDEX CONCURRENTLY i ON t(a)",
             "CREATE INDEX  i ON t(a)", 1);
  translates("create unique index concurrently if not exists i on t(a);"
             " DROP INDEX CONCURRENTLY IF EXISTS j",
             "create unique index  if not exists i on t(a);"
             " DROP INDEX  IF EXISTS j", 2);
  translates("REINDEX INDEX CONCURRENTLY i", "REINDEX   i", 1);
  translates("REINDEX (VERBOSE, CONCURRENTLY) TABLE t", "REINDEX    t", 1);
  translates("REINDEX DATABASE CONCURRENTLY main", "REINDEX   ", 1);
  translates("REINDEX t", "REINDEX t", 1);
  translates("INSERT INTO t VALUES('CREATE INDEX CONCURRENTLY')",
             "INSERT INTO t VALUES('CREATE INDEX CONCURRENTLY')", 1);
  translates("CREATE INDEX \"CONCURRENTLY\" ON t(a) -- CONCURRENTLY",
             "CREATE INDEX \"CONCURRENTLY\" ON t(a) -- CONCURRENTLY", 1);
  translates("  ", "  ", 0);
  refuses(translateForwards, "SELECT 1; COMMIT",
          "statement 2 of the forwards SQL is a transaction control "
          "statement (COMMIT)");
  refuses(translateForwards, "start transaction", "(start)");
  refuses(translateForwards, "SAVEPOINT a", "(SAVEPOINT)");

  /* Batch statements: one DML statement, $1/$2 become ?1/?2 */
  batch("UPDATE t SET n = n + 1 WHERE id BETWEEN $1 AND $2",
        "UPDATE t SET n = n + 1 WHERE id BETWEEN ?1 AND ?2");
  batch("update t set v = '$1' /* $2 */ where k >= $1 and k <= $2;",
        "update t set v = '$1' /* $2 */ where k >= ?1 and k <= ?2;");
  batch("DELETE FROM t WHERE id BETWEEN ?1 AND ?2",
        "DELETE FROM t WHERE id BETWEEN ?1 AND ?2");
  batch("WITH x AS (SELECT 1) UPDATE t SET a = $10 WHERE id = $2",
        "WITH x AS (SELECT 1) UPDATE t SET a = $10 WHERE id = ?2");
  refuses(amTranslateBatch, 0, "batch_sql must not be NULL");
  refuses(amTranslateBatch, " -- nothing\n", "batch_sql must not be empty");
  refuses(amTranslateBatch, "UPDATE t SET a = 1; UPDATE t SET b = 2",
          "batch_sql must be one DML statement, not 2 statements");
  refuses(amTranslateBatch, "SELECT $1, $2",
          "batch_sql must be one DML statement (INSERT, UPDATE, DELETE), "
          "not SELECT");
  refuses(amTranslateBatch, "CREATE INDEX CONCURRENTLY i ON t(a)",
          "not CREATE");
  refuses(amTranslateBatch, "BEGIN", "transaction control statement (BEGIN)");

  /* Pauses */
  pause("0", 0.0);
  pause(" 1.5 ", 1.5);
  pause("250ms", 0.25);
  pause("2 seconds", 2.0);
  pause("1 MIN", 60.0);
  pause("-1", -1.0);
  pause("soon", -1.0);
  pause("5 hours", -1.0);
  pause("", -1.0);

  /* Small helpers */
  check(amIsBlank(0) && amIsBlank(" \t\n") && !amIsBlank(" x"),
        "amIsBlank", 0);
  {
    char *z = amTrimDup("  a b \n", 7);
    check(z && strcmp(z, "a b")==0, "amTrimDup", z);
    sqlite3_free(z);
  }

  printf("# unit: %d passed, %d failed\n", nPass, nFail);
  return nFail ? 1 : 0;
}
