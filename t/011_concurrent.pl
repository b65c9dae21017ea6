# Copyright (c) asyncmig developers
#
# The guard of concurrent statements.
#
# 1. An unnamed CREATE INDEX CONCURRENTLY interrupted mid-build: the
#    cleanup drops only the index the migration created, never another
#    session's index built on the same table meanwhile (that one is INVALID
#    while it builds, and valid by the time a DROP INDEX CONCURRENTLY gets
#    its lock).
# 2. Every CONCURRENTLY form is treated as concurrent (no lock_timeout, no
#    blind retry), and what an interrupted one leaves is finished or undone:
#    DROP INDEX CONCURRENTLY is completed, REINDEX TABLE/SCHEMA CONCURRENTLY
#    leftovers (TOAST ones too) are dropped, DETACH PARTITION CONCURRENTLY is
#    finalized.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;
use Time::HiRes qw(usleep);

asyncmig_allow_log(qr/ERROR:  deadlock detected/ =>
	'another session builds an index on the same table while the cleanup drops the migration\'s: one of them is canceled, and the cleanup tries again');

my $node = asyncmig_node('concurrent', conf => qq{
asyncmig.lock_timeout = '500ms'
asyncmig.max_attempts = 3
}, extension => 1);
$node->safe_psql('postgres', q{
CREATE TABLE t AS SELECT g AS a, g % 1000 AS b, repeat(md5(g::text), 2) AS c FROM generate_series(1, 200000) g;
CREATE TABLE other (x int);
});

sub row_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ': ' || coalesce(meta->'error'->>'message', '') FROM asyncmig.migration WHERE name = '$name'");
}

sub invalid_indexes
{
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(c.relname, ',' ORDER BY c.relname), '') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid");
}

my $x = $node->background_psql('postgres');    # holds snapshots and locks
my $y = $node->background_psql('postgres');    # another session's build

# 1. the sweep after a terminated unnamed build keeps another session's index
$x->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM other');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('unnamed', 'CREATE INDEX CONCURRENTLY ON t (a)')");
$node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE phase = 'waiting for old snapshots')")
  or die 'the unnamed build never waited';
my $pid = $node->safe_psql('postgres', "SELECT meta->>'pid' FROM asyncmig.migration WHERE name = 'unnamed'");
is($node->safe_psql('postgres',
	"SELECT (meta->'guard'->>'created')::oid = (SELECT index_relid FROM pg_stat_progress_create_index) FROM asyncmig.migration WHERE name = 'unnamed'"),
	't', 'while it builds, the guard names the index the build created');
# another session starts its own build: it waits for ours
$y->query_until(qr/started/, "\\echo started\nCREATE INDEX CONCURRENTLY theirs ON t (b);\n\\echo done\n");
# hold the next worker's sweep until the other build has its INVALID index
my $z = $node->background_psql('postgres');
$z->query_safe('BEGIN; LOCK TABLE asyncmig.migration IN SHARE MODE');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = 'theirs')")
  or die 'the other build never started';
$z->query_safe('COMMIT');
$z->quit;
usleep(500_000);
$x->query_safe('COMMIT');    # both builds may finish now
$y->quit;
$node->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'unnamed'")
  or die 'unnamed never ended';
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");
is($node->safe_psql('postgres', "SELECT coalesce((SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('theirs')), 'dropped')"), 'true',
	'the other session\'s index survived the sweep, valid');
is(invalid_indexes(), '', 'the interrupted build left no INVALID index');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_indexes WHERE tablename = 't'"), '1',
	'only the other session\'s index is on the table');
$node->safe_psql('postgres', 'DROP INDEX IF EXISTS theirs');

# 8a. DROP INDEX CONCURRENTLY interrupted by the migration's timeout: completed
$node->safe_psql('postgres', 'CREATE INDEX t_b_idx ON t (b)');
$x->query_safe('BEGIN; SELECT count(*) FROM t WHERE a = 1');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('drop_idx', 'DROP INDEX CONCURRENTLY t_b_idx', timeout => '1 s')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' AND meta ? 'error' IS NOT TRUE AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker' AND wait_event_type = 'Lock') FROM asyncmig.migration WHERE name = 'drop_idx'");
usleep(1_500_000);    # past the timeout
$x->query_safe('COMMIT');
$node->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'drop_idx'")
  or die 'drop_idx never ended';
is(row_of('drop_idx'), 'ERROR: timed out after 00:00:01', 'the interrupted drop ended ERROR');
is($node->safe_psql('postgres', "SELECT to_regclass('t_b_idx') IS NULL"), 't',
	'the interrupted DROP INDEX CONCURRENTLY was completed: no INVALID index left');

# 8b. REINDEX TABLE CONCURRENTLY interrupted: no _ccnew left, TOAST ones included
$node->safe_psql('postgres', 'CREATE INDEX t_ab_idx ON t (a, b)');
$x->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM other');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('reindex_table', 'REINDEX TABLE CONCURRENTLY t', timeout => '1 s')");
$node->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'reindex_table'")
  or die 'reindex_table never ended';
$x->query_safe('COMMIT');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");
is(invalid_indexes(), '', 'REINDEX TABLE CONCURRENTLY: no INVALID index left, TOAST included');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname ~ '_cc(new|old)'"), '0',
	'REINDEX TABLE CONCURRENTLY: no _ccnew/_ccold left');

# 8c. REINDEX SCHEMA CONCURRENTLY interrupted
$node->safe_psql('postgres', q{
CREATE SCHEMA s;
CREATE TABLE s.u AS SELECT g AS a, repeat(md5(g::text), 2) AS c FROM generate_series(1, 50000) g;
CREATE INDEX u_a_idx ON s.u (a);
});
$x->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM other');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('reindex_schema', 'REINDEX SCHEMA CONCURRENTLY s', timeout => '1 s')");
$node->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'reindex_schema'")
  or die 'reindex_schema never ended';
$x->query_safe('COMMIT');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");
is(invalid_indexes(), '', 'REINDEX SCHEMA CONCURRENTLY: no INVALID index left');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname ~ '_cc(new|old)'"), '0',
	'REINDEX SCHEMA CONCURRENTLY: no _ccnew/_ccold left');

# 8d, 8e: DETACH PARTITION ... CONCURRENTLY came in PostgreSQL 14
SKIP:
{
	skip 'no DETACH PARTITION ... CONCURRENTLY before PostgreSQL 14', 4
	  if $node->safe_psql('postgres', 'SHOW server_version_num') < 140000;

	# 8d. DETACH PARTITION CONCURRENTLY waits by design: no lock_timeout, no retry
	$node->safe_psql('postgres', q{
	CREATE TABLE p (a int) PARTITION BY RANGE (a);
	CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);
	CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (100) TO (200);
	});
	$x->query_safe('BEGIN; SELECT count(*) FROM p');
	$node->safe_psql('postgres',
		"SELECT asyncmig.schedule('detach', 'ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY')");
	$node->poll_query_until('postgres',
		"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker' AND wait_event_type = 'Lock')");
	usleep(1_500_000);    # well past asyncmig.lock_timeout
	$x->query_safe('COMMIT');
	$node->safe_psql('postgres', "CALL asyncmig.wait('detach')");
	is($node->safe_psql('postgres', "SELECT status || ' ' || attempts FROM asyncmig.migration WHERE name = 'detach'"),
		'FINISHED 1', 'DETACH PARTITION CONCURRENTLY waited past lock_timeout, no retry');
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_inherits WHERE inhrelid = 'p1'::regclass"), '0',
		'p1 is detached');

	# 8e. DETACH PARTITION CONCURRENTLY interrupted: finalized
	$x->query_safe('BEGIN; SELECT count(*) FROM p');
	$node->safe_psql('postgres',
		"SELECT asyncmig.schedule('detach_to', 'ALTER TABLE p DETACH PARTITION p2 CONCURRENTLY', timeout => '1 s')");
	$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'detach_to'");
	usleep(1_500_000);
	$x->query_safe('COMMIT');
	$node->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'detach_to'")
	  or die 'detach_to never ended';
	$node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");
	is(row_of('detach_to'), 'ERROR: timed out after 00:00:01', 'the interrupted detach ended ERROR');
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_inherits WHERE inhrelid = 'p2'::regclass"), '0',
		'the interrupted detach was finalized: p2 is not left pending detach');
}

$x->quit;
$node->stop;
done_testing();
