/*
** 2025-11-25
**
** table.c - the table asyncmig_migration of the asyncmig SQLite module,
** and the transactions its rows are written in.
**
**   amEnsureSchema()   creates the table and the view asyncmig_status if
**                      they are missing (and replaces a view of an older
**                      module);
**   amTxn*()           asyncmig's own transaction (BEGIN IMMEDIATE, which
**                      honours the busy timeout) or, inside a transaction
**                      of the caller, a savepoint of it;
**   amRow*()           read and write one migration's row.
**
** Nothing here knows about SQL functions or arguments (call.c) or about
** running a migration (run.c, batch.c).
*/
#include "asyncmig_sqlite.h"
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#ifndef _WIN32
# include <signal.h>
# include <unistd.h>
#endif

/* The status values and directions as an SQL list, for CHECK constraints */
#define AM_STATUS_LIST "'" AM_STATUS_SCHEDULED "','" AM_STATUS_STARTED "','" \
  AM_STATUS_IN_PROGRESS "','" AM_STATUS_FINISHED "','" AM_STATUS_ERROR "'"
#define AM_DIRECTION_LIST "'" AM_DIRECTION_FORWARDS "','" \
  AM_DIRECTION_BACKWARDS "'"

/*
** The columns of a batched migration (NULL for others), as PostgreSQL's
** asyncmig 1.1 has them; batch_pause in seconds.  A table made by an older
** module gets them on the next load or call (amEnsureSchema()).
*/
#define AM_BATCH_COLUMN_1 "batch_relation TEXT"
#define AM_BATCH_COLUMN_2 "batch_key TEXT"
#define AM_BATCH_COLUMN_3 "batch_size INTEGER CHECK(batch_size>0)"
#define AM_BATCH_COLUMN_4 "batch_pause REAL CHECK(batch_pause>=0)"
#define AM_BATCH_COLUMNS AM_BATCH_COLUMN_1 ",\n  " AM_BATCH_COLUMN_2 ",\n  " \
  AM_BATCH_COLUMN_3 ",\n  " AM_BATCH_COLUMN_4

/*
** Marks the current definition of the view; a view without it was made by
** an older module and is replaced (see amEnsureSchema()).
*/
#define AM_VIEW_MARK "asyncmig view 3"

/*
** The table and the view, created on load and before every write if they
** are missing.  Everything is in the "main" database.  progress reads
** meta's "batches" (batch.c) and words it as PostgreSQL's view does:
** "batch 412: 4120000 of ~10000000 rows (41%), eta 6 min" while it runs
** (eta from the rows of the current run and its time so far), where it
** stopped after an error, "413 batches: 4130000 rows" when FINISHED.
*/
const char amSchemaSql[] =
  "CREATE TABLE IF NOT EXISTS main.asyncmig_migration(\n"
  "  id INTEGER PRIMARY KEY,\n"
  "  name TEXT NOT NULL UNIQUE CHECK(length(trim(name))>0),\n"
  "  status TEXT NOT NULL CHECK(status IN (" AM_STATUS_LIST ")),\n"
  "  direction TEXT CHECK(direction IN (" AM_DIRECTION_LIST ")),\n"
  "  forwards_sql TEXT NOT NULL,\n"
  "  backwards_sql TEXT,\n"
  "  owner TEXT,\n"
  "  search_path TEXT,\n"
  "  attempts INTEGER NOT NULL DEFAULT 0,\n"
  "  meta TEXT NOT NULL DEFAULT '{}',\n"
  "  created_at TEXT NOT NULL DEFAULT (" AM_NOW "),\n"
  "  updated_at TEXT NOT NULL DEFAULT (" AM_NOW "),\n"
  "  started_at TEXT,\n"
  "  finished_at TEXT,\n"
  "  depends_on TEXT,\n"
  "  not_before TEXT,\n"
  "  timeout REAL,\n"
  "  " AM_BATCH_COLUMNS "\n"
  ");\n"
  "CREATE VIEW IF NOT EXISTS main.asyncmig_status AS\n"
  "  SELECT /* " AM_VIEW_MARK " */ name, status, direction, owner, attempts,"
        " started_at, finished_at, duration,\n"
  "    CASE WHEN bn IS NULL THEN NULL\n"
  "      WHEN status='" AM_STATUS_FINISHED "'"
        " THEN bn || ' batches: ' || br || ' rows'\n"
  "      ELSE 'batch ' || bn || ': ' || br || ' of ~' || be || ' rows ('"
        " || CASE WHEN be>0 THEN br*100/be ELSE 0 END || '%)'"
        " || CASE WHEN status<>'" AM_STATUS_IN_PROGRESS "' OR brun<=0"
        " OR secs<=0 THEN '' ELSE ', eta ' || CASE"
        " WHEN eta<90 THEN CAST(round(eta) AS INTEGER) || ' s'"
        " WHEN eta<5400 THEN CAST(round(eta/60) AS INTEGER) || ' min'"
        " ELSE round(eta/3600, 1) || ' h' END END\n"
  "    END AS progress,\n"
  "    json_extract(j, '$.error.message') AS error\n"
  "  FROM (SELECT *, (be-br)*secs/brun AS eta FROM (SELECT *,"
        " max(coalesce(json_extract(j, '$.batches.estimate_rows'), 0), br)"
        " AS be FROM (SELECT id, name, status, direction, owner, attempts,"
        " started_at, finished_at, j,\n"
  "    CASE WHEN started_at IS NULL THEN NULL\n"
  "      ELSE round((julianday(coalesce(finished_at,'now'))"
                   " - julianday(started_at))*86400.0, 3) END AS duration,\n"
  "    (julianday('now') - julianday(started_at))*86400.0 AS secs,\n"
  "    CASE WHEN batch_relation IS NOT NULL"
        " AND direction='" AM_DIRECTION_FORWARDS "'"
        " AND json_type(j, '$.batches') IS NOT NULL"
        " THEN coalesce(json_extract(j, '$.batches.batches'), 0) END AS bn,\n"
  "    coalesce(json_extract(j, '$.batches.rows'), 0) AS br,\n"
  "    coalesce(json_extract(j, '$.batches.run_rows'), 0) AS brun\n"
  "  FROM (SELECT *, CASE WHEN json_valid(meta) THEN meta END AS j"
        " FROM main.asyncmig_migration))))\n"
  "  ORDER BY id;\n";

/*
** Drop one reference to an AmConn; free it with the last one.  This is the
** xDestroy of every function registered by the module.
*/
void amConnUnref(void *pArg){
  AmConn *p = (AmConn*)pArg;
  if( p && --p->nRef<=0 ) sqlite3_free(p);
}

/**************************************************************************
** Small helpers around the SQLite API.
*/

/*
** Run zSql (no parameters, any number of statements).  On error, set *pzErr
** to "asyncmig: <message>" and return the error code.
*/
int amExec(sqlite3 *db, const char *zSql, char **pzErr){
  char *zMsg = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zMsg);
  if( rc!=SQLITE_OK ){
    *pzErr = sqlite3_mprintf("asyncmig: %s", zMsg ? zMsg : sqlite3_errstr(rc));
  }
  sqlite3_free(zMsg);
  return rc;
}

/* amExec() of a text made by sqlite3_vmprintf() from zFmt */
int amExecf(sqlite3 *db, char **pzErr, const char *zFmt, ...){
  va_list ap;
  char *zSql;
  int rc;
  va_start(ap, zFmt);
  zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = amExec(db, zSql, pzErr);
  sqlite3_free(zSql);
  return rc;
}

/* Prepare zSql; on error set *pzErr like amExec() */
int amPrepare(sqlite3 *db, const char *zSql, sqlite3_stmt **ppStmt,
              char **pzErr){
  int rc = sqlite3_prepare_v2(db, zSql, -1, ppStmt, 0);
  if( rc!=SQLITE_OK ){
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  return rc;
}

/*
** Step pStmt (which writes and returns no rows) to completion and finalize
** it.  On error set *pzErr like amExec().
*/
int amStepFinalize(sqlite3 *db, sqlite3_stmt *pStmt, char **pzErr){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }else{
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/*
** Create the table and the view if they are missing.  A view made by an
** older module (without AM_VIEW_MARK) is replaced, and a table made by it
** gets the batch columns, so that a database written by it can hold and
** show batched migrations too.
*/
int amEnsureSchema(sqlite3 *db, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int bOld = 0;
  int rc = amPrepare(db, "SELECT 1 FROM main.sqlite_schema WHERE type='view'"
                         " AND name='asyncmig_status'"
                         " AND instr(sql, '" AM_VIEW_MARK "')=0",
                 &pStmt, pzErr);
  if( rc==SQLITE_OK ){
    bOld = sqlite3_step(pStmt)==SQLITE_ROW;
    sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && bOld ){
    rc = amExec(db, "DROP VIEW main.asyncmig_status", pzErr);
  }
  if( rc==SQLITE_OK ) rc = amExec(db, amSchemaSql, pzErr);
  if( rc==SQLITE_OK ){
    rc = amPrepare(db, "SELECT 1 FROM pragma_table_info('asyncmig_migration',"
                       " 'main') WHERE name='batch_relation'", &pStmt, pzErr);
  }
  if( rc==SQLITE_OK ){
    bOld = sqlite3_step(pStmt)!=SQLITE_ROW;
    sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK && bOld ){
    rc = amExec(db,
        "ALTER TABLE main.asyncmig_migration ADD COLUMN " AM_BATCH_COLUMN_1 ";"
        "ALTER TABLE main.asyncmig_migration ADD COLUMN " AM_BATCH_COLUMN_2 ";"
        "ALTER TABLE main.asyncmig_migration ADD COLUMN " AM_BATCH_COLUMN_3 ";"
        "ALTER TABLE main.asyncmig_migration ADD COLUMN " AM_BATCH_COLUMN_4 ";",
        pzErr);
  }
  return rc;
}

/**************************************************************************
** Transactions.
**
** asyncmig's own bookkeeping runs in BEGIN IMMEDIATE ... COMMIT when the
** connection is in autocommit mode (BEGIN IMMEDIATE takes the write lock at
** once, waiting as long as the busy timeout says), and in a savepoint of
** the caller's transaction otherwise.
*/

/*
** Refuse to run inside a statement that writes: SQLite can neither open a
** savepoint nor commit while one is running.
*/
static int amCheckCaller(sqlite3 *db, const char *zFunc, char **pzErr){
  sqlite3_stmt *pS;
  for(pS=sqlite3_next_stmt(db, 0); pS; pS=sqlite3_next_stmt(db, pS)){
    if( sqlite3_stmt_busy(pS) && !sqlite3_stmt_readonly(pS) ){
      *pzErr = sqlite3_mprintf("asyncmig: %s() must be called from a SELECT "
          "statement, not from a statement that writes (%s)", zFunc,
          sqlite3_sql(pS));
      return SQLITE_ERROR;
    }
  }
  return SQLITE_OK;
}

/*
** Mark t as begun.  Prepare the statement that amTxnRollback() may need
** after sqlite3_interrupt(), when nothing can be prepared any more.
*/
static void amTxnOpened(AmTxn *t){
  t->bOpen = 1;
  t->p->iDepth++;
  if( t->pAbort==0 ){
    sqlite3_prepare_v2(t->db, "DELETE FROM main.asyncmig_migration WHERE 0",
                       -1, &t->pAbort, 0);
  }
}

/* Begin asyncmig's transaction (or savepoint) */
int amTxnBegin(AmTxn *t, sqlite3 *db, AmConn *p, const char *zFunc,
               char **pzErr){
  int rc;
  memset(t, 0, sizeof(*t));
  t->db = db;
  t->p = p;
  rc = amCheckCaller(db, zFunc, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  t->iLevel = p->iDepth + 1;
  if( sqlite3_get_autocommit(db) ){
    rc = amExec(db, "BEGIN IMMEDIATE", pzErr);
  }else{
    rc = amExecf(db, pzErr, "SAVEPOINT asyncmig_txn_%d", t->iLevel);
    t->bSavepoint = 1;
  }
  if( rc==SQLITE_OK ) amTxnOpened(t);
  return rc;
}

/*
** Begin asyncmig's own transaction again after it ended (committed by
** amTxnCheckpoint(), or rolled back by SQLite itself), with the table and
** view there.  Only for a transaction of its own, not a savepoint.
*/
int amTxnReopen(AmTxn *t, char **pzErr){
  int rc = amExec(t->db, "BEGIN IMMEDIATE", pzErr);
  if( rc!=SQLITE_OK ) return rc;
  amTxnOpened(t);
  return amExec(t->db, amSchemaSql, pzErr);
}

/* Mark t as ended */
void amTxnClose(AmTxn *t){
  if( t->bOpen ){
    t->bOpen = 0;
    t->p->iDepth--;
  }
  sqlite3_finalize(t->pAbort);
  t->pAbort = 0;
}

/*
** Roll back asyncmig's transaction (or savepoint), if it is still open.
** Errors are ignored: this is the way out after an error.
**
** After sqlite3_interrupt() every statement of the connection fails at once
** until the calling statement ends, ROLLBACK included, and nothing can be
** prepared.  SQLite documents that an interrupted INSERT, UPDATE or DELETE
** inside an explicit transaction rolls the whole transaction back: a DELETE
** that deletes nothing, prepared in advance, is used for that.  Then, as a
** last resort, a plain ROLLBACK.  If the transaction is still open after
** that, t->bStuck is set, and the function reports its error with a code
** that makes SQLite roll back when the calling statement ends (see
** amResultError()): the work of a migration must never be left for the
** caller to commit.
*/
void amTxnRollback(AmTxn *t){
  sqlite3 *db = t->db;
  if( !t->bOpen ) return;
  if( !sqlite3_get_autocommit(db) ){
    char *zSql;
    int rc;
    if( t->bSavepoint ){
      zSql = sqlite3_mprintf("ROLLBACK TO asyncmig_txn_%d; "
                             "RELEASE asyncmig_txn_%d", t->iLevel, t->iLevel);
    }else{
      zSql = sqlite3_mprintf("ROLLBACK");
    }
    rc = zSql ? sqlite3_exec(db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK && !sqlite3_get_autocommit(db) && t->pAbort ){
      sqlite3_step(t->pAbort);
      sqlite3_reset(t->pAbort);
    }
    if( rc!=SQLITE_OK && !sqlite3_get_autocommit(db) ){
      sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
    }
    if( rc!=SQLITE_OK && !sqlite3_get_autocommit(db) ) t->bStuck = 1;
  }
  amTxnClose(t);
}

/* Commit asyncmig's transaction (or release its savepoint) */
int amTxnCommit(AmTxn *t, char **pzErr){
  int rc;
  if( !t->bOpen ) return SQLITE_OK;
  if( t->bSavepoint ){
    rc = amExecf(t->db, pzErr, "RELEASE asyncmig_txn_%d", t->iLevel);
  }else{
    rc = amExec(t->db, "COMMIT", pzErr);
  }
  if( rc!=SQLITE_OK ){
    amTxnRollback(t);
  }else{
    amTxnClose(t);
  }
  return rc;
}

/*
** Between two batches: commit what is done, sleep rPause seconds, and
** begin again.  In a savepoint of the caller's transaction nothing can be
** committed (the caller commits everything or nothing) and the pause would
** only hold the caller's write lock longer: nothing happens then.
*/
int amTxnCheckpoint(AmTxn *t, double rPause, char **pzErr){
  int rc;
  if( t->bSavepoint ) return SQLITE_OK;
  rc = amTxnCommit(t, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( rPause>0.0 ) sqlite3_sleep((int)(rPause*1000.0 + 0.5));
  return amTxnReopen(t, pzErr);
}

/**************************************************************************
** Runs of this process.
**
** A batched migration commits between its batches, so its row is IN
** PROGRESS for other connections while it runs, and stays so if the
** process dies (or the call is interrupted) in the middle.  Its meta
** records the pid; such a row is taken for ERROR ("interrupted") as soon as
** no run can be behind it: its process is gone, or it is this process and
** no run of this process is going on.
*/
static int nRunning = 0;   /* Runs of this process going on now */

/* Count a run of this process that starts (+1) or ends (-1) */
void amProcessRunning(int iDelta){
  __sync_fetch_and_add(&nRunning, iDelta);
}

/* True if a run recorded with process id iPid may still be going on */
static int amRunMayBeAlive(sqlite3_int64 iPid){
#ifdef _WIN32
  (void)iPid;
  return 1;
#else
  if( iPid<=0 ) return 1;
  if( iPid==(sqlite3_int64)getpid() ){
    return __sync_fetch_and_add(&nRunning, 0)>0;
  }
  return kill((pid_t)iPid, 0)==0 || errno!=ESRCH;
#endif
}

/**************************************************************************
** The rows.
*/

/* meta as JSON, also if someone wrote something else into it */
#define AM_META_OLD "(CASE WHEN json_valid(meta) THEN meta ELSE '{}' END)"
/*
** The new meta of a row that starts a run or is scheduled: without the
** last error, with zBatches (JSON, parameter ?5) as "batches" or without.
*/
#define AM_META_RESET \
  "CASE WHEN ?5 IS NULL THEN json_remove(" AM_META_OLD ",'$.error'," \
  " '$.cancel_requested','$.batches') ELSE json_set(json_remove(" \
  AM_META_OLD ",'$.error','$.cancel_requested'),'$.batches',json(?5)) END"
/* The meta of a new row: zBatches as "batches", if given */
#define AM_META_NEW \
  "CASE WHEN ?5 IS NULL THEN '{}' ELSE json_object('batches', json(?5)) END"

/* Free the strings of an AmRow */
void amRowFree(AmRow *r){
  sqlite3_free(r->zStatus);
  sqlite3_free(r->zDirection);
  sqlite3_free(r->zForwards);
  sqlite3_free(r->zBackwards);
  sqlite3_free(r->zBatchRelation);
  sqlite3_free(r->zBatchKey);
  sqlite3_free(r->zBatches);
  memset(r, 0, sizeof(*r));
}

/* A copy of column iCol of pStmt (NULL stays NULL) */
static char *amColumnDup(sqlite3_stmt *pStmt, int iCol, int *pbNoMem){
  const char *z = (const char*)sqlite3_column_text(pStmt, iCol);
  char *zCopy;
  if( z==0 ) return 0;
  zCopy = sqlite3_mprintf("%s", z);
  if( zCopy==0 ) *pbNoMem = 1;
  return zCopy;
}

/*
** Read the row of migration zName into r.  A row IN PROGRESS that no run
** can be behind any more (see amRunMayBeAlive()) is ended ERROR first.
*/
int amRowLoad(sqlite3 *db, const char *zName, AmRow *r, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 iPid = 0;
  int rc;
  memset(r, 0, sizeof(*r));
  rc = amPrepare(db, "SELECT status, direction, forwards_sql, backwards_sql,"
                     " json_extract(" AM_META_OLD ", '$.batches'),"
                     " json_extract(" AM_META_OLD ", '$.pid'),"
                     " batch_relation, batch_key, batch_size, batch_pause"
                     " FROM main.asyncmig_migration WHERE name=?1",
                 &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    int bNoMem = 0;
    r->bFound = 1;
    r->zStatus = amColumnDup(pStmt, 0, &bNoMem);
    r->zDirection = amColumnDup(pStmt, 1, &bNoMem);
    r->zForwards = amColumnDup(pStmt, 2, &bNoMem);
    r->zBackwards = amColumnDup(pStmt, 3, &bNoMem);
    r->zBatches = amColumnDup(pStmt, 4, &bNoMem);
    iPid = sqlite3_column_int64(pStmt, 5);
    r->zBatchRelation = amColumnDup(pStmt, 6, &bNoMem);
    r->zBatchKey = amColumnDup(pStmt, 7, &bNoMem);
    r->nBatchSize = sqlite3_column_int64(pStmt, 8);
    r->rBatchPause = sqlite3_column_double(pStmt, 9);
    rc = bNoMem ? SQLITE_NOMEM : SQLITE_OK;
    if( r->zStatus==0 && rc==SQLITE_OK ) r->zStatus = sqlite3_mprintf("");
    if( r->zStatus==0 ) rc = SQLITE_NOMEM;
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }else{
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK && r->bFound
   && strcmp(r->zStatus, AM_STATUS_IN_PROGRESS)==0 && !amRunMayBeAlive(iPid)
  ){
    char *zMsg = sqlite3_mprintf("interrupted: the run of process %lld ended "
                                 "before it could record its outcome", iPid);
    rc = zMsg ? amRowEnd(db, zName, AM_STATUS_ERROR, zMsg,
                         AM_SQLSTATE_QUERY_CANCELED, 0, 0, pzErr)
              : SQLITE_NOMEM;
    sqlite3_free(zMsg);
    sqlite3_free(r->zStatus);
    r->zStatus = sqlite3_mprintf("%s", AM_STATUS_ERROR);
    if( r->zStatus==0 && rc==SQLITE_OK ) rc = SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK ) amRowFree(r);
  return rc;
}

/*
** What makes the migration of row r batched, in *pCfg; NULL if it is not.
*/
const AmBatchCfg *amRowBatchCfg(const AmRow *r, AmBatchCfg *pCfg){
  if( r->zBatchRelation==0 ) return 0;
  pCfg->zRelation = r->zBatchRelation;
  pCfg->zKey = r->zBatchKey;
  pCfg->nSize = r->nBatchSize;
  pCfg->rPause = r->rBatchPause;
  pCfg->zProgress = r->zBatches;
  return pCfg;
}

/*
** Record a new run of migration zName, inserting its row if it has none:
** with bStart 0, SCHEDULED (it waits for asyncmig_run()); with bStart 1,
** IN PROGRESS (it starts now: one more attempt, the pid of this process).
** zDir is its direction, zFwd and zBwd its SQL texts, pCfg what makes a
** batched migration batched (batch.c), NULL for others.
*/
int amRowNewRun(sqlite3 *db, const char *zName, int bStart, const char *zDir,
                const char *zFwd, const char *zBwd, const AmBatchCfg *pCfg,
                char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "INSERT INTO main.asyncmig_migration(name, status, direction,"
      " forwards_sql, backwards_sql, attempts, meta, created_at, updated_at,"
      " started_at, batch_relation, batch_key, batch_size, batch_pause)"
      " VALUES(?1, ?6, ?2, ?3, ?4, ?7, json_set(" AM_META_NEW ", '$.pid', ?8),"
      " " AM_NOW ", " AM_NOW ", CASE WHEN ?7 THEN " AM_NOW " END,"
      " ?9, ?10, ?11, ?12)"
      " ON CONFLICT(name) DO UPDATE SET status=?6,"
      " direction=?2, forwards_sql=?3, backwards_sql=?4,"
      " attempts=attempts+?7, meta=json_set(" AM_META_RESET ", '$.pid', ?8),"
      " updated_at=" AM_NOW ", started_at=CASE WHEN ?7 THEN " AM_NOW " END,"
      " finished_at=NULL, batch_relation=?9, batch_key=?10, batch_size=?11,"
      " batch_pause=?12",
      &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zDir, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 3, zFwd, -1, SQLITE_TRANSIENT);
  if( zBwd ) sqlite3_bind_text(pStmt, 4, zBwd, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 6, bStart ? AM_STATUS_IN_PROGRESS
                                     : AM_STATUS_SCHEDULED, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 7, bStart);
#ifndef _WIN32
  if( bStart ) sqlite3_bind_int64(pStmt, 8, (sqlite3_int64)getpid());
#endif
  if( pCfg ){
    if( pCfg->zProgress ){
      sqlite3_bind_text(pStmt, 5, pCfg->zProgress, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_text(pStmt, 9, pCfg->zRelation, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(pStmt, 10, pCfg->zKey, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(pStmt, 11, pCfg->nSize);
    sqlite3_bind_double(pStmt, 12, pCfg->rPause);
  }
  return amStepFinalize(db, pStmt, pzErr);
}

/*
** Record the end of a run (or a cancel): status zStatus, and for ERROR the
** message zMsg, the SQLSTATE zSqlstate (SQLite has none of its own: NULL
** but for cancels and interrupted runs, as PostgreSQL records them), the
** failing statement zStmt and the detail zDetail (the bounds of a failed
** batch) under "error" in meta.
*/
int amRowEnd(sqlite3 *db, const char *zName, const char *zStatus,
             const char *zMsg, const char *zSqlstate, const char *zStmt,
             const char *zDetail, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "UPDATE main.asyncmig_migration SET status=?2,"
      " updated_at=" AM_NOW ", finished_at=" AM_NOW ","
      " meta=CASE WHEN ?2='" AM_STATUS_ERROR "' THEN json_set("
      "   " AM_META_OLD ", '$.error',"
      "   json_object('message', ?3, 'sqlstate', ?6, 'statement', ?4,"
      "               'detail', ?5))"
      " ELSE meta END"
      " WHERE name=?1",
      &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zStatus, -1, SQLITE_STATIC);
  if( zMsg ) sqlite3_bind_text(pStmt, 3, zMsg, -1, SQLITE_TRANSIENT);
  if( zStmt ) sqlite3_bind_text(pStmt, 4, zStmt, -1, SQLITE_TRANSIENT);
  if( zDetail ) sqlite3_bind_text(pStmt, 5, zDetail, -1, SQLITE_TRANSIENT);
  if( zSqlstate ) sqlite3_bind_text(pStmt, 6, zSqlstate, -1, SQLITE_STATIC);
  rc = amStepFinalize(db, pStmt, pzErr);
  if( rc==SQLITE_OK && sqlite3_changes(db)!=1 ){
    *pzErr = sqlite3_mprintf("asyncmig: the row of migration \"%s\" is gone "
                             "from asyncmig_migration", zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

/*
** Set zPath of the meta of migration zName to zJson (JSON text): "$.batches"
** for the progress of a batched migration after one more batch (batch.c;
** in the transaction of the batch itself, so that both commit together or
** not at all), "$.cancel_requested" to ask a batched run going on in
** another connection to stop at its next checkpoint (as PostgreSQL's
** cancel() of a running migration records it).
*/
int amRowSetMeta(sqlite3 *db, const char *zName, const char *zPath,
                 const char *zJson, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "UPDATE main.asyncmig_migration SET updated_at=" AM_NOW ","
      " meta=json_set(" AM_META_OLD ", ?2, json(?3))"
      " WHERE name=?1", &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 3, zJson, -1, SQLITE_TRANSIENT);
  return amStepFinalize(db, pStmt, pzErr);
}

/* Set *pb to true if a cancel of migration zName's run was requested */
int amRowCancelRequested(sqlite3 *db, const char *zName, int *pb,
                         char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "SELECT json_extract(" AM_META_OLD ", '$.cancel_requested')"
      " FROM main.asyncmig_migration WHERE name=?1", &pStmt, pzErr);
  *pb = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  if( sqlite3_step(pStmt)==SQLITE_ROW ) *pb = sqlite3_column_int(pStmt, 0);
  sqlite3_finalize(pStmt);
  return SQLITE_OK;
}
