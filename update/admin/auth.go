package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/capstan-io/capstan/audit"
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

// tokenActor compares the token's hash with the start-up token's in
// constant time, then asks the store (which keys tokens by hash, so the
// lookup reveals nothing about the token itself). It returns who the
// token is (see Actor), ok false for a token not valid.
func (a *API) tokenActor(tok string) (actor string, ok bool) {
	if tok == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(tok))
	if a.adminHash != nil && subtle.ConstantTimeCompare(sum[:], a.adminHash) == 1 {
		return ActorAdmin, true
	}
	h := hashToken(tok)
	if !a.store.TokenHashKnown(h) {
		return "", false
	}
	return tokenActor(a.store.Snapshot(), h), true
}

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present := bearer(r)
		if !present {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capstan"`)
			writeError(w, newError(http.StatusUnauthorized, "missing_token", "this endpoint needs an admin token: Authorization: Bearer <token>"))
			return
		}
		actor, ok := a.tokenActor(tok)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capstan", error="invalid_token"`)
			writeError(w, newError(http.StatusUnauthorized, "invalid_token", "the admin token is not valid"))
			return
		}
		next.ServeHTTP(w, r.WithContext(withActor(r.Context(), actor)))
	})
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	var req CreateTokenRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if len(req.Name) > maxTokenNameLen {
		return badRequest("invalid_name", fmt.Sprintf("token name longer than %d characters", maxTokenNameLen))
	}
	tok, err := NewToken()
	if err != nil {
		return err
	}
	hash := hashToken(tok)
	if err := a.store.AddTokenHash(r.Context(), hash, req.Name); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	a.log.Info("admin token created", "name", req.Name)
	// The hash prefix names a token without a name in later entries.
	a.record(r, audit.Entry{Change: audit.ChangeTokenCreate, Detail: fmt.Sprintf("token %q created (hash %s…)", req.Name, hash[:8])})
	writeJSON(w, http.StatusCreated, CreatedToken{Token: tok, Name: req.Name})
	return nil
}
