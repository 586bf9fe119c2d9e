package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/admin"
)

func TestCLIAudit(t *testing.T) {
	ctx, _ := cliEnvWith(t, true)
	tok := strings.TrimSpace(mustRun(t, ctx, runToken, "create", "--name", "release-bot", "--role", "admin"))
	t.Setenv("CAPSTAN_TOKEN", tok)
	mustRun(t, ctx, runApp, "create", "com.example.a")
	mustRun(t, ctx, runApp, "create", "com.example.b")
	mustRun(t, ctx, runBundle, "upload", "--app", "com.example.a", "--version", "1.0.0", "--external-url", "https://cdn.example.com/1.0.0.zip", "--checksum", strings.Repeat("0", 64))
	mustRun(t, ctx, runChannel, "set", "--app", "com.example.a", "production", "--bundle", "1.0.0")

	out := mustRun(t, ctx, runAudit)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("audit table:\n%s", out)
	}
	for _, h := range []string{"TIME", "APP", "CHANNEL", "CHANGE", "ACTOR", "DETAIL"} {
		if !strings.Contains(lines[0], h) {
			t.Fatalf("header %q lacks %s", lines[0], h)
		}
	}
	if !strings.Contains(lines[1], "token_create") || !strings.Contains(lines[1], "token:admin") {
		t.Fatalf("first row %q", lines[1])
	}
	last := lines[5]
	for _, w := range []string{"com.example.a", "production", "channel_set", "token:release-bot", "bundle=1.0.0"} {
		if !strings.Contains(last, w) {
			t.Fatalf("last row %q lacks %q", last, w)
		}
	}

	var entries []audit.Entry
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runAudit, "--app", "com.example.a", "--since", "24h", "--json")), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Change != "app_create" || entries[2].Change != "channel_set" || entries[2].Actor != "token:release-bot" {
		t.Fatalf("--app --json: %+v", entries)
	}
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runAudit, "--channel", "production", "--limit", "1", "--json")), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("--channel --limit: %v %+v", err, entries)
	}
	if _, err := run(t, ctx, runAudit, "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "invalid_since") {
		t.Fatalf("bad since: %v", err)
	}
	if _, err := run(t, ctx, runAudit, "--limit", "5000"); err == nil || !strings.Contains(err.Error(), "invalid_limit") {
		t.Fatalf("bad limit: %v", err)
	}
	if _, err := run(t, ctx, runAudit, "extra"); err == nil || !strings.Contains(err.Error(), "argument") {
		t.Fatalf("positional argument: %v", err)
	}
}

func TestCLIAuditUnavailable(t *testing.T) {
	ctx, _ := cliEnv(t)
	if _, err := run(t, ctx, runAudit); err == nil || !strings.Contains(err.Error(), "audit_unavailable") {
		t.Fatalf("no audit log: %v", err)
	}
}

// TestServeAuditWiring: a real front records admin changes, lists them,
// and counts them on /metrics.
func TestServeAuditWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a front")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL")
	front, metrics := freeAddr(t), freeAddr(t)
	startFront(t, "--listen", front, "--data-dir", t.TempDir(), "--nats-listen", "",
		"--consume=false", "--admin-token", "audit-wiring", "--log-level", "warn", "--metrics-listen", metrics)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := admin.NewClient("http://"+front, "audit-wiring")
	if _, err := c.CreateApp(ctx, "com.example.wired", ""); err != nil {
		t.Fatal(err)
	}
	entries, err := c.Audit(ctx, admin.AuditQuery{App: "com.example.wired"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Change != "app_create" || entries[0].Actor != "token:admin" {
		t.Fatalf("entries %+v", entries)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `capstan_release_changes_total{actor="manual",app="com.example.wired",change="app_create"} 1`; !strings.Contains(string(body), want) {
		t.Fatalf("/metrics lacks %s", want)
	}
}
