package consumer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

// benchEvent is shaped like what ingest publishes for a plugin's stats
// call: every device field set, metadata on some actions.
func benchEvent(i int) *schema.Event {
	e := testEvent(fmt.Sprintf("com.example.bench%d", i%4), i)
	e.DeviceID = fmt.Sprintf("6f1b1c2e-8a4d-4f3b-9c1e-%012d", i%10000)
	e.VersionBuild = "2.3.1"
	e.VersionCode = "231"
	e.VersionOS = "17.5.1"
	e.PluginVersion = "7.2.14"
	e.OldVersionName = "1.0.0"
	e.Channel = "production"
	if i%5 != 0 {
		e.Metadata = nil
	}
	return e
}

// publishBacklog stores n events in the events stream as ingest does,
// 20 to a message, a window of asynchronous publishes at a time.
func publishBacklog(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const window, perMsg = 200, 20
	futures := make([]jetstream.PubAckFuture, 0, window)
	for i := 0; i < n; {
		futures = futures[:0]
		for ; i < n && len(futures) < window; i += perMsg {
			var evs []*schema.Event
			app := fmt.Sprintf("com.example.bench%d", (i/perMsg)%4) // a request is one app's
			for k := i; k < min(i+perMsg, n); k++ {
				ev := benchEvent(k)
				ev.AppID = app
				evs = append(evs, ev)
			}
			body, msgID := batchMsg(evs)
			m := nats.NewMsg(schema.EventSubject(app))
			m.Data = body
			m.Header.Set(schema.EventsHeader, "2")
			m.Header.Set(jetstream.MsgIDHeader, msgID)
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				tb.Fatal(err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				tb.Fatalf("publish: %v", err)
			case <-ctx.Done():
				tb.Fatal("publish acks timed out")
			}
		}
	}
}

// profileConsume writes a CPU profile of the consume phase alone to
// $CAPSTAN_BENCH_CPUPROFILE when set (go test's -cpuprofile would also
// cover publishing the backlog).
func profileConsume(tb testing.TB) (stop func()) {
	path := os.Getenv("CAPSTAN_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// serverCPU is the CPU time the ClickHouse server process has used
// (0 when it cannot be read).
func serverCPU(tb testing.TB, srv *chtest.Server) time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(srv.Dir+"/config.xml")) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			return 0
		}
		// Fields after the parenthesised command: utime and stime are
		// the 12th and 13th.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(u+s) * time.Second / 100 // USER_HZ
	}
	tb.Log("clickhouse server process not found")
	return 0
}

// settledCPU waits (at most 20s) until the ClickHouse server uses under
// 2% of a core and returns its CPU time then.
func settledCPU(tb testing.TB, srv *chtest.Server) time.Duration {
	last := serverCPU(tb, srv)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		now := serverCPU(tb, srv)
		if now-last < 20*time.Millisecond {
			return now
		}
		last = now
	}
	return last
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConsumeBacklog drains a backlog of events from a real
// JetStream into a real ClickHouse (18.16 here) with one replica and the
// default batch size; it reports events/s and this process's CPU time
// per event (consumer plus the embedded NATS server). Run with
// -benchtime=1x and compare runs made back to back on the same machine;
// CAPSTAN_BENCH_BATCH overrides the batch size.
//
//	go test -run '^$' -bench ConsumeBacklog -benchtime 1x -count 3 ./consumer
func BenchmarkConsumeBacklog(b *testing.B) {
	const events = 200_000
	srv := chtest.Shared(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ne := startNATS(b)
		db := newCHDB(b, srv)
		publishBacklog(b, ne.js, events)
		cfg := testConfig(ne.js, db.conn)
		cfg.BatchSize = DefaultBatchSize
		if n, err := strconv.Atoi(os.Getenv("CAPSTAN_BENCH_BATCH")); err == nil && n > 0 {
			cfg.BatchSize = n
		}
		cfg.Linger = DefaultLinger
		cfg.AckWait = DefaultAckWait
		cfg.InfoInterval = DefaultInfoInterval
		stopProfile := profileConsume(b)
		cpu0, t0, chCPU0 := cpuTime(), time.Now(), serverCPU(b, srv)
		b.StartTimer()
		r := startConsumer(b, cfg)
		deadline := time.Now().Add(5 * time.Minute)
		for r.metric(b, "capstan_consumer_inserted_events_total") < events || !streamEmpty(b, ne.js) {
			if time.Now().After(deadline) {
				b.Fatalf("backlog not drained: %v inserted", r.metric(b, "capstan_consumer_inserted_events_total"))
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		elapsed, cpu, chCPU := time.Since(t0), cpuTime()-cpu0, serverCPU(b, srv)-chCPU0
		stopProfile()
		// The share of the time ClickHouse was busy with an insert.
		b.ReportMetric(r.metric(b, "capstan_consumer_insert_duration_seconds_sum")/elapsed.Seconds(), "insert-busy")
		r.stop(b)
		b.ReportMetric(events/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
		b.ReportMetric(float64(chCPU.Nanoseconds())/events, "ch-cpu-ns/event")
		// Merges of the inserted parts continue after the drain: count
		// the server's CPU until it goes quiet too.
		b.ReportMetric(float64((settledCPU(b, srv)-chCPU0).Nanoseconds())/events, "ch-settled-cpu-ns/event")
		if c := db.counts(b); c.rawRows != events || c.rollup != events {
			b.Fatalf("clickhouse holds %+v, want %d", c, events)
		}
	}
}
