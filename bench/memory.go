package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/release"
	"github.com/nats-io/nats.go/jetstream"
)

// memoryApps is the layout of the memory scenario: ten apps sharing
// bundles evenly (Config.Bundles in total) and the overrides.
func memoryApps(bundles int) []AppPlan {
	const nApps = 10
	per := max(bundles/nApps, 2)
	apps := make([]AppPlan, nApps)
	for i := range apps {
		var vs []string
		for j := range per {
			vs = append(vs, fmt.Sprintf("1.%d.%d", j/10, j%10))
		}
		last, prev := vs[len(vs)-1], vs[len(vs)-2]
		apps[i] = AppPlan{
			ID: fmt.Sprintf("io.capstan.bench.mem%02d", i), Weight: 10, Bundles: vs,
			Channels: []ChannelPlan{
				{Name: "production", Bundle: prev, RolloutBundle: last, RolloutPercent: 25, Public: true},
				{Name: "beta", Bundle: last, AllowSelfSet: true},
				{Name: "qa", Bundle: last},
			},
		}
	}
	return apps
}

// seedStore writes apps, bundles (tiny zips in the object store) and
// channels through the release store's Go API, then the overrides straight
// into its key-value bucket with pipelined publishes: one by one (admin
// API or Store.PutOverride, which waits for its own snapshot to catch up)
// a million take many minutes. The front's capstan_release_overrides gauge
// is checked afterwards, so a drift in the key scheme cannot go unnoticed.
func seedStore(ctx context.Context, js jetstream.JetStream, dir string, apps []AppPlan, overrides []release.Override, logf func(string, ...any)) error {
	st, err := release.Open(ctx, js, release.Options{CacheDir: filepath.Join(dir, "seed-cache")})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	if err := st.WaitReady(ctx); err != nil {
		return err
	}
	zip := TinyBundle("seed")
	for _, a := range apps {
		if err := st.CreateApp(ctx, release.App{ID: a.ID, Name: a.ID, CreatedAt: time.Now().UTC()}); err != nil {
			return fmt.Errorf("seed app: %w", err)
		}
		// Bundle creates of one app conflict on its key; a few at a time,
		// each retried when it lost too often, keep the seed fast.
		if err := parallel(ctx, 4, len(a.Bundles), func(i int) error {
			v := a.Bundles[i]
			for retry := false; ; retry = true {
				err := st.CreateBundle(ctx, release.Bundle{AppID: a.ID, Version: v, CreatedAt: time.Now().UTC()}, bytes.NewReader(zip))
				if retry && errors.Is(err, release.ErrExists) {
					return nil // an earlier attempt landed after all
				}
				if !errors.Is(err, release.ErrConcurrent) {
					return err
				}
			}
		}); err != nil {
			return fmt.Errorf("seed bundles: %w", err)
		}
		for _, c := range a.Channels {
			ch := release.NewChannel(a.ID, c.Name)
			ch.Bundle, ch.RolloutBundle, ch.RolloutPercent = c.Bundle, c.RolloutBundle, c.RolloutPercent
			ch.Public, ch.AllowSelfSet = c.Public, c.AllowSelfSet
			if err := st.PutChannel(ctx, ch); err != nil {
				return fmt.Errorf("seed channel: %w", err)
			}
		}
	}
	// Stop mirroring before the bulk write: this process needs no snapshot.
	st.Close()
	closed = true
	var done atomic.Int64
	t0 := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				logf("seeded %d/%d overrides (%.0f/s)", done.Load(), len(overrides), float64(done.Load())/time.Since(t0).Seconds())
			}
		}
	}()
	err = putOverridesKV(ctx, js, overrides, &done)
	close(stopProgress)
	if err != nil {
		return fmt.Errorf("seed overrides: %w", err)
	}
	logf("seeded %d overrides in %s", len(overrides), time.Since(t0).Round(time.Second))
	return nil
}

// parallel runs fn(0..n-1) on up to k goroutines; the first error wins.
func parallel(ctx context.Context, k, n int, fn func(int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(k, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// memoryFleet returns the devices that send update checks (all pinned)
// and the full override list: those devices plus random others.
func memoryFleet(apps []AppPlan, devices, overrides int, seed uint64) (*Fleet, []release.Override) {
	f := NewFleet(apps, devices, seed)
	chans := []string{"beta", "qa"}
	out := make([]release.Override, 0, overrides)
	for i := range f.Devices {
		if len(out) == overrides {
			break
		}
		d := &f.Devices[i]
		d.Override, d.DefaultChannel = chans[i%2], ""
		out = append(out, release.Override{AppID: d.AppID, DeviceID: d.ID, Channel: d.Override})
	}
	r := rand.New(rand.NewPCG(seed, 0x6f76657272696465))
	for len(out) < overrides {
		a := apps[r.IntN(len(apps))].ID
		out = append(out, release.Override{AppID: a, DeviceID: uuid(r), Channel: chans[r.IntN(2)]})
	}
	return f, out
}

// natsFor starts a JetStream server in this process, listening on a free
// loopback port so a front can join it with --nats-url.
func natsFor(ctx context.Context, dir string) (*bus.Bus, error) {
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Listen: "127.0.0.1:-1", Name: "capstan-bench"})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Memory measures the resident memory of a front holding many overrides
// and bundles, next to a front holding the small benchmark fleet.
func (e *Env) Memory(ctx context.Context, c Config) (*Report, error) {
	rep := &Report{Title: "memory", Started: time.Now()}
	measure := func(name string, apps []AppPlan, fleet *Fleet, ovr []release.Override) (sample memSample, err error) {
		b, err := natsFor(ctx, filepath.Join(e.Dir, name+"-nats"))
		if err != nil {
			return sample, err
		}
		defer b.Close()
		t0 := time.Now()
		if err := seedStore(ctx, b.JetStream, filepath.Join(e.Dir, name+"-seed"), apps, ovr, e.Log); err != nil {
			return sample, err
		}
		sample.seedTook = time.Since(t0)
		runtime.GC()
		t0 = time.Now()
		front, err := e.StartFront(ctx, ServeOptions{Name: name, NatsURL: b.Server.ClientURL()})
		if err != nil {
			return sample, err
		}
		defer front.Stop()
		sample.readyTook = time.Since(t0)
		pid := front.Proc.Cmd.Process.Pid
		if sample.atReady, err = ReadMemory(pid); err != nil {
			return sample, err
		}
		if n, err := gauge(ctx, front.MetricsURL, "capstan_release_overrides"); err != nil {
			e.Log("%s: cannot verify the override count: %v", name, err)
		} else if int(n) != len(ovr) {
			return sample, fmt.Errorf("%s holds %v overrides, seeded %d: the key scheme in update/release/keys.go changed?", name, n, len(ovr))
		} else {
			sample.verified = true
		}
		client := NewClient(c.Workers)
		defer client.CloseIdleConnections()
		l := c.load(front.BaseURL, UpdateRequests(fleet), nil)
		l.Duration = min(c.Duration, 10*time.Second)
		res, err := l.Run(ctx, client)
		if err != nil {
			return sample, err
		}
		sample.load = res
		if sample.afterLoad, err = ReadMemory(pid); err != nil {
			return sample, err
		}
		// Idle a while: the Go runtime returns freed pages to the OS lazily.
		select {
		case <-ctx.Done():
			return sample, ctx.Err()
		case <-time.After(15 * time.Second):
		}
		if sample.idle, err = ReadMemory(pid); err != nil {
			return sample, err
		}
		e.Log("%s: RSS at ready %s, after load %s, idle %s, peak %s; ready in %s; %s", name, mb(sample.atReady.RSS), mb(sample.afterLoad.RSS), mb(sample.idle.RSS), mb(sample.idle.HWM), sample.readyTook.Round(time.Millisecond), res.Summary(false))
		return sample, nil
	}

	small := DefaultApps()
	smallFleet := NewFleet(small, c.Devices, c.Seed)
	var smallOvr []release.Override
	for _, d := range smallFleet.Overrides() {
		smallOvr = append(smallOvr, release.Override{AppID: d.AppID, DeviceID: d.ID, Channel: d.Override})
	}
	base, err := measure("front-small", small, smallFleet, smallOvr)
	if err != nil {
		return nil, fmt.Errorf("small front: %w", err)
	}
	big := memoryApps(c.Bundles)
	bigFleet, bigOvr := memoryFleet(big, c.Devices, c.Overrides, c.Seed)
	nb := 0
	for _, a := range big {
		nb += len(a.Bundles)
	}
	large, err := measure("front-large", big, bigFleet, bigOvr)
	if err != nil {
		return nil, fmt.Errorf("large front: %w", err)
	}
	bigName := fmt.Sprintf("%s overrides, %s bundles", thousands(int64(len(bigOvr))), thousands(int64(nb)))
	rep.add(Row{"memory", "RSS after update-check load (" + bigName + ")", mb(large.afterLoad.RSS), mb(base.afterLoad.RSS), ratio(float64(large.afterLoad.RSS), float64(base.afterLoad.RSS)), "≤ 250 MB", verdict(large.afterLoad.RSS <= 250<<20)})
	rep.add(Row{"memory", "RSS at ready / idle 15 s later", mb(large.atReady.RSS) + " / " + mb(large.idle.RSS), mb(base.atReady.RSS) + " / " + mb(base.idle.RSS), "", "", ""})
	rep.add(Row{"memory", "peak RSS (VmHWM)", mb(large.idle.HWM), mb(base.idle.HWM), "", "≤ 250 MB", verdict(large.idle.HWM <= 250<<20)})
	rep.add(Row{"memory", "start → /readyz (snapshot loaded)", large.readyTook.Round(time.Millisecond).String(), base.readyTook.Round(time.Millisecond).String(), "", "", ""})
	rep.add(Row{"memory", "update checks/s while holding it", perSec(large.load.RPS()), perSec(base.load.RPS()), ratio(large.load.RPS(), base.load.RPS()), "", ""})
	if !large.verified {
		rep.note("WARNING: the front's override count could not be read from /metrics (capstan_release_overrides)")
	}
	rep.note("baseline column: the same front holding the small benchmark fleet (%d apps, %d overrides)", len(small), len(smallOvr))
	rep.note("method: JetStream (nats-server) runs inside the benchmark process, seeded through the release store's Go API (%s for the large state); the front is `capstan serve --nats-url` in its own process, so VmRSS/VmHWM from /proc/<pid>/status count the front alone", large.seedTook.Round(time.Second))
	return rep, nil
}

type memSample struct {
	seedTook, readyTook      time.Duration
	atReady, afterLoad, idle Memory
	load                     *Result
	verified                 bool
}

// overrideKey mirrors update/release/keys.go: "ovr.<b64url(app)>.<b64url(device)>".
func overrideKey(app, device string) string {
	enc := base64.RawURLEncoding
	return "ovr." + enc.EncodeToString([]byte(app)) + "." + enc.EncodeToString([]byte(strings.ToLower(device)))
}

func putOverridesKV(ctx context.Context, js jetstream.JetStream, overrides []release.Override, done *atomic.Int64) error {
	subj := "$KV." + release.DefaultBucket + "."
	const window = 1000 // publishes in flight, below the client's stall limit
	for start := 0; start < len(overrides); start += window {
		futs := make([]jetstream.PubAckFuture, 0, window)
		for i := start; i < min(start+window, len(overrides)); i++ {
			o := overrides[i]
			o.DeviceID = strings.ToLower(o.DeviceID)
			data, err := json.Marshal(o)
			if err != nil {
				return err
			}
			f, err := js.PublishAsync(subj+overrideKey(o.AppID, o.DeviceID), data)
			if err != nil {
				return fmt.Errorf("publish override %d: %w", i, err)
			}
			futs = append(futs, f)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("overrides not acknowledged after 1m (%d pending)", js.PublishAsyncPending())
		}
		for _, f := range futs {
			select {
			case err := <-f.Err():
				return fmt.Errorf("publish override: %w", err)
			default:
			}
		}
		done.Store(int64(min(start+window, len(overrides))))
	}
	return nil
}

// gauge reads one unlabelled metric from a Prometheus text exposition.
func gauge(ctx context.Context, base, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not exposed at %s/metrics", name, base)
}
