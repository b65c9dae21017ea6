# Copyright (c) asyncmig developers
#
# asyncmig.max_replica_lag: a batched migration holds off between batches
# while a streaming replica has more WAL than that left to replay, and goes
# on when it has caught up; every row is still updated exactly once.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use AsyncmigTest;

my $primary = asyncmig_node('primary', streaming => 1, conf => qq{
asyncmig.max_replica_lag = '512kB'
}, extension => 1);
$primary->safe_psql('postgres', qq{
CREATE TABLE big (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text);
INSERT INTO big (id, pad) SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g;
});
my $standby = asyncmig_standby($primary, 'standby', 'b');
$primary->wait_for_catchup($standby);

sub sql { return $primary->safe_psql('postgres', $_[0]); }

# replay stops on the replica: WAL piles up there
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
sql("SELECT asyncmig.schedule_batches('lag', 'big', 'UPDATE big SET n = n + 1, pad = pad WHERE id BETWEEN \$1 AND \$2', batch_size => 2000)");
ok($primary->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'asyncmig: lag' AND query LIKE '%waiting for replicas%')"),
	'the worker holds off while the replica is behind');
my $held = sql("SELECT (meta->'batches'->>'batches')::int FROM asyncmig.migration WHERE name = 'lag'");
ok($held > 0 && $held < 50, "it stopped between batches ($held of 50 done)");
is(sql("SELECT status FROM asyncmig.migration WHERE name = 'lag'"), 'IN PROGRESS', 'and is still IN PROGRESS');
ok($primary->log_contains(qr/asyncmig migration "lag": holding off after batch \d+: a replica is \d+ kB behind/),
	'the log says why');

# replay goes on: so does the migration
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
sql("CALL asyncmig.wait('lag')");
is(sql("SELECT status FROM asyncmig.migration WHERE name = 'lag'"), 'FINISHED', 'finished once the replica caught up');
is(sql("SELECT count(*) FILTER (WHERE n <> 1) FROM big"), '0', 'every row updated exactly once');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', "SELECT count(*) FILTER (WHERE n <> 1) FROM big"), '0', 'and so on the replica');

# a cancel ends the wait too
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
sql("SELECT asyncmig.schedule_batches('lag2', 'big', 'UPDATE big SET n = n + 1, pad = pad WHERE id BETWEEN \$1 AND \$2', batch_size => 2000)");
$primary->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'asyncmig: lag2' AND query LIKE '%waiting for replicas%')")
  or die 'lag2 never held off';
sql("SELECT asyncmig.cancel('lag2')");
$primary->poll_query_until('postgres', "SELECT status = 'ERROR' FROM asyncmig.migration WHERE name = 'lag2'")
  or die 'lag2 not canceled';
is(sql("SELECT meta->'error'->>'message' FROM asyncmig.migration WHERE name = 'lag2'"), 'canceled', 'a cancel ends the wait');
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');

done_testing();
