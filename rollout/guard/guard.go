// Package guard runs the rollout guard: the one process of a deployment
// holding its lease reads release health from ClickHouse every few
// seconds and carries out rollout's decisions on the release store.
package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/internal/webhook"
	"github.com/capstan-io/capstan/rollout"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update/release"
)

// Defaults of Config.
const (
	DefaultInterval = 5 * time.Second
	DefaultLeaseTTL = 15 * time.Second
)

// Store is the part of the release store the guard reads and writes.
type Store interface {
	Snapshot() *release.Snapshot
	UpdateChannel(ctx context.Context, app, name string, fn func(cur *release.Channel) (release.Channel, error)) (release.Channel, bool, error)
}

// Config configures a guard.
type Config struct {
	Store Store
	Lease *Lease
	// Connect opens the ClickHouse connection the counts are read from;
	// the guard connects when it first needs to and again after a failed
	// query. Database qualifies the rollup table ("" = the connection's).
	Connect  func(ctx context.Context) (schema.Querier, error)
	Database string
	Audit    audit.Recorder // nil: changes are only logged
	Webhook  *webhook.Sender
	Defaults rollout.Settings
	// Interval between evaluation rounds (DefaultInterval).
	Interval   time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Guard evaluates every rollout while it holds the lease.
type Guard struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	conn schema.Querier
	// hooks holds a token per webhook that may be in flight; Run takes
	// them all back before it returns.
	hooks chan struct{}
}

// New builds a guard from cfg.
func New(cfg Config) *Guard {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer), hooks: make(chan struct{}, 16)}
	for range cap(g.hooks) {
		g.hooks <- struct{}{}
	}
	return g
}

// Run evaluates rollouts every Interval until ctx ends, then gives the
// lease up.
func (g *Guard) Run(ctx context.Context) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		g.cfg.Lease.Release(rctx)
		cancel()
		g.m.leader.Set(0)
		if c, ok := g.conn.(io.Closer); ok {
			_ = c.Close()
		}
		for range cap(g.hooks) { // webhooks still being posted
			<-g.hooks
		}
	}()
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	lastErr := time.Time{}
	for {
		if err := g.Round(ctx); err != nil && ctx.Err() == nil && time.Since(lastErr) > time.Minute {
			// Once a minute at most: a guard without ClickHouse says so
			// without flooding the log; the metrics count every failure.
			g.log.Warn("rollout guard round failed", "err", err)
			lastErr = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round refreshes the lease and, when held, evaluates every rollout once.
func (g *Guard) Round(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, g.cfg.Interval)
	held, err := g.cfg.Lease.Refresh(lctx)
	cancel()
	if !held {
		g.m.leader.Set(0)
		g.m.forget()
		return err
	}
	g.m.leader.Set(1)
	snap := g.cfg.Store.Snapshot()
	var errs []error
	seen := map[[2]string]bool{}
	for _, app := range snap.Apps() {
		for _, ch := range snap.Channels(app.ID) {
			if ch.RolloutBundle == "" {
				continue
			}
			seen[[2]string{app.ID, ch.Name}] = true
			g.m.state(app.ID, ch)
			if !g.cfg.Lease.Held(time.Now()) {
				return errors.New("guard lease ran out during a round")
			}
			if err := g.evaluate(ctx, app, ch); err != nil {
				g.m.evaluations.WithLabelValues("error").Inc()
				errs = append(errs, err)
				continue
			}
			g.m.evaluations.WithLabelValues("ok").Inc()
		}
	}
	g.m.keepOnly(seen)
	g.m.lastRound.SetToCurrentTime()
	return errors.Join(errs...)
}

// evaluate decides for one channel and carries the decision out.
func (g *Guard) evaluate(ctx context.Context, app release.App, ch *release.Channel) error {
	now := g.cfg.Now()
	s, err := rollout.SettingsFor(ch, g.cfg.Defaults)
	if err != nil {
		// A channel written with bad settings keeps the defaults rather
		// than losing its guard.
		g.log.Warn("rollout guard: channel settings invalid; using defaults", "app", app.ID, "channel", ch.Name, "err", err)
		s = g.cfg.Defaults
	}
	since := rollout.Since(ch, s, now)
	stepSince := ch.RolloutStepStartedAt
	if stepSince.IsZero() {
		stepSince = since
	}
	qctx, cancel := context.WithTimeout(ctx, g.cfg.Interval)
	defer cancel()
	if g.conn == nil {
		conn, err := g.cfg.Connect(qctx)
		if err != nil {
			return fmt.Errorf("rollout guard: connect to ClickHouse: %w", err)
		}
		g.conn = conn
	}
	in, err := countChannel(qctx, g.conn, g.cfg.Database, app.ID, ch.Name, ch.RolloutBundle, ch.Bundle, since, stepSince)
	if err != nil {
		if c, ok := g.conn.(io.Closer); ok {
			_ = c.Close()
		}
		g.conn = nil
		return err
	}
	d := rollout.Next(ch, in, s, now)
	g.putStatus(ctx, app.ID, ch, Status{Time: now.UTC(), Since: since.UTC(), Decision: d.Kind, Reason: d.Reason,
		Rollout: in.Rollout, Base: in.Base, StepInstalls: in.StepInstalls, Gate: d.Gate})
	if d.Kind == rollout.KeepGoing {
		return nil
	}
	return g.act(ctx, app, ch, d, now)
}

// Status is the guard's reading of one rollout, shown by the rollout
// status (GET .../rollout).
type Status struct {
	Time         time.Time          `json:"time"`
	Since        time.Time          `json:"since"`
	Decision     string             `json:"decision"`
	Reason       string             `json:"reason"`
	Rollout      rollout.Counts     `json:"rollout"`
	Base         rollout.Counts     `json:"base"`
	StepInstalls uint64             `json:"step_installs"`
	Gate         rollout.GateResult `json:"gate"`
}

func (g *Guard) putStatus(ctx context.Context, app string, ch *release.Channel, st Status) {
	data, err := json.Marshal(st)
	if err != nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, g.cfg.Interval)
	defer cancel()
	if err := g.cfg.Lease.PutStatus(sctx, app, ch.Name, data); err != nil {
		g.log.Debug("rollout guard: status not stored", "app", app, "channel", ch.Name, "err", err)
	}
}

// act writes decision d, made on channel seen, unless the channel changed
// since: then the next round decides again on what it has become.
func (g *Guard) act(ctx context.Context, app release.App, seen *release.Channel, d rollout.Decision, now time.Time) error {
	var written release.Channel
	_, _, err := g.cfg.Store.UpdateChannel(ctx, app.ID, seen.Name, func(cur *release.Channel) (release.Channel, error) {
		if cur == nil || !sameRollout(cur, seen) {
			return release.Channel{}, errChanged
		}
		c, err := rollout.Apply(*cur, d, now)
		if err != nil {
			return release.Channel{}, err
		}
		c.UpdatedAt = now.UTC()
		written = c
		return c, nil
	})
	if errors.Is(err, errChanged) {
		g.log.Info("rollout guard: channel changed while deciding; deciding again", "app", app.ID, "channel", seen.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("rollout guard %s on %s/%s: %w", d.Kind, app.ID, seen.Name, err)
	}
	g.m.decisions.WithLabelValues(app.ID, seen.Name, d.Kind).Inc()
	g.log.Warn("rollout guard acted", "app", app.ID, "channel", seen.Name, "decision", d.Kind,
		"rollout_bundle", seen.RolloutBundle, "percent", written.RolloutPercent, "reason", d.Reason)
	g.record(ctx, app, seen, written, d, now)
	return nil
}

var errChanged = errors.New("channel changed since the decision")

// sameRollout reports whether cur is still the rollout a decision was
// made on: same bundle, step and state.
func sameRollout(cur, seen *release.Channel) bool {
	return cur.RolloutBundle == seen.RolloutBundle && cur.RolloutStep == seen.RolloutStep &&
		cur.RolloutState == seen.RolloutState && cur.Bundle == seen.Bundle &&
		cur.RolloutStartedAt.Equal(seen.RolloutStartedAt) && cur.RolloutResumedAt.Equal(seen.RolloutResumedAt)
}

// Event is the audit entry's gate numbers and the webhook's body.
type Event struct {
	App           string             `json:"app"`
	Channel       string             `json:"channel"`
	Decision      string             `json:"decision"`
	Reason        string             `json:"reason"`
	RolloutBundle string             `json:"rollout_bundle"`
	BaseBundle    string             `json:"base_bundle"`
	Percent       float64            `json:"rollout_percent"`
	Step          int                `json:"rollout_step"`
	Gate          rollout.GateResult `json:"gate"`
	Time          time.Time          `json:"time"`
}

// record appends the change to the audit log and posts the app's webhook.
func (g *Guard) record(ctx context.Context, app release.App, seen *release.Channel, written release.Channel, d rollout.Decision, now time.Time) {
	ev := Event{
		App: app.ID, Channel: seen.Name, Decision: d.Kind, Reason: d.Reason,
		RolloutBundle: seen.RolloutBundle, BaseBundle: seen.Bundle,
		Percent: written.RolloutPercent, Step: written.RolloutStep, Gate: d.Gate, Time: now.UTC(),
	}
	if g.cfg.Audit != nil {
		gate, _ := json.Marshal(ev)
		e := audit.Entry{
			Time: now.UTC(), App: app.ID, Channel: seen.Name, Bundle: seen.RolloutBundle,
			Change: "rollout_" + d.Kind, Actor: audit.ActorGuard, Automatic: true,
			Detail: d.Reason, Gate: gate,
		}
		if err := g.cfg.Audit.Append(ctx, e); err != nil {
			g.log.Error("rollout guard: audit append failed", "app", app.ID, "channel", seen.Name, "err", err)
		}
	}
	if app.WebhookURL == "" || g.cfg.Webhook == nil {
		return
	}
	select {
	case <-g.hooks:
	default:
		g.log.Warn("rollout guard: too many webhooks in flight; skipping one", "app", app.ID)
		return
	}
	go func() {
		defer func() { g.hooks <- struct{}{} }()
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := g.cfg.Webhook.Post(hctx, app.WebhookURL, ev); err != nil {
			g.log.Error("rollout guard: webhook failed", "app", app.ID, "err", err)
		}
	}()
}
