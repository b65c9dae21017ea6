# Makefile for asyncmig (PGXS)
#
# Builds asyncmig.so (the PostgreSQL extension) and asyncmig_sqlite.so (the
# SQLite module, see src/sqlite/sqlite.mk); "make install" installs both
# into $(pg_config --pkglibdir).

MODULE_big = asyncmig
OBJS = \
	src/asyncmig.o \
	src/batch_catalog.o \
	src/batch_check.o \
	src/batch_run.o \
	src/batch_schedule.o \
	src/catalog.o \
	src/catalog_dependencies.o \
	src/catalog_functions.o \
	src/catalog_worker.o \
	src/databases.o \
	src/executor.o \
	src/functions.o \
	src/guard.o \
	src/launcher.o \
	src/obituary.o \
	src/preflight.o \
	src/registry.o \
	src/registry_file.o \
	src/session.o \
	src/settings.o \
	src/shmem.o \
	src/wait.o \
	src/worker.o

EXTENSION = asyncmig
DATA = asyncmig--1.0.sql asyncmig--1.0--1.1.sql asyncmig--1.1--1.2.sql
PGFILEDESC = "asyncmig - run heavy schema changes in a background worker"

# pg_regress: the SQL surface, on a temporary instance that preloads asyncmig.
# It must be run by a user that may start PostgreSQL (test/run.sh does that).
REGRESS = schedule input security security_hostile deps batches batch_walk sql_errors monitor history_plans
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=./test/regress.conf \
	--dbname=contrib_regression

# isolation specs (races), run by "make isolationcheck"
ISOLATION = schedule_race security_cycle
ISOLATION_OPTS = --temp-instance=./tmp_check_iso --temp-config=./test/regress.conf

TAP_TESTS = 1

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK =

# what "pip install ./python" leaves in the tree (never part of a package)
EXTRA_CLEAN = python/build python/dist python/*.egg-info

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

include $(srcdir)/src/sqlite/sqlite.mk

# PGXS has "installcheck" for REGRESS and ISOLATION; give the isolation
# specs a target of their own so that each suite can be run alone.
.PHONY: isolationcheck
isolationcheck:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
