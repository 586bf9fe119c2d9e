package release

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func tokenHash(i int) string { return fmt.Sprintf("%064x", i+1) }

func TestTokenNameKey(t *testing.T) {
	pk, err := parseKey(tokenNameKey("ci.bot-1"))
	if err != nil || pk.kind != kindTokenName || len(pk.segs) != 1 || pk.segs[0] != "ci.bot-1" {
		t.Fatalf("%+v %v", pk, err)
	}
}

func TestTokenAnswersTo(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		t        Token
		name     string
		answers  bool
		shownAs  string
		isLegacy bool
	}{
		{Token{Hash: h, Name: "ci", Role: "viewer"}, "ci", true, "ci", false},
		{Token{Hash: h, Name: "ci", Role: "viewer"}, "abababab", false, "ci", false},
		{Token{Hash: h, Name: "old"}, "old", true, "old", true},
		{Token{Hash: h}, "abababab", true, "abababab", true},
		{Token{Hash: h}, "", false, "abababab", true},
		{Token{Hash: h, Role: "viewer"}, "abababab", false, "", false},
	}
	for _, tt := range tests {
		if got := tt.t.AnswersTo(tt.name); got != tt.answers {
			t.Errorf("%+v answers to %q: %v", tt.t, tt.name, got)
		}
		if got := tt.t.DisplayName(); got != tt.shownAs {
			t.Errorf("%+v shown as %q", tt.t, got)
		}
		if tt.t.Legacy() != tt.isLegacy {
			t.Errorf("%+v legacy", tt.t)
		}
	}
}

func TestTokenCreateRevokeTouch(t *testing.T) {
	ctx := tctx(t)
	s := testStore(t, testBus(t, t.TempDir(), "").JetStream, Options{})
	h := tokenHash(0)
	wantErr(t, s.CreateToken(ctx, Token{Hash: h, Name: "ci"}), ErrInvalid)
	wantErr(t, s.CreateToken(ctx, Token{Hash: "xyz", Name: "ci", Role: "viewer"}), ErrInvalid)
	wantErr(t, s.CreateToken(ctx, Token{Hash: h, Name: "", Role: "viewer"}), ErrInvalid)
	must(t, s.CreateToken(ctx, Token{Hash: h, Name: "ci", Role: "publisher", Apps: []string{"com.a.b"}}))
	tk, ok := s.Snapshot().Token(h)
	if !ok || tk.Name != "ci" || tk.Role != "publisher" || len(tk.Apps) != 1 || tk.CreatedAt.IsZero() || !tk.LastUsedAt.IsZero() {
		t.Fatalf("token %+v %v", tk, ok)
	}
	wantErr(t, s.CreateToken(ctx, Token{Hash: tokenHash(1), Name: "ci", Role: "admin"}), ErrExists)
	wantErr(t, s.CreateToken(ctx, Token{Hash: h, Name: "other", Role: "admin"}), ErrExists)

	// Last use: only forward, never onto a revoked token.
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, s.TouchToken(ctx, h, at))
	must(t, s.TouchToken(ctx, h, at.Add(-time.Hour)))
	waitFor(t, func() bool { tk, _ := s.Snapshot().Token(h); return tk.LastUsedAt.Equal(at) })
	if tk, _ := s.Snapshot().Token(h); tk.Name != "ci" || tk.Role != "publisher" || len(tk.Apps) != 1 {
		t.Fatalf("touch changed the token: %+v", tk)
	}

	gone, err := s.RevokeToken(ctx, "ci")
	if err != nil || len(gone) != 1 || gone[0].Hash != h || gone[0].Role != "publisher" {
		t.Fatalf("revoke: %+v %v", gone, err)
	}
	if s.TokenHashKnown(h) {
		t.Fatal("revoked token known")
	}
	must(t, s.TouchToken(ctx, h, at.Add(time.Hour)))
	if e, err := s.last(ctx, tokenKey(h)); err != nil || e.live {
		t.Fatalf("touch brought a revoked token back: %+v %v", e, err)
	}
	_, err = s.RevokeToken(ctx, "ci")
	wantErr(t, err, ErrNotFound)
	// The name is free again.
	must(t, s.CreateToken(ctx, Token{Hash: tokenHash(2), Name: "ci", Role: "viewer"}))

	// Legacy tokens hold their names and are revoked by them.
	must(t, s.AddTokenHash(ctx, tokenHash(3), "old"))
	must(t, s.AddTokenHash(ctx, tokenHash(4), "old"))
	must(t, s.AddTokenHash(ctx, tokenHash(5), ""))
	wantErr(t, s.CreateToken(ctx, Token{Hash: tokenHash(6), Name: "old", Role: "viewer"}), ErrExists)
	gone, err = s.RevokeToken(ctx, "old")
	if err != nil || len(gone) != 2 {
		t.Fatalf("revoke legacy: %+v %v", gone, err)
	}
	gone, err = s.RevokeToken(ctx, tokenHash(5)[:8])
	if err != nil || len(gone) != 1 || gone[0].Hash != tokenHash(5) {
		t.Fatalf("revoke nameless legacy: %+v %v", gone, err)
	}
	if toks := s.Snapshot().Tokens(); len(toks) != 1 || toks[0].Hash != tokenHash(2) {
		t.Fatalf("tokens left %+v", toks)
	}
	if keys := invalidKeysOf(s); len(keys) != 0 {
		t.Fatalf("invalid keys %v", keys)
	}
}

// Two fronts creating one name: one wins, whatever the timing; the loser
// leaves nothing behind.
func TestRaceTokenName(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	for i := range 20 {
		name := fmt.Sprintf("race-%d", i)
		ha, hb := tokenHash(2*i), tokenHash(2*i+1)
		e1, e2 := race(i, func() error {
			return f.a.CreateToken(ctx, Token{Hash: ha, Name: name, Role: "viewer"})
		}, func() error {
			return f.b.CreateToken(ctx, Token{Hash: hb, Name: name, Role: "admin"})
		})
		winner, loser := ha, hb
		if !oneWins(t, i, e1, e2, ErrExists) {
			winner, loser = hb, ha
		}
		if e, err := f.a.last(ctx, tokenKey(loser)); err != nil || e.seq != 0 {
			t.Fatalf("run %d: the loser's record was written: %+v %v", i, e, err)
		}
		if e, err := f.a.last(ctx, tokenNameKey(name)); err != nil || string(e.data) != winner {
			t.Fatalf("run %d: name key %+v %v", i, e, err)
		}
	}
}
