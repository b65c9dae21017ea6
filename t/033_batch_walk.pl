# Copyright (c) asyncmig developers
#
# The batch walk's order, bounds and key:
# - the walk goes in the order BETWEEN $1 AND $2 compares in (the key
#   type's default btree operator class, the column's collation), never in
#   another index's order (text_pattern_ops, another collation);
# - the index is pinned for the run: dropped and re-created in another
#   order mid-run ends ERROR (re-created in the same order, or REINDEX
#   CONCURRENTLY, goes on);
# - the walk's upper bound is the key's maximum when the walk starts: a
#   statement whose trigger moves keys ahead ends, rows inserted beyond it
#   are not walked;
# - a resumed run whose key changed type or collation ends ERROR;
# - a pause too long for a timestamp still pauses.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(
	qr/ERROR:  batch SQL must not insert into the table it walks/ =>
	  'the test schedules a MERGE that inserts into the walked table, to see it refused',
	qr/ERROR:  batch SQL must not assign to the key column "id"/ =>
	  'the test schedules a MERGE that assigns to the key, to see it refused');

my $node = asyncmig_node('batch_walk', conf => qq{
asyncmig.max_workers = 2
});
# a UTF8 database, so that ICU and libc collations can be used if present
$node->safe_psql('postgres', "CREATE DATABASE walk ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('walk', 'CREATE EXTENSION asyncmig');

sub sql { return $node->safe_psql('walk', $_[0]); }

sub status_of
{
	my ($name) = @_;
	return sql("SELECT status || ': ' || coalesce(meta->'error'->>'message', '') FROM asyncmig.migration WHERE name = '$name'");
}

sub wait_ended
{
	my ($name) = @_;
	$node->poll_query_until('walk',
		"SELECT status IN ('ERROR', 'FINISHED') FROM asyncmig.migration WHERE name = '$name'")
	  or die "$name never ended";
}

sub wait_batches
{
	my ($name, $n) = @_;
	$node->poll_query_until('walk',
		"SELECT (meta->'batches'->>'batches')::int >= $n OR status IN ('ERROR', 'FINISHED') FROM asyncmig.migration WHERE name = '$name'")
	  or die "$name never got going";
}

# how many rows of a table have each n, e.g. "1:520"
sub n_counts
{
	my ($table) = @_;
	return sql("SELECT string_agg(n || ':' || c, ' ' ORDER BY n) FROM (SELECT n, count(*) c FROM $table GROUP BY n) s");
}

# a collation whose order is not the bytes' ("a" < "B"), if this build has one
my $coll = sql(q{
SELECT collname FROM pg_collation
WHERE collname IN ('en-x-icu', 'und-x-icu', 'en_US.utf8', 'en_US')
  AND collencoding IN (-1, pg_char_to_encoding('UTF8'))
ORDER BY collname LIKE '%icu' DESC, collname LIMIT 1});
$coll = '' if $coll ne '' && sql(qq{SELECT 'a' < 'B' COLLATE "$coll"}) ne 't';
note($coll ? "collation for the order tests: $coll" : 'no ICU or libc collation: order tests skipped');

# keys whose order differs between bytes and a linguistic collation
my $keys = q{SELECT (CASE WHEN g % 2 = 0 THEN 'A' ELSE 'a' END) || lpad(g::text, 4, '0') FROM generate_series(1, 520) g};

SKIP:
{
	skip 'no linguistic collation in this build', 6 unless $coll;

	# 1. a text_pattern_ops index (older, first in the list) and one in the
	#    column's order: the walk takes the latter
	sql(qq{
CREATE TABLE a (k text COLLATE "$coll" NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO a (k) $keys;
CREATE INDEX a_pattern ON a (k text_pattern_ops);
CREATE INDEX a_k ON a (k);
});
	sql("SELECT asyncmig.schedule_batches('a', 'a', 'UPDATE a SET n = n + 1 WHERE k BETWEEN \$1 AND \$2', key => 'k', batch_size => 7)");
	wait_ended('a');
	is(status_of('a'), 'FINISHED: ', 'order: finished');
	is(n_counts('a'), '1:520', 'order: every row updated exactly once (not in text_pattern_ops order)');
	is(sql("SELECT meta->'batches'->'walk'->>'index' FROM asyncmig.migration WHERE name = 'a'"), 'a_k',
		'order: the index in the column\'s order is pinned');

	# 2. the index dropped and re-created in another order mid-run: ERROR,
	#    never a walk in that order; an index in the right order resumes it
	sql(qq{
CREATE TABLE b (k text COLLATE "$coll" NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO b (k) $keys;
CREATE INDEX b_k ON b (k);
});
	sql("SELECT asyncmig.schedule_batches('b', 'b', 'UPDATE b SET n = n + 1 WHERE k BETWEEN \$1 AND \$2', key => 'k', batch_size => 10, pause => '100 ms')");
	wait_batches('b', 3);
	sql('DROP INDEX b_k; CREATE INDEX b_k ON b (k COLLATE "C")');
	wait_ended('b');
	like(status_of('b'), qr/^ERROR: .*index/, 'index re-created in another order: ERROR about the index');
	sql("CREATE INDEX b_k2 ON b (k)");
	sql("SELECT asyncmig.run('b')");
	wait_ended('b');
	is(status_of('b'), 'FINISHED: ', 'index re-created in the right order: the run resumes and finishes');
	is(n_counts('b'), '1:520', 'index re-created: every row updated exactly once');
}

# 3. REINDEX CONCURRENTLY mid-run (a new index OID, the same order) goes on
sql(q{
CREATE TABLE r (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO r (id) SELECT g * 3 FROM generate_series(1, 1000) g;
});
sql("SELECT asyncmig.schedule_batches('r', 'r', 'UPDATE r SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 50, pause => '50 ms')");
wait_batches('r', 3);
my $old_oid = sql("SELECT 'r_pkey'::regclass::oid");
sql("REINDEX INDEX CONCURRENTLY r_pkey");
wait_ended('r');
is(status_of('r'), 'FINISHED: ', 'REINDEX CONCURRENTLY mid-run: finished');
is(n_counts('r'), '1:1000', 'REINDEX CONCURRENTLY mid-run: every row updated exactly once');
isnt(sql("SELECT meta->'batches'->'walk'->>'index_oid' FROM asyncmig.migration WHERE name = 'r'"), $old_oid,
	'REINDEX CONCURRENTLY mid-run: the new index is pinned');

# 4. a trigger moves every updated row ahead of the walk: the walk still
#    ends at the maximum it started with (before: never, until its timeout)
sql(q{
CREATE TABLE c (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO c (id) SELECT g FROM generate_series(1, 1000) g;
CREATE FUNCTION c_move() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN NEW.id := NEW.id + 1000000; RETURN NEW; END$$;
CREATE TRIGGER c_move BEFORE UPDATE ON c FOR EACH ROW EXECUTE FUNCTION c_move();
});
sql("SELECT asyncmig.schedule_batches('c', 'c', 'UPDATE c SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100, timeout => '60 s')");
wait_ended('c');
is(status_of('c'), 'FINISHED: ', 'keys moved ahead by a trigger: the walk ends');
is(n_counts('c'), '1:1000', 'keys moved ahead: every row updated exactly once');
is(sql("SELECT meta->'batches'->>'upper_key' FROM asyncmig.migration WHERE name = 'c'"), '1000',
	'the upper bound is recorded');

# 5. rows inserted beyond the upper bound during the run are not walked
sql(q{
CREATE TABLE c2 (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO c2 (id) SELECT g FROM generate_series(1, 1000) g;
});
sql("SELECT asyncmig.schedule_batches('c2', 'c2', 'UPDATE c2 SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100, pause => '100 ms')");
wait_batches('c2', 2);
sql("INSERT INTO c2 (id) SELECT g FROM generate_series(1001, 1100) g");
wait_ended('c2');
is(status_of('c2'), 'FINISHED: ', 'inserts beyond the upper bound: finished');
is(sql("SELECT count(*) FILTER (WHERE n = 1 AND id <= 1000) || ' ' || count(*) FILTER (WHERE n = 0 AND id > 1000) FROM c2"),
	'1000 100', 'inserts beyond the upper bound: the range walked once, the new rows not at all');

# 6. the key's type changed between runs: the resumed run ends ERROR
sql(q{
CREATE TABLE d (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO d (id) SELECT g FROM generate_series(1, 2000) g;
});
sql("SELECT asyncmig.schedule_batches('d', 'd', 'UPDATE d SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100, pause => '100 ms')");
wait_batches('d', 3);
sql("SELECT asyncmig.cancel('d')");
wait_ended('d');
my $done = sql("SELECT meta->'batches'->>'batches' FROM asyncmig.migration WHERE name = 'd'");
sql("ALTER TABLE d ALTER COLUMN id TYPE text");
sql("SELECT asyncmig.run('d')");
wait_ended('d');
like(status_of('d'), qr/^ERROR: .*key.*changed/, 'type changed between runs: ERROR');
like(sql("SELECT meta->'error'->>'hint' FROM asyncmig.migration WHERE name = 'd'"), qr/restart => true/,
	'type changed: the hint says restart => true');
is(sql("SELECT meta->'error'->>'sqlstate' FROM asyncmig.migration WHERE name = 'd'"), '55000', 'type changed: SQLSTATE 55000');
is(sql("SELECT count(*) FROM d WHERE n = 1"), $done * 100, 'type changed: nothing walked after the change');
sql("SELECT asyncmig.run('d', restart => true)");
wait_ended('d');
is(status_of('d'), 'FINISHED: ', 'type changed: restart => true walks the new key');
is(sql("SELECT count(*) FROM d WHERE n = 0"), '0', 'type changed: restart => true walked every row');

# 7. the key's collation changed between runs
sql(q{
CREATE TABLE e (k text COLLATE "C" PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO e (k) SELECT 'k' || g FROM generate_series(1, 2000) g;
});
sql("SELECT asyncmig.schedule_batches('e', 'e', 'UPDATE e SET n = n + 1 WHERE k BETWEEN \$1 AND \$2', batch_size => 100, pause => '100 ms')");
wait_batches('e', 3);
sql("SELECT asyncmig.cancel('e')");
wait_ended('e');
sql(qq{ALTER TABLE e ALTER COLUMN k TYPE text COLLATE "} . ($coll || 'POSIX') . '"');
sql("SELECT asyncmig.run('e')");
wait_ended('e');
like(status_of('e'), qr/^ERROR: .*key.*changed/, 'collation changed between runs: ERROR');

# 8. the key's type changed mid-run, between two batches
sql(q{
CREATE TABLE f (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO f (id) SELECT g FROM generate_series(1, 2000) g;
});
sql("SELECT asyncmig.schedule_batches('f', 'f', 'UPDATE f SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100, pause => '200 ms')");
wait_batches('f', 2);
sql("ALTER TABLE f ALTER COLUMN id TYPE text");
wait_ended('f');
like(status_of('f'), qr/^ERROR: .*key.*changed/, 'type changed mid-run: ERROR');

# 9. a pause past what a timestamp holds pauses (until cancelled); it is
#    not skipped (before: it overflowed, and every batch ran at once)
sql(q{
CREATE TABLE p (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO p (id) SELECT g FROM generate_series(1, 100) g;
});
sql("SELECT asyncmig.schedule_batches('p', 'p', 'UPDATE p SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 10, pause => '300000 years')");
wait_batches('p', 1);
ok($node->poll_query_until('walk', "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'asyncmig: p' AND wait_event_type = 'Extension')"),
	'a far pause: the worker sleeps');
sql("SELECT asyncmig.cancel('p')");
wait_ended('p');
is(status_of('p') . ' ' . sql("SELECT meta->'batches'->>'batches' FROM asyncmig.migration WHERE name = 'p'"),
	'ERROR: canceled 1', 'a far pause: one batch, then the pause, cancelled');

# 10. MERGE (PostgreSQL 15 and later): an action that inserts into the walked
#     table, or assigns to its key, is refused at schedule time
SKIP:
{
	skip 'MERGE needs PostgreSQL 15', 3 if sql('SHOW server_version_num') < 150000;
	sql('CREATE TABLE mg (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); CREATE TABLE mg_src (id int, n int)');
	my ($ret, $out, $err);
	$ret = $node->psql('walk', "SELECT asyncmig.schedule_batches('mg1', 'mg', 'MERGE INTO mg USING mg_src s ON mg.id = s.id AND s.id BETWEEN \$1 AND \$2 WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.n)')",
		stdout => \$out, stderr => \$err);
	like($err, qr/batch SQL must not insert into the table it walks/, 'MERGE ... INSERT into the walked table: refused');
	$ret = $node->psql('walk', "SELECT asyncmig.schedule_batches('mg2', 'mg', 'MERGE INTO mg USING mg_src s ON mg.id = s.id AND mg.id BETWEEN \$1 AND \$2 WHEN MATCHED THEN UPDATE SET id = s.id + 1000')",
		stdout => \$out, stderr => \$err);
	like($err, qr/batch SQL must not assign to the key column "id"/, 'MERGE ... UPDATE SET key: refused');
	$ret = $node->psql('walk', "SELECT asyncmig.schedule_batches('mg3', 'mg', 'MERGE INTO mg USING mg_src s ON mg.id = s.id AND mg.id BETWEEN \$1 AND \$2 WHEN MATCHED THEN UPDATE SET n = s.n')",
		stdout => \$out, stderr => \$err);
	is($ret, 0, 'MERGE ... UPDATE of another column: accepted') or diag($err);
}

# no unexpected WARNING in the log
my $log = slurp_file($node->logfile);
my @warnings = grep { !/canceled|timed out/ } ($log =~ /^.*WARNING:.*$/mg);
is(scalar(@warnings), 0, 'no WARNING in the server log') or diag(join("\n", @warnings));

$node->stop;
done_testing();
