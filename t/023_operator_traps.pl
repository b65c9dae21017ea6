# Copyright (c) asyncmig developers
#
# Operator traps (the launcher's part): with max_worker_processes too small
# the launcher warns at its start, schedule() warns, and "could not start a
# worker" is logged at most once a minute instead of every second; a
# database that became a template with queued work is not served (CREATE
# DATABASE from it keeps working), and its work runs once it is no template
# any more.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(
	qr/WARNING:  max_worker_processes \(2\) is too small for asyncmig/ =>
	  'the test starts the server with too few worker slots, to see these warnings',
	qr/WARNING:  asyncmig could not start a worker for database \d+: no free background worker slot/ =>
	  'the same: no slot is free for a worker',
	qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "in_tpl"/ =>
	  'the test queues work in a template with asyncmig.enabled = off');

# two slots: the logical replication launcher and asyncmig's launcher
my $node = asyncmig_node('traps', conf => qq{
asyncmig.max_workers = 2
max_worker_processes = 2
}, extension => 1);
ok($node->wait_for_log(qr/WARNING:  max_worker_processes \(2\) is too small for asyncmig/),
	'the launcher warns at its start');

my ($rc, $out, $err) = $node->psql('postgres', "SELECT asyncmig.schedule('starved', 'SELECT 1')");
is($out, 'STARTED', 'schedule() queues');
like($err, qr/WARNING:  max_worker_processes \(2\) is too small for asyncmig: migrations may never run/,
	'schedule() warns about max_worker_processes');
like($err, qr/HINT:  Set max_worker_processes to at least 4/, 'the hint counts the logical replication launcher');
# (the start-up's look at the databases already found no slot)
ok($node->wait_for_log(qr/could not start a worker for database \d+: no free background worker slot/),
	'the launcher says it could not start a worker');
sleep 3;    # it tries every second
my @lines = (slurp_file($node->logfile) =~ /could not start a worker/g);
is(scalar(@lines), 1, 'and says it once, not every second');
my $offset;
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'starved'"), 'STARTED',
	'the migration waits, queued');

# (append_conf, not adjust_conf: PostgreSQL 13's test modules lack
# adjust_conf; the last line of a setting wins)
$node->append_conf('postgresql.conf', "max_worker_processes = 8");
$node->restart;
$node->safe_psql('postgres', "CALL asyncmig.wait('starved', '60 s')");
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'starved'"), 'FINISHED',
	'with room, it runs');

# a database that became a template with queued work is not served
$node->safe_psql('postgres', 'CREATE DATABASE tpl');
$node->safe_psql('tpl', 'CREATE EXTENSION asyncmig');
$node->append_conf('postgresql.conf', 'asyncmig.enabled = off');
$node->reload;
$node->poll_query_until('tpl', "SELECT current_setting('asyncmig.enabled') = 'off'");
$node->safe_psql('tpl', "SELECT asyncmig.schedule('in_tpl', 'SELECT pg_sleep(1)')");
$node->safe_psql('postgres', 'ALTER DATABASE tpl IS_TEMPLATE true');
$offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "asyncmig.enabled = on");
$node->reload;
ok($node->wait_for_log(qr/not starting a worker in database "tpl": it is a template/, $offset),
	'the launcher does not start a worker in a template');
$node->safe_psql('postgres', 'CREATE DATABASE from_tpl TEMPLATE tpl');
is($node->safe_psql('from_tpl', "SELECT status FROM asyncmig.migration WHERE name = 'in_tpl'"), 'STARTED',
	'CREATE DATABASE from the template works (its copy of the row never runs on its own)');
is($node->safe_psql('tpl', "SELECT status FROM asyncmig.migration WHERE name = 'in_tpl'"), 'STARTED',
	'the template keeps its queued migration');
$node->safe_psql('postgres', 'ALTER DATABASE tpl IS_TEMPLATE false');
$node->restart;    # the registry brings it back at start-up
$node->safe_psql('tpl', "CALL asyncmig.wait('in_tpl', '60 s')");
is($node->safe_psql('tpl', "SELECT status FROM asyncmig.migration WHERE name = 'in_tpl'"), 'FINISHED',
	'no template any more: it runs');
$node->safe_psql('from_tpl', "SELECT asyncmig.schedule('wake', 'SELECT 1')");
$node->safe_psql('from_tpl', "CALL asyncmig.wait('wake', '60 s')");
like($node->safe_psql('from_tpl', "SELECT status || ': ' || (meta->'error'->>'message') FROM asyncmig.migration WHERE name = 'in_tpl'"),
	qr/^ERROR: not run: it was queued in another database/, 'the copy of the row in the new database does not run');

$node->stop;
done_testing();
