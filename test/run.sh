#!/usr/bin/env bash
# test/run.sh - run every test of asyncmig on a fresh Debian machine.
#
# With no arguments (what CI runs), everything:
#   1. on the host (Debian bookworm, PostgreSQL 15): build (a warning fails
#      it), install, then pg_regress suites (sql/, expected/) and isolation
#      specs (specs/), TAP tests (t/*.pl), the SQLite suites
#      (test/sqlite/run.sh), the Django suites (test/django/run.sh), the
#      META.json check (meta), the documentation's runnable examples and
#      links (docs, test/docs/run.sh), the production tools (ops: postgres_exporter,
#      promtool and pgbouncer, test/ops/run.sh), the Debian package (deb) and a pg_upgrade
#      from PostgreSQL 13 to 15 (upgrade; both in chroots);
#   2. the matrix: in Debian chroots (test/lib/chroot.sh, cached in
#      /var/cache/asyncmig-chroots) PostgreSQL 13 (bullseye), 17 (trixie) and
#      18 (sid), one after the other: build without warnings, regress +
#      isolation, TAP, and the Django suite on 17 and 18 (Django 4.2 and the
#      newest Django, psycopg 3).
# Clusters are throwaway ones run by the postgres user.  Exits non-zero if
# anything failed.
#
# Usage: bash test/run.sh [--pg VERSIONS] [SUITE...]
#   SUITE: regress tap sqlite django meta docs ops deb upgrade, or matrix
#          (= --pg 13,17,18)
#   bash test/run.sh regress tap         those suites on the host only
#   bash test/run.sh --pg 17 [SUITE...]  PostgreSQL 17 alone (in its chroot;
#                                        default suites: regress tap django)
#   bash test/run.sh --pg 13,15,18 tap   TAP on those majors (15 = the host)
#   bash test/run.sh --pg all            every major, default suites
# AM_PGBIN names the host's PostgreSQL (default /usr/lib/postgresql/15/bin).
# PROVE_TESTS (e.g. 't/030_batches.pl t/013_edges.pl') runs only those TAP
# files, AM_REGRESS (e.g. 'batches deps') only those pg_regress files (then
# no isolation spec).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/test/lib/common.sh"
. "$repo/test/lib/chroot.sh"

AM_HOST_PG=15
AM_MATRIX_PGS="13 17 18"
# the chroot (Debian suite) of each PostgreSQL major of the matrix
am_pg_suite() {
	case $1 in
		13) echo bullseye ;;
		17) echo trixie ;;
		18) echo sid ;;
		*) echo "test/run.sh: PostgreSQL $1 is not in the matrix (13 15 17 18)" >&2; return 1 ;;
	esac
}

versions=()
suites=()
while [ $# -gt 0 ]; do
	case $1 in
		--pg) shift; [ $# -gt 0 ] || { echo "--pg needs a version list" >&2; exit 2; }
			IFS=', ' read -r -a vs <<<"$1"
			for v in "${vs[@]}"; do
				if [ "$v" = all ]; then versions+=($AM_HOST_PG $AM_MATRIX_PGS); else versions+=("$v"); fi
			done ;;
		--pg=*) IFS=', ' read -r -a vs <<<"${1#--pg=}"
			for v in "${vs[@]}"; do
				if [ "$v" = all ]; then versions+=($AM_HOST_PG $AM_MATRIX_PGS); else versions+=("$v"); fi
			done ;;
		matrix) versions+=($AM_MATRIX_PGS) ;;
		-*) echo "unknown option: $1" >&2; exit 2 ;;
		*) suites+=("$1") ;;
	esac
	shift
done
for s in "${suites[@]}"; do
	case $s in regress|tap|sqlite|django|meta|docs|ops|deb|upgrade) ;; *) echo "unknown suite: $s" >&2; exit 2 ;; esac
done

# What runs where.  Inside a chroot (AM_IN_CHROOT set by the outer run), only
# the named suites, here.
host_suites=()
matrix=()
if [ -n "${AM_IN_CHROOT:-}" ]; then
	host_suites=("${suites[@]}")
elif [ ${#versions[@]} -eq 0 ]; then
	if [ ${#suites[@]} -eq 0 ]; then
		# "matrix" alone was not given either: everything
		host_suites=(regress tap sqlite django meta docs ops deb upgrade)
		matrix=($AM_MATRIX_PGS)
	else
		host_suites=("${suites[@]}")
	fi
else
	for v in "${versions[@]}"; do
		if [ "$v" = "$AM_HOST_PG" ]; then
			if [ ${#suites[@]} -eq 0 ]; then host_suites=(regress tap sqlite django meta docs ops deb upgrade); else host_suites=("${suites[@]}"); fi
		else
			am_pg_suite "$v" >/dev/null || exit 2
			case " ${matrix[*]:-} " in *" $v "*) ;; *) matrix+=("$v") ;; esac
		fi
	done
fi

failed=()
timings=()

# make, failing on any compiler warning (the build must be clean on every
# PostgreSQL major), then make install
am_build_clean() {
	local log rc=0 f
	# version differences live in src/compat.h only
	for f in $(grep -rl 'PG_VERSION_NUM' "$repo/src" --include='*.[ch]' | grep -v '/src/compat\.h$'); do
		echo "== $f tests PG_VERSION_NUM: version differences go into src/compat.h"
		rc=1
	done
	[ $rc -eq 0 ] || return 1
	log=$(mktemp)
	make -C "$repo" PG_CONFIG=$AM_PGBIN/pg_config >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ] || grep -q 'warning:' "$log"; then
		grep -v '^make' "$log" | grep -B2 -A6 'warning:\|error:' || cat "$log"
		rm -f "$log"
		echo "== build failed or warned (PostgreSQL $($AM_PGBIN/pg_config --version))"
		return 1
	fi
	rm -f "$log"
	am_sudo make -C "$repo" -s PG_CONFIG=$AM_PGBIN/pg_config install
}

# the suites of host_suites, here (the host, or inside a chroot)
am_run_here() {
	[ ${#host_suites[@]} -gt 0 ] || return 0
	[ -n "${AM_IN_CHROOT:-}" ] || am_ensure_packages
	export PATH="$AM_PGBIN:$PATH"
	echo "== build and install ($($AM_PGBIN/pg_config --version))"
	if ! am_build_clean; then
		failed+=("build-$($AM_PGBIN/pg_config --version | sed 's/[^0-9]*\([0-9]*\).*/\1/')")
		return 0
	fi
	# the structure of src/ (no cycle, no file over 800 lines, exported
	# names prefixed by their file), on the objects just built
	if command -v python3 >/dev/null; then
		echo "== structure (test/lint/structure.py)"
		python3 "$repo/test/lint/structure.py" "$repo" || failed+=(structure)
	else
		echo "== structure: no python3 here, not checked"
	fi

	# PostgreSQL runs as postgres, which may not be able to read this
	# checkout: give it a copy of its own.
	work=$(mktemp -d /tmp/asyncmig-test.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	tar -C "$repo" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$work" -xf -
	chown -R postgres: "$work"
	chmod 755 "$work"

	pgmake() {
		runuser -u postgres -- make -C "$work" -s PG_CONFIG=$AM_PGBIN/pg_config "$@"
	}

	local suite t0
	for suite in "${host_suites[@]}"; do
		echo "== $suite"
		t0=$(date +%s)
		case $suite in
			regress)
				# the temp instances' logs outlive them (pg_regress removes
				# the instance when its tests pass), to be checked after
				mkdir -p "$work/server_log"
				chown postgres: "$work/server_log"
				printf "logging_collector = on\nlog_directory = '%s'\nlog_filename = 'postgresql-%%H%%M%%S.log'\n" \
					"$work/server_log" >"$work/server_log.conf"
				if ! pgmake installcheck TAP_TESTS= EXTRA_REGRESS_OPTS="--temp-config=$work/server_log.conf" \
						${AM_REGRESS:+REGRESS="$AM_REGRESS" ISOLATION=} ; then
					failed+=(regress)
					for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs; do
						[ -f "$f" ] && cat "$f"
					done
				elif ! am_check_server_log "$work/test/regress_log_allow" "$work"/server_log/*.log; then
					failed+=(regress)
				fi
				;;
			tap)
				if ! pgmake installcheck REGRESS= ISOLATION= PROVE_FLAGS="--timer ${AM_PROVE_FLAGS:-}" PROVE_TESTS="${PROVE_TESTS:-}" ; then
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
				PG_CONFIG=$AM_PGBIN/pg_config bash "$work/test/django/run.sh" || failed+=(django)
				;;
			meta)
				python3 "$work/test/meta/check_meta.py" "$work" || failed+=(meta)
				python3 "$work/test/meta/history_queries.py" "$work" "$AM_PGBIN/pg_config" --check || failed+=(meta)
				;;
			docs)
				bash "$work/test/docs/run.sh" "$work" || failed+=(docs)
				;;
			deb)
				bash "$work/test/deb/run.sh" "$repo" || failed+=(deb)
				;;
			upgrade)
				bash "$work/test/upgrade/run.sh" "$repo" || failed+=(upgrade)
				;;
			ops)
				# host only: the packages are bookworm's, the ports the host's
				if [ -n "${AM_IN_CHROOT:-}" ]; then echo "(ops runs on the host only)"; else
					bash "$work/test/ops/run.sh" || failed+=(ops)
				fi
				;;
		esac
		timings+=("$suite $(($(date +%s) - t0))s")
	done
}

# PostgreSQL $1 in its chroot: the tree is copied in (no build products)
# and this script runs there on that major's suites
am_run_chroot() {
	local v=$1 suite rc=0 t0 s
	suite=$(am_pg_suite "$v")
	t0=$(date +%s)
	echo "== PostgreSQL $v (Debian $suite chroot)"
	if ! am_chroot_ensure "$suite"; then
		failed+=("chroot-$suite")
		return 0
	fi
	local ss=("${suites[@]}")
	if [ ${#ss[@]} -eq 0 ]; then
		ss=(regress tap)
		case $v in 17|18) ss+=(django) ;; esac
	fi
	am_chroot_run_on_copy "$suite" "$repo" matrix env AM_IN_CHROOT="$suite" CI="${CI:-}" \
		AM_PGBIN=/usr/lib/postgresql/$v/bin PG_CONFIG=/usr/lib/postgresql/$v/bin/pg_config \
		bash /tmp/asyncmig-matrix-src/test/run.sh "${ss[@]}" || rc=$?
	[ $rc -eq 0 ] || failed+=("pg$v")
	timings+=("pg$v $(($(date +%s) - t0))s")
}

t_all=$(date +%s)
if [ ${#host_suites[@]} -gt 0 ]; then
	[ -n "${AM_IN_CHROOT:-}" ] || echo "== PostgreSQL $AM_HOST_PG (host): ${host_suites[*]}"
	am_run_here
fi
for v in "${matrix[@]:-}"; do
	[ -n "$v" ] && am_run_chroot "$v"
done

where=${AM_IN_CHROOT:+ in $AM_IN_CHROOT}
[ ${#timings[@]} -gt 0 ] && echo "== times$where: ${timings[*]}, total $(($(date +%s) - t_all))s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "== FAILED$where: ${failed[*]}"
	exit 1
fi
summary=${host_suites[*]:-}
if [ -n "${matrix[*]:-}" ]; then summary="${summary:+$summary on PostgreSQL $AM_HOST_PG; }PostgreSQL ${matrix[*]}"; fi
echo "== all tests passed$where: $summary"
