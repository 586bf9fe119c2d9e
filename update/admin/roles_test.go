package admin

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// The route table is the only place a route's role lives: chi must have
// exactly its rows, each well formed.
func TestRoleTableCoversRouter(t *testing.T) {
	a := New(Config{Store: (*release.Store)(nil)})
	r := chi.NewRouter()
	a.routes(r)
	walked := map[string]bool{}
	err := chi.Walk(r, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		walked[method+" "+pattern] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, rt := range routeTable {
		key := rt.method + " " + rt.pattern
		if rows[key] {
			t.Errorf("%s: two rows", key)
		}
		rows[key] = true
		if !walked[key] {
			t.Errorf("%s: in the table, not in the router", key)
		}
		if rt.role != Public && !validRole(rt.role) {
			t.Errorf("%s: role %q", key, rt.role)
		}
		if rt.action == "" || rt.handler == nil {
			t.Errorf("%s: no action or handler", key)
		}
		if rt.method == http.MethodGet && rt.role != RoleViewer && rt.role != Public && rt.pattern != "/tokens" {
			t.Errorf("%s: a read needs %s, want viewer", key, rt.role)
		}
	}
	// The roles the API documents; rows added later need no entry here.
	contract := map[string]string{
		"GET /whoami": "viewer", "POST /tokens": "admin*", "GET /tokens": "admin*", "DELETE /tokens/{name}": "admin*",
		"POST /apps": "admin*", "GET /apps": "viewer", "GET /apps/{app}": "viewer", "PATCH /apps/{app}": "admin", "DELETE /apps/{app}": "admin",
		"GET /apps/{app}/bundles": "viewer", "POST /apps/{app}/bundles": "publisher",
		"GET /apps/{app}/bundles/{version}": "viewer", "DELETE /apps/{app}/bundles/{version}": "publisher",
		"GET /apps/{app}/channels": "viewer", "GET /apps/{app}/channels/{name}": "viewer",
		"PUT /apps/{app}/channels/{name}": "publisher", "DELETE /apps/{app}/channels/{name}": "publisher",
		"GET /apps/{app}/channels/{name}/rollout": "viewer", "POST /apps/{app}/channels/{name}/rollout/{action}": "publisher",
		"GET /apps/{app}/devices": "viewer", "GET /apps/{app}/devices/{device}/channel": "viewer",
		"PUT /apps/{app}/devices/{device}/channel": "publisher", "DELETE /apps/{app}/devices/{device}/channel": "publisher",
		"GET /audit": "viewer",
	}
	for _, rt := range routeTable {
		key := rt.method + " " + rt.pattern
		got := rt.role
		if rt.allApps {
			got += "*"
		}
		if want, ok := contract[key]; ok && got != want {
			t.Errorf("%s: role %s, want %s", key, got, want)
		}
		delete(contract, key)
	}
	for key := range contract {
		t.Errorf("%s: documented, not in the table", key)
	}
	for key := range walked {
		if !rows[key] {
			t.Errorf("%s: in the router, not in the table", key)
		}
	}
	// The API as mounted (Handler, Routes) has the same routes.
	walked2 := 0
	if err := chi.Walk(a.Handler().(chi.Routes), func(string, string, http.Handler, ...func(http.Handler) http.Handler) error {
		walked2++
		return nil
	}); err != nil || walked2 != len(routeTable) {
		t.Fatalf("Handler has %d routes, table %d (%v)", walked2, len(routeTable), err)
	}
}

// Every route in the table, called with every kind of token, answers 403
// exactly when the table says so.
func TestRoleEveryRoute(t *testing.T) {
	e, _ := newAuditEnv(t)
	const app, other = "com.example.roles", "com.example.other"
	e.app(t, app)
	e.app(t, other)
	type tok struct {
		name, role string
		apps       []string
		secret     string
	}
	toks := []*tok{
		{name: "startup", role: RoleAdmin, secret: testToken},
		{name: "viewer", role: RoleViewer},
		{name: "publisher", role: RolePublisher},
		{name: "admin", role: RoleAdmin},
		{name: "admin-other", role: RoleAdmin, apps: []string{other}},
		{name: "publisher-own", role: RolePublisher, apps: []string{app}},
		{name: "viewer-own", role: RoleViewer, apps: []string{app, other}},
	}
	for _, tk := range toks {
		if tk.secret != "" {
			continue
		}
		name := "t-" + tk.name
		tk.secret = must[CreatedToken](t)(e.client.CreateToken(e.ctx, name, tk.role, tk.apps)).Token
	}
	params := map[string]string{"app": app, "version": "9.9.9", "name": "nochannel", "action": "pause", "device": "dev-1"}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for _, rt := range routeTable {
		path := param.ReplaceAllStringFunc(rt.pattern, func(m string) string {
			if v, ok := params[m[1:len(m)-1]]; ok {
				return v
			}
			return "x"
		})
		if rt.pattern == "/tokens/{name}" {
			path = "/tokens/nobody"
		}
		for _, tk := range toks {
			var want string
			switch {
			case rt.role == Public:
			case roleRank(tk.role) < roleRank(rt.role):
				want = "insufficient_role"
			case len(tk.apps) > 0 && (rt.allApps || strings.Contains(rt.pattern, "{app}") && !slices.Contains(tk.apps, app)):
				want = "app_not_allowed"
			}
			// Bodies are empty, so allowed calls mostly fail validation or
			// find nothing; once an admin's DELETE of the app went through,
			// later calls on it answer 404, which is no 403 either.
			ct := ""
			if rt.method != http.MethodGet && rt.method != http.MethodDelete {
				ct = "application/json"
			}
			status, _, eb, body := e.raw(t, rt.method, "/api/v1"+path, tk.secret, ct, strings.NewReader(""))
			got := ""
			if status == http.StatusForbidden {
				got = eb.Error
				if eb.Message == "" {
					t.Errorf("%s %s as %s: 403 without message", rt.method, path, tk.name)
				}
			}
			if got != want {
				t.Errorf("%s %s as %s: %d %s, want 403 %q", rt.method, path, tk.name, status, body, want)
			}
			if want == "insufficient_role" && eb.Message != "role "+tk.role+" may not "+rt.action {
				t.Errorf("%s %s as %s: message %q", rt.method, path, tk.name, eb.Message)
			}
			if status == http.StatusUnauthorized {
				t.Fatalf("%s %s as %s: 401 %s", rt.method, path, tk.name, body)
			}
		}
	}
}

// A Public row answers without a token, and with a bad one.
func TestRolePublicRow(t *testing.T) {
	a := New(Config{Store: newEnv(t, nil).store, AdminToken: testToken})
	r := chi.NewRouter()
	r.Use(a.identify)
	a.register(r, []route{{"GET", "/openapi.json", Public, false, "read the API description", func(_ *API, w http.ResponseWriter, _ *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"openapi": "3.1.0"})
		return nil
	}}})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, tok := range []string{"", "wrong", testToken} {
		req, _ := http.NewRequest("GET", srv.URL+"/openapi.json", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("token %q: %d", tok, resp.StatusCode)
		}
	}
}

func TestRoleAuthorize(t *testing.T) {
	viewer := principal{name: "v", role: RoleViewer}
	pub := principal{name: "p", role: RolePublisher, apps: []string{"com.a.b"}}
	admin := principal{name: "a", role: RoleAdmin}
	scopedAdmin := principal{name: "s", role: RoleAdmin, apps: []string{"com.a.b"}}
	odd := principal{name: "o", role: "owner"}
	read := route{method: "GET", pattern: "/apps/{app}", role: RoleViewer, action: "read apps"}
	upload := route{method: "POST", pattern: "/apps/{app}/bundles", role: RolePublisher, action: "upload bundles"}
	create := route{method: "POST", pattern: "/apps", role: RoleAdmin, allApps: true, action: "create apps"}
	list := route{method: "GET", pattern: "/apps", role: RoleViewer, action: "list apps"}
	public := route{method: "GET", pattern: "/openapi.json", role: Public, action: "read the API"}
	tests := []struct {
		p    principal
		rt   route
		app  string
		want string
	}{
		{viewer, read, "com.a.b", ""},
		{viewer, upload, "com.a.b", "insufficient_role"},
		{viewer, create, "", "insufficient_role"},
		{viewer, public, "", ""},
		{pub, upload, "com.a.b", ""},
		{pub, upload, "com.c.d", "app_not_allowed"},
		{pub, upload, "", "app_not_allowed"},
		{pub, read, "com.c.d", "app_not_allowed"},
		{pub, list, "", ""},
		{pub, create, "", "insufficient_role"},
		{admin, create, "", ""},
		{admin, upload, "com.c.d", ""},
		{scopedAdmin, create, "", "app_not_allowed"},
		{scopedAdmin, upload, "com.a.b", ""},
		{odd, read, "com.a.b", "insufficient_role"},
		{odd, public, "", ""},
		{startupPrincipal, create, "", ""},
	}
	for _, tt := range tests {
		e := authorize(tt.p, tt.rt, tt.app)
		got := ""
		if e != nil {
			got = e.code
			if e.status != http.StatusForbidden || e.message == "" {
				t.Errorf("%+v %s: %+v", tt.p, tt.rt.pattern, e)
			}
		}
		if got != tt.want {
			t.Errorf("%s %s on %q as %+v: %q, want %q", tt.rt.method, tt.rt.pattern, tt.app, tt.p, got, tt.want)
		}
	}
	if e := authorize(viewer, upload, "com.a.b"); e.message != "role viewer may not upload bundles" {
		t.Errorf("message %q", e.message)
	}
}

func TestRolePrincipalOf(t *testing.T) {
	h := strings.Repeat("ab", 32)
	tests := []struct {
		t    release.Token
		want principal
	}{
		{release.Token{Hash: h, Name: "ci", Role: RolePublisher, Apps: []string{"com.a.b"}}, principal{name: "ci", role: RolePublisher, apps: []string{"com.a.b"}, hash: h}},
		{release.Token{Hash: h, Name: "old"}, principal{name: "old", role: RoleAdmin, hash: h}},
		// Legacy tokens are admins of every app, whatever else they hold.
		{release.Token{Hash: h, Name: "", Apps: []string{"com.a.b"}}, principal{name: "abababab", role: RoleAdmin, hash: h}},
	}
	for _, tt := range tests {
		got := principalOf(tt.t)
		if got.name != tt.want.name || got.role != tt.want.role || !slices.Equal(got.apps, tt.want.apps) || got.hash != tt.want.hash {
			t.Errorf("%+v: %+v, want %+v", tt.t, got, tt.want)
		}
	}
}

func TestRoleValidTokenName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"ci", true}, {"release-bot_2.prod", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"a b", false}, {"a/b", false}, {"é", false}, {"a\n", false},
	} {
		if err := validTokenName(tt.name); (err == nil) != tt.ok {
			t.Errorf("%q: %v", tt.name, err)
		} else if ae, _ := err.(*apiError); err != nil && (ae == nil || ae.code != "invalid_name") {
			t.Errorf("%q: %v", tt.name, err)
		}
	}
}

func TestRoleTouchDue(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var never time.Time
	for _, tt := range []struct {
		sent, recorded time.Time
		want           bool
	}{
		{never, never, true},
		{now.Add(-time.Minute), never, true},
		{now.Add(-59 * time.Second), never, false},
		{never, now.Add(-30 * time.Second), false},
		{never, now.Add(-2 * time.Minute), true},
		{never, now.Add(time.Hour), false}, // another front's clock ahead
	} {
		if got := touchDue(now, tt.sent, tt.recorded); got != tt.want {
			t.Errorf("sent %v recorded %v: %v", tt.sent, tt.recorded, got)
		}
	}
}

func TestRoleNewestAudit(t *testing.T) {
	es := func(seqs ...uint64) []audit.Entry {
		var out []audit.Entry
		for _, s := range seqs {
			out = append(out, audit.Entry{Seq: s})
		}
		return out
	}
	seqs := func(es []audit.Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	if got := seqs(newestAudit(es(5, 1, 9, 3), 2)); !slices.Equal(got, []uint64{5, 9}) {
		t.Errorf("limit 2: %v", got)
	}
	if got := seqs(newestAudit(es(5, 1, 9, 3), 0)); !slices.Equal(got, []uint64{1, 3, 5, 9}) {
		t.Errorf("limit 0: %v", got)
	}
}
