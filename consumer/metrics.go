package consumer

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/internal/promreg"
)

type metrics struct {
	batchSize      prometheus.Histogram
	insertDuration prometheus.Histogram
	inserted       prometheus.Counter
	insertErrors   prometheus.Counter
	retries        prometheus.Counter
	redeliveries   prometheus.Counter
	deadLetters    *prometheus.CounterVec
	pending        prometheus.Gauge
	lastInsert     prometheus.Gauge

	// Lag sources, epoch milliseconds of the oldest unprocessed message
	// (0 = none): the batch being filled, the batch being inserted, and
	// the stream position seen by the last consumer-info poll.
	fillingOldestMs  atomic.Int64
	flushingOldestMs atomic.Int64
	streamOldestMs   atomic.Int64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "capstan_consumer_batch_size",
			Help:    "Rows per ClickHouse insert.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		insertDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "capstan_consumer_insert_duration_seconds",
			Help:    "Duration of successful ClickHouse batch inserts.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 11),
		}),
		inserted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_consumer_inserted_events_total",
			Help: "Events inserted into ClickHouse.",
		}),
		insertErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_consumer_insert_errors_total",
			Help: "Failed ClickHouse insert attempts.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_consumer_insert_retries_total",
			Help: "Insert retries after a retryable ClickHouse error.",
		}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_consumer_redeliveries_total",
			Help: "Messages JetStream delivered more than once.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_consumer_dead_letters_total",
			Help: "Messages moved to the dead-letter stream, by reason.",
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capstan_consumer_pending_messages",
			Help: "Messages not yet acknowledged by the consumer (pending plus ack pending).",
		}),
		lastInsert: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capstan_consumer_last_insert_timestamp_seconds",
			Help: "Unix time of the last successful insert.",
		}),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "capstan_consumer_lag_seconds",
		Help: "Age of the oldest event not yet in ClickHouse; 0 when caught up.",
	}, func() float64 { return m.lagSeconds(time.Now()) })
	if reg == nil {
		return m
	}
	m.batchSize = promreg.Register(reg, m.batchSize)
	m.insertDuration = promreg.Register(reg, m.insertDuration)
	m.inserted = promreg.Register(reg, m.inserted)
	m.insertErrors = promreg.Register(reg, m.insertErrors)
	m.retries = promreg.Register(reg, m.retries)
	m.redeliveries = promreg.Register(reg, m.redeliveries)
	m.deadLetters = promreg.Register(reg, m.deadLetters)
	m.pending = promreg.Register(reg, m.pending)
	m.lastInsert = promreg.Register(reg, m.lastInsert)
	// A second consumer in one registry keeps the first one's lag gauge.
	_ = reg.Register(lag)
	return m
}

func (m *metrics) lagSeconds(now time.Time) float64 {
	return lagSeconds(now, m.fillingOldestMs.Load(), m.flushingOldestMs.Load(), m.streamOldestMs.Load())
}

// lagSeconds is the age of the oldest of the given message times
// (epoch ms, 0 = none), never negative.
func lagSeconds(now time.Time, oldestMs ...int64) float64 {
	var oldest int64
	for _, ms := range oldestMs {
		if ms > 0 && (oldest == 0 || ms < oldest) {
			oldest = ms
		}
	}
	if oldest == 0 {
		return 0
	}
	age := float64(now.UnixMilli()-oldest) / 1000
	if age < 0 {
		return 0
	}
	return age
}
