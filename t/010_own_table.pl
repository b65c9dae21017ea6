# Copyright (c) asyncmig developers
#
# The worker and the functions reach the extension's own table, never
# whatever is named asyncmig.migration now, and a worker's bookkeeping
# touches only the row it claimed.
#
# 1. Schema squatting: a database owner creates the schema asyncmig before
#    a superuser runs CREATE EXTENSION, later renames it and puts its own
#    asyncmig.migration there, with a row owned by the superuser.  The
#    install must refuse such a schema; an install that already happened
#    (1.0 allowed it) must not run the squatter's rows.
# 2. DROP EXTENSION while a migration runs, CREATE EXTENSION again and a new
#    migration with the same id: the old worker must not mark it FINISHED.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

# errors the test causes on purpose: a schema or a table of asyncmig that
# another role owns or could capture is refused
asyncmig_allow_log(
	qr/ERROR:  schema "asyncmig" (is owned by role "dbo", not by a superuser|grants CREATE to role "dbo"|holds objects owned by role "dbo")/ =>
	  'CREATE EXTENSION refuses a schema another role controls',
	qr/ERROR:  must be owner of schema asyncmig/ => 'dbo may not rename the schema',
	qr/ERROR:  asyncmig.migration is not the table of extension asyncmig/ => 'a replaced table is not used');

my $node = asyncmig_node('own_table');

$node->safe_psql('postgres', q{
CREATE ROLE dbo LOGIN;
CREATE DATABASE squat OWNER dbo;
CREATE DATABASE legacy OWNER dbo;
CREATE DATABASE again;
});

# the squatter's copy of the table, with a row that would make it superuser
my $fake_table = q{
CREATE TABLE asyncmig.migration (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE,
  status text NOT NULL DEFAULT 'STARTED', direction text NOT NULL DEFAULT 'forwards',
  forwards_sql text NOT NULL, backwards_sql text, owner regrole NOT NULL,
  database name NOT NULL DEFAULT current_database(), search_path text NOT NULL,
  attempts integer NOT NULL DEFAULT 0, meta jsonb NOT NULL DEFAULT '{}', depends_on text[],
  not_before timestamptz, timeout interval, created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, finished_at timestamptz);
INSERT INTO asyncmig.migration (name, forwards_sql, owner, search_path, meta)
VALUES ('evil', 'ALTER ROLE dbo SUPERUSER', 'postgres', 'public',
  jsonb_build_object('origin', jsonb_build_object(
    'system', (SELECT system_identifier::text FROM pg_control_system()),
    'datid', (SELECT oid::bigint FROM pg_database WHERE datname = current_database()))));
};

# 1a. the install refuses a schema squatted by a non-superuser
$node->safe_psql('squat', 'CREATE SCHEMA asyncmig', extra_params => [ '-U', 'dbo' ]);
my ($ret, $out, $err) = $node->psql('squat', 'CREATE EXTENSION asyncmig');
isnt($ret, 0, 'CREATE EXTENSION refuses a schema asyncmig owned by a non-superuser');
like($err, qr/schema "asyncmig" is owned by role "dbo", not by a superuser/, '... and says why');
is($node->safe_psql('squat', "SELECT count(*) FROM pg_extension WHERE extname = 'asyncmig'"), '0',
	'... and nothing is installed');
# a superuser's schema that lets others create in it is refused too
$node->safe_psql('squat', 'DROP SCHEMA asyncmig', extra_params => [ '-U', 'dbo' ]);
$node->safe_psql('squat', 'CREATE SCHEMA asyncmig; GRANT CREATE ON SCHEMA asyncmig TO dbo');
($ret, $out, $err) = $node->psql('squat', 'CREATE EXTENSION asyncmig');
isnt($ret, 0, 'CREATE EXTENSION refuses a schema asyncmig where another role may create');
like($err, qr/grants CREATE to role "dbo"/, '... and says why');
# objects another role left there while it could create are refused too
$node->safe_psql('squat', 'CREATE FUNCTION asyncmig.planted() RETURNS int LANGUAGE sql AS $$SELECT 1$$',
	extra_params => [ '-U', 'dbo' ]);
$node->safe_psql('squat', 'REVOKE CREATE ON SCHEMA asyncmig FROM dbo');
($ret, $out, $err) = $node->psql('squat', 'CREATE EXTENSION asyncmig');
isnt($ret, 0, 'CREATE EXTENSION refuses a schema asyncmig with objects of another role');
like($err, qr/holds objects owned by role "dbo"/, '... and says why');
# a superuser's own schema is fine
$node->safe_psql('squat', 'DROP FUNCTION asyncmig.planted()');
$node->safe_psql('squat', 'CREATE EXTENSION asyncmig');
($ret, $out, $err) = $node->psql('squat', 'ALTER SCHEMA asyncmig RENAME TO mine', extra_params => [ '-U', 'dbo' ]);
isnt($ret, 0, 'the database owner cannot rename the installed schema');

# 1b. an install that happened before the check (1.0 into a squatted schema)
$node->safe_psql('legacy', 'CREATE SCHEMA asyncmig', extra_params => [ '-U', 'dbo' ]);
$node->safe_psql('legacy', "CREATE EXTENSION asyncmig VERSION '1.0'");
# a schema its owner could swap is refused before anything else happens
($ret, $out, $err) = $node->psql('legacy', "SELECT asyncmig.schedule('early', 'SELECT 1')");
like($err, qr/schema is owned by role "dbo", which is not a superuser/, 'the functions refuse a schema owned by a non-superuser');
($ret, $out, $err) = $node->psql('legacy', "ALTER EXTENSION asyncmig UPDATE");
like($err, qr/schema "asyncmig" is owned by role "dbo", not by a superuser/, 'and so does the update to 1.1');
$node->safe_psql('legacy', "ALTER SCHEMA asyncmig RENAME TO am_old; CREATE SCHEMA asyncmig; $fake_table",
	extra_params => [ '-U', 'dbo' ]);
($ret, $out, $err) = $node->psql('legacy', "SELECT am_old.schedule('wake', 'SELECT 1')");
isnt($ret, 0, 'the functions refuse a table that is not the extension\'s');
like($err, qr/asyncmig\.migration is not the table of extension asyncmig/, '... and say why');
# the launcher looks at every database when it starts: the worker must not run it
$node->restart;
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'");
sleep(2);
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbo'"), 'f',
	'the squatter\'s row did not run as superuser');
is($node->safe_psql('legacy', "SELECT status FROM asyncmig.migration WHERE name = 'evil'"), 'STARTED',
	'the worker did not touch the squatter\'s table');
ok($node->log_contains('asyncmig\.migration is not the table of extension asyncmig'),
	'the worker logged why it left the database');

# 2. DROP EXTENSION during a run, CREATE EXTENSION, a new row with the same id
$node->safe_psql('again', 'CREATE EXTENSION asyncmig');
$node->safe_psql('again', "SELECT asyncmig.schedule('long', 'SELECT pg_sleep(3); CREATE TABLE long_went_on (a int)')");
$node->poll_query_until('again', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long'")
  or die 'long never started';
$node->safe_psql('again', 'DROP EXTENSION asyncmig; CREATE EXTENSION asyncmig');
$node->safe_psql('again', "SELECT asyncmig.schedule('victim', 'CREATE TABLE victim_ran (a int)')");
is($node->safe_psql('again', "SELECT id FROM asyncmig.migration WHERE name = 'victim'"), '1',
	'the new migration got the id of the one that runs');
$node->safe_psql('again', "CALL asyncmig.wait('victim')");
is($node->safe_psql('again', "SELECT status || ' ' || (to_regclass('victim_ran') IS NOT NULL) FROM asyncmig.migration WHERE name = 'victim'"),
	'FINISHED true', 'the new migration ran: FINISHED only after its own run');
is($node->safe_psql('again', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'asyncmig worker'"), '0',
	'the old worker stopped');
is($node->safe_psql('again', "SELECT to_regclass('long_went_on') IS NULL"), 't',
	'... before the next statement of a run whose row was dropped');
ok($node->log_contains('asyncmig\.migration was dropped while this worker ran a migration of it'),
	'... and said why');

$node->stop;
done_testing();
