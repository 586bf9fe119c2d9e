// Package audit records every release change, manual or automatic, in a
// JetStream stream and lists them back.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/internal/promreg"
)

// Stream is the JetStream stream holding the audit log.
const Stream = "CAPSTAN_AUDIT"

// Subjects of the audit stream: SubjectPrefix plus one token per app
// (see Subject).
const (
	SubjectPrefix = "capstan.audit."
	Subjects      = SubjectPrefix + ">"
)

// MaxAge is how long the stream keeps an entry.
const MaxAge = 400 * 24 * time.Hour

// Limits of Query.Limit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Actors of automatic changes.
const ActorGuard = "guard"

// Changes the admin API records.
const (
	ChangeAppCreate     = "app_create"
	ChangeAppUpdate     = "app_update"
	ChangeAppDelete     = "app_delete"
	ChangeBundleUpload  = "bundle_upload"
	ChangeBundleDelete  = "bundle_delete"
	ChangeChannelSet    = "channel_set"
	ChangeChannelDelete = "channel_delete"
	ChangePinSet        = "pin_set"
	ChangePinDelete     = "pin_delete"
	ChangeTokenCreate   = "token_create"
	ChangeTokenRevoke   = "token_revoke"
)

// Entry is one release change.
type Entry struct {
	Time    time.Time `json:"time"`
	App     string    `json:"app"`
	Channel string    `json:"channel,omitempty"`
	Bundle  string    `json:"bundle,omitempty"`
	// Change names what happened, e.g. channel_set, rollout_pause.
	Change string `json:"change"`
	// Actor is "token:<name>" for a change made with an admin token, or
	// ActorGuard for the rollout guard.
	Actor     string `json:"actor"`
	Automatic bool   `json:"automatic,omitempty"`
	// Detail is a one-line human summary.
	Detail string `json:"detail,omitempty"`
	// Gate holds the health gate's numbers behind an automatic change.
	Gate json.RawMessage `json:"gate,omitempty"`
	// Seq is the entry's stream sequence, set when listed.
	Seq uint64 `json:"seq,omitempty"`
}

// Query selects entries to list.
type Query struct {
	App     string    // "" = every app
	Channel string    // "" = every channel
	Since   time.Time // zero = from the start
	Limit   int       // newest Limit entries; 0 = 100
}

// Recorder appends entries; the admin API and the guard write through it.
type Recorder interface {
	Append(ctx context.Context, e Entry) error
}

// Options configure Open.
type Options struct {
	// Replicas of the stream in a NATS cluster (0 means 1).
	Replicas int
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives set-up retries; nil discards them.
	Logger *slog.Logger
}

// Log is the audit stream.
type Log struct {
	js         jetstream.JetStream
	log        *slog.Logger
	changes    *prometheus.CounterVec
	appendErrs prometheus.Counter
}

// StreamConfig is the audit stream: file storage, limits retention, entries
// older than MaxAge dropped from the front.
func StreamConfig(replicas int) jetstream.StreamConfig {
	if replicas <= 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:              Stream,
		Description:       "Capstan audit log of release changes",
		Subjects:          []string{Subjects},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxAge:            MaxAge,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Replicas:          replicas,
		Duplicates:        2 * time.Minute,
		MaxMsgSize:        1 << 20,
	}
}

// Open creates or updates the audit stream and returns the log on it. In a
// NATS cluster it retries (bus.Retry) while the cluster forms or another
// process creates the stream at the same moment.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Log, error) {
	if o.Replicas < 0 || o.Replicas > 5 {
		return nil, fmt.Errorf("audit stream replicas %d: want 1 to 5", o.Replicas)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := StreamConfig(o.Replicas)
	err := bus.Retry(ctx, log, "stream "+cfg.Name, func(ctx context.Context) error {
		// The loser of a concurrent create sees "name already in use"
		// (a transient error to bus.Retry); its next attempt updates.
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l := &Log{
		js:  js,
		log: log,
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_release_changes_total",
			Help: "Release changes recorded in the audit log, by app, change and actor (manual or guard).",
		}, []string{"app", "change", "actor"}),
		appendErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_audit_append_errors_total",
			Help: "Audit entries that could not be stored.",
		}),
	}
	if o.Registerer != nil {
		l.changes = promreg.Register(o.Registerer, l.changes)
		l.appendErrs = promreg.Register(o.Registerer, l.appendErrs)
	}
	return l, nil
}

// Subject is the subject of app's entries: SubjectPrefix plus the app id
// as one token. Dots become '~'; any other byte outside [A-Za-z0-9_-]
// (including '~' and '%') is percent-encoded, so the mapping is lossless
// (com.example.app → capstan.audit.com~example~app). Entries of no app
// (token_create) go to capstan.audit.%.
func Subject(app string) string {
	var b strings.Builder
	b.Grow(len(SubjectPrefix) + len(app) + 1)
	b.WriteString(SubjectPrefix)
	if app == "" {
		b.WriteByte('%')
		return b.String()
	}
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(app); i++ {
		c := app[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '.':
			b.WriteByte('~')
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// actorLabel is the metric's actor: "guard" for automatic changes, else
// "manual" (token names stay out of the label set).
func actorLabel(e Entry) string {
	if e.Automatic || e.Actor == ActorGuard {
		return ActorGuard
	}
	return "manual"
}

// Append stores e (Time set to now, UTC, when zero) and returns once
// JetStream has acknowledged it.
func (l *Log) Append(ctx context.Context, e Entry) error {
	if l == nil {
		return errors.New("audit: no log")
	}
	if e.Change == "" {
		l.appendErrs.Inc()
		return errors.New("audit: entry without change")
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.Seq = 0
	data, err := json.Marshal(e)
	if err != nil {
		l.appendErrs.Inc()
		return fmt.Errorf("audit: encode entry: %w", err)
	}
	if _, err := l.js.Publish(ctx, Subject(e.App), data, jetstream.WithExpectStream(Stream)); err != nil {
		l.appendErrs.Inc()
		return fmt.Errorf("audit: append %s of %q: %w", e.Change, e.App, err)
	}
	l.changes.WithLabelValues(e.App, e.Change, actorLabel(e)).Inc()
	return nil
}

// listTimeout bounds List when ctx has no earlier deadline.
const listTimeout = 15 * time.Second

// fetchWait bounds one wait for messages; List knows how many to expect,
// so it waits only while the server is slow to send what it holds.
const fetchWait = 2 * time.Second

// List returns the newest q.Limit entries q selects (0: DefaultLimit, at
// most MaxLimit), oldest first, each with its Seq. It reads with an
// ordered consumer up to the last entry stored when it started, so it
// returns as soon as that is read (at once when nothing matches).
func (l *Log) List(ctx context.Context, q Query) ([]Entry, error) {
	if l == nil {
		return nil, errors.New("audit: no log")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()

	s, err := l.js.Stream(ctx, Stream)
	if err != nil {
		return nil, fmt.Errorf("audit: stream info: %w", err)
	}
	// lastSeq and lastTime: the newest entry that matches the subject
	// filter now; reading stops there.
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return []Entry{}, nil
	}
	lastSeq, lastTime, firstSeq := st.LastSeq, st.LastTime, st.FirstSeq
	cfg := jetstream.OrderedConsumerConfig{InactiveThreshold: time.Minute}
	if q.App != "" {
		subj := Subject(q.App)
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return []Entry{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: last entry of %q: %w", q.App, err)
		}
		lastSeq, lastTime = m.Sequence, m.Time
		cfg.FilterSubjects = []string{subj}
	}
	if !q.Since.IsZero() && lastTime.Before(q.Since) {
		return []Entry{}, nil
	}
	switch {
	case !q.Since.IsZero():
		since := q.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	case q.App == "" && q.Channel == "":
		// Every entry matches, and a limits stream only loses entries
		// from its front: the newest limit entries are the last sequences.
		start := firstSeq
		if lastSeq >= uint64(limit) && lastSeq-uint64(limit)+1 > start {
			start = lastSeq - uint64(limit) + 1
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit: consumer: %w", err)
	}
	defer func() {
		// Ephemeral; deleting it now saves the server keeping it until
		// InactiveThreshold. Best effort.
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = s.DeleteConsumer(dctx, info.Name)
			cancel()
		}
	}()

	ring := make([]Entry, limit) // the newest matches, ring[n%limit] next
	n := 0
	// take keeps msg if it matches and reports whether it is the last one
	// to read.
	take := func(msg jetstream.Msg) (last bool) {
		meta, err := msg.Metadata()
		if err != nil {
			return false
		}
		seq := meta.Sequence.Stream
		if seq > lastSeq {
			return true
		}
		last = seq == lastSeq || meta.NumPending == 0
		var e Entry
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			l.log.Warn("audit: undecodable entry skipped", "seq", seq, "err", err)
			return last
		}
		if (q.App != "" && e.App != q.App) || (q.Channel != "" && e.Channel != q.Channel) ||
			(!q.Since.IsZero() && meta.Timestamp.Before(q.Since)) {
			return last
		}
		e.Seq = seq
		ring[n%limit] = e
		n++
		return last
	}
	for done := false; !done; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(min(fetchWait, max(time.Until(deadline(ctx)), 100*time.Millisecond))))
		if err != nil {
			return nil, fmt.Errorf("audit: read: %w", err)
		}
		got := 0
		// A fetch's channel stays open until the batch is full or its
		// wait is over: leave it as soon as the last entry is in.
		for msg := range batch.Messages() {
			got++
			if done = take(msg); done {
				break
			}
		}
		if done {
			break
		}
		if err := batch.Error(); err != nil && !emptyFetch(err) {
			return nil, fmt.Errorf("audit: read: %w", err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("audit: read: %w", context.Cause(ctx))
		}
		// Nothing arrived though the entry the read ends at was not seen
		// (aged out meanwhile): what was read is all there is.
		done = got == 0
	}
	out := make([]Entry, 0, min(n, limit))
	for i := max(0, n-limit); i < n; i++ {
		out = append(out, ring[i%limit])
	}
	return out, nil
}

// emptyFetch reports whether a fetch error only says that the fetch
// waited its full time without messages.
func emptyFetch(err error) bool {
	return errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(listTimeout)
	}
	return d
}
