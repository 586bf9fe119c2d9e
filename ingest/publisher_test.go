package ingest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/schema"
)

func TestParseAck(t *testing.T) {
	noResp := &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}
	tests := []struct {
		name string
		msg  *nats.Msg
		want uint8
		err  bool
	}{
		{"stored", &nats.Msg{Data: []byte(`{"stream":"CAPSTAN_EVENTS","seq":7}`)}, ackStored, false},
		{"stored with domain", &nats.Msg{Data: []byte(`{"stream":"S","seq":7,"domain":"hub"}`)}, ackStored, false},
		{"duplicate as the server writes it", &nats.Msg{Data: []byte(`{"stream":"S","seq":1,"duplicate": true}`)}, ackDuplicate, false},
		{"duplicate compact", &nats.Msg{Data: []byte(`{"stream":"S","seq":1,"duplicate":true}`)}, ackDuplicate, false},
		{"duplicate false", &nats.Msg{Data: []byte(`{"stream":"S","seq":1,"duplicate":false}`)}, ackStored, false},
		{"error", &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}`)}, ackFailed, true},
		{"error first", &nats.Msg{Data: []byte(`{"stream":"S","error":{"code":400,"description":"x"}}`)}, ackFailed, true},
		{"no responders", noResp, ackFailed, true},
		{"empty", &nats.Msg{}, ackFailed, true},
		{"no stream", &nats.Msg{Data: []byte(`{"seq":1}`)}, ackFailed, true},
		{"garbage", &nats.Msg{Data: []byte(`nope`)}, ackFailed, true},
	}
	for _, tt := range tests {
		got, err := parseAck(tt.msg)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("%s: %d %v, want %d err=%v", tt.name, got, err, tt.want, tt.err)
		}
	}
	if _, err := parseAck(noResp); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("no responders: %v", err)
	}
}

// A publish window smaller than the requests still lets every request
// through (one at a time when need be), and nothing is lost.
func TestSmallPublishWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bs, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if err := schema.EnsureStreams(ctx, bs.JetStream, schema.DefaultStreamLimits()); err != nil {
		t.Fatal(err)
	}
	h := New(Config{JetStream: bs.JetStream, MaxPendingPublishes: 5})
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for w := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := string(appendBenchBody(nil, int64(w)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/stats", strings.NewReader(body)))
			codes[w] = rec.Code
		}()
	}
	wg.Wait()
	for w, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", w, c)
		}
	}
	s, err := bs.JetStream.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 8*20 {
		t.Fatalf("stream holds %d messages, want %d", info.State.Msgs, 8*20)
	}
	if h.pub.inflight != 0 || len(h.pub.batches) != 0 {
		t.Fatalf("window not released: %d in flight, %d batches", h.pub.inflight, len(h.pub.batches))
	}
}
