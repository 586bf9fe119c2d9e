package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

// cliEnv runs the real admin API on an embedded JetStream and points the
// CLI at it through the same env vars users set.
func cliEnv(t *testing.T) (context.Context, *release.Store) {
	t.Helper()
	return cliEnvWith(t, false)
}

// cliEnvWith is cliEnv, with an audit log behind the admin API when audited.
func cliEnvWith(t *testing.T, audited bool) (context.Context, *release.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	st, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := admin.Config{Store: st, AdminToken: "cli-secret", TempDir: t.TempDir()}
	if audited {
		log, err := audit.Open(ctx, b.JetStream, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Audit = log
	}
	r := chi.NewRouter()
	r.Mount("/api/v1", admin.New(cfg).Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	t.Setenv("CAPSTAN_SERVER", srv.URL)
	t.Setenv("CAPSTAN_TOKEN", "cli-secret")
	t.Setenv("CAPSTAN_APP", "")
	t.Setenv("CAPSTAN_JSON", "")
	os.Unsetenv("CAPSTAN_APP")
	os.Unsetenv("CAPSTAN_JSON")
	return ctx, st
}

// run calls a command and returns what it printed.
func run(t *testing.T, ctx context.Context, fn func(context.Context, []string) error, args ...string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	old := stdout
	stdout = &buf
	defer func() { stdout = old }()
	err := fn(ctx, args)
	return buf.String(), err
}

func mustRun(t *testing.T, ctx context.Context, fn func(context.Context, []string) error, args ...string) string {
	t.Helper()
	out, err := run(t, ctx, fn, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out
}

func TestCLIAdminFlow(t *testing.T) {
	ctx, st := cliEnv(t)
	const app = "com.example.cli"

	// Flags may follow the positional argument.
	out := mustRun(t, ctx, runApp, "create", app, "--name", "CLI app")
	if !strings.Contains(out, "created app "+app) {
		t.Fatalf("app create: %q", out)
	}
	if _, err := run(t, ctx, runApp, "create", app); err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "app_exists") {
		t.Fatalf("duplicate app: %v", err)
	}
	out = mustRun(t, ctx, runApp, "list")
	if !strings.Contains(out, "ID") || !strings.Contains(out, app) || !strings.Contains(out, "CLI app") {
		t.Fatalf("app list: %q", out)
	}
	var apps []release.App
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runApp, "list", "--json")), &apps); err != nil || len(apps) != 1 {
		t.Fatalf("app list --json: %v %+v", err, apps)
	}

	// Upload a directory: zipped, checked, uploaded; sha256 printed.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html>v1</html>"), 0o644)
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "assets", "app.js"), []byte("console.log(1)"), 0o644)
	out = mustRun(t, ctx, runBundle, "upload", "--app", app, "--version", "1.0.0", "--comment", "first", "--data", "k=v", dir)
	b, ok := st.Snapshot().Bundle(app, "1.0.0")
	if !ok {
		t.Fatal("bundle not stored")
	}
	for _, want := range []string{"1.0.0", b.Checksum, b.ObjectSHA256} {
		if !strings.Contains(out, want) {
			t.Fatalf("upload output %q lacks %q", out, want)
		}
	}
	if b.Comment != "first" || b.Data["k"] != "v" {
		t.Fatalf("bundle %+v", b)
	}
	// Upload the same directory as a second version via JSON output.
	var b2 release.Bundle
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runBundle, "upload", "--json", "--app", app, "--version", "1.1.0", dir)), &b2); err != nil {
		t.Fatal(err)
	}
	if b2.Checksum != b.Checksum {
		t.Fatalf("zipping the same directory twice gave different checksums: %s vs %s", b2.Checksum, b.Checksum)
	}
	// A directory without index.html fails before any upload.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "main.js"), []byte("x"), 0o644)
	if _, err := run(t, ctx, runBundle, "upload", "--app", app, "--version", "1.2.0", bad); err == nil || !strings.Contains(err.Error(), "missing_index_html") {
		t.Fatalf("bad dir: %v", err)
	}
	if _, err := run(t, ctx, runBundle, "upload", "--app", app, "--version", "1.0.0", dir); err == nil || !strings.Contains(err.Error(), "bundle_exists") {
		t.Fatalf("duplicate: %v", err)
	}
	// A metadata-only bundle from an external URL.
	mustRun(t, ctx, runBundle, "upload", "--app", app, "--version", "1.2.0", "--external-url", "https://cdn.example.com/1.2.0.zip", "--checksum", strings.Repeat("0", 64))
	out = mustRun(t, ctx, runBundle, "list", "--app", app)
	if i, j := strings.Index(out, "1.2.0"), strings.Index(out, "1.0.0"); i < 0 || j < 0 || i > j || !strings.Contains(out, "https://cdn.example.com/1.2.0.zip") {
		t.Fatalf("bundle list: %q", out)
	}

	// Channels: create, then change one field without touching the others.
	t.Setenv("CAPSTAN_APP", app)
	mustRun(t, ctx, runChannel, "set", "production", "--bundle", "1.0.0", "--public")
	out = mustRun(t, ctx, runChannel, "set", "production", "--policy", "minor", "--android=false")
	c, _ := st.Snapshot().Channel(app, "production")
	if c.Bundle != "1.0.0" || !c.Public || c.DisableAutoUpdate != "minor" || c.Android || !c.IOS || !c.DisableUnderNative {
		t.Fatalf("channel %+v", c)
	}
	if !strings.Contains(out, "production") || !strings.Contains(out, "1.0.0") {
		t.Fatalf("channel set output %q", out)
	}
	// Promote, then roll back.
	mustRun(t, ctx, runChannel, "set", "production", "--bundle", "1.1.0")
	if c, _ := st.Snapshot().Channel(app, "production"); c.Bundle != "1.1.0" {
		t.Fatalf("promote: %+v", c)
	}
	mustRun(t, ctx, runChannel, "set", "--bundle=1.0.0", "production")
	if c, _ := st.Snapshot().Channel(app, "production"); c.Bundle != "1.0.0" {
		t.Fatalf("rollback: %+v", c)
	}
	mustRun(t, ctx, runChannel, "set", "beta", "--self-assign", "--rollout-bundle", "1.1.0", "--rollout-percent", "12.5", "--prod=false", "--emulator=false", "--under-native=false", "--ios=false", "--electron=false", "--dev", "--device")
	c, _ = st.Snapshot().Channel(app, "beta")
	if !c.AllowSelfSet || c.RolloutBundle != "1.1.0" || c.RolloutPercent != 12.5 || c.AllowProd || c.AllowEmulator || c.DisableUnderNative || c.IOS || c.Electron || !c.Android {
		t.Fatalf("beta %+v", c)
	}
	if _, err := run(t, ctx, runChannel, "set", "staging", "--public"); err == nil || !strings.Contains(err.Error(), "public_channel_conflict") {
		t.Fatalf("public conflict: %v", err)
	}
	out = mustRun(t, ctx, runChannel, "list")
	if !strings.Contains(out, "beta") || !strings.Contains(out, "1.1.0@12.5%") || !strings.Contains(out, "production") {
		t.Fatalf("channel list %q", out)
	}

	// Devices.
	mustRun(t, ctx, runDevice, "set-channel", "ABC-123", "beta")
	if ch, ok := st.Snapshot().Override(app, "abc-123"); !ok || ch != "beta" {
		t.Fatalf("override %q %v", ch, ok)
	}
	out = mustRun(t, ctx, runDevice, "list")
	if !strings.Contains(out, "abc-123") || !strings.Contains(out, "beta") {
		t.Fatalf("device list %q", out)
	}
	if out := mustRun(t, ctx, runDevice, "unset-channel", "abc-123"); out != "device abc-123 of "+app+" unpinned\n" {
		t.Fatalf("device unset-channel: %q", out)
	}
	if _, ok := st.Snapshot().Override(app, "abc-123"); ok {
		t.Fatal("override not removed")
	}
	if _, err := run(t, ctx, runDevice, "unset-channel", "abc-123"); err == nil || !strings.Contains(err.Error(), "override_not_found") {
		t.Fatalf("unset twice: %v", err)
	}

	// Bundle delete: refused while in use, fine after.
	if _, err := run(t, ctx, runBundle, "delete", "1.1.0"); err == nil || !strings.Contains(err.Error(), "bundle_in_use") {
		t.Fatalf("delete in use: %v", err)
	}
	var deleted map[string]string
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runBundle, "delete", "1.2.0", "--json")), &deleted); err != nil || deleted["deleted"] != "1.2.0" {
		t.Fatalf("bundle delete --json: %v %v", err, deleted)
	}

	// Tokens: a created token works on its own.
	tok := strings.TrimSpace(mustRun(t, ctx, runToken, "create", "--name", "ci", "--role", "admin"))
	if !strings.HasPrefix(tok, "cap_") {
		t.Fatalf("token %q", tok)
	}
	t.Setenv("CAPSTAN_TOKEN", tok)
	mustRun(t, ctx, runApp, "list")
	if _, err := run(t, ctx, runApp, "list", "--token", "nope"); err == nil || !strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("bad token: %v", err)
	}
	if out := mustRun(t, ctx, runApp, "delete", app); out != "deleted app "+app+"\n" {
		t.Fatalf("app delete: %q", out)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	ctx := context.Background()
	t.Setenv("CAPSTAN_TOKEN", "x")
	t.Setenv("CAPSTAN_SERVER", "http://127.0.0.1:1")
	os.Unsetenv("CAPSTAN_APP")
	cases := []struct {
		fn   func(context.Context, []string) error
		args []string
		want string
	}{
		{runApp, nil, "missing verb"},
		{runApp, []string{"frobnicate"}, "unknown verb"},
		{runApp, []string{"create"}, "argument"},
		{runApp, []string{"create", "a.b", "c.d"}, "argument"},
		{runBundle, []string{"list"}, "--app is required"},
		{runBundle, []string{"upload", "--app", "a.b", "x"}, "--version is required"},
		{runBundle, []string{"upload", "--app", "a.b", "--version", "1.0.0"}, "give a zip"},
		{runBundle, []string{"upload", "--app", "a.b", "--version", "1.0.0", "--data", "novalue", "x"}, "key=value"},
		{runDevice, []string{"set-channel", "--app", "a.b", "dev"}, "argument"},
		{runChannel, []string{"set", "--app", "a.b"}, "argument"},
	}
	for _, tc := range cases {
		_, err := run(t, ctx, tc.fn, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	os.Unsetenv("CAPSTAN_TOKEN")
	if _, err := run(t, ctx, runApp, "list"); err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("no token: %v", err)
	}
}
