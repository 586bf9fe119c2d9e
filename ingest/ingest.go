// Package ingest accepts device stats (POST /stats) and publishes each
// request's valid events to JetStream as one message (schema/batch.go),
// answering 2xx only once JetStream holds it.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update"
	"github.com/capstan-io/capstan/update/release"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes        = 2 << 20
	DefaultMaxEvents           = 1000
	DefaultPublishTimeout      = 5 * time.Second
	DefaultMaxPendingPublishes = 8192
	DefaultRetryAfter          = 2 * time.Second
)

// Config configures the stats handler. Zero values take the defaults.
type Config struct {
	// JetStream receives the events (subjects schema.EventsSubjects; the
	// streams must exist, see schema.EnsureStreams). Nil answers 429.
	JetStream jetstream.JetStream
	// Snapshot returns the current release snapshot, or nil. It attributes
	// events to the channel serving the device and bounds the app label of
	// metrics to known apps.
	Snapshot func() *release.Snapshot
	// MaxBodyBytes caps a request body (413 payload_too_large above it).
	MaxBodyBytes int64
	// MaxEvents caps the events of one array body (413 too_many_events).
	MaxEvents int
	// PublishTimeout bounds the wait for JetStream's acknowledgements
	// (and for room in the publish window); past it the answer is 429.
	PublishTimeout time.Duration
	// MaxPendingPublishes bounds messages (one per request, normally)
	// published but not yet acknowledged across all requests, so memory
	// stays bounded when JetStream is slow.
	MaxPendingPublishes int
	// RetryAfter is the shortest Retry-After of 429 answers; each answer
	// adds a random 0 to RetryAfter more (see retryAfterSeconds).
	RetryAfter time.Duration
	// Registerer receives the capstan_stats_* metrics; nil keeps them
	// unregistered.
	Registerer prometheus.Registerer
	// Logger receives publish failures (at most one line a second).
	Logger *slog.Logger
	// Now stamps ReceivedMs; nil is time.Now.
	Now func() time.Time
}

// Handler serves POST /stats.
type Handler struct {
	cfg        Config
	js         jetstream.JetStream // own context (publish window); nil without JetStream
	m          *metrics
	log        *slog.Logger
	retryAfter int // seconds
	lastLog    atomic.Int64
	pool       sync.Pool // *reqState
	seed       [8]byte   // random per process: nonces differ across restarts
	seq        atomic.Uint64
	lanes      lanes
}

// New builds the handler. It publishes on cfg.JetStream's connection
// through its own JetStream context: a bounded window of unacknowledged
// messages, and every request stops waiting at PublishTimeout.
func New(cfg Config) *Handler {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.MaxPendingPublishes <= 0 {
		cfg.MaxPendingPublishes = DefaultMaxPendingPublishes
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{
		cfg:        cfg,
		m:          newMetrics(cfg.Registerer),
		log:        cfg.Logger,
		retryAfter: max(1, int((cfg.RetryAfter+time.Second-1)/time.Second)),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.JetStream != nil {
		if nc := cfg.JetStream.Conn(); nc != nil {
			// The ack timeout drops futures a request stopped waiting
			// for, so they do not hold the window forever.
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.MaxPendingPublishes),
				jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
			if err == nil {
				h.js = js
			} else {
				h.log.Error("stats publisher not created; answering 429", "err", err)
			}
		}
	}
	h.pool.New = func() any { return new(reqState) }
	_, _ = rand.Read(h.seed[:]) // never fails (crypto/rand)
	return h
}

// nonce is unique per request of this process, and random across
// processes; see the event id comment in event.go.
func (h *Handler) nonce() (n [16]byte) {
	copy(n[:8], h.seed[:])
	binary.BigEndian.PutUint64(n[8:], h.seq.Add(1))
	return n
}

// reqState is the per-request scratch, pooled.
type reqState struct {
	body  []byte
	dec   decoder
	out   []byte
	cnt   []labelCount
	keys  []string
	data  []byte   // the messages' bodies, back to back
	idx   []int    // item index of each published event, message by message
	msgs  []outMsg // the request's messages
	msgID schema.BatchMsgIDBuilder
}

type labelCount struct {
	app, action, platform, scope string
	n                            int
}

const maxPooledBody = 4 << 20

func (h *Handler) getState() *reqState { return h.pool.Get().(*reqState) }

func (h *Handler) putState(st *reqState) {
	if cap(st.body) > maxPooledBody {
		st.body = nil
	}
	st.dec.reset()
	clear(st.cnt)
	st.cnt = st.cnt[:0]
	h.pool.Put(st)
}

// ServeHTTP answers POST /stats (PROTOCOL.md §3).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.m.request(code)
	h.m.duration.Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "stats are sent with POST")
	}
	received := h.cfg.Now().UnixMilli()
	st := h.getState()
	defer h.putState(st)

	body, berr := h.readBody(r, st.body[:0])
	st.body = body
	if berr != nil {
		return writeError(w, berr.status, berr.code, berr.message)
	}
	st.dec.h.nonce = h.nonce()
	array, items, berr := st.dec.decode(body, h.cfg.MaxEvents)
	if berr != nil {
		return writeError(w, berr.status, berr.code, berr.message)
	}

	valid := 0
	for i := range items {
		if it := &items[i]; it.err != nil {
			h.m.rejected.WithLabelValues(it.err.Code).Inc()
		} else {
			valid++
		}
	}
	if !array && items[0].err != nil {
		// A lone bad event: the plugin drops it on a 4xx, which is right.
		e := items[0].err
		return writeError(w, http.StatusBadRequest, e.Code, e.Message)
	}
	if valid > 0 {
		snap := h.attribute(items, received)
		if err := h.publish(r.Context(), st, snap, items, valid); err != nil {
			h.logFailure(err, valid)
			// 429, not 503: the plugin honours Retry-After only on 429 and
			// retries a 5xx every second (CapgoUpdater.java:2131-2162,
			// :3159-3162). The code must not be too_many_requests, which
			// makes it send a rate_limit_reached stat (:2155).
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(h.retryAfter, mrand.Uint64())))
			return writeError(w, http.StatusTooManyRequests, CodeStatsUnavailable,
				"stats storage is busy or unavailable; keep the events and retry after Retry-After seconds")
		}
	}
	if !array {
		return writeBody(w, http.StatusOK, okBody)
	}
	st.out = appendResults(st.out[:0], items)
	return writeBody(w, http.StatusOK, st.out)
}

var okBody = []byte(`{"status":"ok"}`)

// CodeStatsUnavailable is the error of a 429 answered because JetStream
// did not take the events (down, full, slow).
const CodeStatsUnavailable = "stats_unavailable"

// retryAfterSeconds is base plus a jitter of 0..base seconds picked by r,
// so devices told to wait at the same moment come back spread out. A 429
// pauses all of a device's update and channel calls too, so base is short.
func retryAfterSeconds(base int, r uint64) int {
	return base + int(r%uint64(base+1))
}

// readBody reads the whole body into buf, refusing more than MaxBodyBytes.
func (h *Handler) readBody(r *http.Request, buf []byte) ([]byte, *bodyError) {
	limit := h.cfg.MaxBodyBytes
	if r.Body == nil {
		return buf, nil
	}
	if r.ContentLength > limit {
		return buf, tooLarge(limit)
	}
	if r.ContentLength > 0 && int64(cap(buf)) < r.ContentLength+1 {
		buf = make([]byte, 0, r.ContentLength+1)
	} else if cap(buf) == 0 {
		buf = make([]byte, 0, 16<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, tooLarge(limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, &bodyError{400, "invalid_json_body", "reading the body failed: " + err.Error()}
		}
	}
}

func tooLarge(limit int64) *bodyError {
	return &bodyError{413, "payload_too_large", "body is larger than " + strconv.FormatInt(limit, 10) + " bytes; send fewer events per request"}
}

// attribute stamps the receive time and the channel of every valid event.
// The channel is the one serving the device when a snapshot knows it
// (an operator override wins over what the device asked for), else the
// device's defaultChannel as sent.
func (h *Handler) attribute(items []item, received int64) (snap *release.Snapshot) {
	if h.cfg.Snapshot != nil {
		snap = h.cfg.Snapshot()
	}
	var lastApp, lastDev, lastPlat, lastReq, lastPlugin, lastCh string
	for i := range items {
		ev := &items[i].ev
		if items[i].err != nil {
			continue
		}
		ev.ReceivedMs = received
		if snap == nil {
			continue
		}
		if ev.AppID == lastApp && ev.DeviceID == lastDev && ev.Platform == lastPlat && ev.Channel == lastReq && ev.PluginVersion == lastPlugin {
			ev.Channel = lastCh
			continue
		}
		lastApp, lastDev, lastPlat, lastReq, lastPlugin = ev.AppID, ev.DeviceID, ev.Platform, ev.Channel, ev.PluginVersion
		if ch, _ := update.ResolveChannel(snap, ev.AppID, ev.DeviceID, ev.Platform, ev.Channel, ev.PluginVersion); ch != nil {
			ev.Channel = ch.Name
		}
		lastCh = ev.Channel
	}
	return snap
}

// errUnavailable is a publish that could not start.
var errUnavailable = errors.New("jetstream unavailable")

// Outcome of one message.
const (
	msgPending uint8 = iota
	msgStored
	msgDuplicate
	msgFailed
)

// outMsg is one JetStream message of a request: a run of its valid
// events of one app (st.idx[lo:hi]), body st.data[start:end].
type outMsg struct {
	msg        nats.Msg
	hdr        nats.Header
	lo, hi     int
	start, end int
	futs       []jetstream.PubAckFuture // the first send, then resends
	state      uint8
	err        error
}

// publish sends the request's valid events as version 2 messages (one
// per app, normally one in all; split past schema.MaxBatchBytes) with a
// Nats-Msg-Id derived from their event ids, then waits for every ack. It
// returns nil only when JetStream acknowledged every message (as stored
// or as a duplicate of a stored one).
func (h *Handler) publish(ctx context.Context, st *reqState, snap *release.Snapshot, items []item, valid int) error {
	if h.js == nil {
		h.m.publishErrors.Add(float64(valid))
		return errUnavailable
	}
	if s := h.js.Conn().Status(); s != nats.CONNECTED {
		// Don't park events in the reconnect buffer for a request that
		// will be answered 429 anyway.
		h.m.publishErrors.Add(float64(valid))
		return errors.Join(errUnavailable, errors.New("nats connection "+s.String()))
	}
	deadline := time.Now().Add(h.cfg.PublishTimeout)
	h.build(st, items)
	var waitErr error
	if m := &st.msgs[0]; len(st.msgs) == 1 && m.end-m.start <= maxJoinBytes {
		waitErr = h.lanes.publish(ctx, h, st.msgs, deadline)
	} else {
		waitErr = h.sendAll(ctx, st.msgs, deadline)
	}
	failed := 0
	var firstErr error
	for k := range st.msgs {
		m := &st.msgs[k]
		switch m.state {
		case msgStored:
			// A message holds one app's events: its label is looked up once.
			app := update.AppLabel(snap, items[st.idx[m.lo]].ev.AppID)
			for _, i := range st.idx[m.lo:m.hi] {
				st.add(app, &items[i].ev)
			}
		case msgDuplicate:
		default:
			failed += m.hi - m.lo
			if firstErr == nil {
				firstErr = m.err
			}
		}
		m.msg.Data, m.futs = nil, m.futs[:0]
		clear(m.futs[:cap(m.futs)])
	}
	for _, c := range st.cnt {
		h.m.events.WithLabelValues(c.app, c.action, c.platform, c.scope).Add(float64(c.n))
	}
	if failed > 0 {
		h.m.publishErrors.Add(float64(failed))
		switch {
		case firstErr != nil:
			return firstErr
		case waitErr != nil:
			return waitErr
		}
		return errUnavailable
	}
	return nil
}

// build encodes the request's messages into st.
func (h *Handler) build(st *reqState, items []item) {
	st.idx, st.data = st.idx[:0], st.data[:0]
	n := 0
	var m *outMsg
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		if m == nil || it.ev.AppID != items[st.idx[m.lo]].ev.AppID || len(st.data)-m.start >= schema.MaxBatchBytes {
			if m != nil {
				m.hi, m.end = len(st.idx), len(st.data)
			}
			if n < cap(st.msgs) {
				st.msgs = st.msgs[:n+1] // keeps its header map
			} else {
				st.msgs = append(st.msgs, outMsg{})
			}
			m = &st.msgs[n]
			n++
			m.lo, m.start, m.state, m.err = len(st.idx), len(st.data), msgPending, nil
		} else {
			st.data = append(st.data, schema.BatchSeparator)
		}
		st.data, st.keys = schema.AppendEventJSON(st.data, &it.ev, st.keys)
		st.idx = append(st.idx, i)
	}
	m.hi, m.end = len(st.idx), len(st.data)
	st.msgs = st.msgs[:n]
	for k := range st.msgs {
		m := &st.msgs[k]
		if m.hdr == nil {
			m.hdr = nats.Header{jetstream.MsgIDHeader: make([]string, 1), schema.EventsHeader: {"2"}}
		}
		idx := st.idx[m.lo:m.hi]
		st.msgID.Reset()
		for _, i := range idx {
			st.msgID.Add(items[i].ev.ID)
		}
		m.hdr[jetstream.MsgIDHeader][0] = st.msgID.ID()
		m.msg = nats.Msg{Subject: schema.EventSubject(items[idx[0]].ev.AppID), Header: m.hdr, Data: st.data[m.start:m.end]}
	}
}

// sendAll publishes msgs and waits for their answers.
func (h *Handler) sendAll(ctx context.Context, msgs []outMsg, deadline time.Time) error {
	for k := range msgs {
		if sendErr := h.send(&msgs[k], deadline); sendErr != nil {
			for j := k; j < len(msgs); j++ {
				msgs[j].state, msgs[j].err = msgFailed, sendErr
			}
			break
		}
	}
	return h.wait(ctx, msgs, deadline)
}

// noLibraryRetries is built once: an option per send is an allocation
// per request.
var noLibraryRetries = jetstream.WithRetryAttempts(0)

// send publishes m (again, on a resend) without waiting for its ack.
// Waiting for room in the publish window ends at deadline. The library's
// own retries stay off: m is reused once the request is answered, and
// resends are this package's.
func (h *Handler) send(m *outMsg, deadline time.Time) error {
	f, err := h.js.PublishMsgAsync(&m.msg,
		jetstream.WithStallWait(max(time.Until(deadline), time.Millisecond)), noLibraryRetries)
	if err != nil {
		return fmt.Errorf("publish %d events: %w", m.hi-m.lo, err)
	}
	m.futs = append(m.futs, f)
	return nil
}

// wait takes the first answer to each message until all have one, the
// deadline passes or ctx ends. A message unanswered after resendAfter
// is sent again under the same Nats-Msg-Id.
func (h *Handler) wait(ctx context.Context, msgs []outMsg, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	resend := time.NewTimer(resendAfter)
	defer resend.Stop()
	resends := 0
	for k := range msgs {
		m := &msgs[k]
		for m.state == msgPending {
			var ok [1 + maxResends]<-chan *jetstream.PubAck
			var fail [1 + maxResends]<-chan error
			for j, f := range m.futs {
				ok[j], fail[j] = f.Ok(), f.Err()
			}
			var ack *jetstream.PubAck
			var err error
			select {
			case ack = <-ok[0]:
			case ack = <-ok[1]:
			case ack = <-ok[2]:
			case ack = <-ok[3]:
			case err = <-fail[0]:
			case err = <-fail[1]:
			case err = <-fail[2]:
			case err = <-fail[3]:
			case <-timer.C:
				return jetstream.ErrAsyncPublishTimeout
			case <-ctx.Done():
				return ctx.Err()
			case <-resend.C:
				// Unanswered after resendAfter: most likely sent to a
				// stream leader that died. The same Nats-Msg-Id makes a
				// second copy harmless, and the new leader answers it.
				h.resend(msgs, deadline)
				if resends++; resends < maxResends {
					resend.Reset(resendAfter)
				}
				continue
			}
			switch {
			case err != nil:
				m.state, m.err = msgFailed, err
			case ack.Duplicate:
				m.state = msgDuplicate
			default:
				m.state = msgStored
			}
		}
	}
	return nil
}

const (
	// resendAfter is how long an unanswered message waits before it is
	// sent again; a healthy stream answers in milliseconds.
	resendAfter = time.Second
	maxResends  = 3
)

// resend publishes again the messages still without an answer.
func (h *Handler) resend(msgs []outMsg, deadline time.Time) {
	events := 0
	for k := range msgs {
		m := &msgs[k]
		if m.state != msgPending || len(m.futs) > maxResends {
			continue
		}
		if h.send(m, deadline) != nil {
			break
		}
		events += m.hi - m.lo
	}
	h.m.resent.Add(float64(events))
}

// add counts one stored event of app (its label) under its bounded labels.
func (st *reqState) add(app string, ev *schema.Event) {
	action, scope := actionLabel(ev.Action), scopeLabel(ev)
	for i := range st.cnt {
		if c := &st.cnt[i]; c.app == app && c.action == action && c.platform == ev.Platform && c.scope == scope {
			c.n++
			return
		}
	}
	st.cnt = append(st.cnt, labelCount{app: app, action: action, platform: ev.Platform, scope: scope, n: 1})
}

// logFailure reports a failed request, at most once a second.
func (h *Handler) logFailure(err error, events int) {
	now := time.Now().UnixNano()
	last := h.lastLog.Load()
	if now-last < int64(time.Second) || !h.lastLog.CompareAndSwap(last, now) {
		return
	}
	h.log.Warn("stats not stored, answering 429", "events", events, "err", err)
}
