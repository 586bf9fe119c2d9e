package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// Scenarios lists the scenario names in the order "all" runs them.
var Scenarios = []string{"updates", "stats", "e2e", "e2e-split", "memory"}

// Options say where and how Command runs.
type Options struct {
	Bin      string   // capstan binary; default this executable
	Baseline []string // bare handler command; default Bin bench baseline-serve
	Dir      string   // work dir; default a new temp dir, removed unless Keep
	Keep     bool
	Out      string // append the Markdown report to this file
	CPUProf  string // CPU profile of the benchmark process itself
	// FrontEnv is added to the fronts' environment (KEY=value each).
	FrontEnv []string
	// ProfileFront runs fronts as `bench front-profile` writing profiles here.
	ProfileFront string
	Stdout       io.Writer
	Stderr       io.Writer
}

// Command runs one scenario (or "all") and prints its Markdown report.
func Command(ctx context.Context, scenario string, c Config, o Options) (err error) {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	names := []string{scenario}
	if scenario == "all" {
		names = Scenarios
	}
	for _, n := range names {
		if !isScenario(n) {
			return fmt.Errorf("unknown scenario %q (want one of %s, all)", n, strings.Join(Scenarios, ", "))
		}
	}
	if o.Bin == "" {
		if o.Bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find capstan binary: %w", err)
		}
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "capstan-bench-"); err != nil {
			return err
		}
		if !o.Keep {
			defer os.RemoveAll(o.Dir)
		}
	} else if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	if o.CPUProf != "" {
		f, err := os.Create(o.CPUProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.ProfileFront != "" {
		if o.ProfileFront, err = filepath.Abs(o.ProfileFront); err != nil {
			return err
		}
		if err := os.MkdirAll(o.ProfileFront, 0o755); err != nil {
			return err
		}
	}
	env := &Env{Bin: o.Bin, Baseline: o.Baseline, Dir: o.Dir, ProfileDir: o.ProfileFront, FrontEnv: o.FrontEnv, Log: func(format string, args ...any) {
		fmt.Fprintf(o.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}}
	env.Log("work dir %s; %s", o.Dir, Machine())
	if len(o.FrontEnv) > 0 {
		env.Log("front environment: %s", strings.Join(o.FrontEnv, " "))
	}
	var reps []*Report
	for _, n := range names {
		var rep *Report
		switch n {
		case "updates":
			rep, err = env.Updates(ctx, c)
		case "stats":
			rep, err = env.Stats(ctx, c)
		case "e2e":
			rep, err = env.E2E(ctx, c)
		case "e2e-split":
			cs := c
			cs.Split = true
			rep, err = env.E2E(ctx, cs)
		case "memory":
			rep, err = env.Memory(ctx, c)
		}
		if err != nil {
			return fmt.Errorf("%s: %w (logs in %s; use --keep to keep them)", n, err, o.Dir)
		}
		rep.note("load: %s", LoadNow())
		rep.Markdown(o.Stdout)
		reps = append(reps, rep)
	}
	if o.Out != "" {
		f, err := os.OpenFile(o.Out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(f, "<!-- %s -->\n", Machine())
		for _, r := range reps {
			r.Markdown(f)
		}
	}
	return nil
}

func isScenario(n string) bool {
	for _, s := range Scenarios {
		if s == n {
			return true
		}
	}
	return false
}

// Machine describes this host: CPUs, CPU model, memory, Go version.
func Machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				mem = f[1] + " kB RAM"
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s, %s %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// LoadNow is the 1/5/15-minute load average, to judge background noise.
func LoadNow() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return "loadavg " + strings.Join(f[:3], " ")
}

// BaselineServe is the `bench baseline-serve` entry point.
func BaselineServe(ctx context.Context, listen string, out io.Writer) error {
	if !strings.HasPrefix(listen, "127.0.0.1:") && !strings.HasPrefix(listen, "localhost:") {
		return errors.New("baseline listens on loopback only (127.0.0.1:port)")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	err = ServeBaseline(ln, out)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
