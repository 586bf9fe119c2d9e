// Package chtest starts real ClickHouse servers for Capstan's tests.
package chtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/capstan-io/capstan/schema/chserver"
)

// Server is a clickhouse-server child process (see chserver) with the
// helpers tests need.
type Server struct {
	*chserver.Server
}

// NewServer prepares (but does not start) a server living in dir, with
// free loopback ports.
func NewServer(dir string) (*Server, error) {
	s, err := chserver.New(dir)
	if err != nil {
		return nil, err
	}
	return &Server{s}, nil
}

// FindServerBinary locates clickhouse-server: $CLICKHOUSE_SERVER_BIN, PATH,
// then /usr/sbin and /usr/bin.
func FindServerBinary() (string, error) { return chserver.FindServerBinary() }

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

// Conn opens a native-protocol connection to database db (created if
// missing), closed when the test ends.
func (s *Server) Conn(tb testing.TB, db string) driver.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if db != "" {
		admin, err := s.Open("")
		if err != nil {
			tb.Fatal(err)
		}
		err = admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+db+"`")
		admin.Close()
		if err != nil {
			tb.Fatalf("create database %s: %v", db, err)
		}
	}
	conn, err := s.Open(db)
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
