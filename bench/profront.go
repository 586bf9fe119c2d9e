package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/consumer"
	"github.com/capstan-io/capstan/ingest"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update"
	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

// ProfiledFront configures `capstan bench front-profile`: the same parts
// `capstan serve` wires (embedded JetStream, release store, /updates,
// /stats, admin API, optional in-process consumer) in a process that
// writes CPU and heap profiles when it stops. `capstan serve` exposes no
// pprof endpoint, so this is how the benchmark finds hot spots.
type ProfiledFront struct {
	Listen        string
	DataDir       string
	Token         string
	ClickHouseURL string // empty: no consumer
	NatsURL       string // empty: embedded JetStream
	ProfilePrefix string // writes <prefix>.cpu.pprof and <prefix>.heap.pprof
}

// ServeProfiled runs the profiled front until ctx ends.
func ServeProfiled(ctx context.Context, o ProfiledFront) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cpu, err := os.Create(o.ProfilePrefix + ".cpu.pprof")
	if err != nil {
		return err
	}
	defer cpu.Close()
	b, err := bus.Open(ctx, bus.Config{URL: o.NatsURL, DataDir: filepath.Join(o.DataDir, "nats"), Name: "capstan-bench-front", Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	reg := prometheus.NewRegistry()
	store, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: filepath.Join(o.DataDir, "bundle-cache"), Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := schema.EnsureStreams(ctx, b.JetStream, schema.DefaultStreamLimits()); err != nil {
		return err
	}
	if err := store.WaitReady(ctx); err != nil {
		return err
	}
	cctx, stopConsume := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsume()
	var runner *consumer.Runner
	if o.ClickHouseURL != "" {
		runner, err = consumer.Start(cctx, consumer.Config{JetStream: b.JetStream, Registerer: reg, Logger: log},
			consumer.ClickHouseConnector(o.ClickHouseURL, 0, log))
		if err != nil {
			return err
		}
	}
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		update.NewHandler(update.Config{Snapshot: store.Snapshot, PublicURL: "http://" + o.Listen, Metrics: update.NewMetrics(reg), Logger: log}).Routes(r)
	})
	r.Handle("/stats", ingest.New(ingest.Config{JetStream: b.JetStream, Snapshot: store.Snapshot, Registerer: reg, Logger: log}))
	r.Mount("/api/v1", admin.New(admin.Config{Store: store, AdminToken: o.Token, TempDir: o.DataDir, Logger: log}).Handler())
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := store.Check(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeCanned(w, http.StatusOK, cannedObject)
	})
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	go srv.Serve(ln)
	<-ctx.Done()
	pprof.StopCPUProfile()
	runtime.GC() // the heap profile then shows what is live
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if heap, err := os.Create(o.ProfilePrefix + ".heap.pprof"); err == nil {
		pprof.WriteHeapProfile(heap)
		heap.Close()
	}
	stopConsume()
	if runner != nil {
		runner.Wait()
	}
	fmt.Fprintf(os.Stderr, "profiles written to %s.{cpu,heap}.pprof\n", o.ProfilePrefix)
	return nil
}
