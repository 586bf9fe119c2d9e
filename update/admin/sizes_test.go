package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/update/release"
)

// newSmallPayloadEnv is newEnv over an embedded JetStream whose
// max_payload is maxPayload, as an external server may be configured.
func newSmallPayloadEnv(t *testing.T, maxPayload int32) (*env, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	ns, err := server.NewServer(&server.Options{
		JetStream: true, StoreDir: t.TempDir(), DontListen: true,
		NoLog: true, NoSigs: true, MaxPayload: maxPayload,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := release.Open(ctx, js, release.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/api/v1", New(Config{Store: st, AdminToken: testToken, TempDir: t.TempDir()}).Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return newEnvOn(t, srv, st, ctx), js
}

// manifestOf returns a manifest whose JSON is about n bytes.
func manifestOf(n int) []release.ManifestEntry {
	var m []release.ManifestEntry
	for i := 0; n > 0; i++ {
		e := release.ManifestEntry{FileName: fmt.Sprintf("assets/chunk-%06d.js", i), FileHash: strings.Repeat("ab", 32), DownloadURL: fmt.Sprintf("https://cdn.example.com/assets/chunk-%06d.js", i)}
		b, _ := json.Marshal(e)
		n -= len(b) + 1
		m = append(m, e)
	}
	return m
}

// TestMetadataSizeLimit uploads manifests around the limit derived from
// the server's max_payload: below it they are stored, above it the answer
// is 413 metadata_too_large naming the limit (never the 503 a retry would
// not fix), and nothing of the refused upload is left behind.
func TestMetadataSizeLimit(t *testing.T) {
	const maxPayload = 256 << 10
	e, js := newSmallPayloadEnv(t, maxPayload)
	e.app(t, "com.example.app")
	limit := e.store.MaxValueBytes()
	if limit <= 0 || limit >= maxPayload {
		t.Fatalf("MaxValueBytes %d for a max_payload of %d", limit, maxPayload)
	}

	small := BundleMetadata{Version: "1.0.0", ExternalURL: "https://cdn.example.com/1.0.0.zip", Checksum: strings.Repeat("ab", 32), Manifest: manifestOf(limit / 2)}
	if _, err := e.client.UploadBundle(e.ctx, "com.example.app", small, nil); err != nil {
		t.Fatalf("manifest of half the limit: %v", err)
	}
	if b, ok := e.store.Snapshot().Bundle("com.example.app", "1.0.0"); !ok || len(b.Manifest) != len(small.Manifest) {
		t.Fatal("stored bundle lacks its manifest")
	}

	// Just under the limit: the headroom left for headers holds.
	near := BundleMetadata{Version: "1.5.0", ExternalURL: "https://cdn.example.com/1.5.0.zip", Checksum: strings.Repeat("ab", 32), Manifest: manifestOf(limit - 2<<10)}
	if _, err := e.client.UploadBundle(e.ctx, "com.example.app", near, nil); err != nil {
		t.Fatalf("manifest just under the limit: %v", err)
	}

	for _, tc := range []struct {
		name string
		zip  bool
	}{{"json metadata", false}, {"multipart with zip", true}} {
		t.Run(tc.name, func(t *testing.T) {
			big := BundleMetadata{Version: "2.0.0", Manifest: manifestOf(limit + 10_000)}
			var status int
			var eb ErrorBody
			if tc.zip {
				meta, _ := json.Marshal(big)
				ct, body := multipartBody(t, map[string][]byte{"metadata": meta, "file": goodZip(t)}, "metadata", "file")
				status, _, eb, _ = e.raw(t, http.MethodPost, "/api/v1/apps/com.example.app/bundles", testToken, ct, body)
			} else {
				big.ExternalURL, big.Checksum = "https://cdn.example.com/2.0.0.zip", strings.Repeat("ab", 32)
				meta, _ := json.Marshal(big)
				status, _, eb, _ = e.raw(t, http.MethodPost, "/api/v1/apps/com.example.app/bundles", testToken, "application/json", bytes.NewReader(meta))
			}
			if status != http.StatusRequestEntityTooLarge || eb.Error != "metadata_too_large" {
				t.Fatalf("got %d %q (%s), want 413 metadata_too_large", status, eb.Error, eb.Message)
			}
			if !strings.Contains(eb.Message, strconv.Itoa(limit)) || !strings.Contains(eb.Message, strconv.Itoa(maxPayload)) {
				t.Fatalf("message does not name the limit %d and max_payload %d: %s", limit, maxPayload, eb.Message)
			}
			if _, ok := e.store.Snapshot().Bundle("com.example.app", "2.0.0"); ok {
				t.Fatal("refused bundle stored")
			}
		})
	}
	// The refused uploads left no zip in the object store.
	obs, err := js.ObjectStore(e.ctx, release.DefaultObjectBucket)
	if err != nil {
		t.Fatal(err)
	}
	if objs, err := obs.List(e.ctx); err == nil || len(objs) != 0 {
		t.Fatalf("object store holds %d objects (%v)", len(objs), err)
	}
}

// TestRecordTooLarge has the store write a record larger than the
// server's max_payload (bypassing the upload's own check): the NATS
// client refuses it, and the admin API answers that failure with 413
// record_too_large naming the limit, not 503 store_unavailable.
func TestRecordTooLarge(t *testing.T) {
	const maxPayload = 64 << 10
	e, _ := newSmallPayloadEnv(t, maxPayload)
	e.app(t, "com.example.app")
	b := release.Bundle{AppID: "com.example.app", Version: "1.0.0", ExternalURL: "https://cdn.example.com/1.0.0.zip", Checksum: strings.Repeat("ab", 32), Manifest: manifestOf(maxPayload)}
	err := e.store.CreateBundle(e.ctx, b, nil)
	if err == nil {
		t.Fatal("a record over max_payload was written")
	}
	a := New(Config{Store: e.store, AdminToken: testToken})
	ae := a.toAPIError(httptest.NewRequest(http.MethodPost, "/api/v1/apps/com.example.app/bundles", nil), fmt.Errorf("create bundle: %w", err))
	if ae.status != http.StatusRequestEntityTooLarge || ae.code != "record_too_large" {
		t.Fatalf("store error %v answered %d %q", err, ae.status, ae.code)
	}
	if !strings.Contains(ae.message, strconv.Itoa(e.store.MaxValueBytes())) {
		t.Fatalf("message does not name the limit %d: %s", e.store.MaxValueBytes(), ae.message)
	}
}
