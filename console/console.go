// Package console serves the embedded web console.
package console

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// dist is what `make console` builds from ui/ (npm + Vite); in a checkout
// without that build it holds only .gitkeep.
//
//go:embed all:dist
var dist embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console/"

// CSP allows only the console's own files and API calls: no inline
// scripts or styles, nothing from elsewhere, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Kinds of answer Route picks.
const (
	// Asset is a built file under assets/, named by its content hash.
	Asset = "asset"
	// File is another built file (favicon, …): revalidated on each use.
	File = "file"
	// Index is the single-page app's index.html, for any app route.
	Index = "index"
	// Missing is a file path (under assets/, or a top-level name with an
	// extension) with nothing built there: a 404, never the index, so a stale or
	// mistyped asset URL fails visibly.
	Missing = "missing"
)

// Route decides what a path below the prefix ("" for the root,
// "apps/x/channels", "assets/index-abc.js") is answered with, given
// whether a built file exists at it. It returns the kind and the file to
// send.
func Route(rel string, exists func(name string) bool) (kind, file string) {
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel == "" || rel == "index.html" {
		return Index, "index.html"
	}
	if exists(rel) {
		if strings.HasPrefix(rel, "assets/") {
			return Asset, rel
		}
		return File, rel
	}
	// App routes hold app ids with dots (apps/com.example.app), so only a
	// top-level name with an extension is taken for a file.
	if strings.HasPrefix(rel, "assets/") || (!strings.Contains(rel, "/") && path.Ext(rel) != "") {
		return Missing, rel
	}
	return Index, "index.html"
}

// CacheControl is the Cache-Control of an answer of the given kind:
// hashed assets never change under their name; everything else is
// revalidated so a new build is picked up at once.
func CacheControl(kind string) string {
	if kind == Asset {
		return "public, max-age=31536000, immutable"
	}
	return "no-cache"
}

// Handler serves the console at Prefix: the built files, index.html for
// every other route (the app routes in the browser), and a 503 page
// when the binary was built without the console.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// Only a malformed embed could get here: answer as unbuilt.
		return handler(embed.FS{})
	}
	return handler(sub)
}

// Built reports whether the binary holds a built console.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}

func handler(files fs.FS) http.Handler {
	exists := func(name string) bool {
		st, err := fs.Stat(files, name)
		return err == nil && !st.IsDir()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if !exists("index.html") {
			notBuilt(w)
			return
		}
		kind, file := Route(rel, exists)
		h.Set("Cache-Control", CacheControl(kind))
		if kind == Missing {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, err := fs.ReadFile(files, file)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", ContentType(file))
		// Embedded files have no modification time; ServeContent still
		// gives Range and HEAD, and the hashed names make ETags needless.
		http.ServeContent(w, r, file, time.Time{}, bytes.NewReader(body))
	})
}

// extraTypes are types Go's built-in table lacks (it is used when the
// system has no mime.types).
var extraTypes = map[string]string{
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
	".map":   "application/json",
}

// ContentType is the Content-Type of a built file, by its extension.
func ContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := extraTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Capstan console not built</title></head>
<body><h1>console not built: run make console</h1>
<p>This capstan binary was built without the web console. Run <code>make console</code>
(or <code>make build</code>) in the source tree, then rebuild.</p></body></html>
`

func notBuilt(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(notBuiltPage))
}
