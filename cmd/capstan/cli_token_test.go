package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/capstan-io/capstan/update/admin"
)

func TestCLIToken(t *testing.T) {
	ctx, _ := cliEnv(t)
	mustRun(t, ctx, runApp, "create", "com.example.a")
	mustRun(t, ctx, runApp, "create", "com.example.b")
	// CAPSTAN_APP never limits a token by accident.
	t.Setenv("CAPSTAN_APP", "com.example.a")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--role", "viewer"}, "--name is required"},
		{[]string{"create", "--name", "ci"}, "--role is required"},
		{[]string{"create", "--name", "ci", "--role", "owner"}, "invalid_role"},
		{[]string{"create", "--name", "a b", "--role", "viewer"}, "invalid_name"},
		{[]string{"create", "--name", "ci", "--role", "viewer", "--app", "com.example.none"}, "unknown_app"},
		{[]string{"create", "--name", "ci", "--role", "viewer", "extra"}, "argument"},
		{[]string{"revoke"}, "argument"},
		{[]string{"revoke", "nobody"}, "unknown_token"},
	} {
		if _, err := run(t, ctx, runToken, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}

	// The token alone on stdout.
	pub := strings.TrimSpace(mustRun(t, ctx, runToken, "create", "--name", "ci", "--role", "publisher", "--app", "com.example.b", "--app", "com.example.a"))
	if !strings.HasPrefix(pub, admin.TokenPrefix) || strings.ContainsAny(pub, " \n") {
		t.Fatalf("token %q", pub)
	}
	var created admin.CreatedToken
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runToken, "create", "--name", "viewer", "--role", "viewer", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Name != "viewer" || created.Role != "viewer" || len(created.Apps) != 0 || !strings.HasPrefix(created.Token, admin.TokenPrefix) || created.CreatedAt.IsZero() {
		t.Fatalf("--json: %+v", created)
	}
	if _, err := run(t, ctx, runToken, "create", "--name", "ci", "--role", "viewer"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("duplicate name: %v", err)
	}

	// The publisher works on its apps only, and cannot manage tokens.
	mustRun(t, ctx, runApp, "list", "--token", pub)
	if _, err := run(t, ctx, runToken, "list", "--token", pub); err == nil || !strings.Contains(err.Error(), "insufficient_role") {
		t.Fatalf("list as publisher: %v", err)
	}

	out := mustRun(t, ctx, runToken, "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME ROLE APPS CREATED LAST USED" {
		t.Fatalf("list:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "ci" || f[1] != "publisher" || f[2] != "com.example.a,com.example.b" {
		t.Fatalf("ci row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "viewer" || f[1] != "viewer" || f[2] != "all" || f[len(f)-1] != "-" {
		t.Fatalf("viewer row %q", lines[2])
	}
	var toks []admin.TokenInfo
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runToken, "list", "--json")), &toks); err != nil || len(toks) != 2 || toks[0].Name != "ci" {
		t.Fatalf("list --json: %v %+v", err, toks)
	}
	if strings.Contains(out, pub) || strings.Contains(mustRun(t, ctx, runToken, "list", "--json"), "hash") {
		t.Fatal("list shows a secret")
	}

	if out := mustRun(t, ctx, runToken, "revoke", "ci"); out != "revoked token ci\n" {
		t.Fatalf("revoke: %q", out)
	}
	if _, err := run(t, ctx, runApp, "list", "--token", pub); err == nil || !strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("revoked token: %v", err)
	}
}
