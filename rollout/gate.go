package rollout

import (
	"fmt"
	"math"
	"strconv"
)

// Metrics of the gate.
const (
	// MetricInstallFailures is Failures over Attempts.
	MetricInstallFailures = "install_failures"
	// MetricCrashes is Crashed over Active.
	MetricCrashes = "crashes"
)

// Side is one bundle's numbers for one metric.
type Side struct {
	Devices uint64  `json:"devices"`
	Failing uint64  `json:"failing"`
	Rate    float64 `json:"rate"`
	Lower   float64 `json:"lower"`
	Upper   float64 `json:"upper"`
}

// Verdict is the gate's reading of one metric.
type Verdict struct {
	// Metric is MetricInstallFailures or MetricCrashes.
	Metric  string `json:"metric"`
	Rollout Side   `json:"rollout"`
	Base    Side   `json:"base"`
	// Enough: the rollout side has at least MinDevices devices and
	// MinFailures failing.
	Enough bool `json:"enough"`
	// Failing: Enough, and the rollout's lower bound is above
	// MaxFailureRate, or the base has at least MinDevices devices and the
	// rollout's lower bound is above the base's upper bound.
	Failing bool `json:"failing"`
	// Reason is a human sentence with the numbers.
	Reason string `json:"reason"`
}

// GateResult is the gate's reading of both metrics.
type GateResult struct {
	// Failing when either metric fails.
	Failing bool `json:"failing"`
	// Worst is the failing verdict (the more clearly failing of two), or
	// when none fails the one closest to failing.
	Worst    Verdict   `json:"worst"`
	Verdicts []Verdict `json:"verdicts"`
}

func side(failing, devices uint64, z float64) Side {
	if failing > devices {
		// A device that failed on (or crashed in) the bundle had it.
		devices = failing
	}
	s := Side{Devices: devices, Failing: failing}
	if devices > 0 {
		s.Rate = float64(failing) / float64(devices)
	}
	s.Lower, s.Upper = Wilson(failing, devices, z)
	return s
}

// Gate evaluates both metrics of a rollout bundle against its base bundle
// (the channel's bundle) under s. It does not look at s.Enabled: a
// disabled gate is still read for reports, and Next ignores its verdict.
func Gate(rollout, base Counts, s Settings) GateResult {
	z := Z(s.Confidence)
	vs := []Verdict{
		verdict(MetricInstallFailures, side(rollout.Failures, rollout.Attempts, z), side(base.Failures, base.Attempts, z), s),
		verdict(MetricCrashes, side(rollout.Crashed, rollout.Active, z), side(base.Crashed, base.Active, z), s),
	}
	r := GateResult{Verdicts: vs, Worst: vs[0]}
	for _, v := range vs[1:] {
		if worse(v, r.Worst, s) {
			r.Worst = v
		}
	}
	r.Failing = r.Worst.Failing
	return r
}

// limit is the rate the rollout's lower bound must stay at or under: the
// absolute threshold, or the base's upper bound when the base has enough
// devices and that is lower.
func limit(v Verdict, s Settings) float64 {
	l := s.MaxFailureRate
	if v.Base.Devices >= s.MinDevices && v.Base.Devices > 0 && v.Base.Upper < l {
		l = v.Base.Upper
	}
	return l
}

// worse reports whether a is closer to failing (or more clearly failing)
// than b: failing first, then having enough data, then the margin of the
// rollout's lower bound over its limit.
func worse(a, b Verdict, s Settings) bool {
	if a.Failing != b.Failing {
		return a.Failing
	}
	if a.Enough != b.Enough {
		return a.Enough
	}
	return a.Rollout.Lower-limit(a, s) > b.Rollout.Lower-limit(b, s)
}

func verdict(metric string, ro, base Side, s Settings) Verdict {
	v := Verdict{Metric: metric, Rollout: ro, Base: base}
	v.Enough = ro.Devices >= s.MinDevices && ro.Failing >= s.MinFailures && ro.Devices > 0
	baseKnown := base.Devices >= s.MinDevices && base.Devices > 0
	aboveAbs := ro.Lower > s.MaxFailureRate
	aboveBase := baseKnown && ro.Lower > base.Upper
	v.Failing = v.Enough && (aboveAbs || aboveBase)

	name := "install failures"
	if metric == MetricCrashes {
		name = "crashes"
	}
	conf := confidence(s.Confidence)
	head := fmt.Sprintf("%s %d of %d devices (%s %%, %s %% lower bound %s %%)",
		name, ro.Failing, ro.Devices, percent(ro.Rate), conf, percent(ro.Lower))
	baseText := fmt.Sprintf("the base bundle's %s %% upper bound %s %% (%d of %d devices)",
		conf, percent(base.Upper), base.Failing, base.Devices)
	switch {
	case !v.Enough:
		v.Reason = fmt.Sprintf("%s %d of %d devices: too few to decide (the gate needs %d devices and %d failing)",
			name, ro.Failing, ro.Devices, s.MinDevices, s.MinFailures)
	case aboveAbs:
		v.Reason = fmt.Sprintf("%s above the %s %% threshold", head, percent(s.MaxFailureRate))
	case aboveBase:
		v.Reason = fmt.Sprintf("%s above %s", head, baseText)
	case baseKnown:
		v.Reason = fmt.Sprintf("%s within the %s %% threshold and %s", head, percent(s.MaxFailureRate), baseText)
	default:
		v.Reason = fmt.Sprintf("%s within the %s %% threshold", head, percent(s.MaxFailureRate))
	}
	return v
}

// percent formats a fraction as a percentage with one decimal: 30.0.
func percent(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 1, 64)
}

// confidence formats a confidence level as a percentage with as few
// decimals as it needs: 95, 99.9.
func confidence(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e6)/1e4, 'f', -1, 64)
}
