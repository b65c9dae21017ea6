/*
** 2025-11-25
**
** batch.c - batched data migrations of the asyncmig SQLite module.
**
** Usage:
**
**   SELECT asyncmig_schedule_batches(NAME, RELATION, BATCH_SQL
**            [, BACKWARDS_SQL [, BATCH_SIZE [, PAUSE [, KEY
**            [, APPLY_ON_SQLITE [, EXECUTE_IMMEDIATELY]]]]]]);
**
** The SQLite side of PostgreSQL's asyncmig.schedule_batches(): BATCH_SQL is
** one DML statement whose parameters $1 and $2 (or ?1 and ?2) are the first
** and the last key of a batch, both inclusive, e.g.
**
**   UPDATE task SET is_labeled = (total_annotations > 0)
**    WHERE id BETWEEN $1 AND $2
**
** The run walks the key of RELATION by keyset (key > last AND key <= upper
** ORDER BY key LIMIT BATCH_SIZE; never OFFSET, never assuming dense
** integers) and runs BATCH_SQL once per batch.  upper is the key's maximum
** when the run starts (meta's "batches"."upper_key"): rows moved or
** inserted beyond it (by a trigger, say) are not part of the run, so a
** batch that moves keys ahead cannot make the run endless.  ORDER BY, max()
** and BETWEEN all compare with the column's own collation.  The row keeps the configuration in the
** columns batch_relation, batch_key, batch_size and batch_pause, and the
** progress in meta's "batches" (see AmBatches), as PostgreSQL's asyncmig
** 1.1 does.  In autocommit mode every batch commits on its own, together
** with its progress, and PAUSE seconds pass
** between two batches; so an error, an interrupt or a crash loses at most
** the batch that was running, and the next asyncmig_run(NAME) resumes
** after the last batch done: no row is updated twice.  Inside a transaction
** of the caller the batches are savepoints of it (committed or rolled back
** with it) and there is no pause.
**
** KEY defaults to the table's single-column primary key (an INTEGER
** PRIMARY KEY is its rowid), else its rowid; a named column must be the
** first column of an index that is not partial.  Rows whose key is NULL are
** never in a batch.  Arguments as for asyncmig_schedule(): with
** APPLY_ON_SQLITE false (the default) only the arguments are checked,
** nothing runs and nothing is recorded (NULL).
*/
#include "asyncmig_sqlite.h"
#include <string.h>

#define AM_BATCH_SIZE_DEFAULT 10000     /* as PostgreSQL's default */

/*
** A batched migration: its configuration (the batch_* columns of its row)
** and its progress (meta's "batches", named as PostgreSQL's asyncmig 1.1
** names them: last_key, batches, rows (keys walked), rows_affected,
** estimate_rows, run_batches, run_rows and upper_key; last_key and
** upper_key keep their SQLite type).
*/
typedef struct AmBatches AmBatches;
struct AmBatches {
  char *zRelation;             /* Table, as named in sqlite_schema */
  char *zKey;                  /* Key column, or a name of the rowid */
  sqlite3_int64 nSize;         /* Keys per batch */
  double rPause;               /* Seconds between batches */
  sqlite3_value *pLast;        /* Last key done (NULL: none yet) */
  sqlite3_int64 nBatches;      /* Batches done, over every run */
  sqlite3_int64 nRows;         /* Keys walked, over every run */
  sqlite3_int64 nAffected;     /* Rows batch_sql changed, over every run */
  sqlite3_int64 nEstimate;     /* Rows of the table when the run began */
  sqlite3_int64 nRunBatches;   /* Batches done in the current run */
  sqlite3_int64 nRunRows;      /* Keys walked in the current run */
  sqlite3_value *pUpper;       /* The key's maximum when the run began */
};

/* Free what an AmBatches holds */
static void amBatchesFree(AmBatches *b){
  sqlite3_free(b->zRelation);
  sqlite3_free(b->zKey);
  sqlite3_value_free(b->pLast);
  sqlite3_value_free(b->pUpper);
  memset(b, 0, sizeof(*b));
}

/*
** Read the batched migration of row r into b: its configuration, and its
** progress unless bReset (a restart, or a forwards run after a backwards
** one: start from the first key).
*/
static int amBatchesRead(sqlite3 *db, const AmRow *r, int bReset,
                         AmBatches *b, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc;
  memset(b, 0, sizeof(*b));
  b->zRelation = sqlite3_mprintf("%s", r->zBatchRelation);
  b->zKey = sqlite3_mprintf("%s", r->zBatchKey);
  b->nSize = r->nBatchSize>0 ? r->nBatchSize : AM_BATCH_SIZE_DEFAULT;
  b->rPause = r->rBatchPause;
  if( b->zRelation==0 || b->zKey==0 ) return SQLITE_NOMEM;
  if( bReset || r->zBatches==0 ) return SQLITE_OK;
  rc = amPrepare(db, "SELECT json_extract(?1,'$.last_key'),"
      " json_extract(?1,'$.batches'), json_extract(?1,'$.rows'),"
      " json_extract(?1,'$.rows_affected')", &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, r->zBatches, -1, SQLITE_STATIC);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    if( sqlite3_column_type(pStmt, 0)!=SQLITE_NULL ){
      b->pLast = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
      if( b->pLast==0 ) rc = SQLITE_NOMEM;
    }
    b->nBatches = sqlite3_column_int64(pStmt, 1);
    b->nRows = sqlite3_column_int64(pStmt, 2);
    b->nAffected = sqlite3_column_int64(pStmt, 3);
  }else{
    rc = sqlite3_errcode(db);
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/* The progress of b as meta's "batches" (JSON from sqlite3_malloc), or 0 */
static char *amBatchesJson(sqlite3 *db, const AmBatches *b){
  sqlite3_stmt *pStmt = 0;
  char *zJson = 0;
  if( sqlite3_prepare_v2(db, "SELECT json_object('last_key', ?1,"
        " 'batches', ?2, 'rows', ?3, 'rows_affected', ?4,"
        " 'estimate_rows', ?5, 'run_batches', ?6, 'run_rows', ?7,"
        " 'upper_key', ?8)",
        -1, &pStmt, 0)!=SQLITE_OK ){
    return 0;
  }
  if( b->pLast ) sqlite3_bind_value(pStmt, 1, b->pLast);
  sqlite3_bind_int64(pStmt, 2, b->nBatches);
  sqlite3_bind_int64(pStmt, 3, b->nRows);
  sqlite3_bind_int64(pStmt, 4, b->nAffected);
  sqlite3_bind_int64(pStmt, 5, b->nEstimate);
  sqlite3_bind_int64(pStmt, 6, b->nRunBatches);
  sqlite3_bind_int64(pStmt, 7, b->nRunRows);
  if( b->pUpper ) sqlite3_bind_value(pStmt, 8, b->pUpper);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    zJson = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
  }
  sqlite3_finalize(pStmt);
  return zJson;
}

/*
** Write b (configuration and progress) into the row of migration zName:
** as a new run with amRowNewRun() (bNewRun 1: IN PROGRESS, 0: SCHEDULED,
** with the SQL texts zSql and zBwd), or, bNewRun<0, as the progress after
** a batch with amRowSetMeta().
*/
static int amBatchesWrite(sqlite3 *db, const char *zName, int bNewRun,
                          const char *zSql, const char *zBwd,
                          const AmBatches *b, char **pzErr){
  char *zJson = amBatchesJson(db, b);
  AmBatchCfg cfg;
  int rc;
  if( zJson==0 ) return SQLITE_NOMEM;
  cfg.zRelation = b->zRelation;
  cfg.zKey = b->zKey;
  cfg.nSize = b->nSize;
  cfg.rPause = b->rPause;
  cfg.zProgress = zJson;
  if( bNewRun<0 ){
    rc = amRowSetMeta(db, zName, "$.batches", zJson, pzErr);
  }else{
    rc = amRowNewRun(db, zName, bNewRun, AM_DIRECTION_FORWARDS, zSql, zBwd,
                     &cfg, pzErr);
  }
  sqlite3_free(zJson);
  return rc;
}

/**************************************************************************
** Checks: the table, its key, the batch statement.
*/

/* The first of rowid, _rowid_, oid that is not a column of zRel, or 0 */
static const char *amRowidName(sqlite3 *db, const char *zRel){
  static const char *azRowid[] = { "rowid", "_rowid_", "oid" };
  int i;
  for(i=0; i<AM_COUNT(azRowid); i++){
    sqlite3_stmt *pStmt = 0;
    int bColumn = 1;
    if( sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1, 'main')"
                           " WHERE name=?2 COLLATE NOCASE", -1, &pStmt, 0)
        ==SQLITE_OK ){
      sqlite3_bind_text(pStmt, 1, zRel, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, azRowid[i], -1, SQLITE_STATIC);
      bColumn = sqlite3_step(pStmt)==SQLITE_ROW;
    }
    sqlite3_finalize(pStmt);
    if( !bColumn ) return azRowid[i];
  }
  return 0;
}

/*
** One row of SQL zSql with text parameters z1 and z2 (z2 may be NULL):
** its first two columns as *pz1 and *pz2 (copies, NULL if none), and 1 if
** there was a row.  Used for the catalog lookups below.
*/
static int amLookup(sqlite3 *db, const char *zSql, const char *z1,
                    const char *z2, char **pz1, char **pz2, int *pbFound){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  *pz1 = *pz2 = 0;
  *pbFound = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, z1, -1, SQLITE_STATIC);
  if( z2 ) sqlite3_bind_text(pStmt, 2, z2, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pbFound = 1;
    if( sqlite3_column_type(pStmt, 0)!=SQLITE_NULL ){
      *pz1 = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
    }
    if( sqlite3_column_type(pStmt, 1)!=SQLITE_NULL ){
      *pz2 = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 1));
    }
    rc = SQLITE_OK;
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/*
** Check that zRel is a table of the main database with a usable key, and
** set b->zRelation (its name as created) and b->zKey (the key column as
** declared, or a name of the rowid).  zKey: the key asked for, or NULL for
** the default (see the file header).
*/
static int amBatchKey(sqlite3 *db, const char *zRel, const char *zKey,
                      AmBatches *b, char **pzErr){
  char *zType = 0, *zName = 0, *zCol = 0, *zPk = 0;
  int bFound = 0;
  int bRowid = 0;              /* The table has a rowid */
  const char *zRowid = 0;      /* Its name, if no column hides it */
  int rc = amLookup(db, "SELECT name, type || ',' || wr FROM"
                    " pragma_table_list WHERE schema='main'"
                    " AND name=?1 COLLATE NOCASE", zRel, 0,
                    &zName, &zType, &bFound);
  if( rc==SQLITE_OK && !bFound ){
    *pzErr = sqlite3_mprintf("asyncmig: there is no table \"%s\" in the main "
                             "database", zRel);
    rc = SQLITE_ERROR;
  }else if( rc==SQLITE_OK && strncmp(zType ? zType : "", "table,", 6)!=0 ){
    *pzErr = sqlite3_mprintf("asyncmig: \"%s\" is not an ordinary table "
                             "(%s)", zRel, zType ? zType : "?");
    rc = SQLITE_ERROR;
  }
  if( rc==SQLITE_OK ){
    bRowid = strcmp(zType, "table,0")==0;
    /* The single-column primary key, and the column zKey */
    rc = amLookup(db, "SELECT (SELECT name FROM pragma_table_info(?1,'main')"
                  "  WHERE pk=1 AND (SELECT count(*) FROM"
                  "  pragma_table_info(?1,'main') WHERE pk>0)=1),"
                  " (SELECT name FROM pragma_table_info(?1,'main')"
                  "  WHERE name=?2 COLLATE NOCASE)", zName, zKey,
                  &zPk, &zCol, &bFound);
  }
  if( rc==SQLITE_OK && bRowid ) zRowid = amRowidName(db, zName);
  if( rc==SQLITE_OK && zKey==0 ){
    if( zPk ){
      b->zKey = sqlite3_mprintf("%s", zPk);
    }else if( zRowid ){
      b->zKey = sqlite3_mprintf("%s", zRowid);
    }else{
      *pzErr = sqlite3_mprintf("asyncmig: table \"%s\" has no single-column "
          "primary key and no rowid to walk; name the key column (one with "
          "an index)", zName);
      rc = SQLITE_ERROR;
    }
  }else if( rc==SQLITE_OK && zCol ){
    char *zIdx = 0, *zUnused = 0;
    if( !(zPk && sqlite3_stricmp(zPk, zCol)==0) ){
      rc = amLookup(db, "SELECT il.name, NULL FROM"
                    " pragma_index_list(?1,'main') AS il,"
                    " pragma_index_info(il.name,'main') AS ii"
                    " WHERE il.partial=0 AND ii.seqno=0"
                    " AND ii.name=?2 COLLATE NOCASE", zName, zCol,
                    &zIdx, &zUnused, &bFound);
      if( rc==SQLITE_OK && !bFound ){
        *pzErr = sqlite3_mprintf("asyncmig: key column \"%s\" of table "
            "\"%s\" has no index; create one (CREATE INDEX ... ON %s(%s)) "
            "or use the primary key", zCol, zName, zName, zCol);
        rc = SQLITE_ERROR;
      }
    }
    if( rc==SQLITE_OK ) b->zKey = sqlite3_mprintf("%s", zCol);
    sqlite3_free(zIdx);
    sqlite3_free(zUnused);
  }else if( rc==SQLITE_OK ){
    if( zRowid && sqlite3_stricmp(zRowid, zKey)==0 ){
      b->zKey = sqlite3_mprintf("%s", zRowid);
    }else{
      *pzErr = sqlite3_mprintf("asyncmig: table \"%s\" has no column \"%s\" "
                               "for the key", zName, zKey);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK ){
    b->zRelation = zName;
    zName = 0;
    if( b->zKey==0 ) rc = SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_free(zType);
  sqlite3_free(zName);
  sqlite3_free(zCol);
  sqlite3_free(zPk);
  return rc;
}

/*
** Translate and prepare the batch statement zSql: one DML statement that
** writes, whose parameters are exactly ?1 and ?2.  On success *ppStmt is
** the prepared statement.
*/
static int amBatchStmt(sqlite3 *db, const char *zSql, sqlite3_stmt **ppStmt,
                       char **pzErr){
  char *zRun = 0;
  const char *z1, *z2;
  int rc = amTranslateBatch(zSql, &zRun, pzErr);
  *ppStmt = 0;
  if( rc!=SQLITE_OK ) return rc;
  if( sqlite3_prepare_v2(db, zRun, -1, ppStmt, 0)!=SQLITE_OK ){
    *pzErr = sqlite3_mprintf("asyncmig: batch_sql: %s", sqlite3_errmsg(db));
    rc = SQLITE_ERROR;
  }else if( *ppStmt==0 || sqlite3_stmt_readonly(*ppStmt) ){
    *pzErr = sqlite3_mprintf("asyncmig: batch_sql must be one DML statement "
                             "that writes (INSERT, UPDATE, DELETE)");
    rc = SQLITE_ERROR;
  }else{
    z1 = sqlite3_bind_parameter_name(*ppStmt, 1);
    z2 = sqlite3_bind_parameter_name(*ppStmt, 2);
    if( sqlite3_bind_parameter_count(*ppStmt)!=2 || z1==0 || z2==0
     || strcmp(z1, "?1")!=0 || strcmp(z2, "?2")!=0
    ){
      *pzErr = sqlite3_mprintf("asyncmig: batch_sql must use exactly the "
          "parameters $1 and $2 (the first and the last key of a batch), "
          "and no others");
      rc = SQLITE_ERROR;
    }
  }
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(*ppStmt);
    *ppStmt = 0;
  }
  sqlite3_free(zRun);
  return rc;
}

/**************************************************************************
** The run.
*/

/* The state of one run, for amBatchOne() */
typedef struct AmBatchRun AmBatchRun;
struct AmBatchRun {
  AmCall *c;
  const char *zName;
  AmBatches *b;                /* Configuration and progress */
  sqlite3_stmt *pFirst;        /* The first batch's keys */
  sqlite3_stmt *pNext;         /* The keys after ?1 */
  sqlite3_stmt *pBatch;        /* batch_sql */
  char *zMsg;                  /* A failed batch: its message */
  char *zDetail;               /* ... and its bounds */
};

/*
** Run the next batch of r inside r->c's transaction: read its keys, run
** the batch statement over them in a savepoint, and record the progress.
** Set *pnKeys to the number of keys read (0: nothing was left).  A batch
** that fails sets r->zMsg and r->zDetail and returns SQLITE_OK after
** undoing it; an error return means nothing could be recorded.
*/
static int amBatchOne(AmBatchRun *r, int *pnKeys){
  sqlite3 *db = r->c->db;
  sqlite3_stmt *pKeys = r->b->pLast ? r->pNext : r->pFirst;
  sqlite3_value *pFirst = 0, *pLast = 0;
  char *zSp = 0;
  int nKeys = 0;
  int bLost = 0;
  int rc;

  if( r->b->pLast ) sqlite3_bind_value(pKeys, 1, r->b->pLast);
  sqlite3_bind_int64(pKeys, 2, r->b->nSize);
  if( r->b->pUpper ) sqlite3_bind_value(pKeys, 3, r->b->pUpper);
  while( (rc = sqlite3_step(pKeys))==SQLITE_ROW ){
    sqlite3_value_free(pLast);
    pLast = sqlite3_value_dup(sqlite3_column_value(pKeys, 0));
    if( nKeys++==0 ) pFirst = sqlite3_value_dup(pLast);
    if( pLast==0 || pFirst==0 ){ rc = SQLITE_NOMEM; break; }
  }
  if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM ){
    r->c->zErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_reset(pKeys);
  *pnKeys = nKeys;
  if( rc!=SQLITE_OK || nKeys==0 ) goto one_out;
  if( sqlite3_value_type(pLast)==SQLITE_BLOB ){
    r->zMsg = sqlite3_mprintf("keys of type BLOB cannot be recorded as the "
                              "progress of a batched migration");
    goto one_out;
  }

  zSp = sqlite3_mprintf("asyncmig_run_%d", r->c->t.iLevel);
  rc = zSp ? amExecf(db, &r->c->zErr, "SAVEPOINT %s", zSp) : SQLITE_NOMEM;
  if( rc!=SQLITE_OK ) goto one_out;
  sqlite3_bind_value(r->pBatch, 1, pFirst);
  sqlite3_bind_value(r->pBatch, 2, pLast);
  while( (rc = sqlite3_step(r->pBatch))==SQLITE_ROW ){}
  if( rc==SQLITE_DONE ){
    sqlite3_int64 nChanged = sqlite3_changes(db);
    sqlite3_reset(r->pBatch);
    rc = amExecf(db, &r->c->zErr, "RELEASE %s", zSp);
    if( rc==SQLITE_OK ){
      r->b->nBatches++;
      r->b->nRows += nKeys;
      r->b->nAffected += nChanged;
      r->b->nRunBatches++;
      r->b->nRunRows += nKeys;
      sqlite3_value_free(r->b->pLast);
      r->b->pLast = pLast;
      pLast = 0;
      rc = amBatchesWrite(db, r->zName, -1, 0, 0, r->b, &r->c->zErr);
    }
  }else{
    r->zMsg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
    r->zDetail = sqlite3_mprintf("batch %lld: keys %s to %s",
        r->b->nBatches+1, sqlite3_value_text(pFirst),
        sqlite3_value_text(pLast));
    sqlite3_reset(r->pBatch);
    rc = amRunUndo(&r->c->t, zSp, r->zName, r->zMsg, &bLost, &r->c->zErr);
    if( r->zMsg==0 || r->zDetail==0 ) rc = SQLITE_NOMEM;
  }

one_out:
  sqlite3_free(zSp);
  sqlite3_value_free(pFirst);
  sqlite3_value_free(pLast);
  return rc;
}

/*
** Prepare the two keyset statements of run r (first batch, next ones),
** both up to the upper bound ?3 (NULL, an empty table: no batch)
*/
static int amBatchKeysets(AmBatchRun *r){
  const AmBatches *b = r->b;
  char *zFirst = sqlite3_mprintf("SELECT \"%w\" FROM main.\"%w\" WHERE "
      "\"%w\" IS NOT NULL AND \"%w\" <= ?3 ORDER BY 1 LIMIT ?2",
      b->zKey, b->zRelation, b->zKey, b->zKey);
  char *zNext = sqlite3_mprintf("SELECT \"%w\" FROM main.\"%w\" WHERE "
      "\"%w\" > ?1 AND \"%w\" <= ?3 ORDER BY 1 LIMIT ?2",
      b->zKey, b->zRelation, b->zKey, b->zKey);
  int rc = (zFirst && zNext)
         ? amPrepare(r->c->db, zFirst, &r->pFirst, &r->c->zErr)
         : SQLITE_NOMEM;
  if( rc==SQLITE_OK ) rc = amPrepare(r->c->db, zNext, &r->pNext, &r->c->zErr);
  sqlite3_free(zFirst);
  sqlite3_free(zNext);
  return rc;
}

/*
** Set b->nEstimate to the number of rows of the table now, and b->pUpper to
** the key's maximum now (the run's upper bound)
*/
static int amBatchEstimate(sqlite3 *db, AmBatches *b, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char *zSql = sqlite3_mprintf("SELECT count(*), max(\"%w\") FROM main.\"%w\"",
                               b->zKey, b->zRelation);
  int rc = zSql ? amPrepare(db, zSql, &pStmt, pzErr) : SQLITE_NOMEM;
  sqlite3_value_free(b->pUpper);
  b->pUpper = 0;
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    b->nEstimate = sqlite3_column_int64(pStmt, 0);
    if( sqlite3_column_type(pStmt, 1)!=SQLITE_NULL ){
      b->pUpper = sqlite3_value_dup(sqlite3_column_value(pStmt, 1));
      if( b->pUpper==0 ) rc = SQLITE_NOMEM;
    }
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  return rc;
}

/*
** Run batched migration zName now, forwards, from the progress in b,
** inside the open transaction of call c: check the table, its key and the
** statement again, record the start, then batch after batch (amBatchOne())
** with a checkpoint between two (amTxnCheckpoint()), then the end.  zSql
** and zBwd are the texts as given.  *pzStatus is set to FINISHED or ERROR.
*/
static int amBatchExec(AmCall *c, const char *zName, const char *zSql,
                       const char *zBwd, AmBatches *b, const char **pzStatus){
  sqlite3 *db = c->db;
  AmBatchRun r;
  AmBatches check;
  int nKeys = 0;
  int bCanceled = 0;
  int rc;

  memset(&r, 0, sizeof(r));
  r.c = c;
  r.zName = zName;
  r.b = b;
  memset(&check, 0, sizeof(check));
  rc = amBatchKey(db, b->zRelation, b->zKey, &check, &c->zErr);
  amBatchesFree(&check);
  if( rc==SQLITE_OK ) rc = amBatchStmt(db, zSql, &r.pBatch, &c->zErr);
  if( rc==SQLITE_OK ) rc = amBatchKeysets(&r);
  if( rc==SQLITE_OK ) rc = amBatchEstimate(db, b, &c->zErr);
  b->nRunBatches = b->nRunRows = 0;
  if( rc==SQLITE_OK ){
    rc = amBatchesWrite(db, zName, 1, zSql, zBwd, b, &c->zErr);
  }
  if( rc==SQLITE_OK ){
    amProcessRunning(1);
    rc = amTxnCheckpoint(&c->t, 0.0, &c->zErr);
    while( rc==SQLITE_OK && r.zMsg==0 ){
      rc = amBatchOne(&r, &nKeys);
      if( rc!=SQLITE_OK || r.zMsg || nKeys<b->nSize ) break;
      rc = amTxnCheckpoint(&c->t, b->rPause, &c->zErr);
      if( rc==SQLITE_OK ){
        rc = amRowCancelRequested(db, zName, &bCanceled, &c->zErr);
      }
      if( bCanceled ) break;
    }
    amProcessRunning(-1);
  }
  if( rc==SQLITE_OK ){
    const char *zMsg = bCanceled ? "canceled" : r.zMsg;
    *pzStatus = zMsg ? AM_STATUS_ERROR : AM_STATUS_FINISHED;
    rc = amRowEnd(db, zName, *pzStatus, zMsg,
                  bCanceled ? AM_SQLSTATE_QUERY_CANCELED : 0,
                  r.zMsg ? zSql : 0, r.zDetail, &c->zErr);
  }
  sqlite3_finalize(r.pFirst);
  sqlite3_finalize(r.pNext);
  sqlite3_finalize(r.pBatch);
  sqlite3_free(r.zMsg);
  sqlite3_free(r.zDetail);
  return rc;
}

/*
** Run the batched migration of call c (its row read by amCallOpen())
** forwards: resume after the last batch done, or start from the first key
** when bRestart or when its last run was backwards.  For asyncmig_run().
*/
int amBatchRun(AmCall *c, const char *zName, int bRestart,
               const char **pzStatus){
  int bReset = bRestart || c->r.zDirection==0
            || strcmp(c->r.zDirection, AM_DIRECTION_FORWARDS)!=0;
  AmBatches b;
  int rc = amBatchesRead(c->db, &c->r, bReset, &b, &c->zErr);
  if( rc==SQLITE_OK ){
    rc = amBatchExec(c, zName, c->r.zForwards, c->r.zBackwards, &b, pzStatus);
  }
  amBatchesFree(&b);
  return rc;
}

/**************************************************************************
** The SQL function.
*/

/* Read the BATCH_SIZE argument: NULL is the default; an integer > 0 */
static int amBatchSizeArg(AmCall *c, sqlite3_value *pVal, sqlite3_int64 *pn){
  if( c->rc!=SQLITE_OK || sqlite3_value_type(pVal)==SQLITE_NULL ){
    return c->rc;
  }
  if( sqlite3_value_numeric_type(pVal)!=SQLITE_INTEGER
   || sqlite3_value_int64(pVal)<=0 || sqlite3_value_int64(pVal)>0x7fffffff
  ){
    return amCallFail(c, "asyncmig: batch_size must be an integer greater "
                      "than 0, not %s", sqlite3_value_text(pVal));
  }
  *pn = sqlite3_value_int64(pVal);
  return SQLITE_OK;
}

/* Read the PAUSE argument: NULL is 0; seconds, or a text for amParsePause() */
static int amPauseArg(AmCall *c, sqlite3_value *pVal, double *pr){
  int eType = sqlite3_value_type(pVal);
  if( c->rc!=SQLITE_OK || eType==SQLITE_NULL ) return c->rc;
  if( eType==SQLITE_INTEGER || eType==SQLITE_FLOAT ){
    *pr = sqlite3_value_double(pVal);
    if( *pr>=0.0 && *pr<=1e9 ) return SQLITE_OK;
  }else if( eType==SQLITE_TEXT
         && amParsePause((const char*)sqlite3_value_text(pVal), pr)==0 ){
    return SQLITE_OK;
  }
  return amCallFail(c, "asyncmig: pause must be a number of seconds of 0 or "
                    "more (or a text such as '250ms', '2 seconds'), not %s",
                    sqlite3_value_text(pVal));
}

/*
** asyncmig_schedule_batches(NAME, RELATION, BATCH_SQL [, BACKWARDS_SQL
**   [, BATCH_SIZE [, PAUSE [, KEY [, APPLY_ON_SQLITE
**   [, EXECUTE_IMMEDIATELY]]]]]])
**
** See the file header.  Checked before anything is recorded: the name,
** BATCH_SQL (one DML statement with exactly $1 and $2), BATCH_SIZE > 0,
** PAUSE >= 0, and with APPLY_ON_SQLITE the table and its key.  Idempotent
** by name as asyncmig_schedule(); a row in ERROR resumes after its last
** batch done (same table and key).
*/
void amScheduleBatchesFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  const char *zName = 0, *zRel = 0, *zSql = 0, *zBwd = 0, *zKey = 0;
  const char *zResult = 0;
  char *zRun = 0;
  int bApply = 0, bImmediate = 0;
  AmBatches b;
  AmCall c;

  memset(&b, 0, sizeof(b));
  b.nSize = AM_BATCH_SIZE_DEFAULT;
  if( amCallStart(&c, ctx, "asyncmig_schedule_batches", argc, 3, 9, "name, "
        "relation, batch_sql [, backwards_sql [, batch_size [, pause "
        "[, key [, apply_on_sqlite [, execute_immediately]]]]]]")==0 ){
    zName = amCallName(&c, argv[0]);
    amCallText(&c, argv[1], "relation", &zRel);
    if( c.rc==SQLITE_OK && amIsBlank(zRel) ){
      amCallFail(&c, "asyncmig: relation must name a table");
    }
    amCallText(&c, argv[2], "batch_sql", &zSql);
    if( argc>3 ) amCallText(&c, argv[3], "backwards SQL", &zBwd);
    if( argc>4 ) amBatchSizeArg(&c, argv[4], &b.nSize);
    if( argc>5 ) amPauseArg(&c, argv[5], &b.rPause);
    if( argc>6 ) amCallText(&c, argv[6], "key", &zKey);
    amCallBool(&c, argc, argv, 7, "apply_on_sqlite", &bApply);
    amCallBool(&c, argc, argv, 8, "execute_immediately", &bImmediate);
  }
  if( c.rc==SQLITE_OK ) c.rc = amTranslateBatch(zSql, &zRun, &c.zErr);
  sqlite3_free(zRun);
  zRun = 0;
  if( c.rc==SQLITE_OK ){
    c.rc = amPrepareSql(c.db, zBwd, AM_DIRECTION_BACKWARDS, 0, bApply, &zRun,
                        &c.zErr);
    if( zRun==0 ) zBwd = 0;          /* Blank backwards SQL: none */
  }
  if( bApply && amCallOpen(&c, zName)==SQLITE_OK ){
    sqlite3_stmt *pCheck = 0;
    c.rc = amBatchKey(c.db, zRel, zKey, &b, &c.zErr);
    if( c.rc==SQLITE_OK ) c.rc = amBatchStmt(c.db, zSql, &pCheck, &c.zErr);
    sqlite3_finalize(pCheck);
  }
  if( bApply && c.rc==SQLITE_OK && !amScheduleKeeps(&c.r)
   && c.r.zBatchRelation && c.r.zDirection
   && strcmp(c.r.zDirection, AM_DIRECTION_FORWARDS)==0
  ){
    /* A batched run that did not finish: resume after its last batch */
    AmBatches old;
    c.rc = amBatchesRead(c.db, &c.r, 0, &old, &c.zErr);
    if( c.rc==SQLITE_OK && (strcmp(old.zRelation, b.zRelation)!=0
                            || strcmp(old.zKey, b.zKey)!=0) ){
      amCallFail(&c, "asyncmig: migration \"%s\" was batched over %s(%s); "
          "it resumes over the same table and key only (use a new name, "
          "or asyncmig_run(name, 0, 1) to start it again)",
          zName, old.zRelation, old.zKey);
    }
    b.pLast = old.pLast;
    old.pLast = 0;
    b.nBatches = old.nBatches;
    b.nRows = old.nRows;
    b.nAffected = old.nAffected;
    amBatchesFree(&old);
  }
  if( bApply && c.rc==SQLITE_OK ){
    if( amScheduleKeeps(&c.r) ){
      zResult = c.r.zStatus;
    }else if( c.p->bAllowScheduled && !bImmediate ){
      c.rc = amBatchesWrite(c.db, zName, 0, zSql, zBwd, &b, &c.zErr);
      zResult = AM_STATUS_SCHEDULED;
    }else{
      c.rc = amBatchExec(&c, zName, zSql, zBwd, &b, &zResult);
    }
  }
  amCallClose(&c, zResult);
  sqlite3_free(zRun);
  amBatchesFree(&b);
}
