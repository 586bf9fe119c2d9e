package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestSince(t *testing.T) {
	s := DefaultSettings()
	now := t0.Add(3 * time.Hour)
	for _, tc := range []struct {
		name             string
		started, resumed time.Time
		want             time.Time
	}{
		{"window", t0, time.Time{}, now.Add(-time.Hour)},
		{"no times", time.Time{}, time.Time{}, now.Add(-time.Hour)},
		{"started in the window", now.Add(-10 * time.Minute), time.Time{}, now.Add(-10 * time.Minute)},
		{"resumed in the window", t0, now.Add(-5 * time.Minute), now.Add(-5 * time.Minute)},
		{"resumed before the window", t0, now.Add(-2 * time.Hour), now.Add(-time.Hour)},
	} {
		c := release.Channel{RolloutBundle: "1.0.1", RolloutStartedAt: tc.started, RolloutResumedAt: tc.resumed}
		if got := Since(&c, s, now); !got.Equal(tc.want) {
			t.Errorf("%s: Since = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func planned() release.Channel {
	c := release.NewChannel("com.example.app", "production")
	c.Bundle = "1.0.0"
	c.RolloutBundle = "1.0.1"
	c.RolloutPlan = []release.RolloutStep{
		{Percent: 5, BakeSeconds: 3600, MinInstalls: 100},
		{Percent: 25, BakeSeconds: 3600},
		{Percent: 100, BakeSeconds: 7200, MinInstalls: 1000},
	}
	c.RolloutPercent = 5
	c.RolloutStartedAt = t0
	c.RolloutStepStartedAt = t0
	return c
}

func TestNext(t *testing.T) {
	failing := Input{Rollout: Counts{Attempts: 40, Failures: 12, Installs: 28}, StepInstalls: 500}
	healthy := Input{Rollout: Counts{Attempts: 400, Failures: 2, Active: 390, Installs: 398}, StepInstalls: 500}
	def := DefaultSettings()
	disabled := def
	disabled.Enabled = false
	aborting := def
	aborting.Action = release.GuardAbort

	for _, tc := range []struct {
		name   string
		c      func(*release.Channel)
		in     Input
		s      Settings
		now    time.Time
		kind   string
		reason string
	}{
		{name: "no rollout", c: func(c *release.Channel) { c.RolloutBundle = "" }, in: failing, s: def, kind: KeepGoing, reason: "no rollout"},
		{name: "paused", c: func(c *release.Channel) { c.RolloutState = release.RolloutPaused }, in: failing, s: def, now: t0.Add(2 * time.Hour), kind: KeepGoing, reason: "paused"},
		{name: "failing pauses", in: failing, s: def, now: t0.Add(time.Minute), kind: Pause, reason: "rollout of 1.0.1 paused by the guard: install failures 12 of 40 devices"},
		{name: "failing aborts", in: failing, s: aborting, now: t0.Add(time.Minute), kind: Abort, reason: "aborted by the guard"},
		{name: "failing without a plan", c: func(c *release.Channel) { c.RolloutPlan = nil }, in: failing, s: def, now: t0.Add(time.Minute), kind: Pause},
		{
			name: "failing in the cooldown", c: func(c *release.Channel) { c.GuardActedAt = t0.Add(-5 * time.Minute) },
			in: failing, s: def, now: t0.Add(4*time.Minute + 59*time.Second), kind: KeepGoing, reason: "waits until 2026-03-01T12:05:00Z",
		},
		{
			name: "failing after the cooldown", c: func(c *release.Channel) { c.GuardActedAt = t0.Add(-10 * time.Minute) },
			in: failing, s: def, now: t0, kind: Pause,
		},
		{
			name: "failing blocks advance in the cooldown", c: func(c *release.Channel) { c.GuardActedAt = t0.Add(2 * time.Hour) },
			in: failing, s: def, now: t0.Add(2*time.Hour + time.Minute), kind: KeepGoing, reason: "failing",
		},
		{name: "failing blocks advance", in: failing, s: def, now: t0.Add(2 * time.Hour), kind: Pause},
		{name: "disabled does not act", c: func(c *release.Channel) { c.RolloutPlan = nil }, in: failing, s: disabled, now: t0.Add(time.Minute), kind: KeepGoing, reason: "disabled"},
		{name: "disabled gate passes", in: failing, s: disabled, now: t0.Add(time.Hour), kind: Advance, reason: "guard is disabled"},
		{name: "no plan, healthy", c: func(c *release.Channel) { c.RolloutPlan = nil }, in: healthy, s: def, now: t0.Add(48 * time.Hour), kind: KeepGoing, reason: "at 5 % healthy"},
		{name: "bake not over", in: healthy, s: def, now: t0.Add(59 * time.Minute), kind: KeepGoing, reason: "step 1 of 3 (5 %) baking: 59m0s of 1h0m0s"},
		{name: "min installs not reached", in: Input{Rollout: healthy.Rollout, StepInstalls: 99}, s: def, now: t0.Add(time.Hour), kind: KeepGoing, reason: "waiting for installs: 99 of 100"},
		{name: "advance", in: healthy, s: def, now: t0.Add(time.Hour), kind: Advance, reason: "advancing to 25 %"},
		{name: "little data still advances", in: Input{StepInstalls: 100}, s: def, now: t0.Add(time.Hour), kind: Advance},
		{
			name: "advance without min installs", c: func(c *release.Channel) { c.RolloutStep = 1; c.RolloutStepStartedAt = t0.Add(time.Hour) },
			in: Input{}, s: def, now: t0.Add(2 * time.Hour), kind: Advance, reason: "advancing to 100 %",
		},
		{
			name: "promote at the last step", c: func(c *release.Channel) { c.RolloutStep = 2; c.RolloutStepStartedAt = t0.Add(2 * time.Hour) },
			in: Input{Rollout: healthy.Rollout, StepInstalls: 1000}, s: def, now: t0.Add(4 * time.Hour), kind: Promote, reason: "passed its last step",
		},
		{
			name: "last step baking", c: func(c *release.Channel) { c.RolloutStep = 2; c.RolloutStepStartedAt = t0.Add(2 * time.Hour) },
			in: Input{Rollout: healthy.Rollout, StepInstalls: 1000}, s: def, now: t0.Add(3 * time.Hour), kind: KeepGoing, reason: "step 3 of 3",
		},
		{
			name: "step out of range counts as the last", c: func(c *release.Channel) { c.RolloutStep = 7 },
			in: Input{StepInstalls: 1000}, s: def, now: t0.Add(3 * time.Hour), kind: Promote,
		},
		{
			name: "unknown step start", c: func(c *release.Channel) { c.RolloutStepStartedAt = time.Time{} },
			in: healthy, s: def, now: t0.Add(3 * time.Hour), kind: KeepGoing, reason: "start is unknown",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := planned()
			if tc.c != nil {
				tc.c(&c)
			}
			d := Next(&c, tc.in, tc.s, tc.now)
			if d.Kind != tc.kind {
				t.Errorf("Kind = %q, want %q (%s)", d.Kind, tc.kind, d.Reason)
			}
			if d.Reason == "" || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, tc.reason)
			}
		})
	}
}
