# test/lib/chroot.sh - Debian chroots for the PostgreSQL/Django test matrix
#
# Sourced by test/run.sh (and usable alone: bash test/lib/chroot.sh SUITE...
# creates the named chroots).  Each Debian suite gives one PostgreSQL major:
#
#   bullseye  PostgreSQL 13
#   bookworm  PostgreSQL 15   (the .deb test: build, lintian, install; the
#                              host runs the other suites on 15)
#   trixie    PostgreSQL 17, Django 4.2 + psycopg 3
#   sid       PostgreSQL 18, the newest Django in Debian
#   upgrade   Debian bookworm with PostgreSQL 15 and bullseye's PostgreSQL 13
#             side by side: the pg_upgrade test (test/upgrade/run.sh)
#
#   am_chroot_dir SUITE       the chroot's directory
#   am_chroot_pgver SUITE     the PostgreSQL major of that suite
#   am_chroot_ensure SUITE    create it unless it is cached (.ready exists)
#   am_chroot_run SUITE CMD.. run CMD (as root) inside, /proc and /dev mounted
#                             (in a mount namespace of its own)
#
# Chroots are cached in $AM_CHROOT_CACHE (/var/cache/asyncmig-chroots) across
# runs on one machine.  A chroot is made in a temporary directory and renamed
# to its final name only when it is complete (marker file .ready), so a
# half-made chroot (interrupted run, failed download) is never used: the next
# run starts it again.  A lock per suite keeps two runs from making the same
# chroot at once.

AM_CHROOT_CACHE=${AM_CHROOT_CACHE:-/var/cache/asyncmig-chroots}
AM_CHROOT_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The Debian mirror the chroots are made from: $AM_CHROOT_MIRROR if set,
# else the machine's own apt configuration (the first URIs: of a deb822
# .sources file, or the first "deb" line of sources.list, that is not a
# security or updates archive), so that the suite works behind a local mirror
# or a proxy and no mirror's host name is written in this tree.
am_apt_mirror() {
	local f u
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		u=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" |
			grep -v -- '-security\|/security' | head -n 1)
		[ -n "$u" ] && { echo "${u%/}"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		u=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; break } }' "$f" |
			grep -v -- '-security\|/security' | head -n 1)
		[ -n "$u" ] && { echo "${u%/}"; return 0; }
	done
	echo "test/lib/chroot.sh: no Debian mirror in /etc/apt (set AM_CHROOT_MIRROR)" >&2
	return 1
}
AM_CHROOT_MIRROR=${AM_CHROOT_MIRROR:-$(am_apt_mirror)}
# bump a suite's number when what goes into its chroot changes: cached
# chroots of an older generation are then made again
am_chroot_generation() {
	case $1 in
		bullseye) echo 2 ;;	# 2: the isolation tester built from source
		*) echo 1 ;;
	esac
}

am_chroot_dir() { echo "$AM_CHROOT_CACHE/$1"; }

# the Debian release a chroot is made of
am_chroot_release() {
	case $1 in
		upgrade) echo bookworm ;;
		*) echo "$1" ;;
	esac
}

am_chroot_pgver() {
	case $1 in
		bullseye) echo 13 ;;
		bookworm) echo 15 ;;
		trixie) echo 17 ;;
		sid) echo 18 ;;
		upgrade) echo 15 ;;
		*) echo "am_chroot_pgver: unknown suite $1" >&2; return 1 ;;
	esac
}

# what each suite needs: the server and its headers/PGXS (build, regress,
# isolation), IPC::Run (TAP), SQLite, a compiler; Django and a psycopg where
# the Django suite runs; Debian's packaging tools for the .deb test.
am_chroot_packages() {
	local v
	v=$(am_chroot_pgver "$1") || return 1
	local p="postgresql-$v postgresql-server-dev-$v postgresql-client-$v libipc-run-perl make gcc libc6-dev libsqlite3-dev sqlite3 perl"
	case $1 in
		bullseye) p="$p python3 python3-psycopg2" ;;
		bookworm) p="$p postgresql-server-dev-all build-essential debhelper dpkg-dev fakeroot lintian" ;;
		upgrade) p="$p postgresql-13 postgresql-server-dev-13 postgresql-client-13" ;;
		trixie|sid) p="$p python3 python3-django python3-psycopg python3-psycopg2 python3-venv python3-pip python3-setuptools python3-wheel" ;;
	esac
	echo "$p"
}

# run a command in chroot DIR with its own environment, /proc and /dev
# mounted.  The mounts are made in a private mount namespace of this command
# (unshare): they vanish with it, whatever way it ends, are never seen by the
# host or by another run using the same chroot at the same time, and a
# concurrent run's unmounting cannot pull /dev (and PostgreSQL's shared
# memory in /dev/shm) from under this one.
am_chroot_exec_dir() {
	local d=$1
	shift
	unshare --mount --propagation private -- /bin/sh -c '
		d=$1; shift
		mount -t proc proc "$d/proc" && mount --rbind /dev "$d/dev" || exit 125
		exec chroot "$d" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive "$@"' sh "$d" "$@"
}

# create the chroot of SUITE in a temporary directory, then rename it
am_chroot_create() {
	local suite=$1 final tmp v start
	final=$(am_chroot_dir "$suite")
	tmp="$AM_CHROOT_CACHE/.$suite.tmp.$$"
	v=$(am_chroot_pgver "$suite") || return 1
	start=$(date +%s)
	echo "== chroot $suite (PostgreSQL $v): creating in $tmp"
	rm -rf "$final.old"
	(
		set -e
		debootstrap --variant=minbase "$(am_chroot_release "$suite")" "$tmp" "$AM_CHROOT_MIRROR" >"$tmp.log" 2>&1 ||
			{ tail -n 30 "$tmp.log" >&2; exit 1; }
		# no daemons start inside (policy-rc.d), and installing the server
		# creates no cluster: the tests make their own
		printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
		chmod 755 "$tmp/usr/sbin/policy-rc.d"
		mkdir -p "$tmp/etc/postgresql-common"
		echo "create_main_cluster = false" >"$tmp/etc/postgresql-common/createcluster.conf"
		# the Release files of old suites may be "expired"
		echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99asyncmig"
		echo 'APT::Install-Recommends "false";' >>"$tmp/etc/apt/apt.conf.d/99asyncmig"
		# two majors in one root: bookworm's 15 and bullseye's 13 (the
		# packages of an older release install beside the newer ones)
		if [ "$suite" = upgrade ]; then
			echo "deb $AM_CHROOT_MIRROR bullseye main" >>"$tmp/etc/apt/sources.list"
		fi
		am_chroot_exec_dir "$tmp" apt-get -o Acquire::Check-Valid-Until=false -q update >>"$tmp.log" 2>&1 ||
			{ tail -n 30 "$tmp.log" >&2; exit 1; }
		# shellcheck disable=SC2046
		am_chroot_exec_dir "$tmp" apt-get install -y -q -o Dpkg::Options::=--force-confold \
			$(am_chroot_packages "$suite") >>"$tmp.log" 2>&1 ||
			{ tail -n 30 "$tmp.log" >&2; exit 1; }
		# PostgreSQL 13's server-dev package lacks the isolation tester
		if [ ! -x "$tmp/usr/lib/postgresql/$v/lib/pgxs/src/test/isolation/pg_isolation_regress" ]; then
			cp "$AM_CHROOT_LIB/isolationtester.sh" "$tmp/tmp/isolationtester.sh"
			am_chroot_exec_dir "$tmp" bash /tmp/isolationtester.sh "$v" >>"$tmp.log" 2>&1 ||
				{ tail -n 30 "$tmp.log" >&2; exit 1; }
			rm -f "$tmp/tmp/isolationtester.sh"
		fi
		am_chroot_exec_dir "$tmp" apt-get clean >/dev/null 2>&1 || true
		am_chroot_generation "$suite" >"$tmp/.ready"
	) || { rm -rf --one-file-system "$tmp"; return 1; }
	if [ -d "$final" ]; then mv "$final" "$final.old"; fi
	mv "$tmp" "$final"
	mv "$tmp.log" "$final.log" 2>/dev/null || true
	rm -rf --one-file-system "$final.old"
	echo "== chroot $suite ready in $(($(date +%s) - start)) s"
}

# make sure the chroot of SUITE exists and is complete (cached or created)
am_chroot_ensure() {
	local suite=$1 final
	final=$(am_chroot_dir "$suite")
	mkdir -p "$AM_CHROOT_CACHE"
	if [ "$(cat "$final/.ready" 2>/dev/null)" = "$(am_chroot_generation "$suite")" ]; then
		return 0
	fi
	command -v debootstrap >/dev/null || {
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	}
	(
		# one creator per suite; the others wait, then find it ready
		flock 9
		if [ "$(cat "$final/.ready" 2>/dev/null)" = "$(am_chroot_generation "$suite")" ]; then exit 0; fi
		am_chroot_create "$suite"
	) 9>"$AM_CHROOT_CACHE/.$suite.lock"
}

# run CMD as root inside the (ready) chroot of SUITE
am_chroot_run() {
	local suite=$1
	shift
	am_chroot_exec_dir "$(am_chroot_dir "$suite")" "$@"
}

# run CMD... inside the (ready) chroot of SUITE on a copy of the tree REPO,
# at /tmp/asyncmig-NAME-src there (CMD names it so), removed again after;
# returns CMD's exit status.  Build and test leftovers are not copied.
am_chroot_run_on_copy() {
	local suite=$1 repo=$2 name=$3 dir rc=0
	shift 3
	dir=$(am_chroot_dir "$suite")
	rm -rf --one-file-system "$dir/tmp/asyncmig-$name-src"
	mkdir -p "$dir/tmp/asyncmig-$name-src"
	tar -C "$repo" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
		--exclude=./results --exclude=./output_iso --exclude=./tmp_check \
		--exclude=./tmp_check_iso --exclude=./log -cf - . |
		tar -C "$dir/tmp/asyncmig-$name-src" -xf -
	am_chroot_run "$suite" "$@" </dev/null || rc=$?
	rm -rf --one-file-system "$dir/tmp/asyncmig-$name-src"
	return $rc
}

# bash test/lib/chroot.sh SUITE... : create those chroots (in that order)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	for s in "$@"; do am_chroot_ensure "$s"; done
fi
