# Copyright (c) asyncmig developers
#
# A copy of the data directory does not trust the copied registry file
# (pg_asyncmig/databases), which is not WAL-logged and so is older than
# the data: a standby started as a primary without promotion (same
# timeline) and a base backup started as a primary look at every database
# once, and queued work in a database the copied file does not list runs.
# A restart of the same server, clean or after a crash, trusts its file
# (no look at every database).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

asyncmig_allow_log(
	qr/WARNING:  terminating connection because of crash of another server process/ =>
	  'the test crashes a server process on purpose; PostgreSQL 13 logs what 14 and later tell the client only',
	qr/WARNING:  asyncmig\.enabled is off on this server: nothing will run migration "late1"/ =>
	  'the test queues work on the origin with asyncmig.enabled = off, so that only the copy runs it');
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = asyncmig_node('origin', streaming => 1, extension => 1);
ok($primary->wait_for_log(qr/asyncmig: looked at all \d+ databases/),
	'the first start-up looks at every database once and writes the registry');
ok($primary->poll_query_until('postgres', 'SELECT true') &&
	-f $primary->data_dir . '/pg_asyncmig/databases', '... which is there');

# the standby's copy of the registry lists no database with work; it is
# removed when the standby starts (standby.signal)
my $standby = asyncmig_standby($primary, 'copy', 'b1');
my $copied_registry = slurp_file($primary->data_dir . '/pg_asyncmig/databases');
like(slurp_file($standby->logfile),
	qr/LOG:  asyncmig: not trusting "pg_asyncmig\/databases".*\n.*DETAIL:  The server starts (from a base backup|in recovery)/,
	'a standby does not trust its copied registry');
ok(!-e $standby->data_dir . '/pg_asyncmig/databases', '... and removes it');

# work queued in a new database after the copy was made (nothing runs it
# on the primary: asyncmig.enabled = off there)
$primary->append_conf('postgresql.conf', 'asyncmig.enabled = off');
$primary->reload;
$primary->poll_query_until('postgres', "SELECT current_setting('asyncmig.enabled') = 'off'");
$primary->safe_psql('postgres', 'CREATE DATABASE late');
$primary->safe_psql('late', 'CREATE EXTENSION asyncmig');
$primary->safe_psql('late', "SELECT asyncmig.schedule('late1', 'SELECT 1')");
$primary->wait_for_catchup($standby);

# 1. the standby started as a primary, without promotion
$standby->stop;
unlink($standby->data_dir . '/standby.signal') or die "unlink: $!";
# as a standby set up by a release that kept the file would have it
mkdir($standby->data_dir . '/pg_asyncmig', 0700);
unlink($standby->data_dir . '/pg_asyncmig/databases');
PostgreSQL::Test::Utils::append_to_file($standby->data_dir . '/pg_asyncmig/databases', $copied_registry);
chmod 0600, $standby->data_dir . '/pg_asyncmig/databases';
$standby->append_conf('postgresql.conf', 'asyncmig.enabled = on');
my $off = -s $standby->logfile;
$standby->start;
is($standby->safe_psql('postgres', 'SELECT timeline_id FROM pg_control_checkpoint()'), '1',
	'the standby runs as a primary on the same timeline');
ok($standby->poll_query_until('late', "SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'late1'"),
	'queued work in a database its copied registry does not list runs');
like(substr(slurp_file($standby->logfile), $off),
	qr/LOG:  asyncmig: not trusting "pg_asyncmig\/databases": this data directory may be a copy made while its server ran\n.*DETAIL:  The server was a standby, or in archive recovery, when it last stopped/,
	'... because the copied registry is not trusted');
ok($standby->wait_for_log(qr/asyncmig: looked at all \d+ databases/, $off), '... after one look at every database');

# a plain restart of the copy trusts the file written since
$off = -s $standby->logfile;
$standby->restart;
ok($standby->wait_for_log(qr/asyncmig launcher: \d+ database\(s\) with work in the registry/, $off),
	'a restart of the copy trusts its new registry');
unlike(substr(slurp_file($standby->logfile), $off), qr/not trusting|looking at every database/, '... and looks at no other database');
$standby->stop;

# 2. the origin itself: a restart and a crash restart trust its file
$primary->append_conf('postgresql.conf', 'asyncmig.enabled = on');
$off = -s $primary->logfile;
$primary->restart;
ok($primary->wait_for_log(qr/asyncmig launcher: \d+ database\(s\) with work in the registry/, $off),
	'a restart of the origin reads its registry');
ok($primary->poll_query_until('late', "SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'late1'"),
	'... and the queued work runs');
my $off2 = -s $primary->logfile;
$primary->stop('immediate');
$primary->start;
ok($primary->wait_for_log(qr/asyncmig launcher: \d+ database\(s\) with work in the registry/, $off2),
	'a start after a crash (immediate stop) reads it too');
unlike(substr(slurp_file($primary->logfile), $off), qr/not trusting|looking at every database/,
	'... neither distrusts it nor looks at every database');

# 3. a base backup started as a primary (backup_label)
$primary->backup('b2');
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($primary, 'b2');
$restored->start;
like(slurp_file($restored->logfile),
	qr/LOG:  asyncmig: not trusting "pg_asyncmig\/databases".*\n.*DETAIL:  The server starts from a base backup/,
	'a base backup does not trust its copied registry');
ok($restored->wait_for_log(qr/asyncmig: looked at all \d+ databases/), '... and looks at every database once');
$restored->safe_psql('late', "SELECT asyncmig.schedule('late2', 'SELECT 1')");
ok($restored->poll_query_until('late', "SELECT status = 'FINISHED' FROM asyncmig.migration WHERE name = 'late2'"),
	'... and runs work');
$restored->stop;
$primary->stop;
done_testing();
