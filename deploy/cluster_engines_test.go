package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

// TestDashboardSQLOnCluster runs every dashboard query on the Distributed
// tables of a replicated 18.16 cluster (two shards of two replicas, the
// sample inserted through capstan_events) and on one 18.16 server: the
// answers are the same. (This file sorts first so the cluster runs before
// the package loads chDB.)
func TestDashboardSQLOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and four ClickHouse servers; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	cl := chtest.StartCluster(t, "capstan", 2, 2)
	const db = "capstan"
	conn, err := schema.OpenClickHouseCluster(ctx, cl.DSN(db), "capstan")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A synchronous insert returns once a replica of each shard has the
	// rows; the other replicas may answer the next query before they do.
	onCluster := runDashboardSQLOn(t, ctx, conn, schema.MigrateOptions{Database: db, Cluster: "capstan"}, base,
		func(string) sqlConn { return conn }, func() { cl.WaitReplicated(t, db) })

	// The sample spread over both shards, and each replica holds its shard.
	var shards []uint64
	for _, shard := range cl.Nodes {
		var n [2]uint64
		for r, node := range shard {
			waitLocal(t, ctx, node.Conn(t, db), &n[r], n[0], r)
		}
		shards = append(shards, n[0])
	}
	if len(shards) != 2 || shards[0] == 0 || shards[1] == 0 || shards[0]+shards[1] != 600 {
		t.Errorf("sample rows per shard %v, want both shards used, 600 in all", shards)
	}

	srv := chtest.Shared(t)
	sdb := chtest.DBName(t)
	single := srv.Conn(t, sdb)
	oneServer := runDashboardSQL(t, ctx, single, sdb, base, func(string) sqlConn { return single })
	t.Logf("%d query runs on the cluster (rows per shard %v), %d on one server", len(onCluster), shards, len(oneServer))
	for key, a := range oneServer {
		b, ok := onCluster[key]
		if !ok {
			t.Errorf("%s: not run on the cluster", key)
			continue
		}
		if strings.Join(a.rows, "\n") != strings.Join(b.rows, "\n") {
			t.Errorf("%s: one server and the cluster disagree:\none server:\n%s\ncluster:\n%s", key, strings.Join(a.rows, "\n"), strings.Join(b.rows, "\n"))
		}
	}
}

// waitLocal reads a replica's local events count into n; the second
// replica of a shard (r 1) waits, bounded, until it has what the first has.
func waitLocal(t *testing.T, ctx context.Context, c sqlConn, n *uint64, want uint64, r int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rows, err := c.Query(ctx, "SELECT count() FROM capstan_events_local")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			_ = rows.Scan(n)
		}
		rows.Close()
		if r == 0 || *n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica has %d rows, its peer %d", *n, want)
		}
	}
}
