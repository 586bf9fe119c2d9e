package admin

import (
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
