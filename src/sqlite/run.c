/*
** 2025-11-25
**
** run.c - checking and running the SQL of a migration (SQLite module).
**
**   amPrepareSql()     validates and translates one SQL text of a
**                      migration (translate.c), and prepares each statement
**                      to find syntax errors before anything runs;
**   amRunMigration()   runs a migration now, inside asyncmig's open
**                      transaction: the start, all its statements in one
**                      savepoint, and the outcome (FINISHED or ERROR with
**                      the message and the failing statement in meta);
**   amRunUndo()        the way back after a failed statement, shared with
**                      the batches of batch.c.
*/
#include "asyncmig_sqlite.h"
#include <string.h>

/*
** Check the syntax of every statement of the (translated) SQL text zSql
** without running anything: each statement is prepared on its own, and a
** syntax error ("syntax error", "incomplete input", "unrecognized token")
** is an error.  Other errors (a table that an earlier statement of the
** migration creates, ...) are left for the run to report.
*/
static int amCheckSyntax(
  sqlite3 *db,
  const char *zSql,
  const char *zWhich,
  char **pzErr
){
  AmScan s;
  int k;
  int rc = amScan(&s, zSql);
  for(k=0; rc==SQLITE_OK && k<s.nStmt; k++){
    sqlite3_stmt *pStmt = 0;
    char *zOne = sqlite3_mprintf("%.*s", amStmtLen(&s, k),
                                 zSql + amStmtStart(&s, k));
    if( zOne==0 ){ rc = SQLITE_NOMEM; break; }
    if( sqlite3_prepare_v2(db, zOne, -1, &pStmt, 0)!=SQLITE_OK ){
      const char *zMsg = sqlite3_errmsg(db);
      if( strstr(zMsg, "syntax error") || strstr(zMsg, "incomplete input")
       || strstr(zMsg, "unrecognized token")
      ){
        *pzErr = sqlite3_mprintf("asyncmig: syntax error in statement %d of "
                                 "the %s SQL: %s", k+1, zWhich, zMsg);
        rc = SQLITE_ERROR;
      }
    }
    sqlite3_finalize(pStmt);
    sqlite3_free(zOne);
  }
  amScanFree(&s);
  return rc;
}

/*
** Validate and translate one SQL text of a migration.  zSql may be NULL
** (then *pzOut is NULL).  bRequired: a NULL or blank text is an error;
** otherwise a blank text counts as NULL.  bSyntax: also prepare each
** statement to find syntax errors (needs db).
*/
int amPrepareSql(
  sqlite3 *db,
  const char *zSql,
  const char *zWhich,
  int bRequired,
  int bSyntax,
  char **pzOut,
  char **pzErr
){
  int nStmt = 0;
  int rc;
  *pzOut = 0;
  if( zSql==0 ){
    if( !bRequired ) return SQLITE_OK;
    *pzErr = sqlite3_mprintf("asyncmig: %s SQL must not be NULL", zWhich);
    return SQLITE_ERROR;
  }
  rc = amTranslate(zSql, zWhich, pzOut, &nStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( nStmt==0 ){
    sqlite3_free(*pzOut);
    *pzOut = 0;
    if( !bRequired ) return SQLITE_OK;
    *pzErr = sqlite3_mprintf("asyncmig: %s SQL must not be empty", zWhich);
    return SQLITE_ERROR;
  }
  if( bSyntax ){
    rc = amCheckSyntax(db, *pzOut, zWhich, pzErr);
    if( rc!=SQLITE_OK ){
      sqlite3_free(*pzOut);
      *pzOut = 0;
    }
  }
  return rc;
}

/*
** Run the statements of zSql one after the other (split with the tail of
** sqlite3_prepare_v2()), each stepped to completion.  On failure, return
** the error code, the message in *pzMsg and the failing statement in
** *pzStmt (both from sqlite3_malloc).
*/
static int amExecMigration(sqlite3 *db, const char *zSql,
                           char **pzMsg, char **pzStmt){
  const char *zTail = zSql;
  int rc = SQLITE_OK;
  while( zTail && zTail[0] ){
    sqlite3_stmt *pStmt = 0;
    const char *zStart = zTail;
    rc = sqlite3_prepare_v2(db, zStart, -1, &pStmt, &zTail);
    if( rc!=SQLITE_OK ){
      AmScan s;
      *pzMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
      if( amScan(&s, zStart)==SQLITE_OK && s.nStmt>0 ){
        *pzStmt = amTrimDup(zStart + amStmtStart(&s, 0), amStmtLen(&s, 0));
      }
      amScanFree(&s);
      return rc;
    }
    if( pStmt==0 ){
      if( zTail==zStart ) break;
      continue;
    }
    do{
      rc = sqlite3_step(pStmt);
    }while( rc==SQLITE_ROW );
    if( rc!=SQLITE_DONE ){
      const char *z = sqlite3_sql(pStmt);
      rc = sqlite3_errcode(db);
      if( rc==SQLITE_OK ) rc = SQLITE_ERROR;
      *pzMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
      *pzStmt = z ? amTrimDup(z, (int)strlen(z)) : 0;
      sqlite3_finalize(pStmt);
      return rc;
    }
    sqlite3_finalize(pStmt);
    rc = SQLITE_OK;
  }
  return rc;
}

/*
** Undo the statements of a run that failed with message zMsg: roll back to
** savepoint zSp.  If SQLite already rolled back the whole transaction (an
** I/O error, a full disk, an OR ROLLBACK conflict, ...), asyncmig's own
** transaction is begun again and *pbLost set (what it had not committed is
** gone; the caller records it again); in a savepoint of the caller's
** transaction that is an error: the caller's work is gone too.
*/
int amRunUndo(AmTxn *t, const char *zSp, const char *zName, const char *zMsg,
              int *pbLost, char **pzErr){
  *pbLost = 0;
  if( !sqlite3_get_autocommit(t->db) ){
    return amExecf(t->db, pzErr, "ROLLBACK TO %s; RELEASE %s", zSp, zSp);
  }
  amTxnClose(t);
  if( t->bSavepoint ){
    *pzErr = sqlite3_mprintf("asyncmig: migration \"%s\" failed and SQLite "
        "rolled back the whole transaction of the caller: %s",
        zName, zMsg ? zMsg : "");
    return SQLITE_ERROR;
  }
  *pbLost = 1;
  return amTxnReopen(t, pzErr);
}

/*
** Run migration zName now, forwards or backwards, inside the open asyncmig
** transaction t: record the start, run the SQL in a savepoint, record the
** end.  zFwd and zBwd are the SQL texts as given (stored in the row),
** pCfg what makes a batched migration batched (kept when it runs
** backwards, NULL for others);
** zRun is the translated text to run.  *pzStatus is set to FINISHED or
** ERROR.  An error return means that nothing could be recorded (the caller
** rolls t back).
*/
int amRunMigration(
  AmTxn *t,
  const char *zName,
  int bBackwards,
  const char *zFwd,
  const char *zBwd,
  const AmBatchCfg *pCfg,
  const char *zRun,
  const char **pzStatus,
  char **pzErr
){
  sqlite3 *db = t->db;
  const char *zDir = bBackwards ? AM_DIRECTION_BACKWARDS
                                : AM_DIRECTION_FORWARDS;
  char *zSp = 0;
  char *zMsg = 0;
  char *zStmt = 0;
  int bLost = 0;
  int rc;

  rc = amRowNewRun(db, zName, 1, zDir, zFwd, zBwd, pCfg, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  zSp = sqlite3_mprintf("asyncmig_run_%d", t->iLevel);
  if( zSp==0 ) return SQLITE_NOMEM;
  rc = amExecf(db, pzErr, "SAVEPOINT %s", zSp);
  if( rc!=SQLITE_OK ) goto run_out;

  amProcessRunning(1);
  rc = amExecMigration(db, zRun, &zMsg, &zStmt);
  amProcessRunning(-1);
  if( rc==SQLITE_OK ){
    rc = amExecf(db, pzErr, "RELEASE %s", zSp);
    if( rc==SQLITE_OK ){
      rc = amRowEnd(db, zName, AM_STATUS_FINISHED, 0, 0, 0, 0, pzErr);
    }
    *pzStatus = AM_STATUS_FINISHED;
  }else{
    rc = amRunUndo(t, zSp, zName, zMsg, &bLost, pzErr);
    if( rc==SQLITE_OK && bLost ){
      rc = amRowNewRun(db, zName, 1, zDir, zFwd, zBwd, pCfg, pzErr);
    }
    if( rc==SQLITE_OK ){
      rc = amRowEnd(db, zName, AM_STATUS_ERROR,
                    zMsg ? zMsg : "unknown error", 0, zStmt, 0, pzErr);
    }
    *pzStatus = AM_STATUS_ERROR;
  }

run_out:
  sqlite3_free(zSp);
  sqlite3_free(zMsg);
  sqlite3_free(zStmt);
  return rc;
}
