// Package zkserver runs a throwaway ZooKeeper (Debian's zookeeper package)
// on a free loopback port, for Capstan's replicated-ClickHouse tests.
package zkserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/capstan-io/capstan/internal/child"
)

// Server is a standalone ZooKeeper child process with its own data dir.
type Server struct {
	Dir  string
	Port int

	java, jar string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      <-chan struct{}
}

// FindJar locates ZooKeeper's jar: $ZOOKEEPER_JAR, then Debian's
// /usr/share/java/zookeeper.jar (its manifest names the other jars), and
// java: $JAVA, then PATH.
func FindJar() (java, jar string, err error) {
	jar = os.Getenv("ZOOKEEPER_JAR")
	if jar == "" {
		jar = "/usr/share/java/zookeeper.jar"
	}
	if _, err := os.Stat(jar); err != nil {
		return "", "", errors.New("zookeeper jar not found: run .ci/install-deps from the repository root (it apt-installs zookeeper)")
	}
	java = os.Getenv("JAVA")
	if java == "" {
		if java, err = exec.LookPath("java"); err != nil {
			return "", "", errors.New("java not found: run .ci/install-deps from the repository root")
		}
	}
	return java, jar, nil
}

// New prepares (but does not start) a server living in dir.
func New(dir string) (*Server, error) {
	java, jar, err := FindJar()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("find free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Dir: dir, Port: port, java: java, jar: jar}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("zookeeper dir: %w", err)
	}
	// tickTime 500ms: sessions may be as short as 1s, so a killed
	// ClickHouse replica's session expires quickly. No fsync: the data
	// dir is thrown away, and every replicated insert commits to it.
	cfg := fmt.Sprintf("tickTime=500\nforceSync=no\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("zookeeper config: %w", err)
	}
	return s, nil
}

// Addr is host:port for clients.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Start starts the process and waits until it serves requests ("srvr"
// names its mode; "ruok" answers before sessions are accepted).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("zookeeper log: %w", err)
	}
	cmd := exec.Command(s.java, "-Xmx256m", "-Dzookeeper.log.dir="+s.Dir, "-cp", s.jar,
		"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(s.Dir, "zoo.cfg"))
	cmd.Dir = s.Dir
	done, err := child.Start(cmd, out)
	if err != nil {
		return fmt.Errorf("start zookeeper: %w", err)
	}
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for !s.serving() {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("zookeeper exited during startup: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd = nil
			return fmt.Errorf("zookeeper not ready after 60s: %s", s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func (s *Server) serving() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(c)
	return strings.Contains(string(out), "Mode: ")
}

func (s *Server) logTail() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "zookeeper.log"))
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}

// Pid is the process id, 0 when not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop ends the process by its pid (SIGTERM, SIGKILL after 5s).
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal zookeeper: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}
