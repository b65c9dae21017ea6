#!/usr/bin/env bash
# test/sqlite/run.sh - test suite of the asyncmig SQLite module
#
# Usage: test/sqlite/run.sh [MODULE_DIR]
#   MODULE_DIR  the directory that holds asyncmig_sqlite.so (the build tree
#               or the install directory); default: $(pg_config --pkglibdir)
#
# Runs the unit test of the tokenizer/translator (unit.c, plain and with
# ASan/UBSan), then, against that module and then against an
# AddressSanitizer + UndefinedBehaviorSanitizer build made from this
# checkout's source:
#   - the sqlite3 CLI suite (cli_test.sh),
#   - the Python suite (test_asyncmig_sqlite.py, /usr/bin/python3, unittest).
# Works from any directory, writes only under a mktemp -d directory, needs
# no network.  Needs sqlite3, libsqlite3-dev (sqlite3ext.h, and libsqlite3.so
# for the unit test), gcc, make.
# Exits 0 if everything passed, 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ $# -ge 1 ]; then
	moddir=$1
else
	moddir=$(pg_config --pkglibdir)
fi
moddir=$(cd "$moddir" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
CC=${CC:-gcc}

work=$(mktemp -d "${TMPDIR:-/tmp}/asyncmig-sqlite-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

declare -a results=()
failed=0

# record NAME STATUS: remember the outcome of one suite
record() {
	results+=("$(printf '%-4s %s' "$2" "$1")")
	if [ "$2" != PASS ]; then failed=1; fi
}

if [ ! -f "$moddir/asyncmig_sqlite.so" ]; then
	echo "FAIL: $moddir/asyncmig_sqlite.so does not exist (build with make)" >&2
	exit 1
fi
for tool in sqlite3 "$PYTHON" make "$CC"; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL: $tool is not installed" >&2
		exit 1
	fi
done

# ---------------------------------------------------------------------------
# The sanitizer build and its environment.  sqlite3 and python3 are not
# built with ASan and load the module with dlopen(), so the runtimes must be
# preloaded.  Reports go to files under $work/san (log_path) so that any
# report fails the run, whatever the test did with stderr.
echo "== building the ASan/UBSan module"
make --no-print-directory -s -C "$work" -f "$repo/src/sqlite/sqlite.mk" \
	srcdir="$repo" CC="$CC" SQLITE_ASAN_DIR="$work/asan" sqlite-asan
libasan=$("$CC" -print-file-name=libasan.so)
libubsan=$("$CC" -print-file-name=libubsan.so)
for lib in "$libasan" "$libubsan"; do
	if [ ! -e "$lib" ]; then
		echo "FAIL: $lib not found" >&2
		exit 1
	fi
done
mkdir -p "$work/san"
san_preload="$libasan:$libubsan"
san_env=(
	"ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=86:log_path=$work/san/asan"
	"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87:log_path=$work/san/ubsan"
)

# san_reports: print the sanitizer reports written so far, and clear them;
# return 1 if there were any
san_reports() {
	local f found=0
	for f in "$work"/san/*; do
		[ -e "$f" ] || continue
		found=1
		echo "---- sanitizer report $f"
		cat "$f"
		rm -f "$f"
	done
	[ "$found" = 0 ]
}

# run_suites LABEL MODULE_PATH_WITHOUT_SUFFIX PRELOAD ENV...
# (PRELOAD is given to the sqlite3 and python3 processes only, not to bash)
run_suites() {
	local label=$1 module=$2 preload=$3
	shift 3
	local dir="$work/$label"
	mkdir -p "$dir/cli" "$dir/py"

	echo "== [$label] sqlite3 CLI suite ($module)"
	if env "$@" AM_PRELOAD="$preload" "$here/cli_test.sh" "$module" "$dir/cli"; then
		if san_reports; then
			record "$label: sqlite3 CLI suite" PASS
		else record "$label: sqlite3 CLI suite (sanitizer report)" FAIL; fi
	else
		san_reports || true
		record "$label: sqlite3 CLI suite" FAIL
	fi

	echo "== [$label] Python suite ($PYTHON)"
	if env "$@" LD_PRELOAD="$preload" ASYNCMIG_SQLITE_MODULE="$module" \
		ASYNCMIG_TEST_TMP="$dir/py" "$PYTHON" "$here/test_asyncmig_sqlite.py"; then
		if san_reports; then
			record "$label: Python suite" PASS
		else record "$label: Python suite (sanitizer report)" FAIL; fi
	else
		san_reports || true
		record "$label: Python suite" FAIL
	fi
}

# ---------------------------------------------------------------------------
# A check of the sanitizer harness itself: an extension with a deliberate
# heap overflow must be caught (non-zero exit and a report).
echo "== sanitizer harness check (a deliberate overflow must be caught)"
mkdir -p "$work/canary"
cat >"$work/canary/canary.c" <<'EOF'
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <stdlib.h>
#include <string.h>
static void overflowFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  volatile char *p = malloc(8);
  (void)argc; (void)argv;
  memset((char*)p, 0, 9);
  sqlite3_result_int(ctx, p[8]);
  free((char*)p);
}
__attribute__((visibility("default")))
int sqlite3_canary_init(sqlite3 *db, char **pzErr, const sqlite3_api_routines *pApi){
  SQLITE_EXTENSION_INIT2(pApi);
  (void)pzErr;
  return sqlite3_create_function(db, "overflow", 0, SQLITE_UTF8, 0, overflowFunc, 0, 0);
}
EOF
"$CC" -w -fPIC -shared -O0 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-o "$work/canary/canary.so" "$work/canary/canary.c"
set +e
printf '.load "%s"\nSELECT overflow();\n' "$work/canary/canary" |
	env LD_PRELOAD="$san_preload" "${san_env[@]}" sqlite3 -batch ":memory:" >/dev/null 2>&1
canary_rc=$?
set -e
if [ "$canary_rc" != 0 ] && ! san_reports >/dev/null; then
	record "sanitizer harness catches a heap overflow (exit $canary_rc)" PASS
else
	san_reports >/dev/null || true
	record "sanitizer harness catches a heap overflow (exit $canary_rc)" FAIL
fi

# ---------------------------------------------------------------------------
# The unit test of translate.c (pure functions, no module loaded)
echo "== unit test of the tokenizer and translator"
make --no-print-directory -s -C "$work" -f "$repo/src/sqlite/sqlite.mk" \
	srcdir="$repo" CC="$CC" SQLITE_ASAN_DIR="$work/unit" sqlite-unit
for unit in unit unit-asan; do
	if env LD_PRELOAD= "${san_env[@]}" "$work/unit/$unit" >"$work/unit/$unit.out" 2>&1 &&
		san_reports; then
		record "unit test of translate.c ($unit)" PASS
	else
		cat "$work/unit/$unit.out"
		san_reports || true
		record "unit test of translate.c ($unit)" FAIL
	fi
done

# ---------------------------------------------------------------------------
run_suites plain "$moddir/asyncmig_sqlite" ""
run_suites asan "$work/asan/asyncmig_sqlite" "$san_preload" "${san_env[@]}"

echo
echo "== SUMMARY (module: $moddir/asyncmig_sqlite.so)"
printf '%s\n' "${results[@]}"
if [ "$failed" = 0 ]; then
	echo "PASS: all SQLite module suites passed"
else
	echo "FAIL: some SQLite module suites failed"
fi
exit "$failed"
