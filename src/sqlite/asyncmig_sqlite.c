/*
** 2025-11-25
**
** asyncmig_sqlite.c - the SQLite module of asyncmig.
**
** asyncmig runs heavy schema changes (CREATE INDEX CONCURRENTLY and friends)
** in a PostgreSQL background worker and records the status of every
** migration in a table.  This loadable SQLite extension offers the same
** calls and the same status vocabulary on SQLite, synchronously: SQLite has
** no background worker, and an index build locks the whole file anyway.
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
**   asyncmig_run(NAME [, BACKWARDS])                             -> status
**   asyncmig_cancel(NAME)                                        -> status
**   asyncmig_allow_scheduled([ON])                               -> 0 or 1
**
** Statuses are exactly SCHEDULED, STARTED, IN PROGRESS, FINISHED and ERROR.
**
** A run translates the PostgreSQL-only words away (CREATE INDEX CONCURRENTLY
** becomes CREATE INDEX, ...) with a tokenizer that knows SQLite's strings,
** quoted identifiers and comments, then runs all statements of the migration
** inside one SAVEPOINT.  If a statement fails, the savepoint is rolled back
** (the database is as before) and the row becomes ERROR with the message and
** the failing statement in its "meta" JSON.  The row itself, the run and its
** outcome are written in one transaction of their own (BEGIN IMMEDIATE,
** which honours the busy timeout) or, when the caller is already inside a
** transaction, in a savepoint of the caller's transaction.  Two connections
** that schedule one name at once therefore make one row and one execution.
**
** The functions are registered SQLITE_DIRECTONLY: they write to the
** database, so they cannot be called from the triggers or views of a
** schema that might not be trusted.  Call them from a top-level SELECT,
** best one without a FROM clause (see "SQLite module" in README.md for why).
**
** Build (it must not link libsqlite3, it uses the host's SQLite):
**
**     gcc -fPIC -shared -O2 asyncmig_sqlite.c -o asyncmig_sqlite.so
*/
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <string.h>

/* The current time, as stored in every *_at column (ISO 8601, UTC) */
#define AM_NOW "strftime('%Y-%m-%d %H:%M:%f+00:00','now')"

/* The statuses */
#define AM_SCHEDULED   "SCHEDULED"
#define AM_STARTED     "STARTED"
#define AM_INPROGRESS  "IN PROGRESS"
#define AM_FINISHED    "FINISHED"
#define AM_ERROR       "ERROR"

/*
** The table and the view, created on load and before every write if they
** are missing.  Everything is in the "main" database.
*/
static const char amSchemaSql[] =
  "CREATE TABLE IF NOT EXISTS main.asyncmig_migration(\n"
  "  id INTEGER PRIMARY KEY,\n"
  "  name TEXT NOT NULL UNIQUE CHECK(length(trim(name))>0),\n"
  "  status TEXT NOT NULL CHECK(status IN"
          " ('SCHEDULED','STARTED','IN PROGRESS','FINISHED','ERROR')),\n"
  "  direction TEXT CHECK(direction IN ('forwards','backwards')),\n"
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
  "  timeout REAL\n"
  ");\n"
  "CREATE VIEW IF NOT EXISTS main.asyncmig_status AS\n"
  "  SELECT name, status, direction, owner, attempts, started_at,"
        " finished_at,\n"
  "    CASE WHEN started_at IS NULL THEN NULL\n"
  "      ELSE round((julianday(coalesce(finished_at,'now'))"
                   " - julianday(started_at))*86400.0, 3) END AS duration,\n"
  "    NULL AS progress,\n"
  "    CASE WHEN json_valid(meta)"
            " THEN json_extract(meta,'$.error.message') END AS error\n"
  "  FROM main.asyncmig_migration ORDER BY id;\n";

/*
** State of one connection, shared by all functions registered on it.
*/
typedef struct AmConn AmConn;
struct AmConn {
  int nRef;              /* Number of functions registered with this object */
  int bAllowScheduled;   /* asyncmig_allow_scheduled() setting */
  int iDepth;            /* Nesting of asyncmig transactions (savepoint names) */
};

/*
** Drop one reference to an AmConn; free it with the last one.  This is the
** xDestroy of every function registered by the module.
*/
static void amConnUnref(void *pArg){
  AmConn *p = (AmConn*)pArg;
  if( p && --p->nRef<=0 ) sqlite3_free(p);
}

/**************************************************************************
** The tokenizer.
**
** It knows just enough of SQLite's lexical rules to find keywords: '...'
** strings (with '' escapes), "...", [...] and `...` identifiers, -- and
** C-style comments, words, and the punctuation ; ( ).
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

/* True if c may appear in a bare identifier */
static int amIsIdChar(unsigned char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || c=='$' || c>=0x80;
}

/* True if c is white space for SQLite */
static int amIsSpace(unsigned char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r' || c=='\f' || c=='\v';
}

/*
** Return the length of the token that starts at z[0] (which is not the
** terminating NUL) and write its type into *peType.  An unterminated string,
** identifier or comment runs to the end of the text.
*/
static int amTokenLen(const unsigned char *z, int *peType){
  int i;
  unsigned char c = z[0];
  if( amIsSpace(c) ){
    for(i=1; amIsSpace(z[i]); i++){}
    *peType = AM_TK_SPACE;
    return i;
  }
  if( c=='-' && z[1]=='-' ){
    for(i=2; z[i] && z[i]!='\n'; i++){}
    *peType = AM_TK_COMMENT;
    return i;
  }
  if( c=='/' && z[1]=='*' ){
    for(i=2; z[i] && !(z[i]=='*' && z[i+1]=='/'); i++){}
    if( z[i] ) i += 2;
    *peType = AM_TK_COMMENT;
    return i;
  }
  if( c=='\'' || c=='"' || c=='`' ){
    *peType = (c=='\'') ? AM_TK_STRING : AM_TK_ID;
    for(i=1; z[i]; i++){
      if( z[i]==c ){
        if( z[i+1]!=c ) return i+1;
        i++;               /* A doubled quote stands for one quote */
      }
    }
    return i;
  }
  if( c=='[' ){
    for(i=1; z[i] && z[i]!=']'; i++){}
    if( z[i] ) i++;
    *peType = AM_TK_ID;
    return i;
  }
  if( c==';' ){ *peType = AM_TK_SEMI; return 1; }
  if( c=='(' ){ *peType = AM_TK_LP; return 1; }
  if( c==')' ){ *peType = AM_TK_RP; return 1; }
  if( amIsIdChar(c) ){
    for(i=1; amIsIdChar(z[i]); i++){}
    *peType = AM_TK_WORD;
    return i;
  }
  *peType = AM_TK_OTHER;
  return 1;
}

/* Free the arrays of an AmScan */
static void amScanFree(AmScan *p){
  sqlite3_free(p->aTok);
  sqlite3_free(p->aStmt);
  memset(p, 0, sizeof(*p));
}

/*
** True if token i exists before iEnd and is the keyword zKw (any case).
*/
static int amIsKw(const AmScan *p, int i, int iEnd, const char *zKw){
  int n = (int)strlen(zKw);
  if( i<0 || i>=iEnd || i>=p->nTok ) return 0;
  if( p->aTok[i].eType!=AM_TK_WORD || p->aTok[i].n!=n ) return 0;
  return sqlite3_strnicmp(p->z + p->aTok[i].iOff, zKw, n)==0;
}

/* Append a statement [iFirst,iEnd) to p.  Return SQLITE_OK or NOMEM. */
static int amScanAddStmt(AmScan *p, int iFirst, int iEnd){
  if( p->nStmt>=p->nStmtAlloc ){
    int nNew = p->nStmtAlloc ? p->nStmtAlloc*2 : 16;
    AmStmt *aNew = sqlite3_realloc64(p->aStmt, sizeof(AmStmt)*(sqlite3_int64)nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    p->aStmt = aNew;
    p->nStmtAlloc = nNew;
  }
  p->aStmt[p->nStmt].iFirst = iFirst;
  p->aStmt[p->nStmt].iEnd = iEnd;
  p->nStmt++;
  return SQLITE_OK;
}

/*
** Cut the text z into significant tokens and statements.  Statements end at
** a ';' outside the BEGIN ... END body of a CREATE TRIGGER (CASE ... END
** pairs inside a body are counted).  Empty statements are left out.
** Return SQLITE_OK or SQLITE_NOMEM.  Free p with amScanFree() in any case.
*/
static int amScan(AmScan *p, const char *z){
  const unsigned char *zU = (const unsigned char*)z;
  int i = 0;
  int iStart = 0;        /* First token of the current statement */
  int bTrigger = 0;      /* The current statement is a CREATE TRIGGER */
  int bBody = 0;         /* Inside the BEGIN ... END of a trigger */
  int nCase = 0;         /* Open CASE expressions inside a trigger body */
  memset(p, 0, sizeof(*p));
  p->z = z;
  while( zU[i] ){
    int eType = 0;
    int n = amTokenLen(&zU[i], &eType);
    if( eType!=AM_TK_SPACE && eType!=AM_TK_COMMENT ){
      int iTok = p->nTok;
      if( p->nTok>=p->nTokAlloc ){
        int nNew = p->nTokAlloc ? p->nTokAlloc*2 : 64;
        AmToken *aNew = sqlite3_realloc64(p->aTok,
                                     sizeof(AmToken)*(sqlite3_int64)nNew);
        if( aNew==0 ) return SQLITE_NOMEM;
        p->aTok = aNew;
        p->nTokAlloc = nNew;
      }
      p->aTok[iTok].iOff = i;
      p->aTok[iTok].n = n;
      p->aTok[iTok].eType = eType;
      p->nTok++;
      if( eType==AM_TK_SEMI && !bBody ){
        if( iTok>iStart && amScanAddStmt(p, iStart, iTok) ) return SQLITE_NOMEM;
        iStart = iTok+1;
        bTrigger = bBody = nCase = 0;
      }else if( iTok==iStart+1 || iTok==iStart+2 ){
        /* CREATE [TEMP|TEMPORARY] TRIGGER */
        if( amIsKw(p, iStart, iTok+1, "CREATE")
         && amIsKw(p, iTok, iTok+1, "TRIGGER")
         && (iTok==iStart+1 || amIsKw(p, iStart+1, iTok, "TEMP")
                            || amIsKw(p, iStart+1, iTok, "TEMPORARY"))
        ){
          bTrigger = 1;
        }
      }else if( bTrigger ){
        if( !bBody ){
          if( amIsKw(p, iTok, iTok+1, "BEGIN") ) bBody = 1;
        }else if( amIsKw(p, iTok, iTok+1, "CASE") ){
          nCase++;
        }else if( amIsKw(p, iTok, iTok+1, "END") ){
          if( nCase>0 ) nCase--; else bBody = 0;
        }
      }
    }
    i += n;
  }
  if( p->nTok>iStart && amScanAddStmt(p, iStart, p->nTok) ) return SQLITE_NOMEM;
  return SQLITE_OK;
}

/* Byte offset of the start of statement iStmt of p */
static int amStmtStart(const AmScan *p, int iStmt){
  return p->aTok[p->aStmt[iStmt].iFirst].iOff;
}

/* Byte length of statement iStmt of p (without its ';') */
static int amStmtLen(const AmScan *p, int iStmt){
  const AmToken *pLast = &p->aTok[p->aStmt[iStmt].iEnd-1];
  return pLast->iOff + pLast->n - amStmtStart(p, iStmt);
}

/*
** Translate the PostgreSQL SQL text zIn of a migration into SQLite SQL.
** zWhich is "forwards" or "backwards", for messages.
**
**   CREATE [UNIQUE] INDEX CONCURRENTLY ...   ->  CREATE [UNIQUE] INDEX ...
**   DROP INDEX CONCURRENTLY ...              ->  DROP INDEX ...
**   REINDEX [(options)] INDEX|TABLE [CONCURRENTLY] name  ->  REINDEX name
**   REINDEX [(options)] SCHEMA|DATABASE|SYSTEM [CONCURRENTLY] [name]
**                                            ->  REINDEX
**
** Transaction control statements (BEGIN, COMMIT, END, ROLLBACK, ABORT,
** SAVEPOINT, RELEASE, START TRANSACTION) are refused: a migration runs in
** one savepoint of its own.
**
** On success, *pzOut is the translated text (from sqlite3_malloc) and
** *pnStmt the number of statements in it (0 if it is blank: only spaces
** and comments).  On error, *pzErr is a message (from sqlite3_malloc) and
** an error code is returned.
*/
static int amTranslate(
  const char *zIn,
  const char *zWhich,
  char **pzOut,
  int *pnStmt,
  char **pzErr
){
  static const char *azTxn[] = {
    "BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE"
  };
  AmScan s;
  char *aDel = 0;        /* aDel[i] is true if token i is to be removed */
  char *zOut = 0;
  int rc;
  int i, k;
  sqlite3_int64 nIn = (sqlite3_int64)strlen(zIn);

  *pzOut = 0;
  *pnStmt = 0;
  rc = amScan(&s, zIn);
  if( rc==SQLITE_OK && s.nTok>0 ){
    aDel = sqlite3_malloc64(s.nTok);
    if( aDel==0 ) rc = SQLITE_NOMEM; else memset(aDel, 0, s.nTok);
  }
  for(k=0; rc==SQLITE_OK && k<s.nStmt; k++){
    int a = s.aStmt[k].iFirst;
    int e = s.aStmt[k].iEnd;
    int j;
    for(j=0; j<(int)(sizeof(azTxn)/sizeof(azTxn[0])); j++){
      if( amIsKw(&s, a, e, azTxn[j]) ) break;
    }
    if( j<(int)(sizeof(azTxn)/sizeof(azTxn[0]))
     || (amIsKw(&s, a, e, "START") && amIsKw(&s, a+1, e, "TRANSACTION"))
    ){
      *pzErr = sqlite3_mprintf("asyncmig: statement %d of the %s SQL is a "
          "transaction control statement (%.*s); a migration runs in one "
          "transaction of its own and must not contain BEGIN, COMMIT, "
          "ROLLBACK, SAVEPOINT or RELEASE",
          k+1, zWhich, s.aTok[a].n, zIn + s.aTok[a].iOff);
      rc = SQLITE_ERROR;
      break;
    }
    if( amIsKw(&s, a, e, "CREATE") ){
      j = a+1;
      if( amIsKw(&s, j, e, "UNIQUE") ) j++;
      if( amIsKw(&s, j, e, "INDEX") && amIsKw(&s, j+1, e, "CONCURRENTLY") ){
        aDel[j+1] = 1;
      }
    }else if( amIsKw(&s, a, e, "DROP") ){
      if( amIsKw(&s, a+1, e, "INDEX") && amIsKw(&s, a+2, e, "CONCURRENTLY") ){
        aDel[a+2] = 1;
      }
    }else if( amIsKw(&s, a, e, "REINDEX") ){
      int bOptions = 0;
      j = a+1;
      if( j<e && s.aTok[j].eType==AM_TK_LP ){
        /* PostgreSQL's option list: REINDEX (CONCURRENTLY, VERBOSE) ... */
        int nDepth = 0;
        for(; j<e; j++){
          aDel[j] = 1;
          if( s.aTok[j].eType==AM_TK_LP ) nDepth++;
          if( s.aTok[j].eType==AM_TK_RP && --nDepth==0 ){ j++; break; }
        }
        bOptions = 1;
      }
      if( amIsKw(&s, j, e, "INDEX") || amIsKw(&s, j, e, "TABLE") ){
        aDel[j++] = 1;
        if( amIsKw(&s, j, e, "CONCURRENTLY") ) aDel[j] = 1;
      }else if( (amIsKw(&s, j, e, "SCHEMA") || amIsKw(&s, j, e, "DATABASE")
                 || amIsKw(&s, j, e, "SYSTEM"))
             && (bOptions || j+1<e)
      ){
        /* Every index of the database: a bare REINDEX on SQLite */
        for(; j<e; j++) aDel[j] = 1;
      }
    }
  }
  if( rc==SQLITE_OK ){
    sqlite3_int64 iOut = 0;
    int iPos = 0;
    zOut = sqlite3_malloc64(nIn+1);
    if( zOut==0 ){
      rc = SQLITE_NOMEM;
    }else{
      for(i=0; i<s.nTok; i++){
        if( !aDel[i] ) continue;
        memcpy(zOut+iOut, zIn+iPos, s.aTok[i].iOff-iPos);
        iOut += s.aTok[i].iOff-iPos;
        iPos = s.aTok[i].iOff + s.aTok[i].n;
      }
      memcpy(zOut+iOut, zIn+iPos, nIn-iPos);
      iOut += nIn-iPos;
      zOut[iOut] = 0;
      *pzOut = zOut;
      *pnStmt = s.nStmt;
    }
  }
  sqlite3_free(aDel);
  amScanFree(&s);
  return rc;
}

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
static int amPrepareSql(
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

/**************************************************************************
** Small helpers around the SQLite API.
*/

/*
** Run zSql (no parameters, any number of statements).  On error, set *pzErr
** to "asyncmig: <message>" and return the error code.
*/
static int amExec(sqlite3 *db, const char *zSql, char **pzErr){
  char *zMsg = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zMsg);
  if( rc!=SQLITE_OK ){
    *pzErr = sqlite3_mprintf("asyncmig: %s", zMsg ? zMsg : sqlite3_errstr(rc));
  }
  sqlite3_free(zMsg);
  return rc;
}

/* Prepare zSql; on error set *pzErr like amExec() */
static int amPrepare(sqlite3 *db, const char *zSql, sqlite3_stmt **ppStmt,
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
static int amStepFinalize(sqlite3 *db, sqlite3_stmt *pStmt, char **pzErr){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }else{
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return rc;
}

/* True if z is NULL or only white space */
static int amIsBlank(const char *z){
  if( z==0 ) return 1;
  while( amIsSpace((unsigned char)*z) ) z++;
  return *z==0;
}

/*
** Read a boolean argument: NULL gives bDefault; a number is true if it is
** not zero; the texts true/false, t/f, yes/no, on/off, 1/0 are understood.
** Return 0 or 1, or -1 for anything else.
*/
static int amBool(sqlite3_value *pVal, int bDefault){
  static const char *azTrue[] = { "1", "true", "t", "yes", "y", "on" };
  static const char *azFalse[] = { "0", "false", "f", "no", "n", "off" };
  const char *z;
  int i;
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_NULL:    return bDefault;
    case SQLITE_INTEGER: return sqlite3_value_int64(pVal)!=0;
    case SQLITE_FLOAT:   return sqlite3_value_double(pVal)!=0.0;
    case SQLITE_TEXT:    break;
    default:             return -1;
  }
  z = (const char*)sqlite3_value_text(pVal);
  if( z==0 ) return -1;
  for(i=0; i<(int)(sizeof(azTrue)/sizeof(azTrue[0])); i++){
    if( sqlite3_stricmp(z, azTrue[i])==0 ) return 1;
    if( sqlite3_stricmp(z, azFalse[i])==0 ) return 0;
  }
  return -1;
}

/*
** Report an error from an SQL function: the message zErr (which is freed),
** with the error code rc when it is a busy or locked database or an
** interrupt.  bStuck: asyncmig's transaction could not be rolled back (after
** sqlite3_interrupt()); the code SQLITE_IOERR then makes SQLite roll back
** the whole transaction when the calling statement ends, as it does for an
** interrupted write.
*/
static void amResultError(sqlite3_context *ctx, int rc, char *zErr,
                          int bStuck){
  if( bStuck ){
    sqlite3_result_error(ctx, "asyncmig: interrupted; the transaction "
                              "was rolled back", -1);
    sqlite3_result_error_code(ctx, SQLITE_IOERR);
    sqlite3_free(zErr);
    return;
  }
  if( rc==SQLITE_NOMEM || (zErr==0 && rc!=SQLITE_OK) ){
    if( rc==SQLITE_NOMEM ){
      sqlite3_result_error_nomem(ctx);
    }else{
      sqlite3_result_error(ctx, "asyncmig: error", -1);
    }
  }else{
    sqlite3_result_error(ctx, zErr, -1);
    if( (rc&0xff)==SQLITE_BUSY || (rc&0xff)==SQLITE_LOCKED
     || rc==SQLITE_INTERRUPT
    ){
      sqlite3_result_error_code(ctx, rc);
    }
  }
  sqlite3_free(zErr);
}

/**************************************************************************
** Transactions.
**
** asyncmig's own bookkeeping runs in BEGIN IMMEDIATE ... COMMIT when the
** connection is in autocommit mode (BEGIN IMMEDIATE takes the write lock at
** once, waiting as long as the busy timeout says), and in a savepoint of
** the caller's transaction otherwise.
*/
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
static int amTxnBegin(AmTxn *t, sqlite3 *db, AmConn *p, const char *zFunc,
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
    char *zSql = sqlite3_mprintf("SAVEPOINT asyncmig_txn_%d", t->iLevel);
    if( zSql==0 ) return SQLITE_NOMEM;
    rc = amExec(db, zSql, pzErr);
    sqlite3_free(zSql);
    t->bSavepoint = 1;
  }
  if( rc==SQLITE_OK ) amTxnOpened(t);
  return rc;
}

/* Mark t as ended */
static void amTxnClose(AmTxn *t){
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
static void amTxnRollback(AmTxn *t){
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
static int amTxnCommit(AmTxn *t, char **pzErr){
  int rc;
  char *zSql;
  if( !t->bOpen ) return SQLITE_OK;
  if( t->bSavepoint ){
    zSql = sqlite3_mprintf("RELEASE asyncmig_txn_%d", t->iLevel);
  }else{
    zSql = sqlite3_mprintf("COMMIT");
  }
  if( zSql==0 ){
    amTxnRollback(t);
    return SQLITE_NOMEM;
  }
  rc = amExec(t->db, zSql, pzErr);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    amTxnRollback(t);
  }else{
    amTxnClose(t);
  }
  return rc;
}

/**************************************************************************
** The migration table.
*/

/* One row of asyncmig_migration, as far as the functions need it */
typedef struct AmRow AmRow;
struct AmRow {
  int bFound;
  char *zStatus;
  char *zDirection;
  char *zForwards;
  char *zBackwards;
};

/* Free the strings of an AmRow */
static void amRowFree(AmRow *r){
  sqlite3_free(r->zStatus);
  sqlite3_free(r->zDirection);
  sqlite3_free(r->zForwards);
  sqlite3_free(r->zBackwards);
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

/* Read the row of migration zName into r */
static int amRowLoad(sqlite3 *db, const char *zName, AmRow *r, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc;
  memset(r, 0, sizeof(*r));
  rc = amPrepare(db, "SELECT status, direction, forwards_sql, backwards_sql "
                     "FROM main.asyncmig_migration WHERE name=?1",
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
    rc = bNoMem ? SQLITE_NOMEM : SQLITE_OK;
    if( r->zStatus==0 && rc==SQLITE_OK ) r->zStatus = sqlite3_mprintf("");
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }else{
    *pzErr = sqlite3_mprintf("asyncmig: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ) amRowFree(r);
  return rc;
}

/*
** Record migration zName as SCHEDULED (a new forwards run waits for
** asyncmig_run()), inserting its row if it has none.
*/
static int amRowSchedule(sqlite3 *db, const char *zName, const char *zFwd,
                         const char *zBwd, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "INSERT INTO main.asyncmig_migration(name, status, direction,"
      " forwards_sql, backwards_sql, attempts, meta, created_at, updated_at)"
      " VALUES(?1, 'SCHEDULED', 'forwards', ?2, ?3, 0, '{}', "
      AM_NOW ", " AM_NOW ")"
      " ON CONFLICT(name) DO UPDATE SET status='SCHEDULED',"
      " direction='forwards', forwards_sql=?2, backwards_sql=?3,"
      " meta=CASE WHEN json_valid(meta) THEN json_remove(meta,'$.error')"
      " ELSE '{}' END,"
      " updated_at=" AM_NOW ", started_at=NULL, finished_at=NULL",
      &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zFwd, -1, SQLITE_TRANSIENT);
  if( zBwd ) sqlite3_bind_text(pStmt, 3, zBwd, -1, SQLITE_TRANSIENT);
  return amStepFinalize(db, pStmt, pzErr);
}

/*
** Record that a run of migration zName starts now (IN PROGRESS, one more
** attempt, direction zDir, SQL texts zFwd and zBwd), inserting its row if
** it has none.
*/
static int amRowStart(sqlite3 *db, const char *zName, const char *zDir,
                      const char *zFwd, const char *zBwd, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "INSERT INTO main.asyncmig_migration(name, status, direction,"
      " forwards_sql, backwards_sql, attempts, meta, created_at, updated_at,"
      " started_at)"
      " VALUES(?1, 'IN PROGRESS', ?2, ?3, ?4, 1, '{}', "
      AM_NOW ", " AM_NOW ", " AM_NOW ")"
      " ON CONFLICT(name) DO UPDATE SET status='IN PROGRESS', direction=?2,"
      " forwards_sql=?3, backwards_sql=?4, attempts=attempts+1,"
      " meta=CASE WHEN json_valid(meta) THEN json_remove(meta,'$.error')"
      " ELSE '{}' END,"
      " updated_at=" AM_NOW ", started_at=" AM_NOW ", finished_at=NULL",
      &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zDir, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 3, zFwd, -1, SQLITE_TRANSIENT);
  if( zBwd ) sqlite3_bind_text(pStmt, 4, zBwd, -1, SQLITE_TRANSIENT);
  return amStepFinalize(db, pStmt, pzErr);
}

/*
** Record the end of a run (or a cancel): status zStatus, and for ERROR the
** message zMsg and the failing statement zStmt under "error" in meta.
*/
static int amRowEnd(sqlite3 *db, const char *zName, const char *zStatus,
                    const char *zMsg, const char *zStmt, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc = amPrepare(db,
      "UPDATE main.asyncmig_migration SET status=?2,"
      " updated_at=" AM_NOW ", finished_at=" AM_NOW ","
      " meta=CASE WHEN ?2='ERROR' THEN json_set("
      "   CASE WHEN json_valid(meta) THEN meta ELSE '{}' END, '$.error',"
      "   json_object('message', ?3, 'sqlstate', NULL, 'statement', ?4))"
      " ELSE meta END"
      " WHERE name=?1",
      &pStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zStatus, -1, SQLITE_STATIC);
  if( zMsg ) sqlite3_bind_text(pStmt, 3, zMsg, -1, SQLITE_TRANSIENT);
  if( zStmt ) sqlite3_bind_text(pStmt, 4, zStmt, -1, SQLITE_TRANSIENT);
  rc = amStepFinalize(db, pStmt, pzErr);
  if( rc==SQLITE_OK && sqlite3_changes(db)!=1 ){
    *pzErr = sqlite3_mprintf("asyncmig: the row of migration \"%s\" is gone "
                             "from asyncmig_migration", zName);
    rc = SQLITE_ERROR;
  }
  return rc;
}

/**************************************************************************
** Running a migration.
*/

/* A copy of z without the white space around it */
static char *amTrimDup(const char *z, int n){
  while( n>0 && amIsSpace((unsigned char)z[0]) ){ z++; n--; }
  while( n>0 && amIsSpace((unsigned char)z[n-1]) ) n--;
  return sqlite3_mprintf("%.*s", n, z);
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
** Run migration zName now, forwards or backwards, inside the open asyncmig
** transaction t: record the start, run the SQL in a savepoint, record the
** end.  zFwd and zBwd are the SQL texts as given (stored in the row);
** zRun is the translated text to run.  *pzStatus is set to FINISHED or
** ERROR.  An error return means that nothing could be recorded (the caller
** rolls t back).
*/
static int amRunMigration(
  AmTxn *t,
  const char *zName,
  int bBackwards,
  const char *zFwd,
  const char *zBwd,
  const char *zRun,
  const char **pzStatus,
  char **pzErr
){
  sqlite3 *db = t->db;
  const char *zDir = bBackwards ? "backwards" : "forwards";
  char *zSp = 0;
  char *zMsg = 0;
  char *zStmt = 0;
  int rc;

  rc = amRowStart(db, zName, zDir, zFwd, zBwd, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  zSp = sqlite3_mprintf("asyncmig_run_%d", t->iLevel);
  if( zSp==0 ) return SQLITE_NOMEM;
  {
    char *zSql = sqlite3_mprintf("SAVEPOINT %s", zSp);
    rc = zSql ? amExec(db, zSql, pzErr) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc!=SQLITE_OK ) goto run_out;

  if( amExecMigration(db, zRun, &zMsg, &zStmt)==SQLITE_OK ){
    char *zSql = sqlite3_mprintf("RELEASE %s", zSp);
    rc = zSql ? amExec(db, zSql, pzErr) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if( rc==SQLITE_OK ) rc = amRowEnd(db, zName, AM_FINISHED, 0, 0, pzErr);
    *pzStatus = AM_FINISHED;
  }else{
    if( sqlite3_get_autocommit(db) ){
      /* The failing statement made SQLite roll back the whole transaction
      ** (an I/O error, a full disk, an OR ROLLBACK conflict, ...). */
      amTxnClose(t);
      if( t->bSavepoint ){
        *pzErr = sqlite3_mprintf("asyncmig: migration \"%s\" failed and SQLite "
            "rolled back the whole transaction of the caller: %s",
            zName, zMsg ? zMsg : "");
        rc = SQLITE_ERROR;
        goto run_out;
      }
      /* Our own transaction: begin it again and record the run anew */
      rc = amExec(db, "BEGIN IMMEDIATE", pzErr);
      if( rc!=SQLITE_OK ) goto run_out;
      amTxnOpened(t);
      rc = amExec(db, amSchemaSql, pzErr);
      if( rc==SQLITE_OK ) rc = amRowStart(db, zName, zDir, zFwd, zBwd, pzErr);
    }else{
      char *zSql = sqlite3_mprintf("ROLLBACK TO %s; RELEASE %s", zSp, zSp);
      rc = zSql ? amExec(db, zSql, pzErr) : SQLITE_NOMEM;
      sqlite3_free(zSql);
    }
    if( rc==SQLITE_OK ){
      rc = amRowEnd(db, zName, AM_ERROR, zMsg ? zMsg : "unknown error",
                    zStmt, pzErr);
    }
    *pzStatus = AM_ERROR;
  }

run_out:
  sqlite3_free(zSp);
  sqlite3_free(zMsg);
  sqlite3_free(zStmt);
  return rc;
}

/**************************************************************************
** The SQL functions.
*/

/*
** Read the migration name argument: not NULL, not blank.  Return it, or
** NULL after setting *pzErr.
*/
static const char *amNameArg(sqlite3_value *pVal, char **pzErr){
  const char *z;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    *pzErr = sqlite3_mprintf("asyncmig: migration name must not be NULL");
    return 0;
  }
  z = (const char*)sqlite3_value_text(pVal);
  if( z==0 ){
    *pzErr = 0;         /* Out of memory */
    return 0;
  }
  if( amIsBlank(z) ){
    *pzErr = sqlite3_mprintf("asyncmig: migration name must not be empty");
    return 0;
  }
  if( (int)strlen(z)!=sqlite3_value_bytes(pVal) ){
    *pzErr = sqlite3_mprintf("asyncmig: migration name must not contain "
                             "NUL characters");
    return 0;
  }
  return z;
}

/*
** asyncmig_schedule(NAME, FORWARDS, BACKWARDS [, APPLY_ON_SQLITE
**                   [, EXECUTE_IMMEDIATELY]])
**
** With APPLY_ON_SQLITE false (the default) nothing runs, nothing is
** recorded, and the result is NULL (the arguments are still checked).
** Otherwise the result is the migration's status after the call:
** SCHEDULED in scheduled mode (asyncmig_allow_scheduled(1)) unless
** EXECUTE_IMMEDIATELY, else FINISHED or ERROR after running it now.
** Idempotent by name: a SCHEDULED, STARTED, IN PROGRESS or FINISHED
** (forwards) migration is left as it is and its status returned; one in
** ERROR, or whose last run was backwards, is run again with the SQL given
** now.
*/
static void amScheduleFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AmConn *p = (AmConn*)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zName;
  const char *zFwd;
  const char *zBwd = 0;
  char *zFwdRun = 0;
  char *zBwdRun = 0;
  char *zErr = 0;
  const char *zStatus = 0;
  int bApply = 0;
  int bImmediate = 0;
  int rc = SQLITE_OK;
  AmRow r;
  AmTxn t;

  memset(&r, 0, sizeof(r));
  memset(&t, 0, sizeof(t));
  if( argc<3 || argc>5 ){
    zErr = sqlite3_mprintf("asyncmig: asyncmig_schedule() takes 3 to 5 "
        "arguments (name, forwards_sql, backwards_sql [, apply_on_sqlite "
        "[, execute_immediately]]), not %d", argc);
    rc = SQLITE_ERROR;
    goto schedule_out;
  }
  zName = amNameArg(argv[0], &zErr);
  if( zName==0 ){ rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM; goto schedule_out; }
  if( argc>=4 && (bApply = amBool(argv[3], 0))<0 ){
    zErr = sqlite3_mprintf("asyncmig: apply_on_sqlite must be a boolean");
    rc = SQLITE_ERROR;
    goto schedule_out;
  }
  if( argc>=5 && (bImmediate = amBool(argv[4], 0))<0 ){
    zErr = sqlite3_mprintf("asyncmig: execute_immediately must be a boolean");
    rc = SQLITE_ERROR;
    goto schedule_out;
  }
  zFwd = (const char*)sqlite3_value_text(argv[1]);
  if( zFwd==0 && sqlite3_value_type(argv[1])!=SQLITE_NULL ){
    rc = SQLITE_NOMEM;
    goto schedule_out;
  }
  zBwd = (const char*)sqlite3_value_text(argv[2]);
  if( zBwd==0 && sqlite3_value_type(argv[2])!=SQLITE_NULL ){
    rc = SQLITE_NOMEM;
    goto schedule_out;
  }
  if( (zFwd && (int)strlen(zFwd)!=sqlite3_value_bytes(argv[1]))
   || (zBwd && (int)strlen(zBwd)!=sqlite3_value_bytes(argv[2]))
  ){
    zErr = sqlite3_mprintf("asyncmig: %s SQL must not contain NUL characters",
         (zFwd && (int)strlen(zFwd)!=sqlite3_value_bytes(argv[1]))
         ? "forwards" : "backwards");
    rc = SQLITE_ERROR;
    goto schedule_out;
  }
  rc = amPrepareSql(db, zFwd, "forwards", 1, bApply, &zFwdRun, &zErr);
  if( rc!=SQLITE_OK ) goto schedule_out;
  rc = amPrepareSql(db, zBwd, "backwards", 0, bApply, &zBwdRun, &zErr);
  if( rc!=SQLITE_OK ) goto schedule_out;
  if( zBwdRun==0 ) zBwd = 0;          /* Blank backwards SQL: none */
  if( !bApply ){
    sqlite3_result_null(ctx);
    goto schedule_out;
  }

  rc = amTxnBegin(&t, db, p, "asyncmig_schedule", &zErr);
  if( rc==SQLITE_OK ) rc = amExec(db, amSchemaSql, &zErr);
  if( rc==SQLITE_OK ) rc = amRowLoad(db, zName, &r, &zErr);
  if( rc!=SQLITE_OK ) goto schedule_out;
  if( r.bFound
   && (strcmp(r.zStatus, AM_SCHEDULED)==0
       || strcmp(r.zStatus, AM_STARTED)==0
       || strcmp(r.zStatus, AM_INPROGRESS)==0
       || (strcmp(r.zStatus, AM_FINISHED)==0
           && (r.zDirection==0 || strcmp(r.zDirection, "backwards")!=0)))
  ){
    /* Nothing to do: report the status as it is */
    rc = amTxnCommit(&t, &zErr);
    if( rc==SQLITE_OK ){
      sqlite3_result_text(ctx, r.zStatus, -1, SQLITE_TRANSIENT);
    }
    goto schedule_out;
  }
  if( p->bAllowScheduled && !bImmediate ){
    rc = amRowSchedule(db, zName, zFwd, zBwd, &zErr);
    zStatus = AM_SCHEDULED;
  }else{
    rc = amRunMigration(&t, zName, 0, zFwd, zBwd, zFwdRun, &zStatus, &zErr);
  }
  if( rc==SQLITE_OK ) rc = amTxnCommit(&t, &zErr);
  if( rc==SQLITE_OK ){
    sqlite3_result_text(ctx, zStatus, -1, SQLITE_STATIC);
  }

schedule_out:
  if( rc!=SQLITE_OK ){
    amTxnRollback(&t);
    amResultError(ctx, rc, zErr, t.bStuck);
    zErr = 0;
  }
  amRowFree(&r);
  sqlite3_free(zFwdRun);
  sqlite3_free(zBwdRun);
  sqlite3_free(zErr);
}

/*
** asyncmig_run(NAME [, BACKWARDS])
**
** Run migration NAME now: its forwards SQL, or its backwards SQL when
** BACKWARDS is true.  It must be SCHEDULED, FINISHED or ERROR; an unknown
** name, a migration STARTED or IN PROGRESS, or BACKWARDS without backwards
** SQL are errors.  Returns the resulting status, FINISHED or ERROR.
*/
static void amRunFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AmConn *p = (AmConn*)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zName;
  const char *zStatus = 0;
  char *zRun = 0;
  char *zErr = 0;
  int bBackwards = 0;
  int rc = SQLITE_OK;
  AmRow r;
  AmTxn t;

  memset(&r, 0, sizeof(r));
  memset(&t, 0, sizeof(t));
  if( argc<1 || argc>2 ){
    zErr = sqlite3_mprintf("asyncmig: asyncmig_run() takes 1 or 2 arguments "
                           "(name [, backwards]), not %d", argc);
    rc = SQLITE_ERROR;
    goto run_out;
  }
  zName = amNameArg(argv[0], &zErr);
  if( zName==0 ){ rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM; goto run_out; }
  if( argc==2 && (bBackwards = amBool(argv[1], 0))<0 ){
    zErr = sqlite3_mprintf("asyncmig: backwards must be a boolean");
    rc = SQLITE_ERROR;
    goto run_out;
  }

  rc = amTxnBegin(&t, db, p, "asyncmig_run", &zErr);
  if( rc==SQLITE_OK ) rc = amExec(db, amSchemaSql, &zErr);
  if( rc==SQLITE_OK ) rc = amRowLoad(db, zName, &r, &zErr);
  if( rc!=SQLITE_OK ) goto run_out;
  if( !r.bFound ){
    zErr = sqlite3_mprintf("asyncmig: there is no migration named \"%s\"",
                           zName);
    rc = SQLITE_ERROR;
    goto run_out;
  }
  if( strcmp(r.zStatus, AM_STARTED)==0 || strcmp(r.zStatus, AM_INPROGRESS)==0 ){
    zErr = sqlite3_mprintf("asyncmig: migration \"%s\" is %s already",
                           zName, r.zStatus);
    rc = SQLITE_ERROR;
    goto run_out;
  }
  if( bBackwards && amIsBlank(r.zBackwards) ){
    zErr = sqlite3_mprintf("asyncmig: migration \"%s\" has no backwards SQL",
                           zName);
    rc = SQLITE_ERROR;
    goto run_out;
  }
  rc = amPrepareSql(db, bBackwards ? r.zBackwards : r.zForwards,
                    bBackwards ? "backwards" : "forwards", 1, 1, &zRun, &zErr);
  if( rc!=SQLITE_OK ) goto run_out;
  if( r.zForwards==0 ){
    zErr = sqlite3_mprintf("asyncmig: migration \"%s\" has no forwards SQL",
                           zName);
    rc = SQLITE_ERROR;
    goto run_out;
  }
  rc = amRunMigration(&t, zName, bBackwards, r.zForwards, r.zBackwards, zRun,
                      &zStatus, &zErr);
  if( rc==SQLITE_OK ) rc = amTxnCommit(&t, &zErr);
  if( rc==SQLITE_OK ) sqlite3_result_text(ctx, zStatus, -1, SQLITE_STATIC);

run_out:
  if( rc!=SQLITE_OK ){
    amTxnRollback(&t);
    amResultError(ctx, rc, zErr, t.bStuck);
    zErr = 0;
  }
  amRowFree(&r);
  sqlite3_free(zRun);
  sqlite3_free(zErr);
}

/*
** asyncmig_cancel(NAME)
**
** A SCHEDULED (or STARTED) migration ends ERROR ("canceled") without
** running; a FINISHED or ERROR one is left as it is.  Returns the status.
** An unknown name is an error, and so is a migration IN PROGRESS (which on
** SQLite can only be the one running this very call).
*/
static void amCancelFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AmConn *p = (AmConn*)sqlite3_user_data(ctx);
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  const char *zName;
  const char *zStatus = 0;
  char *zErr = 0;
  int rc = SQLITE_OK;
  AmRow r;
  AmTxn t;

  memset(&r, 0, sizeof(r));
  memset(&t, 0, sizeof(t));
  if( argc!=1 ){
    zErr = sqlite3_mprintf("asyncmig: asyncmig_cancel() takes 1 argument "
                           "(name), not %d", argc);
    rc = SQLITE_ERROR;
    goto cancel_out;
  }
  zName = amNameArg(argv[0], &zErr);
  if( zName==0 ){ rc = zErr ? SQLITE_ERROR : SQLITE_NOMEM; goto cancel_out; }
  rc = amTxnBegin(&t, db, p, "asyncmig_cancel", &zErr);
  if( rc==SQLITE_OK ) rc = amExec(db, amSchemaSql, &zErr);
  if( rc==SQLITE_OK ) rc = amRowLoad(db, zName, &r, &zErr);
  if( rc!=SQLITE_OK ) goto cancel_out;
  if( !r.bFound ){
    zErr = sqlite3_mprintf("asyncmig: there is no migration named \"%s\"",
                           zName);
    rc = SQLITE_ERROR;
    goto cancel_out;
  }
  if( strcmp(r.zStatus, AM_INPROGRESS)==0 ){
    zErr = sqlite3_mprintf("asyncmig: migration \"%s\" is running in this "
                           "connection and cannot be canceled", zName);
    rc = SQLITE_ERROR;
    goto cancel_out;
  }
  if( strcmp(r.zStatus, AM_SCHEDULED)==0 || strcmp(r.zStatus, AM_STARTED)==0 ){
    rc = amRowEnd(db, zName, AM_ERROR, "canceled", 0, &zErr);
    zStatus = AM_ERROR;
  }else{
    zStatus = r.zStatus;
  }
  if( rc==SQLITE_OK ) rc = amTxnCommit(&t, &zErr);
  if( rc==SQLITE_OK ) sqlite3_result_text(ctx, zStatus, -1, SQLITE_TRANSIENT);

cancel_out:
  if( rc!=SQLITE_OK ){
    amTxnRollback(&t);
    amResultError(ctx, rc, zErr, t.bStuck);
    zErr = 0;
  }
  amRowFree(&r);
  sqlite3_free(zErr);
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
    { "asyncmig_schedule",        amScheduleFunc },
    { "asyncmig_run",             amRunFunc },
    { "asyncmig_cancel",          amCancelFunc },
    { "asyncmig_allow_scheduled", amAllowScheduledFunc },
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
  rc = amExec(db, amSchemaSql, &zErr);
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
  for(i=0; rc==SQLITE_OK && i<(int)(sizeof(aFunc)/sizeof(aFunc[0])); i++){
    p->nRef++;             /* Released by xDestroy, also if this fails */
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, -1,
                                    SQLITE_UTF8|SQLITE_DIRECTONLY, p,
                                    aFunc[i].xFunc, 0, 0, amConnUnref);
  }
  amConnUnref(p);
  return rc;
}
