// Package chserver runs a throwaway clickhouse-server in its own directory
// on free loopback ports, for Capstan's tests and benchmarks.
package chserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/capstan-io/capstan/internal/child"
)

// Server is a clickhouse-server child process with its own data directory
// and loopback ports.
type Server struct {
	Bin      string
	Dir      string // config, data and logs
	TCPPort  int    // native protocol
	HTTPPort int
	// InterserverPort is where replicas fetch parts (cluster members only).
	InterserverPort int

	extra string // more top-level config (cluster members)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done <-chan struct{} // closed when the process exited
}

// FindServerBinary locates clickhouse-server: $CLICKHOUSE_SERVER_BIN, PATH,
// then /usr/sbin and /usr/bin.
func FindServerBinary() (string, error) {
	if p := os.Getenv("CLICKHOUSE_SERVER_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("clickhouse-server not found: run .ci/install-deps from the repository root (it apt-installs clickhouse-server)")
}

// New prepares (but does not start) a server living in dir, with
// free loopback ports.
func New(dir string) (*Server, error) {
	bin, err := FindServerBinary()
	if err != nil {
		return nil, err
	}
	tcp, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Bin: bin, Dir: dir, TCPPort: tcp, HTTPPort: httpPort}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) writeConfig() error {
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return fmt.Errorf("clickhouse dir: %w", err)
		}
	}
	// Small caches and no interserver port: starts in well under a second.
	cfg := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/server.err.log</errorlog><size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
%[4]s</yandex>
`, s.Dir, s.TCPPort, s.HTTPPort, s.extra)
	users := `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
	if err := os.WriteFile(filepath.Join(s.Dir, "config.xml"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("clickhouse config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "users.xml"), []byte(users), 0o644); err != nil {
		return fmt.Errorf("clickhouse users: %w", err)
	}
	return nil
}

// Addr is the native protocol address.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.TCPPort) }

// HTTPURL is the HTTP interface's base URL.
func (s *Server) HTTPURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.HTTPPort) }

// DSN is a clickhouse:// URL for database db ("" = the server default).
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("clickhouse://default@127.0.0.1:%d/%s", s.TCPPort, db)
}

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running()
}

func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Start starts the process (again, after Stop: same ports, same data) and
// waits until it answers queries.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running() {
		return nil
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("clickhouse log: %w", err)
	}
	cmd := exec.Command(s.Bin, "--config-file="+filepath.Join(s.Dir, "config.xml"))
	cmd.Dir = s.Dir
	// The server must not outlive the process that started it.
	done, err := child.Start(cmd, out)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.Bin, err)
	}
	s.cmd, s.done = cmd, done
	if err := s.waitReady(30 * time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return err
	}
	return nil
}

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("clickhouse-server exited during startup: %s", s.logTail())
		default:
		}
		resp, err := client.Get(s.HTTPURL() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse-server not ready after %s: %s", limit, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogTail is the end of the server's error log and output, for test failures.
func (s *Server) LogTail() string { return s.logTail() }

func (s *Server) logTail() string {
	var b strings.Builder
	for _, f := range []string{"server.err.log", "stdout.log"} {
		data, _ := os.ReadFile(filepath.Join(s.Dir, "log", f))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		if len(data) > 0 {
			fmt.Fprintf(&b, "[%s] %s ", f, strings.TrimSpace(string(data)))
		}
	}
	if b.Len() == 0 {
		return "no log output"
	}
	return b.String()
}

// Stop shuts the server down: SIGTERM, then SIGKILL after 3s (18.16 waits
// about 10s for idle client connections; acknowledged inserts are already
// on disk). The data directory is kept: Start brings the same server back.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM, 3*time.Second)
}

// Kill stops the server abruptly, as a crash would.
func (s *Server) Kill() error {
	return s.signal(syscall.SIGKILL, 20*time.Second)
}

func (s *Server) signal(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return nil
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal clickhouse-server: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

// Pid is the server process's id, 0 when it is not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Open returns a native-protocol connection pool to database db.
func (s *Server) Open(db string) (driver.Conn, error) {
	opts, err := clickhouse.ParseDSN(s.DSN(db))
	if err != nil {
		return nil, err
	}
	opts.DialTimeout = 5 * time.Second
	opts.ReadTimeout = time.Minute
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	return conn, nil
}
