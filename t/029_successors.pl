# Copyright (c) asyncmig developers
#
# Successors: while a worker runs, the launcher starts the next worker of
# its database early; it connects, warms its caches and waits until the
# running one's end is committed (src/launcher.c).  What must hold:
#  - the queue drains through successors, each migration in a fresh
#    session of its own (a temporary table of one run is not seen by the
#    next), one at a time;
#  - a successor never takes another database's turn: with one worker for
#    the cluster, a migration queued in a second database starts after at
#    most the run under way (and the one just released) of a long queue;
#  - a successor gives up waiting behind a long migration, without a word
#    in the log, and the queue goes on after it;
#  - a worker terminated while its successor waits: the successor sweeps
#    the dead run (ERROR, interrupted) and runs the next;
#  - with one background worker slot more than asyncmig needs, the queue
#    drains through successors and another database's worker still
#    starts: no "could not start a worker".

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $n = 60;

# queue $count migrations "prefix_1" .. of sql in database postgres, in one
# transaction, and wait until $started of them have FINISHED
sub queue_started
{
	my ($node, $prefix, $count, $sql, $started) = @_;

	$node->safe_psql('postgres', qq{
BEGIN;
SELECT count(asyncmig.schedule('${prefix}_' || g, '$sql')) FROM generate_series(1, $count) g;
COMMIT;
});
	$node->poll_query_until('postgres',
		"SELECT count(*) >= $started FROM asyncmig.migration WHERE name LIKE '${prefix}\\_%' AND status = 'FINISHED'")
	  or die "the queue $prefix does not start";
	return;
}

asyncmig_allow_log(
	qr/FATAL:  terminating background worker .* due to administrator command/ =>
	  'the test terminates a running worker',
	qr/LOG:  asyncmig migration "killed" failed: interrupted/ =>
	  'the sweep says what ended the terminated run');

my $node = asyncmig_node('successors', conf => qq{
asyncmig.max_workers = 1
log_line_prefix = '%m [%p] '
log_min_messages = debug1
});
$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION asyncmig');
$node->safe_psql('postgres', 'CREATE TABLE ran (n int, pid int, at timestamptz)');

# 1. a drain through successors, a fresh session per migration
my $offset = -s $node->logfile;
$node->safe_psql('postgres', qq{
BEGIN;
SELECT count(asyncmig.schedule('q_' || g,
	'CREATE TEMP TABLE mine (x int); INSERT INTO ran VALUES (' || g || ', pg_backend_pid(), clock_timestamp())'))
FROM generate_series(1, $n) g;
COMMIT;
});
$node->safe_psql('postgres', "CALL asyncmig.wait(timeout => '120 s')");
is($node->safe_psql('postgres',
	"SELECT count(*) FROM asyncmig.migration WHERE name LIKE 'q\\_%' AND status = 'FINISHED'"),
	$n, 'every migration of the queue FINISHED (each created its own temporary table)');
is($node->safe_psql('postgres',
	'SELECT count(*) || \' \' || count(DISTINCT n) || \' \' || count(DISTINCT pid) FROM ran'),
	"$n $n $n", 'each ran exactly once, in a process of its own');
is(asyncmig_overlapping_runs($node, 'q'), '0',
	'no migration started before the previous one ended');
my $log = substr(slurp_file($node->logfile), $offset);
my $released = () = $log =~ /successor for database \d+ released/g;
cmp_ok($released, '>=', $n / 2, "most runs were a released successor's ($released of $n)");

# 2. another database's turn: queued while a long queue drains here
queue_started($node, 'long', 40, 'SELECT pg_sleep(0.05)', 3);
my $queued_at = $node->safe_psql('other',
	"SELECT asyncmig.schedule('turn', 'SELECT 1'); SELECT clock_timestamp()");
$queued_at = (split /\n/, $queued_at)[-1];
$node->safe_psql('other', "CALL asyncmig.wait('turn', '60 s')");
my $turn_started = $node->safe_psql('other',
	"SELECT started_at FROM asyncmig.migration WHERE name = 'turn'");
my $overtaken = $node->safe_psql('postgres', qq{
SELECT count(*) FROM asyncmig.migration
WHERE name LIKE 'long\\_%' AND started_at > '$queued_at' AND started_at < '$turn_started'});
cmp_ok($overtaken, '<=', 2,
	"the other database's migration waited for at most two runs of the queue ($overtaken)");
$node->safe_psql('postgres', "CALL asyncmig.wait(timeout => '120 s')");

# 3. a successor gives up behind a long migration; the queue goes on
$offset = -s $node->logfile;
$node->safe_psql('postgres', qq{
BEGIN;
SELECT asyncmig.schedule('slow', 'SELECT pg_sleep(3)');
SELECT asyncmig.schedule('after_slow', 'SELECT 1');
COMMIT;
});
$node->safe_psql('postgres', "CALL asyncmig.wait(timeout => '60 s')");
is($node->safe_psql('postgres',
	"SELECT string_agg(status, ',' ORDER BY id) FROM asyncmig.migration WHERE name IN ('slow', 'after_slow')"),
	'FINISHED,FINISHED', 'after a long migration, the next one ran');
$log = substr(slurp_file($node->logfile), $offset);
like($log, qr/phase: successor waits/, 'a successor waited behind the long migration');

# 4. the running worker terminated while its successor waits
$node->safe_psql('postgres', qq{
BEGIN;
SELECT asyncmig.schedule('killed', 'SELECT pg_sleep(60)');
SELECT asyncmig.schedule('after_killed', 'SELECT 1');
COMMIT;
});
$node->poll_query_until('postgres',
	"SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'killed'")
  or die 'the migration does not start';
# the successor connects and waits (it gives up after a second)
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'")
  or die 'no successor beside the running worker';
$node->safe_psql('postgres', qq{
SELECT pg_terminate_backend((meta->>'pid')::int) FROM asyncmig.migration WHERE name = 'killed'});
$node->safe_psql('postgres', "CALL asyncmig.wait('after_killed', '60 s')");
is($node->safe_psql('postgres',
	"SELECT status || ' ' || (meta->'error'->>'message' LIKE 'interrupted%') FROM asyncmig.migration WHERE name = 'killed'"),
	'ERROR true', 'the terminated run ended ERROR, interrupted');
is($node->safe_psql('postgres',
	"SELECT status FROM asyncmig.migration WHERE name = 'after_killed'"),
	'FINISHED', 'and the next one ran');

# 5. one slot more than asyncmig needs: successors, and another database
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 4
max_parallel_workers = 0
});
$node->restart;
$offset = -s $node->logfile;
queue_started($node, 'tight', 30, 'SELECT pg_sleep(0.02)', 2);
$node->safe_psql('other', "SELECT asyncmig.schedule('tight_other', 'SELECT 1')");
$node->safe_psql('other', "CALL asyncmig.wait('tight_other', '60 s')");
$node->poll_query_until('postgres',
	"SELECT count(*) = 30 FROM asyncmig.migration WHERE name LIKE 'tight\\_%' AND status IN ('FINISHED', 'ERROR')")
  or die 'the queue does not drain';
is($node->safe_psql('postgres',
	"SELECT count(*) FROM asyncmig.migration WHERE name LIKE 'tight\\_%' AND status = 'FINISHED'"),
	'30', 'with one slot to spare, the queue drains');
is($node->safe_psql('other',
	"SELECT status FROM asyncmig.migration WHERE name = 'tight_other'"),
	'FINISHED', "and the other database's migration ran");
$log = substr(slurp_file($node->logfile), $offset);
unlike($log, qr/could not start a worker/, 'no "could not start a worker"');

$node->stop;
done_testing();
