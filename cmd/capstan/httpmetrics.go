package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics instruments every route group of the front with the
// capstan_http_* series, labelled by a fixed handler name.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
