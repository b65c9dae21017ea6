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
export PGHOST=$dir PGPORT=$port PGUSER=postgres
# first, that the checker passes what is right and fails on what is wrong
echo "== self-test of the checker (test/docs/selftest)"
rc=0
out=$(python3 "$here/check_docs.py" --expect "$here/selftest/expected-failures.txt" "$here/selftest") || rc=$?
if [ $rc -ne 0 ]; then echo "$out"; exit 1; fi
echo "$out" | tail -n 1
echo "== the pages of $tree"
rc=0
python3 "$here/check_docs.py" "$tree" || rc=$?
# a WARNING in the server's log that no page shows (a worker's, say) is a bug
while IFS= read -r msg; do
	if ! grep -rqF -- "WARNING:  $msg" "$tree"/*.md "$tree"/docs "$tree"/python/*.md 2>/dev/null; then
		echo "the server logged a WARNING that no page shows: $msg"
		rc=1
	fi
done < <(sed -n 's/^.* WARNING:  //p' "$dir/server.log" | sort -u)
exit $rc
