package ingest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A publish window smaller than the requests still lets every request
// through (one at a time when need be), and nothing is lost.
func TestSmallPublishWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bs := openStreams(t, ctx)
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
	msgs, evs := storedEvents(t, ctx, bs.JetStream)
	// Requests waiting for a slot share messages (join.go).
	if msgs < 1 || msgs > 8 {
		t.Fatalf("stream holds %d messages, want 1 to 8", msgs)
	}
	if events := len(evs); events != 8*20 {
		t.Fatalf("stream holds %d events, want %d", events, 8*20)
	}
	if n := h.js.PublishAsyncPending(); n != 0 {
		t.Fatalf("window not released: %d in flight", n)
	}
}
