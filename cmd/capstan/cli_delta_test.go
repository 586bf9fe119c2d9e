package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/capstan-io/capstan/update/admin"
)

// bundle upload --channel points the channel in the same command;
// --public-key sets key_id as the plugin derives it; cleanup --keep N
// deletes only unused bundles past the N newest; app update
// --keep-bundles applies that after every upload.
func TestCLIUploadChannelKeyCleanup(t *testing.T) {
	ctx, st := cliEnv(t)
	const app = "com.example.delta"
	mustRun(t, ctx, runApp, "create", app)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html>v</html>"), 0o644)

	out := mustRun(t, ctx, runBundle, "upload", "--app", app, "--version", "1.0.0", "--channel", "production", dir)
	if c, ok := st.Snapshot().Channel(app, "production"); !ok || c.Bundle != "1.0.0" {
		t.Fatalf("channel after upload --channel: %+v %v (output %q)", c, ok, out)
	}
	b, _ := st.Snapshot().Bundle(app, "1.0.0")
	if len(b.Manifest) != 1 || b.Manifest[0].FileName != "index.html" {
		t.Fatalf("plain upload manifest %+v, want index.html", b.Manifest)
	}

	key := filepath.Join(t.TempDir(), "key.pub")
	os.WriteFile(key, []byte("-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAuniquepartXYZ\n-----END RSA PUBLIC KEY-----\n"), 0o644)
	mustRun(t, ctx, runBundle, "upload", "--app", app, "--version", "1.0.1", "--public-key", key, "--no-delta", dir)
	if b, _ := st.Snapshot().Bundle(app, "1.0.1"); b.KeyID != "MIIBCgKCAQEAuniquepa" || len(b.Manifest) != 0 {
		t.Fatalf("key id %q manifest %d, want MIIBCgKCAQEAuniquepa and none (--no-delta)", b.KeyID, len(b.Manifest))
	}
	if _, err := run(t, ctx, runBundle, "upload", "--app", app, "--version", "1.0.9", "--public-key", key, "--key-id", "other", dir); err == nil {
		t.Fatal("--key-id contradicting --public-key accepted")
	}
	for _, v := range []string{"1.0.2", "1.0.3", "1.0.4"} {
		mustRun(t, ctx, runBundle, "upload", "--app", app, "--version", v, dir)
	}
	mustRun(t, ctx, runChannel, "set", "--app", app, "beta", "--bundle", "1.0.2")

	var res admin.CleanupResult
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runBundle, "cleanup", "--app", app, "--keep", "1", "--dry-run", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Deleted, " ") != "1.0.1 1.0.3" || strings.Join(res.Kept, " ") != "1.0.4" || strings.Join(res.InUse, " ") != "1.0.0 1.0.2" || !res.DryRun {
		t.Fatalf("dry run %+v", res)
	}
	if len(st.Snapshot().Bundles(app)) != 5 {
		t.Fatal("dry run deleted bundles")
	}
	out = mustRun(t, ctx, runBundle, "cleanup", "--app", app, "--keep", "1")
	if !strings.Contains(out, "deleted 2 bundles: 1.0.1 1.0.3") {
		t.Fatalf("cleanup output %q", out)
	}
	if n := len(st.Snapshot().Bundles(app)); n != 3 {
		t.Fatalf("%d bundles after cleanup, want 3", n)
	}
	if _, err := run(t, ctx, runBundle, "cleanup", "--app", app); err == nil {
		t.Fatal("cleanup without --keep accepted")
	}

	// Retention: keep 1 unused bundle after each upload.
	mustRun(t, ctx, runApp, "update", app, "--keep-bundles", "1")
	mustRun(t, ctx, runBundle, "upload", "--app", app, "--version", "1.0.5", dir)
	var left []string
	for _, b := range st.Snapshot().Bundles(app) {
		left = append(left, b.Version)
	}
	if strings.Join(slices.Sorted(slices.Values(left)), " ") != "1.0.0 1.0.2 1.0.5" {
		t.Fatalf("after an upload with retention 1: %v", left)
	}

	// channel delete removes a channel no device is pinned to.
	mustRun(t, ctx, runChannel, "delete", "--app", app, "beta")
	if _, ok := st.Snapshot().Channel(app, "beta"); ok {
		t.Fatal("channel beta still there")
	}
}
