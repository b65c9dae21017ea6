# Copyright (c) asyncmig developers
#
# A transaction that only looked must not wedge the database.  schedule() of
# an existing name (it only returns the status) and cancel() of an ended row
# take no row lock; a transaction whose calls did lock or change a row
# cannot be PREPAREd; a worker's bookkeeping does not wait without bound on
# a lock a user holds, and neither does the dependency check before the
# claim.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

# errors the test causes on purpose
asyncmig_allow_log(
	qr/ERROR:  cannot PREPARE a transaction that called asyncmig functions/ => 'the test PREPAREs such transactions',
	qr/ERROR:  asyncmig migration "dep_fails" ended in ERROR: division by zero/ => 'a migration that fails, and wait() reports it',
	qr/ERROR:  canceling statement due to lock timeout/ => 'a user holds a lock the worker needs; the worker gives up in bounded tries');

my $node = asyncmig_node('wedge', conf => qq{
max_prepared_transactions = 4
}, extension => 1);

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = '$name'");
}

# wait for a migration, but give up (and fail) after a while instead of hanging
sub ends_within
{
	my ($name, $what) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "CALL asyncmig.wait('$name', '30 s')");
	is(status_of($name), 'FINISHED', $what);
}

my $a = $node->background_psql('postgres');

# schedule() of a running migration, left open: the run still ends, the next one runs
$node->safe_psql('postgres', "SELECT asyncmig.schedule('long', 'SELECT pg_sleep(1)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long'");
is($a->query_safe("BEGIN; SELECT asyncmig.schedule('long', 'SELECT pg_sleep(1)')"), 'IN PROGRESS',
	'schedule() of a running migration returns IN PROGRESS');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('next', 'CREATE TABLE next_ran (a int)')");
ends_within('long', 'a schedule() left open does not keep the run from ending');
ends_within('next', '... nor the next migration from running');
# and cancel() of the ended one, left open, blocks nobody who only looks
$a->query_safe("SELECT asyncmig.cancel('long')");
is($node->safe_psql('postgres', "SET statement_timeout = '5s'; SELECT asyncmig.schedule('long', 'SELECT pg_sleep(1)')"),
	'FINISHED', 'cancel() of an ended row, left open, does not lock it');
$a->query_safe('COMMIT');

# a PREPAREd transaction that only looked holds nothing
$node->safe_psql('postgres', "SELECT asyncmig.schedule('long2', 'SELECT pg_sleep(1)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long2'");
$node->safe_psql('postgres',
	"BEGIN; SELECT asyncmig.schedule('long2', 'SELECT pg_sleep(1)'); SELECT asyncmig.cancel('next'); PREPARE TRANSACTION 'looked'");
ends_within('long2', 'a PREPAREd transaction that only looked does not keep the run from ending');
$node->safe_psql('postgres', "ROLLBACK PREPARED 'looked'");

# a transaction whose call changed or locked a row cannot be PREPAREd
$node->safe_psql('postgres', "SELECT asyncmig.schedule('long3', 'SELECT pg_sleep(2)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long3'");
my ($rc, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT asyncmig.cancel('long3'); PREPARE TRANSACTION 'changed'");
like($err, qr/cannot PREPARE a transaction that called asyncmig/, 'PREPARE after cancel() of a running one is refused');
$node->safe_psql('postgres', "SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('sched', 'SELECT 1')");
($rc, $out, $err) = $node->psql('postgres',
	"BEGIN; SELECT asyncmig.cancel('sched'); PREPARE TRANSACTION 'changed2'");
like($err, qr/cannot PREPARE a transaction that called asyncmig/, 'PREPARE after cancel() of a scheduled one is refused');
is(status_of('sched'), 'SCHEDULED', '... and the cancel was rolled back');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', 'nothing prepared');

# cancel() of a running migration left open does not hold up the worker either
$node->safe_psql('postgres', "SELECT asyncmig.schedule('long4', 'SELECT pg_sleep(1)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long4'");
$a->query_safe("BEGIN; SELECT asyncmig.cancel('long4')");
$node->safe_psql('postgres', "SELECT asyncmig.schedule('next4', 'SELECT 1')");
ends_within('long4', 'an uncommitted cancel() does not keep the run from ending');
ends_within('next4', '... nor the next migration from running');
$a->query_safe('COMMIT');

# a user's lock on a queued row does not keep the worker from the others:
# the dependency check skips it and comes back
$node->safe_psql('postgres', "SELECT asyncmig.schedule('dep_fails', 'SELECT 1/0')");
$node->psql('postgres', "CALL asyncmig.wait('dep_fails')");
$a->query_safe("BEGIN");
$a->query_safe("SELECT asyncmig.schedule('dependent', 'SELECT 1', depends_on => '{dep_fails}')");
$a->query_safe("COMMIT");
my $b = $node->background_psql('postgres');
$b->query_safe("BEGIN; SELECT 1 FROM asyncmig.migration WHERE name = 'dependent' FOR UPDATE");
$node->safe_psql('postgres', "SELECT asyncmig.schedule('free', 'SELECT 1')");
ends_within('free', 'a locked dependent row does not hold up the claim of another migration');
$b->query_safe('COMMIT');
$node->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'dependent'");
like($node->safe_psql('postgres', "SELECT meta->'error'->>'message' FROM asyncmig.migration WHERE name = 'dependent'"),
	qr/dependency "dep_fails" ended in ERROR/, 'and it is ended once the lock is gone');

# a superuser's lock on a running row: the worker's bookkeeping waits in
# bounded tries and ends the row when the lock is gone
$node->safe_psql('postgres', "SELECT asyncmig.schedule('long5', 'SELECT pg_sleep(0.5)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long5'");
$b->query_safe("BEGIN; SELECT 1 FROM asyncmig.migration WHERE name = 'long5' FOR UPDATE");
sleep(2);
$b->query_safe('COMMIT');
ends_within('long5', 'the run ends once the lock is released');
$a->quit;
$b->quit;

$node->stop;
done_testing();
