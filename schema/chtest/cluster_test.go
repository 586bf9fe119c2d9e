package chtest_test

import (
	"context"
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
}
