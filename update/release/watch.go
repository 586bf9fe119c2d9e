package release

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/internal/wait"
)

const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
	// batchIdle is how long a batch waits for the next change of a burst.
	batchIdle = time.Millisecond
	// A batch collects changes for at most about as long as the previous
	// one took to build, within these bounds: bursts against a large
	// snapshot then copy each override shard once per batch, not per key.
	batchMin = 5 * time.Millisecond
	batchMax = 250 * time.Millisecond
	// bigLoad is the number of keys from which an initial load returns
	// its garbage to the OS at once.
	bigLoad = 10_000
)

var (
	errWatchClosed = errors.New("release watch closed")
	errReconnected = errors.New("nats reconnected")
	errStalled     = errors.New("release watch stalled")
)

// watchLoop mirrors the bucket until ctx ends, re-establishing the watch
// whenever it ends.
func (s *Store) watchLoop(ctx context.Context) {
	defer close(s.done)
	backoff := watchBackoffMin
	for {
		loaded, err := s.watchOnce(ctx)
		for loaded && errors.Is(err, errStalled) {
			s.log.Info("release watch stalled; resuming", "revision", s.applied.Load())
			err = s.resume(ctx)
		}
		s.watching.Store(false)
		if ctx.Err() != nil {
			return
		}
		if loaded {
			backoff = watchBackoffMin
		}
		if errors.Is(err, errReconnected) {
			s.log.Info("nats reconnected; reloading release snapshot")
			continue
		}
		if errors.Is(err, errStalled) {
			s.log.Info("release snapshot load stalled; loading again")
			continue
		}
		s.log.Warn("release watch ended; re-establishing", "err", err, "backoff", backoff)
		if !wait.Sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, watchBackoffMax)
	}
}

// watchOnce loads the whole snapshot from the bucket's current entries,
// publishes it once, then applies live changes in batches on a watch
// from the loaded revision. loaded reports whether the initial values
// were all received.
func (s *Store) watchOnce(ctx context.Context) (loaded bool, err error) {
	// A reconnect that happened before this load starts is already
	// covered by it.
	for len(s.reconnected) > 0 {
		<-s.reconnected
	}
	start := time.Now()
	s.watching.Store(true)
	b, rev, n, err := s.load(ctx)
	if err != nil {
		return false, err
	}
	s.inv.publish()
	s.publish(b.Build(), rev)
	if n >= bigLoad {
		// Hand the load's garbage back to the OS now rather than keep it
		// as GC headroom for the life of the process.
		debug.FreeOSMemory()
	}
	s.log.Info("release snapshot loaded", "keys", n, "overrides", s.Snapshot().OverrideCount(), "took", time.Since(start))
	s.loaded.Store(true)
	s.once.Do(func() { close(s.ready) })
	return true, s.resume(ctx)
}

// loadBuffer bounds the entries fetched ahead of the load. A push watch
// lets the server run up to 32 MB of messages ahead of a slower reader,
// which was most of a large load's peak memory.
const loadBuffer = 8192

// load folds the bucket's current entries into a new builder, read in
// revision order through an ordered pull consumer delivering the last
// message of each key, as WatchAll's initial values. rev is the highest
// revision applied.
func (s *Store) load(ctx context.Context) (b *Builder, rev uint64, n int, err error) {
	cons, stop, err := s.loadConsumer(ctx)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("load bucket %s: %w", s.opts.Bucket, err)
	}
	defer stop()
	b = NewBuilder(nil)
	s.inv.reset()
	pending := cons.CachedInfo().NumPending
	if pending == 0 {
		return b, 0, 0, nil
	}
	// The handler runs on nats.go's goroutine: mu hands b over.
	var mu sync.Mutex
	finished := false
	done := make(chan struct{})
	handler := func(m jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		seq, left, ok := ackSeqs(m.Reply())
		if !ok {
			err, finished = fmt.Errorf("message without JetStream metadata: %q", m.Reply()), true
			close(done)
			return
		}
		if key, ok := strings.CutPrefix(m.Subject(), s.subjPrefix); ok {
			s.applyEntry(b, key, seq, msgDeletes(m), m.Data())
		}
		rev = max(rev, seq)
		n++
		if left == 0 || uint64(n) >= pending {
			finished = true
			close(done)
		}
	}
	cc, err := cons.Consume(handler, jetstream.PullMaxMessages(loadBuffer))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("load bucket %s: %w", s.opts.Bucket, err)
	}
	var aerr error
	select {
	case <-done:
	case <-ctx.Done():
		aerr = ctx.Err()
	case <-s.reconnected:
		aerr = errReconnected
	case <-s.stalled:
		aerr = errStalled
	}
	cc.Stop()
	mu.Lock()
	finished = true
	mu.Unlock()
	if aerr != nil {
		return nil, 0, 0, aerr
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("load bucket %s: %w", s.opts.Bucket, err)
	}
	return b, rev, n, nil
}

// loadConsumer creates load's consumer, bounded by watchCreateAttempt as
// watchAll is; stop deletes it without waiting.
func (s *Store) loadConsumer(ctx context.Context) (jetstream.Consumer, func(), error) {
	type result struct {
		cons jetstream.Consumer
		err  error
	}
	res := make(chan result, 1)
	go func() {
		cfg := jetstream.OrderedConsumerConfig{
			FilterSubjects:    []string{s.subjPrefix + ">"},
			DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
			InactiveThreshold: time.Minute,
			MaxResetAttempts:  3,
		}
		if st := s.stream.CachedInfo().Config; st.MaxMsgsPerSubject == 1 && slices.Equal(st.Subjects, cfg.FilterSubjects) {
			// The same messages: the stream holds only the last of each
			// key. Unfiltered, the server need not match every subject.
			cfg.FilterSubjects, cfg.DeliverPolicy = nil, jetstream.DeliverAllPolicy
		}
		cons, err := s.stream.OrderedConsumer(ctx, cfg)
		res <- result{cons, err}
	}()
	del := func(r result) {
		if r.err != nil {
			return
		}
		// An ordered consumer outlives its subscription; InactiveThreshold
		// removes it if this delete is lost.
		name := r.cons.CachedInfo().Name
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), watchCreateAttempt)
			defer cancel()
			_ = s.js.DeleteConsumer(ctx, s.stream.CachedInfo().Config.Name, name)
		}()
	}
	t := time.NewTimer(watchCreateAttempt)
	defer t.Stop()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, nil, r.err
		}
		return r.cons, func() { del(r) }, nil
	case <-t.C:
		go func() { del(<-res) }()
		return nil, nil, fmt.Errorf("%w within %s", errNoAnswer, watchCreateAttempt)
	}
}

// ackSeqs reads the stream sequence and the number of messages left from
// a JetStream ack subject ($JS.ACK.[<domain>.<hash>.]<stream>.<consumer>.
// <delivered>.<sseq>.<cseq>.<time>.<pending>[.<token>]), without the
// allocations of Msg.Metadata.
func ackSeqs(reply string) (seq, pending uint64, ok bool) {
	var tok [12]string
	n := 0
	for n < len(tok) {
		i := strings.IndexByte(reply, '.')
		if i < 0 {
			tok[n] = reply
			n++
			break
		}
		tok[n], reply = reply[:i], reply[i+1:]
		n++
	}
	if tok[0] != "$JS" || tok[1] != "ACK" {
		return 0, 0, false
	}
	switch {
	case n == 9:
		return parseUint(tok[5]), parseUint(tok[8]), true
	case n >= 11:
		return parseUint(tok[7]), parseUint(tok[10]), true
	}
	return 0, 0, false
}

func parseUint(s string) uint64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		v = v*10 + uint64(c-'0')
	}
	return v
}

// msgDeletes reports whether a bucket message is a delete or purge
// marker, as nats.go's KV watch decides it.
func msgDeletes(m jetstream.Msg) bool {
	h := m.Headers()
	if len(h) == 0 {
		return false
	}
	if op := h.Get("KV-Operation"); op != "" {
		return op == "DEL" || op == "PURGE"
	}
	switch h.Get(jetstream.MarkerReasonHeader) {
	case "MaxAge", "Purge", "Remove":
		return true
	}
	return false
}

// resume follows the bucket from the revision after the snapshot's, on a
// new watch, without reloading what the snapshot has.
func (s *Store) resume(ctx context.Context) error {
	for len(s.stalled) > 0 {
		<-s.stalled
	}
	w, stop, err := s.watchAll(ctx, jetstream.ResumeFromRevision(s.applied.Load()+1))
	if err != nil {
		return fmt.Errorf("resume watch of bucket %s: %w", s.opts.Bucket, err)
	}
	defer func() { stopWatch(w); stop() }()
	s.watchMu.Lock()
	s.watcher = w
	s.watchMu.Unlock()
	return s.follow(ctx, w.Updates())
}

// watchCreateAttempt bounds the creation of a watch's consumer: asked of
// a stream leader that just died, it goes unanswered, and asking again
// at once beats nats.go's default wait of 5 s.
const watchCreateAttempt = 2 * time.Second

// watchAll starts a watch of the whole bucket; stop calls both the
// watch's Stop and the cancel it returns. A creation not answered within
// watchCreateAttempt is abandoned (nats.go ends a watch with the context
// it was created with, so the context cannot simply carry a deadline).
func (s *Store) watchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, context.CancelFunc, error) {
	wctx, cancel := context.WithCancel(ctx)
	type result struct {
		w   jetstream.KeyWatcher
		err error
	}
	// Some of nats.go's requests on the way ignore the context; waiting in
	// a goroutine bounds the creation whatever it does.
	res := make(chan result, 1)
	go func() {
		w, err := s.kv.WatchAll(wctx, opts...)
		res <- result{w, err}
	}()
	t := time.NewTimer(watchCreateAttempt)
	defer t.Stop()
	select {
	case r := <-res:
		if r.err != nil {
			cancel()
			return nil, nil, r.err
		}
		return r.w, cancel, nil
	case <-t.C:
		cancel()
		go func() {
			if r := <-res; r.err == nil {
				stopWatch(r.w)
			}
		}()
		return nil, nil, fmt.Errorf("%w within %s", errNoAnswer, watchCreateAttempt)
	}
}

// stopWatch stops a watch without waiting: nats.go deletes its consumer
// with a request that, when the consumer's node just died, goes
// unanswered for seconds.
func stopWatch(w interface{ Stop() error }) {
	go func() { _ = w.Stop() }()
}

// follow applies live changes in batches until the watch ends.
func (s *Store) follow(ctx context.Context, updates <-chan jetstream.KeyValueEntry) error {
	lastBuild := time.Duration(0)
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.reconnected:
			return errReconnected
		case <-s.stalled:
			return errStalled
		case e2, ok := <-updates:
			if !ok {
				return errWatchClosed
			}
			e = e2
		}
		if e == nil {
			continue
		}
		t0 := time.Now()
		window := min(max(lastBuild, batchMin), batchMax)
		b := NewBuilder(s.snap.Load())
		s.apply(b, e)
		rev := e.Revision()
		closed := false
		idle := time.NewTimer(batchIdle)
	batch:
		for time.Since(t0) < window {
			select {
			case e, ok := <-updates:
				if !ok {
					closed = true
					break batch
				}
				if e != nil {
					s.apply(b, e)
					rev = max(rev, e.Revision())
				}
				continue
			default:
			}
			// Nothing queued: give the rest of a burst a moment to arrive.
			idle.Reset(batchIdle)
			select {
			case e, ok := <-updates:
				if !ok {
					closed = true
					break batch
				}
				if e != nil {
					s.apply(b, e)
					rev = max(rev, e.Revision())
				}
			case <-idle.C:
				break batch
			case <-ctx.Done():
				break batch
			}
		}
		idle.Stop()
		s.inv.publish()
		s.publish(b.Build(), rev)
		lastBuild = time.Since(t0)
		if closed {
			return errWatchClosed
		}
	}
}

// apply folds one KV entry into b. A value it cannot use is applied as
// a delete of its key and remembered as invalid until a good value or a
// real delete replaces it, so one bad value never stalls the mirror and
// every front, running or restarted, ends with the same snapshot whatever
// order it saw the entries in.
func (s *Store) apply(b *Builder, e jetstream.KeyValueEntry) {
	s.applyEntry(b, e.Key(), e.Revision(), e.Operation() != jetstream.KeyValuePut, e.Value())
}

// applyEntry is apply for a key's entry at revision rev.
func (s *Store) applyEntry(b *Builder, key string, rev uint64, del bool, value []byte) {
	if strings.HasPrefix(key, ovrKeyPrefix) {
		s.applyOverride(b, key, rev, del, value)
		return
	}
	pk, err := parseKey(key)
	if err != nil {
		// Not a key of this schema (possibly a newer one): nothing in the
		// snapshot depends on it.
		s.log.Warn("release bucket: skipping unknown key", "key", key, "err", err)
		return
	}
	if pk.kind == kindChanSeq || pk.kind == kindTokenName {
		// Bookkeeping for channel ids and token names; not part of the
		// snapshot.
		return
	}
	if err := s.applyKind(b, pk, del, value); err != nil {
		s.inv.mark(key, rev, err)
		if pk.kind == kindApp {
			// Unknown to readers as after a delete, but its channels and
			// bundles stay for a good value to bring back: hiding does not
			// depend on whether they arrive before or after this entry.
			b.hideApp(pk.segs[0])
		} else {
			_ = s.applyKind(b, pk, true, nil)
		}
		return
	}
	s.inv.clear(key)
}

// applyKind applies a put (decoding value) or a delete of one parsed key;
// an error leaves b unchanged.
func (s *Store) applyKind(b *Builder, pk parsedKey, del bool, value []byte) error {
	switch pk.kind {
	case kindApp:
		if del {
			b.DeleteApp(pk.segs[0])
			return nil
		}
		var a App
		if err := decodeValue(value, &a); err != nil {
			return err
		}
		a.ID = pk.segs[0]
		b.PutApp(a)
	case kindChannel:
		if del {
			b.DeleteChannel(pk.segs[0], pk.segs[1])
			return nil
		}
		var c Channel
		if err := decodeValue(value, &c); err != nil {
			return err
		}
		c.AppID, c.Name = pk.segs[0], pk.segs[1]
		b.PutChannel(c)
	case kindBundle:
		if del {
			b.DeleteBundle(pk.segs[0], pk.segs[1])
			return nil
		}
		var bu Bundle
		if err := decodeValue(value, &bu); err != nil {
			return err
		}
		bu.AppID, bu.Version = pk.segs[0], pk.segs[1]
		b.PutBundle(bu)
	case kindToken:
		if del {
			b.DeleteToken(pk.segs[0])
			return nil
		}
		var t Token
		if err := decodeValue(value, &t); err != nil {
			return err
		}
		t.Hash = pk.segs[0]
		b.PutToken(t)
	case kindChoice:
		return s.applyChoice(b, pk, del, value)
	}
	return nil
}

// applyOverride is apply for override keys, the bulk of a large bucket:
// a UUID device id goes from the key straight to its 16 bytes, and the
// app id is interned, so a kept override allocates no strings.
func (s *Store) applyOverride(b *Builder, key string, rev uint64, isDel bool, value []byte) {
	var buf ovrKeyBuf
	appB, devB, err := parseOvrKey(key, &buf)
	if err != nil {
		s.log.Warn("release bucket: skipping unknown key", "key", key, "err", err)
		return
	}
	app := b.internApp(appB)
	u, isUUID := parseUUID(devB)
	var ch []byte
	if !isDel {
		if ch, err = overrideChannel(value); err != nil {
			s.inv.mark(key, rev, err)
		}
	}
	if err == nil {
		s.inv.clear(key)
	}
	switch {
	case ch == nil && isUUID:
		b.deleteOverrideUUID(app, u)
	case ch == nil:
		b.DeleteOverride(app, string(devB))
	case isUUID:
		b.putOverrideUUIDBytes(app, u, ch)
	default:
		b.PutOverride(Override{AppID: app, DeviceID: string(devB), Channel: b.internBytes(ch)})
	}
}
