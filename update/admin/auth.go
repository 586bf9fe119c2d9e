package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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

// tokenValid compares the token's hash with the start-up token's in
// constant time, then asks the store (which keys tokens by hash, so the
// lookup reveals nothing about the token itself).
func (a *API) tokenValid(tok string) bool {
	if tok == "" {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	if a.adminHash != nil && subtle.ConstantTimeCompare(sum[:], a.adminHash) == 1 {
		return true
	}
	return a.store.TokenHashKnown(hashToken(tok))
}

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present := bearer(r)
		if !present {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capstan"`)
			writeError(w, newError(http.StatusUnauthorized, "missing_token", "this endpoint needs an admin token: Authorization: Bearer <token>"))
			return
		}
		if !a.tokenValid(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capstan", error="invalid_token"`)
			writeError(w, newError(http.StatusUnauthorized, "invalid_token", "the admin token is not valid"))
			return
		}
		next.ServeHTTP(w, r)
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
	if err := a.store.AddTokenHash(r.Context(), hashToken(tok), req.Name); err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	a.log.Info("admin token created", "name", req.Name)
	writeJSON(w, http.StatusCreated, CreatedToken{Token: tok, Name: req.Name})
	return nil
}
