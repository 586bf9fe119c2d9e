package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/consumer"
	"github.com/capstan-io/capstan/ingest"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update"
	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

// runServe is `capstan serve`: a front answering devices and the admin
// API, and (unless --consume=false) the stats consumer too.
func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := stringFlag(fs, "listen", "CAPSTAN_LISTEN", ":8080", "HTTP listen address")
	dataDir := stringFlag(fs, "data-dir", "CAPSTAN_DATA_DIR", "./data", "directory for the embedded NATS store and the bundle cache")
	publicURL := stringFlag(fs, "public-url", "CAPSTAN_PUBLIC_URL", "", "base URL of bundle downloads given to devices (default http://<listen>)")
	natsURL := stringFlag(fs, "nats-url", "CAPSTAN_NATS_URL", "", "external NATS cluster URL; empty starts an embedded JetStream server")
	natsListen := stringFlag(fs, "nats-listen", "CAPSTAN_NATS_LISTEN", "127.0.0.1:4222", "client address of the embedded NATS server (for capstan consume and other fronts); empty = in-process only")
	adminToken := stringFlag(fs, "admin-token", "CAPSTAN_ADMIN_TOKEN", "", "admin API bearer token accepted at start-up (only its hash is kept)")
	consume := boolFlag(fs, "consume", "CAPSTAN_CONSUME", true, "run the stats consumer in this process (all-in-one); false for stateless fronts")
	chURL := stringFlag(fs, "clickhouse-url", "CAPSTAN_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/capstan", "ClickHouse for the in-process consumer")
	retention := intFlag(fs, "retention-days", "CAPSTAN_RETENTION_DAYS", 0, "days of raw events ClickHouse keeps (0 = forever)")
	batchSize := intFlag(fs, "batch-size", "CAPSTAN_BATCH_SIZE", consumer.DefaultBatchSize, "most events per ClickHouse insert")
	linger := durationFlag(fs, "batch-linger", "CAPSTAN_BATCH_LINGER", consumer.DefaultLinger, "longest an event waits for its batch to fill")
	streamMaxBytes := int64Flag(fs, "stream-max-bytes", "CAPSTAN_STREAM_MAX_BYTES", -1, "cap on the events stream's size; when full, /stats answers 429 stats_unavailable and devices keep their events (-1 = storage limit only)")
	streamMaxAge := durationFlag(fs, "stream-max-age", "CAPSTAN_STREAM_MAX_AGE", 0, "drop unconsumed events older than this (0 = never)")
	streamMaxMsgs := int64Flag(fs, "stream-max-msgs", "CAPSTAN_STREAM_MAX_MSGS", -1, "cap on the events held in the stream (-1 = none)")
	dupWindow := durationFlag(fs, "stream-duplicate-window", "CAPSTAN_STREAM_DUPLICATE_WINDOW", schema.DefaultDuplicateWindow, "how long JetStream drops resent event ids (memory grows with rate × window)")
	statsMaxEvents := intFlag(fs, "stats-max-events", "CAPSTAN_STATS_MAX_EVENTS", ingest.DefaultMaxEvents, "most events in one /stats body (413 above)")
	statsMaxBody := int64Flag(fs, "stats-max-body-bytes", "CAPSTAN_STATS_MAX_BODY_BYTES", ingest.DefaultMaxBodyBytes, "largest /stats body (413 above)")
	replicas := intFlag(fs, "replicas", "CAPSTAN_REPLICAS", 1, "replicas of Capstan's JetStream buckets and streams (3 in a 3-node NATS cluster)")
	maxUpload := int64Flag(fs, "max-upload-bytes", "CAPSTAN_MAX_UPLOAD_BYTES", admin.DefaultMaxUploadBytes, "largest bundle zip the admin API accepts")
	debugListen := stringFlag(fs, "debug-listen", "CAPSTAN_DEBUG_LISTEN", "", "address serving Go's /debug/pprof (keep it private, e.g. 127.0.0.1:6060); empty = off")
	logFormat := stringFlag(fs, "log-format", "CAPSTAN_LOG_FORMAT", "text", "log format: text or json")
	logLevel := stringFlag(fs, "log-level", "CAPSTAN_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	base := log
	log = base.With("role", "serve")
	if *adminToken == "" {
		log.Warn("no --admin-token: the admin API accepts only tokens created with `capstan token create`")
	}
	limits := schema.DefaultStreamLimits()
	limits.MaxBytes, limits.MaxAge, limits.MaxMsgs = *streamMaxBytes, *streamMaxAge, *streamMaxMsgs
	limits.DuplicateWindow, limits.Replicas = *dupWindow, *replicas
	if err := limits.Validate(); err != nil {
		return err
	}

	b, err := bus.Open(ctx, bus.Config{URL: *natsURL, DataDir: filepath.Join(*dataDir, "nats"), Listen: *natsListen, Name: "capstan-serve", Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: filepath.Join(*dataDir, "bundle-cache"), Replicas: *replicas, Registerer: reg, Logger: log})
	if err != nil {
		return fmt.Errorf("open release store: %w", err)
	}
	defer store.Close()
	if err := schema.EnsureStreams(ctx, b.JetStream, limits); err != nil {
		return err
	}
	readyCtx, cancelReady := context.WithTimeout(ctx, time.Minute)
	err = store.WaitReady(readyCtx)
	cancelReady()
	if err != nil {
		return fmt.Errorf("load release state: %w", err)
	}

	// The consumer outlives the HTTP server so the last accepted stats are
	// flushed to ClickHouse during shutdown.
	consumeCtx, stopConsume := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsume()
	var runner *consumer.Runner
	if *consume {
		runner, err = consumer.Start(consumeCtx, consumer.Config{
			JetStream: b.JetStream, BatchSize: *batchSize, Linger: *linger, RetentionDays: *retention,
			Registerer: reg, Logger: base.With("role", "consume"),
		}, consumer.ClickHouseConnector(*chURL, *retention, base.With("role", "consume")))
		if err != nil {
			return err
		}
	}

	if err := os.MkdirAll(filepath.Join(*dataDir, "uploads"), 0o700); err != nil {
		return fmt.Errorf("create upload dir: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	defer ln.Close()
	if *publicURL == "" {
		*publicURL = defaultPublicURL(ln.Addr().String())
	}
	*publicURL = strings.TrimRight(*publicURL, "/")

	var draining atomic.Bool
	httpm := newHTTPMetrics(reg)
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no such endpoint"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": req.Method + " is not allowed here"})
	})
	r.Group(func(r chi.Router) {
		r.Use(httpm.wrap("updates"))
		update.NewHandler(update.Config{Snapshot: store.Snapshot, PublicURL: *publicURL, Metrics: update.NewMetrics(reg), Logger: log, Choices: store}).Routes(r)
	})
	r.With(httpm.wrap("bundles")).Handle("/bundles/{app}/{file}", update.BundleHandler(store, log))
	r.With(httpm.wrap("stats")).Handle("/stats", ingest.New(ingest.Config{JetStream: b.JetStream, Snapshot: store.Snapshot, MaxEvents: *statsMaxEvents, MaxBodyBytes: *statsMaxBody, Registerer: reg, Logger: log}))
	r.With(httpm.wrap("admin")).Mount("/api/v1", admin.New(admin.Config{Store: store, AdminToken: *adminToken, MaxUploadBytes: *maxUpload, TempDir: filepath.Join(*dataDir, "uploads"), Logger: log}).Handler())
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		if draining.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "draining", "message": "shutting down"})
			return
		}
		cctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if err := store.Check(cctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "not_ready", "message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	srv := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if *debugListen != "" {
		dln, err := net.Listen("tcp", *debugListen)
		if err != nil {
			return fmt.Errorf("debug listen %s: %w", *debugListen, err)
		}
		dsrv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = dsrv.Serve(dln) }()
		defer dsrv.Close()
		log.Info("serving pprof", "addr", dln.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("capstan serving", "addr", ln.Addr().String(), "public_url", *publicURL,
		"nats", natsDescription(*natsURL, b), "consume", *consume, "apps", len(store.Snapshot().Apps()))

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	// Ordered drain: stop looking ready, finish in-flight requests (each
	// stats request waits for its JetStream acks), then flush the consumer.
	log.Info("shutting down")
	draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopConsume()
	if runner != nil {
		if err := runner.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("consumer stopped", "err", err)
		}
	}
	log.Info("stopped")
	return nil
}

func natsDescription(url string, b *bus.Bus) string {
	if url != "" {
		return b.Conn.ConnectedUrlRedacted()
	}
	if b.Server.Addr() == nil {
		return "embedded (in-process)"
	}
	return "embedded " + b.Server.ClientURL()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, o)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// defaultPublicURL turns a listen address into a URL devices on this
// machine can reach.
func defaultPublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
