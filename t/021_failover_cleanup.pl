# Copyright (c) asyncmig developers
#
# kill -9 of the primary in the middle of a concurrent index build, then
# promotion of the standby: the run ends ERROR at once (saying what
# happened) and its INVALID index is dropped.  In one database nothing
# holds the table; in the other a read-only transaction on the standby has
# the table open across the promotion: the drop waits for it only a
# bounded time and is retried, the status view shows the cleanup, and the
# database's other migrations run meanwhile.  A user's lock on the dead
# row does not hold up the sweep either.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(qr/ERROR:  canceling statement due to lock timeout/ =>
	'a read-only transaction keeps the table open across the promotion: the drop of the INVALID index waits a bounded time and is tried again');

my $primary = asyncmig_node('primary', streaming => 1, conf => qq{
asyncmig.max_workers = 2
});
foreach my $db (qw(quiet busy))
{
	$primary->safe_psql('postgres', "CREATE DATABASE $db");
	$primary->safe_psql($db, 'CREATE EXTENSION asyncmig');
	$primary->safe_psql($db, 'CREATE TABLE t AS SELECT g AS a FROM generate_series(1, 100000) g');
}
my $standby = asyncmig_standby($primary, 'standby', 'b1');

# A writer's open transaction keeps each build waiting for writers, with
# its INVALID index already created and replicated: "mid-CIC", for sure.
my %writer;
foreach my $db (qw(quiet busy))
{
	$writer{$db} = $primary->background_psql($db);
	$writer{$db}->query_safe('BEGIN; INSERT INTO t VALUES (0)');
	$primary->safe_psql($db, "SELECT asyncmig.schedule('build', 'CREATE INDEX CONCURRENTLY t_a_idx ON t (a)')");
	$primary->poll_query_until($db,
		"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE phase LIKE 'waiting for writers%')")
	  or die "build in $db never started";
}
$primary->wait_for_catchup($standby);
foreach my $db (qw(quiet busy))
{
	is($standby->safe_psql($db, "SELECT status || ' ' || (SELECT count(*) FROM pg_index WHERE NOT indisvalid) FROM asyncmig.migration WHERE name = 'build'"),
		'IN PROGRESS 1', "$db: the standby has the running row and its INVALID index");
}

# a report on the standby has the table open across the promotion
my $reader = $standby->background_psql('busy');
$reader->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t');

$primary->kill9;
$writer{$_}->{run}->kill_kill for keys %writer;    # their server is gone
$standby->promote;

# the rows end ERROR at once, whether or not the drop can proceed
foreach my $db (qw(quiet busy))
{
	ok($standby->poll_query_until($db, "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'build'"),
		"$db: the interrupted build ends ERROR after promotion");
	like($standby->safe_psql($db, "SELECT meta->'error'->>'message' FROM asyncmig.migration WHERE name = 'build'"),
		qr/^interrupted: the server shut down or restarted while it ran/, "$db: ERROR says what happened");
}
ok($standby->poll_query_until('quiet', "SELECT count(*) = 0 FROM pg_index WHERE NOT indisvalid"),
	'quiet: the INVALID index is dropped');
is($standby->safe_psql('quiet', "SELECT meta ? 'cleanup' FROM asyncmig.migration WHERE name = 'build'"), 'f',
	'quiet: no cleanup left in the row');

# busy: the reader holds the drop; the cleanup is recorded and shown
ok($standby->poll_query_until('busy', "SELECT (meta->'cleanup'->>'tries')::int >= 1 FROM asyncmig.migration WHERE name = 'build'"),
	'busy: the drop gave up after a bounded wait and is to be retried');
is($standby->safe_psql('busy', "SELECT count(*) FROM pg_index WHERE NOT indisvalid"), '1',
	'busy: the INVALID index is still there while the reader is open');
like($standby->safe_psql('busy', "SELECT status || ' | ' || progress FROM asyncmig.status WHERE name = 'build'"),
	qr/^ERROR \| cleaning up after the interrupted run/, 'busy: the status view shows the cleanup');

# the database's queue is not held behind the cleanup
$standby->safe_psql('busy', "SELECT asyncmig.schedule('next', 'CREATE TABLE next_one (a int)')");
$standby->safe_psql('busy', "CALL asyncmig.wait('next', '60 s')");
is($standby->safe_psql('busy', "SELECT status FROM asyncmig.migration WHERE name = 'next'"), 'FINISHED',
	'busy: another migration of the database runs while the cleanup waits');

# a re-queued run of the row waits for its cleanup instead of failing on it
is($standby->safe_psql('busy', "SELECT asyncmig.schedule('build', 'CREATE INDEX CONCURRENTLY t_a_idx ON t (a)')"),
	'STARTED', 'busy: the failed build is queued again');

$reader->query_safe('COMMIT');
$reader->quit;
ok($standby->poll_query_until('busy', "SELECT count(*) = 0 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT indisvalid"),
	'busy: once the reader is gone the INVALID index is dropped');
$standby->safe_psql('busy', "CALL asyncmig.wait('build', '60 s')");
is($standby->safe_psql('busy', "SELECT status || ' ' || (meta ? 'cleanup')::text FROM asyncmig.migration WHERE name = 'build'"),
	'FINISHED false', 'busy: the build queued again ran after its cleanup');
is($standby->safe_psql('busy', "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_idx'::regclass"), 't',
	'busy: and its index is valid');

# a user's row lock on a dead run does not wedge the sweep
$standby->safe_psql('quiet', "SELECT asyncmig.schedule('sleeper', 'SELECT pg_sleep(60)')");
$standby->poll_query_until('quiet', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'sleeper'")
  or die 'sleeper never started';
my $locker = $standby->background_psql('quiet');
$locker->query_safe("BEGIN; SELECT 1 FROM asyncmig.migration WHERE name = 'sleeper' FOR UPDATE");
$standby->safe_psql('quiet',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'");
$standby->safe_psql('quiet', "SELECT asyncmig.schedule('after_lock', 'CREATE TABLE after_lock (a int)')");
$standby->safe_psql('quiet', "CALL asyncmig.wait('after_lock', '60 s')");
is($standby->safe_psql('quiet', "SELECT status FROM asyncmig.migration WHERE name = 'after_lock'"), 'FINISHED',
	'a locked dead row is skipped: the next migration runs');
is($standby->safe_psql('quiet', "SELECT status FROM asyncmig.migration WHERE name = 'sleeper'"), 'IN PROGRESS',
	'the locked row is left for later');
$locker->query_safe('COMMIT');
$locker->quit;
ok($standby->poll_query_until('quiet', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'sleeper'"),
	'and is swept once the lock is gone');

$standby->stop;
done_testing();
