package chserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ClusterSpec describes a replicated ClickHouse cluster on loopback.
type ClusterSpec struct {
	Name      string // remote_servers name (the --clickhouse-cluster value)
	Shards    int
	Replicas  int      // per shard
	ZooKeeper []string // host:port of the ZooKeeper ensemble
	// SessionTimeout of the servers' ZooKeeper sessions, in ms (default
	// 3000): a killed replica's session must expire before it can
	// register again under the same name.
	SessionTimeoutMs int
}

// NewCluster prepares (but does not start) Shards×Replicas servers in
// subdirectories of dir, each with free loopback ports, the cluster in
// remote_servers (internal_replication: the replicated tables copy rows
// between replicas, Distributed writes one replica per shard), {shard}
// and {replica} macros, ZooKeeper and distributed DDL. Nodes are
// indexed [shard][replica]; macros are shard "01".., replica "r1"...
func NewCluster(dir string, spec ClusterSpec) ([][]*Server, error) {
	if spec.Name == "" || spec.Shards < 1 || spec.Replicas < 1 || len(spec.ZooKeeper) == 0 {
		return nil, fmt.Errorf("cluster spec %+v: want a name, shards, replicas and ZooKeeper", spec)
	}
	bin, err := FindServerBinary()
	if err != nil {
		return nil, err
	}
	nodes := make([][]*Server, spec.Shards)
	for sh := range nodes {
		for r := 0; r < spec.Replicas; r++ {
			var ports [3]int
			for i := range ports {
				if ports[i], err = freePort(); err != nil {
					return nil, err
				}
			}
			nodes[sh] = append(nodes[sh], &Server{Bin: bin, Dir: filepath.Join(dir, fmt.Sprintf("s%d-r%d", sh+1, r+1)),
				TCPPort: ports[0], HTTPPort: ports[1], InterserverPort: ports[2]})
		}
	}
	var remote strings.Builder
	fmt.Fprintf(&remote, "  <remote_servers><%s>\n", spec.Name)
	for _, shard := range nodes {
		remote.WriteString("    <shard><internal_replication>true</internal_replication>")
		for _, n := range shard {
			fmt.Fprintf(&remote, "<replica><host>127.0.0.1</host><port>%d</port></replica>", n.TCPPort)
		}
		remote.WriteString("</shard>\n")
	}
	fmt.Fprintf(&remote, "  </%s></remote_servers>\n", spec.Name)
	timeout := spec.SessionTimeoutMs
	if timeout <= 0 {
		timeout = 3000
	}
	var zk strings.Builder
	fmt.Fprintf(&zk, "  <zookeeper><session_timeout_ms>%d</session_timeout_ms>", timeout)
	for _, a := range spec.ZooKeeper {
		host, port, ok := strings.Cut(a, ":")
		if !ok {
			return nil, fmt.Errorf("zookeeper address %q: want host:port", a)
		}
		fmt.Fprintf(&zk, "<node><host>%s</host><port>%s</port></node>", host, port)
	}
	zk.WriteString("</zookeeper>\n")
	for sh, shard := range nodes {
		for r, n := range shard {
			n.extra = remote.String() + zk.String() + fmt.Sprintf(`  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>%d</interserver_http_port>
  <macros><shard>%02d</shard><replica>r%d</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
`, n.InterserverPort, sh+1, r+1)
			if err := os.MkdirAll(n.Dir, 0o755); err != nil {
				return nil, fmt.Errorf("clickhouse dir: %w", err)
			}
			if err := n.writeConfig(); err != nil {
				return nil, err
			}
		}
	}
	return nodes, nil
}
