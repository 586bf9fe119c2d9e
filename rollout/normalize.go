package rollout

import (
	"math"
	"slices"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

// Limits of a rollout plan.
const (
	MaxPlanSteps = 20
	MaxBake      = 30 * 24 * time.Hour
)

// ValidPlan checks a progressive rollout plan: at most MaxPlanSteps
// steps, each percent in (0, 100] and above the previous one, bake_seconds
// from 0 to 30 days, min_installs not negative. An empty plan is valid:
// it means none.
func ValidPlan(plan []release.RolloutStep) error {
	if len(plan) > MaxPlanSteps {
		return invalid("a rollout plan has at most %d steps, not %d", MaxPlanSteps, len(plan))
	}
	prev := 0.0
	for i, st := range plan {
		n := i + 1
		if math.IsNaN(st.Percent) || st.Percent <= 0 || st.Percent > 100 {
			return invalid("rollout plan step %d: percent %v must be above 0 and at most 100", n, st.Percent)
		}
		if i > 0 && st.Percent <= prev {
			return invalid("rollout plan step %d: percent %v must be above step %d's %v", n, st.Percent, i, prev)
		}
		prev = st.Percent
		if st.BakeSeconds < 0 || st.BakeSeconds > int64(MaxBake/time.Second) {
			return invalid("rollout plan step %d: bake_seconds %d must be between 0 and %d (30 days)", n, st.BakeSeconds, int64(MaxBake/time.Second))
		}
		if st.MinInstalls < 0 {
			return invalid("rollout plan step %d: min_installs %d must not be negative", n, st.MinInstalls)
		}
	}
	return nil
}

// Normalize keeps the rollout bookkeeping of a channel write right; prev
// is the channel before the write (nil when it is new), next what the
// write stores.
//
//   - A rollout bundle set to a new non-empty value, or a plan set where
//     there was none, starts a new rollout: RolloutStartedAt and
//     RolloutStepStartedAt now, step 0, running, resume and pause fields
//     cleared; with a plan, RolloutPercent is its first step's.
//   - No rollout bundle: every rollout field cleared. A plan sent for a
//     channel that had no rollout bundle either is an error.
//   - A plan changed on a rollout in progress restarts it at step 0: its
//     percent, RolloutStepStartedAt now. A plan removed leaves the percent
//     as it is.
//   - A rollout_state written directly is bookkept as the controls do: a
//     paused rollout set running is resumed (RolloutResumedAt and
//     RolloutStepStartedAt now), a running one set paused gets
//     RolloutPausedAt now when it has none; pause fields are cleared
//     unless paused.
//   - The plan (ValidPlan), the step, the state and the guard settings
//     (ValidGuard) are validated.
//
// Errors match release.ErrInvalid.
func Normalize(prev *release.Channel, next release.Channel, now time.Time) (release.Channel, error) {
	c := clone(next)
	if err := ValidGuard(c.Guard); err != nil {
		return next, err
	}
	if err := ValidPlan(c.RolloutPlan); err != nil {
		return next, err
	}
	if c.RolloutBundle == "" {
		if len(c.RolloutPlan) > 0 && (prev == nil || prev.RolloutBundle == "") {
			return next, invalid("a rollout_plan needs a rollout_bundle")
		}
		clearRollout(&c)
		return c, nil
	}
	switch c.RolloutState {
	case "", release.RolloutPaused:
	default:
		return next, invalid("rollout_state %q must be empty (running) or %q", c.RolloutState, release.RolloutPaused)
	}
	hadPlan := prev != nil && len(prev.RolloutPlan) > 0
	switch {
	case prev == nil || prev.RolloutBundle != c.RolloutBundle || (!hadPlan && len(c.RolloutPlan) > 0):
		c.RolloutStartedAt = now
		c.RolloutStepStartedAt = now
		c.RolloutStep = 0
		c.RolloutState = ""
		c.RolloutResumedAt = time.Time{}
		clearPause(&c)
		if len(c.RolloutPlan) > 0 {
			c.RolloutPercent = c.RolloutPlan[0].Percent
		}
	case len(c.RolloutPlan) == 0:
		c.RolloutStep = 0
	case !slices.Equal(prev.RolloutPlan, c.RolloutPlan):
		c.RolloutStep = 0
		c.RolloutPercent = c.RolloutPlan[0].Percent
		c.RolloutStepStartedAt = now
	default:
		if c.RolloutStep < 0 || c.RolloutStep >= len(c.RolloutPlan) {
			return next, invalid("rollout_step %d must be between 0 and %d, the plan's last step", c.RolloutStep, len(c.RolloutPlan)-1)
		}
	}
	if fresh := prev == nil || prev.RolloutBundle != c.RolloutBundle || (!hadPlan && len(c.RolloutPlan) > 0); !fresh {
		// The state written directly rather than through the controls
		// gets the controls' bookkeeping.
		switch {
		case prev.RolloutState == release.RolloutPaused && c.RolloutState == "":
			c.RolloutResumedAt = now
			c.RolloutStepStartedAt = now
		case prev.RolloutState != release.RolloutPaused && c.RolloutState == release.RolloutPaused && c.RolloutPausedAt.IsZero():
			c.RolloutPausedAt = now
		}
	}
	if c.RolloutState != release.RolloutPaused {
		clearPause(&c)
	}
	return c, nil
}
