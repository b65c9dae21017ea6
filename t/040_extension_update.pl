# Copyright: asyncmig
#
# Upgrades of asyncmig itself: install the oldest version (1.0), record
# history, queue work, grant, then ALTER EXTENSION asyncmig UPDATE to the
# default version, and check that history, queued runs and grants survive
# and that the queued run then runs.  Also checks that every version has a
# path from 1.0 (each SQL change after 1.0 comes as asyncmig--X--Y.sql).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upd');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'asyncmig'
max_worker_processes = 16
});
$node->start;

# the default version, and how PostgreSQL reaches it from 1.0
my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'asyncmig'");
my $path = $node->safe_psql('postgres',
	"SELECT path FROM pg_extension_update_paths('asyncmig') WHERE source = '1.0' AND target = '$default'");
isnt($path, '', "an update path from 1.0 to $default: $path");

$node->safe_psql('postgres', q{
CREATE EXTENSION asyncmig VERSION '1.0';
CREATE ROLE app LOGIN;
CREATE ROLE viewer;
GRANT SELECT ON asyncmig.status TO viewer;
GRANT USAGE ON SCHEMA asyncmig TO app;
GRANT EXECUTE ON FUNCTION asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval) TO app;
CREATE TABLE t AS SELECT g AS id, g % 11 AS k FROM generate_series(1, 20000) g;
ALTER TABLE t OWNER TO app;
GRANT CREATE ON SCHEMA public TO app;
});
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'asyncmig'"),
	'1.0', 'installed at 1.0');

# history: a finished run; queued: one a few seconds away; a scheduled one
$node->safe_psql('postgres',
	"SELECT asyncmig.schedule('u.done', 'CREATE INDEX CONCURRENTLY t_k_idx ON t (k)', 'DROP INDEX CONCURRENTLY IF EXISTS t_k_idx')");
$node->safe_psql('postgres', "CALL asyncmig.wait('u.done')");
$node->safe_psql('postgres',
	"SET ROLE app; SELECT asyncmig.schedule('u.queued', 'CREATE INDEX CONCURRENTLY t_id_idx ON t (id)', not_before => now() + interval '8 seconds')");
$node->safe_psql('postgres',
	"SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('u.scheduled', 'CREATE INDEX CONCURRENTLY t_idk_idx ON t (id, k)')");

my $rows_q = "SELECT string_agg(name || ':' || status || ':' || owner::regrole::text, ' ' ORDER BY name) FROM asyncmig.migration";
my $before = $node->safe_psql('postgres', $rows_q);
is($before, 'u.done:FINISHED:postgres u.queued:STARTED:app u.scheduled:SCHEDULED:postgres',
	'before the update: history, a queued run, a scheduled run');
my $done_before = $node->safe_psql('postgres',
	"SELECT started_at || ' ' || finished_at FROM asyncmig.migration WHERE name = 'u.done'");

$node->safe_psql('postgres', 'ALTER EXTENSION asyncmig UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'asyncmig'"),
	$default, "updated to $default");

is($node->safe_psql('postgres', $rows_q), $before, 'after the update: the same rows, statuses and owners');
is($node->safe_psql('postgres',
	"SELECT started_at || ' ' || finished_at FROM asyncmig.migration WHERE name = 'u.done'"),
	$done_before, 'history unchanged');
is($node->safe_psql('postgres', "SELECT has_table_privilege('viewer', 'asyncmig.status', 'SELECT')"),
	't', 'a grant on the status view survives');
is($node->safe_psql('postgres',
	"SELECT has_function_privilege('app', 'asyncmig.schedule(text, text, text, boolean, text[], timestamptz, interval)', 'EXECUTE')"),
	't', 'a grant of EXECUTE survives');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'asyncmig' AND has_function_privilege('public', p.oid, 'EXECUTE')"),
	'0', 'no function of the updated extension is executable by PUBLIC');

# the queued run runs after the update, as its owner
$node->safe_psql('postgres', "CALL asyncmig.wait('u.queued')");
is($node->safe_psql('postgres',
	"SELECT m.status || ' ' || i.indisvalid || ' ' || c.relowner::regrole::text
	   FROM asyncmig.migration m, pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	  WHERE m.name = 'u.queued' AND i.indexrelid = 't_id_idx'::regclass"),
	'FINISHED true app', 'the queued run runs after the update');
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'u.scheduled'"),
	'SCHEDULED', 'the scheduled run still waits for run()');
$node->safe_psql('postgres', "SELECT asyncmig.run('u.scheduled')");
$node->safe_psql('postgres', "CALL asyncmig.wait('u.scheduled')");
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'u.scheduled'"),
	'FINISHED', 'and runs when run() asks');

# backwards of a migration recorded before the update
$node->safe_psql('postgres', "SELECT asyncmig.run('u.done', backwards => true)");
$node->safe_psql('postgres', "CALL asyncmig.wait('u.done')");
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_k_idx'"),
	'0', 'a migration recorded at 1.0 runs backwards after the update');

$node->stop;
done_testing();
