package consumer

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

func TestBatchesBySize(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	// Everything is in the stream before the consumer starts, so every
	// fetch fills a whole batch long before the (long) linger.
	n := publish(t, ne.js, makeEvents("com.example.size", 200))
	cfg := testConfig(ne.js, db.conn)
	cfg.BatchSize = 50
	cfg.Linger = 5 * time.Second
	cfg.AckWait = 30 * time.Second
	r := startConsumer(t, cfg)
	db.waitCounts(t, n)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	if got := r.metric(t, "capstan_consumer_batch_size_count"); got != 4 {
		t.Errorf("%v inserts, want 4 batches of 50", got)
	}
	if got := r.metric(t, "capstan_consumer_batch_size_sum"); got != 200 {
		t.Errorf("batch sizes sum to %v, want 200", got)
	}
	if got := r.metric(t, "capstan_consumer_inserted_events_total"); got != 200 {
		t.Errorf("inserted_events_total = %v", got)
	}
	if r.metric(t, "capstan_consumer_last_insert_timestamp_seconds") == 0 {
		t.Error("last insert timestamp not set")
	}
}

func TestBatchesByLinger(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	cfg := testConfig(ne.js, db.conn)
	cfg.BatchSize = 10000
	r := startConsumer(t, cfg)
	n := publish(t, ne.js, makeEvents("com.example.linger", 30))
	// 30 events never fill a batch of 10000: only the linger sends them.
	db.waitCounts(t, n)
	waitFor(t, "inserts counted", func() bool { return r.metric(t, "capstan_consumer_batch_size_sum") >= 30 })
	inserts := r.metric(t, "capstan_consumer_batch_size_count")
	if inserts < 1 || r.metric(t, "capstan_consumer_batch_size_sum") != 30 {
		t.Errorf("%v inserts summing to %v", inserts, r.metric(t, "capstan_consumer_batch_size_sum"))
	}
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	waitFor(t, "lag back to 0", func() bool {
		return r.metric(t, "capstan_consumer_lag_seconds") == 0 && r.metric(t, "capstan_consumer_pending_messages") == 0
	})
}

func TestDeadLettersUndecodable(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	good := makeEvents("com.example.dlq", 20)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	publish(t, ne.js, good[:10])
	bad := map[string]string{
		"not json": ReasonBadJSON,
		`{"id":"0123456789abcdef0123456789abcdef","received_ms":1700000000000,"app_id":"a","device_id":"d"}`: ReasonMissingField,
	}
	var badSeqs []uint64
	for body := range bad {
		ack, err := ne.js.Publish(ctx, schema.EventSubject("com.example.dlq"), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		badSeqs = append(badSeqs, ack.Sequence)
	}
	publish(t, ne.js, good[10:])
	r := startConsumer(t, testConfig(ne.js, db.conn))

	db.waitCounts(t, len(good))
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	waitFor(t, "dead letters counted", func() bool {
		return r.metric(t, `capstan_consumer_dead_letters_total{reason="bad_json"}`) == 1 &&
			r.metric(t, `capstan_consumer_dead_letters_total{reason="missing_field"}`) == 1
	})

	dlq, err := ne.js.Stream(ctx, schema.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := dlq.CachedInfo().State.Msgs; got != 2 {
		t.Fatalf("dead-letter stream holds %d messages, want 2", got)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := bad[string(m.Data)]
		if !ok {
			t.Fatalf("dead letter body %q is not one of the bad messages", m.Data)
		}
		if got := m.Header.Get(HeaderReason); got != want {
			t.Errorf("reason header %q, want %q", got, want)
		}
		if m.Header.Get(HeaderError) == "" {
			t.Error("no error detail header")
		}
		if got := m.Header.Get(HeaderOriginalSubject); got != schema.EventSubject("com.example.dlq") {
			t.Errorf("original subject header %q", got)
		}
		s, _ := strconv.ParseUint(m.Header.Get(HeaderStreamSequence), 10, 64)
		if s != badSeqs[0] && s != badSeqs[1] {
			t.Errorf("stream sequence header %d, want one of %v", s, badSeqs)
		}
	}
}

func TestDrainFlushesOpenBatch(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	cfg := testConfig(ne.js, db.conn)
	cfg.BatchSize = 10000
	cfg.Linger = 10 * time.Minute // only the drain can send this batch
	cfg.AckWait = time.Hour
	r := startConsumer(t, cfg)
	n := publish(t, ne.js, makeEvents("com.example.drain", 25))
	waitFor(t, "consumer holding the batch", func() bool {
		return ackPending(t, ne.js) == n
	})
	if c := db.counts(t); c.rawRows != 0 {
		t.Fatalf("inserted %d rows before the linger or the drain", c.rawRows)
	}
	r.stop(t)
	if c := db.counts(t); c.rawDistinct != uint64(n) || c.rollup != uint64(n) || c.rawRows != uint64(n) {
		t.Fatalf("after drain clickhouse holds %+v, want %d", c, n)
	}
	if !streamEmpty(t, ne.js) {
		t.Fatal("drained batch not acknowledged")
	}
}

// ackPending is how many events replicas hold without having acked them.
func ackPending(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, schema.EventsStream, schema.ConsumerName)
	if err != nil {
		return -1
	}
	info, err := c.Info(ctx)
	if err != nil {
		return -1
	}
	return info.NumAckPending
}

// A consumer that inserted a batch but whose acks never reached
// JetStream (it died right after the insert): the events are redelivered
// to the next replica, which must not store them twice.
func TestInsertedButAckLost(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	n := publish(t, ne.js, makeEvents("com.example.acklost", 120))

	cfg := testConfig(ne.connect(t, "noack"), db.conn)
	cfg.AckWait = time.Second
	// One batch takes everything: redeliveries of a first batch would
	// otherwise always come before the rest of the stream.
	cfg.BatchSize = 1000
	lossy := startConsumer(t, cfg)
	db.waitCounts(t, n)
	waitFor(t, "inserts counted", func() bool {
		return lossy.metric(t, "capstan_consumer_inserted_events_total") == float64(n)
	})
	lossy.stop(t)
	if streamEmpty(t, ne.js) {
		t.Fatal("acks were not lost: the test setup is broken")
	}

	next := startConsumer(t, testConfig(ne.js, db.conn))
	waitFor(t, "redelivered events acknowledged", func() bool { return streamEmpty(t, ne.js) })
	db.waitCounts(t, n)
	if got := next.metric(t, "capstan_consumer_redeliveries_total"); got < float64(n) {
		t.Errorf("redeliveries_total = %v, want >= %d", got, n)
	}
	if got := next.metric(t, "capstan_consumer_inserted_events_total"); got != 0 {
		t.Errorf("second replica inserted %v already stored events", got)
	}
}

// A consumer that dies holding a batch it could not insert yet: nothing
// is acked, JetStream redelivers, the next replica stores each event once.
func TestCrashBeforeInsert(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	flavor := detectFlavor(t, db)

	nc, err := nats.Connect(ne.srv.ClientURL(), nats.UserInfo("ok", "ok"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(js, unreachableClickHouse(t))
	cfg.Flavor = flavor
	cfg.AckWait = time.Second
	cfg.DrainTimeout = 100 * time.Millisecond
	doomed := startConsumer(t, cfg)
	n := publish(t, ne.js, makeEvents("com.example.crash", 150))
	waitFor(t, "failing inserts", func() bool {
		return doomed.metric(t, "capstan_consumer_insert_errors_total") >= 2
	})
	// Crash: the connection goes away with the batch unacked.
	nc.Close()
	doomed.stop(t)

	startConsumer(t, testConfig(ne.js, db.conn))
	db.waitCounts(t, n)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
}

func detectFlavor(t *testing.T, db *chDB) schema.Flavor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	f, err := schema.DetectFlavor(ctx, db.conn)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Two replicas share the durable consumer; each event lands once.
func TestReplicasShareWork(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	cfg := testConfig(ne.js, db.conn)
	cfg.BatchSize = 40
	a := startConsumer(t, cfg)
	b := startConsumer(t, testConfig(ne.connect(t, "ok"), db.conn))
	n := publish(t, ne.js, makeEvents("com.example.replicas", 400))
	db.waitCounts(t, n)
	// Rows are visible before the insert returns and is counted.
	total := func() float64 {
		return a.metric(t, "capstan_consumer_inserted_events_total") + b.metric(t, "capstan_consumer_inserted_events_total")
	}
	waitFor(t, "inserts counted", func() bool { return total() >= float64(n) })
	if got := total(); got != float64(n) {
		t.Errorf("replicas inserted %v events together, want %d", got, n)
	}
}

// legacyEventsDDL is capstan_events as on 18.16 with one column changed
// or added by the test.
func legacyEventsDDL(platformType, extra string) string {
	return `CREATE TABLE capstan_events (event_id String, received_at DateTime, client_time DateTime,
		app_id String, device_id String, platform ` + platformType + `, action String, version_name String,
		file_name String, old_version_name String, version_build String, version_code String, version_os String,
		plugin_version String, custom_id String, channel String, install_source String, key_id String,
		is_emulator UInt8, is_prod UInt8, reported_version_name String, ignored UInt8,
		metadata_keys Array(String), metadata_values Array(String)` + extra + `)
		ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(received_at) ORDER BY (app_id, action, event_id)`
}

func TestRejectedRowsDeadLetteredRestInserted(t *testing.T) {
	tests := []struct {
		name, ddl string
		spoil     func(*schema.Event)
		marker    string // in the dead-lettered body
		why       string // in its error header
	}{
		// The driver refuses the value before sending anything.
		{"client side", legacyEventsDDL("Enum8('ios' = 1, 'android' = 2)", ""),
			func(e *schema.Event) { e.Platform = "electron" }, `"electron"`, "append event"},
		// The server refuses the block (a default computed from the row
		// fails): bisection finds the rows.
		{"server side", legacyEventsDDL("String", ", code_num UInt32 DEFAULT toUInt32(version_code)"),
			func(e *schema.Event) { e.VersionCode = "not-a-number" }, `"not-a-number"`, "code: 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testRejectedRows(t, tt.ddl, tt.spoil, tt.marker, tt.why) })
	}
}

// testRejectedRows: rows ClickHouse cannot take go to the dead-letter
// stream; the rest of their batch is stored.
func testRejectedRows(t *testing.T, ddl string, spoil func(*schema.Event), marker, why string) {
	ne := startNATS(t)
	srv := chtest.Shared(t)
	name := chtest.DBName(t)
	conn := srv.Conn(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := conn.Exec(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	events := makeEvents("com.example.reject", 30)
	for i := range events {
		events[i].VersionCode = strconv.Itoa(i)
	}
	spoil(events[3])
	spoil(events[17])
	n := publish(t, ne.js, events)
	cfg := testConfig(ne.js, conn)
	cfg.Flavor = schema.FlavorLegacy
	r := startConsumer(t, cfg)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM capstan_events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != uint64(n-2) {
		t.Fatalf("%d rows stored, want %d", rows, n-2)
	}
	if got := r.metric(t, `capstan_consumer_dead_letters_total{reason="insert_rejected"}`); got != 2 {
		t.Fatalf("dead_letters_total{insert_rejected} = %v, want 2", got)
	}
	dlq, err := ne.js.Stream(ctx, schema.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(HeaderReason) != ReasonInsertRejected || !strings.Contains(string(m.Data), marker) {
			t.Errorf("dead letter %d: reason %q body %s", seq, m.Header.Get(HeaderReason), m.Data)
		}
		if got := m.Header.Get(HeaderError); !strings.Contains(got, why) {
			t.Errorf("dead letter %d: error header %q lacks %q", seq, got, why)
		}
	}
}
