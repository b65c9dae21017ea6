# Copyright (c) asyncmig developers
#
# Found by attacking the merged code (review): rows a worker had to skip
# because a session held them, and the interplay of the round's features.
# Each case failed before its fix.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('review');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'asyncmig'
max_worker_processes = 16
log_min_messages = info
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig');

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = '$name'");
}

# A queued row that a session holds locked when its worker comes is skipped
# (never waited for); the worker must come back for it once the lock is
# gone, with nothing else waking the launcher for that database.
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('held', 'CREATE TABLE held_ran (a int)', not_before => now() + interval '5 s')");
my $h = $node->background_psql('postgres');
$h->query_safe("BEGIN; SELECT id FROM asyncmig.migration WHERE name = 'held' FOR UPDATE");
$node->poll_query_until('postgres',
	"SELECT now() > not_before FROM asyncmig.migration WHERE name = 'held'");
# a worker comes (for 'other') while 'held' is runnable but held
$node->safe_psql('postgres', "SELECT asyncmig.schedule('other', 'CREATE TABLE other_ran (a int)')");
ok($node->poll_query_until('postgres',
	"SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'other'"),
	'a worker ran the next migration while a session held the first');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'"),
	'... and its workers left');
is(status_of('held'), 'STARTED', 'the held row was skipped, not waited for');
$h->query_safe('COMMIT');
ok($node->poll_query_until('postgres',
	"SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'held'"),
	'... and runs once the session lets go, with nothing else waking the launcher');
$h->quit;

done_testing();
