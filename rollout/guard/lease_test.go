package guard

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
)

func testJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Many contenders refreshing at once: exactly one holds the lease each
// round; when it releases, another takes it; when it stops renewing, the
// lease passes on after the TTL.
func TestLeaseOneHolder(t *testing.T) {
	js := testJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ttl = time.Second
	leases := make([]*Lease, 5)
	for i := range leases {
		l, err := OpenLease(ctx, js, string(rune('a'+i)), ttl, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		leases[i] = l
	}
	round := func(skip ...int) []int {
		var mu sync.Mutex
		var holders []int
		var wg sync.WaitGroup
		for i, l := range leases {
			if slices.Contains(skip, i) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				held, err := l.Refresh(ctx)
				if err != nil {
					t.Error(err)
				}
				if held {
					mu.Lock()
					holders = append(holders, i)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return holders
	}
	var first int
	for r := range 20 {
		h := round()
		if len(h) != 1 {
			t.Fatalf("round %d: holders %v, want exactly one", r, h)
		}
		if r == 0 {
			first = h[0]
		} else if h[0] != first {
			t.Fatalf("round %d: lease moved from %d to %d while renewed", r, first, h[0])
		}
	}
	leases[first].Release(ctx)
	if h := round(first); len(h) != 1 {
		t.Fatalf("after release: holders %v, want one other than %d", h, first)
	}
	// The holder stops renewing (partitioned, or killed): another holds
	// it once the TTL passed, and the old one knows it may not act.
	h := round()
	old := leases[h[0]]
	var takenBy atomic.Int32
	takenBy.Store(-1)
	deadline := time.Now().Add(10 * ttl)
	for takenBy.Load() < 0 {
		if time.Now().After(deadline) {
			t.Fatal("the lease never passed on")
		}
		for i, l := range leases {
			if l == old {
				continue
			}
			if held, _ := l.Refresh(ctx); held {
				takenBy.Store(int32(i))
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if old.Held(time.Now()) {
		t.Fatal("the old holder still thinks it holds the lease after the TTL")
	}
	if held, _ := old.Refresh(ctx); held {
		t.Fatal("the old holder took the lease back")
	}
}
