# Copyright (c) asyncmig developers
#
# Hundreds of databases (one per tenant): the launcher's work grows with
# the databases that have work, not with the databases that exist.  At
# start-up only the databases of the registry (pg_asyncmig/databases) get
# a worker; an idle cluster starts no worker; the last database is served
# like the first; a lost registry costs one paced look at every database,
# which ends; more requests than asyncmig.max_databases are not lost.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $ndb = 300;
my $node = asyncmig_node('many', conf => qq{
asyncmig.max_workers = 2
max_connections = 40
});
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl', 'CREATE EXTENSION asyncmig');
$node->safe_psql('postgres', join('', map { "CREATE DATABASE d$_ TEMPLATE tmpl;\n" } 1 .. $ndb));
my $nconn = $node->safe_psql('postgres', 'SELECT count(*) FROM pg_database WHERE datallowconn AND NOT datistemplate');

# queued work that stays queued in two databases
foreach my $db (qw(d1 d150))
{
	$node->safe_psql($db, "SELECT asyncmig.schedule('later', 'SELECT 1', not_before => now() + interval '1 hour')");
}
my $registry = $node->data_dir . '/pg_asyncmig/databases';
my @oids = split /\n/, $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname IN ('d1', 'd150') ORDER BY oid");
my %listed = map { $_ => 1 } grep { /^\d+$/ } split /\n/, slurp_file($registry);
ok($listed{$oids[0]} && $listed{$oids[1]}, 'the registry lists the databases with queued work');

# worker starts logged by the postmaster since a log offset
sub worker_starts
{
	my ($offset) = @_;
	my $log = substr(slurp_file($node->logfile), $offset);
	my @starts = ($log =~ /starting background worker process "asyncmig worker for database/g);
	return scalar(@starts);
}

sub settle
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'")
	  or die 'workers never settled';
}

# 1. restart: workers only for the two registered databases (the
# postmaster logs each worker start at DEBUG1)
$node->append_conf('postgresql.conf', 'log_min_messages = debug1');
my $offset = -s $node->logfile;
$node->restart;
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'");
settle();
sleep 1;
settle();
is(worker_starts($offset), 2, "start-up with $nconn databases: one worker per database with work");
unlike(substr(slurp_file($node->logfile), $offset), qr/looking at every database/, 'start-up: no scan of every database');

# 2. idle: no worker start, the launcher sleeps
$offset = -s $node->logfile;
my $launcher = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'");
my $ticks = sub { my @f = split / /, (split /\) /, slurp_file("/proc/$launcher/stat"))[1]; return $f[11] + $f[12]; };
my $t0 = $ticks->();
sleep 2;
is(worker_starts($offset), 0, 'idle: no worker starts');
note('launcher CPU ticks over 2 s idle: ' . ($ticks->() - $t0));
is($node->safe_psql('postgres', "SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'"),
	'Extension', 'idle: the launcher sleeps on its latch');

# 3. the last database is served like the first
$node->safe_psql("d$ndb", "SELECT asyncmig.schedule('last', 'CREATE TABLE served (a int)')");
$node->safe_psql("d$ndb", "CALL asyncmig.wait('last', '60 s')");
is($node->safe_psql("d$ndb", "SELECT status FROM asyncmig.migration WHERE name = 'last'"), 'FINISHED',
	"a migration in the ${ndb}th database runs");
my $last_oid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'd$ndb'");
ok($node->poll_query_until('postgres', "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker')")
	  && slurp_file($registry) !~ /^$last_oid$/m,
	'once its work is done the database leaves the registry');
ok(slurp_file($registry) =~ /^$oids[0]$/m, 'a database with queued work stays in it');

# 4. a lost registry: one paced look at every database, then quiet
settle();
unlink $registry or die "unlink $registry: $!";
$offset = -s $node->logfile;
$node->restart;
ok($node->wait_for_log(qr/asyncmig: looked at all \d+ databases/, $offset), 'without a registry: a scan of every database, which ends');
settle();
is(worker_starts($offset), $nconn, 'the scan started one worker per database, each once');
like(slurp_file($registry), qr/^asyncmig registry 1\nsystem_identifier \d+\ntimeline [1-9]\d*\n/,
	'after the scan the registry is written again, complete');
$offset = -s $node->logfile;
sleep 2;
is(worker_starts($offset), 0, 'after the scan: no more worker starts');

# 5. more databases asking at once than asyncmig.max_databases: none lost
$node->append_conf('postgresql.conf', "asyncmig.max_databases = 16\nasyncmig.enabled = off");
asyncmig_allow_log(qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "burst"/ =>
	'the test queues a burst with asyncmig.enabled = off, to release it at once');
$node->restart;
my @dbs = map { "d$_" } 200 .. 229;
foreach my $db (@dbs)
{
	$node->psql($db, "SELECT asyncmig.schedule('burst', 'CREATE TABLE burst (a int)')");
}
# (append_conf, not adjust_conf: PostgreSQL 13's test modules lack
# adjust_conf; the last line of a setting wins)
$node->append_conf('postgresql.conf', "asyncmig.enabled = on");
$node->reload;
foreach my $db (@dbs)
{
	$node->safe_psql($db, "CALL asyncmig.wait('burst', '120 s')");
}
is(join(',', map { $node->safe_psql($_, "SELECT status FROM asyncmig.migration WHERE name = 'burst'") } @dbs),
	join(',', ('FINISHED') x scalar(@dbs)), scalar(@dbs) . ' databases with work and room for 16: every migration ran');
like(slurp_file($registry), qr/\ntimeline 0\n/, 'the overflowed registry says it is incomplete');

$node->stop;
done_testing();
