package admin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// newAuditEnv is newEnv with an audit log on the same JetStream.
func newAuditEnv(t *testing.T) (*env, *audit.Log) {
	t.Helper()
	var log *audit.Log
	e := newEnvJS(t, func(c *Config, js jetstream.JetStream) {
		var err error
		if log, err = audit.Open(context.Background(), js, audit.Options{}); err != nil {
			t.Fatal(err)
		}
		c.Audit = log
	})
	return e, log
}

func TestAuditManualChanges(t *testing.T) {
	e, _ := newAuditEnv(t)
	ctx := e.ctx
	const app = "com.example.audit"

	tok := must[CreatedToken](t)(e.client.CreateToken(ctx, "ci", RoleAdmin, nil))
	anon := must[CreatedToken](t)(e.client.CreateToken(ctx, "bot", RoleAdmin, nil))
	ci := NewClient(e.srv.URL, tok.Token)
	nameless := NewClient(e.srv.URL, anon.Token)

	must[release.App](t)(ci.CreateApp(ctx, app, "Audit"))
	must[release.Bundle](t)(ci.UploadBundle(ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(goodZip(t))))
	must[release.Bundle](t)(ci.UploadBundle(ctx, app, BundleMetadata{Version: "1.1.0"}, bytes.NewReader(goodZip(t))))
	v1, v2, pct := "1.0.0", "1.1.0", 10.0
	must[release.Channel](t)(ci.SetChannel(ctx, app, "production", ChannelPatch{Bundle: &v1}))
	must[release.Channel](t)(ci.SetChannel(ctx, app, "production", ChannelPatch{RolloutBundle: &v2, RolloutPercent: &pct}))
	must[release.Channel](t)(nameless.SetChannel(ctx, app, "beta", ChannelPatch{Bundle: &v2}))
	must[release.Override](t)(ci.SetDeviceChannel(ctx, app, "DEV-1", "beta"))
	if err := ci.UnsetDeviceChannel(ctx, app, "dev-1"); err != nil {
		t.Fatal(err)
	}
	if err := ci.DeleteChannel(ctx, app, "beta"); err != nil {
		t.Fatal(err)
	}
	hook := "https://hooks.example.com/capstan?secret=s3"
	got := must[release.App](t)(ci.UpdateApp(ctx, app, UpdateAppRequest{WebhookURL: &hook}))
	if got.WebhookURL != hook || got.Name != "Audit" {
		t.Fatalf("updated app %+v", got)
	}
	if a, _ := e.store.Snapshot().App(app); a.WebhookURL != hook {
		t.Fatalf("stored app %+v", a)
	}
	// A refused change records nothing.
	if _, err := ci.SetChannel(ctx, app, "production", ChannelPatch{Bundle: new("9.9.9")}); err == nil {
		t.Fatal("channel pointed at a missing bundle")
	}
	if err := ci.DeleteBundle(ctx, app, "1.1.0"); !IsCode(err, "bundle_in_use") {
		t.Fatalf("delete in-use bundle: %v", err)
	}
	// Bundle 1.0.0 is not in use once production moves to 1.1.0.
	must[release.Channel](t)(ci.SetChannel(ctx, app, "production", ChannelPatch{Bundle: &v2, RolloutBundle: new(""), RolloutPercent: new(0.0)}))
	if err := ci.DeleteBundle(ctx, app, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteApp(ctx, app); err != nil {
		t.Fatal(err)
	}

	entries := must[[]audit.Entry](t)(e.client.Audit(ctx, AuditQuery{}))
	type row struct{ change, app, channel, bundle, actor string }
	want := []row{
		{"token_create", "", "", "", ActorAdmin},
		{"token_create", "", "", "", ActorAdmin},
		{"app_create", app, "", "", "token:ci"},
		{"bundle_upload", app, "", "1.0.0", "token:ci"},
		{"bundle_upload", app, "", "1.1.0", "token:ci"},
		{"channel_set", app, "production", "1.0.0", "token:ci"},
		{"channel_set", app, "production", "1.0.0", "token:ci"},
		{"channel_set", app, "beta", "1.1.0", "token:bot"},
		{"pin_set", app, "beta", "", "token:ci"},
		{"pin_delete", app, "beta", "", "token:ci"},
		{"channel_delete", app, "beta", "", "token:ci"},
		{"app_update", app, "", "", "token:ci"},
		{"channel_set", app, "production", "1.1.0", "token:ci"},
		{"bundle_delete", app, "", "1.0.0", "token:ci"},
		{"app_delete", app, "", "", ActorAdmin},
	}
	if len(entries) != len(want) {
		for _, en := range entries {
			t.Logf("%+v", en)
		}
		t.Fatalf("%d entries, want %d", len(entries), len(want))
	}
	for i, w := range want {
		en := entries[i]
		if (row{en.Change, en.App, en.Channel, en.Bundle, en.Actor}) != w {
			t.Errorf("entry %d: %+v, want %+v", i, en, w)
		}
		if en.Time.IsZero() || en.Seq == 0 || en.Automatic || en.Detail == "" {
			t.Errorf("entry %d: %+v", i, en)
		}
	}
	for _, c := range []struct {
		i    int
		want []string
	}{
		{0, []string{`"ci"`}},
		{5, []string{"created", "bundle=1.0.0"}},
		{6, []string{"rollout_bundle=1.1.0", "rollout_percent=10"}},
		{8, []string{"dev-1", "beta"}},
		{11, []string{"webhook set"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(entries[c.i].Detail, w) {
				t.Errorf("entry %d detail %q lacks %q", c.i, entries[c.i].Detail, w)
			}
		}
	}
	if strings.Contains(entries[11].Detail, "s3") || strings.Contains(entries[0].Detail, tok.Token) || strings.Contains(entries[0].Detail, "cap_") {
		t.Errorf("a secret in the log: %q %q", entries[11].Detail, entries[0].Detail)
	}

	// Filters.
	check := func(q AuditQuery, n int, changes ...string) {
		t.Helper()
		got, err := e.client.Audit(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if len(got) != n {
			t.Fatalf("%+v: %d entries, want %d", q, len(got), n)
		}
		for i, c := range changes {
			if got[i].Change != c {
				t.Fatalf("%+v: entry %d is %s, want %s", q, i, got[i].Change, c)
			}
		}
	}
	check(AuditQuery{App: app}, 13, "app_create")
	check(AuditQuery{App: app, Channel: "beta"}, 4, "channel_set", "pin_set", "pin_delete", "channel_delete")
	check(AuditQuery{Channel: "production"}, 3)
	check(AuditQuery{App: app, Limit: 2}, 2, "bundle_delete", "app_delete")
	check(AuditQuery{App: "com.example.other"}, 0)
	check(AuditQuery{Since: "1h"}, 15)
	check(AuditQuery{Since: "7d", Limit: 1}, 1, "app_delete")
	check(AuditQuery{Since: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, 0)
	check(AuditQuery{Since: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), App: app, Channel: "production"}, 3)

	// Bad queries.
	for q, code := range map[string]string{
		"since=yesterday": "invalid_since",
		"since=-1h":       "invalid_since",
		"since=0d":        "invalid_since",
		"limit=0":         "invalid_limit",
		"limit=1001":      "invalid_limit",
		"limit=ten":       "invalid_limit",
	} {
		status, _, eb, _ := e.raw(t, "GET", "/api/v1/audit?"+q, testToken, "", nil)
		if status != 400 || eb.Error != code {
			t.Errorf("%s: %d %+v", q, status, eb)
		}
	}
	if status, _, eb, _ := e.raw(t, "GET", "/api/v1/audit", "", "", nil); status != 401 || eb.Error != "missing_token" {
		t.Errorf("no token: %d %+v", status, eb)
	}
}

func TestAuditUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.client.Audit(e.ctx, AuditQuery{})
	wantAPIError(t, err, 503, "audit_unavailable")
	// Changes still work without a log.
	e.app(t, "com.example.nolog")
	var nilLog *audit.Log
	e2 := newEnv(t, func(c *Config) { c.Audit = nilLog })
	_, err = e2.client.Audit(e2.ctx, AuditQuery{})
	wantAPIError(t, err, 503, "audit_unavailable")
	e2.app(t, "com.example.nolog")
}

// failingRecorder refuses every entry.
type failingRecorder struct{ n int }

func (f *failingRecorder) Append(context.Context, audit.Entry) error {
	f.n++
	return context.DeadlineExceeded
}

func TestAuditAppendFailureKeepsChange(t *testing.T) {
	f := &failingRecorder{}
	e := newEnv(t, func(c *Config) { c.Audit = f })
	e.app(t, "com.example.fail")
	if _, ok := e.store.Snapshot().App("com.example.fail"); !ok || f.n != 1 {
		t.Fatalf("app made: %v, appends tried %d", ok, f.n)
	}
	// A recorder that cannot list answers 503 at GET /audit.
	_, err := e.client.Audit(e.ctx, AuditQuery{})
	wantAPIError(t, err, 503, "audit_unavailable")
}

func TestUpdateApp(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.hook"
	e.app(t, app)
	for _, c := range []struct {
		url, code string
	}{
		{"ftp://example.com/x", "invalid_webhook_url"},
		{"/relative/path", "invalid_webhook_url"},
		{"https://", "invalid_webhook_url"},
		{"https://example.com/" + strings.Repeat("a", 2048), "invalid_webhook_url"},
	} {
		_, err := e.client.UpdateApp(e.ctx, app, UpdateAppRequest{WebhookURL: &c.url})
		wantAPIError(t, err, 400, c.code)
	}
	_, err := e.client.UpdateApp(e.ctx, app, UpdateAppRequest{})
	wantAPIError(t, err, 400, "nothing_to_update")
	_, err = e.client.UpdateApp(e.ctx, "com.example.none", UpdateAppRequest{Name: new("x")})
	wantAPIError(t, err, 404, "app_not_found")

	hook := "http://10.0.0.1:9000/hook"
	got := must[release.App](t)(e.client.UpdateApp(e.ctx, app, UpdateAppRequest{WebhookURL: &hook, Name: new("Hooked")}))
	if got.WebhookURL != hook || got.Name != "Hooked" || got.CreatedAt.IsZero() {
		t.Fatalf("app %+v", got)
	}
	// Only the fields given change; "" clears the webhook.
	got = must[release.App](t)(e.client.UpdateApp(e.ctx, app, UpdateAppRequest{Name: new("Renamed")}))
	if got.WebhookURL != hook || got.Name != "Renamed" {
		t.Fatalf("app %+v", got)
	}
	got = must[release.App](t)(e.client.UpdateApp(e.ctx, app, UpdateAppRequest{WebhookURL: new("")}))
	if got.WebhookURL != "" || got.Name != "Renamed" {
		t.Fatalf("app %+v", got)
	}
	if a, _ := e.store.Snapshot().App(app); a != got {
		t.Fatalf("stored %+v, answered %+v", a, got)
	}
	status, _, eb, _ := e.raw(t, "PATCH", "/api/v1/apps/"+app, testToken, "application/json", strings.NewReader(`{"webhook":"x"}`))
	if status != 400 || eb.Error != "invalid_json_body" {
		t.Fatalf("unknown field: %d %+v", status, eb)
	}
}
