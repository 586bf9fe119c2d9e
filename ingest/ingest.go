// Package ingest accepts device stats (POST /stats) and publishes every
// valid event to JetStream, answering 2xx only once JetStream holds them.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
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
	// MaxPendingPublishes bounds events published but not yet acknowledged
	// across all requests, so memory stays bounded when JetStream is slow.
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
	pub        *publisher // nil without JetStream
	m          *metrics
	log        *slog.Logger
	retryAfter int // seconds
	lastLog    atomic.Int64
	pool       sync.Pool // *reqState
	seed       [8]byte   // random per process: nonces differ across restarts
	seq        atomic.Uint64
}

// New builds the handler. It publishes on cfg.JetStream's connection with
// its own ack matching (see publisher): a bounded window of unacknowledged
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
			h.pub = newPublisher(nc, cfg.MaxPendingPublishes)
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
	batch batch
	msg   nats.Msg
	hdr   nats.Header
	data  []byte
	reply []byte
	idx   []int // item index of each published message
	// pending lists the messages a resend sends again.
	pending []int
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

// publish sends every valid event asynchronously, one message each with
// its id as Nats-Msg-Id, then waits for all the acknowledgements. It
// returns nil only when JetStream acknowledged every one (as stored or as
// a duplicate of a stored one).
func (h *Handler) publish(ctx context.Context, st *reqState, snap *release.Snapshot, items []item, valid int) error {
	if h.pub == nil {
		h.m.publishErrors.Add(float64(valid))
		return errUnavailable
	}
	if s := h.pub.nc.Status(); s != nats.CONNECTED {
		// Don't park events in the reconnect buffer for a request that
		// will be answered 429 anyway.
		h.m.publishErrors.Add(float64(valid))
		return errors.Join(errUnavailable, errors.New("nats connection "+s.String()))
	}
	if err := h.pub.subscribe(); err != nil {
		h.m.publishErrors.Add(float64(valid))
		return errors.Join(errUnavailable, err)
	}
	deadline := time.Now().Add(h.cfg.PublishTimeout)
	b := &st.batch
	if err := h.pub.begin(b, valid, deadline); err != nil {
		h.m.publishErrors.Add(float64(valid))
		return err
	}
	// The connection copies subject, headers and data into its buffer
	// before PublishMsg returns, so one message, header and buffer serve
	// every event.
	if st.hdr == nil {
		st.hdr = nats.Header{jetstream.MsgIDHeader: make([]string, 1)}
	}
	msg := &st.msg
	msg.Header = st.hdr
	idv := st.hdr[jetstream.MsgIDHeader]
	st.idx = st.idx[:0]
	var subjApp string
	var sendErr error
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		if it.ev.AppID != subjApp || msg.Subject == "" {
			subjApp, msg.Subject = it.ev.AppID, schema.EventSubject(it.ev.AppID)
		}
		k := len(st.idx)
		st.reply = h.pub.replySubject(st.reply[:0], b, k)
		msg.Reply = string(st.reply)
		st.data, st.keys = appendEvent(st.data[:0], &it.ev, st.keys)
		msg.Data = st.data
		idv[0] = it.ev.ID
		if err := h.pub.nc.PublishMsg(msg); err != nil {
			sendErr = err
			break
		}
		st.idx = append(st.idx, i)
	}
	msg.Data, msg.Reply, idv[0] = nil, "", ""
	if sendErr != nil {
		h.pub.unsent(b, len(st.idx), sendErr)
	}
	timer := time.NewTimer(time.Until(deadline))
	resend := time.NewTimer(resendAfter)
	var waitErr error
wait:
	for resends := 0; ; {
		select {
		case <-b.done:
			break wait
		case <-timer.C:
			waitErr = jetstream.ErrAsyncPublishTimeout
			break wait
		case <-ctx.Done():
			waitErr = ctx.Err()
			break wait
		case <-resend.C:
			// Unanswered after resendAfter: most likely sent to a stream
			// leader that died. The same Nats-Msg-Id makes a second copy
			// harmless, and the new leader answers it.
			h.resend(st, b, items)
			if resends++; resends < maxResends {
				resend.Reset(resendAfter)
			}
		}
	}
	timer.Stop()
	resend.Stop()
	h.pub.end(b)
	failed := 0
	for k, a := range b.acks {
		switch a {
		case ackStored:
			st.add(snap, &items[st.idx[k]].ev)
		case ackDuplicate:
		default:
			failed++
		}
	}
	for _, c := range st.cnt {
		h.m.events.WithLabelValues(c.app, c.action, c.platform, c.scope).Add(float64(c.n))
	}
	if failed > 0 {
		h.m.publishErrors.Add(float64(failed))
		switch {
		case b.err != nil:
			return b.err
		case waitErr != nil:
			return waitErr
		}
		return errUnavailable
	}
	return nil
}

const (
	// resendAfter is how long an unanswered event waits before it is sent
	// again; a healthy stream answers in milliseconds.
	resendAfter = time.Second
	maxResends  = 3
)

// resend publishes again the events of b still without an answer.
func (h *Handler) resend(st *reqState, b *batch, items []item) {
	st.pending = h.pub.pending(b, st.pending[:0])
	if len(st.pending) == 0 {
		return
	}
	msg := &st.msg
	msg.Header = st.hdr
	idv := st.hdr[jetstream.MsgIDHeader]
	for _, k := range st.pending {
		ev := &items[st.idx[k]].ev
		msg.Subject = schema.EventSubject(ev.AppID)
		st.reply = h.pub.replySubject(st.reply[:0], b, k)
		msg.Reply = string(st.reply)
		st.data, st.keys = appendEvent(st.data[:0], ev, st.keys)
		msg.Data = st.data
		idv[0] = ev.ID
		if err := h.pub.nc.PublishMsg(msg); err != nil {
			break
		}
	}
	msg.Data, msg.Reply, idv[0] = nil, "", ""
	h.m.resent.Add(float64(len(st.pending)))
}

// add counts one stored event under its bounded labels.
func (st *reqState) add(snap *release.Snapshot, ev *schema.Event) {
	app := update.UnknownApp
	if snap != nil {
		if _, ok := snap.App(ev.AppID); ok {
			app = ev.AppID
		}
	}
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
