package update

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/update/release"
)

// benchSnapshot: one app with 1,000 bundles, a few channels (one with a
// rollout) and 10,000 device overrides.
func benchSnapshot() *release.Snapshot {
	b := release.NewBuilder(nil)
	b.PutApp(release.App{ID: testApp})
	for i := 0; i < 1000; i++ {
		v := fmt.Sprintf("1.%d.%d", i/100, i%100)
		b.PutBundle(release.Bundle{AppID: testApp, Version: v, Checksum: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Object: testApp + "/" + v})
	}
	prod := release.NewChannel(testApp, "production")
	prod.Public, prod.Bundle, prod.RolloutBundle, prod.RolloutPercent = true, "1.9.99", "1.9.98", 20
	beta := release.NewChannel(testApp, "beta")
	beta.AllowSelfSet, beta.Bundle = true, "1.9.97"
	b.PutChannel(prod)
	b.PutChannel(beta)
	b.PutChannel(release.NewChannel(testApp, "internal"))
	for i, id := range deviceIDs(10000) {
		if i%2 == 0 {
			b.PutOverride(release.Override{AppID: testApp, DeviceID: id, Channel: "internal"})
		}
	}
	return b.Build()
}

func benchRequest(versionName string) Request {
	r := baseRequest()
	r.DeviceID = "0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0e" // not in the rollout at 20 %
	r.VersionBuild, r.VersionName = "1.0.0", versionName
	return r
}

func BenchmarkDecideNeedsUpdate(b *testing.B) {
	snap := benchSnapshot()
	req := benchRequest("1.5.0")
	if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Result != ResultUpdate {
		b.Fatalf("setup: %s %s", a.Result, a.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(&req, snap, Options{PublicURL: testPublic})
	}
}

func BenchmarkDecideUpToDate(b *testing.B) {
	snap := benchSnapshot()
	req := benchRequest("1.9.99")
	if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Result != CodeNoNewVersion {
		b.Fatalf("setup: %s", a.Result)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(&req, snap, Options{PublicURL: testPublic})
	}
}

func BenchmarkDecideBlockedMajor(b *testing.B) {
	snap := benchSnapshot()
	req := benchRequest("0.9.0")
	req.VersionBuild = "0.9.0"
	if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Result != CodeToMajor {
		b.Fatalf("setup: %s", a.Result)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(&req, snap, Options{PublicURL: testPublic})
	}
}

var benchBody = []byte(`{"platform":"android","device_id":"0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0e","app_id":"com.example.app","custom_id":"","version_build":"1.0.0","version_code":"10","version_os":"14","version_name":"1.5.0","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"install_source":"com.android.vending"}`)

func BenchmarkDecodeJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if _, err := DecodeJSON(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

// A reusable request body so both handler benchmarks measure only serving.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

func benchServe(b *testing.B, h http.Handler, body []byte) {
	rb := &rewindBody{}
	req := httptest.NewRequest(http.MethodPost, "/updates", nil)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.ContentLength = int64(len(body))
	req.Body = rb
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rb.Reset(body)
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int)   { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return len(p), nil
}

// BenchmarkHandlerUpdates is the full /updates path through chi, without
// the network; compare with BenchmarkBareChiHandler.
func BenchmarkHandlerUpdates(b *testing.B) {
	snap := benchSnapshot()
	h := NewHandler(Config{Snapshot: func() *release.Snapshot { return snap }, PublicURL: testPublic, Metrics: NewMetrics(nil)})
	r := chi.NewRouter()
	h.Routes(r)
	benchServe(b, r, benchBody)
}

// BenchmarkBareChiHandler is the baseline: chi route that decodes the same
// body and returns a canned answer.
func BenchmarkBareChiHandler(b *testing.B) {
	canned := []byte(`{"version":"1.9.99","url":"https://updates.example.com/bundles/com.example.app/1.9.99.zip","session_key":"","checksum":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}`)
	r := chi.NewRouter()
	r.Post("/updates", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, "bad", 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(canned)
	})
	benchServe(b, r, benchBody)
}
