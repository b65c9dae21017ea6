# Copyright (c) asyncmig developers
#
# Upgrades of asyncmig itself: install 1.0, schedule and run work with
# today's library, queue a run, grant to a role, ALTER EXTENSION asyncmig
# UPDATE.  History, queued and scheduled runs and grants survive (also in
# pg_dump), the queued run runs, and the updated database has the same
# objects as a fresh install of the new version.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('upgrade');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql("CREATE EXTENSION asyncmig VERSION '1.0'");
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'asyncmig'"), '1.0', 'installed 1.0');

# 1.0 works with today's library: schedule, run, run again
sql("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
sql("INSERT INTO t (id) SELECT generate_series(1, 1000)");
sql("SELECT asyncmig.schedule('done', 'UPDATE t SET n = n + 1', 'UPDATE t SET n = 0')");
sql("CALL asyncmig.wait('done')");
sql("SELECT asyncmig.run('done', true)");
sql("CALL asyncmig.wait('done')");
sql("SELECT asyncmig.run('done')");
sql("CALL asyncmig.wait('done')");
is(sql("SELECT status || ' ' || direction FROM asyncmig.migration WHERE name = 'done'"), 'FINISHED forwards',
	'1.0: schedule, run backwards and forwards');
is(sql("SELECT sum(n) FROM t"), '1000', '1.0: the SQL ran');
my $history = sql("SELECT id, status, started_at, finished_at FROM asyncmig.migration WHERE name = 'done'");

# a queued run that starts after the update, a scheduled one, a role's own
sql("SELECT asyncmig.schedule('queued', 'CREATE TABLE queued_ran (a int)', not_before => now() + interval '3 seconds')");
sql("SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('sched', 'CREATE TABLE sched_ran (a int)')");
sql(qq{
CREATE ROLE app LOGIN;
GRANT USAGE, CREATE ON SCHEMA public TO app;
GRANT USAGE ON SCHEMA asyncmig TO app;
GRANT EXECUTE ON FUNCTION asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval) TO app;
GRANT EXECUTE ON FUNCTION asyncmig.run(text, boolean) TO app;
GRANT EXECUTE ON FUNCTION asyncmig.cancel(text) TO app;
GRANT EXECUTE ON PROCEDURE asyncmig.wait(text, interval) TO app;
GRANT SELECT ON asyncmig.status TO app;
});
$node->safe_psql('postgres', "SELECT asyncmig.schedule('app_m', 'CREATE TABLE IF NOT EXISTS app_t (a int)'); ", extra_params => [ '-U', 'app' ]);
$node->safe_psql('postgres', "CALL asyncmig.wait('app_m')", extra_params => [ '-U', 'app' ]);
is(sql("SELECT status FROM asyncmig.migration WHERE name = 'app_m'"), 'FINISHED', '1.0: a granted role schedules');

# the update
sql("ALTER EXTENSION asyncmig UPDATE");
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'asyncmig'"), '1.2', 'updated to 1.2');

is(sql("SELECT id, status, started_at, finished_at FROM asyncmig.migration WHERE name = 'done'"), $history,
	'history survives');
is(sql("SELECT status FROM asyncmig.migration WHERE name = 'sched'"), 'SCHEDULED', 'a SCHEDULED row survives');
is(sql("SELECT status FROM asyncmig.migration WHERE name = 'queued'"), 'STARTED', 'a queued row survives');
sql("CALL asyncmig.wait('queued')");
is(sql("SELECT status FROM asyncmig.migration WHERE name = 'queued'"), 'FINISHED', 'and runs after the update');
ok(sql("SELECT to_regclass('queued_ran') IS NOT NULL") eq 't', 'its SQL ran');

# grants survive, on the new run() too
for my $f ('asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval)',
	'asyncmig.run(text, boolean, boolean)', 'asyncmig.cancel(text)')
{
	is(sql("SELECT has_function_privilege('app', '$f', 'EXECUTE')"), 't', "app may still execute $f");
}
is(sql("SELECT has_table_privilege('app', 'asyncmig.status', 'SELECT')"), 't', 'app may still read asyncmig.status');
is(sql("SELECT has_function_privilege('app', 'asyncmig.schedule_batches(text, regclass, text, text, integer, interval, name, boolean, text[], timestamptz, interval)', 'EXECUTE')"),
	'f', 'nobody was given schedule_batches() by the update');
is(sql("SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a WHERE p.oid = 'asyncmig.run'::regproc AND a.grantee = 0"), '0',
	'run() is not executable by PUBLIC');
$node->safe_psql('postgres', "SELECT asyncmig.run('app_m')", extra_params => [ '-U', 'app' ]);
$node->safe_psql('postgres', "CALL asyncmig.wait('app_m')", extra_params => [ '-U', 'app' ]);
is($node->safe_psql('postgres', "SELECT status || ' ' || attempts FROM asyncmig.status WHERE name = 'app_m'", extra_params => [ '-U', 'app' ]),
	'FINISHED 1', 'app runs its migration through the new run()');

# pg_dump still dumps the grant given on run() as the user's
my ($stdout, $stderr);
IPC::Run::run([ 'pg_dump', '-s', '-d', $node->connstr('postgres') ], '>', \$stdout, '2>', \$stderr);
like($stdout, qr/GRANT ALL ON FUNCTION asyncmig\.run\(name text, backwards boolean, restart boolean\) TO app;/,
	'pg_dump keeps the grant on run()');

# the new version works in the updated database
sql("SELECT asyncmig.schedule_batches('batched', 't', 'UPDATE t SET n = n + 1 WHERE id BETWEEN \$1 AND \$2', batch_size => 100)");
sql("CALL asyncmig.wait('batched')");
is(sql("SELECT count(*) FROM t WHERE n = 2"), '1000', 'schedule_batches() works after the update');
is(sql("SELECT progress FROM asyncmig.status WHERE name = 'batched'"), '10 batches: 1000 rows', 'and shows in the status view');

# same objects as a fresh install of the new version
sql("CREATE DATABASE fresh");
$node->safe_psql('fresh', 'CREATE EXTENSION asyncmig');
my $members = q{SELECT string_agg(pg_describe_object(classid, objid, objsubid), E'\n' ORDER BY 1)
	FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'asyncmig')};
is(sql($members), $node->safe_psql('fresh', $members), 'updated and fresh installs have the same members');
my $cols = q{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
	FROM pg_attribute WHERE attrelid = 'asyncmig.migration'::regclass AND attnum > 0 AND NOT attisdropped};
is(sql($cols), $node->safe_psql('fresh', $cols), 'and the same columns');
my $view = q{SELECT pg_get_viewdef('asyncmig.status'::regclass)};
is(sql($view), $node->safe_psql('fresh', $view), 'and the same status view');

done_testing();
