package release

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// raceRuns is how often each race is fired.
const raceRuns = 20

// fronts is two stores on their own connections to one embedded server,
// as two front processes would be.
type fronts struct {
	t    *testing.T
	js   jetstream.JetStream
	a, b *Store
}

func newFronts(t *testing.T) *fronts {
	t.Helper()
	bus := testBus(t, t.TempDir(), "127.0.0.1:-1")
	nc, err := nats.Connect(bus.Server.ClientURL())
	must(t, err)
	t.Cleanup(nc.Close)
	js2, err := jetstream.New(nc)
	must(t, err)
	return &fronts{t: t, js: bus.JetStream, a: testStore(t, bus.JetStream, Options{}), b: testStore(t, js2, Options{})}
}

// race runs f and g at the same moment; on odd runs f starts a little
// later, so each gets to win.
func race(run int, f, g func() error) (errF, errG error) {
	start := make(chan struct{})
	done := make(chan struct{})
	go func() {
		<-start
		errG = g()
		close(done)
	}()
	close(start)
	if run%2 == 1 {
		time.Sleep(time.Duration(run%7) * 250 * time.Microsecond)
	}
	errF = f()
	<-done
	return errF, errG
}

// state renders everything readers see of a snapshot.
func state(s *Snapshot) string {
	var out []string
	for _, a := range s.Apps() {
		out = append(out, "app "+a.ID)
		for _, c := range s.Channels(a.ID) {
			out = append(out, fmt.Sprintf("chan %s/%s id=%d bundle=%q rollout=%q public=%v ios=%v android=%v electron=%v", a.ID, c.Name, c.ID, c.Bundle, c.RolloutBundle, c.Public, c.IOS, c.Android, c.Electron))
		}
		for _, b := range s.Bundles(a.ID) {
			out = append(out, fmt.Sprintf("bundle %s/%s object=%s", a.ID, b.Version, b.Object))
		}
	}
	s.Overrides("", func(o Override) bool {
		out = append(out, fmt.Sprintf("ovr %s/%s=%s", o.AppID, o.DeviceID, o.Channel))
		return true
	})
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// settle opens a fresh store (a restarted front), waits for both running
// fronts to show exactly what it shows, checks the invariants on it and
// on the bucket, and returns its snapshot.
func (f *fronts) settle() *Snapshot {
	t := f.t
	t.Helper()
	ctx := tctx(t)
	fresh, err := Open(ctx, f.js, Options{CacheDir: t.TempDir()})
	must(t, err)
	defer fresh.Close()
	must(t, fresh.WaitReady(ctx))
	want := state(fresh.Snapshot())
	for _, s := range []*Store{f.a, f.b} {
		deadline := time.Now().Add(5 * time.Second)
		for state(s.Snapshot()) != want {
			if time.Now().After(deadline) {
				t.Fatalf("fronts did not converge:\nrunning:\n%s\nrestarted:\n%s", state(s.Snapshot()), want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	snap := fresh.Snapshot()
	checkInvariants(t, fresh, snap)
	return snap
}

// checkInvariants fails t when snap or the bucket break an invariant.
func checkInvariants(t *testing.T, s *Store, snap *Snapshot) {
	t.Helper()
	ctx := tctx(t)
	objects := map[string]bool{}
	for _, a := range snap.Apps() {
		public := map[string]string{}
		for _, c := range snap.Channels(a.ID) {
			for _, v := range []string{c.Bundle, c.RolloutBundle} {
				if _, ok := snap.Bundle(a.ID, v); v != "" && !ok {
					t.Fatalf("channel %s/%s points at missing bundle %q", a.ID, c.Name, v)
				}
			}
			if !c.Public {
				continue
			}
			for _, p := range []string{"ios", "android", "electron"} {
				if c.PlatformEnabled(p) {
					if other, ok := public[p]; ok {
						t.Fatalf("app %s: channels %s and %s both public for %s", a.ID, other, c.Name, p)
					}
					public[p] = c.Name
				}
			}
		}
		for _, b := range snap.Bundles(a.ID) {
			if b.Object != "" {
				objects[b.Object] = true
			}
		}
	}
	snap.Overrides("", func(o Override) bool {
		if _, ok := snap.Channel(o.AppID, o.Channel); !ok {
			t.Fatalf("device %s of %s pinned to missing channel %q", o.DeviceID, o.AppID, o.Channel)
		}
		return true
	})
	// The bucket holds nothing of an app without its key.
	keys, err := s.listKeys(ctx, ">")
	must(t, err)
	for _, k := range keys {
		pk, err := parseKey(k)
		if err != nil || pk.kind == kindApp || pk.kind == kindToken {
			continue
		}
		if _, ok := snap.App(pk.segs[0]); !ok {
			t.Fatalf("key %s left under deleted app %q", k, pk.segs[0])
		}
	}
	// Every zip belongs to a bundle.
	list, err := s.listObjects(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return
	}
	must(t, err)
	for _, o := range list {
		if !objects[o.Name] {
			t.Fatalf("orphaned zip %s", o.Name)
		}
	}
}

// oneWins checks that exactly one of two racing writes succeeded and the
// other failed with want.
func oneWins(t *testing.T, i int, e1, e2, want error) (firstWon bool) {
	t.Helper()
	switch {
	case e1 == nil && errors.Is(e2, want):
		return true
	case e2 == nil && errors.Is(e1, want):
		return false
	}
	t.Fatalf("run %d: want one success and one %v, got %v and %v", i, want, e1, e2)
	return false
}

func publicChannel(app, name string) Channel {
	c := NewChannel(app, name)
	c.Public = true
	return c
}

func TestRacePublicChannels(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	wins := [2]int{}
	for i := range raceRuns {
		app := fmt.Sprintf("com.race.public%d", i)
		must(t, f.a.CreateApp(ctx, App{ID: app}))
		x, y := f.a, f.b
		if i%4 >= 2 {
			x, y = y, x
		}
		e1, e2 := race(i,
			func() error { return x.PutChannel(ctx, publicChannel(app, "production")) },
			func() error { return y.PutChannel(ctx, publicChannel(app, "default")) },
		)
		if oneWins(t, i, e1, e2, ErrPublicConflict) {
			wins[0]++
		} else {
			wins[1]++
		}
		if n := len(f.settle().Channels(app)); n != 1 {
			t.Fatalf("run %d: %d channels", i, n)
		}
	}
	t.Logf("public channel race: first write won %d, second %d", wins[0], wins[1])
}

func TestRaceDeleteBundleInUse(t *testing.T) {
	for _, rollout := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollout=%v", rollout), func(t *testing.T) {
			f := newFronts(t)
			ctx := tctx(t)
			deleted := 0
			for i := range raceRuns {
				app := fmt.Sprintf("com.race.bundle%d", i)
				must(t, f.a.CreateApp(ctx, App{ID: app}))
				must(t, f.a.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0"}, bytes.NewReader(zipBytes(1000))))
				must(t, f.a.CreateBundle(ctx, Bundle{AppID: app, Version: "2.0.0"}, bytes.NewReader(zipBytes(2000))))
				c := NewChannel(app, "production")
				c.Bundle = "1.0.0"
				must(t, f.a.PutChannel(ctx, c))
				if rollout {
					c.RolloutBundle, c.RolloutPercent = "2.0.0", 50
				} else {
					c.Bundle = "2.0.0"
				}
				e1, e2 := race(i,
					func() error { return f.a.DeleteBundle(ctx, app, "2.0.0") },
					func() error { return f.b.PutChannel(ctx, c) },
				)
				switch {
				case e1 == nil && errors.Is(e2, ErrBundleNotFound):
					deleted++
				case e2 == nil && errors.Is(e1, ErrInUse):
				default:
					t.Fatalf("run %d: delete bundle %v, put channel %v", i, e1, e2)
				}
				snap := f.settle()
				_, kept := snap.Bundle(app, "2.0.0")
				if kept == (e1 == nil) {
					t.Fatalf("run %d: bundle kept=%v after delete err %v", i, kept, e1)
				}
			}
			t.Logf("delete bundle vs point channel (rollout=%v): delete won %d of %d", rollout, deleted, raceRuns)
		})
	}
}

func TestRaceDeleteChannelPinned(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	deleted := 0
	for i := range raceRuns {
		app := fmt.Sprintf("com.race.pin%d", i)
		must(t, f.a.CreateApp(ctx, App{ID: app}))
		must(t, f.a.PutChannel(ctx, NewChannel(app, "beta")))
		e1, e2 := race(i,
			func() error { return f.a.DeleteChannel(ctx, app, "beta") },
			func() error { return f.b.PutOverride(ctx, Override{AppID: app, DeviceID: "dev-1", Channel: "beta"}) },
		)
		switch {
		case e1 == nil && errors.Is(e2, ErrChannelNotFound):
			deleted++
		case e2 == nil && errors.Is(e1, ErrChannelInUse):
		default:
			t.Fatalf("run %d: delete channel %v, pin %v", i, e1, e2)
		}
		f.settle()
	}
	t.Logf("delete channel vs pin: delete won %d of %d", deleted, raceRuns)
}

func TestRaceDuplicateBundle(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	for i := range raceRuns {
		app := fmt.Sprintf("com.race.dup%d", i)
		must(t, f.a.CreateApp(ctx, App{ID: app}))
		e1, e2 := race(i,
			func() error {
				return f.a.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0"}, bytes.NewReader(zipBytes(5000)))
			},
			func() error {
				return f.b.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0"}, bytes.NewReader(zipBytes(6000)))
			},
		)
		oneWins(t, i, e1, e2, ErrExists)
		if n := len(f.settle().Bundles(app)); n != 1 {
			t.Fatalf("run %d: %d bundles", i, n)
		}
	}
}

// TestRaceDeleteAppDuringWrites deletes an app while the other front
// uploads a bundle, adds a channel or pins a device: whatever the order,
// nothing of the app is left in the bucket or the object store, and the
// app never comes back.
func TestRaceDeleteAppDuringWrites(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	writes := map[string]func(app string) error{
		"upload": func(app string) error {
			return f.b.CreateBundle(ctx, Bundle{AppID: app, Version: "9.0.0"}, bytes.NewReader(zipBytes(200_000)))
		},
		"channel": func(app string) error { return f.b.PutChannel(ctx, NewChannel(app, "late")) },
		"pin": func(app string) error {
			return f.b.PutOverride(ctx, Override{AppID: app, DeviceID: "dev-9", Channel: "production"})
		},
	}
	for name, write := range writes {
		lost := 0
		for i := range raceRuns {
			app := fmt.Sprintf("com.race.del.%s%d", name, i)
			must(t, f.a.CreateApp(ctx, App{ID: app}))
			must(t, f.a.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0"}, bytes.NewReader(zipBytes(1000))))
			c := NewChannel(app, "production")
			c.Bundle = "1.0.0"
			must(t, f.a.PutChannel(ctx, c))
			must(t, f.a.PutOverride(ctx, Override{AppID: app, DeviceID: "dev-1", Channel: "production"}))
			e1, e2 := race(i,
				func() error { return f.a.DeleteApp(ctx, app) },
				func() error { return write(app) },
			)
			must(t, e1)
			if e2 != nil {
				if !errors.Is(e2, ErrNotFound) {
					t.Fatalf("%s run %d: write failed with %v, want app deleted", name, i, e2)
				}
				lost++
			}
			snap := f.settle()
			if _, ok := snap.App(app); ok {
				t.Fatalf("%s run %d: deleted app came back", name, i)
			}
		}
		t.Logf("delete app vs %s: write lost %d of %d", name, lost, raceRuns)
	}
}

// TestRepairAfterCrash leaves what a front that crashed mid-way would:
// an app key deleted with its channels, bundles, pins and zip still
// there, and a zip no bundle refers to. A starting front removes both,
// and nothing of the deleted app was ever visible.
func TestRepairAfterCrash(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	const app = "com.crash"
	must(t, f.a.CreateApp(ctx, App{ID: app}))
	must(t, f.a.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0"}, bytes.NewReader(zipBytes(1000))))
	c := NewChannel(app, "production")
	c.Bundle = "1.0.0"
	must(t, f.a.PutChannel(ctx, c))
	must(t, f.a.PutOverride(ctx, Override{AppID: app, DeviceID: "dev-1", Channel: "production"}))
	must(t, f.a.CreateApp(ctx, App{ID: "com.live"}))
	_, err := f.a.obs.Put(ctx, jetstream.ObjectMeta{Name: objectName("com.live", "7.0.0")}, bytes.NewReader(zipBytes(100)))
	must(t, err)
	// The crash: only the app key's delete made it.
	_, err = f.a.deleteKey(ctx, appKey(app), 0)
	must(t, err)
	waitFor(t, func() bool { _, ok := f.b.Snapshot().App(app); return !ok })
	for _, s := range []*Store{f.a, f.b} {
		if got := state(s.Snapshot()); strings.Contains(got, app+"/") && !strings.Contains(got, "ovr "+app) {
			t.Fatalf("deleted app's channels or bundles visible:\n%s", got)
		}
	}
	old := orphanAge.Swap(0)
	t.Cleanup(func() { orphanAge.Store(old) })
	restarted := testStore(t, f.js, Options{})
	waitFor(t, func() bool {
		keys, err := restarted.appKeys(ctx, app)
		return err == nil && len(keys) == 0 && objectCount(t, restarted) == 0
	})
	checkInvariants(t, restarted, restarted.Snapshot())
	// Re-created, the app starts empty.
	must(t, f.b.CreateApp(ctx, App{ID: app}))
	f.settle()
	if n := len(f.a.Snapshot().Channels(app)) + len(f.a.Snapshot().Bundles(app)); n != 0 {
		t.Fatalf("re-created app has %d channels and bundles", n)
	}
}

// TestCreateAppSweepsLeftovers re-creates an app whose delete a crash cut
// short before any front restarted: the old keys go before the new app
// key is written.
func TestCreateAppSweepsLeftovers(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	const app = "com.again"
	must(t, f.a.CreateApp(ctx, App{ID: app}))
	must(t, f.a.CreateBundle(ctx, Bundle{AppID: app, Version: "1.0.0"}, bytes.NewReader(zipBytes(1000))))
	must(t, f.a.PutChannel(ctx, NewChannel(app, "beta")))
	must(t, f.a.PutOverride(ctx, Override{AppID: app, DeviceID: "dev-1", Channel: "beta"}))
	_, err := f.a.deleteKey(ctx, appKey(app), 0)
	must(t, err)
	must(t, f.b.CreateApp(ctx, App{ID: app}))
	snap := f.settle()
	if len(snap.Channels(app)) != 0 || len(snap.Bundles(app)) != 0 {
		t.Fatal("old channels or bundles came back with the re-created app")
	}
	if _, ok := snap.Override(app, "dev-1"); ok {
		t.Fatal("old pin came back with the re-created app")
	}
}

// TestUpdateChannelKeepsConcurrentChange patches two different fields of
// one channel through two fronts at once: both changes are kept.
func TestUpdateChannelKeepsConcurrentChange(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	for i := range raceRuns {
		app := fmt.Sprintf("com.race.patch%d", i)
		must(t, f.a.CreateApp(ctx, App{ID: app}))
		must(t, f.a.PutChannel(ctx, NewChannel(app, "beta")))
		patch := func(s *Store, set func(*Channel)) func() error {
			return func() error {
				_, _, err := s.UpdateChannel(ctx, app, "beta", func(cur *Channel) (Channel, error) {
					if cur == nil {
						return Channel{}, errors.New("channel gone")
					}
					c := *cur
					set(&c)
					return c, nil
				})
				return err
			}
		}
		e1, e2 := race(i, patch(f.a, func(c *Channel) { c.AllowSelfSet = true }), patch(f.b, func(c *Channel) { c.IOS = false }))
		must(t, e1)
		must(t, e2)
		f.settle()
		c, _ := f.a.Snapshot().Channel(app, "beta")
		if !c.AllowSelfSet || c.IOS {
			t.Fatalf("run %d: a change was lost: %+v", i, c)
		}
	}
}

// TestRaceChannelIDs creates two channels of one app through two fronts
// at once: both are created, with different ids.
func TestRaceChannelIDs(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	for i := range raceRuns {
		app := fmt.Sprintf("com.race.ids%d", i)
		must(t, f.a.CreateApp(ctx, App{ID: app}))
		e1, e2 := race(i,
			func() error { return f.a.PutChannel(ctx, NewChannel(app, "alpha")) },
			func() error { return f.b.PutChannel(ctx, NewChannel(app, "beta")) },
		)
		must(t, e1)
		must(t, e2)
		snap := f.settle()
		a, _ := snap.Channel(app, "alpha")
		b, _ := snap.Channel(app, "beta")
		if a == nil || b == nil || a.ID == b.ID || a.ID == 0 || b.ID == 0 {
			t.Fatalf("run %d: channels %+v and %+v", i, a, b)
		}
	}
}

// TestOpenEnablesAtomicPublish opens a bucket made before atomic batches
// were used: Open turns them on, and a later Open leaves the stream as it
// is.
func TestOpenEnablesAtomicPublish(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	ctx := tctx(t)
	_, err := b.JetStream.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: DefaultBucket, History: 1, Storage: jetstream.FileStorage})
	must(t, err)
	s := testStore(t, b.JetStream, Options{})
	info, err := s.stream.Info(ctx)
	must(t, err)
	if !info.Config.AllowAtomicPublish {
		t.Fatal("atomic publish not enabled on an existing bucket")
	}
	must(t, s.CreateApp(ctx, App{ID: "com.a"}))
	must(t, s.PutChannel(ctx, publicChannel("com.a", "production")))
	again := testStore(t, b.JetStream, Options{})
	info2, err := again.stream.Info(ctx)
	must(t, err)
	if !info2.Config.AllowAtomicPublish || !info2.Created.Equal(info.Created) {
		t.Fatal("second open changed the stream")
	}
	if _, ok := again.Snapshot().Channel("com.a", "production"); !ok {
		t.Fatal("channel not loaded")
	}
}

// Pins of one channel all rewrite its key, so they take turns: many
// written at once through two fronts all land, none is refused as
// concurrent.
func TestConcurrentPinsOfOneChannel(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	const app, writers, pins = "com.race.pins", 8, 200
	must(t, f.a.CreateApp(ctx, App{ID: app}))
	must(t, f.a.PutChannel(ctx, NewChannel(app, "beta")))
	work := make(chan int)
	errs := make(chan error, pins)
	var wg sync.WaitGroup
	for w := range writers {
		s := f.a
		if w%2 == 1 {
			s = f.b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs <- s.PutOverride(ctx, Override{AppID: app, DeviceID: fmt.Sprintf("dev-%d", i), Channel: "beta"})
			}
		}()
	}
	for i := range pins {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("pin: %v", err)
		}
	}
	if n := f.settle().OverrideCount(); n != pins {
		t.Fatalf("%d pins in the snapshot, want %d", n, pins)
	}
}
