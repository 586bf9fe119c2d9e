package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MarkerApp is the app id of the lag markers of the e2e scenario: a
// primary-key prefix of its own, so polling for markers reads little.
const MarkerApp = "io.capstan.bench.marker"

// markers sends one uniquely tagged event every interval, records when it
// was acknowledged, and polls ClickHouse for when it became queryable.
type markers struct {
	mu    sync.Mutex
	acked map[string]time.Time
	seen  map[string]time.Time
	fails int
}

func (m *markers) send(ctx context.Context, client *http.Client, base string, d Device, run string, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id := fmt.Sprintf("%s-%06d", run, seq)
		ev := statEvent{info: d.info(), Action: "app_launch_ready", Timestamp: time.Now().UnixMilli()}
		ev.AppID, ev.CustomID, ev.DefaultChannel = MarkerApp, id, ""
		body, _ := json.Marshal([]statEvent{ev})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/stats", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			m.mu.Lock()
			m.fails++
			m.mu.Unlock()
			continue
		}
		var ans bytes.Buffer
		ans.ReadFrom(resp.Body)
		resp.Body.Close()
		now := time.Now()
		m.mu.Lock()
		if resp.StatusCode/100 == 2 && !bytes.Contains(ans.Bytes(), statusErrJSON) {
			m.acked[id] = now
		} else {
			m.fails++
		}
		m.mu.Unlock()
	}
}

func (m *markers) poll(ctx context.Context, ch *ClickHouse, db, run string) error {
	out, err := ch.Query(ctx, fmt.Sprintf("SELECT custom_id FROM %s.capstan_events WHERE app_id = '%s' AND custom_id LIKE '%s-%%'", db, MarkerApp, run))
	if err != nil {
		return err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range strings.Fields(out) {
		if _, ok := m.seen[id]; !ok {
			m.seen[id] = now
		}
	}
	return nil
}

// lags returns acceptance→queryable lag of every acknowledged marker that
// arrived, and how many acknowledged markers never arrived.
func (m *markers) lags() (*Histogram, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := NewHistogram()
	missing := 0
	for id, a := range m.acked {
		s, ok := m.seen[id]
		if !ok {
			missing++
			continue
		}
		h.Record(max(s.Sub(a), 0))
	}
	return h, missing
}

func (m *markers) counts() (acked, seen int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.acked {
		if _, ok := m.seen[id]; ok {
			seen++
		}
	}
	return len(m.acked), seen
}

type chCounts struct {
	rows, distinct, rollup int64
}

func queryCounts(ctx context.Context, ch *ClickHouse, db string) (chCounts, error) {
	var c chCounts
	out, err := ch.Query(ctx, fmt.Sprintf("SELECT count(), uniqExact(event_id) FROM %s.capstan_events", db))
	if err != nil {
		return c, err
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return c, fmt.Errorf("unexpected count answer %q", out)
	}
	c.rows, _ = strconv.ParseInt(f[0], 10, 64)
	c.distinct, _ = strconv.ParseInt(f[1], 10, 64)
	out, err = ch.Query(ctx, fmt.Sprintf("SELECT uniqExactMerge(events) FROM %s.capstan_events_minute", db))
	if err != nil {
		return c, err
	}
	c.rollup, _ = strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	return c, nil
}

// E2E drives 20-event stats bodies at Config.Rate events/s (by default
// half the bare handler's ceiling measured first) for Config.E2EDuration
// into a front that runs the consumer in-process (or, with Config.Split,
// beside a `capstan consume` process), with a ClickHouse server of its
// own, and measures sustained throughput, the lag from acknowledgement to
// queryable, and loss.
func (e *Env) E2E(ctx context.Context, c Config) (*Report, error) {
	rep := &Report{Title: "end to end", Started: time.Now()}
	const db = "capstan"
	// Each run gets its own data directories: a front reusing the last
	// run's JetStream would drop this run's events as duplicates of that
	// run's (the same fleet and timestamps give the same event ids) while
	// acknowledging them, and they would never reach this ClickHouse.
	name := "e2e"
	if c.Split {
		name = "e2e-split"
	}
	ch, err := StartClickHouse(filepath.Join(e.Dir, "clickhouse-"+name))
	if err != nil {
		return nil, err
	}
	defer ch.Stop()
	e.Log("clickhouse on 127.0.0.1:%d (native), :%d (http)", ch.TCPPort, ch.HTTPPort)
	fo := ServeOptions{Name: "front-" + name, ClickHouseURL: ch.DSN(db), Consume: !c.Split}
	var natsPort int
	if c.Split {
		if natsPort, err = FreePort(); err != nil {
			return nil, err
		}
		fo.ExtraArgs = []string{"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort), "--guard=false"}
	}
	front, err := e.StartFront(ctx, fo)
	if err != nil {
		return nil, err
	}
	defer front.Stop()
	var consume *Proc
	if c.Split {
		if consume, err = e.startConsume(ctx, fmt.Sprintf("nats://127.0.0.1:%d", natsPort), ch.DSN(db)); err != nil {
			return nil, err
		}
		defer consume.Stop(30 * time.Second)
		rep.Title = "end to end, `serve --consume=false` + `capstan consume`"
	}
	if err := waitTable(ctx, ch, db+".capstan_events", time.Minute); err != nil {
		return nil, err
	}
	fleet := NewFleet(DefaultApps(), c.Devices, c.Seed)
	client := NewClient(c.Workers)
	defer client.CloseIdleConnections()
	if err := (&Admin{BaseURL: front.BaseURL, Token: front.Token, Client: client}).SeedFleet(ctx, fleet); err != nil {
		return nil, err
	}
	reqs := StatsRequests(fleet, 4000, 20, c.Seed+20)
	stamp := newStamp()

	// Baseline: the bare handler's closed-loop ceiling for the same bodies.
	bp, burl, err := e.StartBaseline(ctx)
	if err != nil {
		return nil, err
	}
	bl := c.load(burl, reqs, stamp)
	bl.Duration = c.Duration
	bres, err := bl.Run(ctx, client)
	bp.Stop(5 * time.Second)
	if err != nil {
		return nil, err
	}
	e.Log("e2e baseline (bare handler, closed loop): %s", bres.Summary(true))

	// Warm up the pipeline (connections, first inserts), then measure from
	// an empty-of-our-events state: counts below subtract what is there.
	warm := c.load(front.BaseURL, reqs, stamp)
	warm.Warmup, warm.Duration, warm.MaxRequests = 0, 2*time.Second, 500
	if _, err := warm.Run(ctx, client); err != nil {
		return nil, err
	}
	if err := waitSettled(ctx, ch, db, time.Minute); err != nil {
		return nil, err
	}
	before, err := queryCounts(ctx, ch, db)
	if err != nil {
		return nil, err
	}

	run := fmt.Sprintf("m%d", time.Now().Unix())
	mk := &markers{acked: map[string]time.Time{}, seen: map[string]time.Time{}}
	stop := make(chan struct{})
	pollDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		mk.send(ctx, NewClient(1), front.BaseURL, fleet.Devices[0], run, c.MarkerEvery, stop)
	}()
	go func() {
		defer close(pollDone)
		t := time.NewTicker(c.MarkerEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := mk.poll(ctx, ch, db, run); err != nil {
				e.Log("marker poll: %v", err)
			}
			select {
			case <-stop:
				if a, s := mk.counts(); a == s {
					return
				}
			default:
			}
		}
	}()

	offered := c.Rate
	if offered == 0 {
		offered = c.RateRatio * bres.EPS()
	}
	l := c.load(front.BaseURL, reqs, stamp)
	l.Warmup = 0
	l.Rate = offered / 20
	l.Duration = c.E2EDuration
	l.MaxRequests = int64(offered/20*c.E2EDuration.Seconds()) + 1
	meter := newCPUMeter()
	if c.Split {
		meter.add("front", front.Proc.Cmd.Process.Pid)
	} else {
		meter.add("front+consumer", front.Proc.Cmd.Process.Pid)
	}
	meter.add("clickhouse", ch.Pid())
	meter.add("generator", os.Getpid())
	if c.Split {
		meter.add("consumer", consume.Cmd.Process.Pid)
	}
	meter.begin()
	t0 := time.Now()
	res, err := l.Run(ctx, client)
	cpu := meter.end()
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	loadEnd := time.Now()
	e.Log("e2e load: %s; %s", res.Summary(true), cpu)
	rep.note("during the load, %s (of %d)", cpu, runtime.NumCPU())
	perEv := func(d time.Duration) string {
		if res.Events == 0 {
			return "–"
		}
		return fmtDur(d / time.Duration(res.Events))
	}
	cpuPerEvent := fmt.Sprintf("front+consumer %s, ClickHouse %s, generator %s", perEv(meter.used[0]), perEv(meter.used[1]), perEv(meter.used[2]))
	if c.Split {
		cpuPerEvent = fmt.Sprintf("front %s + consumer %s = %s, ClickHouse %s, generator %s", perEv(meter.used[0]), perEv(meter.used[3]),
			perEv(meter.used[0]+meter.used[3]), perEv(meter.used[1]), perEv(meter.used[2]))
	}
	ackedMarkers, _ := mk.counts()
	accepted := res.Events + int64(ackedMarkers)

	// Wait for ClickHouse to hold every accepted event.
	var after chCounts
	caughtUp := time.Time{}
	drainDeadline := time.Now().Add(c.Drain)
	for time.Now().Before(drainDeadline) {
		after, err = queryCounts(ctx, ch, db)
		if err != nil {
			return nil, err
		}
		if after.distinct-before.distinct >= accepted {
			caughtUp = time.Now()
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	select {
	case <-pollDone:
	case <-time.After(10 * time.Second):
	}
	// Let merges and the MV settle, then take the final counts.
	time.Sleep(time.Second)
	if after, err = queryCounts(ctx, ch, db); err != nil {
		return nil, err
	}
	stored := after.distinct - before.distinct
	rolled := after.rollup - before.rollup
	lost := accepted - stored
	lag, missing := mk.lags()

	sustained := float64(res.Events) / res.Elapsed.Seconds()
	okRate := sustained >= 0.5*bres.EPS()
	rep.add(Row{"end to end", fmt.Sprintf("events/s accepted over %s (offered %s)", c.E2EDuration, perSec(offered)), perSec(sustained), perSec(bres.EPS()), ratio(sustained, bres.EPS()), "≥ 0.5× the bare handler's ceiling for 60 s", verdict(okRate && c.E2EDuration >= time.Minute)})
	if !caughtUp.IsZero() {
		into := float64(accepted) / caughtUp.Sub(t0).Seconds()
		rep.add(Row{"end to end", "events/s into ClickHouse (accepted ÷ time until all queryable)", perSec(into), "", "", "", ""})
		rep.note("ClickHouse held every accepted event %.1fs after the load stopped", caughtUp.Sub(loadEnd).Seconds())
	} else {
		rep.note("ClickHouse did NOT catch up within %s after the load stopped", c.Drain)
	}
	lagOK := lag.Count() > 0 && lag.Quantile(.99) <= 2*time.Second && missing == 0
	rep.add(Row{"end to end", "lag acknowledged → queryable p50 / p99 / max", fmt.Sprintf("%s / %s / %s", fmtDur(lag.Quantile(.5)), fmtDur(lag.Quantile(.99)), fmtDur(lag.Max())), "", "", "p99 ≤ 2 s", verdict(lagOK)})
	rep.add(Row{"end to end", "CPU per event during the load", cpuPerEvent, "", "", "", ""})
	rep.add(Row{"end to end", "events accepted / distinct event_id in ClickHouse / rollup uniqExactMerge", fmt.Sprintf("%s / %s / %s", thousands(accepted), thousands(stored), thousands(rolled)), "", "", "zero loss", verdict(lost <= 0 && rolled == stored)})
	rep.note("%d lag markers (one 1-event request every %s, polled every %s; lag resolution ≈ the poll interval), %d never arrived, %d marker requests failed", lag.Count()+uint64(missing), c.MarkerEvery, c.MarkerEvery, missing, mk.fails)
	rep.note("raw rows %s (duplicates before ReplacingMergeTree merges: %s); request latency %s (p50/p90/p99/max)", thousands(after.rows-before.rows), thousands((after.rows-before.rows)-stored), latencies(res))
	if stored > accepted {
		rep.note("%s more events stored than acknowledged: requests in flight when the generator stopped", thousands(stored-accepted))
	}
	if n, d := failures([]*Result{res}); n > 0 {
		rep.note("FAILED requests/events: %d (%s)", n, d)
	}
	rep.note("baseline: bare handler, closed loop, %s, same bodies", bl.Duration)
	return rep, nil
}

// startConsume execs `capstan consume` against the front's NATS and
// waits for its /readyz.
func (e *Env) startConsume(ctx context.Context, natsURL, chURL string) (*Proc, error) {
	mport, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"consume", "--nats-url", natsURL, "--clickhouse-url", chURL, "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport)}
	p, err := StartProc("consume-e2e-split", e.Bin, args, append(childEnv(), e.FrontEnv...), filepath.Join(e.Dir, "consume-e2e-split.log"))
	if err != nil {
		return nil, err
	}
	if err := WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", mport), p, 2*time.Minute); err != nil {
		p.Stop(10 * time.Second)
		return nil, fmt.Errorf("capstan consume: %w (log %s)", err, p.Log)
	}
	return p, nil
}

func waitTable(ctx context.Context, ch *ClickHouse, table string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out, err := ch.Query(ctx, "EXISTS TABLE "+table)
		if err == nil && strings.TrimSpace(out) == "1" {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("table %s not created within %s (is the consumer running?)", table, timeout)
}

// waitSettled waits until the event count stops changing for a second.
func waitSettled(ctx context.Context, ch *ClickHouse, db string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for time.Now().Before(deadline) {
		c, err := queryCounts(ctx, ch, db)
		if err != nil {
			return err
		}
		if c.distinct == last && c.distinct > 0 {
			return nil
		}
		last = c.distinct
		time.Sleep(1500 * time.Millisecond)
	}
	return fmt.Errorf("warm-up events still arriving after %s", timeout)
}
