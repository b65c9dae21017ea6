/*
** 2025-11-25
**
** translate.c - the tokenizer and translator of the asyncmig SQLite module.
**
** Pure functions of a text: nothing here reads or writes a database, so
** test/sqlite/unit.c tests them without loading the module.  They find
** the keywords of a migration's SQL (knowing SQLite's strings, quoted
** identifiers and comments) and:
**
**   amScan()           cuts a text into tokens and statements (a CREATE
**                      TRIGGER body is one statement);
**   amTranslate()      removes the PostgreSQL-only words (CONCURRENTLY,
**                      REINDEX options) and refuses transaction control;
**   amTranslateBatch() checks that a batch_sql is one DML statement and
**                      turns PostgreSQL's $1/$2 into SQLite's ?1/?2;
**   amParsePause()     reads a pause ('0', '1.5', '250ms', '2 seconds').
**
** Memory comes from sqlite3_malloc(); messages are "asyncmig: ..." texts
** for the caller to free with sqlite3_free().
*/
#include "asyncmig_sqlite.h"
#include <stdlib.h>
#include <string.h>

/* True if c may appear in a bare identifier */
static int amIsIdChar(unsigned char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || c=='$' || c>=0x80;
}

/* True if c is white space for SQLite */
int amIsSpace(unsigned char c){
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
void amScanFree(AmScan *p){
  sqlite3_free(p->aTok);
  sqlite3_free(p->aStmt);
  memset(p, 0, sizeof(*p));
}

/*
** True if token i exists before iEnd and is the keyword zKw (any case).
*/
int amIsKw(const AmScan *p, int i, int iEnd, const char *zKw){
  int n = (int)strlen(zKw);
  if( i<0 || i>=iEnd || i>=p->nTok ) return 0;
  if( p->aTok[i].eType!=AM_TK_WORD || p->aTok[i].n!=n ) return 0;
  return sqlite3_strnicmp(p->z + p->aTok[i].iOff, zKw, n)==0;
}

/*
** Make room in the array *pa (of *pnAlloc elements of szElem bytes, n of
** them used) for one more element, doubling it.  Return SQLITE_OK or NOMEM.
*/
static int amGrow(void **pa, int *pnAlloc, int n, size_t szElem){
  if( n>=*pnAlloc ){
    int nNew = *pnAlloc ? *pnAlloc*2 : 32;
    void *aNew = sqlite3_realloc64(*pa, szElem*(sqlite3_int64)nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    *pa = aNew;
    *pnAlloc = nNew;
  }
  return SQLITE_OK;
}

/* Append a statement [iFirst,iEnd) to p.  Return SQLITE_OK or NOMEM. */
static int amScanAddStmt(AmScan *p, int iFirst, int iEnd){
  if( amGrow((void**)&p->aStmt, &p->nStmtAlloc, p->nStmt, sizeof(AmStmt)) ){
    return SQLITE_NOMEM;
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
int amScan(AmScan *p, const char *z){
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
      if( amGrow((void**)&p->aTok, &p->nTokAlloc, p->nTok, sizeof(AmToken)) ){
        return SQLITE_NOMEM;
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
int amStmtStart(const AmScan *p, int iStmt){
  return p->aTok[p->aStmt[iStmt].iFirst].iOff;
}

/* Byte length of statement iStmt of p (without its ';') */
int amStmtLen(const AmScan *p, int iStmt){
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
int amTranslate(
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

/* True if z is NULL or only white space */
int amIsBlank(const char *z){
  if( z==0 ) return 1;
  while( amIsSpace((unsigned char)*z) ) z++;
  return *z==0;
}

/* A copy of the n bytes at z without the white space around them */
char *amTrimDup(const char *z, int n){
  while( n>0 && amIsSpace((unsigned char)z[0]) ){ z++; n--; }
  while( n>0 && amIsSpace((unsigned char)z[n-1]) ) n--;
  return sqlite3_mprintf("%.*s", n, z);
}

/*
** Translate the batch_sql of a batched migration (see amTranslate()) and
** check its shape: exactly one statement, which begins with INSERT,
** UPDATE, DELETE, REPLACE or WITH (batch.c also checks, once prepared,
** that it writes and that its parameters are exactly ?1 and ?2).
** PostgreSQL's parameters $1 and $2 become ?1 and ?2 (same length, so the
** rest of the text keeps its offsets); $1 inside a string, a quoted
** identifier or a comment is left alone.
**
** On success *pzOut is the SQLite text (sqlite3_malloc); on error *pzErr
** is a message and an error code is returned.
*/
int amTranslateBatch(const char *zIn, char **pzOut, char **pzErr){
  static const char *azDml[] = { "INSERT", "UPDATE", "DELETE", "REPLACE",
                                 "WITH" };
  AmScan s;
  char *zOut = 0;
  int nStmt = 0;
  int rc;
  int i;

  *pzOut = 0;
  if( zIn==0 ){
    *pzErr = sqlite3_mprintf("asyncmig: batch_sql must not be NULL");
    return SQLITE_ERROR;
  }
  rc = amTranslate(zIn, "batch", &zOut, &nStmt, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( nStmt!=1 ){
    *pzErr = nStmt==0
      ? sqlite3_mprintf("asyncmig: batch_sql must not be empty")
      : sqlite3_mprintf("asyncmig: batch_sql must be one DML statement, "
                        "not %d statements", nStmt);
    sqlite3_free(zOut);
    return SQLITE_ERROR;
  }
  rc = amScan(&s, zOut);
  if( rc==SQLITE_OK ){
    int e = s.aStmt[0].iEnd;
    for(i=0; i<AM_COUNT(azDml) && !amIsKw(&s, s.aStmt[0].iFirst, e, azDml[i]);
        i++){}
    if( i==AM_COUNT(azDml) ){
      const AmToken *pFirst = &s.aTok[s.aStmt[0].iFirst];
      *pzErr = sqlite3_mprintf("asyncmig: batch_sql must be one DML "
          "statement (INSERT, UPDATE, DELETE), not %.*s",
          pFirst->n, zOut + pFirst->iOff);
      rc = SQLITE_ERROR;
    }
  }
  for(i=0; rc==SQLITE_OK && i<s.nTok; i++){
    char *z = zOut + s.aTok[i].iOff;
    if( s.aTok[i].eType==AM_TK_WORD && s.aTok[i].n==2 && z[0]=='$'
     && (z[1]=='1' || z[1]=='2')
    ){
      z[0] = '?';
    }
  }
  amScanFree(&s);
  if( rc!=SQLITE_OK ){
    sqlite3_free(zOut);
    return rc;
  }
  *pzOut = zOut;
  return SQLITE_OK;
}

/*
** Read a pause between batches: a number of seconds ("0", "1.5"), or a
** number and a unit as PostgreSQL's interval input spells the short ones:
** ms, millisecond(s), s, sec(s), second(s), min(s), minute(s).  Set
** *pSeconds and return 0, or return 1 if z is none of these or negative.
*/
int amParsePause(const char *z, double *pSeconds){
  static const struct { const char *zUnit; double rScale; } aUnit[] = {
    { "",             1.0 },
    { "ms",           0.001 }, { "millisecond", 0.001 },
    { "milliseconds", 0.001 },
    { "s",            1.0 },   { "sec", 1.0 }, { "secs", 1.0 },
    { "second",       1.0 },   { "seconds", 1.0 },
    { "min",          60.0 },  { "mins", 60.0 },
    { "minute",       60.0 },  { "minutes", 60.0 },
  };
  char *zEnd = 0;
  double r;
  int i;
  if( z==0 ) return 1;
  while( amIsSpace((unsigned char)*z) ) z++;
  if( *z=='-' ) return 1;
  r = strtod(z, &zEnd);
  if( zEnd==z || !(r>=0.0) || r>1e9 ) return 1;
  while( amIsSpace((unsigned char)*zEnd) ) zEnd++;
  for(i=0; i<AM_COUNT(aUnit); i++){
    int n = (int)strlen(aUnit[i].zUnit);
    if( sqlite3_strnicmp(zEnd, aUnit[i].zUnit, n)==0 && amIsBlank(zEnd+n) ){
      *pSeconds = r*aUnit[i].rScale;
      return 0;
    }
  }
  return 1;
}
