package consumer

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

// publishBatches stores events as version 2 messages of per events each,
// the way ingest does, and returns how many events JetStream stored.
func publishBatches(t testing.TB, js jetstream.JetStream, events []*schema.Event, per int) int {
	t.Helper()
	stored := 0
	for start := 0; start < len(events); start += per {
		evs := events[start:min(start+per, len(events))]
		body, msgID := batchMsg(evs)
		if publishRaw(t, js, evs[0].AppID, body, "2", msgID) {
			stored += len(evs)
		}
	}
	return stored
}

// batchMsg is evs as ingest publishes them: a version 2 body and its
// Nats-Msg-Id.
func batchMsg(evs []*schema.Event) (body []byte, msgID string) {
	ids := make([]string, 0, len(evs))
	for _, ev := range evs {
		body, _ = schema.AppendBatchEvent(body, ev, nil)
		ids = append(ids, ev.ID)
	}
	return body, schema.BatchMsgID(slices.Values(ids))
}

// publishRaw stores one message with the given Capstan-Events version
// ("" for none) and Nats-Msg-Id; false means a duplicate.
func publishRaw(t testing.TB, js jetstream.JetStream, app string, body []byte, version, msgID string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m := nats.NewMsg(schema.EventSubject(app))
	m.Data = body
	if version != "" {
		m.Header.Set(schema.EventsHeader, version)
	}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return !ack.Duplicate
}

// A stream written by fronts before and after the upgrade (one message
// per event, then one per request) is consumed without draining it first:
// every event reaches ClickHouse exactly once, including events that are
// in the stream in both forms.
func TestUpgradeMixedFormats(t *testing.T) {
	js := startNATS(t).js
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	db := newCHDB(t, chtest.StartServer(t))

	const app = "com.example.upgrade"
	old := makeEvents(app, 40)
	want := publish(t, js, old[:30]) // old fronts
	f := newFront(js)
	for i := 0; i < 5; i++ { // new fronts, while old ones still run
		want += f.post(t, app, 10)
	}
	want += publish(t, js, old[30:])
	// Events already in the stream as version 1 resent through a new
	// front: a second copy in a version 2 message.
	if got := publishBatches(t, js, append(slices.Clone(old[5:8]), old[35:37]...), 10); got != 5 {
		t.Fatalf("republished %d events", got)
	}
	s, err := js.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 40+5+1 {
		t.Fatalf("stream holds %d messages, want 46", n)
	}

	cfg := testConfig(js, db.conn)
	cfg.BatchSize = 30 // several batches, some with both formats
	r := startConsumer(t, cfg)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, js) })
	waitFor(t, "all stored", func() bool { return db.counts(t).rollup == uint64(want) })
	var final, distinct uint64
	if err := db.conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM capstan_events FINAL").Scan(&final, &distinct); err != nil {
		t.Fatal(err)
	}
	if c := db.counts(t); final != uint64(want) || distinct != uint64(want) || c.rollup != uint64(want) {
		t.Fatalf("%d events published; ClickHouse holds %d rows (FINAL), %d distinct, rollup %d", want, final, distinct, c.rollup)
	}
	if got := r.metric(t, "capstan_consumer_dead_letters_total"); got != 0 {
		t.Errorf("%v dead letters", got)
	}
}

// A message is never split across inserts: a batch takes whole messages
// up to BatchSize rows.
func TestBatchesTakeWholeMessages(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	n := publishBatches(t, ne.js, makeEvents("com.example.whole", 200), 20)
	cfg := testConfig(ne.js, db.conn)
	cfg.BatchSize = 50
	cfg.Linger = 5 * time.Second
	cfg.AckWait = 30 * time.Second
	r := startConsumer(t, cfg)
	db.waitCounts(t, n)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	waitFor(t, "inserts counted", func() bool { return r.metric(t, "capstan_consumer_batch_size_sum") == 200 })
	if got := r.metric(t, "capstan_consumer_batch_size_count"); got != 5 {
		t.Errorf("%v inserts, want 5 of two 20-event messages", got)
	}
}

// Bad records of a version 2 message are dead-lettered alone, as version
// 1 messages, and the rest of the message is stored and acked; a message
// with nothing decodable, or of an unknown version, goes whole.
func TestDeadLettersBadRecords(t *testing.T) {
	ne := startNATS(t)
	db := newCHDB(t, chtest.Shared(t))
	const app = "com.example.records"
	good := makeEvents(app, 6)
	var body []byte
	for _, ev := range good[:3] {
		body, _ = schema.AppendBatchEvent(body, ev, nil)
	}
	missing := `{"id":"0123456789abcdef0123456789abcdef","received_ms":1700000000000,"app_id":"a","device_id":"d"}`
	body = append(body, "\nnot json\n"+missing+"\n"...)
	body, _ = schema.AppendEventJSON(body, good[3], nil)
	publishRaw(t, ne.js, app, body, "2", "r-mixed")
	publishRaw(t, ne.js, app, []byte("garbage\n{"), "2", "r-garbage")
	future, _ := schema.AppendEventJSON(nil, good[4], nil)
	publishRaw(t, ne.js, app, future, "3", "r-future")
	publishBatches(t, ne.js, good[5:], 10)

	r := startConsumer(t, testConfig(ne.js, db.conn))
	db.waitCounts(t, 5)
	waitFor(t, "stream drained", func() bool { return streamEmpty(t, ne.js) })
	waitFor(t, "dead letters counted", func() bool {
		return r.metric(t, `capstan_consumer_dead_letters_total{reason="bad_json"}`) == 2 &&
			r.metric(t, `capstan_consumer_dead_letters_total{reason="missing_field"}`) == 1 &&
			r.metric(t, `capstan_consumer_dead_letters_total{reason="unknown_format"}`) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dlq, err := ne.js.Stream(ctx, schema.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	type letter struct{ body, reason, index, version string }
	var got []letter
	for seq := uint64(1); seq <= dlq.CachedInfo().State.LastSeq; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(HeaderOriginalSubject) != schema.EventSubject(app) || m.Header.Get(HeaderStreamSequence) == "" || m.Header.Get(HeaderError) == "" {
			t.Errorf("dead letter %d lacks headers: %v", seq, m.Header)
		}
		got = append(got, letter{string(m.Data), m.Header.Get(HeaderReason), m.Header.Get(HeaderRecordIndex), m.Header.Get(schema.EventsHeader)})
	}
	want := []letter{
		{"not json", ReasonBadJSON, "3", ""},
		{missing, ReasonMissingField, "4", ""},
		{"garbage\n{", ReasonBadJSON, "", "2"},
		{string(future), ReasonUnknownFormat, "", "3"},
	}
	slices.SortFunc(got, func(a, b letter) int { return strings.Compare(a.reason+a.body, b.reason+b.body) })
	slices.SortFunc(want, func(a, b letter) int { return strings.Compare(a.reason+a.body, b.reason+b.body) })
	if !slices.Equal(got, want) {
		t.Fatalf("dead letters\n got %q\nwant %q", got, want)
	}
}

// Rows ClickHouse refuses inside version 2 messages are dead-lettered
// one by one; their neighbours are stored and the messages acked.
func TestRejectedRowsInBatches(t *testing.T) {
	ne := startNATS(t)
	srv := chtest.Shared(t)
	conn := srv.Conn(t, chtest.DBName(t))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := conn.Exec(ctx, legacyEventsDDL("String", ", code_num UInt32 DEFAULT toUInt32(version_code)")); err != nil {
		t.Fatal(err)
	}
	events := makeEvents("com.example.rejectbatch", 30)
	for i := range events {
		events[i].VersionCode = strconv.Itoa(i)
	}
	events[3].VersionCode, events[17].VersionCode = "bad-3", "bad-17"
	n := publishBatches(t, ne.js, events, 7)
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
	for seq, want := range map[uint64][]string{1: {"bad-3", "3"}, 2: {"bad-17", "3"}} {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := schema.DecodeBatch(m.Data)
		if err != nil || len(evs) != 1 || evs[0].VersionCode != want[0] || m.Header.Get(HeaderRecordIndex) != want[1] {
			t.Errorf("dead letter %d: %v, index %q, body %s", seq, err, m.Header.Get(HeaderRecordIndex), m.Data)
		}
	}
}
