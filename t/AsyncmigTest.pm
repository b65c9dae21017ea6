# Copyright (c) asyncmig developers
#
# What every TAP test of asyncmig sets up the same way: a cluster that
# preloads asyncmig, and a streaming standby of it.  The tests load it
# with "use FindBin; use lib $FindBin::RealBin;" (prove runs them with -I
# of the source tree, not of t/).

package AsyncmigTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(asyncmig_node asyncmig_standby);

# The settings every test cluster starts from: asyncmig preloaded, worker
# slots to spare, and the LOG lines the tests look for.  A test's own conf
# comes after them, so it wins where it sets the same parameter.
my $base_conf = qq{
shared_preload_libraries = 'asyncmig'
max_worker_processes = 16
log_min_messages = info
};

# asyncmig_node(name, conf => 'extra postgresql.conf lines',
#               streaming => 1 (allows_streaming, for a standby),
#               extension => 1 (CREATE EXTENSION asyncmig in postgres))
# A started cluster.
sub asyncmig_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init($opt{streaming} ? (allows_streaming => 1) : ());
	$node->append_conf('postgresql.conf', $base_conf . ($opt{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION asyncmig')
	  if $opt{extension};
	return $node;
}

# asyncmig_standby(primary, name, backup): a streaming standby of primary,
# started from a new base backup of that name.
sub asyncmig_standby
{
	my ($primary, $name, $backup) = @_;
	my $standby = PostgreSQL::Test::Cluster->new($name);

	$primary->backup($backup);
	$standby->init_from_backup($primary, $backup, has_streaming => 1);
	$standby->start;
	return $standby;
}

1;
