package update

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/release"
	"github.com/go-chi/chi/v5"
)

// bundleTestRouter runs a real embedded JetStream and release store with
// one app holding a stored bundle (1.0.0+b.7), an external one (2.0.0)
// and a manifest-only one (3.0.0), mounted the way serve.go mounts it.
func bundleTestRouter(t *testing.T) (http.Handler, []byte, release.Bundle) {
	t.Helper()
	s, zip, bu := bundleTestStore(t)
	r := chi.NewRouter()
	r.Handle("/bundles/{app}/{file}", BundleHandler(s, nil))
	return r, zip, bu
}

func bundleTestStore(t *testing.T) (*release.Store, []byte, release.Bundle) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	zip := make([]byte, 100_000)
	for i := range zip {
		zip[i] = byte(i % 251)
	}
	for _, err := range []error{
		s.CreateApp(ctx, release.App{ID: "com.example.app"}),
		s.CreateBundle(ctx, release.Bundle{AppID: "com.example.app", Version: "1.0.0+b.7"}, bytes.NewReader(zip)),
		s.CreateBundle(ctx, release.Bundle{AppID: "com.example.app", Version: "2.0.0", ExternalURL: "https://cdn.example.com/a/2.0.0.zip", Checksum: "c"}, nil),
		s.CreateBundle(ctx, release.Bundle{AppID: "com.example.app", Version: "3.0.0", Manifest: []release.ManifestEntry{{FileName: "index.html", FileHash: "h", DownloadURL: "https://cdn.example.com/i"}}}, nil),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	bu, _ := s.Snapshot().Bundle("com.example.app", "1.0.0+b.7")
	return s, zip, *bu
}

func bundleDo(h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func bundleWantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d (%s)", rec.Code, status, rec.Body)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != code || body["message"] == "" {
		t.Fatalf("error body %q, want error %q", rec.Body, code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error content type %q", ct)
	}
}

func TestBundleDownload(t *testing.T) {
	h, zip, bu := bundleTestRouter(t)
	const path = "/bundles/com.example.app/1.0.0+b.7.zip"
	etag := `"` + bu.ObjectSHA256 + `"`

	t.Run("full GET", func(t *testing.T) {
		rec := bundleDo(h, "GET", path, nil)
		if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), zip) {
			t.Fatalf("status %d, %d bytes", rec.Code, rec.Body.Len())
		}
		hd := rec.Header()
		if hd.Get("Content-Type") != "application/zip" || hd.Get("ETag") != etag ||
			hd.Get("Content-Length") != strconv.Itoa(len(zip)) || hd.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("headers %v", hd)
		}
	})
	t.Run("escaped version", func(t *testing.T) {
		rec := bundleDo(h, "GET", "/bundles/com.example.app/1.0.0%2Bb.7.zip", nil)
		if rec.Code != 200 || rec.Body.Len() != len(zip) {
			t.Fatalf("status %d", rec.Code)
		}
	})
	t.Run("resume", func(t *testing.T) {
		rec := bundleDo(h, "GET", path, map[string]string{"Range": "bytes=10-"})
		if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), zip[10:]) {
			t.Fatalf("status %d, %d bytes", rec.Code, rec.Body.Len())
		}
		if cr := rec.Header().Get("Content-Range"); cr != "bytes 10-"+strconv.Itoa(len(zip)-1)+"/"+strconv.Itoa(len(zip)) {
			t.Fatalf("content-range %q", cr)
		}
	})
	t.Run("range past end", func(t *testing.T) {
		rec := bundleDo(h, "GET", path, map[string]string{"Range": "bytes=" + strconv.Itoa(len(zip)) + "-"})
		if rec.Code != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("status %d", rec.Code)
		}
	})
	// RFC 9110 §14.1.1: a suffix range is satisfiable only with a non-zero
	// length, so bytes=-0 is a 416 naming the size, never an empty 206.
	t.Run("zero suffix range", func(t *testing.T) {
		rec := bundleDo(h, "GET", path, map[string]string{"Range": "bytes=-0"})
		if rec.Code != http.StatusRequestedRangeNotSatisfiable || rec.Header().Get("Content-Range") != "bytes */"+strconv.Itoa(len(zip)) {
			t.Fatalf("status %d, content-range %q", rec.Code, rec.Header().Get("Content-Range"))
		}
		rec = bundleDo(h, "GET", path, map[string]string{"Range": "bytes=-5"})
		if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), zip[len(zip)-5:]) {
			t.Fatalf("suffix range: status %d", rec.Code)
		}
	})
	t.Run("if-none-match", func(t *testing.T) {
		rec := bundleDo(h, "GET", path, map[string]string{"If-None-Match": etag})
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Fatalf("status %d", rec.Code)
		}
		rec = bundleDo(h, "GET", path, map[string]string{"If-None-Match": `"other"`})
		if rec.Code != 200 {
			t.Fatalf("stale etag: status %d", rec.Code)
		}
	})
	t.Run("HEAD", func(t *testing.T) {
		rec := bundleDo(h, "HEAD", path, nil)
		if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != strconv.Itoa(len(zip)) {
			t.Fatalf("status %d, body %d, length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
		}
	})
	t.Run("external", func(t *testing.T) {
		rec := bundleDo(h, "GET", "/bundles/com.example.app/2.0.0.zip", nil)
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://cdn.example.com/a/2.0.0.zip" {
			t.Fatalf("status %d location %q", rec.Code, rec.Header().Get("Location"))
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		rec := bundleDo(h, "POST", path, nil)
		bundleWantError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
		if rec.Header().Get("Allow") != "GET, HEAD" {
			t.Fatalf("allow %q", rec.Header().Get("Allow"))
		}
	})
	for _, p := range []string{
		"/bundles/com.example.app/9.9.9.zip",
		"/bundles/com.other/1.0.0+b.7.zip",
		"/bundles/com.example.app/1.0.0+b.7",
		"/bundles/com.example.app/1.0.0+b.7.tar",
		"/bundles/com.example.app/.zip",
		"/bundles/com.example.app/3.0.0.zip", // manifest only: no zip
	} {
		t.Run("unknown "+p, func(t *testing.T) {
			bundleWantError(t, bundleDo(h, "GET", p, nil), http.StatusNotFound, "bundle_not_found")
		})
	}
}

func TestBundleDownloadRejectsTraversal(t *testing.T) {
	h, _, _ := bundleTestRouter(t)
	for _, p := range []string{
		"/bundles/com.example.app/..%2F..%2Fetc%2Fpasswd.zip",
		"/bundles/..%2F..%2Fetc/passwd.zip",
		"/bundles/com.example.app/..%5C1.0.0+b.7.zip",
		"/bundles/com.example.app/1.0.0+b.7%00.zip",
		"/bundles/../1.0.0+b.7.zip",
		"/bundles/com.example.app/../../etc/passwd.zip",
		"/bundles/com.example.app/%2e%2e.zip",
	} {
		rec := bundleDo(h, "GET", p, nil)
		t.Logf("%s → %d", p, rec.Code)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d", p, rec.Code)
		}
	}
}

func TestBundleHandlerWithoutChi(t *testing.T) {
	s, zip, _ := bundleTestStore(t)
	mux := http.NewServeMux()
	mux.Handle("/bundles/", BundleHandler(s, nil))
	rec := bundleDo(mux, "GET", "/bundles/com.example.app/1.0.0%2Bb.7.zip", nil)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), zip) {
		t.Fatalf("status %d", rec.Code)
	}
	bundleWantError(t, bundleDo(mux, "GET", "/bundles/com.example.app/..%2Fx.zip", nil), http.StatusBadRequest, "invalid_bundle_path")
	bundleWantError(t, bundleDo(mux, "GET", "/bundles/com.example.app/4.0.0.zip", nil), http.StatusNotFound, "bundle_not_found")
}

func TestBundleSafeSegment(t *testing.T) {
	tests := map[string]bool{
		"com.example.app": true, "1.0.0+b.7": true, "1.0.0-beta.1": true,
		"..": false, ".": false, "a/b": false, `a\b`: false, "a\x00b": false, "1..0": false,
	}
	for in, want := range tests {
		if got := bundleSafeSegment(in); got != want {
			t.Errorf("%q: %v", in, got)
		}
	}
}

func TestDropZeroSuffixRanges(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"", "", true}, {"bytes=10-", "bytes=10-", true}, {"bytes=-5", "bytes=-5", true},
		{"bytes=-0", "", false}, {"bytes=-000", "", false}, {"bytes= -0 , -0", "", false},
		{"bytes=-0,0-4", "bytes=0-4", true}, {"bytes=0-4,-0", "bytes=0-4", true}, {"bytes=-10", "bytes=-10", true},
		{"items=-0", "items=-0", true},
	} {
		out, ok := dropZeroSuffixRanges(tc.in)
		if out != tc.out || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.in, out, ok, tc.out, tc.ok)
		}
	}
}
