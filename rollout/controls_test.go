package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

// guarded is planned() at step 1, paused by an operator, with guard
// settings and a past guard action.
func guarded() release.Channel {
	c := planned()
	c.RolloutStep = 1
	c.RolloutPercent = 25
	c.RolloutStepStartedAt = t0.Add(time.Hour)
	c.RolloutResumedAt = t0.Add(30 * time.Minute)
	c.Guard = &release.GuardSettings{MaxFailureRate: ptr(0.1)}
	c.GuardActedAt = t0.Add(-time.Hour)
	return c
}

func paused() release.Channel {
	c := guarded()
	c.RolloutState = release.RolloutPaused
	c.RolloutPausedAt = t0.Add(90 * time.Minute)
	c.RolloutPausedBy = "ci"
	c.RolloutPauseReason = "looks wrong"
	return c
}

func ended(c release.Channel, bundle string) release.Channel {
	c.Bundle = bundle
	c.RolloutBundle, c.RolloutPercent, c.RolloutState = "", 0, ""
	c.RolloutStartedAt, c.RolloutStepStartedAt, c.RolloutResumedAt, c.RolloutPausedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	c.RolloutPlan, c.RolloutStep = nil, 0
	c.RolloutPausedBy, c.RolloutPauseReason = "", ""
	return c
}

func TestControls(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	none := release.NewChannel("com.example.app", "production")
	none.Bundle = "1.0.0"
	noPlan := guarded()
	noPlan.RolloutPlan, noPlan.RolloutStep = nil, 0

	for _, tc := range []struct {
		name string
		op   func(release.Channel) (release.Channel, error)
		in   release.Channel
		want func(release.Channel) release.Channel
		err  error
	}{
		{
			name: "pause", op: func(c release.Channel) (release.Channel, error) {
				return PauseRollout(c, now, "alice", "support tickets")
			}, in: guarded(),
			want: func(c release.Channel) release.Channel {
				c.RolloutState, c.RolloutPausedAt, c.RolloutPausedBy, c.RolloutPauseReason = release.RolloutPaused, now, "alice", "support tickets"
				return c
			},
		},
		{name: "pause paused", op: func(c release.Channel) (release.Channel, error) { return PauseRollout(c, now, "alice", "") }, in: paused(), err: ErrPaused},
		{name: "pause none", op: func(c release.Channel) (release.Channel, error) { return PauseRollout(c, now, "alice", "") }, in: none, err: ErrNoRollout},
		{
			name: "resume", op: func(c release.Channel) (release.Channel, error) { return ResumeRollout(c, now) }, in: paused(),
			want: func(c release.Channel) release.Channel {
				c.RolloutState, c.RolloutResumedAt, c.RolloutStepStartedAt = "", now, now
				c.RolloutPausedAt, c.RolloutPausedBy, c.RolloutPauseReason = time.Time{}, "", ""
				return c
			},
		},
		{name: "resume running", op: func(c release.Channel) (release.Channel, error) { return ResumeRollout(c, now) }, in: guarded(), err: ErrNotPaused},
		{name: "resume none", op: func(c release.Channel) (release.Channel, error) { return ResumeRollout(c, now) }, in: none, err: ErrNoRollout},
		{name: "promote", op: func(c release.Channel) (release.Channel, error) { return PromoteRollout(c, now) }, in: guarded(), want: func(c release.Channel) release.Channel { return ended(c, "1.0.1") }},
		{name: "promote paused", op: func(c release.Channel) (release.Channel, error) { return PromoteRollout(c, now) }, in: paused(), want: func(c release.Channel) release.Channel { return ended(c, "1.0.1") }},
		{name: "promote none", op: func(c release.Channel) (release.Channel, error) { return PromoteRollout(c, now) }, in: none, err: ErrNoRollout},
		{name: "abort", op: func(c release.Channel) (release.Channel, error) { return AbortRollout(c, now) }, in: guarded(), want: func(c release.Channel) release.Channel { return ended(c, "1.0.0") }},
		{name: "abort paused", op: func(c release.Channel) (release.Channel, error) { return AbortRollout(c, now) }, in: paused(), want: func(c release.Channel) release.Channel { return ended(c, "1.0.0") }},
		{name: "abort none", op: func(c release.Channel) (release.Channel, error) { return AbortRollout(c, now) }, in: none, err: ErrNoRollout},
		{
			name: "advance", op: func(c release.Channel) (release.Channel, error) { return AdvanceRollout(c, now) }, in: guarded(),
			want: func(c release.Channel) release.Channel {
				c.RolloutStep, c.RolloutPercent, c.RolloutStepStartedAt = 2, 100, now
				return c
			},
		},
		{
			name: "advance past the last step promotes", op: func(c release.Channel) (release.Channel, error) { return AdvanceRollout(c, now) },
			in:   func() release.Channel { c := guarded(); c.RolloutStep = 2; return c }(),
			want: func(c release.Channel) release.Channel { return ended(c, "1.0.1") },
		},
		{name: "advance without a plan", op: func(c release.Channel) (release.Channel, error) { return AdvanceRollout(c, now) }, in: noPlan, err: ErrNoPlan},
		{name: "advance paused", op: func(c release.Channel) (release.Channel, error) { return AdvanceRollout(c, now) }, in: paused(), err: ErrPaused},
		{name: "advance none", op: func(c release.Channel) (release.Channel, error) { return AdvanceRollout(c, now) }, in: none, err: ErrNoRollout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := clone(tc.in)
			before := clone(tc.in)
			got, err := tc.op(in)
			if !reflect.DeepEqual(in, before) {
				t.Errorf("argument changed:\n%+v\n%+v", in, before)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want(clone(tc.in)); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if got.Guard == in.Guard || got.Guard == nil {
				t.Errorf("guard settings not copied: %p %p", got.Guard, in.Guard)
			}
			if len(got.RolloutPlan) > 0 && &got.RolloutPlan[0] == &in.RolloutPlan[0] {
				t.Errorf("plan shared with the argument")
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	for err, want := range map[error]string{
		ErrNoRollout: "the channel has no rollout",
		ErrPaused:    "the rollout is already paused",
		ErrNotPaused: "the rollout is not paused",
		ErrNoPlan:    "the rollout has no plan",
	} {
		if err.Error() != want {
			t.Errorf("%q, want %q", err, want)
		}
	}
}

func TestApply(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	c := guarded()

	got, err := Apply(c, Decision{Kind: KeepGoing, Reason: "fine"}, now)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("KeepGoing changed the channel: %v %+v", err, got)
	}

	got, err = Apply(c, Decision{Kind: Pause, Reason: "install failures too high"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.RolloutState != release.RolloutPaused || GuardActor != "guard" || got.RolloutPausedBy != GuardActor ||
		got.RolloutPauseReason != "install failures too high" || !got.RolloutPausedAt.Equal(now) || !got.GuardActedAt.Equal(now) {
		t.Errorf("pause: %+v", got)
	}

	got, err = Apply(c, Decision{Kind: Abort, Reason: "crashes"}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := ended(c, "1.0.0")
	want.GuardActedAt = now
	if !reflect.DeepEqual(got, want) {
		t.Errorf("abort: %+v", got)
	}

	got, err = Apply(c, Decision{Kind: Advance}, now)
	if err != nil || got.RolloutStep != 2 || got.RolloutPercent != 100 || !got.GuardActedAt.Equal(c.GuardActedAt) {
		t.Errorf("advance: %v %+v", err, got)
	}

	got, err = Apply(c, Decision{Kind: Promote}, now)
	if err != nil || got.Bundle != "1.0.1" || got.RolloutBundle != "" || !got.GuardActedAt.Equal(c.GuardActedAt) {
		t.Errorf("promote: %v %+v", err, got)
	}

	if _, err := Apply(paused(), Decision{Kind: Pause}, now); !errors.Is(err, ErrPaused) {
		t.Errorf("pausing a paused rollout: %v", err)
	}
	if _, err := Apply(c, Decision{Kind: "explode"}, now); err == nil || !strings.Contains(err.Error(), "explode") {
		t.Errorf("unknown kind: %v", err)
	}
}
