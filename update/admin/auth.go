package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// TokenPrefix starts every token Capstan generates, so leaked tokens are
// easy to recognise in logs and secret scanners.
const TokenPrefix = "cap_"

// NewToken returns a random token: "cap_" + 32 random bytes, base64url.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
// present is false when there is no Authorization header at all.
func bearer(r *http.Request) (tok string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(rest), true
}

// authKey keys the request's authState in its context.
type authKey struct{}

// authState is who a request's token is, or why it is not valid.
type authState struct {
	p   principal
	err *apiError
}

// identify resolves the request's bearer token before routing, so each
// route's guard (and the 404/405 answers) can ask who it is. It answers
// nothing itself: a public route needs no token.
func (a *API) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := a.identifyToken(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authKey{}, st)))
	})
}

func (a *API) identifyToken(r *http.Request) *authState {
	tok, present := bearer(r)
	if !present {
		return &authState{err: newError(http.StatusUnauthorized, "missing_token", "this endpoint needs an admin token: Authorization: Bearer <token>")}
	}
	p, ok := a.tokenPrincipal(tok)
	if !ok {
		return &authState{err: newError(http.StatusUnauthorized, "invalid_token", "the admin token is not valid")}
	}
	if p.hash != "" {
		a.noteUse(p)
	}
	return &authState{p: p}
}

// tokenPrincipal compares the token's hash with the start-up token's in
// constant time, then looks it up in the snapshot (which keys tokens by
// hash, so the lookup reveals nothing about the token itself). ok is
// false for a token not valid.
func (a *API) tokenPrincipal(tok string) (p principal, ok bool) {
	if tok == "" {
		return p, false
	}
	sum := sha256.Sum256([]byte(tok))
	if a.adminHash != nil && subtle.ConstantTimeCompare(sum[:], a.adminHash) == 1 {
		return startupPrincipal, true
	}
	t, ok := a.store.Snapshot().Token(hex.EncodeToString(sum[:]))
	if !ok {
		return p, false
	}
	return principalOf(t), true
}

// authenticated returns who makes the request, or answers 401 and false.
func (a *API) authenticated(w http.ResponseWriter, r *http.Request) (principal, bool) {
	st, ok := r.Context().Value(authKey{}).(*authState)
	if !ok {
		st = a.identifyToken(r)
	}
	if st.err != nil {
		if st.err.code == "invalid_token" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capstan", error="invalid_token"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capstan"`)
		}
		writeError(w, st.err)
		return principal{}, false
	}
	return st.p, true
}

// principalFrom is the request's principal; ok false outside a guarded
// route or without a valid token.
func principalFrom(ctx context.Context) (principal, bool) {
	st, ok := ctx.Value(authKey{}).(*authState)
	if !ok || st.err != nil {
		return principal{}, false
	}
	return st.p, true
}
