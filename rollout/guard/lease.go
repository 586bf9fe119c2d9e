package guard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
)

// Bucket is the JetStream KV bucket holding the guard's lease.
const Bucket = "capstan_guard"

const leaseKey = "lease"

// statusKey is where the leader keeps its last reading of a rollout; it
// expires with the bucket's TTL when no guard renews it.
func statusKey(app, channel string) string {
	return "status." + base64.RawURLEncoding.EncodeToString([]byte(app)) + "." + base64.RawURLEncoding.EncodeToString([]byte(channel))
}

// PutStatus stores the guard's reading of one rollout.
func (l *Lease) PutStatus(ctx context.Context, app, channel string, data []byte) error {
	_, err := l.kv.Put(ctx, statusKey(app, channel), data)
	return err
}

// Status returns the guard's last reading of a rollout, nil when none is
// fresh.
func (l *Lease) Status(ctx context.Context, app, channel string) (json.RawMessage, error) {
	e, err := l.kv.Get(ctx, statusKey(app, channel))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guard status: %w", err)
	}
	return json.RawMessage(e.Value()), nil
}

// Lease makes one process of a deployment the guard. The holder's key
// expires with the bucket's TTL unless renewed, and every write of it is
// conditional (create-only to take it, update-with-revision to renew or
// release it), so two processes never both hold it.
type Lease struct {
	kv  jetstream.KeyValue
	id  string
	ttl time.Duration

	rev uint64
	// until is when this holder must stop acting: the TTL from the start
	// of its last successful write, less a margin for clock rates.
	until time.Time
}

// OpenLease opens (creating if needed) the lease bucket; ttl is how long
// a holder that stops renewing keeps the lease.
func OpenLease(ctx context.Context, js jetstream.JetStream, id string, ttl time.Duration, replicas int, log *slog.Logger) (*Lease, error) {
	var kv jetstream.KeyValue
	err := bus.Retry(ctx, log, "guard bucket "+Bucket, func(ctx context.Context) error {
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      Bucket,
			Description: "Capstan rollout guard lease",
			History:     1,
			TTL:         ttl,
			Replicas:    max(replicas, 1),
			Storage:     jetstream.FileStorage,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("guard bucket %q: %w", Bucket, err)
	}
	return &Lease{kv: kv, id: id, ttl: ttl}, nil
}

// Held reports whether this process holds the lease at now.
func (l *Lease) Held(now time.Time) bool {
	return l.rev != 0 && now.Before(l.until)
}

// Refresh takes the lease when it is free, or renews it when held. It
// reports whether the lease is held afterwards.
func (l *Lease) Refresh(ctx context.Context) (bool, error) {
	start := time.Now()
	var rev uint64
	var err error
	if l.rev != 0 {
		rev, err = l.kv.Update(ctx, leaseKey, []byte(l.id), l.rev)
		if isConflict(err) {
			// Someone else holds it now (ours expired while we were away).
			l.rev = 0
			return false, nil
		}
	} else {
		rev, err = l.kv.Create(ctx, leaseKey, []byte(l.id))
		if isConflict(err) {
			return false, nil
		}
	}
	if err != nil {
		if !l.Held(time.Now()) {
			l.rev = 0
		}
		return l.Held(time.Now()), fmt.Errorf("guard lease: %w", err)
	}
	l.rev = rev
	l.until = start.Add(l.ttl - l.ttl/5)
	return true, nil
}

// Release gives the lease up, so another process takes it at once.
func (l *Lease) Release(ctx context.Context) {
	if l.rev == 0 {
		return
	}
	_ = l.kv.Delete(ctx, leaseKey, jetstream.LastRevision(l.rev))
	l.rev = 0
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
