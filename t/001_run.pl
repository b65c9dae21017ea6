# Copyright (c) asyncmig developers
#
# The execution model on a real cluster with a table of 1.5 million rows:
# a concurrent index build scheduled from SQL runs in a worker, is visible
# while it runs and ends FINISHED with a valid index; order, one at a time
# per database, max_workers across databases, NOTIFY, DROP DATABASE, and a
# server without preloading.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;
use Time::HiRes qw(time usleep);

# errors the test causes on purpose: a migration that fails, and wait() on it
asyncmig_allow_log(
	qr/ERROR:  could not create unique index "big_b_uniq"/ => 'the migration "bad" builds a unique index on duplicates',
	qr/ERROR:  asyncmig migration "bad" ended in ERROR/ => 'and wait() reports it');

my $node = asyncmig_node('main', conf => qq{
asyncmig.max_workers = 2
});

$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig');
$node->safe_psql('postgres',
	'CREATE TABLE big AS SELECT g AS a, g % 1000 AS b, md5(g::text) AS c FROM generate_series(1, 1500000) g');

# the launcher is there and idle on its latch
is($node->safe_psql('postgres',
	"SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'"),
	'Extension:Extension', 'launcher sleeps on its latch');

# LISTEN asyncmig in another session
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN asyncmig');

# schedule returns at once; the build runs in the worker
my $t0 = time;
my $status = $node->safe_psql('postgres',
	"SELECT asyncmig.schedule('app.0001_idx', 'CREATE INDEX CONCURRENTLY big_b_c_idx ON big (b, c)', 'DROP INDEX CONCURRENTLY big_b_c_idx')");
my $elapsed = time - $t0;
is($status, 'STARTED', 'schedule returns STARTED');
note(sprintf('schedule() returned in %.1f ms (psql start included)', $elapsed * 1000));

# while it runs: IN PROGRESS, progress, pg_stat_activity
ok($node->poll_query_until('postgres',
	"SELECT status = 'IN PROGRESS' AND progress IS NOT NULL FROM asyncmig.status WHERE name = 'app.0001_idx'"),
	'IN PROGRESS with progress while the index builds');
my $act = $node->safe_psql('postgres',
	"SELECT backend_type, application_name, query FROM pg_stat_activity WHERE backend_type = 'asyncmig worker' AND application_name LIKE 'asyncmig: %'");
is($act, "asyncmig worker|asyncmig: app.0001_idx|CREATE INDEX CONCURRENTLY big_b_c_idx ON big (b, c)",
	'pg_stat_activity names the worker, the migration and the statement');

# writers are not blocked by the concurrent build
my $t1 = time;
$node->safe_psql('postgres', 'INSERT INTO big VALUES (0, 0, NULL)');
note(sprintf('an INSERT during the build took %.1f ms', (time - $t1) * 1000));
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'app.0001_idx'"),
	'IN PROGRESS', 'the INSERT ran while the build was still in progress');

$node->safe_psql('postgres', "CALL asyncmig.wait('app.0001_idx')");
is($node->safe_psql('postgres', "SELECT status || ' ' || direction || ' ' || attempts FROM asyncmig.status WHERE name = 'app.0001_idx'"),
	'FINISHED forwards 1', 'FINISHED');
is($node->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_b_c_idx'::regclass"),
	't', 'the index is valid');
# (the next worker, or a successor, looks once more and leaves)
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'"),
	'the worker left once nothing was runnable');

# NOTIFY on every status change
my $notes = $listener->query_safe('SELECT 1');
my $id = $node->safe_psql('postgres', "SELECT id FROM asyncmig.migration WHERE name = 'app.0001_idx'");
like($notes . $listener->{stderr}, qr/\{"id" : $id, "status" : "STARTED"\}/, 'NOTIFY STARTED, with the row\'s id');
unlike($notes . $listener->{stderr}, qr/app\.0001_idx/, 'NOTIFY does not give the listener the migration\'s name');
is($node->safe_psql('postgres', "SELECT name FROM asyncmig.status WHERE id = $id"),
	'app.0001_idx', 'the payload\'s id is the id of the migration\'s row in asyncmig.status');
like($notes . $listener->{stderr}, qr/"status" : "IN PROGRESS"/, 'NOTIFY IN PROGRESS');
like($notes . $listener->{stderr}, qr/"status" : "FINISHED"/, 'NOTIFY FINISHED');
$listener->quit;

# a failing migration, and the worker serves the next one
# (not_before: wait() without a name waits for what is queued when it
# looks, and 'bad' fails within milliseconds of its start)
$node->safe_psql('postgres', "SELECT asyncmig.schedule('bad', 'CREATE UNIQUE INDEX CONCURRENTLY big_b_uniq ON big (b)', not_before => now() + interval '3 s')");
$node->safe_psql('postgres', "SELECT asyncmig.schedule('good', 'CREATE INDEX CONCURRENTLY big_a_idx ON big (a)', not_before => now() + interval '3 s')");
my ($rc, $out, $err) = $node->psql('postgres', "CALL asyncmig.wait()");
isnt($rc, 0, 'wait() fails when a migration ended in ERROR');
like($err, qr/"bad" ended in ERROR: could not create unique index/, 'wait() names the failed migration');
is($node->safe_psql('postgres', "SELECT meta->'error'->>'sqlstate' FROM asyncmig.migration WHERE name = 'bad'"),
	'23505', 'the SQLSTATE is recorded');
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'good'"),
	'FINISHED', 'the next migration ran after the failure');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
	'0', 'the failed unique build left no INVALID index');

# backwards, forwards, backwards: the schema follows the last direction
for my $i (1 .. 2)
{
	$node->safe_psql('postgres', "SELECT asyncmig.run('app.0001_idx', backwards => true)");
	$node->safe_psql('postgres', "CALL asyncmig.wait('app.0001_idx')");
	is($node->safe_psql('postgres', "SELECT to_regclass('big_b_c_idx') IS NULL"), 't', "backwards $i drops the index");
	$node->safe_psql('postgres',
		"SELECT asyncmig.schedule('app.0001_idx', 'CREATE INDEX CONCURRENTLY big_b_c_idx ON big (b, c)', 'DROP INDEX CONCURRENTLY big_b_c_idx')");
	$node->safe_psql('postgres', "CALL asyncmig.wait('app.0001_idx')");
	is($node->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_b_c_idx'::regclass"),
		't', "forwards $i builds it again");
}

# several databases; max_workers = 2 runs at most two at once
for my $db (qw(db1 db2 db3))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION asyncmig');
	$node->safe_psql($db, "SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('sleep', 'SELECT pg_sleep(1)')");
}
# queue all three at (nearly) the same moment
for my $db (qw(db1 db2 db3))
{
	$node->safe_psql($db, "SELECT asyncmig.run('sleep')");
}
for my $db (qw(db1 db2 db3))
{
	$node->safe_psql($db, "CALL asyncmig.wait('sleep')");
	is($node->safe_psql($db, "SELECT status FROM asyncmig.migration WHERE name = 'sleep'"), 'FINISHED', "$db ran its migration");
}
my @runs;
for my $db (qw(db1 db2 db3))
{
	push @runs, [ split /\|/, $node->safe_psql($db,
		"SELECT extract(epoch FROM started_at), extract(epoch FROM finished_at) FROM asyncmig.migration WHERE name = 'sleep'") ];
}
my $max_overlap = 0;
for my $r (@runs)
{
	my $n = grep { $_->[0] <= $r->[0] && $r->[0] < $_->[1] } @runs;
	$max_overlap = $n if $n > $max_overlap;
}
is($max_overlap, 2, 'at most asyncmig.max_workers = 2 ran at once, and two did');

# DROP DATABASE is not blocked by asyncmig once its work is done
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE db1');
is($rc, 0, 'DROP DATABASE of a database that ran migrations succeeds at once') or diag($err);

# a rolled-back schedule never runs, even across a restart
$node->safe_psql('postgres', "BEGIN; SELECT asyncmig.schedule('never', 'CREATE TABLE never_here (a int)'); ROLLBACK;");
$node->restart;
usleep(1_000_000);
is($node->safe_psql('postgres', "SELECT count(*) FROM asyncmig.migration WHERE name = 'never'"), '0', 'no row after rollback');
is($node->safe_psql('postgres', "SELECT to_regclass('never_here') IS NULL"), 't', 'and nothing ran');

$node->stop;

# without shared_preload_libraries: recorded, with a warning that nothing runs
my $plain = PostgreSQL::Test::Cluster->new('plain');
asyncmig_allow_log(qr/WARNING:  asyncmig is not loaded by shared_preload_libraries: nothing will run migration "m"/ =>
	'the test schedules on a server without the preloaded library, to see that warning');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION asyncmig');
($rc, $out, $err) = $plain->psql('postgres', "SELECT asyncmig.schedule('m', 'SELECT 1')");
is($out, 'STARTED', 'recorded without preloading');
like($err, qr/WARNING:  asyncmig is not loaded by shared_preload_libraries: nothing will run migration "m"/,
	'a warning says nothing will run it');
like($err, qr/HINT:  Add asyncmig to shared_preload_libraries/, 'and what to do');
$plain->stop;

done_testing();
