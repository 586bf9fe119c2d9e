package release

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// bulkOverrides writes n overrides straight to the bucket's subjects, the
// way a restore or a large import would, without one round trip each.
func bulkOverrides(tb testing.TB, js jetstream.JetStream, app string, from, n int, channel string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subj := "$KV." + DefaultBucket + "."
	var futures []jetstream.PubAckFuture
	for i := from; i < from+n; i++ {
		dev := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		data, _ := json.Marshal(Override{AppID: app, DeviceID: dev, Channel: channel})
		f, err := js.PublishAsync(subj+ovrKey(app, dev), data)
		if err != nil {
			tb.Fatal(err)
		}
		futures = append(futures, f)
		if len(futures) == 2000 || i == from+n-1 {
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					tb.Fatal(err)
				case <-ctx.Done():
					tb.Fatal("bulk publish did not complete")
				}
			}
			futures = futures[:0]
		}
	}
}

// TestLoadManyOverrides checks the initial load publishes one snapshot
// however many keys there are, and that a burst of live changes is
// folded into few snapshots instead of one per key.
func TestLoadManyOverrides(t *testing.T) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 10_000
	}
	b := testBus(t, t.TempDir(), "")
	ctx := tctx(t)
	seed := testStore(t, b.JetStream, Options{})
	must(t, seed.CreateApp(ctx, App{ID: "com.a"}))
	must(t, seed.PutChannel(ctx, NewChannel("com.a", "beta")))
	seed.Close()
	bulkOverrides(t, b.JetStream, "com.a", 0, n, "beta")

	start := time.Now()
	s := testStore(t, b.JetStream, Options{})
	t.Logf("loaded %d overrides in %v", n, time.Since(start))
	if got := s.Snapshot().OverrideCount(); got != n {
		t.Fatalf("override count %d, want %d", got, n)
	}
	if got := counterValue(s.updates); got != 1 {
		t.Fatalf("initial load published %v snapshots, want 1", got)
	}
	if ch, ok := s.Snapshot().Override("com.a", fmt.Sprintf("%08x-0000-4000-8000-%012x", 77, 77)); !ok || ch != "beta" {
		t.Fatal("override missing after load")
	}

	// A live burst: re-pin a fifth of the devices and add n/20 new ones.
	start = time.Now()
	bulkOverrides(t, b.JetStream, "com.a", n-n/5, n/4, "production")
	waitFor(t, func() bool { return s.Snapshot().OverrideCount() == n+n/20 })
	last := fmt.Sprintf("%08x-0000-4000-8000-%012x", n+n/20-1, n+n/20-1)
	waitFor(t, func() bool { ch, _ := s.Snapshot().Override("com.a", last); return ch == "production" })
	swaps := counterValue(s.updates) - 1
	t.Logf("applied %d live changes in %v over %v snapshots", n/4, time.Since(start), swaps)
	if swaps >= float64(n/4) {
		t.Fatalf("one snapshot per change (%v)", swaps)
	}
	waitFor(t, func() bool {
		ch, _ := s.Snapshot().Override("com.a", fmt.Sprintf("%08x-0000-4000-8000-%012x", n-n/5, n-n/5))
		return ch == "production"
	})
}

// BenchmarkInitialLoad measures building the snapshot from a bucket of
// 100,000 overrides.
func BenchmarkInitialLoad(b *testing.B) {
	bs := testBus(b, b.TempDir(), "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seed, err := Open(ctx, bs.JetStream, Options{CacheDir: b.TempDir()}) // creates the buckets
	if err != nil {
		b.Fatal(err)
	}
	bulkOverrides(b, bs.JetStream, "com.a", 0, 100_000, "beta")
	seed.Close()
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s, err := Open(ctx, bs.JetStream, Options{CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		if s.Snapshot().OverrideCount() != 100_000 {
			b.Fatal("overrides missing")
		}
		s.Close()
		cancel()
	}
}
