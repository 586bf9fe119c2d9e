package rollout

import (
	"fmt"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

// Input is what the guard knows about one channel at one moment.
type Input struct {
	// Rollout and Base count the rollout bundle and the channel's bundle
	// over [Since(c, s, now), now).
	Rollout, Base Counts
	// StepInstalls are installs of the rollout bundle since
	// c.RolloutStepStartedAt.
	StepInstalls uint64
}

// Since is the start of the gate's window: the latest of now−Window,
// c.RolloutStartedAt and c.RolloutResumedAt. What devices reported before
// the rollout started, or before it was last resumed, is not held against
// it.
func Since(c *release.Channel, s Settings, now time.Time) time.Time {
	t := now.Add(-s.Window)
	if c.RolloutStartedAt.After(t) {
		t = c.RolloutStartedAt
	}
	if c.RolloutResumedAt.After(t) {
		t = c.RolloutResumedAt
	}
	return t
}

// Decision kinds.
const (
	KeepGoing = ""
	Pause     = "pause"
	Abort     = "abort"
	Advance   = "advance"
	Promote   = "promote"
)

// Decision is what the guard does to a channel's rollout.
type Decision struct {
	// Kind is one of the decision kinds.
	Kind string `json:"kind"`
	// Gate is the gate's reading (zero when there was nothing to read).
	Gate GateResult `json:"gate"`
	// Reason is a human sentence.
	Reason string `json:"reason"`
}

// Next is the guard's decision for c at now.
//
//   - No rollout, or a paused one: KeepGoing.
//   - The gate failing, s.Enabled, and c.GuardActedAt not within
//     s.Cooldown: s.Action (Pause or Abort). Within the cooldown:
//     KeepGoing (a failing gate never lets a plan advance).
//   - With a plan, once the current step's bake is over, StepInstalls
//     reached its MinInstalls and the gate is not failing (a disabled
//     gate counts as passing): Advance, or Promote at the last step.
//   - Otherwise KeepGoing.
func Next(c *release.Channel, in Input, s Settings, now time.Time) Decision {
	if c.RolloutBundle == "" {
		return Decision{Reason: "the channel has no rollout"}
	}
	if c.RolloutState == release.RolloutPaused {
		return Decision{Reason: fmt.Sprintf("the rollout of %s is paused", c.RolloutBundle)}
	}
	g := Gate(in.Rollout, in.Base, s)
	d := Decision{Gate: g}
	if s.Enabled && g.Failing {
		if !c.GuardActedAt.IsZero() && now.Sub(c.GuardActedAt) < s.Cooldown {
			d.Reason = fmt.Sprintf("rollout of %s failing (%s), but the guard acted on the channel at %s and waits until %s",
				c.RolloutBundle, g.Worst.Reason, c.GuardActedAt.UTC().Format(time.RFC3339), c.GuardActedAt.Add(s.Cooldown).UTC().Format(time.RFC3339))
			return d
		}
		d.Kind = Pause
		verb := "paused"
		if s.Action == release.GuardAbort {
			d.Kind = Abort
			verb = "aborted"
		}
		d.Reason = fmt.Sprintf("rollout of %s %s by the guard: %s", c.RolloutBundle, verb, g.Worst.Reason)
		return d
	}
	if len(c.RolloutPlan) == 0 {
		d.Reason = fmt.Sprintf("rollout of %s at %g %% healthy: %s", c.RolloutBundle, c.RolloutPercent, g.Worst.Reason)
		if !s.Enabled {
			d.Reason = fmt.Sprintf("rollout of %s at %g %%; the guard is disabled for the channel", c.RolloutBundle, c.RolloutPercent)
		}
		return d
	}
	i := min(max(c.RolloutStep, 0), len(c.RolloutPlan)-1)
	step := c.RolloutPlan[i]
	where := fmt.Sprintf("step %d of %d (%g %%)", i+1, len(c.RolloutPlan), step.Percent)
	if c.RolloutStepStartedAt.IsZero() {
		d.Reason = fmt.Sprintf("rollout of %s at %s: the step's start is unknown, so its bake never ends; advance or resume it by hand", c.RolloutBundle, where)
		return d
	}
	bake := time.Duration(step.BakeSeconds) * time.Second
	if baked := now.Sub(c.RolloutStepStartedAt); baked < bake {
		d.Reason = fmt.Sprintf("rollout of %s at %s baking: %s of %s", c.RolloutBundle, where, baked.Truncate(time.Second), bake)
		return d
	}
	if step.MinInstalls > 0 && in.StepInstalls < uint64(step.MinInstalls) {
		d.Reason = fmt.Sprintf("rollout of %s at %s waiting for installs: %d of %d", c.RolloutBundle, where, in.StepInstalls, step.MinInstalls)
		return d
	}
	health := "the guard is disabled for the channel"
	if s.Enabled {
		health = g.Worst.Reason
	}
	if i == len(c.RolloutPlan)-1 {
		d.Kind = Promote
		d.Reason = fmt.Sprintf("rollout of %s passed its last step, %s, after %s and %d installs; promoting it (%s)", c.RolloutBundle, where, bake, in.StepInstalls, health)
		return d
	}
	d.Kind = Advance
	d.Reason = fmt.Sprintf("rollout of %s passed %s after %s and %d installs; advancing to %g %% (%s)", c.RolloutBundle, where, bake, in.StepInstalls, c.RolloutPlan[i+1].Percent, health)
	return d
}
