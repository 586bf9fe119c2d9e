package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/ingest"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

// front is the real /stats handler publishing to the test's JetStream;
// posts counts the events it acknowledged with a 2xx.
type front struct {
	h     http.Handler
	seq   atomic.Int64
	acked atomic.Int64
}

func newFront(js jetstream.JetStream) *front {
	return &front{h: ingest.New(ingest.Config{JetStream: js})}
}

// post sends one device batch of n distinct events for app and returns
// how many the front acknowledged.
func (f *front) post(t *testing.T, app string, n int) int {
	t.Helper()
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		k := f.seq.Add(1)
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"platform":%q,"device_id":"00000000-0000-4000-8000-%012d","app_id":%q,`+
			`"version_build":"1.0.0","version_code":"1","version_os":"17.5","version_name":"1.0.%d",`+
			`"plugin_version":"8.51.0","is_emulator":false,"is_prod":true,"action":%q,`+
			`"old_version_name":"","metadata":{"k":"%d"},"timestamp":%d}`,
			[]string{"ios", "android"}[k%2], k%97, app, k%3,
			[]string{"set", "app_launch_ready", "download_fail", "update_fail"}[k%4], k, 1_750_000_000_000+k)
	}
	b.WriteByte(']')
	req := httptest.NewRequest(http.MethodPost, "/stats", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		return 0
	}
	var resp struct {
		Results []struct {
			Status string `json:"status"`
		} `json:"results"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("stats answer %q: %v", rec.Body.String(), err)
	}
	ok := 0
	for _, r := range resp.Results {
		if r.Status == "ok" {
			ok++
		}
	}
	f.acked.Add(int64(ok))
	return ok
}

func TestHappyPathThroughIngest(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	f := newFront(ne.js)
	r := startConsumer(t, testConfig(ne.js, db.conn))
	for i := 0; i < 20; i++ {
		if got := f.post(t, fmt.Sprintf("com.example.app%d", i%3), 25); got != 25 {
			t.Fatalf("front acknowledged %d of 25 events", got)
		}
	}
	db.waitCounts(t, int(f.acked.Load()))
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	if got := r.metric(t, "capstan_consumer_inserted_events_total"); got != float64(f.acked.Load()) {
		t.Errorf("inserted_events_total = %v, want %d", got, f.acked.Load())
	}
}

// ClickHouse dies (SIGKILL) while devices keep posting, and comes back:
// every event the front acknowledged ends up stored exactly once.
func TestClickHouseOutageLosesNothing(t *testing.T) {
	srv := chtest.StartServer(t)
	ne := startNATS(t)
	db := newCHDB(t, srv)
	f := newFront(ne.js)
	cfg := testConfig(ne.js, db.conn)
	cfg.BatchSize = 200
	r := startConsumer(t, cfg)

	const requests, perRequest = 80, 25
	var posted atomic.Int64
	postDone := make(chan struct{})
	go func() {
		defer close(postDone)
		for i := 0; i < requests; i++ {
			f.post(t, "com.example.outage", perRequest)
			posted.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}()

	waitFor(t, "first inserts", func() bool { return r.metric(t, "capstan_consumer_inserted_events_total") >= 100 })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := posted.Load()
	waitFor(t, "inserts failing", func() bool { return r.metric(t, "capstan_consumer_insert_errors_total") >= 3 })
	waitFor(t, "posting during the outage", func() bool { return posted.Load() >= killedAt+20 || posted.Load() == requests })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	<-postDone
	if got := f.acked.Load(); got != requests*perRequest {
		t.Fatalf("front acknowledged %d of %d events although JetStream was up", got, requests*perRequest)
	}
	db.waitCounts(t, int(f.acked.Load()))
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	if r.metric(t, "capstan_consumer_insert_retries_total") == 0 {
		t.Error("no retries counted")
	}
}

// Without a reachable ClickHouse, Start keeps trying in the background
// while events wait in JetStream; once it is up they all get in.
func TestStartWaitsForClickHouse(t *testing.T) {
	srv, err := chtest.NewServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	ne := startNATS(t)
	f := newFront(ne.js)
	cfg := testConfig(ne.js, nil)
	ctx, cancel := context.WithCancel(context.Background())
	runner, err := Start(ctx, cfg, ClickHouseConnector(srv.DSN("default"), 0, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := runner.Wait(); err != nil {
			t.Errorf("runner: %v", err)
		}
	}()
	for i := 0; i < 4; i++ {
		f.post(t, "com.example.late", 25)
	}
	if f.acked.Load() != 100 {
		t.Fatalf("front acknowledged %d of 100 events without ClickHouse", f.acked.Load())
	}
	if runner.Connected() {
		t.Fatal("connected to a ClickHouse that is not running")
	}
	if streamEmpty(t, ne.js) {
		t.Fatal("events left JetStream without ClickHouse")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "consumer connected", runner.Connected)
	conn := srv.Conn(t, "default")
	db := &chDB{srv: srv, name: "default", conn: conn}
	db.waitCounts(t, 100)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
}

// Inserts fail for several AckWaits (server down, then up without the
// tables): progress acks keep the batch being inserted, and the next one
// sealed behind it, from being redelivered; nothing is dropped, and it
// all gets in once the schema exists.
func TestLongRetriesKeepAckDeadlines(t *testing.T) {
	srv, err := chtest.NewServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{srv.Addr()}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ne := startNATS(t)
	gate := &gatedConn{Conn: conn}
	cfg := testConfig(ne.js, gate)
	cfg.Flavor = schema.FlavorLegacy
	cfg.AckWait = time.Second
	r := startConsumer(t, cfg)
	// Three batches: one retrying, one sealed waiting for it, one left
	// in the stream.
	n := publish(t, ne.js, makeEvents("com.example.slow", 300))

	// 15 failures at the 200ms backoff cap outlast AckWait twice over.
	waitFor(t, "failures while down", func() bool { return r.metric(t, "capstan_consumer_insert_errors_total") >= 15 })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	before := r.metric(t, "capstan_consumer_insert_errors_total")
	waitFor(t, "failures without tables", func() bool { return r.metric(t, "capstan_consumer_insert_errors_total") >= before+3 })
	db := &chDB{srv: srv, name: "default", conn: srv.Conn(t, "default")}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Consumers migrate before their first insert; this one was given a
	// bare connection, so the schema must appear to it all at once. An
	// insert landing between two migrations would miss a view.
	gate.closed.Store(true)
	closedAt := r.metric(t, "capstan_consumer_insert_errors_total")
	waitFor(t, "the attempt in flight ends", func() bool { return r.metric(t, "capstan_consumer_insert_errors_total") >= closedAt+2 })
	if err := schema.Migrate(ctx, db.conn, schema.MigrateOptions{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	gate.closed.Store(false)
	db.waitCounts(t, n)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	if got := r.metric(t, "capstan_consumer_redeliveries_total"); got != 0 {
		t.Errorf("%v redeliveries although progress acks were sent", got)
	}
}

// Shutdown while ClickHouse is down, with one batch being retried and the
// next sealed behind it: the drain gives up after DrainTimeout and hands
// both back to JetStream at once (nak), and the next replica stores every
// event once.
func TestShutdownDuringOutageHandsBatchesBack(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	cfg := testConfig(ne.js, unreachableClickHouse(t))
	cfg.Flavor = detectFlavor(t, db)
	cfg.AckWait = 10 * time.Minute // only naks hand the events back in time
	cfg.DrainTimeout = 300 * time.Millisecond
	doomed := startConsumer(t, cfg)
	n := publish(t, ne.js, makeEvents("com.example.handback", 300))
	waitFor(t, "a batch retrying and the next one sealed", func() bool {
		return doomed.metric(t, "capstan_consumer_insert_errors_total") >= 2 && ackPending(t, ne.js) == 200
	})
	doomed.stop(t)

	next := startConsumer(t, testConfig(ne.js, db.conn))
	db.waitCounts(t, n)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	if got := next.metric(t, "capstan_consumer_redeliveries_total"); got != 200 {
		t.Errorf("redeliveries_total = %v, want the 200 events of the two batches", got)
	}
}

// postRaw sends one body to the front and returns the status code.
func (f *front) postRaw(t *testing.T, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/stats", strings.NewReader(body))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code
}

// Event identity end to end: identical timestamp-less events sent in
// separate requests are two rows and count twice in the rollup; a resent
// timestamped batch adds nothing.
func TestEventIdentityThroughPipeline(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	f := newFront(ne.js)
	startConsumer(t, testConfig(ne.js, db.conn))

	const dev = `"platform":"android","device_id":"00000000-0000-4000-8000-000000000001","app_id":"com.example.identity",` +
		`"version_name":"1.0.0","old_version_name":"","plugin_version":"8.51.23","is_emulator":false,"is_prod":true`
	bare := `{` + dev + `,"action":"download_manifest_start"}`
	for i := 0; i < 2; i++ {
		if code := f.postRaw(t, bare); code != 200 {
			t.Fatalf("timestamp-less send %d: %d", i, code)
		}
	}
	batch := `[{` + dev + `,"action":"set","timestamp":1750000000000},{` + dev + `,"action":"app_launch_ready","timestamp":1750000000001}]`
	for i := 0; i < 3; i++ {
		if code := f.postRaw(t, batch); code != 200 {
			t.Fatalf("batch send %d: %d", i, code)
		}
	}
	db.waitCounts(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for action, want := range map[string]uint64{"download_manifest_start": 2, "set": 1, "app_launch_ready": 1} {
		var rows, rollup uint64
		if err := db.conn.QueryRow(ctx, "SELECT count() FROM capstan_events WHERE action = ?", action).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := db.conn.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM capstan_events_minute WHERE action = ?", action).Scan(&rollup); err != nil {
			t.Fatal(err)
		}
		if rows != want || rollup != want {
			t.Errorf("%s: %d rows, rollup %d, want %d", action, rows, rollup, want)
		}
	}
}

// Failure accounting end to end: an old plugin's download_fail is stored
// but not counted, a failure naming its bundle is attributed to it, and
// the report counts production devices only unless asked.
func TestFailureAccountingThroughPipeline(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	f := newFront(ne.js)
	startConsumer(t, testConfig(ne.js, db.conn))

	dev := func(id, plugin, extra string) string {
		return `"platform":"android","device_id":"00000000-0000-4000-8000-00000000000` + id + `","app_id":"com.example.fail",` +
			`"version_name":"1.0.0","old_version_name":"","plugin_version":"` + plugin + `"` + extra
	}
	body := `[{` + dev("1", "7.1.0", `,"is_prod":true`) + `,"action":"download_fail","timestamp":1}` +
		`,{` + dev("2", "8.51.23", `,"is_prod":true`) + `,"action":"download_fail","timestamp":2,"metadata":{"failed_version":"1.1.0"}}` +
		`,{` + dev("3", "8.51.23", `,"is_prod":true,"is_emulator":true`) + `,"action":"download_fail","timestamp":3}` +
		`,{` + dev("4", "8.51.23", `,"is_prod":false`) + `,"action":"download_fail","timestamp":4}` +
		`,{` + dev("5", "8.51.23", `,"is_prod":true`) + `,"action":"set","timestamp":5}]`
	if code := f.postRaw(t, body); code != 200 {
		t.Fatalf("post: %d", code)
	}
	db.waitCounts(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ignored uint8
	var reported string
	if err := db.conn.QueryRow(ctx, "SELECT ignored FROM capstan_events WHERE plugin_version = '7.1.0'").Scan(&ignored); err != nil || ignored != 1 {
		t.Fatalf("legacy download_fail: ignored %d, %v", ignored, err)
	}
	if err := db.conn.QueryRow(ctx, "SELECT reported_version_name FROM capstan_events WHERE version_name = '1.1.0'").Scan(&reported); err != nil || reported != "1.0.0" {
		t.Fatalf("attributed failure: reported %q, %v", reported, err)
	}
	q := schema.ReportQuery{App: "com.example.fail", Since: time.Now().Add(-time.Hour)}
	failures := func(q schema.ReportQuery) map[string]uint64 {
		rows, err := schema.Report(ctx, db.conn, q)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint64{}
		for _, r := range rows {
			out[r.Version] = r.Failures
		}
		return out
	}
	if got := failures(q); got["1.0.0"] != 0 || got["1.1.0"] != 1 {
		t.Errorf("production failures %v, want 1.0.0: 0, 1.1.0: 1", got)
	}
	q.IncludeDev = true
	if got := failures(q); got["1.0.0"] != 2 || got["1.1.0"] != 1 {
		t.Errorf("failures with dev devices %v, want 1.0.0: 2, 1.1.0: 1", got)
	}
}

// An insert that fails after ClickHouse wrote the raw table but before
// the rollup views is retried whole: skipping the raw rows it finds
// would keep them out of the rollups for good.
func TestInsertFailedInViewsRetriedWhole(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// ClickHouse fills an insert's views in name order: this one fails
	// first, after the raw table took the block.
	if err := db.conn.Exec(ctx, "CREATE MATERIALIZED VIEW a_failing ENGINE = Memory AS SELECT throwIf(event_id != '') AS x FROM capstan_events"); err != nil {
		t.Fatal(err)
	}
	n := publish(t, ne.js, makeEvents("com.example.views", 50))
	r := startConsumer(t, testConfig(ne.js, db.conn))
	waitFor(t, "inserts failing in a view", func() bool { return r.metric(t, "capstan_consumer_insert_errors_total") >= 1 })
	if c := db.counts(t); c.rawDistinct != uint64(n) || c.rollup != 0 {
		t.Fatalf("the failing view left %+v; the test needs every raw row and no rollup", c)
	}
	if err := db.conn.Exec(ctx, "DROP TABLE a_failing"); err != nil {
		t.Fatal(err)
	}
	db.waitCounts(t, n)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
}

// gatedConn is a real ClickHouse connection whose inserts fail, as a
// retryable error, while closed.
type gatedConn struct {
	driver.Conn
	closed atomic.Bool
}

func (g *gatedConn) PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	if g.closed.Load() {
		return nil, errors.New("inserts held while the schema is migrated")
	}
	return g.Conn.PrepareBatch(ctx, query, opts...)
}
