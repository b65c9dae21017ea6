# test/lib/common.sh - shell helpers shared by the demo and the test runner
#
#   am_ensure_packages     apt-get install what is missing (Debian)
#   am_build_install DIR   make && make install of the tree in DIR
#   am_start_cluster DIR PORT [extra postgresql.conf lines...]
#                          initdb + start a throwaway cluster as "postgres"
#                          with asyncmig preloaded, socket in DIR
#   am_stop_cluster DIR    stop it (immediate) and remove DIR
#   am_throwaway_cluster NAME PORT [extra postgresql.conf lines...]
#                          packages, build and install of this tree, then a
#                          cluster in a new /tmp/asyncmig-NAME.XXXXXX on a free
#                          port from PORT: sets dir and port, and stops and
#                          removes it at exit (unless KEEP is set)
#   am_psql ARGS...        psql as postgres to that cluster (-X -q, stops at
#                          the first error)
#   am_now_ms              milliseconds since the epoch, for timings
#
# PostgreSQL refuses to run as root, so clusters run as the postgres user,
# in directories that user owns.

AM_PACKAGES="postgresql-15 postgresql-server-dev-15 libipc-run-perl libsqlite3-dev sqlite3 python3-django python3-psycopg2 python3-venv python3-setuptools make gcc"
# AM_PGBIN may be set to another installation (a private copy, another major)
AM_PGBIN=${AM_PGBIN:-/usr/lib/postgresql/15/bin}
# the tree this file belongs to
AM_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

am_sudo() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

am_ensure_packages() {
	local missing=""
	for p in $AM_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "== installing:$missing"
		am_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		am_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	fi
	# Debian's postgresql-common may create and start a system cluster; we
	# never touch it, and our clusters use their own ports and sockets.
	export PATH="$AM_PGBIN:$PATH"
}

am_build_install() {
	make -C "$1" -s PG_CONFIG=$AM_PGBIN/pg_config
	am_sudo make -C "$1" -s PG_CONFIG=$AM_PGBIN/pg_config install
}

am_start_cluster() {
	local dir=$1 port=$2
	shift 2
	mkdir -p "$dir"
	chown postgres: "$dir"
	runuser -u postgres -- $AM_PGBIN/initdb -D "$dir/data" -A trust -U postgres >/dev/null
	{
		echo "shared_preload_libraries = 'asyncmig'"
		echo "unix_socket_directories = '$dir'"
		echo "listen_addresses = ''"
		echo "port = $port"
		for line in "$@"; do echo "$line"; done
	} >> "$dir/data/postgresql.conf"
	runuser -u postgres -- $AM_PGBIN/pg_ctl -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

am_stop_cluster() {
	local dir=$1
	[ -d "$dir/data" ] && runuser -u postgres -- $AM_PGBIN/pg_ctl -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}

# a free TCP port number (nothing listens on it, by socket or by name)
am_free_port() {
	local p
	for p in $(seq "${1:-55432}" 65000); do
		if ! ls /tmp/.s.PGSQL.$p /var/run/postgresql/.s.PGSQL.$p >/dev/null 2>&1 &&
			! (ss -ltn 2>/dev/null | grep -q ":$p "); then
			echo "$p"; return 0
		fi
	done
	return 1
}

# the end of a demo or a benchmark: a WARNING in its server log fails it
am_throwaway_end() {
	local rc=$?
	am_check_server_log "" "$dir/server.log" || rc=1
	am_stop_cluster "$dir"
	exit $rc
}

# what the demo and the benchmarks start from; sets dir and port
am_throwaway_cluster() {
	local name=$1 from=$2
	shift 2
	am_ensure_packages
	am_build_install "$AM_REPO"
	dir=$(mktemp -d "/tmp/asyncmig-$name.XXXXXX")
	port=$(am_free_port "$from")
	if [ -z "${KEEP:-}" ]; then
		trap am_throwaway_end EXIT
	fi
	am_start_cluster "$dir" "$port" "$@"
}

am_psql() {
	runuser -u postgres -- psql -h "$dir" -p "$port" -X -q -v ON_ERROR_STOP=1 "$@"
}

am_now_ms() { date +%s%3N; }

# am_check_server_log ALLOW LOG...
#   A server log with an unexpected WARNING is a bug.  Print the WARNING,
#   PANIC and failed-assertion (TRAP) lines of the LOGs that no pattern of
#   the file ALLOW matches (extended regular expressions, one a line; lines
#   starting with # say why the pattern below them is expected; "" or no
#   such file: nothing is allowed), and fail if there is one.
am_check_server_log() {
	local allow=$1 bad
	shift
	bad=$(grep -h -E 'WARNING:  |PANIC:  |^TRAP: ' "$@" 2>/dev/null |
		if [ -n "$allow" ] && [ -f "$allow" ]; then
			grep -v -E -f <(grep -v -E '^[[:space:]]*(#|$)' "$allow")
		else
			cat
		fi) || true
	if [ -n "$bad" ]; then
		echo "unexpected lines in the server log ($*; a bug, or declare them in ${allow:-an allow file}):" >&2
		printf '%s\n' "$bad" | head -n 40 >&2
		return 1
	fi
	return 0
}
