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
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/console"
	"github.com/capstan-io/capstan/consumer"
	"github.com/capstan-io/capstan/ingest"
	"github.com/capstan-io/capstan/internal/httpguard"
	"github.com/capstan-io/capstan/internal/webhook"
	"github.com/capstan-io/capstan/rollout"
	"github.com/capstan-io/capstan/rollout/guard"
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
	chURL := stringFlag(fs, "clickhouse-url", "CAPSTAN_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/capstan", "ClickHouse for the in-process consumer, the rollout guard and the admin API's device and health reads (empty = no reads: those endpoints answer 503)")
	chCluster := stringFlag(fs, "clickhouse-cluster", "CAPSTAN_CLICKHOUSE_CLUSTER", "", clusterFlagHelp)
	retention := intFlag(fs, "retention-days", "CAPSTAN_RETENTION_DAYS", 0, "days of raw events ClickHouse keeps (0 = forever)")
	batchSize := intFlag(fs, "batch-size", "CAPSTAN_BATCH_SIZE", consumer.DefaultBatchSize, "most events per ClickHouse insert")
	linger := durationFlag(fs, "batch-linger", "CAPSTAN_BATCH_LINGER", consumer.DefaultLinger, "longest an event waits for its batch to fill")
	streamMaxBytes := int64Flag(fs, "stream-max-bytes", "CAPSTAN_STREAM_MAX_BYTES", -1, "cap on the events stream's size; when full, /stats answers 429 stats_unavailable and devices keep their events (-1 = storage limit only)")
	streamMaxAge := durationFlag(fs, "stream-max-age", "CAPSTAN_STREAM_MAX_AGE", 0, "drop unconsumed events older than this (0 = never)")
	streamMaxMsgs := int64Flag(fs, "stream-max-msgs", "CAPSTAN_STREAM_MAX_MSGS", -1, "cap on the messages held in the stream, one per /stats request (-1 = none)")
	bundleFetchTimeout := durationFlag(fs, "bundle-fetch-timeout", "CAPSTAN_BUNDLE_FETCH_TIMEOUT", release.DefaultFetchTimeout, "longest a bundle fetch from JetStream may go without progress before the download answers 503")
	dupWindow := durationFlag(fs, "stream-duplicate-window", "CAPSTAN_STREAM_DUPLICATE_WINDOW", schema.DefaultDuplicateWindow, "how long JetStream drops resent event ids (memory grows with rate × window)")
	statsMaxEvents := intFlag(fs, "stats-max-events", "CAPSTAN_STATS_MAX_EVENTS", ingest.DefaultMaxEvents, "most events in one /stats body (413 above)")
	statsMaxBody := int64Flag(fs, "stats-max-body-bytes", "CAPSTAN_STATS_MAX_BODY_BYTES", ingest.DefaultMaxBodyBytes, "largest /stats body (413 above)")
	replicas := intFlag(fs, "replicas", "CAPSTAN_REPLICAS", 1, "replicas of Capstan's JetStream buckets and streams (3 in a 3-node NATS cluster)")
	maxUpload := int64Flag(fs, "max-upload-bytes", "CAPSTAN_MAX_UPLOAD_BYTES", admin.DefaultMaxUploadBytes, "largest bundle zip the admin API accepts")
	metricsListen := stringFlag(fs, "metrics-listen", "CAPSTAN_METRICS_LISTEN", "127.0.0.1:9091", "address serving /metrics, /healthz and /readyz, never the device port; :9091 to let Prometheus in from other hosts (empty = no /metrics; unset with --listen on port 0: a free port)")
	adminListen := stringFlag(fs, "admin-listen", "CAPSTAN_ADMIN_LISTEN", "", "separate address for the admin API, which then leaves the device port (empty = admin API on --listen)")
	maxConns := intFlag(fs, "max-connections", "CAPSTAN_MAX_CONNECTIONS", 10000, "most connections the device port holds open; above it new ones get 429 server_busy at once (0 = no limit)")
	adminMaxConns := intFlag(fs, "admin-max-connections", "CAPSTAN_ADMIN_MAX_CONNECTIONS", 256, "most connections the --admin-listen port holds open (0 = no limit)")
	idleTimeout := durationFlag(fs, "idle-timeout", "CAPSTAN_IDLE_TIMEOUT", time.Minute, "how long an idle keep-alive connection is kept")
	bodyTimeout := durationFlag(fs, "body-timeout", "CAPSTAN_BODY_TIMEOUT", 10*time.Second, "time allowed to send a request body once its headers arrived (device and other non-upload routes)")
	writeTimeout := durationFlag(fs, "write-timeout", "CAPSTAN_WRITE_TIMEOUT", 30*time.Second, "time allowed to send an answer, after the body deadline (bundle downloads use --download-idle-timeout)")
	downloadIdle := durationFlag(fs, "download-idle-timeout", "CAPSTAN_DOWNLOAD_IDLE_TIMEOUT", 30*time.Second, "bundle downloads: longest time each 64 KiB may take to leave; the deadline moves on as bytes flow")
	uploadTimeout := durationFlag(fs, "upload-timeout", "CAPSTAN_UPLOAD_TIMEOUT", time.Minute, "admin API: time allowed for a request body, plus its size at --upload-min-rate")
	uploadMinRate := int64Flag(fs, "upload-min-rate", "CAPSTAN_UPLOAD_MIN_RATE", 64<<10, "admin API: slowest upload accepted, in bytes per second (lengthens --upload-timeout by size/rate)")
	guardOn := boolFlag(fs, "guard", "CAPSTAN_GUARD", true, "run the rollout guard, which pauses failing rollouts and advances plans from --clickhouse-url's counts (one process of a deployment acts at a time)")
	guardInterval := durationFlag(fs, "guard-interval", "CAPSTAN_GUARD_INTERVAL", guard.DefaultInterval, "how often the rollout guard reads release health and decides")
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
	g := guardConfig{
		device:   httpguard.Policy{Read: *bodyTimeout, Write: *writeTimeout},
		download: httpguard.Policy{Read: *bodyTimeout, WriteIdle: *downloadIdle},
		admin:    httpguard.Policy{Read: *uploadTimeout, MinRate: *uploadMinRate, MaxBody: *maxUpload, Write: *writeTimeout},
	}
	if err := g.validate(*maxConns, *adminMaxConns, *idleTimeout, *uploadMinRate); err != nil {
		return err
	}
	if *metricsListen != "" && !flagOrEnvSet(fs, "metrics-listen", "CAPSTAN_METRICS_LISTEN") && listensOnFreePort(*listen) {
		// Tests and throwaway servers ask for a free device port; a fixed
		// metrics port would make two of them collide.
		host, _, _ := net.SplitHostPort(*listen)
		*metricsListen = net.JoinHostPort(host, "0")
	}

	b, err := bus.Open(ctx, bus.Config{URL: *natsURL, DataDir: filepath.Join(*dataDir, "nats"), Listen: *natsListen, Name: "capstan-serve", Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: filepath.Join(*dataDir, "bundle-cache"), Replicas: *replicas, FetchTimeout: *bundleFetchTimeout, Registerer: reg, Logger: log})
	if err != nil {
		return fmt.Errorf("open release store: %w", err)
	}
	defer store.Close()
	if err := schema.EnsureStreams(ctx, b.JetStream, limits); err != nil {
		return err
	}
	auditLog, err := audit.Open(ctx, b.JetStream, audit.Options{Replicas: *replicas, Registerer: reg, Logger: log})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
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
			JetStream: b.JetStream, BatchSize: *batchSize, Linger: *linger, RetentionDays: *retention, Cluster: *chCluster,
			Registerer: reg, Logger: base.With("role", "consume"),
		}, consumer.ClickHouseClusterConnector(*chURL, *chCluster, *retention, base.With("role", "consume")))
		if err != nil {
			return err
		}
	}

	if err := os.MkdirAll(filepath.Join(*dataDir, "uploads"), 0o700); err != nil {
		return fmt.Errorf("create upload dir: %w", err)
	}

	ln, err := listenGuarded("listen", *listen, *maxConns)
	if err != nil {
		return err
	}
	defer ln.Close()
	if *publicURL == "" {
		*publicURL = defaultPublicURL(ln.Addr().String())
	}
	*publicURL = strings.TrimRight(*publicURL, "/")

	var draining atomic.Bool
	httpm := newHTTPMetrics(reg)
	httpm.watchListener("device", ln)
	health := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	ready := func(w http.ResponseWriter, req *http.Request) {
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
		// Stays 200: every front computes the same snapshot, so failing here
		// would take all of them out at once for one bad key.
		if inv := store.InvalidEntries(); len(inv) > 0 {
			writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "invalid_entries": inv})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	// The rollout guard: every front runs one; the lease lets one act.
	guardCtx, stopGuard := context.WithCancel(context.WithoutCancel(ctx))
	defer stopGuard()
	guardDone := make(chan struct{})
	var guardStatus admin.GuardStatus
	if *guardOn {
		if *guardInterval < time.Second {
			return fmt.Errorf("--guard-interval %s: want at least 1s", *guardInterval)
		}
		lease, err := guard.OpenLease(ctx, b.JetStream, guardHolderID(), max(3*(*guardInterval), guard.DefaultLeaseTTL), *replicas, log)
		if err != nil {
			return err
		}
		guardStatus = lease.Status
		dsn, cluster := *chURL, *chCluster
		gd := guard.New(guard.Config{
			Store: store, Lease: lease, Audit: auditLog, Defaults: rollout.DefaultSettings(), Interval: *guardInterval,
			Connect: func(ctx context.Context) (schema.Querier, error) {
				return schema.OpenClickHouseCluster(ctx, dsn, cluster)
			},
			Webhook:    &webhook.Sender{UserAgent: "capstan-guard", Logger: base.With("role", "guard")},
			Registerer: reg, Logger: base.With("role", "guard"),
		})
		go func() { defer close(guardDone); gd.Run(guardCtx) }()
	} else {
		close(guardDone)
	}
	adminCfg := admin.Config{Store: store, AdminToken: *adminToken, MaxUploadBytes: *maxUpload, TempDir: filepath.Join(*dataDir, "uploads"), Logger: log, Audit: auditLog,
		GuardDefaults: rollout.DefaultSettings(), GuardStatus: guardStatus}
	if *chURL != "" {
		// The admin API's device and health reads; connects on first use.
		dsn, cluster := *chURL, *chCluster
		fleet := schema.NewFleetReader(func(ctx context.Context) (schema.Querier, error) {
			return schema.OpenClickHouseCluster(ctx, dsn, cluster)
		}, "")
		defer fleet.Close()
		adminCfg.Fleet = fleet
	}
	adminAPI := admin.New(adminCfg).Handler()

	r := newRouter(g.byPath(*adminListen == ""))
	r.Group(func(r chi.Router) {
		r.Use(httpm.wrap("updates"))
		update.NewHandler(update.Config{Snapshot: store.Snapshot, PublicURL: *publicURL, Metrics: update.NewMetrics(reg), Logger: log, Choices: store}).Routes(r)
	})
	r.With(httpm.wrap("bundles")).Handle("/bundles/{app}/{file}", update.BundleHandler(store, log))
	// Delta bundle files, shared by bundles and named by digest.
	r.With(httpm.wrap("files")).Handle("/files/{sha}", update.FileHandler(store, log))
	r.With(httpm.wrap("stats")).Handle("/stats", ingest.New(ingest.Config{JetStream: b.JetStream, Snapshot: store.Snapshot, MaxEvents: *statsMaxEvents, MaxBodyBytes: *statsMaxBody, Registerer: reg, Logger: log}))
	if *adminListen == "" {
		r.With(httpm.wrap("admin")).Mount("/api/v1", adminAPI)
		mountConsole(r, httpm)
	}
	r.Get("/healthz", health)
	r.Get("/readyz", ready)

	var servers []*http.Server // admin and device, shut down last first
	var metricsSrv *http.Server
	newServer := func(h http.Handler) *http.Server {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       *idleTimeout,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		return srv
	}
	served := make(chan error, 3)
	serve := func(srv *http.Server, l net.Listener, what string) {
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("%s http server: %w", what, err)
			}
		}()
	}

	var adminAddr, metricsAddr string
	if *adminListen != "" {
		aln, err := listenGuarded("admin listen", *adminListen, *adminMaxConns)
		if err != nil {
			return err
		}
		defer aln.Close()
		httpm.watchListener("admin", aln)
		ar := newRouter(g.admin.Handler)
		ar.With(httpm.wrap("admin")).Mount("/api/v1", adminAPI)
		mountConsole(ar, httpm)
		ar.Get("/healthz", health)
		asrv := newServer(ar)
		servers = append(servers, asrv)
		serve(asrv, aln, "admin")
		adminAddr = aln.Addr().String()
	}
	if *metricsListen != "" {
		mln, err := listenGuarded("metrics listen", *metricsListen, opsMaxConns)
		if err != nil {
			return err
		}
		defer mln.Close()
		httpm.watchListener("metrics", mln)
		mr := newRouter(g.device.Handler)
		mr.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mr.Get("/healthz", health)
		mr.Get("/readyz", ready)
		metricsSrv = newServer(mr)
		serve(metricsSrv, mln, "metrics")
		metricsAddr = mln.Addr().String()
		log.Info("serving metrics", "metrics", metricsAddr)
	}
	if *debugListen != "" {
		dln, err := net.Listen("tcp", *debugListen)
		if err != nil {
			return fmt.Errorf("debug listen %s: %w", *debugListen, err)
		}
		dsrv := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = dsrv.Serve(dln) }()
		defer dsrv.Close()
		log.Info("serving pprof", "debug", dln.Addr().String())
	}
	srv := newServer(r)
	servers = append(servers, srv)
	serve(srv, ln, "device")
	log.Info("capstan serving", "addr", ln.Addr().String(), "public_url", *publicURL,
		"admin", orSame(adminAddr), "metrics", orNone(metricsAddr),
		"nats", natsDescription(*natsURL, b), "consume", *consume, "guard", *guardOn, "apps", len(store.Snapshot().Apps()))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	// Ordered drain: stop looking ready, finish in-flight requests (each
	// stats request waits for its JetStream acks), then flush the consumer.
	// The metrics server goes last so the drain can still be scraped. The
	// device server stops first, then the admin server.
	log.Info("shutting down")
	draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(servers) - 1; i >= 0; i-- {
		if err := servers[i].Shutdown(sctx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
	}
	stopGuard()
	<-guardDone
	stopConsume()
	if runner != nil {
		if err := runner.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("consumer stopped", "err", err)
		}
	}
	if metricsSrv != nil {
		if err := metricsSrv.Shutdown(sctx); err != nil {
			log.Warn("metrics shutdown", "err", err)
		}
	}
	log.Info("stopped")
	return nil
}

// mountConsole serves the web console next to the admin API it calls.
func mountConsole(r chi.Router, httpm *httpMetrics) {
	h := console.Handler()
	r.With(httpm.wrap("console")).Handle("/console", h)
	r.With(httpm.wrap("console")).Handle("/console/*", h)
}

// opsMaxConns bounds the connections of the metrics port: Prometheus and
// probes need a handful.
const opsMaxConns = 64

// guardConfig holds the request deadlines of each kind of route.
type guardConfig struct {
	device, download, admin httpguard.Policy
}

func (g guardConfig) validate(maxConns, adminMaxConns int, idle time.Duration, minRate int64) error {
	for name, d := range map[string]time.Duration{
		"--body-timeout": g.device.Read, "--write-timeout": g.device.Write, "--download-idle-timeout": g.download.WriteIdle,
		"--upload-timeout": g.admin.Read, "--idle-timeout": idle,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive, got %s", name, d)
		}
	}
	if maxConns < 0 || adminMaxConns < 0 {
		return fmt.Errorf("--max-connections and --admin-max-connections must be 0 (no limit) or more, got %d and %d", maxConns, adminMaxConns)
	}
	if minRate <= 0 {
		return fmt.Errorf("--upload-min-rate must be positive, got %d", minRate)
	}
	return nil
}

// byPath picks the deadlines of a request on the device port from its
// path: bundle downloads, admin calls (when the admin API shares the
// port), everything else including unknown paths.
func (g guardConfig) byPath(withAdmin bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		device, download, adm := g.device.Handler(next), g.download.Handler(next), g.admin.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch p := r.URL.Path; {
			case strings.HasPrefix(p, "/bundles/"), strings.HasPrefix(p, "/files/"):
				download.ServeHTTP(w, r)
			case withAdmin && (p == "/api/v1" || strings.HasPrefix(p, "/api/v1/")):
				adm.ServeHTTP(w, r)
			default:
				device.ServeHTTP(w, r)
			}
		})
	}
}

// newRouter is a router with the front's deadlines, panic recovery and
// JSON answers for unknown paths and methods.
func newRouter(deadlines func(http.Handler) http.Handler) *chi.Mux {
	r := chi.NewRouter()
	r.Use(deadlines, middleware.Recoverer)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no such endpoint"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "message": req.Method + " is not allowed here"})
	})
	return r
}

// listenGuarded listens on addr and holds at most max connections there.
func listenGuarded(what, addr string, max int) (*httpguard.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, addr, err)
	}
	return httpguard.NewListener(ln, max, 2*time.Second), nil
}

// flagOrEnvSet reports whether a flag was given on the command line or
// through its environment variable.
func flagOrEnvSet(fs *flag.FlagSet, name, env string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	_, inEnv := os.LookupEnv(env)
	return set || inEnv
}

// listensOnFreePort reports whether addr asks the kernel for a free port.
func listensOnFreePort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

func orSame(addr string) string {
	if addr == "" {
		return "device port"
	}
	return addr
}

func orNone(addr string) string {
	if addr == "" {
		return "off"
	}
	return addr
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

// guardHolderID names this process in the guard's lease.
func guardHolderID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), nuid.Next())
}
