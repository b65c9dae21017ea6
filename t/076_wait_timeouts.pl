# Copyright (c) asyncmig developers
#
# Waiting under a web-tuned statement_timeout, and
# polling without errors.
# - wait() and wait_for() are not bounded by the caller's statement_timeout
#   or lock_timeout (set on the database for the application role), and
#   restore statement_timeout for what the statement does after the wait;
#   wait()'s own timeout stays an error (57014).
# - wait_for(name, timeout) returns the status: no error for a timeout or
#   a failed migration; errors for what is wrong in the call itself.
# - Polling a 20-second migration in 2-second slices with wait_for(), as
#   the Django package does, writes no ERROR line in the server log.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('waits', extension => 1);
asyncmig_app_role($node, 'app');
$node->safe_psql('postgres', q{
	ALTER ROLE app IN DATABASE postgres SET statement_timeout = '1s';
	ALTER ROLE app IN DATABASE postgres SET lock_timeout = '1s'});

# psql as the application role: (exit code, stdout, stderr), and as a test
sub app_psql { return asyncmig_app_psql($node, 'app', @_) }
sub app_ok { return asyncmig_app_ok($node, 'app', @_) }

sub app_fails
{
	my ($sql, $re, $what) = @_;
	my ($ret, $out, $err) = app_psql($sql);
	isnt($ret, 0, "$what: fails");
	like($err, $re, "$what: the error");
	return $err;
}

# the setting is really there: a query of the app's is canceled after 1 s
app_fails('SELECT pg_sleep(3)', qr/canceling statement due to statement timeout/,
	'statement_timeout = 1s applies to the app role');
asyncmig_allow_log(qr/ERROR:  canceling statement due to statement timeout/ =>
	'the test shows that statement_timeout applies, and that it is restored after a wait');

# 1. a migration that takes 5 s, waited for under statement_timeout = 1s
app_ok(q{SELECT asyncmig.schedule('slow_named', 'SELECT pg_sleep(5)')}, 'schedule a 5 s migration');
app_ok(q{CALL asyncmig.wait('slow_named', '60s')}, 'a named wait() outlives statement_timeout');
is($node->safe_psql('postgres', q{SELECT status FROM asyncmig.migration WHERE name = 'slow_named'}),
	'FINISHED', 'and returns when it finished');

app_ok(q{SELECT asyncmig.schedule('slow_all', 'SELECT pg_sleep(5)')}, 'schedule another');
app_ok(q{CALL asyncmig.wait()}, 'an unnamed wait() outlives statement_timeout');
is($node->safe_psql('postgres', q{SELECT status FROM asyncmig.migration WHERE name = 'slow_all'}),
	'FINISHED', 'and returns when it finished');

app_ok(q{SELECT asyncmig.schedule('slow_poll', 'SELECT pg_sleep(5)')}, 'and another');
is(app_ok(q{CALL asyncmig.wait_for('slow_poll', '60s')}), 'FINISHED',
	'wait_for() outlives statement_timeout');

# the statement that called the wait has its statement_timeout back after
app_ok(q{SELECT asyncmig.schedule('slow_do', 'SELECT pg_sleep(3)')}, 'and another');
app_fails(q{DO $$BEGIN CALL asyncmig.wait('slow_do', '60s'); PERFORM pg_sleep(3); END$$},
	qr/canceling statement due to statement timeout/,
	'after the wait, the rest of the statement is under statement_timeout again');
is($node->safe_psql('postgres', q{SELECT status FROM asyncmig.migration WHERE name = 'slow_do'}),
	'FINISHED', 'the wait itself ended with the migration');

# lock_timeout: a look at the table waits for a lock held longer than it
asyncmig_allow_log(qr/ERROR:  canceling statement due to lock timeout/ =>
	'the test holds asyncmig.migration locked for 2 s: a worker\'s bookkeeping that comes then gives up after its bounded wait and tries again');
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK asyncmig.migration IN ACCESS EXCLUSIVE MODE');
my $waiter = $node->background_psql('postgres', extra_params => [ '-U', 'app' ]);
$waiter->query_until(qr/started/, q{\echo started
CALL asyncmig.wait_for('slow_named', '60s');
});
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE usename = 'app' AND wait_event_type = 'Lock'})
  or die 'the wait never waited for the lock';
sleep 2;    # longer than lock_timeout = 1s
$locker->query_safe('COMMIT');
$locker->quit;
like($waiter->query_safe(q{SELECT 'after'}), qr/after/, 'wait_for() waited past lock_timeout for a lock');
$waiter->quit;

# wait()'s own timeout is still an error
app_ok(q{SELECT asyncmig.schedule('too_slow', 'SELECT pg_sleep(4)')}, 'schedule a 4 s migration');
app_fails(q{CALL asyncmig.wait('too_slow', '500 ms')},
	qr/ERROR:  timed out waiting for asyncmig migration "too_slow"/, 'wait() with its own timeout');
asyncmig_allow_log(qr/ERROR:  timed out waiting for asyncmig migration "too_slow"/ =>
	'the test lets wait() time out');

# 2. wait_for(): the status, no error for what is not an error
is(app_ok(q{CALL asyncmig.wait_for('too_slow', '0')}), 'IN PROGRESS',
	'wait_for() with timeout 0 looks once');
is(app_ok(q{CALL asyncmig.wait_for('too_slow', '100 ms')}), 'IN PROGRESS',
	'at its timeout, the status of a migration still running');
is(app_ok(q{CALL asyncmig.wait_for('too_slow')}), 'FINISHED', 'with no timeout, until it ended');
app_ok(q{SELECT asyncmig.schedule('fails', 'SELECT 1/0')}, 'schedule a failing migration');
is(app_ok(q{CALL asyncmig.wait_for('fails', '60s')}), 'ERROR', 'a failed migration: ERROR, no error');
app_ok(q{SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('later', 'SELECT 1')},
	'schedule a SCHEDULED one');
is(app_ok(q{CALL asyncmig.wait_for('later', '60s')}), 'SCHEDULED', 'SCHEDULED: at once');
app_fails(q{CALL asyncmig.wait_for('ghost', '1s')}, qr/ERROR:  migration "ghost" does not exist/,
	'an unknown name');
app_fails(q{CALL asyncmig.wait_for(NULL, '1s')}, qr/ERROR:  name must not be null/, 'a NULL name');
app_fails(q{CALL asyncmig.wait_for('later', '-1s')}, qr/ERROR:  timeout must not be negative/,
	'a negative timeout');
app_fails(q{BEGIN; CALL asyncmig.wait_for('later', '1s')},
	qr/ERROR:  asyncmig.wait_for\(\) cannot run inside a transaction block/, 'in a transaction block');
asyncmig_allow_log(
	qr/ERROR:  migration "ghost" does not exist/ => 'the test calls wait_for() wrongly',
	qr/ERROR:  name must not be null/ => 'the test calls wait_for() wrongly',
	qr/ERROR:  timeout must not be negative/ => 'the test calls wait_for() wrongly',
	qr/ERROR:  asyncmig.wait_for\(\) cannot run inside a transaction block/ => 'the test calls wait_for() wrongly');

# 3. polling a 20 s migration in 2 s slices logs no ERROR
app_ok(q{SELECT asyncmig.schedule('long', 'SELECT pg_sleep(20)')}, 'schedule a 20 s migration');
my $offset = -s $node->logfile;
my @seen;
for my $slice (1 .. 30)
{
	my $status = app_ok(q{CALL asyncmig.wait_for('long', '2s')});
	push @seen, $status;
	last unless $status eq 'STARTED' || $status eq 'IN PROGRESS';
}
is($seen[-1], 'FINISHED', 'polled until it finished');
cmp_ok(scalar(grep { $_ eq 'IN PROGRESS' } @seen), '>=', 5,
	'over several slices (' . scalar(@seen) . ')');
my @errors = grep { /ERROR:/ } split /\n/, slurp_file($node->logfile, $offset);
is(scalar(@errors), 0, 'no ERROR line in the server log meanwhile') or diag(join("\n", @errors));

$node->stop;
done_testing();
