#!/usr/bin/env bash
# test/run.sh - run every test of asyncmig on a fresh Debian machine.
#
# Installs the packages it needs, builds and installs asyncmig.so and
# asyncmig_sqlite.so, then runs, as the postgres user on throwaway clusters:
#   1. pg_regress suites (sql/, expected/) and isolation specs (specs/)
#   2. TAP tests (t/*.pl): restarts, crashes, kills, multi-session cases
# and then the SQLite suites (test/sqlite/run.sh) and the Django suites
# (test/django/run.sh).  Exits non-zero if anything failed.
#
# Usage: bash test/run.sh [regress|tap|sqlite|django ...]   (default: all)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(regress tap sqlite django)

am_ensure_packages
echo "== build and install"
am_build_install "$repo"

# PostgreSQL runs as postgres, which may not be able to read this checkout:
# give it a copy of its own.
work=$(mktemp -d /tmp/asyncmig-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$repo" --exclude=.git --exclude='*.o' --exclude='*.so' -cf - . | tar -C "$work" -xf -
chown -R postgres: "$work"
chmod 755 "$work"

failed=()
pgmake() {
	runuser -u postgres -- make -C "$work" -s PG_CONFIG=$AM_PGBIN/pg_config "$@"
}

for suite in "${suites[@]}"; do
	echo "== $suite"
	case $suite in
		regress)
			if ! pgmake installcheck TAP_TESTS= ; then
				failed+=(regress)
				for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs; do
					[ -f "$f" ] && cat "$f"
				done
			fi
			;;
		tap)
			if ! pgmake installcheck REGRESS= ISOLATION= PROVE_FLAGS="--timer" ; then
				failed+=(tap)
				for f in "$work"/tmp_check/log/regress_log_*; do
					echo "---- $f (last 60 lines)"; tail -n 60 "$f"
				done
			fi
			;;
		sqlite)
			bash "$work/test/sqlite/run.sh" || failed+=(sqlite)
			;;
		django)
			bash "$work/test/django/run.sh" || failed+=(django)
			;;
		*)
			echo "unknown suite: $suite" >&2; exit 2
			;;
	esac
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "== FAILED: ${failed[*]}"
	exit 1
fi
echo "== all tests passed: ${suites[*]}"
