package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// event is what the tests post.
type event struct {
	App    string `json:"app"`
	Change string `json:"change"`
}

var sample = event{App: "com.example.app", Change: "rollout_pause"}

// recorder is a loopback webhook receiver answering with the statuses in
// order (the last one repeats) and keeping every request it got.
type recorder struct {
	t        *testing.T
	mu       sync.Mutex
	statuses []int
	header   http.Header // extra answer headers
	requests []recorded
}

type recorded struct {
	method, contentType, userAgent string
	body                           []byte
}

func newRecorder(t *testing.T, statuses ...int) (*recorder, *httptest.Server) {
	t.Helper()
	r := &recorder{t: t, statuses: statuses, header: http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		r.t.Errorf("read body: %v", err)
	}
	r.mu.Lock()
	n := len(r.requests)
	r.requests = append(r.requests, recorded{req.Method, req.Header.Get("Content-Type"), req.Header.Get("User-Agent"), b})
	status := r.statuses[min(n, len(r.statuses)-1)]
	for k, v := range r.header {
		w.Header()[k] = v
	}
	r.mu.Unlock()
	w.WriteHeader(status)
	if status/100 != 2 {
		io.WriteString(w, "nope: "+http.StatusText(status))
	}
}

func (r *recorder) got() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

// fast is a Sender whose waits are negligible.
func fast(attempts int) *Sender {
	return &Sender{Attempts: attempts, Backoff: time.Millisecond, UserAgent: "capstan-test/1"}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var we *Error
	if !errors.As(err, &we) {
		t.Fatalf("error %v (%T) is not a *webhook.Error", err, err)
	}
	return we
}

func TestPostDelivers(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusNoContent)
	if err := fast(4).Post(context.Background(), srv.URL+"/hook", sample); err != nil {
		t.Fatal(err)
	}
	reqs := rec.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.contentType != "application/json" || r.userAgent != "capstan-test/1" {
		t.Errorf("request %s, Content-Type %q, User-Agent %q", r.method, r.contentType, r.userAgent)
	}
	var got event
	if err := json.Unmarshal(r.body, &got); err != nil || got != sample {
		t.Errorf("body %s (%v), want %+v", r.body, err, sample)
	}
}

func TestPostRetriesThenDelivers(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK)
	if err := fast(4).Post(context.Background(), srv.URL, sample); err != nil {
		t.Fatal(err)
	}
	reqs := rec.got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs[1:] {
		if string(r.body) != string(reqs[0].body) || r.contentType != "application/json" {
			t.Errorf("attempt %d sent %q (%s), first sent %q", i+2, r.body, r.contentType, reqs[0].body)
		}
	}
}

func TestPostRetriesTooManyRequests(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusTooManyRequests, http.StatusAccepted)
	rec.header.Set("Retry-After", "0")
	s := fast(2)
	s.Backoff = time.Hour // only Retry-After: 0 keeps this test fast
	if err := s.Post(context.Background(), srv.URL, sample); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.got()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestPostDoesNotRetryClientErrors(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusGone} {
		rec, srv := newRecorder(t, status, http.StatusOK)
		err := fast(4).Post(context.Background(), srv.URL+"/hook", sample)
		if err == nil {
			t.Fatalf("status %d: no error", status)
		}
		we := asError(t, err)
		if we.StatusCode != status || we.Retryable || we.Attempts != 1 || we.Err != nil {
			t.Errorf("status %d: error %+v", status, we)
		}
		if n := len(rec.got()); n != 1 {
			t.Errorf("status %d: %d requests, want 1", status, n)
		}
		msg := err.Error()
		for _, want := range []string{srv.URL + "/hook", http.StatusText(status), "not retried"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
	}
}

func TestPostGivesUpAfterAttempts(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusInternalServerError)
	err := fast(3).Post(context.Background(), srv.URL, sample)
	we := asError(t, err)
	if we.StatusCode != http.StatusInternalServerError || we.Attempts != 3 || !we.Retryable {
		t.Errorf("error %+v", we)
	}
	if n := len(rec.got()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	for _, want := range []string{srv.URL, "500 Internal Server Error", "nope", "3 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPostDefaultAttempts(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusServiceUnavailable)
	s := &Sender{Backoff: time.Millisecond}
	if err := s.Post(context.Background(), srv.URL, sample); err == nil {
		t.Fatal("no error")
	}
	if n := len(rec.got()); n != DefaultAttempts {
		t.Errorf("%d requests, want %d", n, DefaultAttempts)
	}
}

func TestPostRetriesNetworkErrors(t *testing.T) {
	// A loopback port nobody listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var attempts atomic.Int32
	s := fast(3)
	s.Client = &http.Client{Transport: countingTransport{&attempts, http.DefaultTransport}}
	err = s.Post(context.Background(), "http://"+addr+"/hook", sample)
	we := asError(t, err)
	if we.Err == nil || we.StatusCode != 0 || we.Attempts != 3 {
		t.Errorf("error %+v", we)
	}
	if n := attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the URL", err)
	}
}

type countingTransport struct {
	n  *atomic.Int32
	rt http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestPostStopsWhenCancelledDuringRequest(t *testing.T) {
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fast(4).Post(ctx, srv.URL, sample) }()
	<-arrived
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if we := asError(t, err); we.Attempts != 1 {
		t.Errorf("error %+v, want 1 attempt", we)
	}
	if len(arrived) != 0 {
		t.Errorf("%d more requests after cancel", len(arrived))
	}
}

func TestPostStopsWhenCancelledDuringBackoff(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusServiceUnavailable)
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &Sender{Attempts: 4, Backoff: time.Hour} // waits MaxBackoff/2 at least
	s.Client = &http.Client{Transport: hookTransport{http.DefaultTransport, func() { once.Do(cancel) }}}
	err := s.Post(ctx, srv.URL, sample)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	we := asError(t, err)
	if we.StatusCode != http.StatusServiceUnavailable || we.Attempts != 1 {
		t.Errorf("error %+v", we)
	}
	if n := len(rec.got()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// hookTransport calls after once the answer's headers arrived.
type hookTransport struct {
	rt    http.RoundTripper
	after func()
}

func (h hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(r)
	h.after()
	return resp, err
}

func TestPostCancelledBeforeStart(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fast(4).Post(ctx, srv.URL, sample); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if n := len(rec.got()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestPostDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	t.Cleanup(target.Close)
	rec, srv := newRecorder(t, http.StatusFound)
	rec.header.Set("Location", target.URL)
	err := fast(4).Post(context.Background(), srv.URL, sample)
	we := asError(t, err)
	if we.StatusCode != http.StatusFound || we.Retryable {
		t.Errorf("error %+v", we)
	}
	if followed.Load() || len(rec.got()) != 1 {
		t.Errorf("followed %v, %d requests", followed.Load(), len(rec.got()))
	}
}

func TestPostRejectsBadInput(t *testing.T) {
	rec, srv := newRecorder(t, http.StatusOK)
	if err := fast(4).Post(context.Background(), srv.URL, make(chan int)); err == nil || !strings.Contains(err.Error(), "encode") {
		t.Errorf("unencodable body: error %v", err)
	}
	for _, u := range []string{"", "/relative", "ftp://example.com/x", "http://", "http://[::1"} {
		if err := fast(4).Post(context.Background(), u, sample); err == nil {
			t.Errorf("URL %q accepted", u)
		}
	}
	if n := len(rec.got()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestErrorRedactsSecrets(t *testing.T) {
	_, srv := newRecorder(t, http.StatusForbidden)
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/hook?token=s3cret#frag"
	err := fast(1).Post(context.Background(), u, sample)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2") || strings.Contains(msg, "s3cret") || strings.Contains(msg, "frag") {
		t.Errorf("error %q shows a secret", msg)
	}
	if !strings.Contains(msg, "/hook") || !strings.Contains(msg, "403") {
		t.Errorf("error %q does not name the URL and status", msg)
	}
}

func TestBackoff(t *testing.T) {
	s := &Sender{Backoff: time.Second}
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: MaxBackoff, 60: MaxBackoff} {
		for range 50 {
			d := s.backoff(attempt)
			if d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, base/2, base)
			}
		}
	}
	var zero Sender
	if d := zero.backoff(1); d < DefaultBackoff/2 || d > DefaultBackoff {
		t.Errorf("default backoff(1) = %v", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              -1,
		"0":                             0,
		" 7 ":                           7 * time.Second,
		"3600":                          MaxBackoff,
		"-5":                            -1,
		"soon":                          -1,
		"Tue, 01 Dec 2026 12:00:10 GMT": 10 * time.Second,
		"Tue, 01 Dec 2026 13:00:00 GMT": MaxBackoff,
		"Tue, 01 Dec 2026 11:00:00 GMT": 0,
	}
	for h, want := range tests {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}
