package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capstan-io/capstan/internal/httpguard"
)

// httpMetrics instruments every route group of the front with the
// capstan_http_* series, labelled by a fixed handler name.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reg      prometheus.Registerer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_http_requests_total",
			Help: "HTTP requests answered by the front, by handler and status code.",
		}, []string{"handler", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "capstan_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by handler.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"handler"}),
		reg: reg,
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// wrap returns middleware counting and timing requests as handler.
func (m *httpMetrics) wrap(handler string) func(http.Handler) http.Handler {
	counter := m.requests.MustCurryWith(prometheus.Labels{"handler": handler})
	duration := m.duration.MustCurryWith(prometheus.Labels{"handler": handler})
	return func(next http.Handler) http.Handler {
		return promhttp.InstrumentHandlerDuration(duration, promhttp.InstrumentHandlerCounter(counter, next))
	}
}

// watchListener exports the open and refused connections of a guarded
// listener as capstan_http_open_connections and
// capstan_http_refused_connections_total, labelled by listener.
func (m *httpMetrics) watchListener(name string, l *httpguard.Listener) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "capstan_http_open_connections",
			Help:        "Connections the front holds open, by listener.",
			ConstLabels: prometheus.Labels{"listener": name},
		}, func() float64 { return float64(l.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "capstan_http_refused_connections_total",
			Help:        "Connections answered 429 server_busy because the listener held its most, by listener.",
			ConstLabels: prometheus.Labels{"listener": name},
		}, func() float64 { return float64(l.Rejected()) }),
	)
}
