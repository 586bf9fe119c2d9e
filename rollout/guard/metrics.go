package guard

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/internal/promreg"
	"github.com/capstan-io/capstan/update/release"
)

type metrics struct {
	leader      prometheus.Gauge
	decisions   *prometheus.CounterVec // app, channel, decision
	evaluations *prometheus.CounterVec // result
	lastRound   prometheus.Gauge
	percent     *prometheus.GaugeVec // app, channel
	paused      *prometheus.GaugeVec // app, channel
	shown       map[[2]string]bool
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capstan_guard_leader",
			Help: "1 on the process holding the rollout guard's lease (the one that acts), 0 on the others.",
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_guard_decisions_total",
			Help: "Changes the rollout guard made: pause or abort of a failing rollout, advance or promote of a plan.",
		}, []string{"app", "channel", "decision"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capstan_guard_evaluations_total",
			Help: "Rollout evaluations by the guard leader; error: the ClickHouse counts or the release write failed.",
		}, []string{"result"}),
		lastRound: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capstan_guard_last_evaluation_timestamp_seconds",
			Help: "When the guard leader last finished evaluating every rollout.",
		}),
		percent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "capstan_rollout_percent",
			Help: "Share of devices a channel's rollout reaches, per channel with a rollout (exported by the guard leader).",
		}, []string{"app", "channel"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "capstan_rollout_paused",
			Help: "1 while a channel's rollout is paused (exported by the guard leader).",
		}, []string{"app", "channel"}),
		shown: map[[2]string]bool{},
	}
	if reg != nil {
		m.leader = promreg.Register(reg, m.leader)
		m.decisions = promreg.Register(reg, m.decisions)
		m.evaluations = promreg.Register(reg, m.evaluations)
		m.lastRound = promreg.Register(reg, m.lastRound)
		m.percent = promreg.Register(reg, m.percent)
		m.paused = promreg.Register(reg, m.paused)
	}
	for _, r := range []string{"ok", "error"} {
		m.evaluations.WithLabelValues(r)
	}
	return m
}

// state exports one channel's rollout.
func (m *metrics) state(app string, c *release.Channel) {
	m.percent.WithLabelValues(app, c.Name).Set(c.RolloutPercent)
	p := 0.0
	if c.RolloutState == release.RolloutPaused {
		p = 1
	}
	m.paused.WithLabelValues(app, c.Name).Set(p)
	m.shown[[2]string{app, c.Name}] = true
}

// keepOnly drops the series of channels whose rollout ended.
func (m *metrics) keepOnly(seen map[[2]string]bool) {
	for k := range m.shown {
		if !seen[k] {
			m.percent.DeleteLabelValues(k[0], k[1])
			m.paused.DeleteLabelValues(k[0], k[1])
			delete(m.shown, k)
		}
	}
}

// forget drops every rollout series: only the leader exports them, so
// sums over replicas stay right.
func (m *metrics) forget() { m.keepOnly(nil) }
