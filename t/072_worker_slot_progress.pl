# Copyright (c) asyncmig developers
#
# Too few background worker slots: a queued migration
# that no worker can start says why in the status view's progress, and
# which setting to raise, to its owner (an application role with the
# documented grants) and to a pg_monitor member; once there is room it
# runs and the message is gone.

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
	  'the test starts the server with too few worker slots',
	qr/WARNING:  asyncmig could not start a worker for database \d+: no free background worker slot/ =>
	  'the same: no slot is free for a worker');

# two slots: the logical replication launcher and asyncmig's launcher
my $node = asyncmig_node('slots', conf => qq{
asyncmig.max_workers = 2
max_worker_processes = 2
}, extension => 1);

my $grants = "$FindBin::RealBin/../docs/grants.sql";
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN; CREATE ROLE watcher LOGIN IN ROLE pg_monitor');
$node->command_ok([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-v', 'app_role=app', '-f', $grants ],
	'docs/grants.sql for the app role');

my $offset = -s $node->logfile;
$node->psql('postgres', "SELECT asyncmig.schedule('starved', 'SELECT 1')",
	extra_params => [ '-U', 'app' ]);
ok($node->wait_for_log(qr/could not start a worker for database \d+: no free background worker slot/),
	'the launcher finds no slot');

my $expected = 'waiting for a background worker slot (raise max_worker_processes, now 2; asyncmig alone needs 4)';
my $q = "SELECT status || ' | ' || progress FROM asyncmig.status WHERE name = 'starved'";
is($node->safe_psql('postgres', $q, extra_params => [ '-U', 'app' ]), "STARTED | $expected",
	'its owner (the app role) sees why it waits, and what to raise');
is($node->safe_psql('postgres', $q, extra_params => [ '-U', 'watcher' ]), "STARTED | $expected",
	'so does a pg_monitor member');
is($node->safe_psql('postgres', 'SHOW asyncmig.worker_slot_wait'), $expected,
	'asyncmig.worker_slot_wait says it');

# a dependency still comes first: that is what it waits for
$node->safe_psql('postgres', "SELECT asyncmig.schedule('behind', 'SELECT 1', depends_on => '{starved}')");
like($node->safe_psql('postgres', "SELECT progress FROM asyncmig.status WHERE name = 'behind'"),
	qr/^waiting for dependency "starved" \(STARTED\)$/, 'a run with a dependency says it waits for the dependency');

# with room, it runs; nothing says it waits any more
$node->append_conf('postgresql.conf', "max_worker_processes = 8");
$node->restart;
$node->safe_psql('postgres', "CALL asyncmig.wait('behind', '60 s')");
is($node->safe_psql('postgres', "SELECT string_agg(name || ' ' || status || ' ' || coalesce(progress, '-'), ', ' ORDER BY name) FROM asyncmig.status"),
	'behind FINISHED -, starved FINISHED -', 'with room, both run');
is($node->safe_psql('postgres', 'SHOW asyncmig.worker_slot_wait'), '', 'and nothing waits for a slot');

$node->stop;
done_testing();
