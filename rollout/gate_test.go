package rollout

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestZ(t *testing.T) {
	for _, tc := range []struct{ c, want float64 }{
		{0.95, 1.959964},
		{0.99, 2.575829},
		{0.9, 1.644854},
		{0.5, 0.674490},
		{0.9999, 3.890592},
	} {
		if got := Z(tc.c); !near(got, tc.want, 1e-6) {
			t.Errorf("Z(%v) = %v, want %v", tc.c, got, tc.want)
		}
	}
	if Z(0) != 0 || math.IsInf(Z(1), 0) || math.IsNaN(Z(1)) {
		t.Errorf("Z at the ends: Z(0)=%v Z(1)=%v", Z(0), Z(1))
	}
}

func TestWilson(t *testing.T) {
	z := Z(0.95)
	for _, tc := range []struct {
		k, n         uint64
		lower, upper float64
	}{
		{12, 40, 0.180748, 0.454300},
		{0, 0, 0, 1},
		{0, 40, 0, 0.087622},
		{40, 40, 0.912378, 1},
		{10, 2000, 0.002718, 0.009180},
		{15, 30, 0.331541, 0.668459},
		{8, 100, 0.041093, 0.149981},
		{50, 40, 0.912378, 1}, // k above n counts as n
	} {
		l, u := Wilson(tc.k, tc.n, z)
		if !near(l, tc.lower, 1e-6) || !near(u, tc.upper, 1e-6) {
			t.Errorf("Wilson(%d, %d) = (%.6f, %.6f), want (%.6f, %.6f)", tc.k, tc.n, l, u, tc.lower, tc.upper)
		}
		if l < 0 || u > 1 || l > u {
			t.Errorf("Wilson(%d, %d) = (%v, %v) outside [0, 1]", tc.k, tc.n, l, u)
		}
	}
	// z = 0 is the point estimate.
	if l, u := Wilson(3, 10, 0); !near(l, 0.3, 1e-12) || !near(u, 0.3, 1e-12) {
		t.Errorf("Wilson(3, 10, 0) = (%v, %v), want (0.3, 0.3)", l, u)
	}
}

func TestGate(t *testing.T) {
	def := DefaultSettings()
	for _, tc := range []struct {
		name          string
		rollout, base Counts
		s             Settings
		failing       bool
		worst         string
		enough        bool
		reason        string
	}{
		{name: "nothing yet", s: def, worst: MetricInstallFailures, reason: "too few to decide"},
		{
			name:    "few devices decide nothing",
			rollout: Counts{Attempts: 10, Failures: 10}, s: def,
			worst: MetricInstallFailures, reason: "10 of 10 devices: too few to decide",
		},
		{
			name:    "few failures decide nothing",
			rollout: Counts{Attempts: 25, Failures: 4}, s: def,
			worst: MetricInstallFailures, reason: "too few to decide",
		},
		{
			name:    "half of 30 devices failing",
			rollout: Counts{Attempts: 30, Failures: 15}, s: def,
			failing: true, enough: true, worst: MetricInstallFailures,
			reason: "install failures 15 of 30 devices (50.0 %, 95 % lower bound 33.2 %) above the 5.0 % threshold",
		},
		{
			name:    "the worked example",
			rollout: Counts{Attempts: 40, Failures: 12}, s: def,
			failing: true, enough: true, worst: MetricInstallFailures,
			reason: "install failures 12 of 40 devices (30.0 %, 95 % lower bound 18.1 %) above the 5.0 % threshold",
		},
		{
			name:    "healthy",
			rollout: Counts{Attempts: 400, Failures: 20, Active: 380, Crashed: 6},
			base:    Counts{Attempts: 4000, Failures: 240, Active: 3900, Crashed: 60},
			// Crashes' lower bound 0.7 % is 1.3 points under its limit
			// (the base's upper bound 2.0 %), install failures' 3.3 % is
			// 1.7 under theirs (the threshold): crashes are the closer.
			s: def, enough: true, worst: MetricCrashes,
			reason: "crashes 6 of 380 devices (1.6 %, 95 % lower bound 0.7 %) within the 5.0 % threshold and the base bundle's 95 % upper bound 2.0 % (60 of 3900 devices)",
		},
		{
			name:    "worse than the base, under the threshold",
			rollout: Counts{Attempts: 100, Failures: 5},
			base:    Counts{Attempts: 300, Failures: 1},
			s:       def, failing: true, enough: true, worst: MetricInstallFailures,
			reason: "install failures 5 of 100 devices (5.0 %, 95 % lower bound 2.2 %) above the base bundle's 95 % upper bound 1.9 % (1 of 300 devices)",
		},
		{
			name:    "a base with too few devices is not compared",
			rollout: Counts{Attempts: 100, Failures: 5},
			base:    Counts{Attempts: 19},
			s:       def, enough: true, worst: MetricInstallFailures,
			reason: "within the 5.0 % threshold",
		},
		{
			name:    "crashes worse than the base",
			rollout: Counts{Attempts: 100, Failures: 1, Active: 100, Crashed: 8},
			base:    Counts{Attempts: 2000, Failures: 30, Active: 2000, Crashed: 10},
			s:       def, failing: true, enough: true, worst: MetricCrashes,
			reason: "crashes 8 of 100 devices (8.0 %, 95 % lower bound 4.1 %) above the base bundle's 95 % upper bound 0.9 % (10 of 2000 devices)",
		},
		{
			name:    "crashes above the threshold",
			rollout: Counts{Attempts: 50, Active: 50, Crashed: 20},
			s:       def, failing: true, enough: true, worst: MetricCrashes,
			reason: "crashes 20 of 50 devices (40.0 %",
		},
		{
			name:    "looser threshold and confidence",
			rollout: Counts{Attempts: 40, Failures: 12},
			s:       func() Settings { s := def; s.MaxFailureRate = 0.25; s.Confidence = 0.99; return s }(),
			enough:  true, worst: MetricInstallFailures,
			reason: "99 % lower bound",
		},
		{
			name:    "disabled settings still read",
			rollout: Counts{Attempts: 40, Failures: 12},
			s:       func() Settings { s := def; s.Enabled = false; return s }(),
			failing: true, enough: true, worst: MetricInstallFailures,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := Gate(tc.rollout, tc.base, tc.s)
			if g.Failing != tc.failing {
				t.Errorf("Failing = %v, want %v (%s)", g.Failing, tc.failing, g.Worst.Reason)
			}
			if g.Worst.Metric != tc.worst {
				t.Errorf("Worst = %s, want %s", g.Worst.Metric, tc.worst)
			}
			if g.Worst.Enough != tc.enough {
				t.Errorf("Worst.Enough = %v, want %v", g.Worst.Enough, tc.enough)
			}
			if !strings.Contains(g.Worst.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", g.Worst.Reason, tc.reason)
			}
			if len(g.Verdicts) != 2 || g.Verdicts[0].Metric != MetricInstallFailures || g.Verdicts[1].Metric != MetricCrashes {
				t.Errorf("Verdicts = %+v", g.Verdicts)
			}
			failing := false
			for _, v := range g.Verdicts {
				failing = failing || v.Failing
				if v.Failing && !v.Enough {
					t.Errorf("%s failing without enough data", v.Metric)
				}
			}
			if failing != g.Failing {
				t.Errorf("Failing %v but verdicts say %v", g.Failing, failing)
			}
		})
	}
}

func TestGateSides(t *testing.T) {
	g := Gate(Counts{Attempts: 40, Failures: 12, Active: 30, Crashed: 3}, Counts{Active: 2000, Crashed: 10}, DefaultSettings())
	v := g.Verdicts[0]
	if v.Rollout.Devices != 40 || v.Rollout.Failing != 12 || !near(v.Rollout.Rate, 0.3, 1e-12) ||
		!near(v.Rollout.Lower, 0.180748, 1e-6) || !near(v.Rollout.Upper, 0.454300, 1e-6) {
		t.Errorf("install rollout side = %+v", v.Rollout)
	}
	if v.Base.Devices != 0 || v.Base.Lower != 0 || v.Base.Upper != 1 {
		t.Errorf("install base side = %+v", v.Base)
	}
	c := g.Verdicts[1]
	if c.Rollout.Devices != 30 || c.Rollout.Failing != 3 || c.Base.Devices != 2000 || !near(c.Base.Upper, 0.009180, 1e-6) {
		t.Errorf("crash sides = %+v / %+v", c.Rollout, c.Base)
	}
	// More crashed than active: a crashed device ran the bundle.
	g = Gate(Counts{Active: 10, Crashed: 30}, Counts{}, DefaultSettings())
	if s := g.Verdicts[1].Rollout; s.Devices != 30 || s.Rate != 1 {
		t.Errorf("crashed above active: %+v", s)
	}
}

func TestDefaultSettings(t *testing.T) {
	s := DefaultSettings()
	want := Settings{Enabled: true, Action: release.GuardPause, MaxFailureRate: 0.05, Confidence: 0.95,
		MinDevices: 20, MinFailures: 5, Window: time.Hour, Cooldown: 10 * time.Minute}
	if s != want {
		t.Errorf("DefaultSettings() = %+v, want %+v", s, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSettingsFor(t *testing.T) {
	def := DefaultSettings()
	for _, tc := range []struct {
		name  string
		guard *release.GuardSettings
		want  func(*Settings)
		err   string
	}{
		{name: "no overrides", want: func(*Settings) {}},
		{name: "empty overrides", guard: &release.GuardSettings{}, want: func(*Settings) {}},
		{name: "disabled", guard: &release.GuardSettings{Disabled: true}, want: func(s *Settings) { s.Enabled = false }},
		{
			name: "every field",
			guard: &release.GuardSettings{
				Action: release.GuardAbort, MaxFailureRate: ptr(0.1), Confidence: ptr(0.99),
				MinDevices: ptr[int64](50), MinFailures: ptr[int64](0), WindowSeconds: ptr[int64](1800), CooldownSeconds: ptr[int64](0),
			},
			want: func(s *Settings) {
				s.Action, s.MaxFailureRate, s.Confidence = release.GuardAbort, 0.1, 0.99
				s.MinDevices, s.MinFailures, s.Window, s.Cooldown = 50, 0, 30*time.Minute, 0
			},
		},
		{name: "bad rate", guard: &release.GuardSettings{MaxFailureRate: ptr(5.0)}, err: "max_failure_rate"},
		{name: "bad window", guard: &release.GuardSettings{WindowSeconds: ptr[int64](10)}, err: "window_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := release.NewChannel("com.example.app", "production")
			c.Guard = tc.guard
			got, err := SettingsFor(&c, def)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, release.ErrInvalid) {
					t.Fatalf("err = %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := def
			tc.want(&want)
			if got != want {
				t.Errorf("SettingsFor = %+v, want %+v", got, want)
			}
		})
	}
	// Defaults without an action pause.
	d := def
	d.Action = ""
	if s, _ := SettingsFor(&release.Channel{}, d); s.Action != release.GuardPause {
		t.Errorf("empty default action became %q", s.Action)
	}
}

func TestValidGuard(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    *release.GuardSettings
		err  string
	}{
		{name: "nil", g: nil},
		{name: "empty", g: &release.GuardSettings{}},
		{name: "pause", g: &release.GuardSettings{Action: "pause"}},
		{name: "abort", g: &release.GuardSettings{Action: "abort"}},
		{name: "ends", g: &release.GuardSettings{MaxFailureRate: ptr(0.0), Confidence: ptr(0.5), MinDevices: ptr[int64](0), MinFailures: ptr[int64](0), WindowSeconds: ptr[int64](60), CooldownSeconds: ptr[int64](0)}},
		{name: "other ends", g: &release.GuardSettings{MaxFailureRate: ptr(1.0), Confidence: ptr(0.9999), WindowSeconds: ptr[int64](7 * 86400), CooldownSeconds: ptr[int64](7 * 86400)}},
		{name: "action", g: &release.GuardSettings{Action: "stop"}, err: `guard action "stop" must be "pause" or "abort"`},
		{name: "negative rate", g: &release.GuardSettings{MaxFailureRate: ptr(-0.1)}, err: "max_failure_rate -0.1 must be between 0 and 1"},
		{name: "percent as rate", g: &release.GuardSettings{MaxFailureRate: ptr(5.0)}, err: "max_failure_rate 5 must be between 0 and 1"},
		{name: "NaN rate", g: &release.GuardSettings{MaxFailureRate: ptr(math.NaN())}, err: "max_failure_rate"},
		{name: "low confidence", g: &release.GuardSettings{Confidence: ptr(0.4)}, err: "confidence 0.4 must be between 0.5 and 0.9999"},
		{name: "confidence 1", g: &release.GuardSettings{Confidence: ptr(1.0)}, err: "confidence 1 must be"},
		{name: "min devices", g: &release.GuardSettings{MinDevices: ptr[int64](-1)}, err: "min_devices -1 must not be negative"},
		{name: "min failures", g: &release.GuardSettings{MinFailures: ptr[int64](-3)}, err: "min_failures -3 must not be negative"},
		{name: "short window", g: &release.GuardSettings{WindowSeconds: ptr[int64](59)}, err: "window_seconds 59 must be between 60 (a minute) and 604800 (7 days)"},
		{name: "long window", g: &release.GuardSettings{WindowSeconds: ptr[int64](604801)}, err: "window_seconds 604801"},
		{name: "negative cooldown", g: &release.GuardSettings{CooldownSeconds: ptr[int64](-1)}, err: "cooldown_seconds -1 must be between 0 and 604800 (7 days)"},
		{name: "long cooldown", g: &release.GuardSettings{CooldownSeconds: ptr[int64](604801)}, err: "cooldown_seconds 604801"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidGuard(tc.g)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ValidGuard = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ValidGuard = %v, want %q", err, tc.err)
			}
			if !errors.Is(err, release.ErrInvalid) {
				t.Errorf("%v does not match release.ErrInvalid", err)
			}
		})
	}
}
