package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/capstan-io/capstan/internal/wait"
)

// Errors of writes that lost to another one; each is a conflict the
// admin API answers with 409 and a code of its own.
var (
	// ErrPublicConflict: another channel of the app is already public for
	// one of the channel's platforms.
	ErrPublicConflict = errors.New("another channel is already public for that platform")
	// ErrChannelInUse: devices are pinned to the channel. It is also
	// ErrInUse.
	ErrChannelInUse = fmt.Errorf("channel %w", ErrInUse)
	// ErrAppDeleted: the app was deleted (possibly while the write ran).
	// It is also ErrNotFound.
	ErrAppDeleted = fmt.Errorf("app deleted: %w", ErrNotFound)
	// ErrBundleNotFound: a channel names a bundle the app does not have.
	// It is also ErrNotFound.
	ErrBundleNotFound = fmt.Errorf("bundle %w", ErrNotFound)
	// ErrChannelNotFound: a pin names a channel the app does not have.
	// It is also ErrNotFound.
	ErrChannelNotFound = fmt.Errorf("channel %w", ErrNotFound)
	// ErrConcurrent: other fronts kept changing the app; the write was
	// not applied and may be retried.
	ErrConcurrent = errors.New("too many concurrent changes")
)

const (
	// guardBudget bounds how long one guarded write keeps retrying after
	// losing races: writes that contend on one key (pins of one channel)
	// take turns, so a count of attempts would fail them under load.
	guardBudget = 10 * time.Second
	// guardBackoffMax caps the random wait between attempts.
	guardBackoffMax = 64 * time.Millisecond
	// atomicBatchMax is the number of messages of one atomic batch, below the
	// server's default limit of 1000.
	atomicBatchMax = 900
)

// orphanAge is how old a zip no bundle refers to must be before a
// starting front removes it: younger ones may belong to an upload
// still committing on another front. Atomic so tests can shorten it.
var orphanAge atomic.Int64

func init() { orphanAge.Store(int64(10 * time.Minute)) }

// errConflict is a failed expectation: another writer got there first.
var errConflict = errors.New("revision conflict")

// JetStream headers of atomic batches and per-subject expectations.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrExpectSeq   = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectSubj  = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrKVOperation = "KV-Operation"
	// hdrWriteID names the write a message was part of.
	hdrWriteID = "Capstan-Write-Id"
)

// openBucket opens the release bucket with atomic batch publishing on.
// A bucket already set up as wanted is left untouched: re-applying the KV
// config would switch atomic publishing off for a moment and fail other
// fronts' writes.
func openBucket(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.KeyValue, jetstream.Stream, error) {
	name := "KV_" + opts.Bucket
	if kv, err := js.KeyValue(ctx, opts.Bucket); err == nil {
		if st, err := js.Stream(ctx, name); err == nil {
			cfg := st.CachedInfo().Config
			if cfg.AllowAtomicPublish && cfg.Replicas == opts.Replicas && cfg.MaxMsgsPerSubject == 1 {
				return kv, st, nil
			}
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.Bucket,
		Description: "Capstan release state: apps, channels, bundles, overrides, tokens",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, nil, err
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	if !cfg.AllowAtomicPublish {
		cfg.AllowAtomicPublish = true
		if st, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, nil, fmt.Errorf("enable atomic publish on %s (needs nats-server 2.12 or later): %w", name, err)
		}
		if !st.CachedInfo().Config.AllowAtomicPublish {
			return nil, nil, fmt.Errorf("stream %s: the server ignored allow_atomic; capstan needs nats-server 2.12 or later", name)
		}
	}
	return kv, st, nil
}

// lastEntry is the newest message of a key, delete markers included.
type lastEntry struct {
	seq  uint64 // 0: the key was never written (or was purged away)
	live bool
	data []byte
	time time.Time // when it was written
	// writeID is the id of the write that stored it, if Capstan's.
	writeID string
}

// last reads a key's newest message: the revision a write that creates
// or replaces it must expect.
func (s *Store) last(ctx context.Context, key string) (lastEntry, error) {
	e, err := lastOn(ctx, s.stream, s.subjPrefix+key)
	if err != nil {
		return lastEntry{}, fmt.Errorf("read %s: %w", key, err)
	}
	return e, nil
}

// lastOn reads the newest message of subject in a KV bucket's stream.
func lastOn(ctx context.Context, stream jetstream.Stream, subject string) (lastEntry, error) {
	var m *jetstream.RawStreamMsg
	var err error
	// A read is safe to repeat: one that goes unanswered (sent to a node
	// that just died) is asked again rather than waited out.
	for {
		actx, cancel := context.WithTimeout(ctx, readAttempt)
		m, err = stream.GetLastMsgForSubject(actx, subject)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrNoResponders) {
			break
		}
		// No responders comes back at once while the stream has no leader.
		wait.Sleep(ctx, 50*time.Millisecond)
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return lastEntry{}, nil
	}
	if err != nil {
		return lastEntry{}, err
	}
	live := m.Header.Get(hdrKVOperation) == "" && m.Header.Get(jetstream.MarkerReasonHeader) == ""
	return lastEntry{seq: m.Sequence, live: live, data: m.Data, time: m.Time, writeID: m.Header.Get(hdrWriteID)}, nil
}

func (s *Store) putMsg(key string, data []byte) *nats.Msg {
	m := nats.NewMsg(s.subjPrefix + key)
	m.Data = data
	return m
}

func (s *Store) delMsg(key string) *nats.Msg {
	m := nats.NewMsg(s.subjPrefix + key)
	m.Header.Set(hdrKVOperation, "DEL")
	return m
}

// expect makes m conditional on its own key's newest revision.
func expect(m *nats.Msg, seq uint64) *nats.Msg {
	m.Header.Set(hdrExpectSeq, strconv.FormatUint(seq, 10))
	return m
}

// assertOn makes m (and so its batch) conditional on another key's
// newest revision, without writing that key.
func (s *Store) assertOn(m *nats.Msg, key string, seq uint64) *nats.Msg {
	m.Header.Set(hdrExpectSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(hdrExpectSubj, s.subjPrefix+key)
	return m
}

// pubReply is JetStream's answer to a publish.
type pubReply struct {
	Seq   uint64 `json:"seq"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

func replyErr(data []byte) (uint64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	var r pubReply
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("bad publish reply %q: %w", data, err)
	}
	if r.Error == nil {
		return r.Seq, nil
	}
	switch jetstream.ErrorCode(r.Error.ErrCode) {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return 0, fmt.Errorf("%w: %s", errConflict, r.Error.Description)
	case 10176: // atomic batch incomplete (abandoned or timed out): retry it whole
		return 0, fmt.Errorf("%w: %s", errConflict, r.Error.Description)
	}
	return 0, fmt.Errorf("publish: %s (code %d)", r.Error.Description, r.Error.ErrCode)
}

// commit publishes msgs as one atomic batch: the server checks every
// expectation and stores all of them, or none. It returns the revision of
// the last message; errConflict when an expectation failed.
func (s *Store) commit(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 0 {
		return 0, errors.New("publish batch: empty")
	}
	// Every message carries the write's id, so a write whose answer was
	// lost (its stream leader died in between) can be told apart from one
	// that never landed by reading its last key back.
	id := nuid.Next()
	for _, m := range msgs {
		m.Header.Set(hdrWriteID, id)
	}
	backoff := 20 * time.Millisecond
	for {
		seq, err := s.commitOnce(ctx, msgs)
		if !errors.Is(err, errNoAnswer) || ctx.Err() != nil {
			return seq, err
		}
		// No responders comes back at once while a leader is elected.
		if !wait.Sleep(ctx, backoff) {
			return 0, err
		}
		backoff = min(2*backoff, 500*time.Millisecond)
		seq, stored, rerr := s.landed(ctx, msgs, id)
		if rerr != nil {
			return 0, fmt.Errorf("%w; reading it back: %w", err, rerr)
		}
		if stored {
			return seq, nil
		}
		// Not stored: its expectations still hold or fail as before.
		s.log.Debug("release write unanswered and not stored; sending again", "subject", msgs[0].Subject)
	}
}

// landed reports whether the write id stored msgs, and the revision of
// its last message. Any one key still holding the id proves the whole
// batch landed; each key is read, since others may have rewritten some
// (a hot app key) since. A batch's messages take consecutive revisions.
func (s *Store) landed(ctx context.Context, msgs []*nats.Msg, id string) (uint64, bool, error) {
	for i := len(msgs) - 1; i >= 0; i-- {
		e, err := s.last(ctx, strings.TrimPrefix(msgs[i].Subject, s.subjPrefix))
		if err != nil {
			return 0, false, err
		}
		if e.writeID == id {
			return e.seq + uint64(len(msgs)-1-i), true, nil
		}
	}
	return 0, false, nil
}

// commitAttempt bounds the wait for one answer of a write.
const commitAttempt = 2 * time.Second

// commitOnce sends msgs once; errNoAnswer when an answer did not come.
func (s *Store) commitOnce(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	nc := s.js.Conn()
	request := func(m *nats.Msg) (*nats.Msg, error) {
		rctx, cancel := context.WithTimeout(ctx, commitAttempt)
		defer cancel()
		r, err := nc.RequestMsgWithContext(rctx, m)
		if err != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders)) {
			err = fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		return r, err
	}
	if len(msgs) == 1 {
		r, err := request(msgs[0])
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", msgs[0].Subject, err)
		}
		return replyErr(r.Data)
	}
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i == len(msgs)-1 {
			m.Header.Set(hdrBatchCommit, "1")
		}
		r, err := request(m)
		if err != nil {
			return 0, fmt.Errorf("publish batch %s: %w", m.Subject, err)
		}
		seq, err := replyErr(r.Data)
		if err != nil {
			return 0, err
		}
		if i == len(msgs)-1 {
			if seq == 0 {
				return 0, fmt.Errorf("publish batch: no sequence in commit reply %q", r.Data)
			}
			return seq, nil
		}
	}
	return 0, errors.New("publish batch: empty")
}

// appGuard is an app's key as a write found it, with a snapshot that
// reflects at least that revision.
type appGuard struct {
	seq  uint64
	data []byte
	snap *Snapshot
	app  *appState
}

// bump rewrites the app key unchanged, expecting the revision read: the
// batch it is part of conflicts with every other guarded write of the app.
func (g appGuard) bump(s *Store, app string) *nats.Msg {
	return expect(s.putMsg(appKey(app), g.data), g.seq)
}

// readGuard reads the app key and waits until the local snapshot
// reflects it (and every other key up to min).
func (s *Store) readGuard(ctx context.Context, app string, min uint64) (appGuard, error) {
	e, err := s.last(ctx, appKey(app))
	if err != nil {
		return appGuard{}, err
	}
	if !e.live {
		if e.seq != 0 {
			return appGuard{}, fmt.Errorf("app %q: %w", app, ErrAppDeleted)
		}
		return appGuard{}, fmt.Errorf("app %q: %w", app, ErrNotFound)
	}
	if err := s.waitRev(ctx, max(e.seq, min)); err != nil {
		return appGuard{}, err
	}
	snap := s.Snapshot()
	st := snap.apps[app]
	if st == nil {
		// The snapshot covers a revision at which the app existed: it was
		// deleted since, or its value is one the snapshot cannot use.
		if again, err := s.last(ctx, appKey(app)); err == nil && again.seq == e.seq {
			return appGuard{}, fmt.Errorf("app %q has a value this front cannot read: %w", app, ErrNotFound)
		}
		return appGuard{}, fmt.Errorf("%w: app %q changed while read", errConflict, app)
	}
	return appGuard{seq: e.seq, data: e.data, snap: snap, app: st}, nil
}

// waitRev waits until the local snapshot reflects revision rev; a write
// must not check its invariants against anything older.
func (s *Store) waitRev(ctx context.Context, rev uint64) error {
	t := time.NewTimer(s.opts.WriteWait)
	defer t.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if s.applied.Load() >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("local release snapshot at revision %d, behind %d", s.applied.Load(), rev)
		}
	}
}

// guarded runs attempt until it commits, fails for good, or too many
// other writes got in first. attempt reads what it needs, checks the
// invariants and commits one batch; errConflict asks for another try.
func (s *Store) guarded(ctx context.Context, attempt func() (uint64, error)) error {
	deadline := time.Now().Add(guardBudget)
	for i := 0; time.Now().Before(deadline); i++ {
		rev, err := attempt()
		if errors.Is(err, errConflict) {
			s.log.Debug("release write lost a race; retrying", "attempt", i+1, "err", err)
			// Full jitter over a doubling range spreads the contenders out.
			d := time.Duration(rand.Int64N(int64(min(guardBackoffMax, time.Millisecond<<min(i, 6))) + 1))
			if !wait.Sleep(ctx, d) {
				return ctx.Err()
			}
			continue
		}
		if err != nil {
			return err
		}
		s.waitApplied(ctx, rev)
		return nil
	}
	return ErrConcurrent
}

// appKeys lists the keys of everything belonging to an app but the app
// key itself.
func (s *Store) appKeys(ctx context.Context, app string) ([]string, error) {
	e := enc(app)
	return s.listKeys(ctx, kindChannel+"."+e+".*", kindBundle+"."+e+".*", kindOverride+"."+e+".*", kindChoice+"."+e+".*", kindChanSeq+"."+e)
}

// sweepApp deletes what is left of an app whose key is gone (at revision
// appSeq): its keys, in atomic batches each conditional on the app key
// still being at appSeq (so an app re-created meanwhile keeps its new
// keys), then its zips. It reports false when the app came back, and the
// revision of its last delete.
func (s *Store) sweepApp(ctx context.Context, app string, appSeq uint64) (bool, uint64, error) {
	keys, err := s.appKeys(ctx, app)
	if err != nil {
		return false, 0, err
	}
	var rev uint64
	for len(keys) > 0 {
		n := min(len(keys), atomicBatchMax)
		msgs := make([]*nats.Msg, 0, n)
		for i, k := range keys[:n] {
			m := s.delMsg(k)
			if i == 0 {
				s.assertOn(m, appKey(app), appSeq)
			}
			msgs = append(msgs, m)
		}
		r, err := s.commit(ctx, msgs)
		if err != nil {
			if errors.Is(err, errConflict) {
				return false, rev, nil
			}
			return false, rev, fmt.Errorf("sweep app %q: %w", app, err)
		}
		rev = r
		keys = keys[n:]
	}
	// Zips stored after the app key's delete belong to a re-created app
	// or to an upload whose metadata write fails and removes its zip.
	e, err := s.last(ctx, appKey(app))
	if err != nil {
		return false, rev, err
	}
	if e.seq != appSeq {
		return false, rev, nil
	}
	before := e.time
	if appSeq == 0 {
		before = time.Now()
	}
	return true, rev, s.deleteAppObjects(ctx, app, before)
}

// deleteAppObjects removes an app's zips (object names start with the
// app's encoded id) stored no later than before.
func (s *Store) deleteAppObjects(ctx context.Context, app string, before time.Time) error {
	list, err := s.listObjects(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list bundle objects: %w", err)
	}
	prefix := enc(app) + "/"
	for _, o := range list {
		if !strings.HasPrefix(o.Name, prefix) || o.ModTime.After(before) {
			continue
		}
		if err := s.obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("delete bundle object %s: %w", o.Name, err)
		}
	}
	return nil
}

// readAttempt bounds one attempt of a release-bucket read that is safe
// to repeat. Well above a healthy read's milliseconds, it keeps a stream
// leader's loss from costing a write more than about this much.
const readAttempt = time.Second

// listObjectsTimeout bounds one listing of the object store: nats.go's
// List can wait forever for the end of its listing while objects are
// being written at the same moment.
const listObjectsTimeout = 5 * time.Second

// listObjects lists the bundle objects, retrying a listing that stalls.
func (s *Store) listObjects(ctx context.Context) (list []*jetstream.ObjectInfo, err error) {
	for range 3 {
		lctx, cancel := context.WithTimeout(ctx, listObjectsTimeout)
		list, err = s.obs.List(lctx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrNoObjectsFound) || ctx.Err() != nil {
			return list, err
		}
	}
	return list, err
}

// repair runs once the first snapshot is loaded: it finishes app deletes
// a crashed front left halfway (keys of apps whose key is gone) and
// removes zips no bundle refers to (an upload that crashed before its
// metadata was written). Readers never see the former: a snapshot drops
// an app's channels and bundles with its key, and the app's key being
// gone fails every write under it.
func (s *Store) repair(ctx context.Context) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return
	}
	ids := map[string]bool{}
	keys, err := s.listKeys(ctx, kindChannel+".>", kindBundle+".>", kindChanSeq+".>")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("release repair: list keys", "err", err)
		}
		return
	}
	for _, k := range keys {
		if pk, err := parseKey(k); err == nil {
			ids[pk.segs[0]] = true
		}
	}
	snap := s.Snapshot()
	for id := range snap.overrides {
		ids[id] = true
	}
	for id := range snap.choices {
		ids[id] = true
	}
	for id := range ids {
		e, err := s.last(ctx, appKey(id))
		if err != nil || e.live {
			continue
		}
		if _, _, err := s.sweepApp(ctx, id, e.seq); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("release repair: sweep deleted app", "app", id, "err", err)
			}
			return
		}
		s.log.Info("release repair: removed what a deleted app left behind", "app", id)
	}
	s.removeOrphanObjects(ctx)
}

// removeOrphanObjects deletes zips older than orphanAge that no bundle in
// the snapshot refers to.
func (s *Store) removeOrphanObjects(ctx context.Context) {
	list, err := s.listObjects(ctx)
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoObjectsFound) && ctx.Err() == nil {
			s.log.Warn("release repair: list bundle objects", "err", err)
		}
		return
	}
	snap := s.Snapshot()
	used := map[string]bool{}
	for _, st := range snap.apps {
		for _, b := range st.bundles {
			used[b.Object] = true
		}
	}
	for _, o := range list {
		if used[o.Name] || time.Since(o.ModTime) < time.Duration(orphanAge.Load()) {
			continue
		}
		if s.objectInBucket(ctx, o.Name) {
			continue // e.g. a bundle whose value this front cannot read
		}
		if err := s.obs.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			s.log.Warn("release repair: delete orphaned zip", "object", o.Name, "err", err)
			continue
		}
		s.log.Info("release repair: deleted orphaned zip", "object", o.Name)
	}
	s.removeOrphanFiles(ctx, list)
	if n, err := s.SweepFiles(ctx, nil); err != nil && ctx.Err() == nil {
		s.log.Warn("release repair: sweep delta files", "err", err)
	} else if n > 0 {
		s.log.Info("release repair: deleted unused delta files", "files", n)
	}
}

// objectInBucket reports whether the bundle an object is named after
// (app/version/nonce) still refers to it, or cannot be told not to.
func (s *Store) objectInBucket(ctx context.Context, name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return true // not ours to judge
	}
	app, err1 := b64.DecodeString(parts[0])
	ver, err2 := b64.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	e, err := s.last(ctx, bundleKey(string(app), string(ver)))
	if err != nil {
		return true
	}
	return e.live && bytes.Contains(e.data, []byte(name))
}
