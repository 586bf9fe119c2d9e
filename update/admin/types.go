package admin

import (
	"encoding/json"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update/release"
)

// Wire types of the admin API, shared by the server and Client.

// ErrorBody is every error answer: {"error":"<code>","message":"<text>"}.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// CreateAppRequest is the body of POST /apps.
type CreateAppRequest struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// BundleMetadata is the `metadata` part of a bundle upload (or the whole
// JSON body of a metadata-only upload with external_url).
type BundleMetadata struct {
	Version string `json:"version"`
	// SessionKey, Checksum and KeyID come from `npx @capgo/cli bundle
	// encrypt`; a non-empty SessionKey marks the zip as encrypted.
	SessionKey string `json:"session_key,omitempty"`
	// Checksum is optional for plaintext zips (computed, and compared when
	// given) and required for encrypted ones and external URLs.
	Checksum         string                  `json:"checksum,omitempty"`
	KeyID            string                  `json:"key_id,omitempty"`
	Manifest         []release.ManifestEntry `json:"manifest,omitempty"`
	MinUpdateVersion string                  `json:"min_update_version,omitempty"`
	Link             string                  `json:"link,omitempty"`
	Comment          string                  `json:"comment,omitempty"`
	Breaking         bool                    `json:"breaking,omitempty"`
	Data             map[string]string       `json:"data,omitempty"`
	// ExternalURL serves the zip from elsewhere (CDN, S3); no file is sent.
	ExternalURL string `json:"external_url,omitempty"`
	// NoDelta stores a plain zip without the per-file manifest Capstan
	// otherwise builds from it: every device downloads the whole zip.
	NoDelta bool `json:"no_delta,omitempty"`
}

// ChannelPatch is the body of PUT /apps/{app}/channels/{name}: only the
// fields present change; a new channel starts from release.NewChannel.
type ChannelPatch struct {
	Bundle             *string  `json:"bundle,omitempty"`
	RolloutBundle      *string  `json:"rollout_bundle,omitempty"`
	RolloutPercent     *float64 `json:"rollout_percent,omitempty"`
	Public             *bool    `json:"public,omitempty"`
	AllowSelfSet       *bool    `json:"allow_self_set,omitempty"`
	IOS                *bool    `json:"ios,omitempty"`
	Android            *bool    `json:"android,omitempty"`
	Electron           *bool    `json:"electron,omitempty"`
	DisableAutoUpdate  *string  `json:"disable_auto_update,omitempty"`
	DisableUnderNative *bool    `json:"disable_auto_update_under_native,omitempty"`
	AllowProd          *bool    `json:"allow_prod,omitempty"`
	AllowDev           *bool    `json:"allow_dev,omitempty"`
	AllowEmulator      *bool    `json:"allow_emulator,omitempty"`
	AllowDevice        *bool    `json:"allow_device,omitempty"`
	// RolloutPlan replaces the rollout's steps ([] clears them).
	RolloutPlan *[]release.RolloutStep `json:"rollout_plan,omitempty"`
	// Guard replaces the channel's guard settings (null keeps them, {}
	// restores the defaults).
	Guard *release.GuardSettings `json:"guard,omitempty"`
}

// RolloutAction is the optional body of POST .../rollout/{action}.
type RolloutAction struct {
	Reason string `json:"reason,omitempty"`
}

// RolloutStatus is the answer of GET .../rollout and of the controls.
type RolloutStatus struct {
	Channel release.Channel `json:"channel"`
	// State is none, running or paused.
	State string `json:"state"`
	// Guard is the health gate's settings for the channel (defaults with
	// the channel's overrides).
	Guard *EffectiveGuard `json:"guard,omitempty"`
	// Health is the guard's last reading of the rollout, when it has one.
	Health json.RawMessage `json:"health,omitempty"`
}

// EffectiveGuard is the health gate in force for a channel, in the units
// and names of the channel's own guard settings.
type EffectiveGuard struct {
	Enabled         bool    `json:"enabled"`
	Action          string  `json:"action"`
	MaxFailureRate  float64 `json:"max_failure_rate"`
	Confidence      float64 `json:"confidence"`
	MinDevices      uint64  `json:"min_devices"`
	MinFailures     uint64  `json:"min_failures"`
	WindowSeconds   int64   `json:"window_seconds"`
	CooldownSeconds int64   `json:"cooldown_seconds"`
}

// DeviceChannelRequest is the body of PUT /apps/{app}/devices/{id}/channel.
type DeviceChannelRequest struct {
	Channel string `json:"channel"`
}

// CreateTokenRequest is the body of POST /tokens.
type CreateTokenRequest struct {
	// Name is unique: 1–64 of [A-Za-z0-9._-].
	Name string `json:"name"`
	// Role is viewer, publisher or admin.
	Role string `json:"role"`
	// Apps limits the token to these existing apps; empty means all.
	Apps []string `json:"apps,omitempty"`
}

// CreatedToken is the answer of POST /tokens; Token is shown only here.
type CreatedToken struct {
	Token     string    `json:"token"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Apps      []string  `json:"apps"`
	CreatedAt time.Time `json:"created_at"`
}

// TokenInfo is a token as GET /tokens lists it: never its secret or hash.
type TokenInfo struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Apps      []string  `json:"apps"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is absent when the token was never used; it is written
	// at most once a minute, so it may lag a minute.
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// WhoAmI is the answer of GET /whoami: the calling token.
type WhoAmI struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Apps the token is limited to; [] means every app.
	Apps []string `json:"apps"`
}

// DeviceInfo is the answer of GET /apps/{app}/devices/{device}: the
// device's pin from the release state and what ClickHouse knows of it.
// Known is false (and the fields after it empty) when ClickHouse has no
// row and no event of the device.
type DeviceInfo struct {
	App      string `json:"app"`
	DeviceID string `json:"device_id"`
	// Pin is the channel the device is pinned to, "" when not pinned.
	Pin   string `json:"pin"`
	Known bool   `json:"known"`
	// LastSeen is RFC 3339 (UTC), "" when not Known.
	LastSeen      string               `json:"last_seen"`
	Platform      string               `json:"platform"`
	VersionName   string               `json:"version_name"`
	VersionBuild  string               `json:"version_build"`
	PluginVersion string               `json:"plugin_version"`
	VersionOS     string               `json:"version_os"`
	Channel       string               `json:"channel"`
	CustomID      string               `json:"custom_id"`
	IsProd        bool                 `json:"is_prod"`
	IsEmulator    bool                 `json:"is_emulator"`
	RecentEvents  []schema.DeviceEvent `json:"recent_events"`
}

// HealthReport is the answer of GET /apps/{app}/health: the numbers of
// `capstan stats --json` for the app over [since, until).
type HealthReport struct {
	Since    time.Time          `json:"since"`
	Until    time.Time          `json:"until"`
	Versions []schema.ReportRow `json:"versions"`
}

// FleetParams are the query parameters of the health endpoints. Zero
// values leave a parameter out (the server's default: since 24h, step
// 1h, every channel, production devices only).
type FleetParams struct {
	Since      time.Duration
	Step       time.Duration // timeline only
	Channel    string
	IncludeDev bool
}
