package chtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

// TestMigrateCluster migrates a real 18.16 cluster (ZooKeeper, two shards
// of two replicas) twice, at once from two nodes, and checks the tables
// each node got.
func TestMigrateCluster(t *testing.T) {
	c := chtest.StartCluster(t, "capstan", 2, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := c.Nodes[0][0].Conn(t, "")
	b := c.Nodes[1][1].Conn(t, "")
	start := time.Now()
	errs := make(chan error, 2)
	for _, q := range []schema.Querier{a, b} {
		go func() { errs <- schema.Migrate(ctx, q, schema.MigrateOptions{Database: "capstan", Cluster: "capstan"}) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("migrated the cluster in %s", time.Since(start))
	if err := schema.Migrate(ctx, b, schema.MigrateOptions{Database: "capstan", Cluster: "capstan"}); err != nil {
		t.Fatal(err)
	}
	for _, shard := range c.Nodes {
		for _, n := range shard {
			conn := n.Conn(t, "")
			rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = 'capstan' ORDER BY name")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for rows.Next() {
				var name, engine string
				if err := rows.Scan(&name, &engine); err != nil {
					t.Fatal(err)
				}
				got[name] = engine
			}
			rows.Close()
			for name, engine := range map[string]string{
				schema.EventsTable: "Distributed", schema.EventsTable + "_local": "ReplicatedReplacingMergeTree",
				schema.RollupTable: "Distributed", schema.RollupTable + "_local": "ReplicatedAggregatingMergeTree",
				schema.DevicesTable: "Distributed", schema.DevicesTable + "_local": "ReplicatedReplacingMergeTree",
				schema.RollupView: "MaterializedView", schema.MigrationsTable: "ReplicatedReplacingMergeTree",
			} {
				if got[name] != engine {
					t.Errorf("%s: %s is %q, want %s", n.Addr(), name, got[name], engine)
				}
			}
			if _, ok := got["capstan_schema_lock"]; ok {
				t.Errorf("%s: migration lock left behind", n.Addr())
			}
		}
	}

	// Retention on 18.16: partitions older than 30 days go on every
	// replica of every shard, and expired devices rows too.
	cc, err := schema.OpenClickHouseCluster(ctx, c.DSN("capstan"), "capstan")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	now := time.Now()
	if err := cc.Exec(ctx, fmt.Sprintf(`INSERT INTO capstan.capstan_events (event_id, received_at, client_time, app_id, device_id, platform, action, version_name)
SELECT lower(hex(MD5(toString(number)))), toDateTime(%[1]d - if(number %% 2 = 0, 40 * 86400, 0)), toDateTime(%[1]d), 'com.example.ret',
  concat('device-', toString(number)), 'ios', 'set', '1.0.0' FROM numbers(200)`, now.Unix())); err != nil {
		t.Fatal(err)
	}
	dropped, err := schema.DropExpiredPartitionsOn(ctx, cc, "capstan", "capstan", 30, now)
	if err != nil || dropped == 0 {
		t.Fatalf("dropped %d partitions: %v", dropped, err)
	}
	waitCount := func(what, q string, want uint64) {
		t.Helper()
		var n uint64
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err := cc.QueryRow(ctx, q).Scan(&n); err == nil && n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d, want %d", what, n, want)
			}
		}
	}
	waitCount("events after retention", "SELECT count() FROM capstan.capstan_events", 100)
	waitCount("rollup after retention", "SELECT uniqExactMerge(events) FROM capstan.capstan_rollup_minute", 100)
	waitCount("devices after retention", "SELECT count() FROM capstan.capstan_devices", 100)
	for _, shard := range c.Nodes {
		var n [2]uint64
		for r, node := range shard {
			if err := node.Conn(t, "capstan").QueryRow(ctx, "SELECT count() FROM capstan_events_local WHERE received_at < now() - INTERVAL 30 DAY").Scan(&n[r]); err != nil {
				t.Fatal(err)
			}
		}
		if n != [2]uint64{} {
			t.Errorf("expired rows left on replicas: %v", n)
		}
	}
}
