package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Config sizes a scenario run.
type Config struct {
	Workers     int           // concurrent connections of the generator
	Duration    time.Duration // per measured run
	MaxRequests int64         // per measured run (0 = bounded by Duration only)
	Rounds      int           // measured runs per side, interleaved
	Devices     int
	Seed        uint64
	// E2E
	E2EDuration time.Duration // the sustained run
	// Rate is the offered events/s; 0 offers RateRatio × the bare
	// handler's ceiling measured in the same run.
	Rate      float64
	RateRatio float64
	// Split runs the consumer as its own `capstan consume` process
	// beside a `capstan serve --consume=false` front.
	Split       bool
	Drain       time.Duration // how long to wait for ClickHouse to catch up
	MarkerEvery time.Duration
	// Memory
	Overrides int
	Bundles   int
}

// DefaultConfig is what the documented runs use unless flags say otherwise.
func DefaultConfig() Config {
	return Config{
		Workers: 64, Duration: 10 * time.Second, MaxRequests: 5_000_000, Rounds: 3,
		Devices: 10_000, Seed: 1,
		E2EDuration: time.Minute, RateRatio: 0.5, Drain: 3 * time.Minute, MarkerEvery: 100 * time.Millisecond,
		Overrides: 1_000_000, Bundles: 1_000,
	}
}

func (c Config) load(base string, reqs []Request, stamp *atomic.Int64) *Load {
	return &Load{BaseURL: base, Requests: reqs, Workers: c.Workers, MaxRequests: c.MaxRequests,
		Duration: c.Duration, Warmup: int64(min(len(reqs), 2000)), Stamp: stamp}
}

// newStamp returns a shared counter for Request.Stamps starting a day in
// the past, so client timestamps stay plausible however many are used.
func newStamp() *atomic.Int64 {
	s := &atomic.Int64{}
	s.Store(time.Now().Add(-24 * time.Hour).UnixMilli())
	return s
}

// interleave runs the baseline and Capstan loads alternately, Rounds
// times each, so background noise hits both sides alike.
// sideCPU is the server CPU a side used over all its rounds.
type sideCPU struct {
	base, capstan       time.Duration
	baseEvs, capstanEvs int64
	last                string
}

// perEvent is server CPU per accepted event (or per check) for each side.
func (c sideCPU) perEvent() (capstan, base time.Duration) {
	if c.capstanEvs > 0 {
		capstan = c.capstan / time.Duration(c.capstanEvs)
	}
	if c.baseEvs > 0 {
		base = c.base / time.Duration(c.baseEvs)
	}
	return capstan, base
}

// interleave runs the baseline and Capstan loads alternately, Rounds
// times each, so background noise hits both sides alike, and meters the
// CPU of the server processes and of the generator.
func (e *Env) interleave(ctx context.Context, c Config, name string, base, capstan *Load, basePID, frontPID int, client *http.Client) (b, s []*Result, cpu sideCPU, err error) {
	var cb, cs string
	for i := range c.Rounds {
		m := newCPUMeter()
		m.add("baseline", basePID)
		m.add("generator", os.Getpid())
		m.begin()
		rb, err := base.Run(ctx, client)
		if err != nil {
			return nil, nil, cpu, err
		}
		cb = m.end()
		cpu.base += m.used[0]
		cpu.baseEvs += rb.Events
		e.Log("%s round %d baseline: %s; %s", name, i+1, rb.Summary(true), cb)
		m = newCPUMeter()
		m.add("front", frontPID)
		m.add("generator", os.Getpid())
		m.begin()
		rs, err := capstan.Run(ctx, client)
		if err != nil {
			return nil, nil, cpu, err
		}
		cs = m.end()
		cpu.capstan += m.used[0]
		cpu.capstanEvs += rs.Events
		e.Log("%s round %d capstan:  %s; %s", name, i+1, rs.Summary(true), cs)
		b, s = append(b, rb), append(s, rs)
	}
	cpu.last = fmt.Sprintf("last round — baseline run: %s; Capstan run: %s", cb, cs)
	return b, s, cpu, nil
}

func cpuRow(scenario, metric string, cpu sideCPU) Row {
	cs, cb := cpu.perEvent()
	return Row{scenario, metric,
		fmtDur(cs), fmtDur(cb), ratio(float64(cs), float64(cb)), "", ""}
}

func failures(rs []*Result) (n int64, detail string) {
	var parts []string
	for _, r := range rs {
		n += r.Failed + r.EventErrs
		if r.Failed > 0 || r.EventErrs > 0 {
			parts = append(parts, fmt.Sprintf("status %v errors %v event errors %d", r.Status, r.Errors, r.EventErrs))
		}
	}
	return n, strings.Join(parts, "; ")
}

// Updates compares POST /updates of Capstan with the bare handler.
func (e *Env) Updates(ctx context.Context, c Config) (*Report, error) {
	rep := &Report{Title: "update check", Started: time.Now()}
	fleet := NewFleet(DefaultApps(), c.Devices, c.Seed)
	reqs := UpdateRequests(fleet)
	front, err := e.StartFront(ctx, ServeOptions{Name: "front-updates"})
	if err != nil {
		return nil, err
	}
	defer front.Stop()
	client := NewClient(c.Workers)
	defer client.CloseIdleConnections()
	admin := &Admin{BaseURL: front.BaseURL, Token: front.Token, Client: client}
	if err := admin.SeedFleet(ctx, fleet); err != nil {
		return nil, err
	}
	e.Log("seeded %d apps, %d devices (%d pinned)", len(fleet.Apps), len(fleet.Devices), len(fleet.Overrides()))
	bp, burl, err := e.StartBaseline(ctx)
	if err != nil {
		return nil, err
	}
	defer bp.Stop(5 * time.Second)
	bs, ss, cpu, err := e.interleave(ctx, c, "updates", c.load(burl, reqs, nil), c.load(front.BaseURL, reqs, nil), bp.Cmd.Process.Pid, front.Proc.Cmd.Process.Pid, client)
	if err != nil {
		return nil, err
	}
	rep.add(cpuRow("update check", "server CPU per check (all rounds)", cpu))
	rep.note("%s", cpu.last)
	bm, bh := median(bs)
	sm, sh := median(ss)
	target := sm.RPS() >= 0.8*bm.RPS()
	rep.add(Row{"update check", "checks/s (median of rounds)", perSec(sm.RPS()), perSec(bm.RPS()), ratio(sm.RPS(), bm.RPS()), "≥ 0.8× baseline", verdict(target)})
	rep.add(Row{"update check", "latency p50 / p90 / p99 / max", latStr(sh), latStr(bh), "", "", ""})
	rep.note("%d workers, %d distinct devices, %d rounds × %s per side, interleaved", c.Workers, len(reqs), c.Rounds, c.Duration)
	rep.note("Capstan answers: %s", strings.Join(sm.SortedAnswers(), ", "))
	if n, d := failures(append(bs, ss...)); n > 0 {
		rep.note("FAILED requests: %d (%s)", n, d)
	}
	return rep, nil
}

func latStr(h *Histogram) string {
	return fmt.Sprintf("%s / %s / %s / %s", fmtDur(h.Quantile(.5)), fmtDur(h.Quantile(.9)), fmtDur(h.Quantile(.99)), fmtDur(h.Max()))
}

// Stats compares events/s acknowledged by POST /stats with the bare
// handler, for 1-event and 20-event bodies. Capstan runs without a
// consumer: accepted events stay in JetStream.
func (e *Env) Stats(ctx context.Context, c Config) (*Report, error) {
	rep := &Report{Title: "stats accepted", Started: time.Now()}
	fleet := NewFleet(DefaultApps(), c.Devices, c.Seed)
	front, err := e.StartFront(ctx, ServeOptions{Name: "front-stats"})
	if err != nil {
		return nil, err
	}
	defer front.Stop()
	client := NewClient(c.Workers)
	defer client.CloseIdleConnections()
	// Seeded like the update check: ingest attributes each event to the
	// channel the device resolves to.
	if err := (&Admin{BaseURL: front.BaseURL, Token: front.Token, Client: client}).SeedFleet(ctx, fleet); err != nil {
		return nil, err
	}
	bp, burl, err := e.StartBaseline(ctx)
	if err != nil {
		return nil, err
	}
	defer bp.Stop(5 * time.Second)
	stamp := newStamp()
	for _, per := range []int{1, 20} {
		reqs := StatsRequests(fleet, 4000, per, c.Seed+uint64(per))
		name := fmt.Sprintf("stats/%d", per)
		bs, ss, cpu, err := e.interleave(ctx, c, name, c.load(burl, reqs, stamp), c.load(front.BaseURL, reqs, stamp), bp.Cmd.Process.Pid, front.Proc.Cmd.Process.Pid, client)
		if err != nil {
			return nil, err
		}
		rep.note("%d-event bodies, %s", per, cpu.last)
		bm, bh := median(bs)
		sm, sh := median(ss)
		tgt, v := "", ""
		if per == 20 {
			tgt, v = "≥ 100,000 events/s", verdict(sm.EPS() >= 100_000)
		}
		label := fmt.Sprintf("%d-event bodies", per)
		rep.add(Row{"stats accepted", label + ": events/s", perSec(sm.EPS()), perSec(bm.EPS()), ratio(sm.EPS(), bm.EPS()), tgt, v})
		rep.add(Row{"stats accepted", label + ": requests/s", perSec(sm.RPS()), perSec(bm.RPS()), ratio(sm.RPS(), bm.RPS()), "", ""})
		rep.add(Row{"stats accepted", label + ": latency p50 / p90 / p99 / max", latStr(sh), latStr(bh), "", "", ""})
		rep.add(cpuRow("stats accepted", label+": server CPU per event (all rounds)", cpu))
		if n, d := failures(append(bs, ss...)); n > 0 {
			rep.note("%s FAILED requests/events: %d (%s)", label, n, d)
		}
	}
	rep.note("%d workers, bodies from %d devices with the realistic action mix, every event unique (distinct client timestamp); %d rounds × %s per side, interleaved; no consumer running (events stay in JetStream)", c.Workers, c.Devices, c.Rounds, c.Duration)
	return rep, nil
}
