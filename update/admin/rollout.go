package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/rollout"
	"github.com/capstan-io/capstan/update/release"
)

// GuardStatus returns the guard's last reading of a channel's rollout
// (nil when it has none).
type GuardStatus func(ctx context.Context, app, channel string) (json.RawMessage, error)

// rolloutState names a channel's rollout state for RolloutStatus.
func rolloutState(c *release.Channel) string {
	switch {
	case c.RolloutBundle == "":
		return "none"
	case c.RolloutState == release.RolloutPaused:
		return "paused"
	}
	return "running"
}

func (a *API) rolloutStatus(ctx context.Context, c release.Channel) RolloutStatus {
	st := RolloutStatus{Channel: c, State: rolloutState(&c)}
	if s, err := rollout.SettingsFor(&c, a.guardDefaults); err == nil {
		st.Guard = &EffectiveGuard{Enabled: s.Enabled, Action: s.Action, MaxFailureRate: s.MaxFailureRate, Confidence: s.Confidence,
			MinDevices: s.MinDevices, MinFailures: s.MinFailures, WindowSeconds: int64(s.Window / time.Second), CooldownSeconds: int64(s.Cooldown / time.Second)}
	}
	if a.guardStatus != nil && c.RolloutBundle != "" {
		if h, err := a.guardStatus(ctx, c.AppID, c.Name); err == nil {
			st.Health = h
		}
	}
	return st
}

func (a *API) getRollout(w http.ResponseWriter, r *http.Request) error {
	c, err := a.channelOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.rolloutStatus(r.Context(), *c))
	return nil
}

// rolloutControls are the changes POST .../rollout/{action} makes.
var rolloutControls = map[string]func(c release.Channel, in controlInput) (release.Channel, error){
	"pause": func(c release.Channel, in controlInput) (release.Channel, error) {
		return rollout.PauseRollout(c, in.now, in.actor, in.reason)
	},
	"resume": func(c release.Channel, in controlInput) (release.Channel, error) {
		return rollout.ResumeRollout(c, in.now)
	},
	"promote": func(c release.Channel, in controlInput) (release.Channel, error) {
		return rollout.PromoteRollout(c, in.now)
	},
	"abort": func(c release.Channel, in controlInput) (release.Channel, error) {
		return rollout.AbortRollout(c, in.now)
	},
}

type controlInput struct {
	now    time.Time
	actor  string
	reason string
}

// controlRollout pauses, resumes, promotes or aborts a channel's rollout,
// on the channel as the bucket has it.
func (a *API) controlRollout(w http.ResponseWriter, r *http.Request) error {
	action := chi.URLParam(r, "action")
	control, ok := rolloutControls[action]
	if !ok {
		return notFound("unknown_rollout_action", fmt.Sprintf("no rollout action %q; use pause, resume, promote or abort", action))
	}
	var body RolloutAction
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &body, true); err != nil {
			return err
		}
	}
	if len(body.Reason) > 500 {
		return badRequest("invalid_reason", "reason longer than 500 characters")
	}
	_, app, err := a.appOf(r)
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	now := a.now()
	actor := Actor(r.Context())
	var before release.Channel
	c, _, err := a.store.UpdateChannel(r.Context(), app.ID, name, func(cur *release.Channel) (release.Channel, error) {
		if cur == nil {
			return release.Channel{}, channelNotFound(app.ID, name)
		}
		before = *cur
		c, err := control(*cur, controlInput{now: now, actor: actor, reason: body.Reason})
		if err != nil {
			return c, err
		}
		c.UpdatedAt = now
		return c, nil
	})
	if err != nil {
		switch {
		case errors.Is(err, rollout.ErrNoRollout):
			return conflict("no_rollout", fmt.Sprintf("channel %q of app %q has no rollout", name, app.ID))
		case errors.Is(err, rollout.ErrPaused):
			return conflict("rollout_paused", fmt.Sprintf("the rollout of channel %q is already paused; resume or abort it", name))
		case errors.Is(err, rollout.ErrNotPaused):
			return conflict("rollout_not_paused", fmt.Sprintf("the rollout of channel %q is not paused", name))
		}
		if ce := storeConflict(err); ce != nil {
			return ce
		}
		if errors.Is(err, errStoreNotFound) {
			return channelNotFound(app.ID, name)
		}
		return fmt.Errorf("rollout %s: %w", action, err)
	}
	detail := fmt.Sprintf("%s rollout of %s at %g %%", action, before.RolloutBundle, before.RolloutPercent)
	if body.Reason != "" {
		detail += ": " + body.Reason
	}
	a.record(r, audit.Entry{App: app.ID, Channel: name, Bundle: before.RolloutBundle, Change: "rollout_" + action, Detail: detail})
	a.log.Info("rollout changed", "app", app.ID, "channel", name, "action", action, "by", actor, "rollout_bundle", before.RolloutBundle)
	writeJSON(w, http.StatusOK, a.rolloutStatus(r.Context(), c))
	return nil
}
