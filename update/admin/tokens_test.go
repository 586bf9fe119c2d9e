package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/release"
)

// call sends a JSON request with token and returns status, error body
// and the raw answer.
func (e *env) call(t *testing.T, method, path, token, body string) (int, ErrorBody, []byte) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	status, _, eb, data := e.raw(t, method, "/api/v1"+path, token, ct, strings.NewReader(body))
	return status, eb, data
}

func (e *env) wantCall(t *testing.T, method, path, token, body string, status int, code string) []byte {
	t.Helper()
	got, eb, data := e.call(t, method, path, token, body)
	if got != status || eb.Error != code {
		t.Fatalf("%s %s %s: %d %s, want %d %q", method, path, body, got, data, status, code)
	}
	if code != "" && eb.Message == "" {
		t.Fatalf("%s %s: %s without message", method, path, code)
	}
	return data
}

// waitFor polls cond until it holds; the test's context bounds it.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTokenLifecycle(t *testing.T) {
	e, _ := newAuditEnv(t)
	const app = "com.example.tokens"
	e.app(t, app)

	if got := string(e.wantCall(t, "GET", "/whoami", testToken, "", 200, "")); strings.Join(strings.Fields(got), "") != `{"name":"admin","role":"admin","apps":[]}` {
		t.Fatalf("whoami start-up token: %s", got)
	}

	for _, tc := range []struct{ body, status, code string }{
		{`{"name":"ci"}`, "400", "role_required"},
		{`{}`, "400", "role_required"},
		{`{"name":"ci","role":"owner"}`, "400", "invalid_role"},
		{`{"role":"viewer"}`, "400", "invalid_name"},
		{`{"name":"a b","role":"viewer"}`, "400", "invalid_name"},
		{`{"name":"` + strings.Repeat("x", 65) + `","role":"viewer"}`, "400", "invalid_name"},
		{`{"name":"ci","role":"viewer","apps":["com.example.missing"]}`, "400", "unknown_app"},
		{`{"name":"admin","role":"viewer"}`, "409", "exists"},
		{`{"name":"ci","role":"viewer","secret":"x"}`, "400", "invalid_json_body"},
	} {
		status, eb, data := e.call(t, "POST", "/tokens", testToken, tc.body)
		if fmt.Sprint(status) != tc.status || eb.Error != tc.code || eb.Message == "" {
			t.Errorf("POST /tokens %s: %d %s, want %s %s", tc.body, status, data, tc.status, tc.code)
		}
	}

	data := e.wantCall(t, "POST", "/tokens", testToken, `{"name":"ci","role":"publisher","apps":["com.example.tokens","com.example.tokens"]}`, 201, "")
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	ci := raw["token"].(string)
	created, err := time.Parse(time.RFC3339, raw["created_at"].(string))
	if !strings.HasPrefix(ci, TokenPrefix) || raw["name"] != "ci" || raw["role"] != "publisher" || fmt.Sprint(raw["apps"]) != "["+app+"]" || err != nil || created.IsZero() || len(raw) != 5 {
		t.Fatalf("created %s (%v)", data, err)
	}
	e.wantCall(t, "POST", "/tokens", testToken, `{"name":"ci","role":"admin"}`, 409, "exists")

	ro := must[CreatedToken](t)(e.client.CreateToken(e.ctx, "ro", RoleViewer, nil))
	if ro.Apps == nil || len(ro.Apps) != 0 {
		t.Fatalf("apps of an all-apps token: %#v", ro.Apps)
	}
	unused := must[CreatedToken](t)(e.client.CreateToken(e.ctx, "zz-unused", RoleAdmin, nil))
	scoped := must[CreatedToken](t)(e.client.CreateToken(e.ctx, "app-admin", RoleAdmin, []string{app}))

	who := must[WhoAmI](t)(NewClient(e.srv.URL, ci).WhoAmI(e.ctx))
	if who.Name != "ci" || who.Role != RolePublisher || !slices.Equal(who.Apps, []string{app}) {
		t.Fatalf("whoami ci: %+v", who)
	}
	who = must[WhoAmI](t)(NewClient(e.srv.URL, ro.Token).WhoAmI(e.ctx))
	if who.Name != "ro" || who.Role != RoleViewer || who.Apps == nil || len(who.Apps) != 0 {
		t.Fatalf("whoami ro: %+v", who)
	}

	// Only an admin of every app manages tokens.
	e.wantCall(t, "POST", "/tokens", ci, `{"name":"x","role":"viewer"}`, 403, "insufficient_role")
	e.wantCall(t, "GET", "/tokens", ro.Token, "", 403, "insufficient_role")
	e.wantCall(t, "POST", "/tokens", scoped.Token, `{"name":"x","role":"viewer"}`, 403, "app_not_allowed")
	e.wantCall(t, "DELETE", "/tokens/ro", scoped.Token, "", 403, "app_not_allowed")
	e.wantCall(t, "GET", "/tokens", scoped.Token, "", 403, "app_not_allowed")

	// The list: by name, no secrets, last_used_at once used.
	data = e.wantCall(t, "GET", "/tokens", testToken, "", 200, "")
	for _, secret := range []string{ci, ro.Token, hashToken(ci), hashToken(ro.Token), `"hash"`, `"token"`} {
		if strings.Contains(string(data), secret) {
			t.Fatalf("token list holds %q: %s", secret, data)
		}
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r["name"].(string))
		if r["name"] == "zz-unused" {
			if _, ok := r["last_used_at"]; ok || len(r) != 4 {
				t.Fatalf("unused token row %v", r)
			}
		}
	}
	if !slices.Equal(names, []string{"app-admin", "ci", "ro", "zz-unused"}) {
		t.Fatalf("names %v", names)
	}
	waitFor(t, e.ctx, "ci's last use recorded", func() bool {
		toks := must[[]TokenInfo](t)(e.client.ListTokens(e.ctx))
		return toks[1].Name == "ci" && !toks[1].LastUsedAt.IsZero()
	})
	toks := must[[]TokenInfo](t)(e.client.ListTokens(e.ctx))
	if c := toks[1]; c.Role != RolePublisher || !slices.Equal(c.Apps, []string{app}) || !c.CreatedAt.Equal(created) || c.LastUsedAt.Before(c.CreatedAt) {
		t.Fatalf("ci listed as %+v", c)
	}

	// Revoke: refused at once; the name can then be used again.
	if err := e.client.RevokeToken(e.ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	_, err = NewClient(e.srv.URL, ci).WhoAmI(e.ctx)
	wantAPIError(t, err, 401, "invalid_token")
	wantAPIError(t, e.client.RevokeToken(e.ctx, "ci"), 404, "unknown_token")
	wantAPIError(t, e.client.RevokeToken(e.ctx, "admin"), 404, "unknown_token")
	wantAPIError(t, e.client.RevokeToken(e.ctx, "no such"), 404, "unknown_token")
	again := must[CreatedToken](t)(e.client.CreateToken(e.ctx, "ci", RoleViewer, nil))
	if again.Token == ci {
		t.Fatal("same secret twice")
	}
	must[WhoAmI](t)(NewClient(e.srv.URL, again.Token).WhoAmI(e.ctx))
	if err := e.client.RevokeToken(e.ctx, unused.Name); err != nil {
		t.Fatal(err)
	}

	entries := must[[]audit.Entry](t)(e.client.Audit(e.ctx, AuditQuery{}))
	var changes []string
	for _, en := range entries {
		if strings.HasPrefix(en.Change, "token_") {
			changes = append(changes, en.Change+" "+strings.Fields(en.Detail)[1]+" "+en.Actor)
			if strings.Contains(en.Detail, TokenPrefix) {
				t.Errorf("secret in %q", en.Detail)
			}
		}
	}
	want := []string{
		`token_create "ci" token:admin`, `token_create "ro" token:admin`, `token_create "zz-unused" token:admin`, `token_create "app-admin" token:admin`,
		`token_revoke "ci" token:admin`, `token_create "ci" token:admin`, `token_revoke "zz-unused" token:admin`,
	}
	if !slices.Equal(changes, want) {
		t.Fatalf("token audit entries:\n%s\nwant\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
}

// A token limited to some apps sees and changes only those.
func TestTokenAppScope(t *testing.T) {
	e, _ := newAuditEnv(t)
	const a, b, c = "com.example.a", "com.example.b", "com.example.c"
	for _, app := range []string{a, b, c} {
		e.app(t, app)
		e.bundle(t, app, "1.0.0")
	}
	pub := must[CreatedToken](t)(e.client.CreateToken(e.ctx, "ab", RolePublisher, []string{b, a}))
	if !slices.Equal(pub.Apps, []string{a, b}) {
		t.Fatalf("apps %v", pub.Apps)
	}
	pc := NewClient(e.srv.URL, pub.Token)
	apps := must[[]release.App](t)(pc.ListApps(e.ctx))
	if len(apps) != 2 || apps[0].ID != a || apps[1].ID != b {
		t.Fatalf("apps %+v", apps)
	}
	must[release.App](t)(pc.GetApp(e.ctx, b))
	must[release.Bundle](t)(pc.UploadBundle(e.ctx, a, BundleMetadata{Version: "1.1.0", ExternalURL: "https://cdn.example.com/a.zip", Checksum: strings.Repeat("0", 64)}, nil))
	_, err := pc.GetApp(e.ctx, c)
	wantAPIError(t, err, 403, "app_not_allowed")
	_, err = pc.ListBundles(e.ctx, c)
	wantAPIError(t, err, 403, "app_not_allowed")
	_, err = pc.SetChannel(e.ctx, c, "production", ChannelPatch{Bundle: new("1.0.0")})
	wantAPIError(t, err, 403, "app_not_allowed")
	wantAPIError(t, pc.DeleteApp(e.ctx, a), 403, "insufficient_role")
	_, err = pc.GetApp(e.ctx, "com.example.missing")
	wantAPIError(t, err, 403, "app_not_allowed")

	// The audit log: only entries of its apps, newest across them.
	entries := must[[]audit.Entry](t)(pc.Audit(e.ctx, AuditQuery{}))
	all := must[[]audit.Entry](t)(e.client.Audit(e.ctx, AuditQuery{}))
	var mine []audit.Entry
	for _, en := range all {
		if en.App == a || en.App == b {
			mine = append(mine, en)
		}
	}
	if len(entries) != len(mine) || len(mine) != 5 {
		t.Fatalf("scoped audit %d entries, want %d: %+v", len(entries), len(mine), entries)
	}
	for i := range mine {
		if entries[i].Seq != mine[i].Seq {
			t.Fatalf("entry %d: %+v, want %+v", i, entries[i], mine[i])
		}
	}
	last := must[[]audit.Entry](t)(pc.Audit(e.ctx, AuditQuery{Limit: 2}))
	if len(last) != 2 || last[1].Seq != mine[4].Seq || last[0].Seq != mine[3].Seq {
		t.Fatalf("limit 2: %+v", last)
	}
	if got := must[[]audit.Entry](t)(pc.Audit(e.ctx, AuditQuery{App: b})); len(got) != 2 || got[0].App != b {
		t.Fatalf("app b: %+v", got)
	}
	_, err = pc.Audit(e.ctx, AuditQuery{App: c})
	wantAPIError(t, err, 403, "app_not_allowed")

	// An admin of one app manages that app, not apps in general.
	adm := NewClient(e.srv.URL, must[CreatedToken](t)(e.client.CreateToken(e.ctx, "c-admin", RoleAdmin, []string{c})).Token)
	_, err = adm.CreateApp(e.ctx, "com.example.d", "")
	wantAPIError(t, err, 403, "app_not_allowed")
	must[release.App](t)(adm.UpdateApp(e.ctx, c, UpdateAppRequest{Name: new("C")}))
	if err := adm.DeleteApp(e.ctx, c); err != nil {
		t.Fatal(err)
	}
}

// Tokens stored before roles existed are admins of every app, keep their
// names, and are listed and revoked like the others.
func TestTokenLegacy(t *testing.T) {
	e := newEnv(t, nil)
	old, nameless := "legacy-secret-1", "legacy-secret-2"
	if err := e.store.AddTokenHash(e.ctx, hashToken(old), "old"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddTokenHash(e.ctx, hashToken(nameless), ""); err != nil {
		t.Fatal(err)
	}
	short := hashToken(nameless)[:8]
	for tok, name := range map[string]string{old: "old", nameless: short} {
		who := must[WhoAmI](t)(NewClient(e.srv.URL, tok).WhoAmI(e.ctx))
		if who.Name != name || who.Role != RoleAdmin || len(who.Apps) != 0 {
			t.Fatalf("whoami %s: %+v", name, who)
		}
	}
	must[CreatedToken](t)(NewClient(e.srv.URL, old).CreateToken(e.ctx, "new", RoleViewer, nil))
	toks := must[[]TokenInfo](t)(e.client.ListTokens(e.ctx))
	var got []string
	for _, tk := range toks {
		got = append(got, tk.Name+":"+tk.Role)
	}
	want := []string{short + ":admin", "new:viewer", "old:admin"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	_, err := e.client.CreateToken(e.ctx, "old", RoleViewer, nil)
	wantAPIError(t, err, 409, "exists")
	for tok, name := range map[string]string{old: "old", nameless: short} {
		if err := e.client.RevokeToken(e.ctx, name); err != nil {
			t.Fatalf("revoke %s: %v", name, err)
		}
		_, err := NewClient(e.srv.URL, tok).WhoAmI(e.ctx)
		wantAPIError(t, err, 401, "invalid_token")
	}
	must[CreatedToken](t)(e.client.CreateToken(e.ctx, "old", RoleViewer, nil))
}

// Two fronts creating one name at once: exactly one gets it.
func TestTokenNameRace(t *testing.T) {
	ctx, a, b := twoFronts(t)
	seen := outcomes(t, func(i int) (func() error, func() error) {
		name := fmt.Sprintf("race-%d", i)
		create := func(c *Client, role string) func() error {
			return func() error { _, err := c.CreateToken(ctx, name, role, nil); return err }
		}
		return create(a, RoleViewer), create(b, RolePublisher)
	}, [2]string{"ok", "409 exists"}, [2]string{"409 exists", "ok"})
	if seen[[2]string{"ok", "409 exists"}]+seen[[2]string{"409 exists", "ok"}] != raceRuns {
		t.Fatalf("outcomes %v", seen)
	}
	for _, c := range []*Client{a, b} {
		waitFor(t, ctx, "both fronts list every token", func() bool {
			return len(must[[]TokenInfo](t)(c.ListTokens(ctx))) == raceRuns
		})
	}
}

// A token revoked through one front is refused by the other once its
// snapshot has the delete, and at once by the front that revoked it.
func TestTokenRevokeEveryFront(t *testing.T) {
	ctx, a, b := twoFronts(t)
	tok := must[CreatedToken](t)(a.CreateToken(ctx, "ci", RoleViewer, nil))
	onA, onB := NewClient(a.BaseURL, tok.Token), NewClient(b.BaseURL, tok.Token)
	waitFor(t, ctx, "front b knows the token", func() bool { _, err := onB.WhoAmI(ctx); return err == nil })
	if err := b.RevokeToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	_, err := onB.WhoAmI(ctx)
	wantAPIError(t, err, 401, "invalid_token")
	waitFor(t, ctx, "front a refuses the token", func() bool { _, err := onA.WhoAmI(ctx); return IsCode(err, "invalid_token") })
	wantAPIError(t, a.RevokeToken(ctx, "ci"), 404, "unknown_token")
}

// slowTouch is a store whose last-use writes hang until released.
type slowTouch struct {
	*release.Store
	mu      sync.Mutex
	touches []time.Time
	release chan struct{}
}

func (s *slowTouch) TouchToken(ctx context.Context, hash string, at time.Time) error {
	s.mu.Lock()
	s.touches = append(s.touches, at)
	s.mu.Unlock()
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.TouchToken(ctx, hash, at)
}

func (s *slowTouch) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.touches)
}

// last_used_at is written in the background, at most once a minute per
// token: a request never waits for it.
func TestTokenLastUsed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	bs, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bs.Close)
	st, err := release.Open(ctx, bs.JetStream, release.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	slow := &slowTouch{Store: st, release: make(chan struct{})}
	api := New(Config{Store: slow, AdminToken: testToken})
	var clock sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	api.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }
	r := chi.NewRouter()
	r.Mount("/api/v1", api.Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	admin := NewClient(srv.URL, testToken)
	tok := must[CreatedToken](t)(admin.CreateToken(ctx, "ci", RoleViewer, nil))
	ci := NewClient(srv.URL, tok.Token)

	// The start-up token has no record to write.
	must[WhoAmI](t)(admin.WhoAmI(ctx))
	if slow.count() != 0 {
		t.Fatalf("start-up token touched")
	}
	// Requests answer while the write hangs; one write per minute.
	for range 3 {
		must[WhoAmI](t)(ci.WhoAmI(ctx))
	}
	// The write starts in its own goroutine after the answer.
	waitFor(t, ctx, "the first use is written", func() bool { return slow.count() > 0 })
	if slow.count() != 1 {
		t.Fatalf("%d writes after 3 requests in one minute", slow.count())
	}
	advance(59 * time.Second)
	must[WhoAmI](t)(ci.WhoAmI(ctx))
	if slow.count() != 1 {
		t.Fatalf("%d writes within a minute", slow.count())
	}
	close(slow.release)
	first := now.Add(-59 * time.Second)
	waitFor(t, ctx, "the last use lands", func() bool {
		tk, ok := st.Snapshot().Token(hashToken(tok.Token))
		return ok && tk.LastUsedAt.Equal(first)
	})
	advance(time.Second)
	must[WhoAmI](t)(ci.WhoAmI(ctx))
	waitFor(t, ctx, "the next minute's use lands", func() bool {
		tk, _ := st.Snapshot().Token(hashToken(tok.Token))
		return tk.LastUsedAt.Equal(first.Add(time.Minute))
	})
	if got := must[[]TokenInfo](t)(admin.ListTokens(ctx)); len(got) != 1 || !got[0].LastUsedAt.Equal(first.Add(time.Minute)) {
		t.Fatalf("list %+v", got)
	}
	// A store whose record is fresh (another front wrote it) is not
	// written again, even by a front that never wrote it.
	api.usage.mu.Lock()
	api.usage.sent = nil
	api.usage.mu.Unlock()
	n := slow.count()
	must[WhoAmI](t)(ci.WhoAmI(ctx))
	if slow.count() != n {
		t.Fatal("a fresh record written again")
	}
}
