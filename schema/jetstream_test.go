package schema_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/schema"
)

func openBus(t *testing.T, listen string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Listen: listen})
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDefaultStreamLimitsNeverDiscard(t *testing.T) {
	l := schema.DefaultStreamLimits()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := schema.EventsStreamConfig(l)
	if cfg.Discard != jetstream.DiscardNew {
		t.Errorf("discard = %v, want new", cfg.Discard)
	}
	if cfg.MaxAge != 0 || cfg.MaxBytes != -1 || cfg.MaxMsgs != -1 || cfg.MaxMsgsPerSubject != -1 {
		t.Errorf("default limits drop events: age %v bytes %d msgs %d per-subject %d",
			cfg.MaxAge, cfg.MaxBytes, cfg.MaxMsgs, cfg.MaxMsgsPerSubject)
	}
	if cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage {
		t.Errorf("retention %v storage %v", cfg.Retention, cfg.Storage)
	}
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != schema.EventsSubjects {
		t.Errorf("subjects %v", cfg.Subjects)
	}
	if cfg.Duplicates != schema.DefaultDuplicateWindow {
		t.Errorf("duplicates %v", cfg.Duplicates)
	}
	// Zero-valued limits mean the same as the defaults.
	zero := schema.EventsStreamConfig(schema.StreamLimits{})
	if zero.Discard != jetstream.DiscardNew || zero.MaxBytes != -1 || zero.MaxMsgs != -1 || zero.Replicas != 1 {
		t.Errorf("zero limits: %+v", zero)
	}
}

func TestStreamLimitsValidate(t *testing.T) {
	tests := []struct {
		name string
		l    schema.StreamLimits
		ok   bool
	}{
		{"defaults", schema.DefaultStreamLimits(), true},
		{"zero", schema.StreamLimits{}, true},
		{"discard old", schema.StreamLimits{Discard: "old"}, true},
		{"bad discard", schema.StreamLimits{Discard: "drop"}, false},
		{"negative age", schema.StreamLimits{MaxAge: -time.Second}, false},
		{"negative window", schema.StreamLimits{DuplicateWindow: -time.Second}, false},
		{"window over age is clamped", schema.StreamLimits{MaxAge: time.Minute, DuplicateWindow: time.Hour}, true},
		{"default window over short age", schema.StreamLimits{MaxAge: time.Minute}, true},
		{"window under age", schema.StreamLimits{MaxAge: time.Hour, DuplicateWindow: time.Minute}, true},
		{"replicas", schema.StreamLimits{Replicas: 3}, true},
		{"too many replicas", schema.StreamLimits{Replicas: 7}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestDuplicateWindowClampedToMaxAge(t *testing.T) {
	l := schema.DefaultStreamLimits()
	l.MaxAge = time.Minute
	if got := schema.EventsStreamConfig(l).Duplicates; got != time.Minute {
		t.Fatalf("duplicates %v, want 1m", got)
	}
	b := openBus(t, "")
	if err := schema.EnsureStreams(testCtx(t), b.JetStream, l); err != nil {
		t.Fatalf("short max age refused: %v", err)
	}
}

func TestConsumerConfig(t *testing.T) {
	c := schema.ConsumerConfig(45*time.Second, 5000)
	if c.Durable != schema.ConsumerName || c.AckPolicy != jetstream.AckExplicitPolicy ||
		c.AckWait != 45*time.Second || c.MaxAckPending != 5000 || c.MaxDeliver != -1 {
		t.Fatalf("consumer config %+v", c)
	}
	d := schema.ConsumerConfig(0, 0)
	if d.AckWait <= 0 || d.MaxAckPending <= 0 {
		t.Fatalf("defaults not applied: %+v", d)
	}
}

func TestEventSubject(t *testing.T) {
	tests := []struct{ app, subject string }{
		{"com.example.app", "capstan.events.com~example~app"},
		{"io.capgo.demo_app-2", "capstan.events.io~capgo~demo_app-2"},
		{"a~b", "capstan.events.a%7Eb"},
		{"a%b", "capstan.events.a%25b"},
		{"a b*>", "capstan.events.a%20b%2A%3E"},
		{"", "capstan.events.%"},
		{"é", "capstan.events.%C3%A9"},
	}
	for _, tt := range tests {
		got := schema.EventSubject(tt.app)
		if got != tt.subject {
			t.Errorf("EventSubject(%q) = %q, want %q", tt.app, got, tt.subject)
		}
		back, ok := schema.AppFromSubject(got)
		if !ok || back != tt.app {
			t.Errorf("AppFromSubject(%q) = %q, %v; want %q", got, back, ok, tt.app)
		}
	}
	for _, bad := range []string{"capstan.events.", "other.x", "capstan.events.a.b", "capstan.events.%4", "capstan.events.%zz"} {
		if _, ok := schema.AppFromSubject(bad); ok {
			t.Errorf("AppFromSubject(%q) ok, want not ok", bad)
		}
	}
}

func FuzzEventSubject(f *testing.F) {
	for _, s := range []string{"com.example.app", "", "~", "%", "a.b~c%d", "\x00\xff", "é.ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, app string) {
		subj := schema.EventSubject(app)
		tok := strings.TrimPrefix(subj, schema.EventsSubjectPrefix)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("EventSubject(%q) = %q: not one safe token", app, subj)
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] < 0x21 || tok[i] > 0x7e {
				t.Fatalf("EventSubject(%q) = %q: non-printable byte", app, subj)
			}
		}
		back, ok := schema.AppFromSubject(subj)
		if !ok || back != app {
			t.Fatalf("round trip %q -> %q -> %q, %v", app, subj, back, ok)
		}
	})
}

func TestEnsureStreamsIdempotent(t *testing.T) {
	b := openBus(t, "")
	ctx := testCtx(t)
	l := schema.DefaultStreamLimits()
	for i := 0; i < 2; i++ {
		if err := schema.EnsureStreams(ctx, b.JetStream, l); err != nil {
			t.Fatalf("EnsureStreams #%d: %v", i+1, err)
		}
	}
	s, err := b.JetStream.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.WorkQueuePolicy || cfg.Discard != jetstream.DiscardNew || cfg.MaxBytes != -1 {
		t.Fatalf("events stream config %+v", cfg)
	}
	if _, err := b.JetStream.Stream(ctx, schema.DeadLetterStream); err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}

	// Limits can be changed on an existing stream.
	l.MaxMsgs = 1000
	l.MaxBytes = 1 << 20
	if err := schema.EnsureStreams(ctx, b.JetStream, l); err != nil {
		t.Fatalf("update limits: %v", err)
	}
	s, err = b.JetStream.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config; got.MaxMsgs != 1000 || got.MaxBytes != 1<<20 {
		t.Fatalf("limits not updated: msgs %d bytes %d", got.MaxMsgs, got.MaxBytes)
	}

	if err := schema.EnsureStreams(ctx, b.JetStream, schema.StreamLimits{Discard: "sideways"}); err == nil {
		t.Fatal("invalid limits accepted")
	}
}

func TestEnsureStreamsConcurrentProcesses(t *testing.T) {
	b := openBus(t, "127.0.0.1:-1")
	ctx := testCtx(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		nc, err := nats.Connect(b.Server.ClientURL(), nats.Name(fmt.Sprintf("proc-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		l := schema.DefaultStreamLimits()
		if i%2 == 1 { // two "versions" with different limits race
			l.MaxMsgs = 100000
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = schema.EnsureStreams(ctx, js, l)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
}

func TestEnsureStreamsRefusesToShrinkBelowBacklog(t *testing.T) {
	b := openBus(t, "")
	ctx := testCtx(t)
	if err := schema.EnsureStreams(ctx, b.JetStream, schema.DefaultStreamLimits()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := b.JetStream.Publish(ctx, schema.EventSubject("com.example.app"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	l := schema.DefaultStreamLimits()
	l.MaxMsgs = 5
	err := schema.EnsureStreams(ctx, b.JetStream, l)
	if !errors.Is(err, schema.ErrLimitBelowBacklog) {
		t.Fatalf("shrink below backlog: err = %v, want ErrLimitBelowBacklog", err)
	}
	l = schema.DefaultStreamLimits()
	l.MaxBytes = 10
	if err := schema.EnsureStreams(ctx, b.JetStream, l); !errors.Is(err, schema.ErrLimitBelowBacklog) {
		t.Fatalf("shrink bytes below backlog: err = %v", err)
	}
	s, err := b.JetStream.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 10 {
		t.Fatalf("stream holds %d messages after refused shrink, want 10", got)
	}
	// Growing is fine.
	l = schema.DefaultStreamLimits()
	l.MaxMsgs = 50
	if err := schema.EnsureStreams(ctx, b.JetStream, l); err != nil {
		t.Fatal(err)
	}
}

func TestFullStreamRejectsNewPublishes(t *testing.T) {
	b := openBus(t, "")
	ctx := testCtx(t)
	l := schema.DefaultStreamLimits()
	l.MaxMsgs = 3
	if err := schema.EnsureStreams(ctx, b.JetStream, l); err != nil {
		t.Fatal(err)
	}
	subj := schema.EventSubject("com.example.app")
	for i := 0; i < 3; i++ {
		if _, err := b.JetStream.Publish(ctx, subj, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.JetStream.Publish(ctx, subj, []byte("overflow")); err == nil {
		t.Fatal("publish to a full stream succeeded; unconsumed events would be dropped")
	}
	s, err := b.JetStream.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "0" {
		t.Fatalf("oldest event gone: %v %q", err, m.Data)
	}
}

func TestSharedConsumerDrainsWorkQueue(t *testing.T) {
	b := openBus(t, "")
	ctx := testCtx(t)
	if err := schema.EnsureStreams(ctx, b.JetStream, schema.DefaultStreamLimits()); err != nil {
		t.Fatal(err)
	}
	const total = 40
	for i := 0; i < total; i++ {
		_, err := b.JetStream.Publish(ctx, schema.EventSubject("com.example.app"), []byte(fmt.Sprint(i)),
			jetstream.WithMsgID(fmt.Sprint("id-", i)))
		if err != nil {
			t.Fatal(err)
		}
	}
	// Duplicate ids inside the window are dropped.
	if ack, err := b.JetStream.Publish(ctx, schema.EventSubject("com.example.app"), []byte("dup"),
		jetstream.WithMsgID("id-0")); err != nil || !ack.Duplicate {
		t.Fatalf("duplicate publish: ack %+v err %v", ack, err)
	}
	// Two replicas bind the same durable consumer and split the work.
	replicas := make([]jetstream.Consumer, 2)
	for i := range replicas {
		c, err := b.JetStream.CreateOrUpdateConsumer(ctx, schema.EventsStream, schema.ConsumerConfig(10*time.Second, 100))
		if err != nil {
			t.Fatalf("replica %d consumer: %v", i, err)
		}
		replicas[i] = c
	}
	seen := map[string]bool{}
	for got := 0; got < total; {
		for _, c := range replicas {
			batch, err := c.Fetch(7, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for m := range batch.Messages() {
				if seen[string(m.Data())] {
					t.Fatalf("message %s delivered twice", m.Data())
				}
				seen[string(m.Data())] = true
				got++
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := batch.Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	s, err := b.JetStream.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("work queue still holds %d acked messages", info.State.Msgs)
	}
}
