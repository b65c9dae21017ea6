/*
** 2025-11-25
**
** Copyright (c) 2026, The asyncmig authors.  Distributed under the
** PostgreSQL License: see the file LICENSE at the top of the tree.
**
** asyncmig_sqlite.c - the SQLite module of asyncmig: its entry point and
** its SQL functions.
**
** asyncmig runs heavy schema changes (CREATE INDEX CONCURRENTLY and friends)
** and batched data updates in a PostgreSQL background worker and records
** the status of every migration in a table.  This loadable SQLite extension
** offers the same calls and the same status vocabulary on SQLite,
** synchronously: SQLite has no background worker, and an index build locks
** the whole file anyway.
**
** Load it without an entry point argument:
**
**     .load /usr/lib/postgresql/15/lib/asyncmig_sqlite
**     conn.load_extension("/usr/lib/postgresql/15/lib/asyncmig_sqlite")
**
** (SQLite derives the entry point sqlite3_asyncmigsqlite_init from the file
** name.)  Loading creates, if missing, the table "asyncmig_migration" and the
** view "asyncmig_status" in the main database and registers these SQL
** functions on the connection:
**
**   asyncmig_schedule(NAME, FORWARDS, BACKWARDS [, APPLY_ON_SQLITE
**                     [, EXECUTE_IMMEDIATELY]])                  -> status
**   asyncmig_schedule_batches(NAME, RELATION, BATCH_SQL [, BACKWARDS
**                     [, BATCH_SIZE [, PAUSE [, KEY [, APPLY_ON_SQLITE
**                     [, EXECUTE_IMMEDIATELY]]]]]])              -> status
**   asyncmig_run(NAME [, BACKWARDS [, RESTART]])                 -> status
**   asyncmig_cancel(NAME)                                        -> status
**   asyncmig_allow_scheduled([ON])                               -> 0 or 1
**
** Statuses are exactly those of src/vocabulary.h: SCHEDULED, STARTED,
** IN PROGRESS, FINISHED and ERROR.
**
** A run translates the PostgreSQL-only words away (CREATE INDEX CONCURRENTLY
** becomes CREATE INDEX, ...; translate.c), then runs all statements of the
** migration inside one SAVEPOINT (run.c).  If a statement fails, the
** savepoint is rolled back (the database is as before) and the row becomes
** ERROR with the message and the failing statement in its "meta" JSON.  The
** row itself, the run and its outcome are written in one transaction of
** their own (BEGIN IMMEDIATE, which honours the busy timeout) or, when the
** caller is already inside a transaction, in a savepoint of the caller's
** transaction (table.c).  Two connections that schedule one name at once
** therefore make one row and one execution.  A batched migration (batch.c)
** commits once per batch instead.
**
** The functions are registered SQLITE_DIRECTONLY: they write to the
** database (or, asyncmig_allow_scheduled(), decide what the writers do), so
** they cannot be called from the triggers or views of a schema that might
** not be trusted.  Call them from a top-level SELECT, best one without a
** FROM clause (see "Limits" in docs/topics/sqlite.md for why).
**
** Build: "make" at the top of the tree (src/sqlite/sqlite.mk).  The module
** must not link libsqlite3: it uses the SQLite of the program that loads it.
*/
#include "asyncmig_sqlite.h"
SQLITE_EXTENSION_INIT1
#include <string.h>

/*
** asyncmig_schedule(NAME, FORWARDS, BACKWARDS [, APPLY_ON_SQLITE
**                   [, EXECUTE_IMMEDIATELY]])
**
** With APPLY_ON_SQLITE false (the default) nothing runs, nothing is
** recorded, and the result is NULL (the arguments are still checked).
** Otherwise the result is the migration's status after the call:
** SCHEDULED in scheduled mode (asyncmig_allow_scheduled(1)) unless
** EXECUTE_IMMEDIATELY, else FINISHED or ERROR after running it now.
** Idempotent by name (amScheduleKeeps()): one in ERROR, or whose last run
** was backwards, is run again with the SQL given now.
*/
static void amScheduleFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  const char *zName = 0;
  const char *zFwd = 0;
  const char *zBwd = 0;
  const char *zResult = 0;
  char *zFwdRun = 0;
  char *zBwdRun = 0;
  int bApply = 0;
  int bImmediate = 0;
  AmCall c;

  if( amCallStart(&c, ctx, "asyncmig_schedule", argc, 3, 5, "name, "
        "forwards_sql, backwards_sql [, apply_on_sqlite "
        "[, execute_immediately]]")==SQLITE_OK ){
    zName = amCallName(&c, argv[0]);
    amCallBool(&c, argc, argv, 3, "apply_on_sqlite", &bApply);
    amCallBool(&c, argc, argv, 4, "execute_immediately", &bImmediate);
    amCallText(&c, argv[1], "forwards SQL", &zFwd);
    amCallText(&c, argv[2], "backwards SQL", &zBwd);
  }
  if( c.rc==SQLITE_OK ){
    c.rc = amPrepareSql(c.db, zFwd, AM_DIRECTION_FORWARDS, 1, bApply,
                        &zFwdRun, &c.zErr);
  }
  if( c.rc==SQLITE_OK ){
    c.rc = amPrepareSql(c.db, zBwd, AM_DIRECTION_BACKWARDS, 0, bApply,
                        &zBwdRun, &c.zErr);
  }
  if( zBwdRun==0 ) zBwd = 0;          /* Blank backwards SQL: none */
  if( bApply && amCallOpen(&c, zName)==SQLITE_OK ){
    if( amScheduleKeeps(&c.r) ){
      zResult = c.r.zStatus;          /* Nothing to do: the status as it is */
    }else if( c.p->bAllowScheduled && !bImmediate ){
      c.rc = amRowNewRun(c.db, zName, 0, AM_DIRECTION_FORWARDS, zFwd, zBwd, 0,
                          &c.zErr);
      zResult = AM_STATUS_SCHEDULED;
    }else{
      c.rc = amRunMigration(&c.t, zName, 0, zFwd, zBwd, 0, zFwdRun,
                            &zResult, &c.zErr);
    }
  }
  amCallClose(&c, zResult);
  sqlite3_free(zFwdRun);
  sqlite3_free(zBwdRun);
}

/*
** asyncmig_run(NAME [, BACKWARDS [, RESTART]])
**
** Run migration NAME now: its forwards SQL, or its backwards SQL when
** BACKWARDS is true.  It must be SCHEDULED, FINISHED or ERROR; an unknown
** name, a migration STARTED or IN PROGRESS, or BACKWARDS without backwards
** SQL are errors.  A batched migration run forwards resumes after the last
** batch done, or starts again from its first key with RESTART.  Returns the
** resulting status, FINISHED or ERROR.
*/
static void amRunFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const char *zName = 0;
  const char *zResult = 0;
  char *zRun = 0;
  int bBackwards = 0;
  int bRestart = 0;
  AmCall c;

  if( amCallStart(&c, ctx, "asyncmig_run", argc, 1, 3,
                  "name [, backwards [, restart]]")==SQLITE_OK ){
    zName = amCallName(&c, argv[0]);
    amCallBool(&c, argc, argv, 1, "backwards", &bBackwards);
    amCallBool(&c, argc, argv, 2, "restart", &bRestart);
  }
  if( amCallOpen(&c, zName)!=SQLITE_OK ){
    /* reported below */
  }else if( !c.r.bFound ){
    amCallFail(&c, "asyncmig: there is no migration named \"%s\"", zName);
  }else if( strcmp(c.r.zStatus, AM_STATUS_STARTED)==0
         || strcmp(c.r.zStatus, AM_STATUS_IN_PROGRESS)==0 ){
    amCallFail(&c, "asyncmig: migration \"%s\" is %s already",
               zName, c.r.zStatus);
  }else if( bBackwards && amIsBlank(c.r.zBackwards) ){
    amCallFail(&c, "asyncmig: migration \"%s\" has no backwards SQL", zName);
  }else if( c.r.zForwards==0 ){
    amCallFail(&c, "asyncmig: migration \"%s\" has no forwards SQL", zName);
  }else if( !bBackwards && c.r.zBatchRelation ){
    c.rc = amBatchRun(&c, zName, bRestart, &zResult);
  }else{
    c.rc = amPrepareSql(c.db, bBackwards ? c.r.zBackwards : c.r.zForwards,
                        bBackwards ? AM_DIRECTION_BACKWARDS
                                   : AM_DIRECTION_FORWARDS,
                        1, 1, &zRun, &c.zErr);
    if( c.rc==SQLITE_OK ){
      AmBatchCfg cfg;
      c.rc = amRunMigration(&c.t, zName, bBackwards, c.r.zForwards,
                            c.r.zBackwards, amRowBatchCfg(&c.r, &cfg), zRun,
                            &zResult, &c.zErr);
    }
  }
  amCallClose(&c, zResult);
  sqlite3_free(zRun);
}

/*
** asyncmig_cancel(NAME)
**
** A SCHEDULED (or STARTED) migration ends ERROR ("canceled before it ran")
** without running; a FINISHED or ERROR one is left as it is.  A batched
** run IN PROGRESS in another connection (which commits batch by batch, so
** others see it) is asked to stop: it ends ERROR ("canceled") after its
** current batch, and the result is IN PROGRESS, as on PostgreSQL.  Returns
** the status.  An unknown name is an error, and so is a migration IN
** PROGRESS in this very connection (the call comes from its own SQL).
*/
static void amCancelFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const char *zName = 0;
  const char *zResult = 0;
  AmCall c;

  if( amCallStart(&c, ctx, "asyncmig_cancel", argc, 1, 1, "name")==0 ){
    zName = amCallName(&c, argv[0]);
  }
  if( amCallOpen(&c, zName)!=SQLITE_OK ){
    /* reported below */
  }else if( !c.r.bFound ){
    amCallFail(&c, "asyncmig: there is no migration named \"%s\"", zName);
  }else if( strcmp(c.r.zStatus, AM_STATUS_IN_PROGRESS)==0
         && (c.p->iDepth>1 || c.r.zBatchRelation==0) ){
    amCallFail(&c, "asyncmig: migration \"%s\" is running in this "
                   "connection and cannot be canceled", zName);
  }else if( strcmp(c.r.zStatus, AM_STATUS_IN_PROGRESS)==0 ){
    c.rc = amRowSetMeta(c.db, zName, "$.cancel_requested", "true", &c.zErr);
    zResult = c.r.zStatus;
  }else if( strcmp(c.r.zStatus, AM_STATUS_SCHEDULED)==0
         || strcmp(c.r.zStatus, AM_STATUS_STARTED)==0 ){
    c.rc = amRowEnd(c.db, zName, AM_STATUS_ERROR, "canceled before it ran",
                    AM_SQLSTATE_QUERY_CANCELED, 0, 0, &c.zErr);
    zResult = AM_STATUS_ERROR;
  }else{
    zResult = c.r.zStatus;
  }
  amCallClose(&c, zResult);
}

/*
** asyncmig_allow_scheduled([ON])
**
** Scheduled mode of this connection (off when the module is loaded): with
** an argument, set it; return the setting (0 or 1).
*/
static void amAllowScheduledFunc(sqlite3_context *ctx, int argc,
                                 sqlite3_value **argv){
  AmConn *p = (AmConn*)sqlite3_user_data(ctx);
  if( argc>1 ){
    char *zErr = sqlite3_mprintf("asyncmig: asyncmig_allow_scheduled() takes "
                                 "0 or 1 arguments, not %d", argc);
    amResultError(ctx, zErr ? SQLITE_ERROR : SQLITE_NOMEM, zErr, 0);
    return;
  }
  if( argc==1 ){
    int b = amBool(argv[0], -1);
    if( b<0 ){
      sqlite3_result_error(ctx, "asyncmig: asyncmig_allow_scheduled() takes "
                                "a boolean (0 or 1)", -1);
      return;
    }
    p->bAllowScheduled = b;
  }
  sqlite3_result_int(ctx, p->bAllowScheduled);
}

/*
** The entry point, named after the file: asyncmig_sqlite.so ->
** sqlite3_asyncmigsqlite_init.  Create the table and the view if they are
** missing and register the functions on connection db.
*/
#ifdef _WIN32
__declspec(dllexport)
#elif defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int sqlite3_asyncmigsqlite_init(
  sqlite3 *db,
  char **pzErrMsg,
  const sqlite3_api_routines *pApi
){
  static const struct {
    const char *zName;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "asyncmig_schedule",         amScheduleFunc },
    { "asyncmig_schedule_batches", amScheduleBatchesFunc },
    { "asyncmig_run",              amRunFunc },
    { "asyncmig_cancel",           amCancelFunc },
    { "asyncmig_allow_scheduled",  amAllowScheduledFunc },
  };
  AmConn *p;
  char *zErr = 0;
  int rc;
  int i;
  SQLITE_EXTENSION_INIT2(pApi);

  if( sqlite3_libversion_number()<3038000 ){
    *pzErrMsg = sqlite3_mprintf("asyncmig: SQLite 3.38.0 or later is needed, "
                                "this is %s", sqlite3_libversion());
    return SQLITE_ERROR;
  }
  rc = amEnsureSchema(db, &zErr);
  if( rc!=SQLITE_OK ){
    *pzErrMsg = sqlite3_mprintf("%s (creating asyncmig_migration)",
                                zErr ? zErr : "asyncmig: error");
    sqlite3_free(zErr);
    return rc;
  }
  p = sqlite3_malloc(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->nRef = 1;             /* Held by this function until the end */
  for(i=0; rc==SQLITE_OK && i<AM_COUNT(aFunc); i++){
    p->nRef++;             /* Released by xDestroy, also if this fails */
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, -1,
                                    SQLITE_UTF8|SQLITE_DIRECTONLY, p,
                                    aFunc[i].xFunc, 0, 0, amConnUnref);
  }
  amConnUnref(p);
  return rc;
}
