package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
)

// Discard policies accepted in StreamLimits.Discard.
const (
	// DiscardNew makes publishes fail when the stream is full, so ingest
	// answers 503 and devices keep their batch. The default.
	DiscardNew = "new"
	// DiscardOld deletes the oldest unconsumed events to make room.
	// Events are lost; only for operators who prefer that to back-pressure.
	DiscardOld = "old"
)

// DefaultDuplicateWindow is how long JetStream remembers message ids to
// drop resent requests (BatchMsgID). The server keeps every id of the
// window in memory (about 150 bytes each), so memory grows with message
// rate × window; events resent later are still deduplicated by ClickHouse
// on event_id.
const DefaultDuplicateWindow = 2 * time.Minute

// StreamLimits bounds the events stream. Zero or negative sizes mean
// "no limit of this kind" (bounded only by the server's JetStream storage).
type StreamLimits struct {
	// MaxAge drops events older than this even when unconsumed; 0 keeps
	// them until consumed.
	MaxAge time.Duration
	// MaxBytes caps the stream's size; -1 (or 0) = no cap of its own.
	MaxBytes int64
	// MaxMsgs caps the number of messages (requests) held; -1 (or 0) = no cap.
	MaxMsgs int64
	// Discard is DiscardNew (default, "") or DiscardOld.
	Discard string
	// Replicas is the stream's replication factor in a NATS cluster
	// (1 for a single server; 0 means 1).
	Replicas int
	// DuplicateWindow for Nats-Msg-Id dedupe; 0 means DefaultDuplicateWindow.
	// It is shortened to MaxAge when that is smaller.
	DuplicateWindow time.Duration
}

// DefaultStreamLimits never discards an unconsumed event: no age limit, no
// size limit beyond the server's storage, and publishes fail (→ 503, the
// device keeps its batch) rather than old events being dropped.
//
// MaxBytes is -1 rather than a fixed size because JetStream reserves a
// stream's MaxBytes against the server's storage at creation time: a
// default larger than a small machine's disk would stop Capstan starting.
func DefaultStreamLimits() StreamLimits {
	return StreamLimits{
		MaxAge:          0,
		MaxBytes:        -1,
		MaxMsgs:         -1,
		Discard:         DiscardNew,
		Replicas:        1,
		DuplicateWindow: DefaultDuplicateWindow,
	}
}

// Validate reports limits JetStream would refuse or that make no sense.
func (l StreamLimits) Validate() error {
	switch l.Discard {
	case "", DiscardNew, DiscardOld:
	default:
		return fmt.Errorf("stream discard policy %q: want %q or %q", l.Discard, DiscardNew, DiscardOld)
	}
	if l.MaxAge < 0 {
		return fmt.Errorf("stream max age %s: must not be negative", l.MaxAge)
	}
	if l.DuplicateWindow < 0 {
		return fmt.Errorf("stream duplicate window %s: must not be negative", l.DuplicateWindow)
	}
	if l.Replicas < 0 || l.Replicas > 5 {
		return fmt.Errorf("stream replicas %d: want 1 to 5", l.Replicas)
	}
	return nil
}

// dupWindow is the dedupe window: the default when unset, and never
// longer than MaxAge (JetStream refuses that).
func (l StreamLimits) dupWindow() time.Duration {
	w := l.DuplicateWindow
	if w == 0 {
		w = DefaultDuplicateWindow
	}
	if l.MaxAge > 0 && w > l.MaxAge {
		w = l.MaxAge
	}
	return w
}

func limitOrNone(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

// EventsStreamConfig is the events stream: a file-backed work queue.
//
// Work-queue retention deletes an event as soon as the consumer acks it, so
// the stream holds exactly the backlog ClickHouse has not taken yet, and
// with DiscardNew a full stream means "the backlog is full" (publishes fail)
// rather than "old, unconsumed events are dropped". Several consumer
// replicas share the one durable pull consumer (ConsumerConfig); a work
// queue allows only one unfiltered consumer, which is all Capstan needs.
func EventsStreamConfig(l StreamLimits) jetstream.StreamConfig {
	discard := jetstream.DiscardNew
	if l.Discard == DiscardOld {
		discard = jetstream.DiscardOld
	}
	replicas := l.Replicas
	if replicas <= 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "Capstan stats events waiting for ClickHouse",
		Subjects:    []string{EventsSubjects},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     discard,
		MaxAge:      l.MaxAge,
		MaxBytes:    limitOrNone(l.MaxBytes),
		MaxMsgs:     limitOrNone(l.MaxMsgs),
		// Per-subject (per-app) limits stay off: one app must not push
		// out another's events, and the totals above already bound it.
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Replicas:          replicas,
		Duplicates:        l.dupWindow(),
		// A stats event is small; this stops a broken publisher from
		// filling the backlog with giant messages.
		MaxMsgSize: 1 << 20,
	}
}

// DeadLetterStreamConfig is the stream of messages the consumer could not
// decode, kept (limits retention, no age limit) until an operator looks at
// them and purges the stream. Ingest only publishes events it encoded
// itself, so the stream stays near empty in normal operation.
//
// replicas is the stream's replication factor (0 means 1), the same as the
// events stream's: a dead-lettered message is the only copy left of what a
// device sent, so it must survive the loss of a node as well.
func DeadLetterStreamConfig(replicas int) jetstream.StreamConfig {
	if replicas <= 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:              DeadLetterStream,
		Description:       "Capstan stats messages the consumer could not process",
		Subjects:          []string{DeadLetterSubjects},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardNew,
		MaxAge:            0,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: -1,
		MaxConsumers:      -1,
		Replicas:          replicas,
		Duplicates:        DefaultDuplicateWindow,
	}
}

// ConsumerConfig is the durable pull consumer every consumer replica binds
// to (same name → they share the work). Acks are explicit: an event leaves
// the work queue only after its ClickHouse insert. MaxDeliver is unlimited
// because dropping an event after N failed inserts would lose it; the
// consumer dead-letters only what it cannot decode.
func ConsumerConfig(ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	if maxAckPending <= 0 {
		maxAckPending = 20000
	}
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Name:          ConsumerName,
		Description:   "Capstan ClickHouse inserter",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
		// Room for many replicas each with a pull outstanding.
		MaxWaiting: 512,
	}
}

// ErrLimitBelowBacklog is returned by EnsureStreams when new limits would
// make JetStream delete events that are already in the stream.
var ErrLimitBelowBacklog = errors.New("stream limit below current backlog")

// EnsureStreams creates the events and dead-letter streams or updates
// their limits. It is idempotent and safe to run from several processes at
// once. It refuses (ErrLimitBelowBacklog) to shrink MaxBytes, MaxMsgs or
// MaxAge below what the events stream holds now, because JetStream applies
// a lowered limit by deleting unconsumed events.
//
// In a NATS cluster it retries (bus.Retry: backoff, logged, bounded by
// bus.SetupDeadline) while the cluster is still forming or electing a
// leader, and when another process created a stream at the same moment.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, l StreamLimits) error {
	return EnsureStreamsLog(ctx, js, l, slog.Default())
}

// EnsureStreamsLog is EnsureStreams logging its retries to log.
func EnsureStreamsLog(ctx context.Context, js jetstream.JetStream, l StreamLimits, log *slog.Logger) error {
	if err := l.Validate(); err != nil {
		return err
	}
	cfg := EventsStreamConfig(l)
	err := bus.Retry(ctx, log, "stream "+cfg.Name, func(ctx context.Context) error {
		if err := checkBacklog(ctx, js, cfg); err != nil {
			return err
		}
		return ensureStream(ctx, js, cfg)
	})
	if err != nil {
		return err
	}
	return EnsureStream(ctx, js, DeadLetterStreamConfig(l.Replicas), log)
}

// EnsureStream creates or updates one stream, retrying as EnsureStreams.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *slog.Logger) error {
	return bus.Retry(ctx, log, "stream "+cfg.Name, func(ctx context.Context) error {
		return ensureStream(ctx, js, cfg)
	})
}

// CreateStreamIfMissing creates a stream that does not exist yet and
// leaves an existing one as it is, retrying as EnsureStreams.
func CreateStreamIfMissing(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, log *slog.Logger) error {
	return bus.Retry(ctx, log, "stream "+cfg.Name, func(ctx context.Context) error {
		_, err := js.Stream(ctx, cfg.Name)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s info: %w", cfg.Name, err)
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		return nil
	})
}

// checkBacklog compares the new limits with what the existing stream holds.
func checkBacklog(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s info: %w", cfg.Name, err)
	}
	st := s.CachedInfo().State
	if cfg.MaxBytes > 0 && st.Bytes > uint64(cfg.MaxBytes) {
		return fmt.Errorf("stream %s holds %d bytes, max bytes %d would delete unconsumed events: %w",
			cfg.Name, st.Bytes, cfg.MaxBytes, ErrLimitBelowBacklog)
	}
	if cfg.MaxMsgs > 0 && st.Msgs > uint64(cfg.MaxMsgs) {
		return fmt.Errorf("stream %s holds %d messages, max msgs %d would delete unconsumed events: %w",
			cfg.Name, st.Msgs, cfg.MaxMsgs, ErrLimitBelowBacklog)
	}
	if cfg.MaxAge > 0 && st.Msgs > 0 && !st.FirstTime.IsZero() && time.Since(st.FirstTime) > cfg.MaxAge {
		return fmt.Errorf("stream %s oldest event is from %s, max age %s would delete unconsumed events: %w",
			cfg.Name, st.FirstTime.UTC().Format(time.RFC3339), cfg.MaxAge, ErrLimitBelowBacklog)
	}
	return nil
}

// ensureStream is one attempt. Two processes may both find the stream
// missing and both create it; the loser sees "name already in use"
// (configs differ) and bus.Retry has it try again, which updates.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return nil
}

// EventSubject is the subject ingest publishes an app's events to:
// EventsSubjectPrefix plus the app id as one subject token. Dots (NATS
// token separators) become '~'; any other byte outside [A-Za-z0-9_-]
// (including '~' and '%') is percent-encoded, so the mapping is lossless
// and com.example.app reads as capstan.events.com~example~app.
func EventSubject(appID string) string {
	return string(AppendEventSubject(nil, appID))
}

// AppendEventSubject appends EventSubject(appID) to b.
func AppendEventSubject(b []byte, appID string) []byte {
	b = append(b, EventsSubjectPrefix...)
	if appID == "" {
		return append(b, '%') // a lone '%' decodes to nothing else
	}
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(appID); i++ {
		c := appID[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b = append(b, c)
		case c == '.':
			b = append(b, '~')
		default:
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return b
}

// AppFromSubject reverses EventSubject; ok is false for subjects outside
// the events stream or with a malformed token.
func AppFromSubject(subject string) (appID string, ok bool) {
	tok, found := strings.CutPrefix(subject, EventsSubjectPrefix)
	if !found || tok == "" || strings.IndexByte(tok, '.') >= 0 {
		return "", false
	}
	if tok == "%" {
		return "", true
	}
	var sb strings.Builder
	sb.Grow(len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch c {
		case '~':
			sb.WriteByte('.')
		case '%':
			if i+2 >= len(tok) {
				return "", false
			}
			hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			sb.WriteByte(byte(hi<<4 | lo))
			i += 2
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}
