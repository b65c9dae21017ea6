# Copyright (c) asyncmig developers
#
# Batched data migrations (schedule_batches): keyset walks over bigint keys
# with gaps, uuid, text and timestamptz keys (with duplicates), every row
# updated exactly once (a counter column, SET n = n + 1) across kill -9 of
# the worker, pg_terminate_backend(), cancel and timeout followed by a new
# run; retries on lock timeouts; restart => true; backwards; progress in
# asyncmig.status and pg_stat_activity.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(
	qr/WARNING:  terminating connection because of crash of another server process/ =>
	  'the test crashes a server process on purpose; PostgreSQL 13 logs what 14 and later tell the client only');

my $node = asyncmig_node('batches', conf => qq{
asyncmig.max_workers = 2
restart_after_crash = on
}, extension => 1);

my $rows = 200000;

# bigint keys with gaps (never dense), a counter column
$node->safe_psql('postgres', qq{
CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text);
INSERT INTO big (id, pad) SELECT g * 5 + (g % 3), 'x' FROM generate_series(1, $rows) g;
VACUUM ANALYZE big;
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub status_of
{
	my ($name) = @_;
	return sql("SELECT status || ': ' || coalesce(meta->'error'->>'message', '') FROM asyncmig.migration WHERE name = '$name'");
}

sub wait_ended
{
	my ($name) = @_;
	$node->poll_query_until('postgres',
		"SELECT status IN ('ERROR', 'FINISHED') FROM asyncmig.migration WHERE name = '$name'")
	  or die "$name never ended";
}

# every row of a table has n = $want
sub all_n
{
	my ($table, $want, $what) = @_;
	is(sql("SELECT count(*) FILTER (WHERE n <> $want) || ' of ' || count(*) FROM $table"),
		"0 of " . sql("SELECT count(*) FROM $table"), "$what: every row has n = $want");
}

# start a slow batched counter over big; return once some batches are done
sub start_slow
{
	my ($name, %opt) = @_;
	my $extra = $opt{extra} // '';
	sql("SELECT asyncmig.schedule_batches('$name', 'big', 'UPDATE big SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 2000, pause => '30 ms' $extra)");
	$node->poll_query_until('postgres',
		"SELECT (meta->'batches'->>'batches')::int >= 5 FROM asyncmig.migration WHERE name = '$name'")
	  or die "$name never got going";
	return sql("SELECT meta->>'pid' FROM asyncmig.migration WHERE name = '$name'");
}

sub batches_done
{
	my ($name) = @_;
	return sql("SELECT (meta->'batches'->>'batches')::int FROM asyncmig.migration WHERE name = '$name'");
}

# 1. a plain run over bigint keys with gaps; progress visible while it runs
sql("SELECT asyncmig.schedule_batches('c_plain', 'big', 'UPDATE big SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 1000, pause => '10 ms')");
ok($node->poll_query_until('postgres',
	"SELECT progress ~ '^batch [0-9]+: [0-9]+ of ~[0-9]+ rows \\([0-9]+%\\), eta [0-9.]+ (s|min|h)\$' FROM asyncmig.status WHERE name = 'c_plain'"),
	'status shows batch, rows, estimate, percent and eta');
ok($node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'asyncmig: c_plain' AND query LIKE '/* asyncmig batch % */ UPDATE big%')"),
	'pg_stat_activity shows the batch and its keys');
sql("CALL asyncmig.wait('c_plain')");
is(status_of('c_plain'), 'FINISHED: ', 'plain run finished');
all_n('big', 1, 'plain run');
is(sql("SELECT meta->'batches'->>'batches' || ' ' || (meta->'batches'->>'rows') || ' ' || (meta->'batches'->>'rows_affected') FROM asyncmig.migration WHERE name = 'c_plain'"),
	"200 $rows $rows", 'meta->batches counts batches, keys walked and rows affected');
is(sql("SELECT progress FROM asyncmig.status WHERE name = 'c_plain'"), "200 batches: $rows rows", 'status after the end');
sql("UPDATE big SET n = 0");

# 2. kill -9 of the worker in the middle: crash restart, ERROR, run() resumes
my $pid = start_slow('c_kill9');
asyncmig_kill9($node, $pid);
wait_ended('c_kill9');
like(status_of('c_kill9'), qr/^ERROR: interrupted: /, 'kill -9: ERROR');
my $done = batches_done('c_kill9');
ok($done >= 5 && $done < 100, "kill -9: progress kept ($done batches of 100)");
is(sql("SELECT count(*) FROM big WHERE n = 1"), $done * 2000, 'kill -9: exactly the recorded batches were applied');
sql("SELECT asyncmig.run('c_kill9')");
sql("CALL asyncmig.wait('c_kill9')");
is(status_of('c_kill9'), 'FINISHED: ', 'kill -9: the new run finished');
all_n('big', 1, 'kill -9 then run()');
is(sql("SELECT (meta->'batches'->>'run_batches')::int + $done FROM asyncmig.migration WHERE name = 'c_kill9'"), '100',
	'kill -9: the new run resumed after the last committed batch');
ok($node->log_contains(qr/asyncmig migration "c_kill9": resuming after key \d+/), 'kill -9: LOG says where it resumed');
sql("UPDATE big SET n = 0");

# 3. pg_terminate_backend() of the worker, then run()
$pid = start_slow('c_term');
sql("SELECT pg_terminate_backend($pid)");
wait_ended('c_term');
like(status_of('c_term'), qr/^ERROR: interrupted: terminating/, 'terminate: ERROR');
sql("SELECT asyncmig.run('c_term')");
sql("CALL asyncmig.wait('c_term')");
all_n('big', 1, 'terminate then run()');
sql("UPDATE big SET n = 0");

# 4. cancel in the middle, then run() resumes
start_slow('c_cancel');
sql("SELECT asyncmig.cancel('c_cancel')");
wait_ended('c_cancel');
is(status_of('c_cancel'), 'ERROR: canceled', 'cancel: ERROR canceled');
$done = batches_done('c_cancel');
is(sql("SELECT count(*) FROM big WHERE n = 1"), $done * 2000, 'cancel: exactly the recorded batches were applied');
sql("SELECT asyncmig.run('c_cancel')");
sql("CALL asyncmig.wait('c_cancel')");
all_n('big', 1, 'cancel then run()');

# 5. restart => true starts at the first key again (n = 2 everywhere)
sql("SELECT asyncmig.run('c_cancel', restart => true)");
sql("CALL asyncmig.wait('c_cancel')");
all_n('big', 2, 'restart => true');
sql("UPDATE big SET n = 0");

# 6. timeout: ERROR "timed out", the batches done are kept; scheduling it
#    again without a timeout resumes
start_slow('c_timeout', extra => ", timeout => '1 s'");
wait_ended('c_timeout');
is(status_of('c_timeout'), 'ERROR: timed out after 00:00:01', 'timeout: ERROR timed out');
$done = batches_done('c_timeout');
is(sql("SELECT count(*) FROM big WHERE n = 1"), $done * 2000, 'timeout: exactly the recorded batches were applied');
sql("SELECT asyncmig.schedule_batches('c_timeout', 'big', 'UPDATE big SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 2000)");
sql("CALL asyncmig.wait('c_timeout')");
all_n('big', 1, 'timeout then schedule_batches() again');

# 7. backwards runs backwards_sql as a plain migration
sql("SELECT asyncmig.schedule_batches('c_back', 'big', 'UPDATE big SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', 'UPDATE big SET n = -1', batch_size => 50000)");
sql("CALL asyncmig.wait('c_back')");
all_n('big', 2, 'forwards before backwards');
sql("SELECT asyncmig.run('c_back', backwards => true)");
sql("CALL asyncmig.wait('c_back')");
all_n('big', -1, 'backwards');
sql("UPDATE big SET n = 0");

# 8. a batch that waits on a row lock: retried (lock timeout), then done
sql("ALTER SYSTEM SET asyncmig.lock_timeout = '300ms'");
sql("ALTER SYSTEM SET asyncmig.max_attempts = 5");
sql("SELECT pg_reload_conf()");
my $locker = $node->background_psql('postgres');
$locker->query_safe("BEGIN; SELECT n FROM big WHERE id = (SELECT id FROM big ORDER BY id OFFSET 100000 LIMIT 1) FOR UPDATE");
sql("SELECT asyncmig.schedule_batches('c_lock', 'big', 'UPDATE big SET n = n + 1 WHERE id BETWEEN \$1 AND \$2')");
ok($node->poll_query_until('postgres', "SELECT attempts >= 2 FROM asyncmig.migration WHERE name = 'c_lock'"),
	'lock: the blocked batch is tried again');
is(sql("SELECT meta->'retried_after'->>'sqlstate' FROM asyncmig.migration WHERE name = 'c_lock'"), '55P03',
	'lock: after a lock timeout');
$locker->query_safe("COMMIT");
$locker->quit;
sql("CALL asyncmig.wait('c_lock')");
is(status_of('c_lock'), 'FINISHED: ', 'lock: finished after the lock was released');
all_n('big', 1, 'lock timeouts and retries');
sql("ALTER SYSTEM RESET asyncmig.lock_timeout");
sql("ALTER SYSTEM RESET asyncmig.max_attempts");
sql("SELECT pg_reload_conf()");

# 9. uuid, text and timestamptz keys (timestamps shared by several rows)
sql(qq{
CREATE TABLE k_uuid (u uuid PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO k_uuid (u) SELECT md5(g::text)::uuid FROM generate_series(1, $rows) g;
CREATE TABLE k_text (id int, code text NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO k_text (id, code) SELECT g, 'code-' || (g * 7919 % $rows) FROM generate_series(1, $rows) g;
CREATE UNIQUE INDEX k_text_code ON k_text (code);
CREATE TABLE k_ts (id int, at timestamptz NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO k_ts (id, at) SELECT g, timestamptz '2024-01-01 00:00:00+00' + (g / 3) * interval '1 second' FROM generate_series(1, $rows) g;
CREATE INDEX k_ts_at ON k_ts (at);
});
sql("SELECT asyncmig.schedule_batches('k_uuid', 'k_uuid', 'UPDATE k_uuid SET n = n + 1 WHERE u BETWEEN \$1 AND \$2', batch_size => 7000)");
sql("SELECT asyncmig.schedule_batches('k_text', 'k_text', 'UPDATE k_text SET n = n + 1 WHERE code BETWEEN \$1 AND \$2', key => 'code', batch_size => 7000)");
sql("SELECT asyncmig.schedule_batches('k_ts', 'k_ts', 'UPDATE k_ts SET n = n + 1 WHERE at BETWEEN \$1 AND \$2', key => 'at', batch_size => 7000)");
sql("CALL asyncmig.wait()");
for my $t (qw(k_uuid k_text k_ts))
{
	is(status_of($t), 'FINISHED: ', "$t: finished");
	all_n($t, 1, $t);
}
is(sql("SELECT meta->'batches'->>'last_key' FROM asyncmig.migration WHERE name = 'k_ts'"),
	sql("SELECT max(at)::text FROM k_ts"), 'k_ts: the last key recorded is the last timestamp');

# 10. kill -9 in the middle of a timestamptz walk with duplicate keys
sql("UPDATE k_ts SET n = 0");
sql("SELECT asyncmig.schedule_batches('k_ts2', 'k_ts', 'UPDATE k_ts SET n = n + 1 WHERE at BETWEEN \$1 AND \$2', key => 'at', batch_size => 1000, pause => '20 ms')");
$node->poll_query_until('postgres',
	"SELECT (meta->'batches'->>'batches')::int >= 5 FROM asyncmig.migration WHERE name = 'k_ts2'")
  or die 'k_ts2 never got going';
asyncmig_kill9($node, sql("SELECT meta->>'pid' FROM asyncmig.migration WHERE name = 'k_ts2'"));
wait_ended('k_ts2');
sql("SELECT asyncmig.run('k_ts2')");
sql("CALL asyncmig.wait('k_ts2')");
all_n('k_ts', 1, 'timestamptz keys across kill -9');

done_testing();
