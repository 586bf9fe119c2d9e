package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

// Roles of admin tokens, each allowed what the one before it is and more.
const (
	// RoleViewer reads everything (every GET but GET /tokens).
	RoleViewer = "viewer"
	// RolePublisher also uploads and deletes bundles, sets and deletes
	// channels, controls rollouts and pins devices to channels.
	RolePublisher = "publisher"
	// RoleAdmin may do everything: apps create/patch/delete and tokens.
	RoleAdmin = "admin"
)

// Public is the role of a route that needs no token at all.
const Public = "public"

// Roles lists the token roles, least first.
var Roles = []string{RoleViewer, RolePublisher, RoleAdmin}

// roleRank orders roles; 0 for Public and for roles this server does not
// know (which may then do nothing).
func roleRank(role string) int {
	return slices.Index(Roles, role) + 1
}

// validRole reports whether role can be given to a token.
func validRole(role string) bool { return roleRank(role) > 0 }

// StartupTokenName is the name of the --admin-token: an admin of every app.
const StartupTokenName = "admin"

const maxTokenNameLen = 64

var tokenNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func validTokenName(name string) error {
	switch {
	case name == "":
		return badRequest("invalid_name", "token name is required")
	case len(name) > maxTokenNameLen:
		return badRequest("invalid_name", fmt.Sprintf("token name longer than %d characters", maxTokenNameLen))
	case !tokenNameRe.MatchString(name):
		return badRequest("invalid_name", fmt.Sprintf("token name %q may hold only letters, digits, '.', '_' and '-'", name))
	}
	return nil
}

// principal is who a request's token is.
type principal struct {
	name string
	role string
	// apps limits the token to these apps; empty means every app.
	apps []string
	// hash is the store token's SHA-256 hex; "" for the start-up token.
	hash string
	// lastUsed is the store's record of the token's last use.
	lastUsed time.Time
}

// startupPrincipal is the --admin-token.
var startupPrincipal = principal{name: StartupTokenName, role: RoleAdmin}

// principalOf is the store token t as a principal: a legacy token (no
// role) is an admin of every app.
func principalOf(t release.Token) principal {
	p := principal{name: t.DisplayName(), role: t.Role, apps: t.Apps, hash: t.Hash, lastUsed: t.LastUsedAt}
	if t.Legacy() {
		p.role, p.apps = RoleAdmin, nil
	}
	return p
}

// actor is how the audit log and rollout pauses name p.
func (p principal) actor() string { return "token:" + p.name }

// scoped reports a token limited to some apps.
func (p principal) scoped() bool { return len(p.apps) > 0 }

// allows reports whether p may act on app.
func (p principal) allows(app string) bool {
	return !p.scoped() || (app != "" && slices.Contains(p.apps, app))
}

// appList is p's apps as the API shows them: never null.
func (p principal) appList() []string {
	if p.apps == nil {
		return []string{}
	}
	return p.apps
}

// authorize decides whether p may call rt on app (the route's {app}, ""
// when it has none): nil, or the 403 to answer. The role is checked
// before the apps.
func authorize(p principal, rt route, app string) *apiError {
	if rt.role == Public {
		return nil
	}
	if roleRank(p.role) < roleRank(rt.role) {
		return forbidden("insufficient_role", fmt.Sprintf("role %s may not %s", p.role, rt.action))
	}
	if !p.scoped() {
		return nil
	}
	if rt.allApps {
		return forbidden("app_not_allowed", fmt.Sprintf("token %s is limited to %s and may not %s; that needs a token for every app", p.name, strings.Join(p.apps, ", "), rt.action))
	}
	if rt.hasApp() && !p.allows(app) {
		return forbidden("app_not_allowed", fmt.Sprintf("token %s may not access app %q; it is limited to %s", p.name, app, strings.Join(p.apps, ", ")))
	}
	return nil
}

func forbidden(code, msg string) *apiError { return newError(http.StatusForbidden, code, msg) }
