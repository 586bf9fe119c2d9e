package update

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/release"
	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBundleDownloadJetStreamGone downloads a bundle that is not in the
// front's cache while its JetStream server is down: the answer is a 503
// with Retry-After within the store's FetchTimeout, and once the server
// is back the same download succeeds.
func TestBundleDownloadJetStreamGone(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(dir, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(srv.Addr().(*net.TCPAddr).Port))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cache := t.TempDir()
	const timeout = time.Second
	s, err := release.Open(ctx, js, release.Options{CacheDir: cache, FetchTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	zip := bytes.Repeat([]byte("capstan-"), 50_000) // several object chunks
	if err := s.CreateApp(ctx, release.App{ID: "com.example.app"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBundle(ctx, release.Bundle{AppID: "com.example.app", Version: "1.0.0"}, bytes.NewReader(zip)); err != nil {
		t.Fatal(err)
	}
	// The upload filled this front's cache; empty it as on a front that
	// never served the bundle.
	cached, _ := filepath.Glob(filepath.Join(cache, "*.zip"))
	if len(cached) != 1 {
		t.Fatalf("cache holds %v", cached)
	}
	if err := os.Remove(cached[0]); err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Handle("/bundles/{app}/{file}", BundleHandler(s, nil))
	const path = "/bundles/com.example.app/1.0.0.zip"

	srv.Shutdown()
	srv.WaitForShutdown()
	for i := range 2 { // a second try must not wait on the first one
		start := time.Now()
		rec := bundleDo(r, http.MethodGet, path, nil)
		took := time.Since(start)
		bundleWantError(t, rec, http.StatusServiceUnavailable, "bundle_unavailable")
		if ra := rec.Header().Get("Retry-After"); ra == "" {
			t.Fatal("503 without Retry-After")
		}
		if took > timeout+2*time.Second {
			t.Fatalf("try %d: answered after %s, bound is %s", i, took, timeout)
		}
	}

	srv, err = bus.StartEmbedded(dir, listen)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec := bundleDo(r, http.MethodGet, path, nil)
		if rec.Code == http.StatusOK {
			if !bytes.Equal(rec.Body.Bytes(), zip) {
				t.Fatalf("downloaded %d bytes, want the %d uploaded", rec.Body.Len(), len(zip))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the server came back: %s", rec.Code, rec.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBundleDownloadJetStreamDisabled serves a download from a server
// that is up but whose JetStream no longer answers: a bounded 503.
func TestBundleDownloadJetStreamDisabled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cache := t.TempDir()
	const timeout = time.Second
	s, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: cache, FetchTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApp(ctx, release.App{ID: "com.example.app"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBundle(ctx, release.Bundle{AppID: "com.example.app", Version: "1.0.0"}, bytes.NewReader(make([]byte, 10_000))); err != nil {
		t.Fatal(err)
	}
	cached, _ := filepath.Glob(filepath.Join(cache, "*.zip"))
	for _, p := range cached {
		_ = os.Remove(p)
	}
	if err := b.Server.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec := bundleDo(BundleHandler(s, nil), http.MethodGet, "/bundles/com.example.app/1.0.0.zip", nil)
	bundleWantError(t, rec, http.StatusServiceUnavailable, "bundle_unavailable")
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if took := time.Since(start); took > timeout+2*time.Second {
		t.Fatalf("answered after %s, bound is %s", took, timeout)
	}
}
