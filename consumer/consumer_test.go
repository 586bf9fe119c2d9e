package consumer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// testTimeout bounds every wait in these tests.
const testTimeout = 60 * time.Second

// natsEnv is a real JetStream server with two users: "ok" may do
// anything, "noack" cannot acknowledge messages (its acks are dropped by
// the server, as when a consumer dies right after inserting).
type natsEnv struct {
	srv *server.Server
	js  jetstream.JetStream
}

func startNATS(t testing.TB) *natsEnv {
	t.Helper()
	o := &server.Options{
		ServerName: "capstan-consumer-test",
		JetStream:  true,
		StoreDir:   filepath.Join(t.TempDir(), "js"),
		Host:       "127.0.0.1",
		Port:       -1,
		NoSigs:     true,
		NoLog:      true,
		Users: []*server.User{
			{Username: "ok", Password: "ok"},
			{Username: "noack", Password: "noack", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Deny: []string{"$JS.ACK.>"}},
			}},
		},
	}
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	e := &natsEnv{srv: srv}
	e.js = e.connect(t, "ok")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := schema.EnsureStreams(ctx, e.js, schema.DefaultStreamLimits()); err != nil {
		t.Fatal(err)
	}
	return e
}

// connect opens a connection of its own, closed at the end of the test
// (closing it earlier is how a test kills a consumer).
func (e *natsEnv) connect(t testing.TB, user string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(e.srv.ClientURL(), nats.UserInfo(user, user), nats.MaxReconnects(-1),
		// The "noack" user's refused acks are the point, not news.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testEvent is a valid event for app, received now.
func testEvent(app string, i int) *schema.Event {
	return &schema.Event{
		ID:          newEventID(),
		ReceivedMs:  time.Now().UnixMilli(),
		ClientMs:    time.Now().Add(-time.Second).UnixMilli(),
		AppID:       app,
		DeviceID:    fmt.Sprintf("00000000-0000-0000-0000-%012d", i%50),
		Platform:    []string{"ios", "android"}[i%2],
		Action:      []string{"set", "app_launch_ready", "download_fail", "update_fail"}[i%4],
		VersionName: "1.0." + fmt.Sprint(i%3),
		Channel:     "production",
		IsProd:      true,
		Metadata:    map[string]string{"n": fmt.Sprint(i)},
	}
}

// publish stores events in the events stream the way fronts before
// per-request messages did (version 1: one message per event, Nats-Msg-Id
// = event id) and returns how many JetStream acknowledged. publishBatches
// stores them as ingest does now.
func publish(t testing.TB, js jetstream.JetStream, events []*schema.Event) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var futures []jetstream.PubAckFuture
	for _, ev := range events {
		data, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(schema.EventSubject(ev.AppID))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	acked := 0
	for _, f := range futures {
		select {
		case <-f.Ok():
			acked++
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		case <-ctx.Done():
			t.Fatal("publish acks timed out")
		}
	}
	return acked
}

func makeEvents(app string, n int) []*schema.Event {
	evs := make([]*schema.Event, n)
	for i := range evs {
		evs[i] = testEvent(app, i)
	}
	return evs
}

// chDB is a migrated, test-private database on a ClickHouse server.
type chDB struct {
	srv  *chtest.Server
	name string
	conn driver.Conn
}

func newCHDB(t testing.TB, srv *chtest.Server) *chDB {
	t.Helper()
	name := chtest.DBName(t)
	conn := srv.Conn(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{Database: name, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	return &chDB{srv: srv, name: name, conn: conn}
}

// counts are what dashboards would count.
type counts struct {
	rawRows, rawDistinct, rollup uint64
}

func (d *chDB) counts(t testing.TB) counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c counts
	if err := d.conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM capstan_events").Scan(&c.rawRows, &c.rawDistinct); err != nil {
		t.Fatalf("count raw events: %v", err)
	}
	// An insert makes its rows visible view by view, so the count is the
	// smaller of the two rollups: reports read the newer one.
	var older, newer uint64
	if err := d.conn.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM capstan_events_minute").Scan(&older); err != nil {
		t.Fatalf("count rollup: %v", err)
	}
	if err := d.conn.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM capstan_rollup_minute").Scan(&newer); err != nil {
		t.Fatalf("count rollup: %v", err)
	}
	c.rollup = min(older, newer)
	return c
}

// waitFor polls cond until it holds or the test timeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCounts waits until ClickHouse holds exactly want events, each
// counted once.
func (d *chDB) waitCounts(t testing.TB, want int) {
	t.Helper()
	var last counts
	deadline := time.Now().Add(testTimeout)
	for {
		last = d.counts(t)
		if last.rawDistinct == uint64(want) && last.rollup == uint64(want) {
			break
		}
		if last.rawDistinct > uint64(want) || time.Now().After(deadline) {
			t.Fatalf("clickhouse holds %+v, want %d events", last, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A retried insert may store a raw row twice; merges (FINAL) keep one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var final uint64
	if err := d.conn.QueryRow(ctx, "SELECT count() FROM capstan_events FINAL").Scan(&final); err != nil {
		t.Fatalf("count merged raw events: %v", err)
	}
	if final != uint64(want) {
		t.Fatalf("raw table has %d merged rows for %d events", final, want)
	}
}

// running is a consumer under test.
type running struct {
	c      *Consumer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func testConfig(js jetstream.JetStream, conn driver.Conn) Config {
	return Config{
		JetStream:    js,
		ClickHouse:   conn,
		BatchSize:    100,
		Linger:       50 * time.Millisecond,
		AckWait:      2 * time.Second,
		RetryInitial: 20 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
		DrainTimeout: 10 * time.Second,
		InfoInterval: 100 * time.Millisecond,
	}
}

func startConsumer(t testing.TB, cfg Config) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the consumer and waits for its drain.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("consumer Run: %v", err)
		}
		r.done <- nil // later stops return at once
	case <-time.After(testTimeout):
		t.Fatal("consumer did not stop")
	}
}

// metric reads one sample from the consumer's /metrics exposition: a
// counter or gauge by name and labels (`name{reason="bad_json"}`), or a
// histogram's name_count / name_sum.
func (r *running) metric(t testing.TB, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || name != series {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// streamEmpty reports whether every event was acknowledged.
func streamEmpty(t testing.TB, js jetstream.JetStream) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs == 0
}

// unreachableClickHouse is a connection pool to a loopback port nothing
// listens on: every insert fails with "connection refused".
func unreachableClickHouse(t testing.TB) driver.Conn {
	t.Helper()
	srv, err := chtest.NewServer(t.TempDir()) // picks a free port, never started
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{srv.Addr()},
		DialTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
