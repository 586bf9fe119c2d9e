package rollout

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

// Errors of the controls.
var (
	ErrNoRollout = errors.New("the channel has no rollout")
	ErrPaused    = errors.New("the rollout is already paused")
	ErrNotPaused = errors.New("the rollout is not paused")
	ErrNoPlan    = errors.New("the rollout has no plan")
)

// GuardActor is the RolloutPausedBy of a rollout the guard paused.
const GuardActor = "guard"

// clone copies c so that the copy shares no slice or pointer with it.
func clone(c release.Channel) release.Channel {
	c.RolloutPlan = slices.Clone(c.RolloutPlan)
	if c.Guard != nil {
		g := *c.Guard
		g.MaxFailureRate = clonePtr(g.MaxFailureRate)
		g.Confidence = clonePtr(g.Confidence)
		g.MinDevices = clonePtr(g.MinDevices)
		g.MinFailures = clonePtr(g.MinFailures)
		g.WindowSeconds = clonePtr(g.WindowSeconds)
		g.CooldownSeconds = clonePtr(g.CooldownSeconds)
		c.Guard = &g
	}
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// clearRollout ends c's rollout: every rollout field cleared; the guard
// settings and GuardActedAt are kept.
func clearRollout(c *release.Channel) {
	c.RolloutBundle = ""
	c.RolloutPercent = 0
	c.RolloutState = ""
	c.RolloutStartedAt = time.Time{}
	c.RolloutPlan = nil
	c.RolloutStep = 0
	c.RolloutStepStartedAt = time.Time{}
	c.RolloutResumedAt = time.Time{}
	clearPause(c)
}

func clearPause(c *release.Channel) {
	c.RolloutPausedAt = time.Time{}
	c.RolloutPausedBy = ""
	c.RolloutPauseReason = ""
}

// PauseRollout pauses c's rollout: no device is added to it; devices
// already on the rollout bundle keep it. by names who paused it (a token's
// name, or GuardActor) and reason says why (may be empty).
func PauseRollout(c release.Channel, now time.Time, by, reason string) (release.Channel, error) {
	if c.RolloutBundle == "" {
		return c, ErrNoRollout
	}
	if c.RolloutState == release.RolloutPaused {
		return c, ErrPaused
	}
	c = clone(c)
	c.RolloutState = release.RolloutPaused
	c.RolloutPausedAt = now
	c.RolloutPausedBy = by
	c.RolloutPauseReason = reason
	return c, nil
}

// ResumeRollout resumes c's paused rollout. The current step's bake
// restarts and the gate counts only what devices report from now on.
func ResumeRollout(c release.Channel, now time.Time) (release.Channel, error) {
	if c.RolloutBundle == "" {
		return c, ErrNoRollout
	}
	if c.RolloutState != release.RolloutPaused {
		return c, ErrNotPaused
	}
	c = clone(c)
	c.RolloutState = ""
	c.RolloutResumedAt = now
	c.RolloutStepStartedAt = now
	clearPause(&c)
	return c, nil
}

// PromoteRollout makes the rollout bundle the channel's bundle and ends
// the rollout, paused or not.
func PromoteRollout(c release.Channel, now time.Time) (release.Channel, error) {
	if c.RolloutBundle == "" {
		return c, ErrNoRollout
	}
	c = clone(c)
	c.Bundle = c.RolloutBundle
	clearRollout(&c)
	return c, nil
}

// AbortRollout ends c's rollout, paused or not; its devices go back to
// the channel's bundle.
func AbortRollout(c release.Channel, now time.Time) (release.Channel, error) {
	if c.RolloutBundle == "" {
		return c, ErrNoRollout
	}
	c = clone(c)
	clearRollout(&c)
	return c, nil
}

// AdvanceRollout moves c's running rollout to its plan's next step (its
// percent, started now), or promotes it after the last step. It is
// ErrNoPlan without a plan and ErrPaused on a paused rollout.
func AdvanceRollout(c release.Channel, now time.Time) (release.Channel, error) {
	if c.RolloutBundle == "" {
		return c, ErrNoRollout
	}
	if len(c.RolloutPlan) == 0 {
		return c, ErrNoPlan
	}
	if c.RolloutState == release.RolloutPaused {
		return c, ErrPaused
	}
	next := max(c.RolloutStep, 0) + 1
	if next >= len(c.RolloutPlan) {
		return PromoteRollout(c, now)
	}
	c = clone(c)
	c.RolloutStep = next
	c.RolloutPercent = c.RolloutPlan[next].Percent
	c.RolloutStepStartedAt = now
	return c, nil
}

// Apply carries out a guard Decision on c. Pause and Abort set
// GuardActedAt to now; Pause records GuardActor and the decision's reason.
// KeepGoing returns c unchanged.
func Apply(c release.Channel, d Decision, now time.Time) (release.Channel, error) {
	var (
		out release.Channel
		err error
	)
	switch d.Kind {
	case KeepGoing:
		return c, nil
	case Pause:
		out, err = PauseRollout(c, now, GuardActor, d.Reason)
	case Abort:
		out, err = AbortRollout(c, now)
	case Advance:
		return AdvanceRollout(c, now)
	case Promote:
		return PromoteRollout(c, now)
	default:
		return c, fmt.Errorf("unknown rollout decision %q", d.Kind)
	}
	if err != nil {
		return c, err
	}
	out.GuardActedAt = now
	return out, nil
}
