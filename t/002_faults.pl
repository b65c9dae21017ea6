# Copyright (c) asyncmig developers
#
# Never stuck, never INVALID: workers that are terminated, killed (crash
# restart) or cut off by a shutdown leave their row ERROR and no INVALID
# index; STARTED work resumes after a restart; cancel, retries, timeouts.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;
use Time::HiRes qw(time usleep);

# errors the test causes on purpose: failing builds and migrations, a
# cancel, and wait() reporting them
asyncmig_allow_log(
	qr/WARNING:  terminating connection because of crash of another server process/ =>
	  'the test crashes a server process on purpose; PostgreSQL 13 logs what 14 and later tell the client only',
	qr/ERROR:  could not create unique index "big_b_idx"/ => 'a unique index built on duplicates, to leave an INVALID one',
	qr/ERROR:  canceling statement due to user request/ => 'the test cancels a running migration',
	qr/ERROR:  asyncmig migration "(t_retry_out|t_retry_guard|t_cancel_cleanup|t_noretry)" ended in ERROR/ =>
	  'migrations that fail on purpose (lock timeouts, duplicates, a timeout, division by zero), and wait() reports them');

my $node = asyncmig_node('faults', conf => qq{
asyncmig.max_workers = 2
restart_after_crash = on
}, extension => 1);
$node->safe_psql('postgres',
	'CREATE TABLE big AS SELECT g AS a, g % 1000 AS b, md5(g::text) AS c FROM generate_series(1, 2000000) g');

my $cic = 'CREATE INDEX CONCURRENTLY big_c_idx ON big (c, b)';

# schedule a migration and return once its worker is building; returns the pid
sub start_build
{
	my ($name, $sql) = @_;
	$node->safe_psql('postgres', "SELECT asyncmig.schedule('$name', \$\$$sql\$\$)");
	$node->poll_query_until('postgres',
		"SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = '$name'")
	  or die "$name never started";
	# well into the build: the INVALID index exists by then
	$node->poll_query_until('postgres',
		"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE phase LIKE 'building index%')")
	  or die "$name never built";
	return $node->safe_psql('postgres', "SELECT meta->>'pid' FROM asyncmig.migration WHERE name = '$name'");
}

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ': ' || coalesce(meta->'error'->>'message', '') FROM asyncmig.migration WHERE name = '$name'");
}

sub wait_ended
{
	my ($name, $what) = @_;
	my $t0 = time;
	ok($node->poll_query_until('postgres',
		"SELECT status IN ('ERROR', 'FINISHED') FROM asyncmig.migration WHERE name = '$name'"),
		"$what: the row ended");
	# the bound a run must end within, with a wide margin over what is seen (under 1 s)
	my $took = time - $t0;
	ok($took < 10, sprintf('%s: ended within 10 s of the server being up (%.1f s)', $what, $took));
}

sub no_invalid_index
{
	my ($what) = @_;
	is($node->safe_psql('postgres', "SELECT string_agg(indexrelid::regclass::text, ',') FROM pg_index WHERE NOT indisvalid"),
		'', "$what: no INVALID index left");
}

# 1. pg_terminate_backend() of the worker during a build
my $pid = start_build('t_terminate', $cic);
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_index WHERE NOT indisvalid'), '1',
	'an INVALID index exists while the build runs');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
wait_ended('t_terminate', 'terminate');
# (PostgreSQL 13 says "terminating connection" for a background worker too)
like(status_of('t_terminate'), qr/^ERROR: interrupted: terminating (background worker "asyncmig worker"|connection) due to administrator command/,
	'terminate: ERROR says what happened');
no_invalid_index('terminate');

# 2. kill -9 of the worker: crash restart of the whole server
$pid = start_build('t_kill9', $cic);
asyncmig_kill9($node, $pid);
wait_ended('t_kill9', 'kill -9');
like(status_of('t_kill9'), qr/^ERROR: interrupted: the server shut down or restarted while it ran/, 'kill -9: ERROR says so');
no_invalid_index('kill -9');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'"),
	'the launcher runs again after the crash');

# 3. fast and immediate shutdown during a build
for my $mode (qw(fast immediate))
{
	start_build("t_$mode", $cic);
	$node->stop($mode);
	$node->start;
	wait_ended("t_$mode", "$mode shutdown");
	like(status_of("t_$mode"), qr/^ERROR: interrupted: /, "$mode shutdown: ERROR");
	no_invalid_index("$mode shutdown");
}

# 4. STARTED work resumes after a restart
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('t_resume', 'CREATE TABLE resumed (a int)', not_before => now() + interval '3 seconds')");
$node->stop('fast');
$node->start;
is(status_of('t_resume'), 'STARTED: ', 'queued work survives a restart');
$node->safe_psql('postgres', "CALL asyncmig.wait('t_resume')");
is(status_of('t_resume'), 'FINISHED: ', 'and runs after it');

# 5. a live worker's row is never touched by a sweep, even a restart's
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_live', 'SELECT pg_sleep(3)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 't_live'");
$node->safe_psql('postgres', "CREATE DATABASE other");     # another database: another worker sweeps there
$node->safe_psql('other', 'CREATE EXTENSION asyncmig');
$node->safe_psql('other', "SELECT asyncmig.schedule('x', 'SELECT 1')");
$node->safe_psql('other', "CALL asyncmig.wait('x')");
# a launcher restart (not the server) rescans every database
$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'");
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'");
is(status_of('t_live'), 'IN PROGRESS: ', 'the running migration is left alone by the new launcher');
$node->safe_psql('postgres', "CALL asyncmig.wait('t_live')");
is(status_of('t_live'), 'FINISHED: ', 'and finishes');

# 6. cancel of a running build
start_build('t_cancel', $cic);
is($node->safe_psql('postgres', "SELECT asyncmig.cancel('t_cancel')"), 'IN PROGRESS', 'cancel() of a running one returns IN PROGRESS');
wait_ended('t_cancel', 'cancel');
is(status_of('t_cancel'), 'ERROR: canceled', 'cancel: ERROR "canceled"');
no_invalid_index('cancel');

# a cancel in a rolled-back transaction does nothing
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_nocancel', 'SELECT pg_sleep(1.5)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 't_nocancel'");
$node->safe_psql('postgres', "BEGIN; SELECT asyncmig.cancel('t_nocancel'); ROLLBACK;");
$node->safe_psql('postgres', "CALL asyncmig.wait('t_nocancel')");
is(status_of('t_nocancel'), 'FINISHED: ', 'a rolled-back cancel leaves the run alone');

# 7. per-migration timeout, for a build too
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('t_timeout', \$\$$cic\$\$, timeout => '700 ms')");
wait_ended('t_timeout', 'timeout');
is(status_of('t_timeout'), 'ERROR: timed out after 00:00:00.7', 'timeout: ERROR "timed out after ..."');
no_invalid_index('timeout');

# 8. CREATE INDEX CONCURRENTLY IF NOT EXISTS over an INVALID index rebuilds it
$node->psql('postgres', 'CREATE UNIQUE INDEX CONCURRENTLY big_b_idx ON big (b)');
is($node->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_b_idx'::regclass"), 'f',
	'a failed build from psql left an INVALID index');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('t_ifne', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS big_b_idx ON big (b)')");
$node->safe_psql('postgres', "CALL asyncmig.wait('t_ifne')");
is($node->safe_psql('postgres', "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_b_idx'::regclass"), 't',
	'IF NOT EXISTS rebuilt it: valid');
# and a valid one is left alone
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('t_ifne2', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS big_b_idx ON big (b)')");
$node->safe_psql('postgres', "CALL asyncmig.wait('t_ifne2')");
is(status_of('t_ifne2'), 'FINISHED: ', 'IF NOT EXISTS over a valid index: FINISHED');

# 9. unnamed concurrent index and REINDEX CONCURRENTLY leftovers
start_build('t_unnamed', 'CREATE INDEX CONCURRENTLY ON big (c, a)');
$node->safe_psql('postgres', "SELECT asyncmig.cancel('t_unnamed')");
wait_ended('t_unnamed', 'unnamed');
no_invalid_index('unnamed concurrent index');
$node->safe_psql('postgres', 'CREATE INDEX big_a_idx ON big (a, c)');
start_build('t_reindex', 'REINDEX INDEX CONCURRENTLY big_a_idx');
$node->safe_psql('postgres', "SELECT asyncmig.cancel('t_reindex')");
wait_ended('t_reindex', 'reindex');
no_invalid_index('REINDEX CONCURRENTLY');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname ~ '_cc(new|old)'"), '0', 'no _ccnew/_ccold');

# 10. retries: a lock timeout is tried again with back-off
$node->append_conf('postgresql.conf', "asyncmig.lock_timeout = '300ms'\nasyncmig.max_attempts = 3");
$node->reload;
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_retry', 'ALTER TABLE big ADD COLUMN d int')");
$node->poll_query_until('postgres', "SELECT attempts >= 2 FROM asyncmig.migration WHERE name = 't_retry'");
$holder->query_safe('COMMIT');
$node->safe_psql('postgres', "CALL asyncmig.wait('t_retry')");
like($node->safe_psql('postgres', "SELECT status || ' ' || attempts FROM asyncmig.migration WHERE name = 't_retry'"),
	qr/^FINISHED [23]$/, 'a lock timeout was retried and then succeeded');

$holder->query_safe('BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_retry_out', 'ALTER TABLE big ADD COLUMN e int')");
my ($rc, $out, $err) = $node->psql('postgres', "CALL asyncmig.wait('t_retry_out')");
$holder->query_safe('COMMIT');
is($node->safe_psql('postgres', "SELECT status || ' ' || attempts || ' ' || (meta->'error'->>'sqlstate') FROM asyncmig.migration WHERE name = 't_retry_out'"),
	'ERROR 3 55P03', 'after max_attempts tries: ERROR 55P03');

# a concurrent build that is retried keeps its guard: when it finally fails
# (duplicates), its INVALID index is still dropped
$node->safe_psql('postgres', 'CREATE TABLE dups AS SELECT g % 10 AS a FROM generate_series(1, 200000) g');
$holder->query_safe('BEGIN; LOCK TABLE dups IN SHARE MODE');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('t_retry_guard', \$\$SET lock_timeout = '200ms'; CREATE UNIQUE INDEX CONCURRENTLY dups_a_idx ON dups (a)\$\$)");
$node->poll_query_until('postgres', "SELECT attempts >= 2 FROM asyncmig.migration WHERE name = 't_retry_guard'");
$holder->query_safe('COMMIT');
$node->psql('postgres', "CALL asyncmig.wait('t_retry_guard')");
is($node->safe_psql('postgres', "SELECT status || ' ' || (meta->'error'->>'sqlstate') FROM asyncmig.migration WHERE name = 't_retry_guard'"),
	'ERROR 23505', 'the retried build failed on the duplicates');
no_invalid_index('retried build');

# a cancel that arrives while the INVALID index is being dropped does not
# stop the drop
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM dups');
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('t_cancel_cleanup', 'CREATE INDEX CONCURRENTLY dups_a2_idx ON dups (a)', timeout => '500 ms')");
$node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'asyncmig worker' AND query LIKE 'DROP INDEX CONCURRENTLY%')")
  or die 'cleanup never started';
$node->safe_psql('postgres', "SELECT asyncmig.cancel('t_cancel_cleanup')");
usleep(500_000);
$holder->query_safe('COMMIT');
$node->psql('postgres', "CALL asyncmig.wait('t_cancel_cleanup')");
is(status_of('t_cancel_cleanup'), 'ERROR: timed out after 00:00:00.5', 'the run timed out');
no_invalid_index('cancel during cleanup');

# other errors are not retried
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_noretry', 'SELECT 1/0')");
$node->psql('postgres', "CALL asyncmig.wait('t_noretry')");
is($node->safe_psql('postgres', "SELECT attempts FROM asyncmig.migration WHERE name = 't_noretry'"), '1', 'no retry for other errors');

# 11. lock_timeout does not apply to CONCURRENTLY: the wait for an older
# snapshot is by design
$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_cic_waits', 'CREATE INDEX CONCURRENTLY big_a2_idx ON big (a)')");
$node->poll_query_until('postgres', "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index WHERE phase = 'waiting for old snapshots')");
usleep(1_000_000);    # well past asyncmig.lock_timeout
$holder->query_safe('COMMIT');
$node->safe_psql('postgres', "CALL asyncmig.wait('t_cic_waits')");
is($node->safe_psql('postgres', "SELECT status || ' ' || attempts FROM asyncmig.migration WHERE name = 't_cic_waits'"),
	'FINISHED 1', 'the build waited for the old snapshot past lock_timeout, no retry');
$holder->quit;

# 12. statement_timeout: a database's web-tuned setting does not reach workers
# (wait by polling: the setting applies to this test's own sessions too)
$node->safe_psql('postgres', "ALTER DATABASE postgres SET statement_timeout = '200ms'");
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_stmt', 'SELECT pg_sleep(1)')");
$node->poll_query_until('postgres', "SELECT status IN ('FINISHED', 'ERROR') FROM asyncmig.migration WHERE name = 't_stmt'");
is(status_of('t_stmt'), 'FINISHED: ', 'a database statement_timeout does not apply in workers');
# asyncmig.statement_timeout does
$node->append_conf('postgresql.conf', "asyncmig.statement_timeout = '300ms'");
$node->reload;
$node->safe_psql('postgres', "SELECT asyncmig.schedule('t_stmt2', 'SELECT pg_sleep(2)')");
$node->poll_query_until('postgres', "SELECT status IN ('FINISHED', 'ERROR') FROM asyncmig.migration WHERE name = 't_stmt2'");
is(status_of('t_stmt2'), 'ERROR: canceling statement due to statement timeout', 'asyncmig.statement_timeout applies');
$node->safe_psql('postgres', "ALTER DATABASE postgres RESET statement_timeout");

$node->stop;
done_testing();
