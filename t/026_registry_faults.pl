# Copyright (c) asyncmig developers
#
# The registry file (pg_asyncmig/databases) under faults: it is an
# optimisation, so a file or directory that cannot be read or written is
# logged once, every database is looked at instead, queued work runs, and
# the launcher does not restart in a loop.  Only a stale file that can be
# neither replaced nor made untrusted refuses schedule() (what a restart
# would forget).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(
	qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "(g1|g2|h1|h2)"/ =>
	  'the test queues work with asyncmig.enabled = off, to look at the registry alone',
	qr/WARNING:  could not open file "pg_asyncmig\/databases": Permission denied/ =>
	  'the test makes the registry file unreadable',
	qr/WARNING:  could not create file "pg_asyncmig\/databases\.tmp": Permission denied/ =>
	  'the test makes the registry directory unwritable',
	qr/ERROR:  asyncmig could not record that this database has queued migrations/ =>
	  'the one refusal: a stale file that can be neither replaced nor removed nor emptied');
use PostgreSQL::Test::Utils;
use Test::More;

my $node = asyncmig_node('faults', extension => 1);
my $regdir = $node->data_dir . '/pg_asyncmig';
my $registry = "$regdir/databases";
foreach my $db (qw(db2 db3 db4 db5))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION asyncmig');
}
ok($node->wait_for_log(qr/asyncmig: looked at all \d+ databases/), 'the first start-up looks at every database once');
ok($node->poll_query_until('postgres', 'SELECT true') && -f $registry, '... and writes the registry');

# how many lines of the log since $from match $re
sub count_log
{
	my ($re, $from) = @_;
	my $log = substr(slurp_file($node->logfile), $from);
	my $n = 0;
	$n++ while $log =~ /$re/g;
	return $n;
}

sub finished
{
	my ($db, $name) = @_;
	return $node->poll_query_until($db,
		"SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = '$name'");
}

# queue work in postgres and db2 with the launcher off, then stop
sub queue_and_stop
{
	my ($tag) = @_;
	$node->append_conf('postgresql.conf', 'asyncmig.enabled = off');
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('asyncmig.enabled') = 'off'");
	$node->safe_psql('postgres', "SELECT asyncmig.schedule('${tag}1', 'SELECT 1')");
	$node->safe_psql('db2', "SELECT asyncmig.schedule('${tag}2', 'SELECT 1')");
	$node->stop;
	$node->append_conf('postgresql.conf', 'asyncmig.enabled = on');
}

# 1. the file mode 000 while the server runs: it is replaced, not opened
my $off = -s $node->logfile;
chmod 0000, $registry or die "chmod: $!";
$node->safe_psql('postgres', "SELECT asyncmig.schedule('f1', 'SELECT 1')");
$node->safe_psql('db2', "SELECT asyncmig.schedule('f2', 'SELECT 1')");
ok(finished('postgres', 'f1') && finished('db2', 'f2'), 'file mode 000: queued work in two databases finishes');
ok(-r $registry, '... and the file is replaced by a readable one');
is(count_log(qr/asyncmig launcher started/, $off), 0, '... and the launcher never restarted');

# 2. the file mode 000 at start-up, with queued work
queue_and_stop('g');
chmod 0000, $registry or die "chmod: $!";
$off = -s $node->logfile;
$node->start;
ok(finished('postgres', 'g1') && finished('db2', 'g2'), 'file mode 000 at start-up: queued work in two databases finishes');
ok($node->wait_for_log(qr/asyncmig: looked at all \d+ databases/, $off), '... after a look at every database');
is(count_log(qr/WARNING:  could not open file "pg_asyncmig\/databases": Permission denied/, $off), 1,
	'... the unreadable file is logged once');
like(substr(slurp_file($node->logfile), $off), qr/HINT:  Make the directory "pg_asyncmig" and its files readable and writable/,
	'... with what to do');
is(count_log(qr/asyncmig launcher started/, $off), 1, '... and the launcher started once');
ok(-r $registry, '... and the file is written anew');

# 3. the directory mode 000 at start-up, with queued work, and work
#    queued in a database the registry never had
queue_and_stop('h');
chmod 0000, $regdir or die "chmod: $!";
$off = -s $node->logfile;
$node->start;
ok(finished('postgres', 'h1') && finished('db2', 'h2'), 'directory mode 000 at start-up: queued work in two databases finishes');
$node->safe_psql('db3', "SELECT asyncmig.schedule('h3', 'SELECT 1')");
ok(finished('db3', 'h3'), '... and so does work queued in another database meanwhile');
$node->safe_psql('db3', "SELECT asyncmig.schedule('h4', 'SELECT 1')");
ok(finished('db3', 'h4'), '... again');
is(count_log(qr/asyncmig launcher started/, $off), 1, '... the launcher started once and never again');
is(count_log(qr/WARNING:  could not (open|create) file "pg_asyncmig\/databases(\.tmp)?"/, $off), 2,
	'... the unreadable file is logged once, the unwritable one once, not at every try');
is(count_log(qr/ERROR:/, $off), 0, '... and nothing failed');

# 4. the directory fixed: the launcher writes the file within seconds,
#    and a restart trusts it again
chmod 0700, $regdir or die "chmod: $!";
ok($node->wait_for_log(qr/asyncmig: "pg_asyncmig\/databases" is written again/, $off), 'directory fixed: the file is written again');
like(slurp_file($registry), qr/^asyncmig registry 1\nsystem_identifier \d+\ntimeline [1-9]\d*\n/, '... complete');
$off = -s $node->logfile;
$node->restart;
ok($node->wait_for_log(qr/asyncmig launcher: \d+ database\(s\) with work in the registry/, $off),
	'... and a restart trusts it (no look at every database)');
is(count_log(qr/looking at every database/, $off), 0, '... indeed');

# 5. a directory that is not writable, the file writable: the file is
#    emptied (not trusted any more) and schedule() works
chmod 0555, $regdir or die "chmod: $!";
$off = -s $node->logfile;
$node->safe_psql('db4', "SELECT asyncmig.schedule('k1', 'SELECT 1')");
ok(finished('db4', 'k1'), 'directory not writable: schedule() in a new database works and runs');
is(-s $registry, 0, '... the stale file was emptied, so no start-up trusts it');
is(count_log(qr/WARNING:  could not create file "pg_asyncmig\/databases\.tmp": Permission denied/, $off), 1,
	'... the failure is logged once');

# 6. a stale file that can be neither replaced nor emptied and stays
#    readable: schedule() in a database it does not list is refused
chmod 0700, $regdir or die "chmod: $!";
ok($node->wait_for_log(qr/asyncmig: "pg_asyncmig\/databases" is written again/, $off), 'directory fixed: the file is written again');
chmod 0400, $registry or die "chmod: $!";
chmod 0555, $regdir or die "chmod: $!";
$off = -s $node->logfile;
my ($rc, $out, $err) = $node->psql('db5', "SELECT asyncmig.schedule('r1', 'SELECT 1')");
like($err, qr/ERROR:  asyncmig could not record that this database has queued migrations\nDETAIL:  .*\nHINT:  Make the directory "pg_asyncmig" .* writable/,
	'a stale file that cannot be replaced nor made untrusted: schedule() says so, and what to do');
is($node->safe_psql('db5', 'SELECT count(*) FROM asyncmig.migration'), '0', '... and records nothing');
chmod 0700, $regdir or die "chmod: $!";
chmod 0600, $registry or die "chmod: $!";
is($node->safe_psql('db5', "SELECT asyncmig.schedule('r1', 'SELECT 1')"), 'STARTED', '... and works once it is writable again');
ok(finished('db5', 'r1'), '... and runs');
ok($node->wait_for_log(qr/asyncmig: "pg_asyncmig\/databases" is written again/, $off), 'the file is written again');

$node->stop;
done_testing();
