# Copyright (c) asyncmig developers
#
# Rows of asyncmig.migration that a session holds locked (SELECT ... FOR
# UPDATE) when a worker comes: a worker skips them, never waits for them,
# and comes back for them once they are free, with nothing else waking the
# launcher; a batched run waits between batches without holding the rows
# of its table.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('held_rows', extension => 1);

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = '$name'");
}

my ($rc, $out, $err);

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

# A row queued elsewhere (restored from another cluster) that a session
# holds when the worker that ends such rows comes: skipped, then ended.
$node->append_conf('postgresql.conf', "asyncmig.enabled = off");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('asyncmig.enabled') = 'off'");
$node->safe_psql('postgres', q{INSERT INTO asyncmig.migration (name, status, direction, forwards_sql, owner, search_path, meta)
	VALUES ('foreign1', 'STARTED', 'forwards', 'SELECT 1', 'postgres', 'public', '{"origin": {"system": "1", "datid": 1}}')});
my $f = $node->background_psql('postgres');
$f->query_safe("BEGIN; SELECT id FROM asyncmig.migration WHERE name = 'foreign1' FOR UPDATE");
$node->append_conf('postgresql.conf', "asyncmig.enabled = on");
$node->reload;
$node->safe_psql('postgres', "SELECT asyncmig.schedule('other2', 'SELECT 1')");
ok($node->poll_query_until('postgres',
	"SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'other2'"),
	'a worker came while a session held a row queued elsewhere');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'"),
	'... and its workers left');
is(status_of('foreign1'), 'STARTED', 'the held row queued elsewhere was skipped');
$f->query_safe('COMMIT');
ok($node->poll_query_until('postgres',
	"SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'foreign1'"),
	'... and ended (not run) once the session lets go');
$f->quit;

# A batched run whose row a session holds: the batch is not run until the
# row is free (the worker comes back every second), so it neither waits on
# that lock with the batch's rows of the table locked, nor fails the run
# after a few lock timeouts.
$node->safe_psql('postgres', q{
	CREATE TABLE bt (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
	INSERT INTO bt (id) SELECT generate_series(1, 3000);
	ALTER SYSTEM SET asyncmig.lock_timeout = '200ms';
	ALTER SYSTEM SET asyncmig.max_attempts = 2;
	SELECT pg_reload_conf();
});
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule_batches('held_batches', 'bt', 'UPDATE bt SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100, pause => '100 ms')");
ok($node->poll_query_until('postgres',
	"SELECT (meta #>> '{batches,batches}')::int >= 2 FROM asyncmig.migration WHERE name = 'held_batches'"),
	'the batched run is under way');
my $log_offset = -s $node->logfile;
my $b = $node->background_psql('postgres');
$b->query_safe("BEGIN; SELECT id FROM asyncmig.migration WHERE name = 'held_batches' FOR UPDATE");
$node->wait_for_log(qr/"held_batches": its row is locked by another session; batch \d+ waits/, $log_offset);
is($node->safe_psql('postgres', "SET lock_timeout = '2s'; WITH u AS (UPDATE bt SET n = n RETURNING 1) SELECT count(*) FROM u"), '3000',
	'while it waits, no row of the table is held by the worker');
is(status_of('held_batches'), 'IN PROGRESS', '... and the run goes on waiting');
$b->query_safe('COMMIT');
$b->quit;
ok($node->poll_query_until('postgres',
	"SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'held_batches'"),
	'once the row is free, the batches go on to the end');
is($node->safe_psql('postgres', 'SELECT n, count(*) FROM bt GROUP BY n'), '1|3000',
	'... every row updated exactly once');
is($node->safe_psql('postgres', "SELECT attempts FROM asyncmig.migration WHERE name = 'held_batches'"), '1',
	'... with no failed try counted');
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET asyncmig.lock_timeout;
	ALTER SYSTEM RESET asyncmig.max_attempts;
	SELECT pg_reload_conf();
});

done_testing();
