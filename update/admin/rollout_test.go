package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/update/release"
)

// The rollout controls over the API: each changes the channel as stored,
// refuses what does not apply with a specific 409, and is audited with
// the token's name.
func TestRolloutControls(t *testing.T) {
	e, log := newAuditEnv(t)
	ctx := e.ctx
	const app = "com.example.controls"
	e.app(t, app)
	e.bundle(t, app, "1.0.0")
	e.bundle(t, app, "1.1.0")
	e.bundle(t, app, "1.2.0")
	base, rb, pct := "1.0.0", "1.1.0", 10.0
	must[release.Channel](t)(e.client.SetChannel(ctx, app, "production", ChannelPatch{Bundle: &base}))

	_, err := e.client.ControlRollout(ctx, app, "production", "pause", "")
	wantAPIError(t, err, http.StatusConflict, "no_rollout")
	_, err = e.client.ControlRollout(ctx, app, "production", "explode", "")
	wantAPIError(t, err, http.StatusNotFound, "unknown_rollout_action")
	_, err = e.client.ControlRollout(ctx, app, "nope", "pause", "")
	wantAPIError(t, err, http.StatusNotFound, "channel_not_found")

	c := must[release.Channel](t)(e.client.SetChannel(ctx, app, "production", ChannelPatch{RolloutBundle: &rb, RolloutPercent: &pct}))
	if c.RolloutStartedAt.IsZero() {
		t.Fatal("a new rollout has no start time")
	}
	st := must[RolloutStatus](t)(e.client.Rollout(ctx, app, "production"))
	if st.State != "running" || st.Guard == nil {
		t.Fatalf("status %+v", st)
	}
	st = must[RolloutStatus](t)(e.client.ControlRollout(ctx, app, "production", "pause", "checkout broken"))
	if st.State != "paused" || st.Channel.RolloutPauseReason != "checkout broken" || st.Channel.RolloutPausedBy != "token:admin" {
		t.Fatalf("after pause: %+v", st)
	}
	if got, _ := e.store.Snapshot().Channel(app, "production"); got.RolloutState != release.RolloutPaused {
		t.Fatal("pause not in the snapshot devices are served from")
	}
	_, err = e.client.ControlRollout(ctx, app, "production", "pause", "")
	wantAPIError(t, err, http.StatusConflict, "rollout_paused")
	st = must[RolloutStatus](t)(e.client.ControlRollout(ctx, app, "production", "resume", ""))
	if st.State != "running" || st.Channel.RolloutResumedAt.IsZero() {
		t.Fatalf("after resume: %+v", st)
	}
	_, err = e.client.ControlRollout(ctx, app, "production", "resume", "")
	wantAPIError(t, err, http.StatusConflict, "rollout_not_paused")
	st = must[RolloutStatus](t)(e.client.ControlRollout(ctx, app, "production", "promote", ""))
	if st.State != "none" || st.Channel.Bundle != "1.1.0" || st.Channel.RolloutBundle != "" {
		t.Fatalf("after promote: %+v", st)
	}
	rb = "1.2.0"
	must[release.Channel](t)(e.client.SetChannel(ctx, app, "production", ChannelPatch{RolloutBundle: &rb, RolloutPercent: &pct}))
	st = must[RolloutStatus](t)(e.client.ControlRollout(ctx, app, "production", "abort", "crashes"))
	if st.State != "none" || st.Channel.Bundle != "1.1.0" || st.Channel.RolloutBundle != "" || st.Channel.RolloutPercent != 0 {
		t.Fatalf("after abort: %+v", st)
	}

	// Plans and guard settings are checked.
	bad := []release.RolloutStep{{Percent: 50, BakeSeconds: 60}, {Percent: 10, BakeSeconds: 60}}
	_, err = e.client.SetChannel(ctx, app, "production", ChannelPatch{RolloutBundle: &rb, RolloutPlan: &bad})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_rollout_plan")
	rate := 2.0
	_, err = e.client.SetChannel(ctx, app, "production", ChannelPatch{Guard: &release.GuardSettings{MaxFailureRate: &rate}})
	wantAPIError(t, err, http.StatusBadRequest, "invalid_guard")
	plan := []release.RolloutStep{{Percent: 5, BakeSeconds: 600}, {Percent: 25, BakeSeconds: 3600, MinInstalls: 100}}
	c = must[release.Channel](t)(e.client.SetChannel(ctx, app, "production", ChannelPatch{RolloutBundle: &rb, RolloutPlan: &plan}))
	if c.RolloutPercent != 5 || c.RolloutStep != 0 || c.RolloutStepStartedAt.IsZero() {
		t.Fatalf("a plan starts at its first step: %+v", c)
	}

	entries, err := log.List(ctx, audit.Query{App: app, Channel: "production"})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, en := range entries {
		if strings.HasPrefix(en.Change, "rollout_") {
			changes = append(changes, en.Change+"/"+en.Actor)
		}
	}
	want := "rollout_pause/token:admin rollout_resume/token:admin rollout_promote/token:admin rollout_abort/token:admin"
	if got := strings.Join(changes, " "); got != want {
		t.Fatalf("audit: %s\nwant %s", got, want)
	}
}
