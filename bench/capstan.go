package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Env is where a scenario runs: the capstan binary to start and a work
// directory for data and logs.
type Env struct {
	// Bin is the capstan binary (normally the running one).
	Bin string
	// Baseline is the command that serves the bare handler and takes
	// "--listen addr"; default Bin bench baseline-serve.
	Baseline []string
	// Dir holds data directories and process logs.
	Dir string
	// FrontEnv is added to the environment of every front (e.g.
	// GOMEMLIMIT=200MiB), not to the benchmark process.
	FrontEnv []string
	// ProfileDir, when set, replaces `capstan serve` by the profiled front
	// (`capstan bench front-profile`, same handlers) writing CPU and heap
	// profiles here.
	ProfileDir string
	// Log receives progress lines.
	Log func(format string, args ...any)
}

// ServeOptions are the extra settings of one `capstan serve`.
type ServeOptions struct {
	Name          string // used for the data dir and log file
	ClickHouseURL string
	Consume       bool
	NatsURL       string
	ExtraArgs     []string
}

// Front is a running `capstan serve`.
type Front struct {
	Proc    *Proc
	BaseURL string
	// MetricsURL serves /metrics (its own listener, as in production).
	MetricsURL string
	Token      string
	DataDir    string
}

// childEnv drops CAPSTAN_* settings of the caller's environment so only
// the flags given here configure the child.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAPSTAN_") {
			out = append(out, kv)
		}
	}
	return out
}

func randomToken() string {
	var b [16]byte
	rand.Read(b[:])
	return "bench-" + hex.EncodeToString(b[:])
}

// StartFront execs `capstan serve` on a free loopback port and waits for
// /readyz.
func (e *Env) StartFront(ctx context.Context, o ServeOptions) (*Front, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(e.Dir, o.Name)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	metrics := fmt.Sprintf("http://127.0.0.1:%d", metricsPort)
	token := randomToken()
	args := []string{"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--data-dir", dataDir,
		"--public-url", base,
		"--admin-token", token,
	}
	if o.NatsURL != "" {
		args = append(args, "--nats-url", o.NatsURL)
	} else {
		// Embedded JetStream, reachable in-process only: no port clashes.
		args = append(args, "--nats-listen=")
	}
	if o.ClickHouseURL != "" {
		args = append(args, "--clickhouse-url", o.ClickHouseURL)
	}
	args = append(args, fmt.Sprintf("--consume=%t", o.Consume))
	args = append(args, o.ExtraArgs...)
	if e.ProfileDir != "" {
		metrics = base // the profiling front serves everything on one port
		chURL := o.ClickHouseURL
		if !o.Consume {
			chURL = ""
		}
		args = []string{"bench", "front-profile",
			"--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--data-dir", dataDir,
			"--token", token,
			"--clickhouse-url", chURL,
			"--profile", filepath.Join(e.ProfileDir, o.Name),
			"--nats-url", o.NatsURL,
		}
	}
	p, err := StartProc(o.Name, e.Bin, args, append(childEnv(), e.FrontEnv...), filepath.Join(e.Dir, o.Name+".log"))
	if err != nil {
		return nil, err
	}
	f := &Front{Proc: p, BaseURL: base, MetricsURL: metrics, Token: token, DataDir: dataDir}
	if err := WaitHTTP(ctx, base+"/readyz", p, 5*time.Minute); err != nil {
		p.Stop(10 * time.Second)
		return nil, fmt.Errorf("capstan serve: %w (log %s)", err, p.Log)
	}
	return f, nil
}

// Stop ends the front.
func (f *Front) Stop() error { return f.Proc.Stop(30 * time.Second) }

// StartBaseline execs `capstan bench baseline-serve` and returns its URL.
// The baseline runs in its own process, like Capstan, so both compete for
// the CPU with the load generator in the same way.
func (e *Env) StartBaseline(ctx context.Context) (*Proc, string, error) {
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := e.Baseline
	if len(cmd) == 0 {
		cmd = []string{e.Bin, "bench", "baseline-serve"}
	}
	args := append(append([]string(nil), cmd[1:]...), "--listen", addr)
	p, err := StartProc("baseline", cmd[0], args, childEnv(), filepath.Join(e.Dir, "baseline.log"))
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := WaitHTTP(ctx, base+"/healthz", p, time.Minute); err != nil {
		p.Stop(5 * time.Second)
		return nil, "", fmt.Errorf("baseline: %w", err)
	}
	return p, base, nil
}
