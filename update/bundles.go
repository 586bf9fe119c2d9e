package update

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/capstan-io/capstan/update/release"
	"github.com/go-chi/chi/v5"
)

// BundleOpener opens a bundle's zip for download; *release.Store is one.
// f is nil when the bundle has no stored zip (ExternalURL or manifest only).
type BundleOpener interface {
	OpenBundle(ctx context.Context, app, version string) (f *os.File, b release.Bundle, err error)
}

var _ BundleOpener = (*release.Store)(nil)

// BundleHandler serves GET and HEAD /bundles/{app}/{version}.zip with
// Range, ETag (the stored zip's SHA-256) and If-None-Match support. Mount
// it with chi at "/bundles/{app}/{file}"; elsewhere it reads the last two
// path segments. Files come only from the release metadata, never from
// the path.
func BundleHandler(store BundleOpener, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &bundleHandler{store: store, log: log}
}

type bundleHandler struct {
	store BundleOpener
	log   *slog.Logger
}

func (h *bundleHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		bundleError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Bundles are downloaded with GET or HEAD")
		return
	}
	app, file, ok := bundleParams(r)
	if !ok {
		bundleError(w, http.StatusBadRequest, "invalid_bundle_path", "The bundle path is not valid")
		return
	}
	version, isZip := strings.CutSuffix(file, ".zip")
	if !isZip || app == "" || version == "" {
		bundleNotFound(w)
		return
	}
	if !bundleSafeSegment(app) || !bundleSafeSegment(version) {
		bundleError(w, http.StatusBadRequest, "invalid_bundle_path", "The bundle path is not valid")
		return
	}
	f, b, err := h.store.OpenBundle(r.Context(), app, version)
	if errors.Is(err, release.ErrNotFound) {
		bundleNotFound(w)
		return
	}
	if err != nil {
		if r.Context().Err() == nil {
			h.log.Warn("open bundle", "app", app, "version", version, "err", err)
		}
		// 503 makes the plugin retry the download later.
		w.Header().Set("Retry-After", "5")
		bundleError(w, http.StatusServiceUnavailable, "bundle_unavailable", "The bundle cannot be read right now; retry later")
		return
	}
	if b.ExternalURL != "" {
		if f != nil {
			f.Close()
		}
		http.Redirect(w, r, b.ExternalURL, http.StatusFound)
		return
	}
	if f == nil {
		// Manifest-only bundle: there is no zip to serve.
		bundleNotFound(w)
		return
	}
	defer f.Close()
	// Short cache: a version can be deleted and uploaded again with new bytes.
	serveRanged(w, r, f, b.Size, b.CreatedAt, "application/zip", b.ObjectSHA256, "public, max-age=300")
}

// serveRanged answers a stored object with its ETag and cache policy,
// Range and conditional requests handled by net/http.
func serveRanged(w http.ResponseWriter, r *http.Request, body io.ReadSeeker, size int64, mod time.Time, ctype, sha, cache string) {
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("ETag", `"`+sha+`"`)
	hdr.Set("Cache-Control", cache)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if rng, ok := dropZeroSuffixRanges(r.Header.Get("Range")); !ok {
		hdr.Set("Content-Range", "bytes */"+itoa(size))
		bundleError(w, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "The requested range is empty")
		return
	} else if rng != r.Header.Get("Range") {
		r.Header.Set("Range", rng)
	}
	http.ServeContent(w, r, "", mod, body)
}

// dropZeroSuffixRanges removes "-0" specs from a bytes Range header:
// net/http answers them with a 206 and an impossible Content-Range, while
// RFC 9110 §14.1.1 makes a zero-length suffix unsatisfiable. ok is false
// when nothing satisfiable is left.
func dropZeroSuffixRanges(h string) (string, bool) {
	spec, isBytes := strings.CutPrefix(h, "bytes=")
	if !isBytes || !strings.Contains(spec, "-") {
		return h, true
	}
	parts := strings.Split(spec, ",")
	kept := parts[:0]
	for _, p := range parts {
		if t := strings.TrimSpace(p); strings.HasPrefix(t, "-") && strings.Trim(t[1:], "0") == "" && len(t) > 1 {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return "", false
	}
	return "bytes=" + strings.Join(kept, ","), true
}

// bundleParams returns the decoded app and file segments of the path.
func bundleParams(r *http.Request) (app, file string, ok bool) {
	app, file = chi.URLParam(r, "app"), chi.URLParam(r, "file")
	if app == "" && file == "" {
		// Not routed by chi: take the last two segments of the raw path.
		segs := strings.Split(r.URL.EscapedPath(), "/")
		if len(segs) < 2 {
			return "", "", true
		}
		app, file = segs[len(segs)-2], segs[len(segs)-1]
		return bundleUnescape(app, file)
	}
	// chi routes on the raw path when there is one, leaving params escaped.
	if r.URL.RawPath != "" {
		return bundleUnescape(app, file)
	}
	return app, file, true
}

func bundleUnescape(app, file string) (string, string, bool) {
	a, err1 := url.PathUnescape(app)
	f, err2 := url.PathUnescape(file)
	return a, f, err1 == nil && err2 == nil
}

// bundleSafeSegment rejects what could address anything but one bundle:
// separators, parent references, NUL and other control characters.
func bundleSafeSegment(s string) bool {
	if s == "." || strings.Contains(s, "..") || strings.ContainsAny(s, `/\`) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func bundleNotFound(w http.ResponseWriter) {
	bundleError(w, http.StatusNotFound, "bundle_not_found", "No such bundle")
}

func bundleError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]string{"error": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// FileOpener opens a stored delta file by the SHA-256 of its bytes;
// *release.Store is one.
type FileOpener interface {
	OpenFile(ctx context.Context, sha string) (f *os.File, size int64, err error)
}

var _ FileOpener = (*release.Store)(nil)

// FileHandler serves GET and HEAD /files/{sha}: one file of a delta
// bundle, as stored (brotli for .br manifest entries), with Range and an
// ETag of its digest. Content-addressed, so it never changes.
func FileHandler(store FileOpener, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			bundleError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Files are downloaded with GET or HEAD")
			return
		}
		sha := chi.URLParam(r, "sha")
		if sha == "" {
			sha = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		}
		f, size, err := store.OpenFile(r.Context(), sha)
		if errors.Is(err, release.ErrNotFound) {
			bundleError(w, http.StatusNotFound, "file_not_found", "No such file")
			return
		}
		if err != nil {
			if r.Context().Err() == nil {
				log.Warn("open file", "sha", sha, "err", err)
			}
			w.Header().Set("Retry-After", "5")
			bundleError(w, http.StatusServiceUnavailable, "file_unavailable", "The file cannot be read right now; retry later")
			return
		}
		defer f.Close()
		serveRanged(w, r, f, size, time.Time{}, "application/octet-stream", sha, "public, max-age=31536000, immutable")
	})
}
