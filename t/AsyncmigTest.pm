# Copyright (c) asyncmig developers
#
# What every TAP test of asyncmig sets up the same way: a cluster that
# preloads asyncmig, a streaming standby of it, an application role with
# exactly the grants of docs/grants.sql, and the check that no server log
# the test wrote holds a WARNING the test did not declare.  The tests load
# it with "use FindBin; use lib $FindBin::RealBin;" (prove runs them with
# -I of the source tree, not of t/).
#
# A server log with an unexpected WARNING or ERROR is a bug: at the end of
# each test file, every log of every node the file started
# (tmp_check/log/FILE_*.log) is read, and a WARNING, ERROR, PANIC or failed
# assertion (TRAP) that no pattern of asyncmig_allow_log() matches fails the
# file (its exit status), with the lines in the output.  (FATAL is not
# checked: a fast shutdown logs one for every background worker.)

package AsyncmigTest;

use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(asyncmig_node asyncmig_standby asyncmig_app_role
  asyncmig_app_psql asyncmig_app_ok asyncmig_overlapping_runs asyncmig_kill9
  asyncmig_allow_log asyncmig_unexpected_log_lines);

# docs/grants.sql, the one recipe of an application role's grants
my $grants_sql = File::Spec->rel2abs(dirname(__FILE__) . '/../docs/grants.sql');

# patterns of log lines the test causes on purpose (asyncmig_allow_log())
my @allowed_log;

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

# asyncmig_app_role(node, role, dbname => 'postgres', create_in => 'public')
# Creates role (LOGIN, not a superuser) and gives it, in dbname, exactly
# what docs/grants.sql gives (psql -v app_role=role -f docs/grants.sql),
# plus CREATE on the schema create_in (undef: none), where an application
# creates its own tables (PostgreSQL 15 gives no one CREATE on public).
# With exists => 1 the role is not created (another database's grants).
sub asyncmig_app_role
{
	my ($node, $role, %opt) = @_;
	my $db = $opt{dbname} // 'postgres';
	my $schema = exists $opt{create_in} ? $opt{create_in} : 'public';

	$node->safe_psql($db, qq{CREATE ROLE "$role" LOGIN NOSUPERUSER})
	  unless $opt{exists};
	$node->safe_psql($db, qq{GRANT CREATE ON SCHEMA "$schema" TO "$role"})
	  if defined $schema;
	PostgreSQL::Test::Utils::system_or_bail('psql', '-X', '-q', '-v',
		'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-v', "app_role=$role",
		'-f', $grants_sql);
	return $role;
}

# asyncmig_app_psql($node, $role, $sql): psql as an application role made
# by asyncmig_app_role(), in database postgres -> (exit code, stdout, stderr)
sub asyncmig_app_psql
{
	my ($node, $role, $sql) = @_;

	return $node->psql('postgres', $sql, extra_params => [ '-U', $role ]);
}

# asyncmig_app_ok($node, $role, $sql, $what): the same, as a test that it
# succeeds (the error shown if not) -> stdout
sub asyncmig_app_ok
{
	my ($node, $role, $sql, $what) = @_;
	my ($ret, $out, $err) = asyncmig_app_psql($node, $role, $sql);

	Test::More::is($ret, 0, $what) or Test::More::diag($err);
	return $out;
}

# asyncmig_overlapping_runs($node, $prefix): how many migrations named
# "prefix_..." (in database postgres) started before the one started just
# before them ended: 0 when a database ran them one at a time
sub asyncmig_overlapping_runs
{
	my ($node, $prefix) = @_;

	return $node->safe_psql('postgres', qq{
SELECT count(*) FROM (
	SELECT started_at, lag(finished_at) OVER (ORDER BY started_at) AS prev_end
	FROM asyncmig.migration WHERE name LIKE '${prefix}\\_%') s
WHERE started_at < prev_end});
}

# asyncmig_kill9($node, $pid): kill -9 of a server process (a worker), and
# wait until the postmaster's crash restart is over: its log says it
# reinitializes, and a connection works again.  (Polling at once races the
# restart: PostgreSQL 13's test modules die when psql exits before reading
# its input.)
sub asyncmig_kill9
{
	my ($node, $pid) = @_;
	my $offset = -s $node->logfile;

	kill 'KILL', $pid;
	foreach my $i (1 .. 600)
	{
		last if substr(slurp_file($node->logfile), $offset)
		  =~ /all server processes terminated; reinitializing/;
		die 'no crash restart after kill -9' if $i == 600;
		select(undef, undef, undef, 0.1);
	}
	foreach my $i (1 .. 600)
	{
		my ($ret) = $node->psql('postgres', 'SELECT 1');
		last if $ret == 0;
		die 'the server does not come back after kill -9' if $i == 600;
		select(undef, undef, undef, 0.1);
	}
	return;
}

# asyncmig_allow_log(qr/pattern/ => 'why the test causes it', ...)
# Log lines (WARNING, ERROR, PANIC, TRAP) that the test causes on purpose;
# each pattern is matched against the whole line, in every log of the file.
sub asyncmig_allow_log
{
	my @pairs = @_;

	die 'asyncmig_allow_log takes pattern => reason pairs' if @pairs % 2;
	while (my ($re, $why) = splice(@pairs, 0, 2))
	{
		die "asyncmig_allow_log: say why $re is expected" unless $why;
		push @allowed_log, $re;
	}
	return;
}

# asyncmig_unexpected_log_lines(): "log: line" for every WARNING, ERROR,
# PANIC or failed assertion in the server logs this test file wrote that no
# allowed pattern matches, with the DETAIL, CONTEXT and STATEMENT after it.
sub asyncmig_unexpected_log_lines
{
	my $base = $PostgreSQL::Test::Utils::log_path;
	my $test = $0;
	my @bad;

	$test =~ s{.*/}{};
	$test =~ s/\.[^.]+$//;
	return () unless defined $base && -d $base;
	foreach my $log (sort glob("$base/${test}_*.log"))
	{
		open(my $fh, '<', $log) or next;
		my @lines = <$fh>;
		close $fh;
		chomp @lines;
		for my $i (0 .. $#lines)
		{
			my $line = $lines[$i];

			next unless $line =~ /\b(?:WARNING|ERROR|PANIC):  |^TRAP: /;
			next if grep { $line =~ $_ } @allowed_log;
			push @bad, (File::Basename::basename($log) . ": $line");
			for my $j ($i + 1 .. $i + 3)
			{
				last if $j > $#lines
				  || $lines[$j] !~ /\b(?:DETAIL|HINT|CONTEXT|STATEMENT):  /;
				push @bad, "    $lines[$j]";
			}
		}
	}
	return @bad;
}

# At the end of the file (before Test::More's own end, which reports the
# exit status): fail it if a log holds an unexpected line.
END
{
	my $exit = $?;
	my @bad = eval { asyncmig_unexpected_log_lines() };

	if (@bad)
	{
		diag("unexpected lines in the server logs (a bug, or declare them with asyncmig_allow_log):");
		diag("  $_") foreach @bad[0 .. ($#bad < 59 ? $#bad : 59)];
		diag('  ... and ' . (@bad - 60) . ' more') if @bad > 60;
		$exit ||= 1;
	}
	$? = $exit;
}

1;
