package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/consumer"
	"github.com/capstan-io/capstan/schema"
)

// runConsume is `capstan consume`: a stats consumer replica reading the
// events stream of an external NATS cluster into ClickHouse.
func runConsume(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	natsURL := stringFlag(fs, "nats-url", "CAPSTAN_NATS_URL", "", "NATS server URL(s) holding the events stream (required)")
	chURL := stringFlag(fs, "clickhouse-url", "CAPSTAN_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/capstan", "ClickHouse native-protocol URL clickhouse://user:pass@host:9000/db")
	chCluster := stringFlag(fs, "clickhouse-cluster", "CAPSTAN_CLICKHOUSE_CLUSTER", "", clusterFlagHelp)
	retention := intFlag(fs, "retention-days", "CAPSTAN_RETENTION_DAYS", 0, "days of raw events ClickHouse keeps (0 = forever)")
	batchSize := intFlag(fs, "batch-size", "CAPSTAN_BATCH_SIZE", consumer.DefaultBatchSize, "most events per ClickHouse insert")
	linger := durationFlag(fs, "batch-linger", "CAPSTAN_BATCH_LINGER", consumer.DefaultLinger, "longest an event waits for its batch to fill")
	ackWait := durationFlag(fs, "ack-wait", "CAPSTAN_ACK_WAIT", consumer.DefaultAckWait, "JetStream redelivery timeout for unacknowledged events")
	drain := durationFlag(fs, "drain-timeout", "CAPSTAN_DRAIN_TIMEOUT", consumer.DefaultDrainTimeout, "time allowed to insert the open batch at shutdown")
	replicas := intFlag(fs, "replicas", "CAPSTAN_REPLICAS", 1, "replicas of the events and dead-letter streams when this consumer creates them (3 in a 3-node NATS cluster; same as serve's --replicas)")
	metricsListen := stringFlag(fs, "metrics-listen", "CAPSTAN_METRICS_LISTEN", ":9091", "address serving /metrics, /healthz and /readyz (empty = none)")
	logFormat := stringFlag(fs, "log-format", "CAPSTAN_LOG_FORMAT", "text", "log format: text or json")
	logLevel := stringFlag(fs, "log-level", "CAPSTAN_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *natsURL == "" {
		return errors.New("--nats-url (CAPSTAN_NATS_URL) is required: a separate consumer reads the stream of the fronts' NATS; `capstan serve` runs one itself")
	}
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	log = log.With("role", "consume")
	limits := schema.DefaultStreamLimits()
	limits.Replicas = *replicas
	if err := limits.Validate(); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := bus.Open(ctx, bus.Config{URL: *natsURL, Name: "capstan-consume", Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := ensureConsumeStreams(ctx, b.JetStream, limits, log); err != nil {
		return err
	}

	runner, err := consumer.Start(ctx, consumer.Config{
		JetStream:     b.JetStream,
		BatchSize:     *batchSize,
		Linger:        *linger,
		AckWait:       *ackWait,
		DrainTimeout:  *drain,
		RetentionDays: *retention,
		Cluster:       *chCluster,
		Registerer:    reg,
		Logger:        log,
	}, consumer.ClickHouseClusterConnector(*chURL, *chCluster, *retention, log))
	if err != nil {
		return err
	}

	if *metricsListen != "" {
		srv, err := serveConsumeOps(*metricsListen, reg, runner, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	log.Info("consumer started", "nats", b.Conn.ConnectedUrlRedacted(), "batch_size", *batchSize, "linger", *linger)
	return runner.Wait()
}

// ensureConsumeStreams creates the streams (with l: default limits and
// --replicas) only when they do not exist yet: the fronts own their
// limits and replicas (set with their flags), and a consumer must not
// reset them. Creation retries while a cluster forms or elects leaders.
func ensureConsumeStreams(ctx context.Context, js jetstream.JetStream, l schema.StreamLimits, log *slog.Logger) error {
	if err := schema.CreateStreamIfMissing(ctx, js, schema.EventsStreamConfig(l), log); err != nil {
		return err
	}
	return schema.CreateStreamIfMissing(ctx, js, schema.DeadLetterStreamConfig(l.Replicas), log)
}

// serveConsumeOps serves the consumer's metrics and health endpoints.
func serveConsumeOps(addr string, reg *prometheus.Registry, runner *consumer.Runner, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !runner.Connected() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error":   "clickhouse_unavailable",
				"message": "the consumer has not reached ClickHouse yet; events wait in JetStream",
			})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return srv, nil
}
