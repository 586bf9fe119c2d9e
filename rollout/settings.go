// Package rollout decides what happens to a channel's rollout — the health
// gate, plan steps and the manual controls — as pure functions over a
// channel and device counts.
package rollout

import (
	"fmt"
	"math"
	"time"

	"github.com/capstan-io/capstan/update/release"
)

// Counts are distinct production, non-emulator devices over a window, for
// one bundle of one channel.
type Counts struct {
	// Attempts: devices that installed the bundle (set) or failed
	// installing it.
	Attempts uint64 `json:"attempts"`
	// Failures: devices with an install failure or revert of the bundle
	// (set_fail, download_fail, checksum_fail, decrypt_fail, unzip_fail,
	// session_key_required, update_fail, ...; ignored legacy events
	// excluded).
	Failures uint64 `json:"failures"`
	// Active: devices that reported running the bundle.
	Active uint64 `json:"active"`
	// Crashed: devices that reported app_crash* or app_anr on the bundle.
	Crashed uint64 `json:"crashed"`
	// Installs: devices with a set of the bundle.
	Installs uint64 `json:"installs"`
}

// Settings are the health gate's parameters for one channel.
type Settings struct {
	Enabled bool
	// Action is release.GuardPause or release.GuardAbort.
	Action string
	// MaxFailureRate is the absolute threshold for the rollout's Wilson
	// lower bound.
	MaxFailureRate float64
	// Confidence of the two-sided Wilson interval.
	Confidence float64
	// MinDevices: fewer attempts (or active devices for crashes) decide
	// nothing.
	MinDevices uint64
	// MinFailures: fewer failing devices decide nothing.
	MinFailures uint64
	// Window is the sliding window counted.
	Window time.Duration
	// Cooldown: after acting on a channel the guard leaves it alone this
	// long.
	Cooldown time.Duration
}

// Defaults of the health gate.
const (
	DefaultMaxFailureRate = 0.05
	DefaultConfidence     = 0.95
	DefaultMinDevices     = 20
	DefaultMinFailures    = 5
	DefaultWindow         = 60 * time.Minute
	DefaultCooldown       = 10 * time.Minute
)

// Limits of the values an operator may set.
const (
	MinConfidence = 0.5
	MaxConfidence = 0.9999
	MinWindow     = time.Minute
	MaxWindow     = 7 * 24 * time.Hour
	MaxCooldown   = 7 * 24 * time.Hour
)

// DefaultSettings is the gate enabled with its default parameters.
func DefaultSettings() Settings {
	return Settings{
		Enabled:        true,
		Action:         release.GuardPause,
		MaxFailureRate: DefaultMaxFailureRate,
		Confidence:     DefaultConfidence,
		MinDevices:     DefaultMinDevices,
		MinFailures:    DefaultMinFailures,
		Window:         DefaultWindow,
		Cooldown:       DefaultCooldown,
	}
}

// SettingsFor applies c.Guard's overrides to defaults (a nil field keeps
// the default) and validates them; an invalid override is an error naming
// the field.
func SettingsFor(c *release.Channel, defaults Settings) (Settings, error) {
	s := defaults
	if s.Action == "" {
		s.Action = release.GuardPause
	}
	if c == nil || c.Guard == nil {
		return s, nil
	}
	g := c.Guard
	if err := ValidGuard(g); err != nil {
		return defaults, err
	}
	if g.Disabled {
		s.Enabled = false
	}
	if g.Action != "" {
		s.Action = g.Action
	}
	if g.MaxFailureRate != nil {
		s.MaxFailureRate = *g.MaxFailureRate
	}
	if g.Confidence != nil {
		s.Confidence = *g.Confidence
	}
	if g.MinDevices != nil {
		s.MinDevices = uint64(*g.MinDevices)
	}
	if g.MinFailures != nil {
		s.MinFailures = uint64(*g.MinFailures)
	}
	if g.WindowSeconds != nil {
		s.Window = time.Duration(*g.WindowSeconds) * time.Second
	}
	if g.CooldownSeconds != nil {
		s.Cooldown = time.Duration(*g.CooldownSeconds) * time.Second
	}
	return s, nil
}

// invalidError is a validation error: its message is only the human
// sentence, and it matches release.ErrInvalid (errors.Is), as the admin
// API maps that to 400.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return release.ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

// ValidGuard checks guard settings an operator sends: max_failure_rate
// 0–1, confidence 0.5–0.9999, min_devices and min_failures ≥ 0,
// window_seconds from a minute to 7 days, cooldown_seconds 0 to 7 days,
// action pause, abort or "". A nil g is valid.
func ValidGuard(g *release.GuardSettings) error {
	if g == nil {
		return nil
	}
	switch g.Action {
	case "", release.GuardPause, release.GuardAbort:
	default:
		return invalid("guard action %q must be %q or %q", g.Action, release.GuardPause, release.GuardAbort)
	}
	if v := g.MaxFailureRate; v != nil && (math.IsNaN(*v) || *v < 0 || *v > 1) {
		return invalid("guard max_failure_rate %v must be between 0 and 1 (0.05 is 5 %%)", *v)
	}
	if v := g.Confidence; v != nil && (math.IsNaN(*v) || *v < MinConfidence || *v > MaxConfidence) {
		return invalid("guard confidence %v must be between %v and %v (0.95 is 95 %%)", *v, MinConfidence, MaxConfidence)
	}
	if v := g.MinDevices; v != nil && *v < 0 {
		return invalid("guard min_devices %d must not be negative", *v)
	}
	if v := g.MinFailures; v != nil && *v < 0 {
		return invalid("guard min_failures %d must not be negative", *v)
	}
	if v := g.WindowSeconds; v != nil && (*v < int64(MinWindow/time.Second) || *v > int64(MaxWindow/time.Second)) {
		return invalid("guard window_seconds %d must be between %d (a minute) and %d (7 days)", *v, int64(MinWindow/time.Second), int64(MaxWindow/time.Second))
	}
	if v := g.CooldownSeconds; v != nil && (*v < 0 || *v > int64(MaxCooldown/time.Second)) {
		return invalid("guard cooldown_seconds %d must be between 0 and %d (7 days)", *v, int64(MaxCooldown/time.Second))
	}
	return nil
}
