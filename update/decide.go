package update

import (
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/capstan-io/capstan/update/release"
)

// Options are the deployment settings the decision needs.
type Options struct {
	// PublicURL is the base of bundle URLs given to devices
	// (https://updates.example.com); a trailing slash is ignored.
	PublicURL string
}

var emptySnapshot = release.Empty()

// knownApp returns snap (an empty one when nil) and whether it holds app.
func knownApp(snap *release.Snapshot, app string) (*release.Snapshot, bool) {
	if snap == nil {
		snap = emptySnapshot
	}
	_, ok := snap.App(app)
	return snap, ok
}

// Decide answers one update check (PROTOCOL.md §2) from a release snapshot.
// It is pure: same inputs, same answer; no I/O, no clock, no randomness.
func Decide(req *Request, snap *release.Snapshot, opts Options) Answer {
	if snap == nil {
		snap = emptySnapshot
	}
	// 1. Validate and normalise.
	if req.AppID == "" || req.DeviceID == "" {
		return failMissingInfo.answer("", "")
	}
	switch req.Platform {
	case "ios", "android", "electron":
	default:
		return failMissingPlatform.answer("", "")
	}
	vb := req.VersionBuild
	switch vb {
	case "":
		return failMissingBuild.answer("", "")
	case "unknown":
		return failUnknownBuild.answer("", "")
	}
	build := parseVersion(vb)
	if build.v == nil {
		return failBuildSemver.answer("", "")
	}
	if _, ok := snap.App(req.AppID); !ok {
		return failAppNotFound.answer("", "")
	}
	deviceID := strings.ToLower(req.DeviceID)

	// 2. Channel.
	ch, viaOverride := resolve(snap, req.AppID, deviceID, req.Platform, requestedChannel(snap, req.AppID, deviceID, req.DefaultChannel, req.PluginVersion))
	if ch == nil {
		return failNoChannel.answer("", "")
	}
	chName := ch.Name

	// 3. Rollout. A device already on the rollout bundle keeps it while the
	// rollout lasts, whatever its percentage or pause: lowering it must not
	// downgrade devices; only ending the rollout moves them off. A paused
	// rollout adds no device.
	target := ch.Bundle
	if ch.RolloutBundle != "" && (req.VersionName == ch.RolloutBundle ||
		ch.RolloutState != release.RolloutPaused && inRollout(req.AppID, ch.Name, ch.RolloutBundle, deviceID, ch.RolloutPercent)) {
		target = ch.RolloutBundle
	}
	builtinTarget := target == "" || target == "builtin"

	// 4. Target bundle and encryption key.
	var b *release.Bundle
	if !builtinTarget {
		var ok bool
		b, ok = snap.Bundle(req.AppID, target)
		if !ok {
			return failNoBundle.answer(chName, target)
		}
		if keyIDMismatch(req.KeyID, b.KeyID) {
			return failKeyIDMismatch.answer(chName, target)
		}
		// An app built with a public key (it sends key_id) refuses every
		// bundle without a session key, on every check.
		if req.KeyID != "" && !validSessionKey(b.SessionKey) {
			return failEncryptionRequired.answer(chName, target)
		}
	}

	// 5. Nothing to do. On its builtin bundle a device reports its native
	// version as version_name (older plugins "builtin" or nothing).
	if !builtinTarget && target == req.VersionName {
		return failNoNewVersion.answer(chName, target)
	}
	onBuiltin := onBuiltin(req.VersionName, vb, build.canon)
	current := req.VersionName
	if onBuiltin {
		current = build.canon
	}
	if !builtinTarget && (target == current || (onBuiltin && target == vb)) {
		return failNoNewVersion.answer(chName, target)
	}

	// 6. Channel policies, in Capgo's order.
	if !ch.PlatformEnabled(req.Platform) {
		return platformFailure(req.Platform).answer(chName, target)
	}
	policy := ch.DisableAutoUpdate
	var tv semverInfo
	if !builtinTarget && (ch.DisableUnderNative || policy == release.PolicyMajor || policy == release.PolicyMinor || policy == release.PolicyPatch) {
		tv = parseVersion(target)
		if tv.v == nil {
			return failBundleSemver.answer(chName, target)
		}
	}
	if !builtinTarget && policy == release.PolicyMajor && tv.v.Major() > build.v.Major() {
		return majorAnswer(chName, target, vb)
	}
	if !viaOverride && !ch.Public && !ch.AllowSelfSet {
		return failPrivateChannel.answer(chName, target)
	}
	if !builtinTarget {
		switch policy {
		case release.PolicyMinor:
			if tv.v.Major() != build.v.Major() || tv.v.Minor() != build.v.Minor() {
				return failToMinor.answer(chName, target)
			}
		case release.PolicyPatch:
			if tv.v.Major() != build.v.Major() || tv.v.Minor() != build.v.Minor() || tv.v.Patch() != build.v.Patch() {
				return failToPatch.answer(chName, target)
			}
		case release.PolicyVersionNumber:
			// A bundle without min_update_version has no native floor.
			if b.MinUpdateVersion != "" {
				mv := parseVersion(b.MinUpdateVersion)
				if mv.v == nil {
					return failMinUpdateSemver.answer(chName, target)
				}
				if mv.v.GreaterThan(build.v) {
					return failToMetadata.answer(chName, target)
				}
			}
		}
		if ch.DisableUnderNative && tv.v.LessThan(build.v) {
			return failUnderNative.answer(chName, target)
		}
	}
	if req.IsProd && !ch.AllowProd {
		return failProdBuild.answer(chName, target)
	}
	if !req.IsProd && !ch.AllowDev {
		return failDevBuild.answer(chName, target)
	}
	if req.IsEmulator && !ch.AllowEmulator {
		return failEmulator.answer(chName, target)
	}
	if !req.IsEmulator && !ch.AllowDevice {
		return failDevice.answer(chName, target)
	}

	// 7. No bundle on the channel: back to the builtin bundle.
	if builtinTarget {
		if onBuiltin {
			return failAlreadyOnBuiltin.answer(chName, ResultBuiltin)
		}
		return Answer{Status: http.StatusOK, Body: builtinBody, Result: ResultBuiltin, Channel: chName, Version: ResultBuiltin, res: resBuiltin}
	}

	// 8. The update.
	return Answer{Status: http.StatusOK, Body: successBody(b, opts.PublicURL, sendsManifest(b, req.PluginVersion)), Result: ResultUpdate, Channel: chName, Version: target, res: resUpdate}
}

// onBuiltin reports whether a device runs the bundle shipped inside its
// native app: version_name empty, "builtin", or equal to version_build
// once both are coerced to semver ("5" and "5.0.0" are the same);
// buildCanon is version_build's canonical form.
func onBuiltin(versionName, versionBuild, buildCanon string) bool {
	if versionName == "" || versionName == "builtin" || versionName == versionBuild {
		return true
	}
	if versionName == buildCanon {
		return true
	}
	n := parseVersion(versionName)
	return n.v != nil && n.canon == buildCanon
}

// validSessionKey is the plugin's own test of an encrypted bundle's key
// (CryptoCipher.isValidSessionKey): exactly two non-empty parts around
// one colon.
func validSessionKey(k string) bool {
	iv, key, ok := strings.Cut(k, ":")
	return ok && iv != "" && key != "" && !strings.Contains(key, ":")
}

// requestedChannel is the channel the device asks for: the one it sends,
// or, for plugins that keep no channel themselves, the choice the server
// stored for it at setChannel.
func requestedChannel(snap *release.Snapshot, appID, deviceID, defaultChannel, pluginVersion string) string {
	if snap.HasChoices(appID) && !KeepsChannel(pluginVersion) {
		if c, ok := snap.Choice(appID, deviceID); ok {
			return c
		}
	}
	return defaultChannel
}

// keyIDMismatch: both set and neither a prefix of the other (older plugins
// sent a shorter key id than the 20 characters sent today).
func keyIDMismatch(device, bundle string) bool {
	if device == "" || bundle == "" {
		return false
	}
	return !strings.HasPrefix(device, bundle) && !strings.HasPrefix(bundle, device)
}

// BundleURL is where a device downloads a bundle: its external URL, or
// public_url/bundles/<app>/<version>.zip. Manifest-only bundles get the same
// form as a placeholder, since the plugin requires a parseable url.
func BundleURL(publicURL string, b *release.Bundle) string {
	if b.ExternalURL != "" {
		return b.ExternalURL
	}
	publicURL = strings.TrimRight(publicURL, "/")
	return publicURL + "/bundles/" + url.PathEscape(b.AppID) + "/" + url.PathEscape(b.Version) + ".zip"
}

// ResolveChannel finds the channel serving a device (PROTOCOL.md §3 step 2):
// an operator override (if its channel exists) wins; else defaultChannel
// (for a plugin that keeps no channel, the choice stored at setChannel)
// when it exists, is enabled for the platform and is public or
// self-assignable; else the app's first public channel (by name) enabled
// for the platform.
//
// code is "" when ch serves the device. When no channel serves it but the
// requested defaultChannel (or failing that a public channel) exists, ch is
// that channel and code says why it refuses the device
// (disabled_platform_<platform> or cannot_update_via_private_channel); the
// device is still attributed to it. ch is nil with code no_channel or
// app_not_found when there is nothing to attribute.
func ResolveChannel(snap *release.Snapshot, appID, deviceID, platform, defaultChannel, pluginVersion string) (*release.Channel, string) {
	snap, ok := knownApp(snap, appID)
	if !ok {
		return nil, CodeAppNotFound
	}
	platform = strings.ToLower(platform)
	deviceID = strings.ToLower(deviceID)
	ch, viaOverride := resolve(snap, appID, deviceID, platform, requestedChannel(snap, appID, deviceID, defaultChannel, pluginVersion))
	switch {
	case ch == nil:
		return nil, CodeNoChannel
	case !ch.PlatformEnabled(platform):
		return ch, resultCodes[platformFailure(platform).res]
	case !viaOverride && !ch.Public && !ch.AllowSelfSet:
		return ch, CodePrivateChannel
	}
	return ch, ""
}

// resolve implements ResolveChannel. When nothing serves the device it
// falls back to the requested channel, then to any public channel, so the
// policy checks can say precisely why the device is refused.
func resolve(snap *release.Snapshot, appID, deviceID, platform, defaultChannel string) (ch *release.Channel, viaOverride bool) {
	if name, ok := snap.Override(appID, deviceID); ok {
		if c, ok := snap.Channel(appID, name); ok {
			return c, true
		}
		// A dangling override (channel deleted) is ignored.
	}
	return resolveOwn(snap, appID, platform, defaultChannel), false
}

// resolveOwn is resolve without operator overrides: the channel the
// device asked for, or the default public one.
func resolveOwn(snap *release.Snapshot, appID, platform, defaultChannel string) *release.Channel {
	var requested *release.Channel
	if defaultChannel != "" {
		if c, ok := snap.Channel(appID, defaultChannel); ok {
			if c.PlatformEnabled(platform) && (c.Public || c.AllowSelfSet) {
				return c
			}
			requested = c
		}
	}
	var anyPublic *release.Channel
	for _, c := range snap.Channels(appID) {
		if !c.Public {
			continue
		}
		if c.PlatformEnabled(platform) {
			return c
		}
		if anyPublic == nil {
			anyPublic = c
		}
	}
	if requested != nil {
		return requested
	}
	return anyPublic
}

// defaultPublic is the channel a device gets without asking for one.
func defaultPublic(snap *release.Snapshot, appID, platform string) *release.Channel {
	for _, c := range snap.Channels(appID) {
		if c.Public && c.PlatformEnabled(platform) {
			return c
		}
	}
	return nil
}

// RolloutBuckets is the resolution of rollout percentages: 0.01 %.
const RolloutBuckets = 10000

// RolloutBucket places a device in [0, RolloutBuckets) for one rollout of
// a channel. The hash covers the rollout bundle, so a new rollout draws a
// new cohort, while the same rollout always draws the same one. deviceID
// must be lowercase. The function is part of Capstan's behaviour: changing
// it reshuffles every rollout in progress.
func RolloutBucket(appID, channel, rolloutBundle, deviceID string) uint32 {
	h := uint64(0x243f6a8885a308d3)
	h = mixField(h, appID)
	h = mixField(h, channel)
	h = mixField(h, rolloutBundle)
	h = mixField(h, deviceID)
	// murmur3 fmix64: every input bit reaches the low bits used below.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h % RolloutBuckets)
}

const mixPrime = 0x9e3779b97f4a7c15

// mixField folds s into h eight bytes at a time, then its length, so that
// ("ab","c") and ("a","bc") differ.
func mixField(h uint64, s string) uint64 {
	n := len(s)
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ w) * mixPrime
		h ^= h >> 29
		s = s[8:]
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	h = (h ^ w) * mixPrime
	h ^= h >> 29
	h = (h ^ uint64(n)) * mixPrime
	return h ^ h>>29
}

// InRollout reports whether a device takes the rollout bundle at this
// percentage. Membership is sticky (no randomness, no state) and monotonic:
// a device in at p% stays in at every q ≥ p.
func InRollout(appID, channel, rolloutBundle, deviceID string, percent float64) bool {
	if rolloutBundle == "" || !(percent > 0) {
		return false
	}
	return inRollout(appID, channel, rolloutBundle, strings.ToLower(deviceID), percent)
}

// inRollout is InRollout for an already lowercase device id.
func inRollout(appID, channel, rolloutBundle, deviceID string, percent float64) bool {
	if rolloutBundle == "" || !(percent > 0) {
		return false
	}
	if percent >= 100 {
		return true
	}
	threshold := uint32(math.Round(percent * (RolloutBuckets / 100)))
	return RolloutBucket(appID, channel, rolloutBundle, deviceID) < threshold
}
