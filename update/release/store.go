package release

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/bus"
)

// Errors returned by Store methods, always wrapped with context; test
// them with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInUse    = errors.New("in use")
	ErrInvalid  = errors.New("invalid")
)

// Defaults for Options.
const (
	DefaultBucket       = "capstan_releases"
	DefaultObjectBucket = "capstan_bundles"
)

// Options configure a Store. Zero values pick the defaults.
type Options struct {
	// Bucket is the key-value bucket holding the release state.
	Bucket string
	// ObjectBucket is the object store bucket holding bundle zips and
	// delta files.
	ObjectBucket string
	// FileBucket is the key-value bucket recording delta files.
	FileBucket string
	// Replicas of both buckets (1 for a single server).
	Replicas int
	// CacheDir holds downloaded bundle zips by SHA-256
	// (e.g. <data-dir>/bundle-cache); default <tmp>/capstan-bundle-cache.
	CacheDir string
	// WriteWait bounds how long a write waits to see itself in the local
	// snapshot before returning; default 5s.
	WriteWait time.Duration
	// FetchTimeout bounds a bundle fetch from the object store into the
	// local cache while it makes no progress: the time to the first byte,
	// then between two chunks. A download whose zip cannot be fetched in
	// time fails (503 with Retry-After) instead of hanging; default
	// DefaultFetchTimeout (15s).
	FetchTimeout time.Duration
	Logger       *slog.Logger
	// Registerer receives the store's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Store keeps the release state in JetStream — a key-value bucket for
// metadata, an object store for bundle zips — and mirrors it into an
// in-memory Snapshot that every front reads without locking.
type Store struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	obs jetstream.ObjectStore
	// files records the delta files in obs (files.go).
	files       jetstream.KeyValue
	filesStream jetstream.Stream
	// fileCutoff, set by tests, replaces now-fileGrace in sweeps.
	fileCutoff func() time.Time
	// stream is the bucket's stream, read for revisions of deleted keys.
	stream jetstream.Stream
	bg     sync.WaitGroup // repair after the first load
	opts   Options
	log    *slog.Logger
	// subjPrefix is the subject prefix of the bucket's keys.
	subjPrefix string

	snap     atomic.Pointer[Snapshot]
	applied  atomic.Uint64 // highest KV revision reflected in snap
	loaded   atomic.Bool
	watching atomic.Bool
	ready    chan struct{}
	once     sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every swap

	// reconnected reports the connection coming back, so the watch is
	// re-established at once instead of after missed heartbeats.
	reconnected chan nats.Status
	// stalled asks the watch to resume from the applied revision: a
	// write is acknowledged but the watch, whose consumer lived on a node
	// that died, has not delivered it (nats.go would notice only after
	// missed heartbeats, seconds later).
	stalled    chan struct{}
	lastResume atomic.Int64 // unix nanoseconds

	watchMu sync.Mutex
	watcher jetstream.KeyWatcher // current watch, for tests

	cancel context.CancelFunc
	done   chan struct{}

	updates   prometheus.Counter
	overrides prometheus.Gauge
	// inv tracks bucket entries whose value cannot be decoded.
	inv invalidKeys

	fetchMu  sync.Mutex
	fetching map[string]*bundleFetch
}

// Open creates or updates the buckets and starts mirroring them into
// memory. It returns at once; use WaitReady before serving.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.ObjectBucket == "" {
		opts.ObjectBucket = DefaultObjectBucket
	}
	if opts.FileBucket == "" {
		opts.FileBucket = DefaultFileBucket
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Join(os.TempDir(), "capstan-bundle-cache")
	}
	if opts.WriteWait <= 0 {
		opts.WriteWait = 5 * time.Second
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// On a fresh cluster the meta leader may not be elected yet and other
	// fronts may create the same buckets at the same moment: retry
	// (bounded, logged) and, after "already exists", read what they made.
	var kv jetstream.KeyValue
	var stream jetstream.Stream
	err := bus.Retry(ctx, log, "release bucket "+opts.Bucket, func(ctx context.Context) error {
		var err error
		kv, stream, err = openBucket(ctx, js, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release bucket %q: %w", opts.Bucket, err)
	}
	var obs jetstream.ObjectStore
	err = bus.Retry(ctx, log, "bundle object store "+opts.ObjectBucket, func(ctx context.Context) error {
		if o, err := js.ObjectStore(ctx, opts.ObjectBucket); err == nil {
			if st, err := js.Stream(ctx, "OBJ_"+opts.ObjectBucket); err == nil && st.CachedInfo().Config.Replicas == opts.Replicas {
				obs = o
				return nil
			}
		}
		var err error
		obs, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      opts.ObjectBucket,
			Description: "Capstan bundle zips",
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bundle object store %q: %w", opts.ObjectBucket, err)
	}
	var files jetstream.KeyValue
	var filesStream jetstream.Stream
	err = bus.Retry(ctx, log, "file bucket "+opts.FileBucket, func(ctx context.Context) error {
		var err error
		files, filesStream, err = openFileBucket(ctx, js, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("file bucket %q: %w", opts.FileBucket, err)
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("bundle cache dir: %w", err)
	}
	bundleCleanTemp(opts.CacheDir, log)
	s := &Store{
		js: js, kv: kv, stream: stream, obs: obs, opts: opts, log: log,
		files: files, filesStream: filesStream,
		subjPrefix: "$KV." + opts.Bucket + ".",
		ready:      make(chan struct{}),
		changed:    make(chan struct{}),
		done:       make(chan struct{}),
		stalled:    make(chan struct{}, 1),
		fetching:   map[string]*bundleFetch{},
	}
	s.reconnected = js.Conn().StatusChanged(nats.CONNECTED)
	s.registerMetrics(opts.Registerer)
	s.snap.Store(Empty())
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watchLoop(wctx)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.repair(wctx)
	}()
	return s, nil
}

func (s *Store) registerMetrics(reg prometheus.Registerer) {
	s.updates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "capstan_release_snapshot_updates_total",
		Help: "Release snapshots swapped in (initial load and every batch of changes).",
	})
	s.overrides = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "capstan_release_overrides",
		Help: "Device overrides in the current release snapshot.",
	})
	s.inv.init(reg, s.log)
	if reg == nil {
		return
	}
	s.updates = registerOrReuse(reg, s.updates)
	s.overrides = registerOrReuse(reg, s.overrides)
}

// registerOrReuse lets several stores in one process share a registry.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}

// Close stops mirroring; the Store must not be used after.
func (s *Store) Close() {
	s.cancel()
	<-s.done
	s.bg.Wait()
	s.js.Conn().RemoveStatusListener(s.reconnected)
}

// Snapshot returns the current release state; never nil, never blocks.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// TokenHashKnown reports whether an admin token with this SHA-256 hex exists.
func (s *Store) TokenHashKnown(hashHex string) bool {
	return s.snap.Load().TokenHashKnown(hashHex)
}

// Ready reports whether the initial snapshot is loaded and JetStream is
// connected and watched.
func (s *Store) Ready() bool {
	return s.loaded.Load() && s.watching.Load() && s.js.Conn().IsConnected()
}

// Check returns why the store cannot serve, for /readyz; nil when it can.
func (s *Store) Check(ctx context.Context) error {
	if !s.loaded.Load() {
		return errors.New("release snapshot not loaded yet")
	}
	if !s.watching.Load() {
		return errors.New("release watch is down")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// WaitReady blocks until the initial snapshot is loaded or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for release snapshot: %w", ctx.Err())
	}
}

// publish swaps in a new snapshot reflecting the KV up to rev.
func (s *Store) publish(snap *Snapshot, rev uint64) {
	s.snap.Store(snap)
	if rev > s.applied.Load() {
		s.applied.Store(rev)
	}
	s.updates.Inc()
	s.overrides.Set(float64(snap.OverrideCount()))
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// waitApplied waits until the local snapshot reflects KV revision rev, so
// a write followed by a read on this front is consistent. It is not an
// error when it gives up: the write itself was acknowledged by JetStream.
//
// It gives up after WriteWait, and at once when the mirror cannot catch
// up by itself in that time: while the connection to NATS is down or the
// watch is being re-established (the node this front used just died),
// the snapshot moves only after the reconnect reloads it, which then
// includes the write. Waiting then would only hold the admin request.
func (s *Store) waitApplied(ctx context.Context, rev uint64) {
	t := time.NewTimer(s.opts.WriteWait)
	defer t.Stop()
	// Watch and connection state have no channel; look at them this often.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stall := time.NewTimer(watchStallAfter)
	defer stall.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if s.applied.Load() >= rev {
			return
		}
		if !s.watching.Load() || !s.js.Conn().IsConnected() {
			s.log.Warn("release write acknowledged; local snapshot catches up after the watch is back",
				"revision", rev, "applied", s.applied.Load(), "connected", s.js.Conn().IsConnected(), "watching", s.watching.Load())
			return
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return
		case <-stall.C:
			s.nudgeWatch()
			stall.Reset(watchStallAfter)
		case <-t.C:
			s.log.Warn("release write not yet visible in local snapshot", "revision", rev, "applied", s.applied.Load())
			return
		}
	}
}

// watchStallAfter is how long an acknowledged write may stay missing
// from the snapshot before the watch is resumed; a healthy watch shows a
// write in milliseconds, a big batch in at most batchMax.
const watchStallAfter = 2 * batchMax

// nudgeWatch asks the watch to resume, at most once per watchStallAfter.
func (s *Store) nudgeWatch() {
	now := time.Now().UnixNano()
	last := s.lastResume.Load()
	if now-last < int64(watchStallAfter) || !s.lastResume.CompareAndSwap(last, now) {
		return
	}
	select {
	case s.stalled <- struct{}{}:
	default:
	}
}
