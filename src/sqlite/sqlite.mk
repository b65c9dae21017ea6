# src/sqlite/sqlite.mk - build rules of the SQLite module asyncmig_sqlite.so
#
# Included by the top-level Makefile after PGXS, which defines CC, DLSUFFIX,
# INSTALL_SHLIB, pkglibdir, DESTDIR and srcdir.  The module does not link
# libsqlite3: it is an SQLite loadable extension (sqlite3ext.h) and uses the
# SQLite of whatever program loads it.  It only needs sqlite3ext.h at build
# time (Debian: libsqlite3-dev).
#
#   make                    builds asyncmig_sqlite.so (with asyncmig.so)
#   make install            installs it into $(DESTDIR)$(pkglibdir)
#   make sqlite-asan        builds an ASan/UBSan copy into $(SQLITE_ASAN_DIR)
#   make asyncmig_sqlite.so builds only this module
#   make sqlite-unit        builds the unit test of translate.c, plain and
#                           with ASan/UBSan, into $(SQLITE_ASAN_DIR)
#
# The file also works on its own, without PGXS, e.g. (used by
# test/sqlite/run.sh):
#   make -f src/sqlite/sqlite.mk srcdir=. SQLITE_ASAN_DIR=/tmp/x sqlite-asan

CC ?= cc
DLSUFFIX ?= .so
srcdir ?= .

SQLITE_MODULE = asyncmig_sqlite$(DLSUFFIX)
SQLITE_SRCS = $(addprefix $(srcdir)/src/sqlite/, \
	asyncmig_sqlite.c batch.c call.c run.c table.c translate.c)
SQLITE_HDRS = $(srcdir)/src/sqlite/asyncmig_sqlite.h $(srcdir)/src/vocabulary.h
SQLITE_INCLUDES = -I$(srcdir)/src -I$(srcdir)/src/sqlite
SQLITE_CFLAGS = -fPIC -shared -O2 -g -Wall -Wextra -fvisibility=hidden \
	$(SQLITE_INCLUDES)
SQLITE_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
SQLITE_ASAN_CFLAGS = -fPIC -shared -O1 -g -Wall -Wextra -fvisibility=hidden \
	$(SQLITE_INCLUDES) $(SQLITE_SAN)
# The unit test links translate.c with libsqlite3 (-DSQLITE_CORE: direct
# calls instead of the sqlite3_api table of a loaded extension).
SQLITE_UNIT_SRCS = $(srcdir)/test/sqlite/unit.c $(srcdir)/src/sqlite/translate.c
SQLITE_UNIT_CFLAGS = -O1 -g -Wall -Wextra -DSQLITE_CORE $(SQLITE_INCLUDES)
SQLITE_ASAN_DIR ?= test/sqlite/build

all: $(SQLITE_MODULE)

# The entry point is the only exported symbol (-fvisibility=hidden, and a
# visibility attribute on the entry point in asyncmig_sqlite.c): SQLite
# dlopens extensions RTLD_GLOBAL, and the module's sqlite3_api and internal
# functions must not be interposed by another extension's.
# SQLITE_EXTRA_FLAGS: a packager's compiler and linker flags (debian/rules
# passes dpkg-buildflags' hardening flags through it).
$(SQLITE_MODULE): $(SQLITE_SRCS) $(SQLITE_HDRS)
	$(CC) $(SQLITE_CFLAGS) $(SQLITE_EXTRA_FLAGS) -o $@ $(SQLITE_SRCS)

.PHONY: sqlite-asan sqlite-unit install-sqlite clean-sqlite
sqlite-asan: $(SQLITE_SRCS) $(SQLITE_HDRS)
	mkdir -p '$(SQLITE_ASAN_DIR)'
	$(CC) $(SQLITE_ASAN_CFLAGS) -o '$(SQLITE_ASAN_DIR)/$(SQLITE_MODULE)' $(SQLITE_SRCS)

sqlite-unit: $(SQLITE_UNIT_SRCS) $(SQLITE_HDRS)
	mkdir -p '$(SQLITE_ASAN_DIR)'
	$(CC) $(SQLITE_UNIT_CFLAGS) -o '$(SQLITE_ASAN_DIR)/unit' $(SQLITE_UNIT_SRCS) -lsqlite3
	$(CC) $(SQLITE_UNIT_CFLAGS) $(SQLITE_SAN) -o '$(SQLITE_ASAN_DIR)/unit-asan' $(SQLITE_UNIT_SRCS) -lsqlite3

install: install-sqlite
install-sqlite: $(SQLITE_MODULE)
	$(MKDIR_P) '$(DESTDIR)$(pkglibdir)'
	$(INSTALL_SHLIB) $(SQLITE_MODULE) '$(DESTDIR)$(pkglibdir)/$(SQLITE_MODULE)'

clean: clean-sqlite
clean-sqlite:
	rm -f $(SQLITE_MODULE)
	rm -rf test/sqlite/build
