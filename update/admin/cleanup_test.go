package admin

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

func TestCleanupPlan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bs := func(vs ...string) []*release.Bundle {
		var out []*release.Bundle
		for i, v := range vs {
			out = append(out, &release.Bundle{Version: v, CreatedAt: t0.Add(time.Duration(i) * time.Hour)})
		}
		return out
	}
	chans := []*release.Channel{{Name: "prod", Bundle: "1"}, {Name: "beta", Bundle: "", RolloutBundle: "3"}}
	for _, c := range []struct {
		name                string
		bundles             []*release.Bundle
		keep                int
		remove, inUse, kept string
	}{
		{"keep 0 removes every unused, oldest first", bs("1", "2", "3", "4", "5"), 0, "2 4 5", "1 3", ""},
		{"keep 2 keeps the newest uploads", bs("1", "2", "3", "4", "5"), 2, "2", "1 3", "5 4"},
		{"keep more than there are", bs("1", "2"), 10, "", "1", "2"},
		{"upload order, not version order", bs("9.0.0", "1.0.0", "2"), 1, "9.0.0 1.0.0", "", "2"},
	} {
		remove, inUse, kept := CleanupPlan(c.bundles, chans, c.keep)
		if got := strings.Join(remove, " "); got != c.remove {
			t.Errorf("%s: remove %q, want %q", c.name, got, c.remove)
		}
		if got := strings.Join(inUse, " "); got != c.inUse {
			t.Errorf("%s: in use %q, want %q", c.name, got, c.inUse)
		}
		if got := strings.Join(kept, " "); got != c.kept {
			t.Errorf("%s: kept %q, want %q", c.name, got, c.kept)
		}
	}
}

// The cleanup endpoint keeps what channels use and the newest unused,
// and refuses a body that does not say how many to keep.
func TestCleanupEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.cleanup"
	e.app(t, app)
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3"} {
		e.bundle(t, app, v)
	}
	if _, err := e.client.SetChannel(e.ctx, app, "production", ChannelPatch{Bundle: ptr("1.0.0")}); err != nil {
		t.Fatal(err)
	}
	status, _, eb, _ := e.raw(t, "POST", "/api/v1/apps/"+app+"/bundles/cleanup", testToken, "application/json", strings.NewReader(`{}`))
	if status != 400 || eb.Error != "keep_required" {
		t.Fatalf("empty body: %d %+v", status, eb)
	}
	one := 1
	dry, err := e.client.CleanupBundles(e.ctx, app, CleanupRequest{Keep: &one, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dry.Deleted, " "); got != "1.0.1 1.0.2" || !dry.DryRun {
		t.Fatalf("dry run deletes %q (dry %v), want 1.0.1 1.0.2", got, dry.DryRun)
	}
	res, err := e.client.CleanupBundles(e.ctx, app, CleanupRequest{Keep: &one})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Deleted, " "); got != "1.0.1 1.0.2" {
		t.Fatalf("deleted %q, want 1.0.1 1.0.2", got)
	}
	left, err := e.client.ListBundles(e.ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, b := range left {
		vs = append(vs, b.Version)
	}
	slices.Sort(vs)
	if got := strings.Join(vs, " "); got != "1.0.0 1.0.3" {
		t.Fatalf("left %q, want 1.0.0 (in use) and 1.0.3 (newest unused)", got)
	}
}
