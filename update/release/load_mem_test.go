package release

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestLoadMillionExternal loads a bucket of a million overrides (ten
// apps, a thousand bundles) from the NATS server at CAPSTAN_LOAD_NATS,
// seeding it first when empty, and logs the time to ready and the peak
// heap. It measures the load alone, with the server in another process.
func TestLoadMillionExternal(t *testing.T) {
	url := os.Getenv("CAPSTAN_LOAD_NATS")
	if url == "" {
		t.Skip("CAPSTAN_LOAD_NATS not set")
	}
	const nApps, perApp, bundles = 10, 100_000, 100
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if st, err := js.Stream(ctx, "KV_"+DefaultBucket); err != nil || st.CachedInfo().State.Msgs < nApps*perApp {
		seed, err := Open(ctx, js, Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		must(t, seed.WaitReady(ctx))
		seed.Close()
		subj := "$KV." + DefaultBucket + "."
		for a := range nApps {
			app := fmt.Sprintf("io.capstan.bench.mem%02d", a)
			put := func(key string, v any) {
				data, _ := json.Marshal(v)
				if _, err := js.Publish(ctx, subj+key, data); err != nil {
					t.Fatal(err)
				}
			}
			put(appKey(app), App{ID: app, Name: app, CreatedAt: time.Now().UTC()})
			for j := range bundles {
				v := fmt.Sprintf("1.%d.%d", j/10, j%10)
				put(bundleKey(app, v), Bundle{AppID: app, Version: v, Checksum: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Object: app + "/" + v, CreatedAt: time.Now().UTC()})
			}
			for _, n := range []string{"production", "beta", "qa"} {
				c := NewChannel(app, n)
				c.Bundle = "1.9.9"
				put(chanKey(app, n), c)
			}
			for i := 0; i < perApp; i += 2000 {
				ch := []string{"beta", "qa"}[i/2000%2]
				bulkOverrides(t, js, app, a*perApp+i, 2000, ch)
			}
		}
		t.Log("seeded")
	}

	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				peak <- max
				return
			case <-tk.C:
				metrics.Read(samples)
				if v := samples[0].Value.Uint64() - samples[1].Value.Uint64(); v > max {
					max = v
				}
			}
		}
	}()
	runtime.GC()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	s, err := Open(ctx, js, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, s.WaitReady(ctx))
	took := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	time.Sleep(50 * time.Millisecond)
	close(stop)
	p := <-peak
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("ready in %v (cpu %v); peak runtime memory %.1f MB; heap after GC %.1f MB; overrides %d", took, cpu, float64(p)/1e6, float64(ms.HeapAlloc)/1e6, s.Snapshot().OverrideCount())
}
