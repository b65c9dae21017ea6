# Copyright (c) asyncmig developers
#
# A registry (pg_asyncmig/databases) that cannot be written: schedule() in
# a database not yet registered is refused, records nothing, and says what
# the file is and what to do; it works once the directory is writable.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $node = asyncmig_node('registry_unwritable', extension => 1);

my ($rc, $out, $err);

# A registry that cannot be written: schedule() in a database not yet
# registered is refused (work a restart could forget), with a message that
# says what the file is and what to do, not only a raw file error.
$node->safe_psql('postgres', 'CREATE DATABASE ro');
$node->safe_psql('ro', 'CREATE EXTENSION asyncmig');
my $regdir = $node->data_dir . '/pg_asyncmig';
chmod 0555, $regdir or die "chmod: $!";
($rc, $out, $err) = $node->psql('ro', "SELECT asyncmig.schedule('ro1', 'SELECT 1')");
chmod 0700, $regdir or die "chmod: $!";
like($err, qr/could not create file .*\nDETAIL:  asyncmig records in "pg_asyncmig\/databases".*\nHINT:  Make the directory "pg_asyncmig" .* writable/,
	'an unwritable registry: schedule() says what the file is and what to do');
is($node->safe_psql('ro', 'SELECT count(*) FROM asyncmig.migration'), '0', '... and records nothing');
is($node->safe_psql('ro', "SELECT asyncmig.schedule('ro1', 'SELECT 1')"), 'STARTED',
	'... and works once the directory is writable again');

done_testing();
