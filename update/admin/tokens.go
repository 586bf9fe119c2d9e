package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// The token endpoints: who am I, and an admin's create, list and revoke.

func (a *API) whoami(w http.ResponseWriter, r *http.Request) error {
	p, _ := principalFrom(r.Context())
	writeJSON(w, http.StatusOK, WhoAmI{Name: p.name, Role: p.role, Apps: p.appList()})
	return nil
}

// tokenApps checks a new token's apps against the snapshot and returns
// them sorted without repeats (nil: every app).
func tokenApps(snap *release.Snapshot, apps []string) ([]string, error) {
	if len(apps) == 0 {
		return nil, nil
	}
	out := slices.Clone(apps)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, id := range out {
		if _, ok := snap.App(id); !ok {
			return nil, badRequest("unknown_app", fmt.Sprintf("no app %q; a token can be limited only to existing apps", id))
		}
	}
	return out, nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	var req CreateTokenRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	switch {
	case req.Role == "":
		return badRequest("role_required", fmt.Sprintf("give the token a role: %s", strings.Join(Roles, ", ")))
	case !validRole(req.Role):
		return badRequest("invalid_role", fmt.Sprintf("role %q: want one of %s", req.Role, strings.Join(Roles, ", ")))
	}
	if err := validTokenName(req.Name); err != nil {
		return err
	}
	if req.Name == StartupTokenName {
		return conflict("exists", fmt.Sprintf("the name %q is the start-up token's (--admin-token)", req.Name))
	}
	apps, err := tokenApps(a.store.Snapshot(), req.Apps)
	if err != nil {
		return err
	}
	tok, err := NewToken()
	if err != nil {
		return err
	}
	t := release.Token{Hash: hashToken(tok), Name: req.Name, Role: req.Role, Apps: apps, CreatedAt: a.now().Truncate(time.Millisecond)}
	if err := a.store.CreateToken(r.Context(), t); err != nil {
		if errors.Is(err, errStoreExists) {
			return conflict("exists", fmt.Sprintf("a token named %q already exists", req.Name))
		}
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		return fmt.Errorf("store token: %w", err)
	}
	p := principalOf(t)
	a.log.Info("admin token created", "name", t.Name, "role", t.Role, "apps", apps)
	// The hash prefix tells tokens of one name apart across revokes.
	a.record(r, audit.Entry{Change: audit.ChangeTokenCreate, Detail: fmt.Sprintf("token %q created, role %s, %s (hash %s…)", t.Name, t.Role, appsDetail(apps), t.Hash[:8])})
	writeJSON(w, http.StatusCreated, CreatedToken{Token: tok, Name: t.Name, Role: t.Role, Apps: p.appList(), CreatedAt: t.CreatedAt})
	return nil
}

func appsDetail(apps []string) string {
	if len(apps) == 0 {
		return "all apps"
	}
	return "apps " + strings.Join(apps, ", ")
}

// tokenList is the snapshot's tokens as GET /tokens shows them, sorted by
// name (legacy tokens sharing a name by creation).
func tokenList(snap *release.Snapshot) []TokenInfo {
	toks := snap.Tokens()
	out := make([]TokenInfo, 0, len(toks))
	for _, t := range toks {
		p := principalOf(t)
		out = append(out, TokenInfo{Name: p.name, Role: p.role, Apps: p.appList(), CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt})
	}
	slices.SortStableFunc(out, func(x, y TokenInfo) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return x.CreatedAt.Compare(y.CreatedAt)
	})
	return out
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, tokenList(a.store.Snapshot()))
	return nil
}

func unknownToken(name string) *apiError {
	msg := fmt.Sprintf("no token named %q", name)
	if name == StartupTokenName {
		msg += "; the start-up token (--admin-token) is revoked by restarting without it"
	}
	return notFound("unknown_token", msg)
}

// revokeToken is DELETE /tokens/{name}: every front refuses the token
// once its snapshot has the delete, this one before answering.
func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) error {
	name, err := url.PathUnescape(chi.URLParam(r, "name"))
	if err != nil || name == "" {
		return unknownToken(chi.URLParam(r, "name"))
	}
	gone, err := a.store.RevokeToken(r.Context(), name)
	if err != nil {
		if errors.Is(err, errStoreNotFound) || errors.Is(err, errStoreInvalid) {
			return unknownToken(name)
		}
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		return fmt.Errorf("revoke token: %w", err)
	}
	for _, t := range gone {
		a.log.Info("admin token revoked", "name", name)
		a.record(r, audit.Entry{Change: audit.ChangeTokenRevoke, Detail: fmt.Sprintf("token %q revoked (hash %s…)", name, t.Hash[:8])})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Recording a token's last use: asynchronously, at most once a minute per
// token from each front and not at all when the record is that fresh,
// so an API request never waits on it or fails because of it.

// touchEvery is how stale a token's last_used_at may get.
const touchEvery = time.Minute

// touchTimeout bounds one write of last_used_at.
const touchTimeout = 10 * time.Second

// usage is what this front last wrote, by token hash.
type usage struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

// touchDue reports whether a use at now is to be written, given when
// this front last wrote one (sent) and what the store has (recorded).
func touchDue(now, sent, recorded time.Time) bool {
	return now.Sub(sent) >= touchEvery && now.Sub(recorded) >= touchEvery
}

// noteUse records p's use in the background when it is due.
func (a *API) noteUse(p principal) {
	now := a.now()
	a.usage.mu.Lock()
	if !touchDue(now, a.usage.sent[p.hash], p.lastUsed) {
		a.usage.mu.Unlock()
		return
	}
	if a.usage.sent == nil {
		a.usage.sent = map[string]time.Time{}
	}
	if len(a.usage.sent) >= 1024 {
		for h, at := range a.usage.sent {
			if now.Sub(at) >= touchEvery {
				delete(a.usage.sent, h)
			}
		}
	}
	a.usage.sent[p.hash] = now
	a.usage.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
		defer cancel()
		if err := a.store.TouchToken(ctx, p.hash, now); err != nil {
			a.log.Warn("token use not recorded", "token", p.name, "err", err)
		}
	}()
}
