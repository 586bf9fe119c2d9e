package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

func TestValidPlan(t *testing.T) {
	steps := func(n int) []release.RolloutStep {
		p := make([]release.RolloutStep, n)
		for i := range p {
			p[i] = release.RolloutStep{Percent: float64(i+1) * 100 / float64(n)}
		}
		return p
	}
	for _, tc := range []struct {
		name string
		plan []release.RolloutStep
		err  string
	}{
		{name: "none", plan: nil},
		{name: "one step", plan: []release.RolloutStep{{Percent: 100}}},
		{name: "twenty steps", plan: steps(20)},
		{name: "ends", plan: []release.RolloutStep{{Percent: 0.01, BakeSeconds: 0}, {Percent: 100, BakeSeconds: 30 * 86400, MinInstalls: 0}}},
		{name: "typical", plan: []release.RolloutStep{{Percent: 1, BakeSeconds: 3600, MinInstalls: 50}, {Percent: 10, BakeSeconds: 86400, MinInstalls: 500}, {Percent: 50, BakeSeconds: 86400}, {Percent: 100}}},
		{name: "21 steps", plan: steps(21), err: "a rollout plan has at most 20 steps, not 21"},
		{name: "zero percent", plan: []release.RolloutStep{{Percent: 0}}, err: "rollout plan step 1: percent 0 must be above 0 and at most 100"},
		{name: "above 100", plan: []release.RolloutStep{{Percent: 10}, {Percent: 101}}, err: "rollout plan step 2: percent 101 must be above 0 and at most 100"},
		{name: "equal", plan: []release.RolloutStep{{Percent: 10}, {Percent: 10}}, err: "rollout plan step 2: percent 10 must be above step 1's 10"},
		{name: "decreasing", plan: []release.RolloutStep{{Percent: 10}, {Percent: 50}, {Percent: 20}}, err: "rollout plan step 3: percent 20 must be above step 2's 50"},
		{name: "negative bake", plan: []release.RolloutStep{{Percent: 10, BakeSeconds: -1}}, err: "rollout plan step 1: bake_seconds -1 must be between 0 and 2592000 (30 days)"},
		{name: "long bake", plan: []release.RolloutStep{{Percent: 10, BakeSeconds: 30*86400 + 1}}, err: "bake_seconds 2592001"},
		{name: "negative installs", plan: []release.RolloutStep{{Percent: 10, MinInstalls: -5}}, err: "rollout plan step 1: min_installs -5 must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidPlan(tc.plan)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("ValidPlan = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	now := t0.Add(5 * time.Hour)
	plan := []release.RolloutStep{{Percent: 5, BakeSeconds: 3600}, {Percent: 50, BakeSeconds: 3600}, {Percent: 100}}
	otherPlan := []release.RolloutStep{{Percent: 10, BakeSeconds: 600}, {Percent: 100}}
	base := func() release.Channel {
		c := release.NewChannel("com.example.app", "production")
		c.Bundle = "1.0.0"
		return c
	}
	simple := func() release.Channel {
		c := base()
		c.RolloutBundle, c.RolloutPercent = "1.0.1", 20
		c.RolloutStartedAt, c.RolloutStepStartedAt = t0, t0
		return c
	}
	pausedPlanned := func() release.Channel {
		c := guarded()
		c.RolloutState, c.RolloutPausedAt, c.RolloutPausedBy, c.RolloutPauseReason = release.RolloutPaused, t0, "guard", "crashes"
		return c
	}
	for _, tc := range []struct {
		name string
		prev *release.Channel
		next func() release.Channel
		want func() release.Channel
		err  string
	}{
		{name: "new channel without rollout", next: base, want: base},
		{
			name: "new channel with a rollout",
			next: func() release.Channel { c := base(); c.RolloutBundle, c.RolloutPercent = "1.0.1", 10; return c },
			want: func() release.Channel {
				c := base()
				c.RolloutBundle, c.RolloutPercent, c.RolloutStartedAt, c.RolloutStepStartedAt = "1.0.1", 10, now, now
				return c
			},
		},
		{
			name: "new rollout bundle starts a new rollout",
			prev: ptr(pausedPlanned()),
			next: func() release.Channel { c := pausedPlanned(); c.RolloutBundle = "1.0.2"; return c },
			want: func() release.Channel {
				c := pausedPlanned()
				c.RolloutBundle, c.RolloutPercent, c.RolloutStep, c.RolloutStartedAt, c.RolloutStepStartedAt = "1.0.2", 5, 0, now, now
				c.RolloutState, c.RolloutResumedAt, c.RolloutPausedAt, c.RolloutPausedBy, c.RolloutPauseReason = "", time.Time{}, time.Time{}, "", ""
				return c
			},
		},
		{
			name: "a plan where there was none starts a new rollout",
			prev: ptr(simple()),
			next: func() release.Channel { c := simple(); c.RolloutPlan = plan; return c },
			want: func() release.Channel {
				c := simple()
				c.RolloutPlan, c.RolloutPercent, c.RolloutStartedAt, c.RolloutStepStartedAt = plan, 5, now, now
				return c
			},
		},
		{
			name: "rollout bundle cleared",
			prev: ptr(pausedPlanned()),
			next: func() release.Channel { c := pausedPlanned(); c.RolloutBundle = ""; return c },
			want: func() release.Channel { return ended(pausedPlanned(), "1.0.0") },
		},
		{
			name: "a plan without a rollout bundle",
			prev: ptr(base()),
			next: func() release.Channel { c := base(); c.RolloutPlan = plan; return c },
			err:  "a rollout_plan needs a rollout_bundle",
		},
		{
			name: "plan changed",
			prev: ptr(guarded()),
			next: func() release.Channel { c := guarded(); c.RolloutPlan = otherPlan; return c },
			want: func() release.Channel {
				c := guarded()
				c.RolloutPlan, c.RolloutStep, c.RolloutPercent, c.RolloutStepStartedAt = otherPlan, 0, 10, now
				return c
			},
		},
		{
			name: "plan changed while paused stays paused",
			prev: ptr(pausedPlanned()),
			next: func() release.Channel { c := pausedPlanned(); c.RolloutPlan = otherPlan; return c },
			want: func() release.Channel {
				c := pausedPlanned()
				c.RolloutPlan, c.RolloutStep, c.RolloutPercent, c.RolloutStepStartedAt = otherPlan, 0, 10, now
				return c
			},
		},
		{
			name: "plan removed",
			prev: ptr(guarded()),
			next: func() release.Channel { c := guarded(); c.RolloutPlan = nil; return c },
			want: func() release.Channel { c := guarded(); c.RolloutPlan, c.RolloutStep = nil, 0; return c },
		},
		{name: "unrelated edit keeps the bookkeeping", prev: ptr(guarded()), next: func() release.Channel { c := guarded(); c.Public = false; return c }, want: func() release.Channel { c := guarded(); c.Public = false; return c }},
		{
			name: "state set running by a write resumes",
			prev: ptr(pausedPlanned()),
			next: func() release.Channel { c := pausedPlanned(); c.RolloutState = ""; return c },
			want: func() release.Channel {
				c := pausedPlanned()
				c.RolloutState, c.RolloutResumedAt, c.RolloutStepStartedAt = "", now, now
				c.RolloutPausedAt, c.RolloutPausedBy, c.RolloutPauseReason = time.Time{}, "", ""
				return c
			},
		},
		{
			name: "state set paused by a write",
			prev: ptr(guarded()),
			next: func() release.Channel { c := guarded(); c.RolloutState = release.RolloutPaused; return c },
			want: func() release.Channel {
				c := guarded()
				c.RolloutState, c.RolloutPausedAt = release.RolloutPaused, now
				return c
			},
		},
		{
			name: "pause fields of a running rollout are cleared",
			prev: ptr(guarded()),
			next: func() release.Channel { c := guarded(); c.RolloutPausedBy = "someone"; return c },
			want: guarded,
		},
		{name: "invalid plan", next: func() release.Channel {
			c := simple()
			c.RolloutPlan = []release.RolloutStep{{Percent: 50}, {Percent: 5}}
			return c
		}, err: "rollout plan step 2"},
		{name: "invalid guard", next: func() release.Channel {
			c := simple()
			c.Guard = &release.GuardSettings{Confidence: ptr(2.0)}
			return c
		}, err: "guard confidence 2"},
		{name: "invalid state", next: func() release.Channel { c := simple(); c.RolloutState = "stopped"; return c }, err: `rollout_state "stopped"`},
		{name: "step out of range", prev: ptr(guarded()), next: func() release.Channel { c := guarded(); c.RolloutStep = 3; return c }, err: "rollout_step 3 must be between 0 and 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := tc.next()
			before := clone(next)
			got, err := Normalize(tc.prev, next, now)
			if !reflect.DeepEqual(next, before) {
				t.Errorf("argument changed")
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, release.ErrInvalid) {
					t.Fatalf("Normalize = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// Normalizing again changes nothing.
			again, err := Normalize(&got, got, now.Add(time.Minute))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("not idempotent: %v\n%+v\n%+v", err, again, got)
			}
		})
	}
}
