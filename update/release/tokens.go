package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Tokens with a role are two keys written and deleted together in one
// batch: the record under its hash (what authentication reads) and a
// name key holding the hash, expected absent when created, so two fronts
// creating one name at once cannot both succeed.

// CreateToken stores a token with a role; ErrExists when its name is
// taken (by a token with a role, or a legacy token answering to it) or
// its hash is already known. CreatedAt is set when zero.
func (s *Store) CreateToken(ctx context.Context, t Token) error {
	t.Hash = strings.ToLower(t.Hash)
	if !ValidHashHex(t.Hash) {
		return fmt.Errorf("create token: %w: hash must be 64 hex characters", ErrInvalid)
	}
	if err := validSegment("token name", t.Name); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if t.Role == "" {
		return fmt.Errorf("create token %q: %w: no role", t.Name, ErrInvalid)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	err = s.guarded(ctx, func() (uint64, error) {
		// Legacy tokens are never written any more, so their set only
		// shrinks: checking the snapshot for them cannot race a create.
		if len(s.snap.Load().legacyTokens(t.Name)) > 0 {
			return 0, ErrExists
		}
		ne, err := s.last(ctx, tokenNameKey(t.Name))
		if err != nil {
			return 0, err
		}
		te, err := s.last(ctx, tokenKey(t.Hash))
		if err != nil {
			return 0, err
		}
		if ne.live || te.live {
			return 0, ErrExists
		}
		return s.commit(ctx, []*nats.Msg{
			expect(s.putMsg(tokenNameKey(t.Name), []byte(t.Hash)), ne.seq),
			expect(s.putMsg(tokenKey(t.Hash), data), te.seq),
		})
	})
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.Name, err)
	}
	return nil
}

// RevokeToken deletes every token answering to name (Token.AnswersTo):
// the one holding the name key and any legacy tokens of that name, in
// one batch. It returns what it deleted; ErrNotFound when nothing
// answers to name.
func (s *Store) RevokeToken(ctx context.Context, name string) ([]Token, error) {
	if err := validSegment("token name", name); err != nil {
		return nil, fmt.Errorf("revoke token: %w", err)
	}
	var gone []Token
	err := s.guarded(ctx, func() (uint64, error) {
		gone = gone[:0]
		var msgs []*nats.Msg
		ne, err := s.last(ctx, tokenNameKey(name))
		if err != nil {
			return 0, err
		}
		hashes := map[string]bool{}
		if ne.live {
			msgs = append(msgs, expect(s.delMsg(tokenNameKey(name)), ne.seq))
			if h := strings.ToLower(string(ne.data)); ValidHashHex(h) {
				hashes[h] = true
			}
		}
		for _, t := range s.snap.Load().legacyTokens(name) {
			hashes[t.Hash] = true
		}
		for h := range hashes {
			te, err := s.last(ctx, tokenKey(h))
			if err != nil {
				return 0, err
			}
			if !te.live {
				continue
			}
			t := Token{Name: name}
			_ = json.Unmarshal(te.data, &t) // an unreadable record is revoked all the same
			t.Hash = h
			gone = append(gone, t)
			msgs = append(msgs, expect(s.delMsg(tokenKey(h)), te.seq))
		}
		if len(msgs) == 0 {
			return 0, ErrNotFound
		}
		return s.commit(ctx, msgs)
	})
	if err != nil {
		return nil, fmt.Errorf("revoke token %q: %w", name, err)
	}
	return gone, nil
}

// TouchToken records that the token with this hash was used at at. It
// rewrites the record only as read (expecting its revision), so it never
// brings back a token revoked meanwhile; a token gone, already marked as
// used later, or written by someone else in between is left as it is.
func (s *Store) TouchToken(ctx context.Context, hashHex string, at time.Time) error {
	hashHex = strings.ToLower(hashHex)
	if !ValidHashHex(hashHex) {
		return fmt.Errorf("touch token: %w: hash must be 64 hex characters", ErrInvalid)
	}
	key := tokenKey(hashHex)
	e, err := s.last(ctx, key)
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	if !e.live {
		return nil
	}
	var t Token
	if err := json.Unmarshal(e.data, &t); err != nil {
		return fmt.Errorf("touch token %s…: %w", hashHex[:8], err)
	}
	at = at.UTC().Truncate(time.Millisecond)
	if !at.After(t.LastUsedAt) {
		return nil
	}
	t.Hash, t.LastUsedAt = hashHex, at
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("touch token: %w", err)
	}
	if _, err := s.commit(ctx, []*nats.Msg{expect(s.putMsg(key, data), e.seq)}); err != nil && !errors.Is(err, errConflict) {
		return fmt.Errorf("touch token %s…: %w", hashHex[:8], err)
	}
	return nil
}

// legacyTokens returns the legacy tokens answering to name.
func (s *Snapshot) legacyTokens(name string) []Token {
	var out []Token
	for _, t := range s.tokens {
		if t.Legacy() && t.AnswersTo(name) {
			out = append(out, t)
		}
	}
	return out
}
