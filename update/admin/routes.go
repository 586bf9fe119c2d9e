package admin

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// route is one admin endpoint: who may call it and what answers it.
type route struct {
	method string
	// pattern is chi's, relative to the API root (/api/v1).
	pattern string
	// role is the least token role the route needs; Public: no token.
	role string
	// allApps: the token must not be limited to some apps.
	allApps bool
	// action completes "role viewer may not …" in a 403.
	action  string
	handler func(a *API, w http.ResponseWriter, r *http.Request) error
}

// hasApp reports a route of one app: a token limited to other apps gets
// 403 app_not_allowed on it.
func (rt route) hasApp() bool { return strings.Contains(rt.pattern, "{app}") }

// routeTable is every admin endpoint and the role it needs; routes()
// registers exactly these, so adding an endpoint is adding a row.
// roles_test.go calls every row with every role.
var routeTable = []route{
	// Public rows (role Public, e.g. GET /openapi.json) go here: they are
	// answered without a token, and a token sent along is not checked.
	{"GET", openAPIPath, Public, false, "read the API document", (*API).serveOpenAPI},

	{"GET", "/whoami", RoleViewer, false, "read who it is", (*API).whoami},

	{"POST", "/tokens", RoleAdmin, true, "create tokens", (*API).createToken},
	{"GET", "/tokens", RoleAdmin, true, "list tokens", (*API).listTokens},
	{"DELETE", "/tokens/{name}", RoleAdmin, true, "revoke tokens", (*API).revokeToken},

	{"POST", "/apps", RoleAdmin, true, "create apps", (*API).createApp},
	{"GET", "/apps", RoleViewer, false, "list apps", (*API).listApps},
	{"GET", "/apps/{app}", RoleViewer, false, "read apps", (*API).getApp},
	{"PATCH", "/apps/{app}", RoleAdmin, false, "change apps", (*API).updateApp},
	{"DELETE", "/apps/{app}", RoleAdmin, false, "delete apps", (*API).deleteApp},

	{"GET", "/apps/{app}/bundles", RoleViewer, false, "list bundles", (*API).listBundles},
	{"POST", "/apps/{app}/bundles", RolePublisher, false, "upload bundles", (*API).uploadBundle},
	{"GET", "/apps/{app}/bundles/{version}", RoleViewer, false, "read bundles", (*API).getBundle},
	{"DELETE", "/apps/{app}/bundles/{version}", RolePublisher, false, "delete bundles", (*API).deleteBundle},
	// Bundle retention: deletes unused bundles past the newest N, never
	// one a channel or rollout uses.
	{"POST", "/apps/{app}/bundles/cleanup", RolePublisher, false, "clean up bundles", (*API).cleanupBundles},

	{"GET", "/apps/{app}/channels", RoleViewer, false, "list channels", (*API).listChannels},
	{"GET", "/apps/{app}/channels/{name}", RoleViewer, false, "read channels", (*API).getChannel},
	{"PUT", "/apps/{app}/channels/{name}", RolePublisher, false, "change channels", (*API).putChannel},
	{"DELETE", "/apps/{app}/channels/{name}", RolePublisher, false, "delete channels", (*API).deleteChannel},
	{"GET", "/apps/{app}/channels/{name}/rollout", RoleViewer, false, "read rollouts", (*API).getRollout},
	{"POST", "/apps/{app}/channels/{name}/rollout/{action}", RolePublisher, false, "control rollouts", (*API).controlRollout},

	{"GET", "/apps/{app}/devices", RoleViewer, false, "list devices", (*API).listDevices},
	{"GET", "/apps/{app}/devices/{device}/channel", RoleViewer, false, "read device channel pins", (*API).getDeviceChannel},
	{"PUT", "/apps/{app}/devices/{device}/channel", RolePublisher, false, "pin devices to channels", (*API).setDeviceChannel},
	{"DELETE", "/apps/{app}/devices/{device}/channel", RolePublisher, false, "unpin devices", (*API).unsetDeviceChannel},

	{"GET", "/audit", RoleViewer, false, "read the audit log", (*API).listAudit},

	// Fleet reads from ClickHouse: one device, release health, health over time.
	{"GET", "/apps/{app}/devices/{device}", RoleViewer, false, "look devices up", (*API).getDevice},
	{"GET", "/apps/{app}/health", RoleViewer, false, "read release health", (*API).getHealth},
	{"GET", "/apps/{app}/health/timeline", RoleViewer, false, "read release health", (*API).getTimeline},
}

// routes registers every row of routeTable on r, which must run identify
// first; each row checks its role and apps before its handler runs.
func (a *API) routes(r chi.Router) { a.register(r, routeTable) }

func (a *API) register(r chi.Router, table []route) {
	for _, rt := range table {
		fn := rt.handler
		r.With(a.guard(rt)).Method(rt.method, rt.pattern, a.handle(func(w http.ResponseWriter, r *http.Request) error {
			return fn(a, w, r)
		}))
	}
}

// guard answers 401 or 403 unless the request may call rt.
func (a *API) guard(rt route) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rt.role == Public {
				next.ServeHTTP(w, r)
				return
			}
			p, ok := a.authenticated(w, r)
			if !ok {
				return
			}
			if e := authorize(p, rt, chi.URLParam(r, "app")); e != nil {
				writeError(w, e)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
