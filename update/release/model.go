// Package release holds what Capstan serves to devices — apps, channels,
// bundles and device overrides — as immutable in-memory snapshots kept in
// step with a JetStream key-value bucket.
//
// # Writes from several fronts
//
// Any number of stateless fronts write the bucket at once, so no write
// checks and then acts. Each write of an app reads the app's key (its
// guard) and the keys it changes, waits until the local snapshot reflects
// those revisions, checks the invariants against that snapshot, and
// publishes its keys as one JetStream atomic batch (nats-server 2.12+,
// the bucket's stream has allow_atomic) in which every message carries
// the revision it expects. The server stores the whole batch or nothing;
// a writer that lost re-reads and re-checks (bounded: ErrConcurrent), and
// a check that now fails is its answer. A crash cannot leave such a write
// half done: one batch is one write. What happens outside a batch (the
// sweep after an app delete, zips) is repaired as said below.
//
//   - Writes that change what the invariants read — a channel put or
//     delete, a bundle create or delete, an app rename — rewrite the app
//     key unchanged expecting its revision, so any two of them on one app
//     conflict: one public channel per platform (ErrPublicConflict), no
//     channel pointing at a missing bundle (ErrNotFound, ErrInUse), unique
//     versions (the version key is also expected absent: ErrExists).
//   - A pin (override) is written with its channel's key rewritten
//     unchanged, expecting its revision, and on condition that the app key
//     is as read (without writing it, so pins of different channels do
//     not conflict). DeleteChannel expects the channel key too, so a pin
//     and a channel delete never both succeed (ErrChannelInUse).
//   - Deleting the app key (expecting its revision) is the commit point of
//     DeleteApp: every other write expects that key, so nothing lands
//     under a deleted app (ErrAppDeleted); an upload whose metadata write
//     fails that way deletes its zip. Channels, bundles, pins, choices and
//     zips are then swept in batches conditional on the app key still
//     being deleted. Snapshots drop an app's channels and bundles with its
//     key; a sweep a crash cut short is finished when any front starts
//     (repair) or the app id is created again, before its key is.
//   - A starting front also deletes zips older than orphanAge that no
//     bundle refers to (an upload that crashed before its metadata, a
//     bundle delete that crashed before its zip).
//   - Delta bundle files are shared by bundles and live outside the
//     batches: an upload claims each in the files bucket before its
//     metadata batch, and sweeps take only files no bundle of a current
//     snapshot uses, past a grace period, conditional on the revision
//     they read (files.go).
//   - A new channel's id comes from the app's counter key, written in the
//     channel's batch. Device channel choices (PutChoice) are the
//     device's own and unchecked; an app delete sweeps them too.
//
// Watchers see every batch as ordinary KV entries in revision order, so
// each front's snapshot, and a restarted front's, converge to the same
// state.
package release

import "time"

// App is a Capacitor app, keyed by its appId (com.example.app).
type App struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// WebhookURL, when set, receives a JSON POST for every automatic
	// release change of the app (the rollout guard's).
	WebhookURL string `json:"webhook_url,omitempty"`
	// KeepBundles, when above 0, is the app's retention: after each
	// upload, unused bundles past the KeepBundles newest are deleted.
	KeepBundles int `json:"keep_bundles,omitempty"`
}

// ManifestEntry is one file of a delta (per-file) bundle.
type ManifestEntry struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
	// Size is the file's download size in bytes when the uploader gave
	// it (0: unknown); devices ask for it at /updates/manifest_size.
	Size int64 `json:"size,omitempty"`
	// Object is the SHA-256 hex of the bytes Capstan stores and serves for
	// this file (brotli-compressed when FileName ends in .br); "" when the
	// file lives at DownloadURL. Such entries get their download_url from
	// the front's public URL: <public_url>/files/<object>.
	Object string `json:"object,omitempty"`
}

// Bundle is the metadata of one uploaded web bundle version.
type Bundle struct {
	AppID   string `json:"app_id"`
	Version string `json:"version"`
	// Checksum is the SHA-256 hex of the plaintext zip, or the signed
	// checksum of an encrypted bundle, returned to devices verbatim.
	Checksum string `json:"checksum"`
	// SessionKey is "" for plaintext bundles, else base64(iv):base64(rsa(key)).
	SessionKey string `json:"session_key,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	// Object names the zip in the object store; empty when ExternalURL is set.
	Object string `json:"object,omitempty"`
	// ObjectSHA256 is the SHA-256 hex of the stored bytes (the ETag).
	ObjectSHA256 string          `json:"object_sha256,omitempty"`
	Size         int64           `json:"size,omitempty"`
	ExternalURL  string          `json:"external_url,omitempty"`
	Manifest     []ManifestEntry `json:"manifest,omitempty"`
	// MinUpdateVersion is the lowest native version allowed to take this
	// bundle under the version_number policy.
	MinUpdateVersion string            `json:"min_update_version,omitempty"`
	Link             string            `json:"link,omitempty"`
	Comment          string            `json:"comment,omitempty"`
	Breaking         bool              `json:"breaking,omitempty"`
	Data             map[string]string `json:"data,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
}

// Auto-update policies of a channel (Capgo's disable_auto_update).
const (
	PolicyNone          = "none"
	PolicyMajor         = "major"
	PolicyMinor         = "minor"
	PolicyPatch         = "patch"
	PolicyVersionNumber = "version_number"
)

// Channel routes devices of an app to a bundle.
type Channel struct {
	AppID string `json:"app_id"`
	Name  string `json:"name"`
	// ID is a small stable number shown to devices by listChannels.
	ID int64 `json:"id"`
	// Bundle is the version devices get; "" sends them back to builtin.
	Bundle string `json:"bundle"`
	// RolloutBundle is given to RolloutPercent percent of devices (0–100).
	RolloutBundle  string  `json:"rollout_bundle,omitempty"`
	RolloutPercent float64 `json:"rollout_percent,omitempty"`
	// RolloutState is "" (running) or RolloutPaused. A paused rollout
	// adds no devices; those already on the rollout bundle keep it.
	RolloutState     string    `json:"rollout_state,omitempty"`
	RolloutStartedAt time.Time `json:"rollout_started_at,omitzero"`
	// RolloutPlan, when set, is the rollout's steps; RolloutStep indexes
	// the current one, started at RolloutStepStartedAt. Passing the last
	// step promotes the rollout bundle.
	RolloutPlan          []RolloutStep `json:"rollout_plan,omitempty"`
	RolloutStep          int           `json:"rollout_step,omitempty"`
	RolloutStepStartedAt time.Time     `json:"rollout_step_started_at,omitzero"`
	// RolloutResumedAt is the last resume: the health gate counts only
	// what devices reported since.
	RolloutResumedAt time.Time `json:"rollout_resumed_at,omitzero"`
	// Who paused the rollout and why (a token's name or "guard").
	RolloutPausedAt    time.Time `json:"rollout_paused_at,omitzero"`
	RolloutPausedBy    string    `json:"rollout_paused_by,omitempty"`
	RolloutPauseReason string    `json:"rollout_pause_reason,omitempty"`
	// Guard overrides the health gate's defaults for this channel.
	Guard *GuardSettings `json:"guard,omitempty"`
	// GuardActedAt is when the guard last paused or aborted a rollout of
	// this channel; it waits a cooldown before acting on it again.
	GuardActedAt time.Time `json:"guard_acted_at,omitzero"`

	Public       bool `json:"public"`
	AllowSelfSet bool `json:"allow_self_set"`

	IOS      bool `json:"ios"`
	Android  bool `json:"android"`
	Electron bool `json:"electron"`

	// DisableAutoUpdate is one of the Policy constants.
	DisableAutoUpdate string `json:"disable_auto_update"`
	// DisableUnderNative blocks bundles older than the native version.
	DisableUnderNative bool `json:"disable_auto_update_under_native"`

	AllowProd     bool `json:"allow_prod"`
	AllowDev      bool `json:"allow_dev"`
	AllowEmulator bool `json:"allow_emulator"`
	AllowDevice   bool `json:"allow_device"`

	UpdatedAt time.Time `json:"updated_at"`
}

// RolloutPaused is the RolloutState of a paused rollout.
const RolloutPaused = "paused"

// RolloutStep is one step of a progressive rollout plan.
type RolloutStep struct {
	// Percent of devices given the rollout bundle during the step.
	Percent float64 `json:"percent"`
	// BakeSeconds is how long the step runs before the next may start.
	BakeSeconds int64 `json:"bake_seconds"`
	// MinInstalls is the fewest installs of the rollout bundle by
	// production devices during the step before it may end.
	MinInstalls int64 `json:"min_installs,omitempty"`
}

// Guard actions.
const (
	GuardPause = "pause"
	GuardAbort = "abort"
)

// GuardSettings are a channel's overrides of the health gate's defaults;
// a nil field keeps the default.
type GuardSettings struct {
	// Disabled turns the guard off for the channel.
	Disabled bool `json:"disabled,omitempty"`
	// Action is GuardPause (default) or GuardAbort.
	Action string `json:"action,omitempty"`
	// MaxFailureRate is the absolute failure rate the rollout's lower
	// bound must stay under (0–1).
	MaxFailureRate *float64 `json:"max_failure_rate,omitempty"`
	// Confidence of the Wilson bounds (0.5–0.9999).
	Confidence *float64 `json:"confidence,omitempty"`
	// MinDevices and MinFailures: below either, the gate decides nothing.
	MinDevices  *int64 `json:"min_devices,omitempty"`
	MinFailures *int64 `json:"min_failures,omitempty"`
	// WindowSeconds is the sliding window counted.
	WindowSeconds *int64 `json:"window_seconds,omitempty"`
	// CooldownSeconds: after acting, the guard leaves the channel alone
	// this long.
	CooldownSeconds *int64 `json:"cooldown_seconds,omitempty"`
}

// NewChannel returns a channel with Capgo's defaults: every platform and
// build kind allowed, updates blocked across majors and under native.
func NewChannel(appID, name string) Channel {
	return Channel{
		AppID: appID, Name: name,
		IOS: true, Android: true, Electron: true,
		DisableAutoUpdate:  PolicyMajor,
		DisableUnderNative: true,
		AllowProd:          true, AllowDev: true,
		AllowEmulator: true, AllowDevice: true,
	}
}

// PlatformEnabled reports whether the channel serves the platform.
func (c *Channel) PlatformEnabled(platform string) bool {
	switch platform {
	case "ios":
		return c.IOS
	case "android":
		return c.Android
	case "electron":
		return c.Electron
	}
	return false
}

// Override pins one device of an app to a channel; set by an operator.
type Override struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"` // lowercase
	Channel  string `json:"channel"`
}

// Token is an admin API token, known only by the SHA-256 hex of its secret.
type Token struct {
	Hash string `json:"hash"`
	// Name is unique among tokens with a Role (see Store.CreateToken).
	Name string `json:"name"`
	// Role is what the token may do (the admin API's viewer, publisher or
	// admin); "" marks a token stored before roles existed.
	Role string `json:"role,omitempty"`
	// Apps limits the token to these app ids; empty means every app.
	Apps      []string  `json:"apps,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is when a front last recorded the token's use (written
	// at most about once a minute, so it may lag that much).
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Legacy reports a token stored before roles existed: it has no Role
// and its name, possibly empty or shared, has no name key.
func (t Token) Legacy() bool { return t.Role == "" }

// AnswersTo reports whether name designates t: its name, or for a legacy
// token without one the first 8 hex digits of its hash.
func (t Token) AnswersTo(name string) bool {
	if t.Name != "" || !t.Legacy() {
		return t.Name == name
	}
	return name != "" && name == t.Hash[:min(8, len(t.Hash))]
}

// DisplayName is the name t answers to (see AnswersTo).
func (t Token) DisplayName() string {
	if t.Name == "" && t.Legacy() {
		return t.Hash[:min(8, len(t.Hash))]
	}
	return t.Name
}
