# Copyright (c) asyncmig developers
#
# The application side runs as a role that is not a
# superuser and has exactly what docs/grants.sql gives (asyncmig_app_role()).
# With those grants alone it schedules, runs, cancels, waits and polls; it
# reads its rows in the view and not the table; and a migration whose
# dependency nothing runs gives up after asyncmig.dependency_timeout with
# the message a superuser gets.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('app', conf => qq{
asyncmig.dependency_timeout = '3s'
}, extension => 1);
asyncmig_app_role($node, 'app');
asyncmig_app_role($node, 'other', create_in => undef);

# psql as the application role: (exit code, stdout, stderr), and as a test
sub app_psql { return asyncmig_app_psql($node, 'app', @_) }
sub app_ok { return asyncmig_app_ok($node, 'app', @_) }

# 1. exactly the documented grants: every routine the recipe names, and
# nothing of the table
is($node->safe_psql('postgres', q{
	SELECT string_agg(p.proname, ' ' ORDER BY p.proname)
	FROM pg_catalog.pg_proc p
	WHERE p.pronamespace = 'asyncmig'::regnamespace
	  AND pg_catalog.has_function_privilege('app', p.oid, 'EXECUTE')}),
	'cancel run schedule schedule_batches wait wait_for',
	'docs/grants.sql grants EXECUTE on exactly the calls an application makes');
is($node->safe_psql('postgres', q{
	SELECT pg_catalog.has_table_privilege('app', 'asyncmig.status', 'SELECT'),
	       pg_catalog.has_table_privilege('app', 'asyncmig.migration', 'SELECT')}),
	't|f', 'it reads the view, not the table');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'app'}),
	'f', 'the application role is not a superuser');

# 2. with those grants alone it does what an application does
app_ok(q{CREATE TABLE t (id int PRIMARY KEY, a int);
	INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g}, 'the app creates its table');
app_ok(q{SELECT asyncmig.schedule('app_index', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a)')},
	'schedule');
app_ok(q{CALL asyncmig.wait('app_index', '60s')}, 'wait');
is($node->safe_psql('postgres',
	q{SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a'::regclass}),
	't', 'the index is built and valid');
app_ok(q{SELECT asyncmig.schedule_batches('app_batches', 't', 'UPDATE t SET a = a + 1 WHERE id BETWEEN $1 AND $2', batch_size => 300)},
	'schedule_batches');
is(app_ok(q{CALL asyncmig.wait_for('app_batches', '60s')}, 'wait_for'),
	'FINISHED', 'wait_for returns the status');
is($node->safe_psql('postgres', 'SELECT count(*) FROM t WHERE a = id + 1'),
	'1000', 'every row updated exactly once');
app_ok(q{SELECT asyncmig.run('app_index')}, 'run again');
app_ok(q{CALL asyncmig.wait('app_index', '60s')}, 'and wait');
app_ok(q{SET asyncmig.allow_scheduled_migrations = on;
	SELECT asyncmig.schedule('app_later', 'SELECT 1')}, 'schedule a SCHEDULED one');
is(app_ok(q{SELECT asyncmig.cancel('app_later')}, 'cancel'), 'ERROR', 'canceled');
is(app_ok(q{SELECT string_agg(name || ':' || status, ' ' ORDER BY name) FROM asyncmig.status}),
	'app_batches:FINISHED app_index:FINISHED app_later:ERROR',
	'it sees its rows in the view');
my ($ret, $out, $err) = app_psql('SELECT count(*) FROM asyncmig.migration');
like($err, qr/permission denied for table migration/, 'but not the table');
asyncmig_allow_log(qr/ERROR:  permission denied for table migration/ =>
	'the test checks that the app role cannot read the table');

# another role's migration is not the app's to wait for or poll
$node->safe_psql('postgres', q{SET ROLE other; SELECT asyncmig.schedule('others', 'SELECT 1')});
$node->safe_psql('postgres', q{CALL asyncmig.wait('others', '60s')});
($ret, $out, $err) = app_psql(q{CALL asyncmig.wait_for('others', '1s')});
like($err, qr/permission denied to wait for migration "others"/,
	'wait_for() on another role\'s migration: 42501');
asyncmig_allow_log(qr/ERROR:  permission denied to wait for migration "others"/ =>
	'the test polls another role\'s migration');

# 3. a dependency that nothing runs: after asyncmig.dependency_timeout the
# wait ends with the message a superuser gets, NOTICE first
app_ok(q{SELECT asyncmig.schedule('blocked', 'SELECT 1', depends_on => '{ghost}')},
	'schedule a migration whose dependency nothing runs');
($ret, $out, $err) = app_psql(q{CALL asyncmig.wait('blocked', '60s')});
isnt($ret, 0, 'the wait gives up');
like($err, qr/NOTICE:  migration "blocked" is waiting for dependency "ghost"/,
	'it says what it waits for');
like($err, qr/ERROR:  asyncmig migration "blocked" ended in ERROR: dependency "ghost" was never scheduled/,
	'and ends with the clear message');
asyncmig_allow_log(qr/ERROR:  asyncmig migration "blocked" ended in ERROR/ =>
	'the test makes the wait fail');
is(app_ok(q{CALL asyncmig.wait_for('blocked', '0')}), 'ERROR',
	'wait_for() tells the failure without an error');

$node->stop;
done_testing();
