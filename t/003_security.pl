# Copyright (c) asyncmig developers
#
# Security and robustness around what asyncmig does not control: the
# install script's rules, pg_dump/pg_restore (a restored database must not
# start executing on its own), DROP EXTENSION while a migration runs, and
# databases dropped with queued or running migrations.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;
use Time::HiRes qw(usleep);

my $node = asyncmig_node('sec');

# the installed script follows the extension security rules
# (pg_config of the installation under test is first in PATH; config_data()
# is not in PostgreSQL 13's and 14's test modules)
my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
my $script = slurp_file("$sharedir/extension/asyncmig--1.0.sql");
$script =~ s/--[^\n]*//g;
$script =~ s{/\*.*?\*/}{}gs;
unlike($script, qr/CREATE\s+OR\s+REPLACE/i, 'install script: no CREATE OR REPLACE');
unlike($script, qr/IF\s+NOT\s+EXISTS/i, 'install script: no IF NOT EXISTS');
my @secdef = ($script =~ /(SECURITY\s+DEFINER[^;]*;)/gis);
is(scalar(grep { !/SET\s+search_path\s*=\s*pg_catalog,\s*pg_temp/i } @secdef), 0,
	'install script: every SECURITY DEFINER function pins search_path');
unlike($script, qr/GRANT[^;]*TO\s+PUBLIC/i, 'install script: nothing granted to PUBLIC');

sub launcher_pid
{
	return $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'asyncmig launcher'");
}
my $launcher = launcher_pid();
ok($launcher, 'launcher runs');

# pg_dump / pg_restore: the history is kept; queued rows do not run
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION asyncmig');
$node->safe_psql('src', "SELECT asyncmig.schedule('done', 'CREATE TABLE done_here (a int)')");
$node->safe_psql('src', "CALL asyncmig.wait('done')");
$node->safe_psql('src', "SET asyncmig.allow_scheduled_migrations = on; SELECT asyncmig.schedule('sched', 'CREATE TABLE sched_ran (a int)')");
$node->safe_psql('src', "SELECT asyncmig.schedule('queued', 'CREATE TABLE queued_ran (a int)', not_before => now() + interval '4 seconds')");
my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore');
# (the restore registers the database: a worker may have ended 'queued' already)
like($node->safe_psql('dst', q{SELECT string_agg(name || ':' || status, ' ' ORDER BY name) FROM asyncmig.migration}),
	qr/^done:FINISHED queued:(STARTED|ERROR) sched:SCHEDULED$/, 'the restored database has the history');
# a worker ends the restored queued row (the restore registers the database)
$node->restart;
$node->poll_query_until('dst', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'queued'")
  or die 'restored queued row not handled';
like($node->safe_psql('dst', "SELECT meta->'error'->>'message' FROM asyncmig.migration WHERE name = 'queued'"),
	qr/^not run: it was queued in another database or cluster/, 'a restored queued row ends ERROR without running');
$node->safe_psql('src', "CALL asyncmig.wait('queued')");
is($node->safe_psql('src', "SELECT status FROM asyncmig.migration WHERE name = 'queued'"), 'FINISHED', 'the original ran in its own database');
is($node->safe_psql('dst', "SELECT to_regclass('queued_ran') IS NULL"), 't', 'nothing ran in the restored database');
# and the restored database works: run() there runs it there
$node->safe_psql('dst', "SELECT asyncmig.run('queued')");
$node->safe_psql('dst', "CALL asyncmig.wait('queued')");
is($node->safe_psql('dst', "SELECT to_regclass('queued_ran') IS NOT NULL"), 't', 'asyncmig.run() runs it in the restored database');
# a copy made from a template is another database too
$node->safe_psql('src', "SELECT asyncmig.schedule('copied', 'CREATE TABLE copied_ran (a int)', not_before => now() + interval '3 seconds')");
$node->safe_psql('postgres', 'CREATE DATABASE copy TEMPLATE src');
$node->safe_psql('copy', "SELECT asyncmig.schedule('wake', 'SELECT 1')");
$node->safe_psql('copy', "CALL asyncmig.wait('wake')");
is($node->safe_psql('copy', "SELECT status FROM asyncmig.migration WHERE name = 'copied'"), 'ERROR', 'a row copied by CREATE DATABASE TEMPLATE does not run');

$launcher = launcher_pid();

# DROP EXTENSION while a migration runs: the launcher stays healthy
$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('running', 'SELECT pg_sleep(1.5)')");
$node->poll_query_until('postgres', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'running'");
$node->safe_psql('postgres', 'DROP EXTENSION asyncmig');
usleep(2_500_000);
is(launcher_pid(), $launcher, 'DROP EXTENSION during a run: same launcher');
$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('after_drop', 'SELECT 1')");
$node->safe_psql('postgres', "CALL asyncmig.wait('after_drop')");
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'after_drop'"), 'FINISHED',
	'and migrations run after CREATE EXTENSION again');

# a database dropped with a queued migration, and one dropped (FORCE) while one runs
$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed', 'CREATE EXTENSION asyncmig');
$node->safe_psql('doomed', "SELECT asyncmig.schedule('later', 'SELECT 1', not_before => now() + interval '1 second')");
$node->safe_psql('postgres', 'DROP DATABASE doomed');
$node->safe_psql('postgres', 'CREATE DATABASE doomed2');
$node->safe_psql('doomed2', 'CREATE EXTENSION asyncmig');
$node->safe_psql('doomed2', "SELECT asyncmig.schedule('long', 'SELECT pg_sleep(30)')");
$node->poll_query_until('doomed2', "SELECT status = 'IN PROGRESS' FROM asyncmig.migration WHERE name = 'long'");
$node->safe_psql('postgres', 'DROP DATABASE doomed2 WITH (FORCE)');
usleep(2_000_000);
is(launcher_pid(), $launcher, 'dropped databases: same launcher');
$node->safe_psql('postgres', "SELECT asyncmig.schedule('after_dbs', 'SELECT 1')");
$node->safe_psql('postgres', "CALL asyncmig.wait('after_dbs')");
is($node->safe_psql('postgres', "SELECT status FROM asyncmig.migration WHERE name = 'after_dbs'"), 'FINISHED',
	'and it serves the other databases');
my $log = slurp_file($node->logfile);
my $starts = () = $log =~ /asyncmig launcher started/g;
is($starts, 2, 'the launcher started only at the two server starts');

$node->stop;
done_testing();
