# Copyright (c) asyncmig developers
#
# Streaming replication and copies: a hot standby starts no workers and
# refuses schedule()/run()/cancel() with a clear 25006 error, its status
# view says that a running migration runs on the primary; asyncmig.enabled
# = off keeps a server (a copy, a restore) from running anything, and
# turning it on runs the queued work; promotion runs queued STARTED work
# without a restart; templates are refused.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

# errors the test causes on purpose: calls on a standby, and in a template
asyncmig_allow_log(
	qr/WARNING:  terminating connection because of crash of another server process/ =>
	  'the test crashes a server process on purpose; PostgreSQL 13 logs what 14 and later tell the client only',
	qr/ERROR:  cannot (schedule|run|cancel) migrations on a standby/ => 'the test calls them on the standby',
	qr/ERROR:  cannot schedule migrations in template database "template1"/ => 'the test schedules in template1');

my $primary = asyncmig_node('primary', streaming => 1, conf => qq{
asyncmig.max_workers = 2
}, extension => 1);
$primary->safe_psql('postgres', 'CREATE TABLE t AS SELECT g AS a FROM generate_series(1, 100000) g');

my $standby = asyncmig_standby($primary, 'standby', 'b1');

sub workers
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('asyncmig launcher', 'asyncmig worker')");
}

# 1. a migration runs on the primary; the standby shows it and refuses calls
$primary->safe_psql('postgres', "SELECT asyncmig.schedule('sleeper', 'SELECT pg_sleep(30)')");
$primary->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'sleeper'")
  or die 'sleeper never started';
$primary->wait_for_catchup($standby);

is(workers($standby), '0', 'the standby runs no launcher and no worker');
like($standby->safe_psql('postgres', "SELECT status || ' | ' || progress FROM asyncmig.status WHERE name = 'sleeper'"),
	qr/^IN PROGRESS \| runs on the primary/, 'standby status view: progress says it runs on the primary');

foreach my $call ("asyncmig.schedule('s1', 'SELECT 1')", "asyncmig.run('sleeper')", "asyncmig.cancel('sleeper')",
	q{asyncmig.schedule_batches('b1', 't', 'UPDATE t SET a = a WHERE a BETWEEN $1 AND $2')})
{
	my ($rc, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\nSELECT $call");
	like($err, qr/ERROR:  25006: cannot (schedule|run|cancel) migrations on a standby/, "standby: $call fails with 25006");
	like($err, qr/HINT:  Call it on the primary server/, "standby: $call hints at the primary");
	unlike($err, qr/cannot execute INSERT|cannot execute UPDATE/, "standby: $call does not show the raw read-only error");
}
$primary->safe_psql('postgres', "SELECT asyncmig.cancel('sleeper')");
$primary->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'sleeper'")
  or die 'sleeper not canceled';

# 2. asyncmig.enabled = off: nothing runs, schedule() warns; on again: it runs
asyncmig_allow_log(qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "(while_off|queued_at_failover)"/ =>
	'the test schedules with asyncmig.enabled = off, to see that warning and that nothing runs');
$primary->append_conf('postgresql.conf', "asyncmig.enabled = off");
$primary->reload;
$primary->poll_query_until('postgres', "SELECT current_setting('asyncmig.enabled') = 'off'");
my ($rc, $out, $err) = $primary->psql('postgres', "SELECT asyncmig.schedule('while_off', 'CREATE TABLE while_off (a int)')");
is($out, 'STARTED', 'enabled = off: schedule() queues');
like($err, qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "while_off"/,
	'enabled = off: schedule() warns');
sleep 1;    # (the launcher would have started it in milliseconds)
is($primary->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'while_off'"),
	'STARTED', 'enabled = off: the queued migration stays STARTED');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'"),
	'0', 'enabled = off: no worker');
# (append_conf, not adjust_conf: PostgreSQL 13's test modules lack
# adjust_conf; the last line of a setting wins)
$primary->append_conf('postgresql.conf', "asyncmig.enabled = on");
$primary->reload;
$primary->safe_psql('postgres', "CALL asyncmig.wait('while_off', '60 s')");
is($primary->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'while_off'"),
	'FINISHED', 'enabled on again (reload): the queued migration runs');

# 3. templates are refused: a worker there would make CREATE DATABASE fail
($rc, $out, $err) = $primary->psql('template1', "CREATE EXTENSION asyncmig; SELECT asyncmig.schedule('in_template', 'SELECT 1')");
like($err, qr/cannot schedule migrations in template database "template1"/, 'schedule() in a template database is refused');
is($primary->safe_psql('template1', 'SELECT count(*) FROM asyncmig.migration'), '0', 'nothing recorded in the template');
$primary->safe_psql('template1', 'DROP EXTENSION asyncmig');

# 4. queued work at the moment of a failover: the promoted standby runs it,
# without a restart
$primary->append_conf('postgresql.conf', "asyncmig.enabled = off");
$primary->reload;
$primary->poll_query_until('postgres', "SELECT current_setting('asyncmig.enabled') = 'off'");
$primary->safe_psql('postgres', "SELECT asyncmig.schedule('queued_at_failover', 'CREATE INDEX CONCURRENTLY t_a_idx ON t (a)')");
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'queued_at_failover'"),
	'STARTED', 'the standby sees the queued migration');
$primary->stop('immediate');
$standby->promote;
ok($standby->poll_query_until('postgres', "SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'queued_at_failover'"),
	'after promotion the queued migration runs, without a restart');
is($standby->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_idx'::regclass"), 't',
	'and its index is valid');
is($standby->safe_psql('postgres', "SELECT asyncmig.schedule('after_promotion', 'SELECT 1')"), 'STARTED',
	'the promoted server accepts schedule()');
$standby->safe_psql('postgres', "CALL asyncmig.wait('after_promotion', '60 s')");
ok(-f $standby->data_dir . '/pg_asyncmig/databases', 'the promoted server keeps its registry of databases with work');

$standby->stop;
done_testing();
