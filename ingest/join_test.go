package ingest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/schema"
)

// openStreams starts an embedded JetStream (file storage) with Capstan's
// streams, closed when tb ends.
func openStreams(tb testing.TB, ctx context.Context) *bus.Bus {
	tb.Helper()
	bs, err := bus.Open(ctx, bus.Config{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(bs.Close)
	if err := schema.EnsureStreams(ctx, bs.JetStream, schema.DefaultStreamLimits()); err != nil {
		tb.Fatal(err)
	}
	return bs
}

func joinEnv(t *testing.T, cfg Config) (*Handler, *bus.Bus, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	bs := openStreams(t, ctx)
	cfg.JetStream = bs.JetStream
	return New(cfg), bs, ctx
}

// block takes every slot of the app's lane, as requests in flight would.
func block(h *Handler, subj string) {
	h.lanes.mu.Lock()
	defer h.lanes.mu.Unlock()
	if h.lanes.m == nil {
		h.lanes.m = map[string]*lane{}
	}
	h.lanes.m[subj] = &lane{inFlight: maxLaneInFlight}
}

func waiting(h *Handler, subj string) int {
	h.lanes.mu.Lock()
	defer h.lanes.mu.Unlock()
	if ln := h.lanes.m[subj]; ln != nil {
		return len(ln.waiting)
	}
	return -1
}

func post(h *Handler, body string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/stats", strings.NewReader(body)))
	return rec.Code
}

// Requests that find their app's slots taken are carried together in one
// message once a slot frees, and each is answered with its outcome.
func TestWaitingRequestsShareAMessage(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, bs, ctx := joinEnv(t, Config{Registerer: reg})
	subj := schema.EventSubject("com.example.app")
	block(h, subj)
	const n = 10
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = post(h, string(appendBenchEvents(nil, int64(i), 1)))
		}()
	}
	for waiting(h, subj) != n {
		time.Sleep(time.Millisecond)
	}
	h.lanes.release(h, subj) // one slot frees: its carrier takes all ten
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d answered %d", i, c)
		}
	}
	msgs, evs := storedEvents(t, ctx, bs.JetStream)
	if msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 shared by %d requests", msgs, n)
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.ID] = true
	}
	if len(evs) != n || len(ids) != n {
		t.Fatalf("message holds %d events (%d distinct), want %d", len(evs), len(ids), n)
	}
	if got := sum(t, reg, "capstan_stats_joined_requests_total"); got != n {
		t.Errorf("joined requests = %v, want %d", got, n)
	}
	if got := sum(t, reg, "capstan_stats_events_total"); got != n {
		t.Errorf("events accepted = %v, want %d", got, n)
	}
	// The lane still has the other blocked slot; freeing it empties the map.
	h.lanes.release(h, subj)
	if w := waiting(h, subj); w != -1 {
		t.Fatalf("idle lane kept (%d waiting)", w)
	}
	// An idle lane sends alone again, under the request's own id: an exact
	// resend is dropped by JetStream.
	body := string(appendBenchEvents(nil, 99, 1))
	for range 2 {
		if c := post(h, body); c != http.StatusOK {
			t.Fatalf("alone: %d", c)
		}
	}
	if msgs, _ := storedEvents(t, ctx, bs.JetStream); msgs != 2 {
		t.Fatalf("stream holds %d messages after a request and its resend, want 2", msgs)
	}
}

// A request whose turn does not come within the publish timeout gets a
// 429 and leaves the lane, so nothing sends its events later.
func TestWaitingRequestTimesOut(t *testing.T) {
	h, bs, ctx := joinEnv(t, Config{PublishTimeout: 200 * time.Millisecond})
	subj := schema.EventSubject("com.example.app")
	block(h, subj)
	if c := post(h, string(appendBenchEvents(nil, 1, 1))); c != http.StatusTooManyRequests {
		t.Fatalf("answered %d, want 429", c)
	}
	if w := waiting(h, subj); w != 0 {
		t.Fatalf("%d requests still waiting", w)
	}
	h.lanes.release(h, subj)
	h.lanes.release(h, subj)
	if msgs, _ := storedEvents(t, ctx, bs.JetStream); msgs != 0 {
		t.Fatalf("stream holds %d messages, want none", msgs)
	}
}

// sum adds up a counter family's series.
func sum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// storedEvents reads the events stream: its message count and events.
func storedEvents(t *testing.T, ctx context.Context, js jetstream.JetStream) (uint64, []schema.Event) {
	t.Helper()
	s, err := js.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []schema.Event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := schema.DecodeBatch(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
	}
	return info.State.Msgs, out
}
