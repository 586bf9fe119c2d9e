package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Stalled-body flood: clients that send headers announcing a body and then
// one byte of it. The server must cut them at the body deadline, answer
// those beyond --max-connections 429 server_busy at once, keep serving
// other clients, and keep its memory bounded.
const (
	floodHelpers  = 2     // client processes (each under its own RLIMIT_NOFILE)
	floodPerProc  = 10000 // stalled connections each opens
	floodDeadline = 2 * time.Second
	floodMaxConns = 5000 // --max-connections, below the flood so some are told busy
)

// floodPaths cover device, unknown, method-not-allowed and admin routes.
var floodPaths = []string{"/stats", "/updates", "/channel_self", "/nope", "/healthz", "/api/v1/apps", "/bundles/a/1.0.0.zip"}

// floodReport is what one helper process saw.
type floodReport struct {
	Opened, DialErrors      int
	Busy, Answered, Hung    int
	Other                   map[string]int
	MaxHeldMillis           int64 // longest a non-busy connection stayed open
	MaxBusyMillis           int64 // longest a busy answer took to arrive
	NoFileSoft, NoFileHard  uint64
	FirstDialAt, LastDialAt time.Time
}

var (
	metricsRE = regexp.MustCompile(`msg="serving metrics".* metrics=(\S+)`)
	debugRE   = regexp.MustCompile(`msg="serving pprof".* debug=(\S+)`)
)

func TestStalledBodiesCannotHoldTheFront(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and floods it with 20,000 connections")
	}
	raiseNoFile(t)
	work := t.TempDir()
	bin := filepath.Join(work, "capstan")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(work, "data"), "--nats-listen", "", "--consume=false",
		"--body-timeout", floodDeadline.String(), "--max-connections", strconv.Itoa(floodMaxConns))
	srv.Env = cleanEnv()
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	pid := srv.Process.Pid
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	})
	addr, metrics, debug := waitServingAddrs(t, stderr)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 20 {
		if code, _ := getWith(client, "http://"+addr+"/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz before the flood: %d", code)
		}
	}
	rssBefore := rss(t, pid)

	// Other clients: a fresh connection to /healthz every 50 ms, and
	// Prometheus on the metrics port.
	type probe struct {
		at   time.Time
		took time.Duration
		code int
		body string
	}
	var (
		mu              sync.Mutex
		probes          []probe
		peakRSS         int64
		peakOpen        float64
		metricsFailures int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			t0 := time.Now()
			code, body := getWith(client, "http://"+addr+"/healthz")
			mu.Lock()
			probes = append(probes, probe{t0, time.Since(t0), code, body})
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			r := rssOrZero(pid)
			code, body := getWith(client, "http://"+metrics+"/metrics")
			mu.Lock()
			peakRSS = max(peakRSS, r)
			if code != http.StatusOK {
				metricsFailures++
			} else if v, ok := sample(body, `capstan_http_open_connections{listener="device"}`); ok {
				peakOpen = max(peakOpen, v)
			}
			mu.Unlock()
		}
	}()

	floodStart := time.Now()
	reports := make([]floodReport, floodHelpers)
	errs := make(chan error, floodHelpers)
	for i := range floodHelpers {
		go func() {
			rep, err := runFloodHelper(addr, fmt.Sprintf("127.0.0.%d", i+2))
			reports[i] = rep
			errs <- err
		}()
	}
	for range floodHelpers {
		if err := <-errs; err != nil {
			close(stop)
			t.Fatal(err)
		}
	}
	floodEnd := time.Now()
	time.Sleep(time.Second) // the probes go on a moment after the flood
	close(stop)
	wg.Wait()
	time.Sleep(2 * time.Second)
	rssAfter := rss(t, pid)
	// Two GCs through pprof (pooled buffers survive one), then the heap
	// the server still holds.
	for range 2 {
		_, _ = getWith(client, "http://"+debug+"/debug/pprof/heap?gc=1")
	}
	_, m := getWith(client, "http://"+metrics+"/metrics")
	heapAfter, _ := sample(m, "go_memstats_heap_inuse_bytes")
	openAfter, _ := sample(m, `capstan_http_open_connections{listener="device"}`)
	refused, _ := sample(m, `capstan_http_refused_connections_total{listener="device"}`)

	var total floodReport
	var lastDial time.Time
	total.Other = map[string]int{}
	for _, r := range reports {
		total.Opened += r.Opened
		total.DialErrors += r.DialErrors
		total.Busy += r.Busy
		total.Answered += r.Answered
		total.Hung += r.Hung
		total.MaxHeldMillis = max(total.MaxHeldMillis, r.MaxHeldMillis)
		total.MaxBusyMillis = max(total.MaxBusyMillis, r.MaxBusyMillis)
		for k, v := range r.Other {
			total.Other[k] += v
		}
		if r.LastDialAt.After(lastDial) {
			lastDial = r.LastDialAt
		}
	}
	var ok, busy, failed int
	var slowest time.Duration
	var lastOK time.Time
	var longestGap time.Duration
	prevOK := floodStart
	for _, p := range probes {
		slowest = max(slowest, p.took)
		switch {
		case p.code == http.StatusOK:
			ok++
			if p.at.After(floodStart) {
				longestGap = max(longestGap, p.at.Add(p.took).Sub(prevOK))
				prevOK = p.at.Add(p.took)
			}
			lastOK = p.at
		case p.code == http.StatusTooManyRequests && strings.Contains(p.body, `"server_busy"`):
			busy++
		default:
			failed++
			t.Logf("probe at +%s: %d %s", p.at.Sub(floodStart).Round(time.Millisecond), p.code, p.body)
		}
	}
	t.Logf("stalled connections: %d opened by %d processes (RLIMIT_NOFILE %d/%d each), %d dial errors; "+
		"%d answered 429 server_busy (slowest %d ms), %d held and then cut by the server (longest held %d ms), %d hung, other %v; flood opened in %s",
		total.Opened, floodHelpers, reports[0].NoFileSoft, reports[0].NoFileHard, total.DialErrors,
		total.Busy, total.MaxBusyMillis, total.Answered, total.MaxHeldMillis, total.Hung, total.Other, lastDial.Sub(floodStart).Round(time.Millisecond))
	t.Logf("server: peak open device connections %v (limit %d), %v refused, %v open 2 s after; RSS before %.1f MB, peak %.1f MB, after %.1f MB (Go heap in use after %.1f MB)",
		peakOpen, floodMaxConns, refused, openAfter, mb(rssBefore), mb(peakRSS), mb(rssAfter), heapAfter/(1<<20))
	t.Logf("other clients during %s of flood: %d /healthz probes, %d ok, %d 429 server_busy, %d failed; slowest answer %s; longest wait between two ok answers %s; metrics scrape failures %d",
		floodEnd.Sub(floodStart).Round(time.Millisecond), len(probes), ok, busy, failed, slowest.Round(time.Millisecond), longestGap.Round(time.Millisecond), metricsFailures)

	if total.Opened < floodHelpers*floodPerProc*95/100 {
		t.Errorf("only %d of %d stalled connections opened", total.Opened, floodHelpers*floodPerProc)
	}
	if total.Hung > 0 {
		t.Errorf("%d stalled connections got no answer and were not closed", total.Hung)
	}
	if total.Busy == 0 {
		t.Error("no connection was answered server_busy although the flood exceeds --max-connections")
	}
	if bound := floodDeadline + 3*time.Second; time.Duration(total.MaxHeldMillis)*time.Millisecond > bound {
		t.Errorf("a stalled connection was held %d ms, beyond the body deadline (%s) + slack", total.MaxHeldMillis, floodDeadline)
	}
	if openAfter > 1 {
		t.Errorf("%v device connections still open after the flood", openAfter)
	}
	if peakOpen > floodMaxConns {
		t.Errorf("server held %v device connections, limit %d", peakOpen, floodMaxConns)
	}
	if failed > 0 {
		t.Errorf("%d /healthz probes failed outright (neither answered nor told busy)", failed)
	}
	if slowest > 2*time.Second {
		t.Errorf("a /healthz probe waited %s: other clients must be answered or told busy at once", slowest)
	}
	if longestGap > floodDeadline+2*time.Second {
		t.Errorf("other clients went %s without a successful /healthz, beyond the body deadline %s", longestGap, floodDeadline)
	}
	if !lastOK.After(lastDial) {
		t.Error("no successful /healthz after the last stalled connection was opened")
	}
	if metricsFailures > 0 {
		t.Errorf("the metrics port failed %d scrapes during the flood", metricsFailures)
	}
	// A held connection costs ~35 KB of RSS (goroutine, buffers, request,
	// garbage not yet collected): bound it at 48 KB above the idle server.
	if limit := rssBefore + floodMaxConns*48<<10 + 64<<20; peakRSS > limit {
		t.Errorf("peak RSS %.1f MB, above %.1f MB", mb(peakRSS), mb(limit))
	}
}

// TestFloodHelper is the client side of the flood, run as a separate
// process by runFloodHelper (one process cannot hold 20,000 sockets under
// a 20,000 file limit). It prints a floodReport.
func TestFloodHelper(t *testing.T) {
	addr := os.Getenv("CAPSTAN_TEST_FLOOD_ADDR")
	if addr == "" {
		t.Skip("the client side of TestStalledBodiesCannotHoldTheFront")
	}
	raiseNoFile(t)
	var rep floodReport
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		rep.NoFileSoft, rep.NoFileHard = lim.Cur, lim.Max
	}
	local, _ := net.ResolveTCPAddr("tcp", os.Getenv("CAPSTAN_TEST_FLOOD_LOCAL")+":0")
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}
	var (
		mu                 sync.Mutex
		wg                 sync.WaitGroup
		opened, dialErrors atomic.Int64
	)
	rep.Other = map[string]int{}
	sem := make(chan struct{}, 256)
	rep.FirstDialAt = time.Now()
	for i := range floodPerProc {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialer.Dial("tcp", addr)
			<-sem
			if err != nil {
				dialErrors.Add(1)
				return
			}
			defer c.Close()
			opened.Add(1)
			t0 := time.Now()
			path := floodPaths[i%len(floodPaths)]
			if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: capstan\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[", path); err != nil {
				return // the server may already have answered busy and closed
			}
			// Never send the rest: read until the server answers and closes.
			_ = c.SetReadDeadline(time.Now().Add(floodDeadline + 15*time.Second))
			head, err := io.ReadAll(io.LimitReader(c, 4096))
			held := time.Since(t0).Milliseconds()
			mu.Lock()
			defer mu.Unlock()
			var ne net.Error
			switch {
			case err != nil && errors.As(err, &ne) && ne.Timeout():
				rep.Hung++
			case bytes.HasPrefix(head, []byte("HTTP/1.1 429")) && bytes.Contains(head, []byte(`"server_busy"`)):
				rep.Busy++
				rep.MaxBusyMillis = max(rep.MaxBusyMillis, held)
			case bytes.HasPrefix(head, []byte("HTTP/1.1 ")):
				rep.Answered++
				rep.MaxHeldMillis = max(rep.MaxHeldMillis, held)
				rep.Other[string(head[9:12])]++
			default:
				// Reset without an answer: still closed by the server.
				rep.Answered++
				rep.MaxHeldMillis = max(rep.MaxHeldMillis, held)
				rep.Other["closed"]++
			}
		}()
	}
	rep.LastDialAt = time.Now()
	wg.Wait()
	rep.Opened, rep.DialErrors = int(opened.Load()), int(dialErrors.Load())
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		t.Fatal(err)
	}
}

// runFloodHelper runs TestFloodHelper in a child process against addr,
// dialing from the loopback address local.
func runFloodHelper(addr, local string) (floodReport, error) {
	var rep floodReport
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFloodHelper$", "-test.count=1")
	cmd.Env = append(cleanEnv(), "CAPSTAN_TEST_FLOOD_ADDR="+addr, "CAPSTAN_TEST_FLOOD_LOCAL="+local)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return rep, fmt.Errorf("flood helper: %w\n%s%s", err, out.String(), errb.String())
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		return rep, fmt.Errorf("flood helper report %q: %w", line, err)
	}
	return rep, nil
}

// waitServingAddrs reads the device, metrics and pprof addresses from the log.
func waitServingAddrs(t *testing.T, stderr io.Reader) (addr, metrics, debug string) {
	t.Helper()
	type found struct{ addr, metrics, debug string }
	ch := make(chan found, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var f found
		sent := false
		for sc.Scan() {
			if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil {
				f.metrics = m[1]
			}
			if m := debugRE.FindStringSubmatch(sc.Text()); m != nil {
				f.debug = m[1]
			}
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				f.addr = m[1]
				ch <- f
				sent = true
			}
		}
	}()
	select {
	case f := <-ch:
		if f.metrics == "" || f.debug == "" {
			t.Fatalf("server logged no metrics or pprof address (%+v)", f)
		}
		return f.addr, f.metrics, f.debug
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start serving within 60s")
	}
	return "", "", ""
}

// raiseNoFile lifts this process's soft RLIMIT_NOFILE to its hard limit.
func raiseNoFile(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	if lim.Cur < floodPerProc+100 {
		t.Skipf("RLIMIT_NOFILE hard limit %d is below the %d sockets one flood process holds", lim.Max, floodPerProc)
	}
}

func getWith(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample reads one series' value from a Prometheus text exposition.
func sample(exposition, series string) (float64, bool) {
	for _, l := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// rss is a process's resident set size in bytes, from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	r := rssOrZero(pid)
	if r == 0 {
		t.Fatalf("cannot read VmRSS of pid %d", pid)
	}
	return r
}

func rssOrZero(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
