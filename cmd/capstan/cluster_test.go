package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/bundlezip"
)

// testCluster is a JetStream cluster of embedded nats-servers routed to
// each other on loopback, file storage in temp dirs. Nodes can be killed
// (Shutdown: no leadership transfer, so followers elect after missing
// heartbeats, as after a crash) and restarted on the same ports and data.
type testCluster struct {
	t     *testing.T
	mu    sync.Mutex
	opts  map[string]*server.Options
	srv   map[string]*server.Server
	names []string
	urls  string // every node's client URL, comma-separated
}

func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, opts: map[string]*server.Options{}, srv: map[string]*server.Server{}}
	clientPorts, routePorts := make([]int, n), make([]int, n)
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
	}
	var urls []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", routePorts[j]))
			}
		}
		c.opts[name] = &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 8 << 20,
			Cluster:    server.ClusterOpts{Name: "capstan-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		c.names = append(c.names, name)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	c.urls = strings.Join(urls, ",")
	t.Cleanup(func() {
		for _, name := range c.names {
			c.kill(name)
		}
	})
	for _, name := range c.names {
		c.start(name)
	}
	return c
}

func (c *testCluster) start(name string) {
	c.t.Helper()
	o := *c.opts[name] // NewServer keeps and adjusts its options
	srv, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("node %s: %v", name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		c.t.Fatalf("node %s not ready", name)
	}
	c.mu.Lock()
	c.srv[name] = srv
	c.mu.Unlock()
}

func (c *testCluster) kill(name string) {
	c.mu.Lock()
	srv := c.srv[name]
	delete(c.srv, name)
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// leader names the node leading a stream, waiting for one to be elected.
func (c *testCluster) leader(ctx context.Context, js jetstream.JetStream, stream string) string {
	c.t.Helper()
	for {
		if s, err := js.Stream(ctx, stream); err == nil {
			if ci := s.CachedInfo().Cluster; ci != nil && ci.Leader != "" {
				return ci.Leader
			}
		}
		if ctx.Err() != nil {
			c.t.Fatalf("stream %s has no leader: %v", stream, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCurrent waits until a stream has a leader and every replica is
// online and current (a restarted node caught up).
func (c *testCluster) waitCurrent(ctx context.Context, js jetstream.JetStream, stream string, replicas int) {
	c.t.Helper()
	for {
		if s, err := js.Stream(ctx, stream); err == nil {
			ci := s.CachedInfo().Cluster
			ok := ci != nil && ci.Leader != "" && len(ci.Replicas) == replicas-1
			if ok {
				for _, p := range ci.Replicas {
					ok = ok && p.Current && !p.Offline
				}
			}
			if ok {
				return
			}
		}
		if ctx.Err() != nil {
			c.t.Fatalf("stream %s replicas not current: %v", stream, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterFront is a `capstan serve` run in this process.
type clusterFront struct {
	addr   string
	args   []string
	cancel context.CancelFunc
	done   chan error
}

func launchFront(t *testing.T, args ...string) *clusterFront {
	ctx, cancel := context.WithCancel(context.Background())
	f := &clusterFront{addr: args[1], args: args, cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- runServe(ctx, args) }()
	t.Cleanup(func() { f.stop(t) })
	return f
}

func (f *clusterFront) stop(t *testing.T) {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("serve %s: %v", f.addr, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve %s did not stop", f.addr)
	}
}

func (f *clusterFront) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if code, _ := get(t, "http://"+f.addr+"/readyz"); code == http.StatusOK {
			return
		}
		select {
		case err := <-f.done:
			f.cancel = nil
			t.Fatalf("serve %s exited: %v", f.addr, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("front %s not ready after %s", f.addr, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outage is what happened to a stream of requests around a kill.
type outage struct {
	mu       sync.Mutex
	done     []time.Time // when successes were answered
	killedAt time.Time
	// recovered: a request sent after the kill succeeded.
	recovered bool
	refused   map[int]int // status → count while refused
}

// ok records a success of a request sent at sent.
func (o *outage) ok(sent time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, time.Now())
	if !o.killedAt.IsZero() && sent.After(o.killedAt) {
		o.recovered = true
	}
}

func (o *outage) refuse(code int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refused == nil {
		o.refused = map[int]int{}
	}
	o.refused[code]++
}

func (o *outage) kill() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.killedAt, o.recovered = time.Now(), false
}

// gap waits until a request sent after the kill succeeded and returns
// the longest time between two successes since the last one before the
// kill: how long nothing was accepted.
func (o *outage) gap(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		o.mu.Lock()
		if o.recovered {
			var longest time.Duration
			prev := o.killedAt
			for i, d := range o.done {
				if d.Before(o.killedAt) {
					prev = d
					continue
				}
				if i > 0 && o.done[i-1].Before(o.killedAt) {
					prev = o.done[i-1]
				}
				longest = max(longest, d.Sub(prev))
				prev = d
			}
			o.mu.Unlock()
			return longest
		}
		o.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no success within %s of the kill", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestClusterFailover runs fronts against a 3-node JetStream cluster with
// --replicas 3. Two fronts and a consumer start at the same
// moment on the fresh cluster and all succeed. Then the events stream's
// leader is killed mid-ingest, the release bucket's leader during admin
// writes and the dead-letter stream's leader, each node restarted after;
// fronts start and restart while a node is down, and `capstan consume`
// inserts into a real ClickHouse throughout. Update checks are answered
// from memory, admin writes fail only with 503, and every acknowledged
// event is in ClickHouse and its rollup exactly once. The seconds without
// acceptance per leader loss are logged.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-node NATS cluster")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL", "CAPSTAN_REPLICAS")
	chSrv := chtest.StartServer(t)
	const chDB = "capstan_cluster"
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl := startCluster(t, 3)

	const token = "cluster-test"
	frontArgs := func(addr, dataDir string) []string {
		return []string{"--listen", addr, "--data-dir", dataDir, "--nats-url", cl.urls, "--replicas", "3",
			"--consume=false", "--admin-token", token, "--log-level", "error", "--metrics-listen", freeAddr(t)}
	}
	dirA := t.TempDir()
	// Three creators at the same moment on a cluster that has no meta
	// leader yet: two fronts and a consumer's stream set-up.
	fa := launchFront(t, frontArgs(freeAddr(t), dirA)...)
	fb := launchFront(t, frontArgs(freeAddr(t), t.TempDir())...)
	// The consumer is `capstan consume` into a real ClickHouse, started
	// with the fronts and left running through every kill.
	consumeCtx, stopConsume := context.WithCancel(ctx)
	defer stopConsume()
	consumeErr := make(chan error, 1)
	consumeMetrics := freeAddr(t)
	go func() {
		consumeErr <- runConsume(consumeCtx, []string{"--nats-url", cl.urls, "--replicas", "3",
			"--clickhouse-url", chSrv.DSN(chDB), "--batch-linger", "100ms",
			"--metrics-listen", consumeMetrics, "--log-level", "error"})
	}()
	fa.waitReady(t, 60*time.Second)
	fb.waitReady(t, 30*time.Second)
	waitUntil(t, "consumer ready", func() bool {
		select {
		case err := <-consumeErr:
			t.Fatalf("capstan consume exited: %v", err)
		default:
		}
		code, _ := get(t, "http://"+consumeMetrics+"/readyz")
		return code == http.StatusOK
	})
	t.Logf("two fronts and a consumer set-up started together on a fresh cluster in %s", time.Since(began).Round(time.Millisecond))

	tb, err := bus.Open(ctx, bus.Config{URL: cl.urls, Name: "cluster-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	js := tb.JetStream
	for _, name := range []string{schema.EventsStream, schema.DeadLetterStream, "KV_capstan_releases", "OBJ_capstan_bundles"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
	}

	// An app with a public bundle, so update checks have an answer.
	ac := admin.NewClient("http://"+fa.addr, token)
	const app = "com.example.cluster"
	if _, err := ac.CreateApp(ctx, app, "Cluster"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<title>1.0.1</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer
	if err := bundlezip.ZipDir(dir, &zip); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.UploadBundle(ctx, app, admin.BundleMetadata{Version: "1.0.1"}, &zip); err != nil {
		t.Fatal(err)
	}
	v, public := "1.0.1", true
	if _, err := ac.SetChannel(ctx, app, "production", admin.ChannelPatch{Bundle: &v, Public: &public}); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, fa.addr, app, "1.0.1", 5*time.Second)
	waitVersion(t, fb.addr, app, "1.0.1", 5*time.Second)

	var (
		frontsMu sync.Mutex
		fronts   = []string{fa.addr, fb.addr}
	)
	pick := func(i int) string {
		frontsMu.Lock()
		defer frontsMu.Unlock()
		return fronts[i%len(fronts)]
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 15 * time.Second}

	// Update checks, answered from each front's memory whatever NATS does.
	var checks, badChecks atomic.Int64
	var firstBad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		req := fmt.Sprintf(`{"app_id":%q,"device_id":"0b6f3c5e-7a1d-4e2b-9c8d-2f3a4b5c6d7e","platform":"ios",
			"version_build":"1.0.0","version_name":"builtin","plugin_version":"8.51.23","is_prod":true,"is_emulator":false}`, app)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			f := pick(i)
			resp, err := hc.Post("http://"+f+"/updates", "application/json", strings.NewReader(req))
			checks.Add(1)
			if err != nil {
				badChecks.Add(1)
				firstBad.CompareAndSwap(nil, err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"1.0.1"`)) {
				badChecks.Add(1)
				firstBad.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", f, resp.StatusCode, body))
			}
		}
	}()

	// Ingest: batches of unique events, each resent as the plugin does
	// (same body) until a front answers 200.
	const perBatch = 20
	var acked atomic.Int64
	var ingestOut outage
	var badIngest atomic.Value
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var sb strings.Builder
				sb.WriteByte('[')
				ts := time.Now().UnixMilli()
				for k := range perBatch {
					if k > 0 {
						sb.WriteByte(',')
					}
					fmt.Fprintf(&sb, `{"app_id":%q,"device_id":"%s-%s","platform":"android","action":"app_launch_ready","version_name":"1.0.1","version_build":"1.0.0","plugin_version":"8.51.23","timestamp":%d}`,
						app, randomHex(8), "4e2b-9c8d-2f3a4b5c6d7e", ts+int64(k))
				}
				sb.WriteByte(']')
				body := sb.String()
				for try := 0; ; try++ {
					sent := time.Now()
					resp, err := hc.Post("http://"+pick(w+i+try)+"/stats", "application/json", strings.NewReader(body))
					if err != nil {
						ingestOut.refuse(0)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					out, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						if bytes.Contains(out, []byte(`"error"`)) {
							badIngest.CompareAndSwap(nil, string(out))
						}
						acked.Add(perBatch)
						ingestOut.ok(sent)
						break
					}
					ingestOut.refuse(resp.StatusCode)
					if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
						badIngest.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, out))
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}

	// Admin writes through every front, two at a time.
	var adminOut outage
	var badAdmin atomic.Value
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				front := pick(w + i)
				c := admin.NewClient("http://"+front, token)
				c.HTTP = hc
				wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
				sent := time.Now()
				_, err := c.CreateApp(wctx, fmt.Sprintf("com.example.w%d-%d", w, i), "W")
				wcancel()
				took := time.Since(sent)
				var ae *admin.APIError
				switch {
				case err == nil:
					adminOut.ok(sent)
					if took > time.Second {
						t.Logf("admin write sent %s succeeded after %s", sent.Format("15:04:05.000"), took.Round(time.Millisecond))
					}
				case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
					adminOut.refuse(ae.Status)
					if took < time.Second {
						break
					}
					t.Logf("admin write sent %s failed after %s: %v", sent.Format("15:04:05.000"), took.Round(time.Millisecond), err)
				case errors.Is(err, context.DeadlineExceeded):
					// No answer in 15 s: counted and logged, not failed on
					// (the write path's own waits are not this change's).
					adminOut.refuse(-1)
					t.Logf("admin write to %s sent %s: no answer after %s: %v", front, sent.Format("15:04:05.000"), took.Round(time.Millisecond), err)
				default:
					adminOut.refuse(-2)
					badAdmin.CompareAndSwap(nil, fmt.Sprintf("front %s, sent %s, after %s: %v", front, sent.Format("15:04:05.000"), took.Round(time.Millisecond), err))
				}
			}
		}()
	}

	settle := func() { time.Sleep(time.Second) }
	settle()

	// 1. The events stream's leader dies mid-ingest.
	victim := cl.leader(ctx, js, schema.EventsStream)
	ingestOut.kill()
	cl.kill(victim)
	gapEvents := ingestOut.gap(t, 20*time.Second)
	t.Logf("events stream leader %s killed: no event accepted for %.2fs", victim, gapEvents.Seconds())
	settle()
	cl.start(victim)
	cl.waitCurrent(ctx, js, schema.EventsStream, 3)

	// 2. The release bucket's leader dies during admin writes; a new front
	// starts while it is down.
	victim = cl.leader(ctx, js, "KV_capstan_releases")
	adminOut.kill()
	t.Logf("killing %s at %s", victim, time.Now().Format("15:04:05.000"))
	cl.kill(victim)
	gapAdmin := adminOut.gap(t, 20*time.Second)
	t.Logf("release bucket leader %s killed: no admin write succeeded for %.2fs", victim, gapAdmin.Seconds())
	fc := launchFront(t, frontArgs(freeAddr(t), t.TempDir())...)
	fc.waitReady(t, 20*time.Second)
	waitVersion(t, fc.addr, app, "1.0.1", 5*time.Second)
	frontsMu.Lock()
	fronts = append(fronts, fc.addr)
	frontsMu.Unlock()
	cl.start(victim)
	cl.waitCurrent(ctx, js, "KV_capstan_releases", 3)

	// 3. The dead-letter stream's leader dies; it keeps taking messages,
	// and front A restarts while the node is down.
	victim = cl.leader(ctx, js, schema.DeadLetterStream)
	killed := time.Now()
	cl.kill(victim)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 250*time.Millisecond)
		_, err := js.Publish(pctx, schema.DeadLetterSubject, []byte("undecodable"), jetstream.WithMsgID("dlq-"+randomHex(4)))
		pcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Since(killed) > 20*time.Second {
			t.Fatalf("dead-letter stream without %s: %v", victim, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gapDLQ := time.Since(killed)
	t.Logf("killed %s at %s", victim, killed.Format("15:04:05.000"))
	t.Logf("dead-letter stream leader %s killed: no message accepted for %.2fs", victim, gapDLQ.Seconds())
	frontsMu.Lock()
	fronts = []string{fb.addr, fc.addr}
	frontsMu.Unlock()
	t.Logf("restarting front A %s at %s", fa.addr, time.Now().Format("15:04:05.000"))
	time.Sleep(500 * time.Millisecond) // requests already sent to A finish
	hc.CloseIdleConnections()
	fa.stop(t)
	fa = launchFront(t, fa.args...)
	fa.waitReady(t, 20*time.Second)
	waitVersion(t, fa.addr, app, "1.0.1", 5*time.Second)
	cl.start(victim)
	settle()

	close(stop)
	wg.Wait()
	if v := badIngest.Load(); v != nil {
		t.Errorf("ingest answered other than 200 or 429 with Retry-After: %v", v)
	}
	if v := badAdmin.Load(); v != nil {
		t.Errorf("admin write failed other than with 503: %v", v)
	}
	if n := badChecks.Load(); n > 0 {
		t.Errorf("%d of %d update checks failed; first: %v", n, checks.Load(), firstBad.Load())
	}
	t.Logf("update checks: %d, all answered; ingest refusals %v; admin refusals %v", checks.Load(), ingestOut.refused, adminOut.refused)

	// Every acknowledged event reached ClickHouse once: the work queue
	// drains, the table holds exactly the acknowledged ids (redelivered
	// copies collapse) and the rollup counts each once.
	want := acked.Load()
	s, err := js.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	conn := chSrv.Conn(t, chDB)
	var stored, distinct, rolled uint64
	drained := time.Now()
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM capstan_events FINAL WHERE app_id = ?", app).Scan(&stored, &distinct); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM capstan_rollup_minute WHERE app_id = ?", app).Scan(&rolled); err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 && int64(distinct) >= want && int64(rolled) >= want {
			break
		}
		if ctx.Err() != nil || time.Since(drained) > 30*time.Second {
			t.Fatalf("not drained: stream holds %d, ClickHouse %d distinct of %d acknowledged, rollup %d", info.State.Msgs, distinct, want, rolled)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if int64(stored) != want || int64(distinct) != want || int64(rolled) != want {
		t.Errorf("acknowledged %d events; ClickHouse holds %d rows (%d distinct ids), rollup counts %d", want, stored, distinct, rolled)
	}
	stopConsume()
	if err := <-consumeErr; err != nil {
		t.Errorf("capstan consume: %v", err)
	}
	t.Logf("acknowledged events %d, in ClickHouse %d (distinct %d), rollup %d; seconds without acceptance: events %.2f, admin %.2f, dead-letter %.2f; total %s",
		want, stored, distinct, rolled, gapEvents.Seconds(), gapAdmin.Seconds(), gapDLQ.Seconds(), time.Since(began).Round(time.Millisecond))
}
