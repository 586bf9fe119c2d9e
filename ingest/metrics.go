package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/internal/promreg"
)

type metrics struct {
	events        *prometheus.CounterVec // app, action, platform, scope
	rejected      *prometheus.CounterVec // reason
	requests      *prometheus.CounterVec // code
	duration      prometheus.Histogram
	publishErrors prometheus.Counter
	resent        prometheus.Counter
	joined        prometheus.Counter
	codes         map[int]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_stats_events_total",
			Help: "Stats events accepted (acknowledged by JetStream, duplicates excluded). Unknown actions count as action=\"other\", apps the release snapshot does not know as app=\"unknown\". scope is production (production builds on real devices), other (dev builds, emulators) or ignored (kept, never a failure: download_fail of plugins before 7.17.0 / 6.14.25).",
		}, []string{"app", "action", "platform", "scope"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_stats_events_rejected_total",
			Help: "Stats events refused because they are invalid, by error code.",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_stats_requests_total",
			Help: "POST /stats requests by HTTP status code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "capstan_stats_request_duration_seconds",
			Help:    "Time to answer POST /stats, including waiting for JetStream acknowledgements.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_stats_publish_errors_total",
			Help: "Events whose message JetStream did not acknowledge (unreachable, stream full, timeout); their request was answered 429.",
		}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_stats_publish_resent_total",
			Help: "Events sent to JetStream again (counted per event of each resent request message) because the message's acknowledgement did not come within a second (a stream leader lost); the same Nats-Msg-Id keeps it from being stored twice.",
		}),
		joined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capstan_stats_joined_requests_total",
			Help: "Requests whose events were sent in a message shared with other requests of the same app, because the app already had messages waiting for JetStream's acknowledgement (group commit).",
		}),
		codes: map[int]prometheus.Counter{},
	}
	m.events = promreg.Register(reg, m.events)
	m.rejected = promreg.Register(reg, m.rejected)
	m.requests = promreg.Register(reg, m.requests)
	m.duration = promreg.Register(reg, m.duration)
	m.publishErrors = promreg.Register(reg, m.publishErrors)
	m.resent = promreg.Register(reg, m.resent)
	m.joined = promreg.Register(reg, m.joined)
	// Series exist from the start, so rate() and alerts see zeros.
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	for _, c := range []int{200, 400, 405, 413, 429} {
		m.codes[c] = m.requests.WithLabelValues(strconv.Itoa(c))
	}
	return m
}

func (m *metrics) request(code int) {
	if c, ok := m.codes[code]; ok {
		c.Inc()
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}
