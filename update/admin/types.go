package admin

import (
	"encoding/json"

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
	Guard any `json:"guard,omitempty"`
	// Health is the guard's last reading of the rollout, when it has one.
	Health json.RawMessage `json:"health,omitempty"`
}

// DeviceChannelRequest is the body of PUT /apps/{app}/devices/{id}/channel.
type DeviceChannelRequest struct {
	Channel string `json:"channel"`
}

// CreateTokenRequest is the body of POST /tokens.
type CreateTokenRequest struct {
	Name string `json:"name,omitempty"`
}

// CreatedToken is the answer of POST /tokens; Token is shown only here.
type CreatedToken struct {
	Token string `json:"token"`
	Name  string `json:"name,omitempty"`
}
