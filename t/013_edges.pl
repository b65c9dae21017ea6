# Copyright (c) asyncmig developers
#
# Sizes and times at the edges.
#
# 1. CALL asyncmig.wait() on a migration with a 4 MB SQL text runs in
#    constant memory (it used to copy the row at every look).
# 2. A not_before weeks ahead does not put the launcher to sleep for longer
#    than it can count (WaitLatch takes an int of milliseconds): it sleeps
#    at most an hour at a time and looks again.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;
use Time::HiRes qw(usleep);

my $node = asyncmig_node('edges', extension => 1);

# 1. a waiter's memory while a migration with a 4 MB text runs
my $big = $node->basedir . '/big.sql';
open(my $fh, '>', $big) or die;
print $fh "SELECT asyncmig.schedule('big', \$\$SELECT pg_sleep(4) /* " . ('x' x (4 * 1024 * 1024)) . " */\$\$);\n";
close($fh);
$node->command_ok([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-f', $big ], 'a 4 MB migration is scheduled');
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'big'")
  or die 'big never started';

my $waiter = $node->background_psql('postgres');
my $pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/waiting/, "\\echo waiting\nCALL asyncmig.wait('big');\n");

# the waiter looks at the row at every wake-up; wake it often meanwhile
sub rss_kb
{
	open(my $st, '<', "/proc/$pid/status") or return undef;
	while (<$st>) { return $1 if /^VmRSS:\s+(\d+)/; }
	return undef;
}
usleep(500_000);
my $rss0 = rss_kb();
for my $i (1 .. 20)
{
	# each status change broadcasts: the waiter looks again
	$node->safe_psql('postgres', "SELECT asyncmig.schedule('nudge_$i', 'SELECT 1', not_before => 'infinity'); SELECT asyncmig.cancel('nudge_$i')");
	usleep(100_000);
}
my $rss1 = rss_kb();
SKIP:
{
	skip 'no /proc', 1 unless defined $rss0 && defined $rss1;
	cmp_ok($rss1 - $rss0, '<', 20 * 1024, "the waiter's memory stays flat while it looks again and again ($rss0 kB -> $rss1 kB)");
}
$waiter->quit;
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'big'"), 'FINISHED', 'the big one finished');

# 2. a not_before 30 days ahead: the launcher sleeps at most an hour
$node->append_conf('postgresql.conf', "log_min_messages = debug1");
$node->reload;
my $offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT asyncmig.schedule('far', 'SELECT 1', not_before => now() + interval '30 days')");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')");
usleep(500_000);
my $log = slurp_file($node->logfile, $offset);
my @sleeps = ($log =~ /asyncmig launcher sleeps (\d+) ms/g);
ok(scalar(@sleeps) > 0, 'the launcher says how long it sleeps');
is(scalar(grep { $_ > 3600 * 1000 } @sleeps), 0, 'it never sleeps longer than an hour (' . join(', ', @sleeps) . ')');
ok(scalar(grep { $_ == 3600 * 1000 } @sleeps) > 0, 'with the far not_before, it sleeps an hour and looks again');
$node->append_conf('postgresql.conf', "log_min_messages = info");
$node->reload;

$node->stop;
done_testing();
