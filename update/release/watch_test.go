package release

import (
	"strings"
	"testing"
)

// TestWatchUUIDOverrides follows UUID-keyed overrides (stored as 16
// bytes) and other ids through the bucket: put, re-pin, delete.
func TestWatchUUIDOverrides(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	ctx := tctx(t)
	s := testStore(t, b.JetStream, Options{})
	must(t, s.CreateApp(ctx, App{ID: "com.a"}))
	must(t, s.PutChannel(ctx, NewChannel("com.a", "beta")))
	must(t, s.PutChannel(ctx, NewChannel("com.a", "qa")))
	u := testUUID(42)
	must(t, s.PutOverride(ctx, Override{AppID: "com.a", DeviceID: strings.ToUpper(u), Channel: "beta"}))
	must(t, s.PutOverride(ctx, Override{AppID: "com.a", DeviceID: "Not-A-UUID", Channel: "qa"}))
	must(t, s.PutOverride(ctx, Override{AppID: "com.a", DeviceID: u, Channel: "qa"}))
	snap := s.Snapshot()
	if ch, _ := snap.Override("com.a", u); ch != "qa" || snap.OverrideCount() != 2 {
		t.Fatalf("got %q, %d overrides", ch, snap.OverrideCount())
	}
	if got := overridesOf(snap, "com.a"); strings.Join(got, " ") != "com.a|"+u+"|qa com.a|not-a-uuid|qa" {
		t.Fatalf("Overrides = %q", got)
	}

	// A second front loads the same state from scratch.
	s2 := testStore(t, b.JetStream, Options{})
	if ch, _ := s2.Snapshot().Override("com.a", u); ch != "qa" || s2.Snapshot().OverrideCount() != 2 {
		t.Fatalf("reloaded: %q, %d overrides", ch, s2.Snapshot().OverrideCount())
	}

	must(t, s.DeleteOverride(ctx, "com.a", strings.ToUpper(u)))
	must(t, s.DeleteOverride(ctx, "com.a", "not-a-uuid"))
	if _, ok := s.Snapshot().Override("com.a", u); ok || s.Snapshot().OverrideCount() != 0 {
		t.Fatalf("still pinned: %d overrides", s.Snapshot().OverrideCount())
	}
	waitFor(t, func() bool { return s2.Snapshot().OverrideCount() == 0 })
}
