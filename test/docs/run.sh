#!/usr/bin/env bash
# test/docs/run.sh - the "docs" suite of test/run.sh: every runnable example
# of the documentation runs and shows what its page says, and every relative
# link and anchor between the pages leads somewhere (test/docs/check_docs.py
# says how pages mark their examples).  The SQL examples run on a throwaway
# cluster that preloads asyncmig, one fresh database per page.
#
# Run as root after asyncmig is built and installed into $AM_PGBIN's
# installation (test/run.sh does both):
#     bash test/docs/run.sh [TREE]     (TREE: the pages to check; default
#                                       this checkout)
# KEEP=1 keeps the cluster and prints where it is.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/test/lib/common.sh"
tree=$(cd "${1:-$repo}" && pwd)

[ "$(id -u)" = 0 ] || { echo "test/docs/run.sh: run me as root (the cluster runs as the postgres user)" >&2; exit 2; }
export PATH="$AM_PGBIN:$PATH"

dir=$(mktemp -d /tmp/asyncmig-docs.XXXXXX)
port=$(am_free_port 56400)
cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -f "$dir/server.log" ]; then
		echo "----- tail of $dir/server.log" >&2
		tail -n 30 "$dir/server.log" >&2 || true
	fi
	if [ -n "${KEEP:-}" ]; then echo "kept the cluster in $dir (port $port)" >&2; else am_stop_cluster "$dir"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

am_start_cluster "$dir" "$port" "log_min_messages = warning"
PGHOST=$dir PGPORT=$port PGUSER=postgres python3 "$here/check_docs.py" "$tree"
