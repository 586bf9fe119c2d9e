package release

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestUUIDRoundTrip(t *testing.T) {
	for _, s := range []string{testUUID(0), testUUID(123456789), "ffffffff-ffff-ffff-ffff-ffffffffffff", "0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0e"} {
		u, ok := parseUUID(s)
		if !ok || u.String() != s {
			t.Errorf("%q: %v %q", s, ok, u.String())
		}
		if u2, ok := parseUUID([]byte(s)); !ok || u2 != u {
			t.Errorf("%q: bytes differ", s)
		}
	}
	for _, s := range []string{"", "0B9F3C4E-8D1A-4E2B-9C3D-5F6A7B8C9D0E", "0b9f3c4e8d1a4e2b9c3d5f6a7b8c9d0e", "{0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0e}", "0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0", "0b9f3c4e-8d1a-4e2b-9c3d_5f6a7b8c9d0e"} {
		if _, ok := parseUUID(s); ok {
			t.Errorf("%q accepted", s)
		}
	}
}

func testUUID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i*7919) }

func overridesOf(s *Snapshot, app string) []string {
	var out []string
	s.Overrides(app, func(o Override) bool {
		out = append(out, o.AppID+"|"+o.DeviceID+"|"+o.Channel)
		return true
	})
	slices.Sort(out)
	return out
}

func TestBuilderOverrides(t *testing.T) {
	u1, u2 := testUUID(1), testUUID(2)
	tests := []struct {
		name  string
		build func(b *Builder)
		look  [][3]string // app, device, want channel ("" = none)
		list  []string    // Overrides("") sorted
	}{
		{"uuid and plain ids", func(b *Builder) {
			b.PutOverride(Override{AppID: "a", DeviceID: u1, Channel: "beta"})
			b.PutOverride(Override{AppID: "a", DeviceID: "pinned", Channel: "qa"})
		}, [][3]string{{"a", u1, "beta"}, {"a", "pinned", "qa"}, {"b", u1, ""}, {"a", u2, ""}},
			[]string{"a|" + u1 + "|beta", "a|pinned|qa"}},
		{"upper case stored lower", func(b *Builder) {
			b.PutOverride(Override{AppID: "a", DeviceID: strings.ToUpper(u1), Channel: "beta"})
			b.PutOverride(Override{AppID: "a", DeviceID: "ABC-Def", Channel: "qa"})
		}, [][3]string{{"a", u1, "beta"}, {"a", strings.ToUpper(u1), ""}, {"a", "abc-def", "qa"}},
			[]string{"a|" + u1 + "|beta", "a|abc-def|qa"}},
		{"replace and delete", func(b *Builder) {
			b.PutOverride(Override{AppID: "a", DeviceID: u1, Channel: "beta"})
			b.PutOverride(Override{AppID: "a", DeviceID: u1, Channel: "prod"})
			b.PutOverride(Override{AppID: "a", DeviceID: u2, Channel: "beta"})
			b.PutOverride(Override{AppID: "a", DeviceID: "x", Channel: "beta"})
			b.DeleteOverride("a", strings.ToUpper(u2))
			b.DeleteOverride("a", "X")
			b.DeleteOverride("a", "missing")
			b.DeleteOverride("nope", u1)
		}, [][3]string{{"a", u1, "prod"}, {"a", u2, ""}, {"a", "x", ""}},
			[]string{"a|" + u1 + "|prod"}},
		{"near-uuid ids are plain strings", func(b *Builder) {
			b.PutOverride(Override{AppID: "a", DeviceID: "0000000g-0000-4000-8000-000000000000", Channel: "c1"})
			b.PutOverride(Override{AppID: "a", DeviceID: "00000000-0000-4000-8000-0000000000000", Channel: "c2"})
			b.PutOverride(Override{AppID: "a", DeviceID: "00000000+0000-4000-8000-000000000000", Channel: "c3"})
		}, [][3]string{{"a", "0000000g-0000-4000-8000-000000000000", "c1"}, {"a", "00000000-0000-4000-8000-000000000000", ""}},
			[]string{"a|00000000+0000-4000-8000-000000000000|c3", "a|00000000-0000-4000-8000-0000000000000|c2", "a|0000000g-0000-4000-8000-000000000000|c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(nil)
			b.PutApp(App{ID: "a"})
			b.PutApp(App{ID: "b"})
			tt.build(b)
			s := b.Build()
			for _, l := range tt.look {
				ch, ok := s.Override(l[0], l[1])
				if ch != l[2] || ok != (l[2] != "") {
					t.Errorf("Override(%q, %q) = %q, %v; want %q", l[0], l[1], ch, ok, l[2])
				}
			}
			if got := overridesOf(s, ""); !slices.Equal(got, tt.list) {
				t.Errorf("Overrides = %q, want %q", got, tt.list)
			}
			if s.OverrideCount() != len(tt.list) {
				t.Errorf("OverrideCount = %d, want %d", s.OverrideCount(), len(tt.list))
			}
		})
	}
}

// TestPinsOfAbsentAppHidden: pins outlive their app's key until the
// sweep's deletes arrive; listings never show them, as they never show
// the app's channels, and the builder still deletes them.
func TestPinsOfAbsentAppHidden(t *testing.T) {
	u1 := testUUID(1)
	b := NewBuilder(nil)
	b.PutApp(App{ID: "a"})
	b.PutOverride(Override{AppID: "a", DeviceID: u1, Channel: "beta"})
	b.PutOverride(Override{AppID: "gone", DeviceID: u1, Channel: "beta"})
	b.PutOverride(Override{AppID: "gone", DeviceID: "plain", Channel: "beta"})
	s := b.Build()
	if got := overridesOf(s, ""); !slices.Equal(got, []string{"a|" + u1 + "|beta"}) {
		t.Errorf("Overrides = %q", got)
	}
	if n := len(overridesOf(s, "gone")); n != 0 {
		t.Errorf("Overrides(gone) listed %d", n)
	}
	b = NewBuilder(s)
	b.DeleteOverride("gone", u1)
	b.DeleteOverride("gone", "plain")
	if n := b.Build().OverrideCount(); n != 1 {
		t.Errorf("after the sweep OverrideCount = %d, want 1", n)
	}
}

// TestBuilderCopyOnWrite checks a builder never changes its base, and two
// builders from one base never see each other's changes.
func TestBuilderCopyOnWrite(t *testing.T) {
	b := NewBuilder(nil)
	b.PutApp(App{ID: "a"})
	b.PutApp(App{ID: "b"})
	for i := range 2000 {
		b.PutOverride(Override{AppID: "a", DeviceID: testUUID(i), Channel: "beta"})
	}
	b.PutOverride(Override{AppID: "a", DeviceID: "plain", Channel: "beta"})
	base := b.Build()
	want := overridesOf(base, "a")

	b1, b2 := NewBuilder(base), NewBuilder(base)
	b1.PutOverride(Override{AppID: "a", DeviceID: testUUID(5), Channel: "one"})
	b1.PutOverride(Override{AppID: "a", DeviceID: "plain", Channel: "one"})
	b1.DeleteOverride("a", testUUID(6))
	b2.PutOverride(Override{AppID: "a", DeviceID: testUUID(5), Channel: "two"})
	b2.PutOverride(Override{AppID: "a", DeviceID: testUUID(9999), Channel: "two"})
	b2.PutOverride(Override{AppID: "b", DeviceID: testUUID(5), Channel: "two"})
	s1, s2 := b1.Build(), b2.Build()

	if got := overridesOf(base, "a"); !slices.Equal(got, want) || base.OverrideCount() != 2001 {
		t.Fatalf("base changed: %d overrides", base.OverrideCount())
	}
	check := func(s *Snapshot, app, dev, want string) {
		t.Helper()
		if ch, _ := s.Override(app, dev); ch != want {
			t.Errorf("Override(%q, %q) = %q, want %q", app, dev, ch, want)
		}
	}
	check(s1, "a", testUUID(5), "one")
	check(s1, "a", "plain", "one")
	check(s1, "a", testUUID(6), "")
	check(s1, "a", testUUID(7), "beta")
	check(s1, "b", testUUID(5), "")
	check(s2, "a", testUUID(5), "two")
	check(s2, "a", "plain", "beta")
	check(s2, "a", testUUID(6), "beta")
	check(s2, "a", testUUID(9999), "two")
	check(s2, "b", testUUID(5), "two")
	if s1.OverrideCount() != 2000 || s2.OverrideCount() != 2003 {
		t.Errorf("counts %d, %d", s1.OverrideCount(), s2.OverrideCount())
	}
	if n := len(overridesOf(s2, "b")); n != 1 {
		t.Errorf("Overrides(b) listed %d", n)
	}
	// Stopping early stops everything.
	n := 0
	s2.Overrides("", func(Override) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("Overrides did not stop: %d calls", n)
	}
}

// bigOverrides builds the memory benchmark's shape: n overrides of UUID
// devices spread over 10 apps, three channels each.
func bigOverrides(n int) (*Snapshot, []string) {
	b := NewBuilder(nil)
	devs := make([]string, n)
	chans := []string{"production", "beta", "qa"}
	for i := range n {
		devs[i] = testUUID(i)
		b.PutOverride(Override{AppID: fmt.Sprintf("com.example.app%d", i%10), DeviceID: devs[i], Channel: chans[i%3]})
	}
	return b.Build(), devs
}

// BenchmarkOverridesHeap reports the live heap of 1,000,000 overrides.
func BenchmarkOverridesHeap(b *testing.B) {
	var ms runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		s, _ := bigOverrides(1_000_000)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/1e6, "heapMB")
		runtime.KeepAlive(s)
	}
}

func BenchmarkSnapshotOverride(b *testing.B) {
	s, devs := bigOverrides(1_000_000)
	bb := NewBuilder(s)
	bb.PutOverride(Override{AppID: "com.example.app3", DeviceID: "pinned-device", Channel: "qa"})
	s = bb.Build()
	b.Run("uuid-hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i = (i + 7919) % len(devs)
			if _, ok := s.Override(appNames[i%10], devs[i]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("uuid-miss", func(b *testing.B) {
		b.ReportAllocs()
		dev := "0b9f3c4e-8d1a-4e2b-9c3d-5f6a7b8c9d0e"
		for b.Loop() {
			if _, ok := s.Override("com.example.app3", dev); ok {
				b.Fatal("hit")
			}
		}
	})
	b.Run("plain-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := s.Override("com.example.app3", "pinned-device"); !ok {
				b.Fatal("miss")
			}
		}
	})
}

var appNames = func() []string {
	out := make([]string, 10)
	for i := range out {
		out[i] = fmt.Sprintf("com.example.app%d", i)
	}
	return out
}()
