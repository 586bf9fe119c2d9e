package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// isMissing reports a key that was never written or was deleted.
func isMissing(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// get reads a key's current entry; ErrNotFound when absent.
func (s *Store) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := s.kv.Get(ctx, key)
	if isMissing(err) {
		return nil, ErrNotFound
	}
	return e, err
}

// create writes a new key; ErrExists when it is already there.
func (s *Store) create(ctx context.Context, key string, v any) (uint64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Create(ctx, key, data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, ErrExists
	}
	return rev, err
}

// deleteKey places a delete marker on key and returns its revision.
// The marker is published directly (the KV wire format) so the revision
// is known for waitApplied. lastRev, when non-zero, makes it conditional.
func (s *Store) deleteKey(ctx context.Context, key string, lastRev uint64) (uint64, error) {
	var opts []jetstream.PublishOpt
	if lastRev != 0 {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(lastRev))
	}
	ack, err := s.js.PublishMsg(ctx, s.delMsg(key), opts...)
	if err != nil {
		return 0, fmt.Errorf("delete %s: %w", key, err)
	}
	return ack.Sequence, nil
}

// listKeys returns the live keys matching NATS subject filters relative
// to the bucket (e.g. "chan.<app>.*"). A listing that makes no progress
// for readAttempt (its consumer asked of a stream leader that just died)
// is started again while ctx allows.
func (s *Store) listKeys(ctx context.Context, filters ...string) ([]string, error) {
	for {
		keys, err := s.listKeysOnce(ctx, filters)
		if err == nil || ctx.Err() != nil || !errors.Is(err, errNoAnswer) {
			return keys, err
		}
		s.log.Debug("release store: key listing stalled; listing again", "filters", filters)
	}
}

// errNoAnswer marks a read that made no progress for readAttempt.
var errNoAnswer = errors.New("no answer from the release bucket")

func (s *Store) listKeysOnce(ctx context.Context, filters []string) ([]string, error) {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(readAttempt, func() { cancel(errNoAnswer) })
	defer idle.Stop()
	kl, err := s.kv.ListKeysFiltered(lctx, append([]string(nil), filters...)...)
	if err != nil {
		if context.Cause(lctx) == errNoAnswer || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = errNoAnswer
		}
		return nil, fmt.Errorf("list keys %v: %w", filters, err)
	}
	defer stopWatch(kl)
	var keys []string
	seen := map[string]bool{}
	for {
		select {
		case k, ok := <-kl.Keys():
			// The lister also ends its channel when lctx ends: only an
			// end with lctx live is the whole listing.
			if lctx.Err() != nil {
				return nil, fmt.Errorf("list keys %v: %w", filters, context.Cause(lctx))
			}
			if !ok {
				return keys, nil
			}
			idle.Reset(readAttempt)
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		case <-lctx.Done():
			return nil, fmt.Errorf("list keys %v: %w", filters, context.Cause(lctx))
		}
	}
}

// PutApp replaces an existing app's metadata (its name); ErrNotFound when
// the app does not exist. CreatedAt is kept.
func (s *Store) PutApp(ctx context.Context, a App) error {
	if err := validSegment("app id", a.ID); err != nil {
		return fmt.Errorf("update app: %w", err)
	}
	err := s.guarded(ctx, func() (uint64, error) {
		e, err := s.last(ctx, appKey(a.ID))
		if err != nil {
			return 0, err
		}
		if !e.live {
			return 0, ErrNotFound
		}
		var old App
		if json.Unmarshal(e.data, &old) == nil && !old.CreatedAt.IsZero() {
			a.CreatedAt = old.CreatedAt
		}
		data, err := json.Marshal(a)
		if err != nil {
			return 0, err
		}
		return s.commit(ctx, []*nats.Msg{expect(s.putMsg(appKey(a.ID), data), e.seq)})
	})
	if err != nil {
		return fmt.Errorf("update app %q: %w", a.ID, err)
	}
	return nil
}

// validChannel checks a channel's own fields.
func validChannel(c Channel) error {
	if err := validSegment("app id", c.AppID); err != nil {
		return err
	}
	if err := validSegment("channel name", c.Name); err != nil {
		return err
	}
	for _, v := range []string{c.Bundle, c.RolloutBundle} {
		if v != "" {
			if err := validSegment("bundle version", v); err != nil {
				return err
			}
		}
	}
	if math.IsNaN(c.RolloutPercent) || c.RolloutPercent < 0 || c.RolloutPercent > 100 {
		return fmt.Errorf("%w: rollout percent %v outside 0–100", ErrInvalid, c.RolloutPercent)
	}
	switch c.DisableAutoUpdate {
	case "", PolicyNone, PolicyMajor, PolicyMinor, PolicyPatch, PolicyVersionNumber:
	default:
		return fmt.Errorf("%w: unknown disable_auto_update policy %q", ErrInvalid, c.DisableAutoUpdate)
	}
	if c.ID < 0 {
		return fmt.Errorf("%w: negative channel id", ErrInvalid)
	}
	return nil
}

// DeleteOverride unpins a device (matched case-insensitively).
func (s *Store) DeleteOverride(ctx context.Context, app, device string) error {
	device = strings.ToLower(device)
	if err := validSegment("app id", app); err != nil {
		return fmt.Errorf("delete override: %w", err)
	}
	if err := validSegment("device id", device); err != nil {
		return fmt.Errorf("delete override: %w", err)
	}
	key := ovrKey(app, device)
	e, err := s.get(ctx, key)
	if err != nil {
		return fmt.Errorf("delete override for device %q: %w", device, err)
	}
	rev, err := s.deleteKey(ctx, key, e.Revision())
	if err != nil {
		return fmt.Errorf("delete override for device %q: %w", device, err)
	}
	s.waitApplied(ctx, rev)
	return nil
}

// AddTokenHash records a legacy token (no role: an admin of every app)
// by the SHA-256 hex of its secret, as stores did before roles existed;
// ErrExists when that hash is already known. The admin API creates
// tokens with CreateToken.
func (s *Store) AddTokenHash(ctx context.Context, hashHex, name string) error {
	hashHex = strings.ToLower(hashHex)
	if !ValidHashHex(hashHex) {
		return fmt.Errorf("add token: %w: hash must be 64 hex characters", ErrInvalid)
	}
	rev, err := s.create(ctx, tokenKey(hashHex), Token{Hash: hashHex, Name: name, CreatedAt: now()})
	if err != nil {
		return fmt.Errorf("add token %q: %w", name, err)
	}
	s.waitApplied(ctx, rev)
	return nil
}

// DeleteTokenHash revokes an admin token.
func (s *Store) DeleteTokenHash(ctx context.Context, hashHex string) error {
	hashHex = strings.ToLower(hashHex)
	if !ValidHashHex(hashHex) {
		return fmt.Errorf("delete token: %w: hash must be 64 hex characters", ErrInvalid)
	}
	e, err := s.get(ctx, tokenKey(hashHex))
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	rev, err := s.deleteKey(ctx, tokenKey(hashHex), e.Revision())
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	s.waitApplied(ctx, rev)
	return nil
}
