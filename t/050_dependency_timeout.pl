# Copyright (c) asyncmig developers
#
# A queued migration whose dependency nothing runs ends ERROR after
# asyncmig.dependency_timeout, woken by the launcher at that time and at no
# other (no polling), across a restart (the deadline comes from the table),
# and at once when a reload shortens the timeout or turns it on (the
# launcher looks again).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('deps', conf => qq{
log_min_messages = debug1
asyncmig.dependency_timeout = '3s'
}, extension => 1);

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ': ' || coalesce(meta #>> '{error,message}', '') FROM asyncmig.migration WHERE name = '$name'");
}

sub wait_ended
{
	my ($name) = @_;
	$node->poll_query_until('postgres',
		"SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = '$name'")
	  or die "$name never ended";
}

# let the start-up's workers finish before we count
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");

# 1. woken once at the deadline, not polling meanwhile
my $offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT asyncmig.schedule('waits', 'SELECT 1', depends_on => '{ghost}')");
wait_ended('waits');
is(status_of('waits'), 'ERROR: dependency "ghost" was never scheduled', 'it ends ERROR naming the dependency');
is($node->safe_psql('postgres', "SELECT finished_at >= created_at + interval '3 s' FROM asyncmig.migration WHERE name = 'waits'"),
	't', 'not before asyncmig.dependency_timeout has passed');
my $log = slurp_file($node->logfile, $offset);
my @sleeps = ($log =~ /asyncmig launcher sleeps (\d+) ms/g);
ok((grep { $_ > 1000 && $_ <= 3000 } @sleeps) > 0,
	'the launcher sleeps until the deadline (' . join(', ', @sleeps) . ' ms)');
my $starts = () = $log =~ /starting background worker process "asyncmig worker/g;
cmp_ok($starts, '<=', 3, "while it waits, workers start only at the commit and at the deadline ($starts)");

# 2. across a restart: the deadline is the table's
$node->safe_psql('postgres', "SELECT asyncmig.schedule('restarted', 'SELECT 1', depends_on => '{ghost}')");
$node->restart;
wait_ended('restarted');
is(status_of('restarted'), 'ERROR: dependency "ghost" was never scheduled', 'after a restart too');
is($node->safe_psql('postgres', "SELECT finished_at >= created_at + interval '3 s' FROM asyncmig.migration WHERE name = 'restarted'"),
	't', 'counted from when it was queued, before the restart');

# 3. a reload that shortens the timeout, or turns it on, acts at once
$node->append_conf('postgresql.conf', "asyncmig.dependency_timeout = '1h'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('asyncmig.dependency_timeout') = '1h'");
$node->safe_psql('postgres', "SELECT asyncmig.schedule('shortened', 'SELECT 1', depends_on => '{ghost}')");
$node->append_conf('postgresql.conf', "asyncmig.dependency_timeout = 0");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('asyncmig.dependency_timeout') = '0'");
$node->safe_psql('postgres', "SELECT asyncmig.schedule('forever', 'SELECT 1', depends_on => '{ghost}')");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");
like($node->safe_psql('postgres', "SELECT progress FROM asyncmig.status WHERE name = 'forever'"),
	qr/^waiting for dependency "ghost" \(never scheduled\)$/, 'with 0 it waits without end');
$node->append_conf('postgresql.conf', "asyncmig.dependency_timeout = '2s'");
$node->reload;
wait_ended('shortened');
wait_ended('forever');
is(status_of('shortened'), 'ERROR: dependency "ghost" was never scheduled', 'a shorter timeout ends a long wait');
is(status_of('forever'), 'ERROR: dependency "ghost" was never scheduled', 'turning it on ends an endless wait');

$node->stop;
done_testing();
