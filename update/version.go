package update

import (
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
)

// semverInfo is a parsed (possibly coerced) version; v is nil when the
// string cannot be read as semver.
type semverInfo struct {
	v     *semver.Version
	canon string // v.String(), e.g. "5.0.0" for "5"
}

// Native versions and bundle versions are a small set across a fleet, so
// parses are memoised: the hot path then neither allocates nor runs the
// coercing regex. The cache stops growing at versionCacheMax entries so
// junk input cannot make it grow without bound.
const (
	versionCacheMax = 1 << 14
	versionMaxLen   = semver.MaxVersionLen
)

var versionCache struct {
	mu sync.RWMutex
	m  map[string]semverInfo
}

func init() { versionCache.m = make(map[string]semverInfo, 256) }

// parseVersion reads s as semver, coercing "5" to 5.0.0 and "1.2" to 1.2.0.
func parseVersion(s string) semverInfo {
	versionCache.mu.RLock()
	e, ok := versionCache.m[s]
	versionCache.mu.RUnlock()
	if ok {
		return e
	}
	e = parseVersionUncached(s)
	if len(s) <= versionMaxLen {
		versionCache.mu.Lock()
		if len(versionCache.m) < versionCacheMax {
			versionCache.m[strings.Clone(s)] = e
		}
		versionCache.mu.Unlock()
	}
	return e
}

func parseVersionUncached(s string) semverInfo {
	t := strings.TrimSpace(s)
	if t == "" || len(t) > versionMaxLen {
		return semverInfo{}
	}
	// StrictNewVersion is regex-free; the coercing parser is the fallback.
	v, err := semver.StrictNewVersion(t)
	if err != nil {
		v, err = semver.NewVersion(t)
		if err != nil {
			return semverInfo{}
		}
	}
	return semverInfo{v: v, canon: v.String()}
}

// KeepsChannel reports whether a plugin version stores its setChannel
// choice on the device and sends it back as defaultChannel: 5.34, 6.34 and
// 7.34 onwards, and every 8.x. An unreadable version is taken as current,
// so only plugins known to be old get a server-side choice.
func KeepsChannel(pluginVersion string) bool {
	v, ok := pluginRelease(pluginVersion)
	if !ok {
		return true
	}
	switch {
	case v[0] < 5:
		return false
	case v[0] <= 7:
		return v[1] >= 34
	}
	return true
}

// ReportsNoUpdateAsFailure reports plugin versions that sent download_fail
// for every "no update" answer: before 6.14.25, and 7.x before 7.17.0. An
// unreadable version is taken as current: better count a failure too many
// than hide real ones.
func ReportsNoUpdateAsFailure(pluginVersion string) bool {
	v, ok := pluginRelease(pluginVersion)
	if !ok {
		return false
	}
	switch {
	case v[0] < 6:
		return true
	case v[0] == 6:
		return below(v, [3]uint64{6, 14, 25})
	case v[0] == 7:
		return below(v, [3]uint64{7, 17, 0})
	}
	return false
}

// pluginRelease reads a plugin version as major.minor.patch, ignoring any
// pre-release. npm's 9.0.0 and 10.0.0 are mislabelled copies of the 5.0
// code, so they read as 5.0.0.
func pluginRelease(pluginVersion string) (v [3]uint64, ok bool) {
	pv := parseVersion(pluginVersion)
	if pv.v == nil {
		return v, false
	}
	switch pv.canon {
	case "9.0.0", "10.0.0":
		return [3]uint64{5, 0, 0}, true
	}
	return [3]uint64{pv.v.Major(), pv.v.Minor(), pv.v.Patch()}, true
}

func below(a, b [3]uint64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// TakesManifest reports whether a plugin version downloads a manifest
// with brotli (.br) entries: 5.10.0, 6.25.0 and 7.0.30 onwards, and every
// 8.x, the versions the Capgo CLI requires for delta uploads. An unreadable
// version gets the zip, which every plugin takes.
func TakesManifest(pluginVersion string) bool {
	v, ok := pluginRelease(pluginVersion)
	if !ok {
		return false
	}
	switch v[0] {
	case 0, 1, 2, 3, 4:
		return false
	case 5:
		return !below(v, [3]uint64{5, 10, 0})
	case 6:
		return !below(v, [3]uint64{6, 25, 0})
	case 7:
		return !below(v, [3]uint64{7, 0, 30})
	}
	return true
}
