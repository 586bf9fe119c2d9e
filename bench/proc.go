package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proc is a child process the benchmark started and must stop.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // file with its stdout and stderr
	done chan error
}

// StartProc runs bin with args in environment env (nil: this process's),
// its output going to logPath.
func StartProc(name, bin string, args, env []string, logPath string) (*Proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	// Own process group: a Ctrl-C on the benchmark reaches us, and we stop
	// the child in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); f.Close() }()
	return p, nil
}

// Exited reports whether the process already ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to grace, then kills.
func (p *Proc) Stop(grace time.Duration) error {
	if p == nil || p.Cmd.Process == nil {
		return nil
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return nil
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		return fmt.Errorf("%s did not stop within %s; killed", p.Name, grace)
	}
}

// Tail returns the last n lines of the process log.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitHTTP polls url until it answers 200, the process dies or timeout.
func WaitHTTP(ctx context.Context, url string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	var last string
	for time.Now().Before(deadline) {
		if p != nil {
			if dead, err := p.Exited(); dead {
				return fmt.Errorf("%s exited (%v) before %s answered:\n%s", p.Name, err, url, p.Tail(20))
			}
		}
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s (last: %s)", url, timeout, last)
}

// Memory is a process's resident memory from /proc/<pid>/status.
type Memory struct {
	RSS, HWM int64 // bytes; HWM is the peak RSS
}

// ReadMemory reads VmRSS and VmHWM of pid.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory: %w", err)
	}
	defer f.Close()
	return parseStatus(f)
}

func parseStatus(r io.Reader) (Memory, error) {
	var m Memory
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", k, sc.Text())
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("parse %s: %w", k, err)
		}
		if k == "VmRSS" {
			m.RSS = n << 10
		} else {
			m.HWM = n << 10
		}
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in status")
	}
	return m, sc.Err()
}

// ProcCPU is the CPU time (user+system) pid has used so far, from
// /proc/<pid>/stat (clock ticks of 1/100 s on Linux).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	return parseStatCPU(string(b))
}

func parseStatCPU(s string) (time.Duration, error) {
	// The command name (field 2) may hold spaces; fields after ")" are fixed.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat times")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// cpuMeter samples the CPU time of several processes over an interval.
type cpuMeter struct {
	names []string
	pids  []int
	start []time.Duration
	t0    time.Time
	// used is the CPU time of each process over the last begin..end.
	used          []time.Duration
	busy0, total0 int64
}

func newCPUMeter() *cpuMeter { return &cpuMeter{} }

func (m *cpuMeter) add(name string, pid int) {
	m.names, m.pids = append(m.names, name), append(m.pids, pid)
}

// machineCPU returns busy and total jiffies of all CPUs from /proc/stat.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

func (m *cpuMeter) begin() {
	m.t0 = time.Now()
	m.busy0, m.total0 = machineCPU()
	m.start = make([]time.Duration, len(m.pids))
	for i, p := range m.pids {
		m.start[i], _ = ProcCPU(p)
	}
}

// end returns "name 1.23 cores, ..." averaged over the interval.
func (m *cpuMeter) end() string {
	el := time.Since(m.t0).Seconds()
	var parts []string
	m.used = make([]time.Duration, len(m.pids))
	for i, p := range m.pids {
		t, err := ProcCPU(p)
		if err != nil {
			continue
		}
		m.used[i] = t - m.start[i]
		parts = append(parts, fmt.Sprintf("%s %.2f", m.names[i], m.used[i].Seconds()/el))
	}
	busy, total := machineCPU()
	if total > m.total0 {
		parts = append(parts, fmt.Sprintf("whole machine %.0f%% busy", 100*float64(busy-m.busy0)/float64(total-m.total0)))
	}
	return "CPU cores used: " + strings.Join(parts, ", ")
}
