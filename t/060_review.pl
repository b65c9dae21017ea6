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
my ($rc, $out, $err);
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

# A registry that cannot be written: see t/026_registry_faults.pl.

# The same for a row queued elsewhere (restored from another cluster) that
# a session holds when the worker that ends such rows comes.
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
