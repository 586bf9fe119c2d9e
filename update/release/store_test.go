package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capstan-io/capstan/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func testBus(t testing.TB, dir, listen string) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func testStore(t *testing.T, js jetstream.JetStream, opts Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	s, err := Open(ctx, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func zipBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func objectCount(t *testing.T, s *Store) int {
	t.Helper()
	list, err := s.obs.List(tctx(t))
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	must(t, err)
	return len(list)
}

func TestStoreCRUD(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	s := testStore(t, b.JetStream, Options{})
	ctx := tctx(t)
	const app = "com.example.app"

	must(t, s.CreateApp(ctx, App{ID: app, Name: "Example"}))
	wantErr(t, s.CreateApp(ctx, App{ID: app}), ErrExists)
	wantErr(t, s.CreateApp(ctx, App{ID: ""}), ErrInvalid)
	if a, ok := s.Snapshot().App(app); !ok || a.Name != "Example" || a.CreatedAt.IsZero() {
		t.Fatalf("app in snapshot: %+v %v", a, ok)
	}
	must(t, s.PutApp(ctx, App{ID: app, Name: "Renamed"}))
	if a, _ := s.Snapshot().App(app); a.Name != "Renamed" || a.CreatedAt.IsZero() {
		t.Fatalf("renamed app: %+v", a)
	}
	wantErr(t, s.PutApp(ctx, App{ID: "com.missing"}), ErrNotFound)

	// Channels get small stable ids.
	must(t, s.PutChannel(ctx, NewChannel(app, "production")))
	must(t, s.PutChannel(ctx, NewChannel(app, "beta")))
	prod, ok := s.Snapshot().Channel(app, "production")
	if !ok || prod.ID != 1 || prod.UpdatedAt.IsZero() {
		t.Fatalf("production: %+v", prod)
	}
	if beta, _ := s.Snapshot().Channel(app, "beta"); beta.ID != 2 {
		t.Fatalf("beta id %d", beta.ID)
	}
	c := NewChannel(app, "production")
	c.Public = true
	must(t, s.PutChannel(ctx, c))
	if p, _ := s.Snapshot().Channel(app, "production"); p.ID != 1 || !p.Public {
		t.Fatalf("production after update: %+v", p)
	}
	if names := channelNames(s.Snapshot().Channels(app)); names != "beta,production" {
		t.Fatalf("channels %s", names)
	}
	wantErr(t, s.PutChannel(ctx, NewChannel("com.missing", "x")), ErrNotFound)
	c.Bundle = "9.9.9"
	wantErr(t, s.PutChannel(ctx, c), ErrNotFound)
	bad := NewChannel(app, "bad")
	bad.RolloutPercent = 101
	wantErr(t, s.PutChannel(ctx, bad), ErrInvalid)

	// Bundles: zip stored, digest and size recorded, plaintext checksum filled.
	zip := zipBytes(300_000)
	sum := sha256.Sum256(zip)
	must(t, s.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0+build.7"}, bytes.NewReader(zip)))
	bu, ok := s.Snapshot().Bundle(app, "1.0.0+build.7")
	if !ok || bu.ObjectSHA256 != hex.EncodeToString(sum[:]) || bu.Checksum != bu.ObjectSHA256 || bu.Size != int64(len(zip)) || bu.Object == "" {
		t.Fatalf("bundle in snapshot: %+v", bu)
	}
	must(t, s.CreateBundle(ctx, Bundle{AppID: app, Version: "2.0.0", ExternalURL: "https://cdn.example.com/2.0.0.zip", Checksum: "abc"}, nil))
	wantErr(t, s.CreateBundle(ctx, Bundle{AppID: app, Version: "3.0.0"}, nil), ErrInvalid)
	wantErr(t, s.CreateBundle(ctx, Bundle{AppID: app, Version: "3.0.0", SessionKey: "iv:key"}, bytes.NewReader(zip)), ErrInvalid)
	wantErr(t, s.CreateBundle(ctx, Bundle{AppID: "com.missing", Version: "1"}, bytes.NewReader(zip)), ErrNotFound)

	c.Bundle = "1.0.0+build.7"
	c.RolloutBundle, c.RolloutPercent = "2.0.0", 10
	must(t, s.PutChannel(ctx, c))
	wantErr(t, s.DeleteBundle(ctx, app, "1.0.0+build.7"), ErrInUse)
	wantErr(t, s.DeleteBundle(ctx, app, "2.0.0"), ErrInUse)
	wantErr(t, s.DeleteBundle(ctx, app, "7.7.7"), ErrNotFound)
	c.RolloutBundle, c.RolloutPercent = "", 0
	must(t, s.PutChannel(ctx, c))
	must(t, s.DeleteBundle(ctx, app, "2.0.0"))
	if _, ok := s.Snapshot().Bundle(app, "2.0.0"); ok {
		t.Fatal("deleted bundle still in snapshot")
	}

	// Overrides: device ids are case-insensitive.
	must(t, s.PutOverride(ctx, Override{AppID: app, DeviceID: "ABC-DEF", Channel: "beta"}))
	if ch, ok := s.Snapshot().Override(app, "abc-def"); !ok || ch != "beta" {
		t.Fatalf("override %q %v", ch, ok)
	}
	wantErr(t, s.PutOverride(ctx, Override{AppID: app, DeviceID: "x", Channel: "nope"}), ErrNotFound)
	must(t, s.DeleteOverride(ctx, app, "Abc-Def"))
	wantErr(t, s.DeleteOverride(ctx, app, "abc-def"), ErrNotFound)
	if s.Snapshot().OverrideCount() != 0 {
		t.Fatal("override not deleted")
	}

	// Tokens.
	h := strings.Repeat("ab", 32)
	must(t, s.AddTokenHash(ctx, h, "ci"))
	wantErr(t, s.AddTokenHash(ctx, h, "ci"), ErrExists)
	wantErr(t, s.AddTokenHash(ctx, "xyz", "ci"), ErrInvalid)
	if !s.TokenHashKnown(h) || s.TokenHashKnown(strings.Repeat("cd", 32)) {
		t.Fatal("token lookup")
	}
	if toks := s.Snapshot().Tokens(); len(toks) != 1 || toks[0].Name != "ci" {
		t.Fatalf("tokens %+v", toks)
	}
	must(t, s.DeleteTokenHash(ctx, h))
	if s.TokenHashKnown(h) {
		t.Fatal("revoked token still known")
	}

	must(t, s.DeleteChannel(ctx, app, "beta"))
	wantErr(t, s.DeleteChannel(ctx, app, "beta"), ErrNotFound)

	// Deleting the app takes everything with it, zips included.
	must(t, s.PutOverride(ctx, Override{AppID: app, DeviceID: "d1", Channel: "production"}))
	must(t, s.DeleteApp(ctx, app))
	wantErr(t, s.DeleteApp(ctx, app), ErrNotFound)
	snap := s.Snapshot()
	if _, ok := snap.App(app); ok || len(snap.Channels(app)) != 0 || snap.OverrideCount() != 0 {
		t.Fatal("app remnants in snapshot")
	}
	if n := objectCount(t, s); n != 0 {
		t.Fatalf("%d objects left after app delete", n)
	}
	// Re-created app starts clean; its channel ids restart too.
	must(t, s.CreateApp(ctx, App{ID: app}))
	must(t, s.PutChannel(ctx, NewChannel(app, "production")))
	if p, _ := s.Snapshot().Channel(app, "production"); p.ID != 1 || p.Bundle != "" {
		t.Fatalf("recreated channel %+v", p)
	}
}

func channelNames(cs []*Channel) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func TestStoreRestartReloads(t *testing.T) {
	dir := t.TempDir()
	ctx := tctx(t)
	b := testBus(t, dir, "")
	s := testStore(t, b.JetStream, Options{})
	must(t, s.CreateApp(ctx, App{ID: "com.a"}))
	must(t, s.CreateBundle(ctx, Bundle{AppID: "com.a", Version: "1.0.0"}, bytes.NewReader(zipBytes(1000))))
	ch := NewChannel("com.a", "production")
	ch.Bundle = "1.0.0"
	must(t, s.PutChannel(ctx, ch))
	must(t, s.PutOverride(ctx, Override{AppID: "com.a", DeviceID: "dev1", Channel: "production"}))
	must(t, s.AddTokenHash(ctx, strings.Repeat("0f", 32), "admin"))
	s.Close()
	b.Close()

	b2 := testBus(t, dir, "")
	s2 := testStore(t, b2.JetStream, Options{})
	snap := s2.Snapshot()
	if c, ok := snap.Channel("com.a", "production"); !ok || c.Bundle != "1.0.0" || c.ID != 1 {
		t.Fatalf("channel after restart: %+v", c)
	}
	if _, ok := snap.Bundle("com.a", "1.0.0"); !ok {
		t.Fatal("bundle lost")
	}
	if ch, _ := snap.Override("com.a", "dev1"); ch != "production" {
		t.Fatal("override lost")
	}
	if !s2.TokenHashKnown(strings.Repeat("0f", 32)) {
		t.Fatal("token lost")
	}
	f, _, err := s2.OpenBundle(ctx, "com.a", "1.0.0")
	must(t, err)
	defer f.Close()
	got, _ := io.ReadAll(f)
	if !bytes.Equal(got, zipBytes(1000)) {
		t.Fatal("zip changed across restart")
	}
	// The channel counter survives too: the next channel gets id 2.
	must(t, s2.PutChannel(ctx, NewChannel("com.a", "beta")))
	if c, _ := s2.Snapshot().Channel("com.a", "beta"); c.ID != 2 {
		t.Fatalf("beta id %d", c.ID)
	}
}

func TestDuplicateBundleLeavesNoOrphan(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	s := testStore(t, b.JetStream, Options{})
	ctx := tctx(t)
	must(t, s.CreateApp(ctx, App{ID: "com.a"}))
	must(t, s.CreateBundle(ctx, Bundle{AppID: "com.a", Version: "1.0.0"}, bytes.NewReader(zipBytes(5000))))
	wantErr(t, s.CreateBundle(ctx, Bundle{AppID: "com.a", Version: "1.0.0"}, bytes.NewReader(zipBytes(6000))), ErrExists)

	// Racing uploads of one version: one wins, the losers clean up after
	// themselves even when they got past the early duplicate check.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateBundle(ctx, Bundle{AppID: "com.a", Version: "2.0.0"}, bytes.NewReader(zipBytes(70_000+i)))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			wantErr(t, err, ErrExists)
		}
	}
	if wins != 1 {
		t.Fatalf("%d uploads won", wins)
	}
	if n := objectCount(t, s); n != 2 {
		t.Fatalf("%d objects stored, want 2", n)
	}
	bu, _ := s.Snapshot().Bundle("com.a", "2.0.0")
	f, _, err := s.OpenBundle(ctx, "com.a", "2.0.0")
	must(t, err)
	defer f.Close()
	got, _ := io.ReadAll(f)
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != bu.ObjectSHA256 || int64(len(got)) != bu.Size {
		t.Fatal("winning upload's zip does not match its metadata")
	}
}

func TestBundleCache(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	ctx := tctx(t)
	writer := testStore(t, b.JetStream, Options{})
	zip := zipBytes(1 << 20)
	must(t, writer.CreateApp(ctx, App{ID: "com.a"}))
	must(t, writer.CreateBundle(ctx, Bundle{AppID: "com.a", Version: "1.0.0"}, bytes.NewReader(zip)))

	// A second front with an empty cache: concurrent first downloads all
	// get the right bytes and leave one cached file.
	cache := t.TempDir()
	s := testStore(t, b.JetStream, Options{CacheDir: cache})
	waitFor(t, func() bool { _, ok := s.Snapshot().Bundle("com.a", "1.0.0"); return ok })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, bu, err := s.OpenBundle(ctx, "com.a", "1.0.0")
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			got, _ := io.ReadAll(f)
			if !bytes.Equal(got, zip) || bu.Size != int64(len(zip)) {
				t.Error("downloaded bytes differ")
			}
		}()
	}
	wg.Wait()
	bu, _ := s.Snapshot().Bundle("com.a", "1.0.0")
	ents, _ := os.ReadDir(cache)
	if len(ents) != 1 || ents[0].Name() != bu.ObjectSHA256+".zip" {
		t.Fatalf("cache dir holds %v", ents)
	}

	// A damaged cache file is replaced, not served.
	path := filepath.Join(cache, bu.ObjectSHA256+".zip")
	must(t, os.WriteFile(path, []byte("garbage"), 0o644))
	f, _, err := s.OpenBundle(ctx, "com.a", "1.0.0")
	must(t, err)
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, zip) {
		t.Fatal("damaged cache served")
	}

	// The cache never accepts bytes that do not match the digest.
	bad := *bu
	bad.ObjectSHA256 = strings.Repeat("0", 64)
	err = s.bundleDownload(ctx, bad, filepath.Join(cache, bad.ObjectSHA256+".zip"))
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("bad digest accepted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, bad.ObjectSHA256+".zip")); !os.IsNotExist(err) {
		t.Fatal("mismatching file cached")
	}

	_, _, err = s.OpenBundle(ctx, "com.a", "9.9.9")
	wantErr(t, err, ErrNotFound)

	// Deleting the bundle drops the writer's cached copy.
	must(t, writer.DeleteBundle(ctx, "com.a", "1.0.0"))
	if _, err := os.Stat(filepath.Join(writer.opts.CacheDir, bu.ObjectSHA256+".zip")); !os.IsNotExist(err) {
		t.Fatal("cache file of deleted bundle kept")
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTwoFronts runs two stores on separate connections to one server,
// as two front processes would: a change through either is visible in the
// other's snapshot within a second.
func TestTwoFronts(t *testing.T) {
	b := testBus(t, t.TempDir(), "127.0.0.1:-1")
	nc, err := nats.Connect(b.Server.ClientURL())
	must(t, err)
	t.Cleanup(nc.Close)
	js2, err := jetstream.New(nc)
	must(t, err)
	ctx := tctx(t)
	a := testStore(t, b.JetStream, Options{})
	bb := testStore(t, js2, Options{})

	must(t, a.CreateApp(ctx, App{ID: "com.a"}))
	must(t, bb.PutChannel(ctx, NewChannel("com.a", "production"))) // app known via the bucket
	visibleWithin(t, a, time.Second, func(s *Snapshot) bool { _, ok := s.Channel("com.a", "production"); return ok })

	for i, front := range []*Store{a, bb} {
		other := []*Store{bb, a}[i]
		c := NewChannel("com.a", "production")
		c.Public = i == 0
		c.AllowSelfSet = i == 1
		must(t, front.PutChannel(ctx, c))
		visibleWithin(t, other, time.Second, func(s *Snapshot) bool {
			ch, ok := s.Channel("com.a", "production")
			return ok && ch.Public == c.Public && ch.AllowSelfSet == c.AllowSelfSet && ch.ID == 1
		})
	}
	must(t, a.PutOverride(ctx, Override{AppID: "com.a", DeviceID: "d", Channel: "production"}))
	visibleWithin(t, bb, time.Second, func(s *Snapshot) bool { ch, _ := s.Override("com.a", "d"); return ch == "production" })
	wantErr(t, bb.DeleteChannel(ctx, "com.a", "production"), ErrChannelInUse)
	must(t, bb.DeleteOverride(ctx, "com.a", "d"))
	must(t, bb.DeleteChannel(ctx, "com.a", "production"))
	visibleWithin(t, a, time.Second, func(s *Snapshot) bool { _, ok := s.Channel("com.a", "production"); return !ok })
}

// visibleWithin polls s's snapshot until cond holds or d passes.
func visibleWithin(t *testing.T, s *Store, d time.Duration, cond func(*Snapshot) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond(s.Snapshot()) {
		if time.Now().After(deadline) {
			t.Fatalf("change not visible on the other front within %v", d)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWatchReestablished(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	s := testStore(t, b.JetStream, Options{})
	ctx := tctx(t)
	must(t, s.CreateApp(ctx, App{ID: "com.a"}))
	// End the watch as a lost subscription would; the store must watch
	// again and pick up later changes.
	s.watchMu.Lock()
	_ = s.watcher.Stop()
	s.watchMu.Unlock()
	must(t, s.PutChannel(ctx, NewChannel("com.a", "x")))
	waitFor(t, func() bool { _, ok := s.Snapshot().Channel("com.a", "x"); return ok })
	waitFor(t, s.Ready)
	if _, ok := s.Snapshot().App("com.a"); !ok {
		t.Fatal("rebuilt snapshot lost the app")
	}
}

func TestCheckAndReady(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	s := testStore(t, b.JetStream, Options{})
	if !s.Ready() {
		t.Fatal("not ready after WaitReady")
	}
	must(t, s.Check(tctx(t)))
}

func TestMetricsRegistered(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	reg := prometheus.NewRegistry()
	s := testStore(t, b.JetStream, Options{Registerer: reg})
	_ = testStore(t, b.JetStream, Options{Registerer: reg}) // second store shares the collectors
	ctx := tctx(t)
	must(t, s.CreateApp(ctx, App{ID: "com.a"}))
	must(t, s.PutChannel(ctx, NewChannel("com.a", "p")))
	must(t, s.PutOverride(ctx, Override{AppID: "com.a", DeviceID: "d", Channel: "p"}))
	mfs, err := reg.Gather()
	must(t, err)
	seen := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		seen[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	if seen["capstan_release_snapshot_updates_total"] < 1 {
		t.Fatalf("updates counter %v", seen)
	}
	if _, ok := seen["capstan_release_overrides"]; !ok {
		t.Fatalf("overrides gauge missing: %v", seen)
	}
}
