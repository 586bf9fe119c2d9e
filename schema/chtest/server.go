// Package chtest starts real ClickHouse servers for Capstan's tests.
package chtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// installHint is what to do when ClickHouse is missing.
const installHint = "run .ci/install-deps from the repository root (it apt-installs clickhouse-server)"

// Server is a clickhouse-server child process with its own data directory
// and loopback ports.
type Server struct {
	Bin      string
	Dir      string // config, data and logs
	TCPPort  int    // native protocol
	HTTPPort int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process exited
	ownsDir bool
}

// StartServer starts a server used by this test only; it is stopped and
// its directory removed when the test ends. Skipped with -short.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs a ClickHouse server; skipped with -short")
	}
	s, err := NewServer(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return s
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
	atExit    []func()
)

// Shared returns one server for the whole test process, started on first
// use. Use it with Main, which stops it after the package's tests; each test
// should use its own database (DBName). Skipped with -short.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs a ClickHouse server; skipped with -short")
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		removeStaleDirs()
		dir, err := os.MkdirTemp("", fmt.Sprintf("capstan-clickhouse-%d-", os.Getpid()))
		if err == nil {
			var s *Server
			if s, err = NewServer(dir); err == nil {
				s.ownsDir = true
				if err = s.Start(); err == nil {
					shared = s
					atExit = append(atExit, func() { _ = s.Stop(); _ = os.RemoveAll(dir) })
				} else {
					_ = os.RemoveAll(dir)
				}
			}
		}
		sharedErr = err
	}
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

// AtExit registers f to run when Main finishes (used for process-wide
// resources such as the shared server and the chDB session).
func AtExit(f func()) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	atExit = append(atExit, f)
}

// Main runs the package's tests and then releases the shared resources.
// Use it as: func TestMain(m *testing.M) { chtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	fs := atExit
	atExit = nil
	sharedMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	os.Exit(code)
}

// removeStaleDirs deletes shared-server directories left by test processes
// that were killed before Main could clean up.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "capstan-clickhouse-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "capstan-clickhouse-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

var dbSeq atomic.Int64

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// DBName returns a database name unique within the process, derived from
// the test's name, so tests sharing a server do not see each other's rows.
func DBName(tb testing.TB) string {
	name := nonIdent.ReplaceAllString(strings.ToLower(tb.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d_%s", dbSeq.Add(1), strings.Trim(name, "_"))
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
	return "", fmt.Errorf("clickhouse-server not found: %s", installHint)
}

// NewServer prepares (but does not start) a server living in dir, with
// free loopback ports.
func NewServer(dir string) (*Server, error) {
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
</yandex>
`, s.Dir, s.TCPPort, s.HTTPPort)
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
	cmd.Stdout, cmd.Stderr = out, out
	// The server must not outlive the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the starting thread exits: keep this thread
		// alive (locked to this goroutine) for as long as the child runs.
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		out.Close()
		close(done)
	}()
	if err := <-started; err != nil {
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

// Conn opens a native-protocol connection to database db (created if
// missing), closed when the test ends.
func (s *Server) Conn(tb testing.TB, db string) driver.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if db != "" {
		admin, err := s.open("")
		if err != nil {
			tb.Fatal(err)
		}
		err = admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+db+"`")
		admin.Close()
		if err != nil {
			tb.Fatalf("create database %s: %v", db, err)
		}
	}
	conn, err := s.open(db)
	if err != nil {
		tb.Fatal(err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		tb.Fatalf("ping clickhouse: %v", err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func (s *Server) open(db string) (driver.Conn, error) {
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
