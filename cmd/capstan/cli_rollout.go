package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

var rolloutVerbs = map[string]verb{
	"status":  {"--app APP <channel>", "show a channel's rollout, its plan and the guard's last reading", rolloutStatus},
	"pause":   {"--app APP <channel> [--reason R]", "stop adding devices to the rollout (devices on its bundle keep it)", rolloutControl("pause")},
	"resume":  {"--app APP <channel>", "resume a paused rollout; the current step's bake starts again", rolloutControl("resume")},
	"promote": {"--app APP <channel>", "make the rollout bundle the channel's bundle and end the rollout", rolloutControl("promote")},
	"abort":   {"--app APP <channel> [--reason R]", "end the rollout and send its devices back to the channel's bundle", rolloutControl("abort")},
}

func runRollout(ctx context.Context, args []string) error {
	return dispatch(ctx, "rollout", rolloutVerbs, []string{"status", "pause", "resume", "promote", "abort"}, args)
}

func rolloutStatus(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	pos, cl, err := c.connect(args, app, 1, 1)
	if err != nil {
		return err
	}
	st, err := cl.Rollout(ctx, *app, pos[0])
	return showRollout(c, st, err)
}

// showRollout prints a rollout status as JSON or text.
func showRollout(c *common, st admin.RolloutStatus, err error) error {
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(st)
	}
	printRollout(st)
	return nil
}

func rolloutControl(action string) func(context.Context, *common, []string) error {
	return func(ctx context.Context, c *common, args []string) error {
		app := appFlag(c.fs)
		reason := c.fs.String("reason", "", "why (kept in the audit log)")
		pos, cl, err := c.connect(args, app, 1, 1)
		if err != nil {
			return err
		}
		st, err := cl.ControlRollout(ctx, *app, pos[0], action, *reason)
		return showRollout(c, st, err)
	}
}

func printRollout(st admin.RolloutStatus) {
	ch := st.Channel
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	base := ch.Bundle
	if base == "" {
		base = "builtin"
	}
	fmt.Fprintf(tw, "channel\t%s\n", ch.Name)
	fmt.Fprintf(tw, "bundle\t%s\n", base)
	fmt.Fprintf(tw, "state\t%s\n", st.State)
	if ch.RolloutBundle != "" {
		fmt.Fprintf(tw, "rollout\t%s to %g %% of devices, since %s\n", ch.RolloutBundle, ch.RolloutPercent, ch.RolloutStartedAt.Format(time.RFC3339))
	}
	if st.State == "paused" {
		fmt.Fprintf(tw, "paused\tby %s at %s: %s\n", dash(ch.RolloutPausedBy), ch.RolloutPausedAt.Format(time.RFC3339), dash(ch.RolloutPauseReason))
	}
	if len(ch.RolloutPlan) > 0 {
		fmt.Fprintf(tw, "plan\t%s (step %d of %d since %s)\n", formatPlan(ch.RolloutPlan), ch.RolloutStep+1, len(ch.RolloutPlan), ch.RolloutStepStartedAt.Format(time.RFC3339))
	}
	if len(st.Health) > 0 {
		var h struct {
			Time   time.Time `json:"time"`
			Reason string    `json:"reason"`
		}
		if json.Unmarshal(st.Health, &h) == nil && h.Reason != "" {
			fmt.Fprintf(tw, "guard\t%s (%s)\n", h.Reason, h.Time.Format(time.RFC3339))
		}
	}
	tw.Flush()
}

// formatPlan writes a plan as --rollout-plan reads it.
func formatPlan(plan []release.RolloutStep) string {
	parts := make([]string, len(plan))
	for i, s := range plan {
		parts[i] = fmt.Sprintf("%g:%s", s.Percent, time.Duration(s.BakeSeconds)*time.Second)
		if s.MinInstalls > 0 {
			parts[i] += ":" + strconv.FormatInt(s.MinInstalls, 10)
		}
	}
	return strings.Join(parts, ",")
}

// parsePlan reads "PERCENT:BAKE[:MIN_INSTALLS],..." (e.g. 1:10m,5:30m:100,25:1h).
func parsePlan(s string) ([]release.RolloutStep, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return []release.RolloutStep{}, nil
	}
	var plan []release.RolloutStep
	for i, part := range strings.Split(s, ",") {
		f := strings.Split(strings.TrimSpace(part), ":")
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("rollout plan step %d %q: want PERCENT:BAKE[:MIN_INSTALLS], e.g. 5:30m:100", i+1, part)
		}
		p, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("rollout plan step %d: percent %q is not a number", i+1, f[0])
		}
		bake, err := time.ParseDuration(f[1])
		if err != nil {
			return nil, fmt.Errorf("rollout plan step %d: bake %q is not a duration like 30m", i+1, f[1])
		}
		st := release.RolloutStep{Percent: p, BakeSeconds: int64(bake / time.Second)}
		if len(f) == 3 {
			if st.MinInstalls, err = strconv.ParseInt(f[2], 10, 64); err != nil {
				return nil, fmt.Errorf("rollout plan step %d: min installs %q is not a whole number", i+1, f[2])
			}
		}
		plan = append(plan, st)
	}
	return plan, nil
}
