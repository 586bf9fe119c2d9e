package update

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/update/release"
)

// UnknownApp is the app label of checks for apps not in the snapshot, so a
// flood of made-up app ids cannot explode the label set.
const UnknownApp = "unknown"

// Metrics counts update checks: capstan_update_checks_total{app,result}.
type Metrics struct {
	checks *prometheus.CounterVec

	// Counters per app indexed by result, published copy-on-write so the
	// hot path is a map lookup without locks or label hashing.
	mu   sync.Mutex
	apps atomic.Pointer[map[string]*appCounters]
}

type appCounters [numResults]atomic.Pointer[prometheus.Counter]

// NewMetrics registers the update metrics with reg (nil: not registered).
// If reg already holds them (two fronts in one process), they are shared.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{checks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "capstan_update_checks_total",
		Help: `Update checks answered, by app and result ("update", "builtin" or the error code).`,
	}, []string{"app", "result"})}
	empty := map[string]*appCounters{}
	m.apps.Store(&empty)
	if reg != nil {
		if err := reg.Register(m.checks); err != nil {
			are, ok := err.(prometheus.AlreadyRegisteredError)
			if !ok {
				panic(err)
			}
			m.checks = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return m
}

// observe counts one answer; app must already be bounded (see appLabel).
func (m *Metrics) observe(app string, res result) {
	if m == nil || res >= numResults {
		return
	}
	ac := (*m.apps.Load())[app]
	if ac == nil {
		ac = m.addApp(app)
	}
	c := ac[res].Load()
	if c == nil {
		nc := m.checks.WithLabelValues(app, resultCodes[res])
		ac[res].CompareAndSwap(nil, &nc)
		c = ac[res].Load()
	}
	(*c).Inc()
}

func (m *Metrics) addApp(app string) *appCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.apps.Load()
	if ac := old[app]; ac != nil {
		return ac
	}
	next := make(map[string]*appCounters, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	ac := new(appCounters)
	next[app] = ac
	m.apps.Store(&next)
	return ac
}

// AppLabel bounds an app metric label to apps the snapshot knows.
func AppLabel(snap *release.Snapshot, app string) string {
	if app == "" || snap == nil {
		return UnknownApp
	}
	if _, ok := snap.App(app); ok {
		return app
	}
	return UnknownApp
}
