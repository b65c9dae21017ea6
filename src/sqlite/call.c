/*
** 2025-11-25
**
** call.c - the frame of every SQL function of the asyncmig SQLite module.
**
** Each function is written as
**
**     AmCall c;
**     if( amCallStart(&c, ctx, "asyncmig_x", argc, 1, 2, "name [, y]")==0
**      && (zName = amCallName(&c, argv[0]))!=0
**      && amCallOpen(&c, zName)==SQLITE_OK ){
**       ... decide, write with c.db inside c.t, set zResult ...
**     }
**     amCallClose(&c, zResult);
**
** amCallOpen() begins asyncmig's transaction, makes sure the table is there
** and reads the migration's row into c.r; amCallClose() commits and returns
** zResult, or, after the first error (amCallFail(), or any rc kept in
** c.rc), rolls back and reports the error with its code.  Argument readers
** record their own errors the same way.
*/
#include "asyncmig_sqlite.h"
#include <stdarg.h>
#include <string.h>

/*
** Read a boolean argument: NULL gives bDefault; a number is true if it is
** not zero; the texts true/false, t/f, yes/no, on/off, 1/0 are understood.
** Return 0 or 1, or -1 for anything else.
*/
int amBool(sqlite3_value *pVal, int bDefault){
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
void amResultError(sqlite3_context *ctx, int rc, char *zErr,
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

/*
** Begin call c of SQL function zFunc with argc arguments; nMin..nMax are
** allowed, zUsage names them for the message.  Return c->rc.
*/
int amCallStart(AmCall *c, sqlite3_context *ctx, const char *zFunc,
                int argc, int nMin, int nMax, const char *zUsage){
  memset(c, 0, sizeof(*c));
  c->ctx = ctx;
  c->db = sqlite3_context_db_handle(ctx);
  c->p = (AmConn*)sqlite3_user_data(ctx);
  c->zFunc = zFunc;
  if( argc<nMin || argc>nMax ){
    char *zCount = nMin==nMax ? sqlite3_mprintf("%d argument%s", nMin,
                                                nMin==1 ? "" : "s")
                 : sqlite3_mprintf("%d %s %d arguments", nMin,
                                   nMax==nMin+1 ? "or" : "to", nMax);
    if( zCount==0 ) return amCallNoMem(c);
    amCallFail(c, "asyncmig: %s() takes %s (%s), not %d",
               zFunc, zCount, zUsage, argc);
    sqlite3_free(zCount);
  }
  return c->rc;
}

/*
** Record the error of call c: the message made from zFmt (which begins
** with "asyncmig: ").  Only the first error counts.  Return c->rc.
*/
int amCallFail(AmCall *c, const char *zFmt, ...){
  va_list ap;
  if( c->rc!=SQLITE_OK ) return c->rc;
  va_start(ap, zFmt);
  c->zErr = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  c->rc = c->zErr ? SQLITE_ERROR : SQLITE_NOMEM;
  return c->rc;
}

/* Record that call c ran out of memory.  Return SQLITE_NOMEM. */
int amCallNoMem(AmCall *c){
  if( c->rc==SQLITE_OK ) c->rc = SQLITE_NOMEM;
  return c->rc;
}

/*
** Read a text argument of call c that may be NULL (*pz is then NULL) but
** must not contain NUL characters.  zWhat names it ("forwards SQL").
*/
int amCallText(AmCall *c, sqlite3_value *pVal, const char *zWhat,
               const char **pz){
  const char *z = (const char*)sqlite3_value_text(pVal);
  *pz = z;
  if( c->rc!=SQLITE_OK ) return c->rc;
  if( z==0 ){
    return sqlite3_value_type(pVal)==SQLITE_NULL ? SQLITE_OK : amCallNoMem(c);
  }
  if( (int)strlen(z)!=sqlite3_value_bytes(pVal) ){
    *pz = 0;
    return amCallFail(c, "asyncmig: %s must not contain NUL characters",
                      zWhat);
  }
  return SQLITE_OK;
}

/*
** Read the migration name argument of call c: not NULL, not blank, no NUL
** characters.  Return it, or NULL after recording the error.
*/
const char *amCallName(AmCall *c, sqlite3_value *pVal){
  const char *z = 0;
  if( c->rc!=SQLITE_OK ) return 0;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    amCallFail(c, "asyncmig: migration name must not be NULL");
    return 0;
  }
  if( amCallText(c, pVal, "migration name", &z)!=SQLITE_OK ) return 0;
  if( amIsBlank(z) ){
    amCallFail(c, "asyncmig: migration name must not be empty");
    return 0;
  }
  return z;
}

/*
** Read the boolean argument argv[i] of call c into *pb, if there is one
** (else *pb keeps its default).  zWhat names it in the message.
*/
int amCallBool(AmCall *c, int argc, sqlite3_value **argv, int i,
               const char *zWhat, int *pb){
  int b;
  if( c->rc!=SQLITE_OK || i>=argc ) return c->rc;
  b = amBool(argv[i], *pb);
  if( b<0 ) return amCallFail(c, "asyncmig: %s must be a boolean", zWhat);
  *pb = b;
  return SQLITE_OK;
}

/*
** Open call c on migration zName: begin asyncmig's transaction, make sure
** the table and view are there, read the row into c->r.  Return c->rc.
*/
int amCallOpen(AmCall *c, const char *zName){
  if( c->rc!=SQLITE_OK ) return c->rc;
  c->rc = amTxnBegin(&c->t, c->db, c->p, c->zFunc, &c->zErr);
  if( c->rc==SQLITE_OK ) c->rc = amEnsureSchema(c->db, &c->zErr);
  if( c->rc==SQLITE_OK ) c->rc = amRowLoad(c->db, zName, &c->r, &c->zErr);
  return c->rc;
}

/*
** Close call c: without an error, commit asyncmig's transaction (if one is
** open) and return zResult (a copy; NULL gives an SQL NULL); after an
** error, roll back and report it.  Frees everything c holds.
*/
void amCallClose(AmCall *c, const char *zResult){
  if( c->rc==SQLITE_OK ) c->rc = amTxnCommit(&c->t, &c->zErr);
  if( c->rc==SQLITE_OK ){
    if( zResult ){
      sqlite3_result_text(c->ctx, zResult, -1, SQLITE_TRANSIENT);
    }else{
      sqlite3_result_null(c->ctx);
    }
  }else{
    amTxnRollback(&c->t);
    amResultError(c->ctx, c->rc, c->zErr, c->t.bStuck);
    c->zErr = 0;
  }
  amTxnClose(&c->t);
  amRowFree(&c->r);
  sqlite3_free(c->zErr);
  c->zErr = 0;
}

/*
** True if the migration of row r is left as it is by a new schedule call
** (idempotent by name): SCHEDULED, STARTED, IN PROGRESS, or FINISHED by a
** forwards run.  A row in ERROR, or whose last run was backwards, runs
** again.
*/
int amScheduleKeeps(const AmRow *r){
  const char *z = r->zStatus;
  if( !r->bFound ) return 0;
  if( strcmp(z, AM_STATUS_SCHEDULED)==0 || strcmp(z, AM_STATUS_STARTED)==0
   || strcmp(z, AM_STATUS_IN_PROGRESS)==0
  ){
    return 1;
  }
  return strcmp(z, AM_STATUS_FINISHED)==0
      && (r->zDirection==0 || strcmp(r->zDirection, AM_DIRECTION_BACKWARDS)!=0);
}
