package admin

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/capstan-io/capstan/rollout"
	"github.com/capstan-io/capstan/update/release"
)

// Pure validation and decision helpers, kept free of HTTP and the store.

const (
	maxAppIDLen    = 128
	maxAppNameLen  = 256
	maxChannelLen  = 64
	maxDeviceIDLen = 128
	maxVersionLen  = 128
	maxTextLen     = 4096 // link, comment, key_id, session_key, checksum
	maxManifest    = 100000
	maxDataKeys    = 100
)

var (
	appIDRe     = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`)
	channelRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	deviceIDRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	sessionKeyR = regexp.MustCompile(`^[A-Za-z0-9+/=_-]+:[A-Za-z0-9+/=_-]+$`)
)

// validAppID reports whether id looks like a Capacitor appId
// (reverse-domain: at least two dot-separated segments).
func validAppID(id string) error {
	switch {
	case id == "":
		return badRequest("invalid_app_id", "app id is required")
	case len(id) > maxAppIDLen:
		return badRequest("invalid_app_id", fmt.Sprintf("app id longer than %d characters", maxAppIDLen))
	case !appIDRe.MatchString(id):
		return badRequest("invalid_app_id", fmt.Sprintf("app id %q must be reverse-domain style (com.example.app): letters, digits, '_', '-' in at least two '.'-separated segments", id))
	}
	return nil
}

func validChannelName(name string) error {
	switch {
	case name == "":
		return badRequest("invalid_channel_name", "channel name is required")
	case len(name) > maxChannelLen:
		return badRequest("invalid_channel_name", fmt.Sprintf("channel name longer than %d characters", maxChannelLen))
	case !channelRe.MatchString(name):
		return badRequest("invalid_channel_name", fmt.Sprintf("channel name %q may hold letters, digits, '_', '-', '.' and must start with a letter or digit", name))
	}
	return nil
}

// normDeviceID checks a device id and lowercases it (devices are matched
// case-insensitively).
func normDeviceID(id string) (string, error) {
	switch {
	case id == "":
		return "", badRequest("invalid_device_id", "device id is required")
	case len(id) > maxDeviceIDLen:
		return "", badRequest("invalid_device_id", fmt.Sprintf("device id longer than %d characters", maxDeviceIDLen))
	case !deviceIDRe.MatchString(id):
		return "", badRequest("invalid_device_id", fmt.Sprintf("device id %q may hold letters, digits, '_', '-', '.', ':'", id))
	}
	return strings.ToLower(id), nil
}

// validVersion accepts strict semver X.Y.Z[-pre][+build].
func validVersion(v string) error {
	if v == "" {
		return badRequest("invalid_version", "version is required")
	}
	if len(v) > maxVersionLen {
		return badRequest("invalid_version", fmt.Sprintf("version longer than %d characters", maxVersionLen))
	}
	if _, err := semver.StrictNewVersion(v); err != nil {
		return badRequest("invalid_version", fmt.Sprintf("version %q is not semver X.Y.Z[-pre][+build]: %v", v, err))
	}
	return nil
}

func validHTTPURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("invalid_"+field, fmt.Sprintf("%s %q must be an absolute http(s) URL", field, s))
	}
	return nil
}

// signedChecksumHex is the length of an RSA-2048 signed checksum in hex:
// the plugin refuses one that does not decode to exactly 256 bytes.
const signedChecksumHex = 512

func isSignedChecksum(s string) bool {
	if len(s) != signedChecksumHex {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkMetadata validates an upload's metadata apart from the zip itself.
// hasFile says whether a zip part was sent.
func checkMetadata(m *BundleMetadata, hasFile bool) error {
	if err := validVersion(m.Version); err != nil {
		return err
	}
	for field, v := range map[string]string{"session_key": m.SessionKey, "checksum": m.Checksum, "key_id": m.KeyID, "link": m.Link, "comment": m.Comment, "external_url": m.ExternalURL} {
		if len(v) > maxTextLen {
			return badRequest("invalid_"+field, fmt.Sprintf("%s longer than %d characters", field, maxTextLen))
		}
	}
	if m.SessionKey != "" && !sessionKeyR.MatchString(m.SessionKey) {
		return badRequest("invalid_session_key", "session_key must be base64(iv):base64(key) as printed by `npx @capgo/cli bundle encrypt`")
	}
	encrypted := m.SessionKey != ""
	if encrypted && m.Checksum == "" {
		return badRequest("missing_checksum", "an encrypted bundle (session_key set) needs the checksum printed by `npx @capgo/cli bundle encrypt`")
	}
	if encrypted && !isSignedChecksum(m.Checksum) {
		return badRequest("invalid_checksum", fmt.Sprintf("the checksum of an encrypted bundle must be the %d hex characters of its RSA-2048 signature, as `npx @capgo/cli bundle encrypt` prints when it finds @capgo/capacitor-updater 6 or later in the app project; "+
			"when it cannot find the plugin it prints an older base64 form that current plugins cannot verify. Run the encrypt command from the app's folder, with the plugin installed, and upload again", signedChecksumHex))
	}
	if !encrypted && m.Checksum != "" {
		m.Checksum = strings.ToLower(m.Checksum)
		if !isSHA256Hex(m.Checksum) {
			return badRequest("invalid_checksum", "checksum of a plaintext bundle must be the SHA-256 hex of the zip")
		}
	}
	if m.MinUpdateVersion != "" {
		if _, err := semver.NewVersion(m.MinUpdateVersion); err != nil {
			return badRequest("invalid_min_update_version", fmt.Sprintf("min_update_version %q is not a version: %v", m.MinUpdateVersion, err))
		}
	}
	if m.ExternalURL != "" {
		if err := validHTTPURL("external_url", m.ExternalURL); err != nil {
			return err
		}
		if hasFile {
			return badRequest("unexpected_file", "send either a file or external_url, not both")
		}
		if m.Checksum == "" {
			return badRequest("missing_checksum", "a bundle with external_url needs its checksum (SHA-256 hex of the zip)")
		}
	} else if !hasFile && len(m.Manifest) == 0 {
		return badRequest("missing_file", "a bundle upload needs a `file` part (the zip), an external_url or a manifest")
	}
	if len(m.Data) > maxDataKeys {
		return badRequest("invalid_data", fmt.Sprintf("data holds more than %d keys", maxDataKeys))
	}
	return checkManifest(m.Manifest)
}

func checkManifest(entries []release.ManifestEntry) error {
	if len(entries) > maxManifest {
		return badRequest("invalid_manifest", fmt.Sprintf("manifest holds more than %d entries", maxManifest))
	}
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		bad := func(why string) error {
			return badRequest("invalid_manifest", fmt.Sprintf("manifest[%d] (%q): %s", i, e.FileName, why))
		}
		switch {
		case e.FileName == "":
			return bad("file_name is required")
		case !safeRelPath(e.FileName):
			return bad("file_name must be a relative path without '.', '..', '\\', control characters or empty segments (the plugin refuses the whole manifest)")
		case seen[strings.TrimSuffix(e.FileName, ".br")]:
			// The plugin stores x.br decompressed as x: both would land on one file.
			return bad("two entries land on the same file once a trailing .br is stripped; the plugin refuses the whole manifest")
		case e.FileHash == "":
			return bad("file_hash is required")
		case e.DownloadURL == "" && e.Object == "":
			return bad("download_url is required (or object, naming an uploaded `object` part)")
		case e.DownloadURL != "" && e.Object != "":
			return bad("give download_url or object, not both")
		case e.Size < 0:
			return bad("size must not be negative")
		}
		if e.Object != "" && !release.ValidHashHex(strings.ToLower(e.Object)) {
			return bad("object must be the SHA-256 hex of an uploaded `object` part")
		}
		if e.DownloadURL != "" {
			if err := validHTTPURL("download_url", e.DownloadURL); err != nil {
				return bad("download_url must be an absolute http(s) URL")
			}
		}
		seen[strings.TrimSuffix(e.FileName, ".br")] = true
	}
	return nil
}

func safeRelPath(p string) bool {
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsFunc(p, isControl) {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

var policies = []string{release.PolicyNone, release.PolicyMajor, release.PolicyMinor, release.PolicyPatch, release.PolicyVersionNumber}

// applyPatch returns c with p's fields applied and checks the result on
// its own (bundle existence and public conflicts need the snapshot).
func applyPatch(c release.Channel, p ChannelPatch) (release.Channel, error) {
	setS := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setS(&c.Bundle, p.Bundle)
	setS(&c.RolloutBundle, p.RolloutBundle)
	if p.RolloutBundle != nil && *p.RolloutBundle == "" && p.RolloutPercent == nil {
		// Clearing the rollout bundle ends the rollout.
		c.RolloutPercent = 0
	}
	if p.RolloutPercent != nil {
		v := *p.RolloutPercent
		if math.IsNaN(v) || v < 0 || v > 100 {
			return c, badRequest("invalid_rollout_percent", "rollout_percent must be between 0 and 100")
		}
		c.RolloutPercent = v
	}
	setB(&c.Public, p.Public)
	setB(&c.AllowSelfSet, p.AllowSelfSet)
	setB(&c.IOS, p.IOS)
	setB(&c.Android, p.Android)
	setB(&c.Electron, p.Electron)
	if p.DisableAutoUpdate != nil {
		if !slices.Contains(policies, *p.DisableAutoUpdate) {
			return c, badRequest("invalid_policy", fmt.Sprintf("disable_auto_update %q must be one of %s", *p.DisableAutoUpdate, strings.Join(policies, ", ")))
		}
		c.DisableAutoUpdate = *p.DisableAutoUpdate
	}
	setB(&c.DisableUnderNative, p.DisableUnderNative)
	setB(&c.AllowProd, p.AllowProd)
	setB(&c.AllowDev, p.AllowDev)
	setB(&c.AllowEmulator, p.AllowEmulator)
	setB(&c.AllowDevice, p.AllowDevice)
	if p.RolloutPlan != nil {
		c.RolloutPlan = slices.Clone(*p.RolloutPlan)
		if len(c.RolloutPlan) == 0 {
			c.RolloutPlan = nil
		}
		if err := rollout.ValidPlan(c.RolloutPlan); err != nil {
			return c, badRequest("invalid_rollout_plan", err.Error())
		}
	}
	if p.Guard != nil {
		g := *p.Guard
		if err := rollout.ValidGuard(&g); err != nil {
			return c, badRequest("invalid_guard", err.Error())
		}
		c.Guard = &g
		if g == (release.GuardSettings{}) {
			c.Guard = nil
		}
	}
	if c.Bundle != "" {
		if err := validVersion(c.Bundle); err != nil {
			return c, badRequest("invalid_bundle", fmt.Sprintf("bundle %q is not a semver version", c.Bundle))
		}
	}
	if c.RolloutBundle != "" {
		if err := validVersion(c.RolloutBundle); err != nil {
			return c, badRequest("invalid_bundle", fmt.Sprintf("rollout_bundle %q is not a semver version", c.RolloutBundle))
		}
	}
	if c.RolloutBundle == "" && c.RolloutPercent > 0 {
		return c, badRequest("invalid_rollout", "rollout_percent above 0 needs a rollout_bundle")
	}
	return c, nil
}

// sortBundles orders bundles newest first by semver precedence, then by
// version string so equal-precedence builds stay in a stable order.
func sortBundles(bs []*release.Bundle) {
	parsed := make(map[string]*semver.Version, len(bs))
	for _, b := range bs {
		if v, err := semver.NewVersion(b.Version); err == nil {
			parsed[b.Version] = v
		}
	}
	slices.SortFunc(bs, func(a, b *release.Bundle) int {
		va, vb := parsed[a.Version], parsed[b.Version]
		switch {
		case va != nil && vb != nil:
			if c := vb.Compare(va); c != 0 {
				return c
			}
		case va != nil:
			return -1
		case vb != nil:
			return 1
		}
		return strings.Compare(b.Version, a.Version)
	})
}
