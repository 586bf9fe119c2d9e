package chtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema/chserver"
	"github.com/capstan-io/capstan/schema/zkserver"
)

// Cluster is a replicated ClickHouse cluster on loopback: a ZooKeeper and
// Shards×Replicas servers, indexed Nodes[shard][replica].
type Cluster struct {
	Name      string
	ZooKeeper *zkserver.Server
	Nodes     [][]*Server
}

// StartCluster starts ZooKeeper and a cluster named name of shards ×
// replicas servers for this test only; all are stopped (by pid) and their
// directories removed when the test ends. Skipped with -short, and when
// ClickHouse or ZooKeeper is missing outside CI (CI=true fails instead).
func StartCluster(tb testing.TB, name string, shards, replicas int) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs ZooKeeper and ClickHouse servers; skipped with -short")
	}
	missing := func(err error) {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	if _, _, err := zkserver.FindJar(); err != nil {
		missing(err)
	}
	if _, err := chserver.FindServerBinary(); err != nil {
		missing(err)
	}
	dir := tb.TempDir()
	zk, err := zkserver.New(filepath.Join(dir, "zookeeper"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := zk.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = zk.Stop() })
	nodes, err := chserver.NewCluster(filepath.Join(dir, "clickhouse"), chserver.ClusterSpec{
		Name: name, Shards: shards, Replicas: replicas, ZooKeeper: []string{zk.Addr()}})
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{Name: name, ZooKeeper: zk}
	var wg sync.WaitGroup
	errs := make(chan error, shards*replicas)
	for sh, shard := range nodes {
		var row []*Server
		for _, n := range shard {
			s := &Server{n}
			row = append(row, s)
			tb.Cleanup(func() {
				if tb.Failed() {
					tb.Logf("clickhouse %s (pid %d, shard %d): %s", s.Addr(), s.Pid(), sh+1, s.LogTail())
				}
				_ = s.Kill()
			})
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Start()
			}()
		}
		c.Nodes = append(c.Nodes, row)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	for _, shard := range c.Nodes {
		for _, n := range shard {
			if err := waitZooKeeper(n); err != nil {
				tb.Fatal(err)
			}
		}
	}
	// 18.16's distributed-DDL worker takes the server's ZooKeeper session
	// in its own thread; an ON CLUSTER query before it has can crash the
	// server (NULL session in ZooKeeper::create). Give the thread a moment.
	time.Sleep(300 * time.Millisecond)
	return c
}

// waitZooKeeper waits (bounded) until n reads ZooKeeper.
func waitZooKeeper(n *Server) error {
	conn, err := n.Open("")
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var c uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&c)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse %s never reached ZooKeeper: %w", n.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DSN is a clickhouse:// URL naming every node (the driver fails over in
// order) for database db.
func (c *Cluster) DSN(db string) string {
	var addrs []string
	for _, shard := range c.Nodes {
		for _, n := range shard {
			addrs = append(addrs, n.Addr())
		}
	}
	return "clickhouse://default@" + strings.Join(addrs, ",") + "/" + db
}

// WaitReplicated waits (bounded) until every replica of every shard has
// read its tables' whole replication log and emptied its queue, so a
// Distributed query reads the same rows whichever replica answers.
func (c *Cluster) WaitReplicated(tb testing.TB, db string) {
	tb.Helper()
	// log_pointer is the next log entry to read (0 with 0 also for an empty log).
	const behind = "SELECT count() FROM system.replicas WHERE database = ? AND (queue_size > 0 OR (log_pointer <= log_max_index AND log_pointer + log_max_index > 0))"
	deadline := time.Now().Add(60 * time.Second)
	for _, shard := range c.Nodes {
		for _, n := range shard {
			conn, err := n.Open("")
			if err != nil {
				tb.Fatal(err)
			}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var lagging uint64
				err := conn.QueryRow(ctx, behind, db).Scan(&lagging)
				cancel()
				if err == nil && lagging == 0 {
					break
				}
				if time.Now().After(deadline) {
					conn.Close()
					tb.Fatalf("clickhouse %s: %d tables of %s still replicating after 60s (%v)", n.Addr(), lagging, db, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			conn.Close()
		}
	}
}
