/*
** 2025-11-25
**
** asyncmig_sqlite.h - what the files of the SQLite module share.
**
** The module is one loadable extension, asyncmig_sqlite.so, built from:
**
**   asyncmig_sqlite.c  the entry point and asyncmig_schedule(), _run(),
**                      _cancel(), _allow_scheduled()
**   batch.c            asyncmig_schedule_batches() and the batch runner
**   call.c             the frame of every SQL function: arguments, the one
**                      open (transaction, table, row) and close (commit or
**                      roll back, result or error) pair
**   run.c              checking and running the SQL of a migration
**   table.c            asyncmig_migration: its schema, its rows, and the
**                      transactions asyncmig writes them in
**   translate.c        the tokenizer and the PostgreSQL-to-SQLite
**                      translator (pure functions, see test/sqlite/unit.c)
**
** Arrows point one way only: asyncmig_sqlite.c -> batch.c -> call.c, run.c
** -> table.c -> translate.c.  Every file but asyncmig_sqlite.c uses
** SQLITE_EXTENSION_INIT3; the functions shared here are hidden from the
** dynamic symbol table by -fvisibility=hidden (see sqlite.mk).
**
** Compiled with -DSQLITE_CORE (the unit test), the files call libsqlite3
** directly instead of through the sqlite3_api table.
*/
#ifndef ASYNCMIG_SQLITE_H
#define ASYNCMIG_SQLITE_H

#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3
#include "vocabulary.h"

/* The current time, as stored in every *_at column (ISO 8601, UTC) */
#define AM_NOW "strftime('%Y-%m-%d %H:%M:%f+00:00','now')"

/* Number of elements of a static array */
#define AM_COUNT(a) ((int)(sizeof(a)/sizeof((a)[0])))

/**************************************************************************
** translate.c
*/
#define AM_TK_SPACE    1
#define AM_TK_COMMENT  2
#define AM_TK_STRING   3
#define AM_TK_ID       4      /* A quoted identifier */
#define AM_TK_WORD     5      /* A keyword, a bare identifier or a number */
#define AM_TK_SEMI     6
#define AM_TK_LP       7
#define AM_TK_RP       8
#define AM_TK_OTHER    9

/* One significant token: its place in the text and its type */
typedef struct AmToken AmToken;
struct AmToken {
  int iOff;              /* Byte offset in the text */
  int n;                 /* Length in bytes */
  int eType;             /* AM_TK_* */
};

/* One statement: a range of significant tokens, without its ';' */
typedef struct AmStmt AmStmt;
struct AmStmt {
  int iFirst;            /* Index of its first token */
  int iEnd;              /* One past its last token */
};

/* A text cut into significant tokens and statements */
typedef struct AmScan AmScan;
struct AmScan {
  const char *z;         /* The text */
  AmToken *aTok;         /* Significant tokens (no spaces, no comments) */
  int nTok, nTokAlloc;
  AmStmt *aStmt;         /* Statements */
  int nStmt, nStmtAlloc;
};

int amIsSpace(unsigned char c);
int amIsBlank(const char *z);
char *amTrimDup(const char *z, int n);
int amScan(AmScan *p, const char *z);
void amScanFree(AmScan *p);
int amIsKw(const AmScan *p, int i, int iEnd, const char *zKw);
int amStmtStart(const AmScan *p, int iStmt);
int amStmtLen(const AmScan *p, int iStmt);
int amTranslate(const char *zIn, const char *zWhich, char **pzOut,
                int *pnStmt, char **pzErr);
int amTranslateBatch(const char *zIn, char **pzOut, char **pzErr);
int amParsePause(const char *z, double *pSeconds);

/**************************************************************************
** table.c
*/

/* State of one connection, shared by all functions registered on it */
typedef struct AmConn AmConn;
struct AmConn {
  int nRef;              /* Number of functions registered with this object */
  int bAllowScheduled;   /* asyncmig_allow_scheduled() setting */
  int iDepth;            /* Nesting of asyncmig transactions (savepoints) */
};

/* asyncmig's own transaction, or a savepoint of the caller's (table.c) */
typedef struct AmTxn AmTxn;
struct AmTxn {
  sqlite3 *db;
  AmConn *p;
  int bOpen;             /* Begun and not yet ended */
  int bSavepoint;        /* A savepoint in the caller's transaction */
  int iLevel;            /* Depth, for savepoint names */
  int bStuck;            /* Could not be rolled back (see amTxnRollback) */
  sqlite3_stmt *pAbort;  /* Prepared in advance, see amTxnRollback() */
};

/*
** What makes a migration batched: the columns batch_relation, batch_key,
** batch_size and batch_pause of its row, and its progress, meta's
** "batches" (batch.c).
*/
typedef struct AmBatchCfg AmBatchCfg;
struct AmBatchCfg {
  const char *zRelation; /* The table whose key is walked */
  const char *zKey;      /* Its key column (or a name of the rowid) */
  sqlite3_int64 nSize;   /* Keys per batch */
  double rPause;         /* Seconds between two batches */
  const char *zProgress; /* meta's "batches" (JSON), NULL for none */
};

/* One row of asyncmig_migration, as far as the functions need it */
typedef struct AmRow AmRow;
struct AmRow {
  int bFound;
  char *zStatus;
  char *zDirection;
  char *zForwards;
  char *zBackwards;
  char *zBatchRelation;  /* batch_relation: NULL unless batched */
  char *zBatchKey;       /* batch_key */
  sqlite3_int64 nBatchSize;  /* batch_size */
  double rBatchPause;    /* batch_pause, in seconds */
  char *zBatches;        /* meta's "batches" (JSON), the progress */
};

extern const char amSchemaSql[];
void amConnUnref(void *pArg);
int amExec(sqlite3 *db, const char *zSql, char **pzErr);
int amExecf(sqlite3 *db, char **pzErr, const char *zFmt, ...);
int amPrepare(sqlite3 *db, const char *zSql, sqlite3_stmt **ppStmt,
              char **pzErr);
int amStepFinalize(sqlite3 *db, sqlite3_stmt *pStmt, char **pzErr);
int amEnsureSchema(sqlite3 *db, char **pzErr);

int amTxnBegin(AmTxn *t, sqlite3 *db, AmConn *p, const char *zFunc,
               char **pzErr);
int amTxnReopen(AmTxn *t, char **pzErr);
void amTxnClose(AmTxn *t);
void amTxnRollback(AmTxn *t);
int amTxnCommit(AmTxn *t, char **pzErr);
int amTxnCheckpoint(AmTxn *t, double rPause, char **pzErr);

void amRowFree(AmRow *r);
int amRowLoad(sqlite3 *db, const char *zName, AmRow *r, char **pzErr);
const AmBatchCfg *amRowBatchCfg(const AmRow *r, AmBatchCfg *pCfg);
int amRowNewRun(sqlite3 *db, const char *zName, int bStart, const char *zDir,
                const char *zFwd, const char *zBwd, const AmBatchCfg *pCfg,
                char **pzErr);
int amRowEnd(sqlite3 *db, const char *zName, const char *zStatus,
             const char *zMsg, const char *zSqlstate, const char *zStmt,
             const char *zDetail, char **pzErr);
int amRowSetMeta(sqlite3 *db, const char *zName, const char *zPath,
                 const char *zJson, char **pzErr);
int amRowCancelRequested(sqlite3 *db, const char *zName, int *pb,
                         char **pzErr);
void amProcessRunning(int iDelta);

/**************************************************************************
** run.c
*/
int amPrepareSql(sqlite3 *db, const char *zSql, const char *zWhich,
                 int bRequired, int bSyntax, char **pzOut, char **pzErr);
int amRunUndo(AmTxn *t, const char *zSp, const char *zName, const char *zMsg,
              int *pbLost, char **pzErr);
int amRunMigration(AmTxn *t, const char *zName, int bBackwards,
                   const char *zFwd, const char *zBwd, const AmBatchCfg *pCfg,
                   const char *zRun, const char **pzStatus, char **pzErr);

/**************************************************************************
** call.c
*/

/* One call of an SQL function of the module, from start to result */
typedef struct AmCall AmCall;
struct AmCall {
  sqlite3_context *ctx;
  sqlite3 *db;
  AmConn *p;
  const char *zFunc;     /* Its SQL name, for messages */
  int rc;                /* The first error, SQLITE_OK if none */
  char *zErr;            /* Its message (sqlite3_malloc) */
  AmTxn t;               /* asyncmig's transaction, after amCallOpen() */
  AmRow r;               /* The migration's row, after amCallOpen() */
};

int amCallStart(AmCall *c, sqlite3_context *ctx, const char *zFunc,
                int argc, int nMin, int nMax, const char *zUsage);
int amCallFail(AmCall *c, const char *zFmt, ...);
int amCallNoMem(AmCall *c);
const char *amCallName(AmCall *c, sqlite3_value *pVal);
int amCallText(AmCall *c, sqlite3_value *pVal, const char *zWhat,
               const char **pz);
int amCallBool(AmCall *c, int argc, sqlite3_value **argv, int i,
               const char *zWhat, int *pb);
int amBool(sqlite3_value *pVal, int bDefault);
int amCallOpen(AmCall *c, const char *zName);
void amCallClose(AmCall *c, const char *zResult);
void amResultError(sqlite3_context *ctx, int rc, char *zErr, int bStuck);
int amScheduleKeeps(const AmRow *r);

/**************************************************************************
** batch.c
*/
void amScheduleBatchesFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv);
int amBatchRun(AmCall *c, const char *zName, int bRestart,
               const char **pzStatus);

#endif /* ASYNCMIG_SQLITE_H */
