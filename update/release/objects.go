package release

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fetchTimeout bounds one fill of the local bundle cache.
const fetchTimeout = 5 * time.Minute

// objectName is unique per upload, so a losing duplicate upload never
// overwrites the winner's zip and can delete its own.
func objectName(app, version string) string {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	return enc(app) + "/" + enc(version) + "/" + hex.EncodeToString(nonce[:])
}

func validBundle(b Bundle, hasZip bool) error {
	if err := validSegment("app id", b.AppID); err != nil {
		return err
	}
	if err := validPathSegment("bundle version", b.Version); err != nil {
		return err
	}
	if b.ExternalURL != "" {
		u, err := url.Parse(b.ExternalURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: external url must be an absolute http(s) URL", ErrInvalid)
		}
		if hasZip {
			return fmt.Errorf("%w: give either a zip or an external url, not both", ErrInvalid)
		}
	}
	if !hasZip && b.ExternalURL == "" && len(b.Manifest) == 0 {
		return fmt.Errorf("%w: a bundle needs a zip, an external url or a manifest", ErrInvalid)
	}
	if b.SessionKey != "" && b.Checksum == "" {
		return fmt.Errorf("%w: an encrypted bundle needs its signed checksum", ErrInvalid)
	}
	return nil
}

// deleteObject removes a bundle's zip, logging failures: the metadata is
// what matters and is already gone.
func (s *Store) deleteObject(ctx context.Context, b Bundle) {
	if b.Object == "" {
		return
	}
	if err := s.obs.Delete(ctx, b.Object); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		s.log.Warn("delete bundle object", "app", b.AppID, "version", b.Version, "object", b.Object, "err", err)
	}
}

// OpenBundle returns a bundle's metadata and its zip, read from the local
// cache (filled from the object store on first use and verified against
// ObjectSHA256). f is nil when the bundle has no stored zip (ExternalURL
// or manifest only); otherwise the caller closes it. ErrNotFound for an
// unknown app or version.
func (s *Store) OpenBundle(ctx context.Context, app, version string) (*os.File, Bundle, error) {
	bp, ok := s.Snapshot().Bundle(app, version)
	if !ok {
		return nil, Bundle{}, fmt.Errorf("bundle %q of app %q: %w", version, app, ErrNotFound)
	}
	b := *bp
	if b.ExternalURL != "" || b.Object == "" {
		return nil, b, nil
	}
	if !ValidHashHex(b.ObjectSHA256) {
		return nil, b, fmt.Errorf("bundle %q of app %q: bad object digest %q", version, app, b.ObjectSHA256)
	}
	path := s.bundlePath(b.ObjectSHA256)
	if f, ok := openCached(path, b.Size); ok {
		return f, b, nil
	}
	if err := s.bundleFill(ctx, b, path); err != nil {
		return nil, b, err
	}
	f, ok := openCached(path, b.Size)
	if !ok {
		return nil, b, fmt.Errorf("bundle %q of app %q: cached file vanished", version, app)
	}
	return f, b, nil
}

func (s *Store) bundlePath(sha string) string {
	return filepath.Join(s.opts.CacheDir, sha+".zip")
}

// openCached opens a cached zip when it has the expected size; a file of
// the wrong size (a damaged cache) is removed.
func openCached(path string, size int64) (*os.File, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != size {
		f.Close()
		_ = os.Remove(path)
		return nil, false
	}
	return f, true
}

// bundleFetch is one in-flight cache fill shared by concurrent callers.
type bundleFetch struct {
	done chan struct{}
	err  error
}

// bundleFill downloads the zip into the cache once, however many callers
// ask for it at the same time.
func (s *Store) bundleFill(ctx context.Context, b Bundle, path string) error {
	s.fetchMu.Lock()
	f, ok := s.fetching[b.ObjectSHA256]
	if !ok {
		f = &bundleFetch{done: make(chan struct{})}
		s.fetching[b.ObjectSHA256] = f
		go func() {
			// Detached: one impatient client must not fail the others.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			f.err = s.bundleDownload(fctx, b, path)
			cancel()
			s.fetchMu.Lock()
			delete(s.fetching, b.ObjectSHA256)
			s.fetchMu.Unlock()
			close(f.done)
		}()
	}
	s.fetchMu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("fetch bundle %q: %w", b.Version, ctx.Err())
	}
}

func (s *Store) bundleDownload(ctx context.Context, b Bundle, path string) error {
	obj, err := s.openObject(ctx, b.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("bundle %q of app %q: zip missing from object store: %w", b.Version, b.AppID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("fetch bundle %q: %w", b.Version, err)
	}
	t := s.bundleNewTemp()
	if t.err != nil {
		return fmt.Errorf("fetch bundle %q: %w", b.Version, t.err)
	}
	if _, err := io.Copy(t, obj); err != nil {
		t.discard()
		return fmt.Errorf("fetch bundle %q: %w", b.Version, err)
	}
	if t.n != b.Size {
		t.discard()
		return fmt.Errorf("fetch bundle %q: got %d bytes, want %d", b.Version, t.n, b.Size)
	}
	if err := t.keep(path, b.ObjectSHA256, s.log); err != nil {
		return fmt.Errorf("fetch bundle %q: %w", b.Version, err)
	}
	return nil
}

// bundleTemp is a cache file being written: hashed as it goes, renamed
// into place only when its digest matches. Failures to write the cache
// are remembered, never passed on to the upload it tees.
type bundleTemp struct {
	f   *os.File
	h   hash.Hash
	n   int64
	err error
}

func (s *Store) bundleNewTemp() *bundleTemp {
	f, err := os.CreateTemp(s.opts.CacheDir, "fill-*.tmp")
	return &bundleTemp{f: f, h: sha256.New(), err: err}
}

func (t *bundleTemp) Write(p []byte) (int, error) {
	if t.err == nil {
		_, t.err = t.f.Write(p)
	}
	t.h.Write(p)
	t.n += int64(len(p))
	return len(p), nil
}

func (t *bundleTemp) discard() {
	if t == nil || t.f == nil {
		return
	}
	t.f.Close()
	_ = os.Remove(t.f.Name())
}

// keep renames the file to path when everything was written and the
// digest is sha; otherwise it removes it.
func (t *bundleTemp) keep(path, sha string, log *slog.Logger) error {
	if t.err != nil {
		t.discard()
		return fmt.Errorf("write bundle cache: %w", t.err)
	}
	if got := hex.EncodeToString(t.h.Sum(nil)); got != sha {
		t.discard()
		return fmt.Errorf("bundle digest mismatch: got %s, want %s", got, sha)
	}
	if err := t.f.Close(); err != nil {
		_ = os.Remove(t.f.Name())
		return fmt.Errorf("write bundle cache: %w", err)
	}
	if err := os.Rename(t.f.Name(), path); err != nil {
		_ = os.Remove(t.f.Name())
		log.Warn("bundle cache rename", "err", err)
		return fmt.Errorf("write bundle cache: %w", err)
	}
	return nil
}

// bundleDropCached removes a cached zip no bundle refers to any more.
func (s *Store) bundleDropCached(sha string) {
	if !ValidHashHex(sha) {
		return
	}
	snap := s.Snapshot()
	for _, a := range snap.Apps() {
		for _, b := range snap.Bundles(a.ID) {
			if b.ObjectSHA256 == sha {
				return
			}
		}
	}
	_ = os.Remove(s.bundlePath(sha))
}

// bundleCleanTemp removes fill files left by a crash; recent ones may
// belong to another process sharing the directory.
func bundleCleanTemp(dir string, log *slog.Logger) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "fill-") || !strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				log.Warn("bundle cache cleanup", "err", err)
			}
		}
	}
}
