# Copyright (c) asyncmig developers
#
# asyncmig.enabled = off and a run whose worker is gone: the status view
# says that no worker runs it and what ends it, cancel() ends it (its
# INVALID index left to the cleanup, done once workers may run again), and
# wait() warns that nothing will run what it waits for.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(
	qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "queued_off"/ =>
	  'the test queues work on a server with asyncmig.enabled = off',
	qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run the migrations waited for/ =>
	  'the test waits for that work, to see wait() warn',
	qr/ERROR:  timed out waiting for asyncmig migration "queued_off"/ =>
	  'that wait has a timeout, since nothing runs the migration');

my $node = asyncmig_node('enabled_off', extension => 1);

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = '$name'");
}

my ($rc, $out, $err);

# asyncmig.enabled = off (a copy of a primary) and a run whose worker is
# gone: nothing will ever sweep it, so cancel() must end it (the README
# tells operators of copies to cancel what they don't want run).  Its
# INVALID index becomes a cleanup, done once the server may run workers.
$node->safe_psql('postgres', 'CREATE TABLE orph (a int); INSERT INTO orph SELECT generate_series(1, 1000)');
my $r = $node->background_psql('postgres');
$r->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM orph');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('orphan', 'CREATE INDEX CONCURRENTLY orph_a ON orph (a)')");
ok($node->poll_query_until('postgres',
	"SELECT meta ? 'guard' FROM asyncmig.migration WHERE name = 'orphan'"),
	'the build waits for an older transaction, its index recorded');
$node->append_conf('postgresql.conf', 'asyncmig.enabled = off');
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('asyncmig.enabled') = 'off'");
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'");
is(status_of('orphan'), 'IN PROGRESS', 'enabled = off: the dead run is not swept');
like($node->safe_psql('postgres', "SELECT progress FROM asyncmig.status WHERE name = 'orphan'"),
	qr/^no worker runs it \(its worker, pid \d+, is gone\): asyncmig\.enabled is off on this server; asyncmig\.cancel\(\) ends it$/,
	'... and the status view says that no worker runs it, and what ends it');
is($node->safe_psql('postgres', "SELECT asyncmig.cancel('orphan')"), 'ERROR',
	'cancel() ends a run that no worker runs any more');
is($node->safe_psql('postgres',
	"SELECT meta -> 'error' ->> 'message', meta ? 'cleanup' FROM asyncmig.migration WHERE name = 'orphan'"),
	'canceled|t', '... as canceled, its INVALID index left to the cleanup');
$r->query_safe('COMMIT');
$r->quit;
# wait() for what nothing will run says so, instead of blocking in silence
$node->safe_psql('postgres', "SELECT asyncmig.schedule('queued_off', 'SELECT 1')");
($rc, $out, $err) = $node->psql('postgres', "CALL asyncmig.wait('queued_off', '1 s')");
like($err, qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run the migrations waited for/,
	'enabled = off: wait() warns that nothing will run what it waits for');
$node->append_conf('postgresql.conf', "asyncmig.enabled = on");
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_class WHERE relname = 'orph_a'"),
	'enabled again: the cleanup drops the INVALID index');
is(status_of('orphan'), 'ERROR', '... and the row stays ERROR');

done_testing();
