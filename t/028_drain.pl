# Copyright (c) asyncmig developers
#
# A queue of small migrations drained by one worker at a time: the launcher
# starts a database's next worker as soon as the previous one has recorded
# its run's end, while that process is still exiting.  What must hold
# anyway: every migration runs in a process of its own, a database never
# runs two at once, and with no background worker slot to spare for the
# overlap (max_worker_processes as small as asyncmig needs) the queue still
# drains, without a warning.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $n = 40;

# the migrations of one database, one after the other, each its own process
sub check_drain
{
	my ($node, $prefix, $label) = @_;

	$node->safe_psql('postgres', qq{
BEGIN;
SELECT count(asyncmig.schedule('${prefix}_' || g, 'SELECT ' || g)) FROM generate_series(1, $n) g;
COMMIT;
});
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = $n FROM asyncmig.migration WHERE name LIKE '${prefix}\\_%' AND status IN ('FINISHED', 'ERROR')"),
		"$label: the queue drains");
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM asyncmig.migration WHERE name LIKE '${prefix}\\_%' AND status = 'FINISHED'"),
		$n, "$label: every migration FINISHED");
	# the process of each run, from its "started" line
	my %pids;
	my $log = slurp_file($node->logfile);
	$pids{$1}++ while $log =~ /\[(\d+)\] LOG:  asyncmig migration "${prefix}_\d+" started/g;
	is(scalar(keys %pids), $n, "$label: each migration ran in a process of its own");
	is(asyncmig_overlapping_runs($node, $prefix),
		'0', "$label: no migration started before the previous one ended");
}

# room for the overlap
my $node = asyncmig_node('drain', conf => qq{
asyncmig.max_workers = 1
log_line_prefix = '[%p] '
});
$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig');
check_drain($node, 'roomy', 'with background worker slots to spare');

# no room: the launcher, the logical replication launcher and one worker
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 3
max_parallel_workers = 0
});
$node->restart;
check_drain($node, 'tight', 'with max_worker_processes as small as asyncmig needs');

my $log = slurp_file($node->logfile);
unlike($log, qr/could not start a worker|(?:WARNING|ERROR):  /,
	'no warning or error in the server log');

$node->stop;
done_testing();
