# Copyright (c) asyncmig developers
#
# Batches sized to asyncmig.batch_target_time: a batch statement that costs
# at least 1 ms a row (a volatile function that sleeps) with batch_size
# 1000 and a target of 100 ms gets smaller batches, shown in meta and in
# the status's progress, and still updates every row exactly once, across
# a terminate and a resumed run that starts at the size reached; with the
# target 0 every batch has batch_size.  No clock asserts: a 1000-row batch
# takes over a second here, ten times the target, so the size must go down.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('batch_target_time', conf => qq{
asyncmig.max_workers = 2
asyncmig.batch_target_time = 100ms
}, extension => 1);

sub sql { return $node->safe_psql('postgres', $_[0]); }

$node->safe_psql('postgres', q{
CREATE FUNCTION slow_one() RETURNS int VOLATILE LANGUAGE sql
	AS $$ SELECT pg_sleep(0.001); SELECT 1 $$;
CREATE TABLE s1 (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO s1 (id) SELECT g FROM generate_series(1, 8000) g;
CREATE TABLE s2 (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO s2 (id) SELECT g FROM generate_series(1, 3000) g;
VACUUM ANALYZE s1, s2;
});

my $stmt = 'UPDATE %s SET n = n + slow_one() WHERE id BETWEEN $1 AND $2';

sub batches
{
	my ($name, $key) = @_;
	return sql("SELECT meta->'batches'->>'$key' FROM asyncmig.migration WHERE name = '$name'");
}

sub all_once
{
	my ($table, $what) = @_;
	is(sql("SELECT count(*) FILTER (WHERE n <> 1) || ' of ' || count(*) FROM $table"),
		"0 of " . sql("SELECT count(*) FROM $table"), "$what: every row updated exactly once");
}

# 1. a target: the size goes down, and shows while it runs
sql(sprintf("SELECT asyncmig.schedule_batches('t_sized', 's1', '%s', batch_size => 1000)",
	sprintf($stmt, 's1')));
ok($node->poll_query_until('postgres',
	"SELECT progress ~ '^batch [0-9]+: [0-9]+ of ~[0-9]+ rows \\([0-9]+%\\), size [0-9]+, eta ' FROM asyncmig.status WHERE name = 't_sized'"),
	'progress names the size while it is not batch_size');
is(batches('t_sized', 'target_ms'), '100', 'meta: target_ms is the setting');
cmp_ok(batches('t_sized', 'size'), '<', 1000, 'meta: the size went below batch_size');
cmp_ok(batches('t_sized', 'size'), '>=', 10, 'meta: the size stays at batch_size / 100 or more');
like(batches('t_sized', 'last_batch_ms'), qr/^\d+$/, 'meta: last_batch_ms');

# terminate the worker mid-run; the next run resumes at the size reached
my $pid = sql("SELECT meta->>'pid' FROM asyncmig.migration WHERE name = 't_sized'");
sql("SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT status IN ('ERROR', 'FINISHED') FROM asyncmig.migration WHERE name = 't_sized'")
  or die 't_sized never ended';
my $status = sql("SELECT status FROM asyncmig.migration WHERE name = 't_sized'");
SKIP:
{
	skip 'the run had finished before the terminate', 2 if $status eq 'FINISHED';
	my $saved = batches('t_sized', 'size');
	cmp_ok($saved, '<', 1000, 'terminated: the size reached is recorded');
	sql("SELECT asyncmig.run('t_sized')");
	sql("CALL asyncmig.wait('t_sized')");
	ok($node->log_contains(qr/asyncmig migration "t_sized": resuming after key \d+ \(\d+ batches, \d+ rows done\), $saved keys per batch at first/),
		'resumed run: starts at the size recorded');
}
sql("CALL asyncmig.wait('t_sized')");
is(sql("SELECT status FROM asyncmig.migration WHERE name = 't_sized'"), 'FINISHED', 'sized run: FINISHED');
all_once('s1', 'sized run');
cmp_ok(batches('t_sized', 'batches'), '>', 8, 'sized run: more batches than 8000 rows / batch_size');
cmp_ok(batches('t_sized', 'size'), '<', 1000, 'sized run: meta keeps a size below batch_size');
is(sql("SELECT progress FROM asyncmig.status WHERE name = 't_sized'"),
	batches('t_sized', 'batches') . ' batches: 8000 rows', 'FINISHED progress as before');

# 2. target 0: every batch has batch_size
$node->append_conf('postgresql.conf', 'asyncmig.batch_target_time = 0');
$node->reload;
sql(sprintf("SELECT asyncmig.schedule_batches('t_fixed', 's2', '%s', batch_size => 1000)",
	sprintf($stmt, 's2')));
sql("CALL asyncmig.wait('t_fixed')");
is(sql("SELECT status FROM asyncmig.migration WHERE name = 't_fixed'"), 'FINISHED', 'fixed: FINISHED');
all_once('s2', 'fixed');
is(batches('t_fixed', 'batches'), '3', 'fixed: 3000 rows in batches of 1000');
is(batches('t_fixed', 'size'), '1000', 'fixed: meta size is batch_size');
is(batches('t_fixed', 'target_ms'), '0', 'fixed: meta target_ms 0');

done_testing();
