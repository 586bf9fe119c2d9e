package guard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

// guardSample inserts 400 production events of 40 devices on channel
// production over the last 40 minutes: installs of 1.1.0 (the rollout)
// and 1.0.0, update_fail, crashes and launches.
func guardSample(db string, now time.Time) string {
	return fmt.Sprintf(`INSERT INTO %[1]s.capstan_events
  (event_id, received_at, client_time, app_id, device_id, platform, action, version_name, channel, is_prod, is_emulator, ignored)
SELECT
  lower(hex(MD5(toString(number)))),
  toDateTime(%[2]d - number * 6),
  toDateTime(%[2]d - number * 6),
  'com.example.guard',
  concat('device-', toString(number %% 40)),
  'android',
  arrayElement(['set', 'app_launch_ready', 'update_fail', 'app_crash', 'set', 'app_launch_ready', 'download_fail'], (number %% 7) + 1),
  if(number %% 40 < 25, '1.1.0', '1.0.0'),
  'production', 1, 0, 0
FROM numbers(400)`, "`"+db+"`", now.Unix())
}

// The gate's counts read the Distributed rollup of a replicated cluster
// (two shards of two replicas) and come out as on one server.
func TestCountsOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and ClickHouse servers; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	since, step := now.Add(-30*time.Minute), now.Add(-10*time.Minute)

	cl := chtest.StartCluster(t, "capstan", 2, 2)
	cc, err := schema.OpenClickHouseCluster(ctx, cl.DSN("capstan"), "capstan")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := schema.Migrate(ctx, cc, schema.MigrateOptions{Database: "capstan", Cluster: "capstan"}); err != nil {
		t.Fatal(err)
	}
	if err := cc.Exec(ctx, guardSample("capstan", now)); err != nil {
		t.Fatal(err)
	}
	cl.WaitReplicated(t, "capstan") // whichever replica answers has every row
	onCluster, err := countChannel(ctx, cc, "capstan", "com.example.guard", "production", "1.1.0", "1.0.0", since, step)
	if err != nil {
		t.Fatal(err)
	}

	srv := chtest.StartServer(t)
	sc := srv.Conn(t, "")
	if err := schema.Migrate(ctx, sc, schema.MigrateOptions{Database: "single"}); err != nil {
		t.Fatal(err)
	}
	if err := sc.Exec(ctx, guardSample("single", now)); err != nil {
		t.Fatal(err)
	}
	oneServer, err := countChannel(ctx, sc, "single", "com.example.guard", "production", "1.1.0", "1.0.0", since, step)
	if err != nil {
		t.Fatal(err)
	}
	if onCluster != oneServer || onCluster.Rollout.Installs == 0 || onCluster.Rollout.Failures == 0 || onCluster.Base.Active == 0 || onCluster.StepInstalls == 0 {
		t.Errorf("cluster %+v\none server %+v", onCluster, oneServer)
	}
	t.Logf("counts %+v", onCluster)
}
