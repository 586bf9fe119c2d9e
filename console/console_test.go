package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRoute(t *testing.T) {
	built := map[string]bool{"index.html": true, "assets/index-Ab12.js": true, "favicon.svg": true}
	exists := func(n string) bool { return built[n] }
	for _, tc := range []struct {
		rel, kind, file string
	}{
		{"", Index, "index.html"},
		{"index.html", Index, "index.html"},
		{"apps", Index, "index.html"},
		{"apps/com.example.app/channels", Index, "index.html"}, // dots in an app id are not an extension
		{"assets/index-Ab12.js", Asset, "assets/index-Ab12.js"},
		{"favicon.svg", File, "favicon.svg"},
		{"assets/index-old.js", Missing, "assets/index-old.js"},
		{"assets/nothing", Missing, "assets/nothing"},
		{"robots.txt", Missing, "robots.txt"},
		{"../../etc/passwd", Index, "index.html"},
		{"apps/com.example.app", Index, "index.html"},
		{"apps/../assets/index-Ab12.js", Asset, "assets/index-Ab12.js"},
	} {
		kind, file := Route(tc.rel, exists)
		if kind != tc.kind || file != tc.file {
			t.Errorf("Route(%q) = %s %q, want %s %q", tc.rel, kind, file, tc.kind, tc.file)
		}
	}
}

func TestRouteAppIDWithDots(t *testing.T) {
	// An app route whose last segment looks like a file name (an app id
	// has dots) must still get the index.
	kind, _ := Route("apps/com.example.app", func(string) bool { return false })
	if kind != Index {
		t.Errorf("apps/com.example.app: %s, want index", kind)
	}
}

func TestCacheControl(t *testing.T) {
	for kind, want := range map[string]string{
		Asset: "public, max-age=31536000, immutable", Index: "no-cache", File: "no-cache", Missing: "no-cache",
	} {
		if got := CacheControl(kind); got != want {
			t.Errorf("CacheControl(%s) = %q, want %q", kind, got, want)
		}
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"index.html": "text/html; charset=utf-8", "assets/a.js": "text/javascript; charset=utf-8",
		"assets/a.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml", "favicon.ico": "image/x-icon",
		"assets/f.woff2": "font/woff2", "blob": "application/octet-stream",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%s) = %q, want %q", name, got, want)
		}
	}
}

func serve(h http.Handler, method, target string) *http.Response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func TestHandler(t *testing.T) {
	h := handler(fstest.MapFS{
		"index.html":            {Data: []byte(`<!doctype html><script type="module" src="/console/assets/index-Ab12.js"></script>`)},
		"assets/index-Ab12.js":  {Data: []byte("console.log(1)")},
		"assets/index-Cd34.css": {Data: []byte("body{}")},
	})
	for _, tc := range []struct {
		target    string
		status    int
		ctype, cc string
		bodyHas   string
	}{
		{"/console/", 200, "text/html; charset=utf-8", "no-cache", "index-Ab12.js"},
		{"/console/apps/com.example.app/health", 200, "text/html; charset=utf-8", "no-cache", "index-Ab12.js"},
		{"/console/assets/index-Ab12.js", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "console.log"},
		{"/console/assets/index-Cd34.css", 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", "body"},
		{"/console/assets/gone-1.js", 404, "text/plain; charset=utf-8", "no-cache", "not found"},
	} {
		resp := serve(h, http.MethodGet, tc.target)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype || resp.Header.Get("Cache-Control") != tc.cc || !strings.Contains(string(body), tc.bodyHas) {
			t.Errorf("GET %s: %d %q %q %q; want %d %q %q containing %q", tc.target, resp.StatusCode, resp.Header.Get("Content-Type"),
				resp.Header.Get("Cache-Control"), body, tc.status, tc.ctype, tc.cc, tc.bodyHas)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp != CSP {
			t.Errorf("GET %s: CSP %q", tc.target, csp)
		}
	}
	if resp := serve(h, http.MethodGet, "/console"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d to %q, want a redirect to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := serve(h, http.MethodPost, "/console/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /console/: %d, want 405", resp.StatusCode)
	}
	if resp := serve(h, http.MethodHead, "/console/assets/index-Ab12.js"); resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "14" {
		t.Errorf("HEAD asset: %d length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
}

func TestCSPIsStrict(t *testing.T) {
	for _, must := range []string{"script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(CSP, must) {
			t.Errorf("CSP %q lacks %q", CSP, must)
		}
	}
	if strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP %q allows something unsafe", CSP)
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	h := handler(fstest.MapFS{".gitkeep": {}})
	for _, target := range []string{"/console/", "/console/apps", "/console/assets/index-Ab12.js"} {
		resp := serve(h, http.MethodGet, target)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "console not built: run make console") {
			t.Errorf("GET %s without a build: %d %q; want 503 saying how to build", target, resp.StatusCode, body)
		}
	}
}
