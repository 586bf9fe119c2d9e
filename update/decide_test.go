package update

import (
	"net/url"
	"strings"
	"testing"

	"github.com/capstan-io/capstan/update/release"
)

// protocolKinds is PROTOCOL.md §2's table of error codes and kinds.
var protocolKinds = map[string]string{
	"no_new_version_available":          KindUpToDate,
	"already_on_builtin":                KindUpToDate,
	"disabled_platform_ios":             KindBlocked,
	"disabled_platform_android":         KindBlocked,
	"disabled_platform_electron":        KindBlocked,
	"disable_auto_update_to_major":      KindBlocked,
	"disable_auto_update_to_minor":      KindBlocked,
	"disable_auto_update_to_patch":      KindBlocked,
	"disable_auto_update_to_metadata":   KindBlocked,
	"disable_auto_update_under_native":  KindBlocked,
	"disable_prod_build":                KindBlocked,
	"disable_dev_build":                 KindBlocked,
	"disable_emulator":                  KindBlocked,
	"disable_device":                    KindBlocked,
	"key_id_mismatch":                   KindBlocked,
	"cannot_update_via_private_channel": KindBlocked,
	"encryption_required":               KindBlocked,
	"no_channel":                        KindFailed,
	"no_bundle":                         KindFailed,
	"missing_info":                      KindFailed,
	"semver_error":                      KindFailed,
	"unknown_version_build":             KindFailed,
}

func TestKindOfMatchesProtocolTable(t *testing.T) {
	for code, kind := range protocolKinds {
		if got := KindOf(code); got != kind {
			t.Errorf("KindOf(%q) = %q, want %q", code, got, kind)
		}
	}
	if got := KindOf(CodeAppNotFound); got != KindFailed {
		t.Errorf("app_not_found kind = %q", got)
	}
}

type decideCase struct {
	name     string
	channels func(c *release.Channel) []release.Channel // from baseChannel; nil: just the base
	extra    func(b *release.Builder)
	req      func(r *Request)
	want     string // Result
	wantVer  string // Answer.Version, checked when set
	check    func(t *testing.T, body map[string]any)
}

func only(mut func(c *release.Channel)) func(c *release.Channel) []release.Channel {
	return func(c *release.Channel) []release.Channel { mut(c); return []release.Channel{*c} }
}

func TestDecide(t *testing.T) {
	private := func() release.Channel {
		c := baseChannel()
		c.Name, c.ID, c.Public, c.AllowSelfSet, c.Bundle = "internal", 7, false, false, "1.2.1"
		return c
	}
	beta := func() release.Channel {
		c := baseChannel()
		c.Name, c.ID, c.Public, c.AllowSelfSet, c.Bundle = "beta", 2, false, true, "1.2.1"
		return c
	}
	cases := []decideCase{
		// §2 success and the builtin revert.
		{name: "update", want: ResultUpdate, wantVer: "1.2.0", check: func(t *testing.T, m map[string]any) {
			if m["url"] != testPublic+"/bundles/com.example.app/1.2.0.zip" || m["checksum"] != "sha-1.2.0" || m["session_key"] != "" {
				t.Errorf("body %v", m)
			}
		}},
		{name: "revert to builtin", channels: only(func(c *release.Channel) { c.Bundle = "" }), want: ResultBuiltin, check: func(t *testing.T, m map[string]any) {
			if len(m) != 1 || m["version"] != "builtin" {
				t.Errorf("revert body %v, want exactly {\"version\":\"builtin\"}", m)
			}
		}},
		{name: "bundle named builtin reverts too", channels: only(func(c *release.Channel) { c.Bundle = "builtin" }), want: ResultBuiltin},
		{name: "unknown version_name gets the update", req: func(r *Request) { r.VersionName = "unknown" }, want: ResultUpdate},
		{name: "unknown version_name is reverted", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionName = "unknown" }, want: ResultBuiltin},

		// up_to_date rows.
		{name: "no_new_version_available", req: func(r *Request) { r.VersionName = "1.2.0" }, want: CodeNoNewVersion},
		{name: "builtin compares as version_build", req: func(r *Request) { r.VersionBuild, r.VersionName = "1.2.0", "builtin" }, want: CodeNoNewVersion},
		{name: "builtin compares as coerced version_build", req: func(r *Request) { r.VersionBuild, r.VersionName = "1.2", "builtin" }, want: CodeNoNewVersion},
		{name: "already_on_builtin", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionName = "builtin" }, want: CodeAlreadyOnBuiltin},
		{name: "empty version_name is builtin", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionName = "" }, want: CodeAlreadyOnBuiltin},
		{name: "builtin on native 1.0.0 gets 1.2.0", req: func(r *Request) { r.VersionName = "builtin" }, want: ResultUpdate},
		// On builtin, current plugins send version_name = version_build.
		{name: "version_name equal to version_build is builtin", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionName = "1.0.0" }, want: CodeAlreadyOnBuiltin},
		{name: "version_name equal to coerced version_build is builtin", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionBuild, r.VersionName = "5", "5.0.0" }, want: CodeAlreadyOnBuiltin},
		{name: "coerced version_name equal to version_build is builtin", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionBuild, r.VersionName = "1.2.0", "1.2" }, want: CodeAlreadyOnBuiltin},
		{name: "native version as version_name gets the update", req: func(r *Request) { r.VersionName = "1.0.0" }, want: ResultUpdate, wantVer: "1.2.0"},
		{name: "native version as version_name is up to date on it", req: func(r *Request) { r.VersionBuild, r.VersionName = "1.2", "1.2" }, want: CodeNoNewVersion},
		{name: "a bundle other than the native version is reverted", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.VersionName = "1.0.5" }, want: ResultBuiltin},

		// platform flags.
		{name: "disabled_platform_ios", channels: only(func(c *release.Channel) { c.IOS = false }), want: CodeDisabledIOS},
		{name: "disabled_platform_android", channels: only(func(c *release.Channel) { c.Android = false }), req: func(r *Request) { r.Platform = "android" }, want: CodeDisabledAndroid},
		{name: "disabled_platform_electron", channels: only(func(c *release.Channel) { c.Electron = false }), req: func(r *Request) { r.Platform = "electron" }, want: CodeDisabledElectron},
		{name: "android enabled while ios disabled", channels: only(func(c *release.Channel) { c.IOS = false }), req: func(r *Request) { r.Platform = "android" }, want: ResultUpdate},

		// semver policies compare the target with version_build.
		{name: "major blocked", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyMajor, "2.0.0" }), want: CodeToMajor, check: func(t *testing.T, m map[string]any) {
			if m["major"] != true || m["version"] != "2.0.0" || m["old"] != "1.0.0" {
				t.Errorf("major body %v", m)
			}
		}},
		{name: "major allows same major", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyMajor }), want: ResultUpdate},
		{name: "major compares with native not bundle", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyMajor, "2.0.0" }),
			req: func(r *Request) { r.VersionBuild, r.VersionName = "2.0.0", "1.1.0" }, want: ResultUpdate},
		{name: "minor blocked", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyMinor }), want: CodeToMinor},
		{name: "minor blocks major too", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyMinor, "2.0.0" }), want: CodeToMinor},
		{name: "minor allows patch", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyMinor, "1.0.5" }), want: ResultUpdate},
		{name: "patch blocked", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyPatch, "1.0.5" }), want: CodeToPatch},
		{name: "patch allows same x.y.z", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyPatch, "1.0.5" }),
			req: func(r *Request) { r.VersionBuild = "1.0.5" }, want: ResultUpdate},
		{name: "metadata blocked", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyVersionNumber }),
			extra: func(b *release.Builder) {
				b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", MinUpdateVersion: "1.1.0"})
			}, want: CodeToMetadata},
		{name: "metadata allows native at floor", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyVersionNumber }),
			extra: func(b *release.Builder) {
				b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", MinUpdateVersion: "1.1.0"})
			}, req: func(r *Request) { r.VersionBuild = "1.1.0" }, want: ResultUpdate},
		{name: "metadata without floor passes", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyVersionNumber }), want: ResultUpdate},
		{name: "metadata floor not semver", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyVersionNumber }),
			extra: func(b *release.Builder) {
				b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", MinUpdateVersion: "soon"})
			}, want: CodeSemverError},
		{name: "unknown policy is none", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = "weird", "2.0.0" }), want: ResultUpdate},
		{name: "target not semver under a semver policy", channels: only(func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyMajor, "nightly" }), want: CodeSemverError},
		{name: "target not semver without semver policy", channels: only(func(c *release.Channel) { c.Bundle, c.DisableUnderNative = "nightly", false }), want: ResultUpdate},

		// under native.
		{name: "under_native blocked", channels: only(func(c *release.Channel) { c.Bundle = "0.9.0" }), want: CodeUnderNative},
		{name: "under_native prerelease of native", channels: only(func(c *release.Channel) { c.Bundle = "1.3.0-beta.1" }), req: func(r *Request) { r.VersionBuild = "1.3.0" }, want: CodeUnderNative},
		{name: "under_native allowed when off", channels: only(func(c *release.Channel) { c.Bundle, c.DisableUnderNative = "0.9.0", false }), want: ResultUpdate},

		// prod/dev, emulator/device.
		{name: "disable_prod_build", channels: only(func(c *release.Channel) { c.AllowProd = false }), want: CodeProdBuild},
		{name: "prod disabled lets dev through", channels: only(func(c *release.Channel) { c.AllowProd = false }), req: func(r *Request) { r.IsProd = false }, want: ResultUpdate},
		{name: "disable_dev_build", channels: only(func(c *release.Channel) { c.AllowDev = false }), req: func(r *Request) { r.IsProd = false }, want: CodeDevBuild},
		{name: "disable_emulator", channels: only(func(c *release.Channel) { c.AllowEmulator = false }), req: func(r *Request) { r.IsEmulator = true }, want: CodeEmulator},
		{name: "disable_device", channels: only(func(c *release.Channel) { c.AllowDevice = false }), want: CodeDevice},
		{name: "emulator allowed when device disabled", channels: only(func(c *release.Channel) { c.AllowDevice = false }), req: func(r *Request) { r.IsEmulator = true }, want: ResultUpdate},

		// encryption key.
		{name: "key_id_mismatch", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", SessionKey: "iv:key", KeyID: "MIIBCgKCAQEAxyzxyzx"})
		}, req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAabcabca" }, want: CodeKeyIDMismatch},
		{name: "key_id match sends session_key", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "signed", SessionKey: "aXY=:a2V5", KeyID: "MIIBCgKCAQEAxyzxyzx"})
		}, req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAxyzxyzx" }, want: ResultUpdate, check: func(t *testing.T, m map[string]any) {
			if m["session_key"] != "aXY=:a2V5" || m["checksum"] != "signed" {
				t.Errorf("body %v", m)
			}
		}},
		{name: "short legacy key_id prefix matches", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", SessionKey: "aXY=:a2V5", KeyID: "MIIBCgKCAQEAxyzxyzx"})
		}, req: func(r *Request) { r.KeyID = "MIIB" }, want: ResultUpdate},
		// A device that sends key_id refuses any bundle without a session key.
		{name: "encryption_required for a plaintext bundle", req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAxyzxyzx" }, want: CodeEncryptionRequired, wantVer: "1.2.0"},
		{name: "encryption_required for a three-part session key", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", SessionKey: "a:b:c"})
		}, req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAxyzxyzx" }, want: CodeEncryptionRequired},
		{name: "encryption_required for a malformed session key", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", SessionKey: "aXY=:"})
		}, req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAxyzxyzx" }, want: CodeEncryptionRequired},
		{name: "encrypted bundle without key_id on the bundle", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", SessionKey: "aXY=:a2V5"})
		}, req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAxyzxyzx" }, want: ResultUpdate},
		{name: "revert to builtin needs no key", channels: only(func(c *release.Channel) { c.Bundle = "" }), req: func(r *Request) { r.KeyID = "MIIBCgKCAQEAxyzxyzx" }, want: ResultBuiltin},
		{name: "device without key_id is not checked", extra: func(b *release.Builder) {
			b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", Checksum: "x", KeyID: "MIIBCgKCAQEAxyzxyzx"})
		}, want: ResultUpdate},

		// private channel.
		{name: "cannot_update_via_private_channel", channels: func(*release.Channel) []release.Channel { return []release.Channel{private()} },
			req: func(r *Request) { r.DefaultChannel = "internal" }, want: CodePrivateChannel},
		{name: "private defaultChannel falls back to public", channels: func(c *release.Channel) []release.Channel { return []release.Channel{*c, private()} },
			req: func(r *Request) { r.DefaultChannel = "internal" }, want: ResultUpdate, wantVer: "1.2.0"},
		{name: "override reaches a private channel", channels: func(c *release.Channel) []release.Channel { return []release.Channel{*c, private()} },
			extra: func(b *release.Builder) {
				b.PutOverride(release.Override{AppID: testApp, DeviceID: strings.ToUpper(testDevice), Channel: "internal"})
			}, want: ResultUpdate, wantVer: "1.2.1"},

		// channel resolution.
		{name: "no_channel", channels: func(*release.Channel) []release.Channel { return nil }, want: CodeNoChannel},
		{name: "no public channel and no defaultChannel", channels: func(*release.Channel) []release.Channel { return []release.Channel{beta()} }, want: CodeNoChannel},
		{name: "unknown defaultChannel falls back to public", req: func(r *Request) { r.DefaultChannel = "nope" }, want: ResultUpdate, wantVer: "1.2.0"},
		{name: "self-assignable defaultChannel", channels: func(c *release.Channel) []release.Channel { return []release.Channel{*c, beta()} },
			req: func(r *Request) { r.DefaultChannel = "beta" }, want: ResultUpdate, wantVer: "1.2.1"},
		{name: "defaultChannel disabled for the platform falls back", channels: func(c *release.Channel) []release.Channel {
			b := beta()
			b.IOS = false
			return []release.Channel{*c, b}
		}, req: func(r *Request) { r.DefaultChannel = "beta" }, want: ResultUpdate, wantVer: "1.2.0"},
		{name: "defaultChannel disabled for the platform, no public", channels: func(c *release.Channel) []release.Channel {
			b := beta()
			b.IOS = false
			return []release.Channel{b}
		}, req: func(r *Request) { r.DefaultChannel = "beta" }, want: CodeDisabledIOS},
		{name: "first public channel by name", channels: func(c *release.Channel) []release.Channel {
			z := *c
			z.Name, z.Bundle = "zeta", "1.0.5"
			a := *c
			a.Name, a.Bundle = "alpha", "1.1.0"
			return []release.Channel{z, a}
		}, req: func(r *Request) { r.VersionName = "1.0.0" }, want: ResultUpdate, wantVer: "1.1.0"},
		{name: "public channel enabled for the platform wins over earlier disabled one", channels: func(c *release.Channel) []release.Channel {
			a := *c
			a.Name, a.IOS, a.Bundle = "alpha", false, "1.1.0"
			return []release.Channel{*c, a}
		}, want: ResultUpdate, wantVer: "1.2.0"},
		{name: "override wins over defaultChannel", channels: func(c *release.Channel) []release.Channel {
			p := private()
			p.Bundle = "1.0.5"
			return []release.Channel{*c, beta(), p}
		}, extra: func(b *release.Builder) {
			b.PutOverride(release.Override{AppID: testApp, DeviceID: testDevice, Channel: "internal"})
		}, req: func(r *Request) { r.DefaultChannel = "beta" }, want: ResultUpdate, wantVer: "1.0.5"},
		{name: "dangling override is ignored", extra: func(b *release.Builder) {
			b.PutOverride(release.Override{AppID: testApp, DeviceID: testDevice, Channel: "deleted"})
		}, want: ResultUpdate, wantVer: "1.2.0"},
		{name: "override still applies channel policies", channels: func(c *release.Channel) []release.Channel {
			p := private()
			p.AllowProd = false
			return []release.Channel{*c, p}
		}, extra: func(b *release.Builder) {
			b.PutOverride(release.Override{AppID: testApp, DeviceID: testDevice, Channel: "internal"})
		}, want: CodeProdBuild},

		// configuration and request problems.
		{name: "no_bundle", channels: only(func(c *release.Channel) { c.Bundle = "9.9.9" }), want: CodeNoBundle},
		{name: "missing_info platform", req: func(r *Request) { r.Platform = "" }, want: CodeMissingInfo},
		{name: "missing_info unknown platform", req: func(r *Request) { r.Platform = "windows" }, want: CodeMissingInfo},
		{name: "missing_info version_build", req: func(r *Request) { r.VersionBuild = "" }, want: CodeMissingInfo},
		{name: "missing_info device", req: func(r *Request) { r.DeviceID = "" }, want: CodeMissingInfo},
		{name: "semver_error", req: func(r *Request) { r.VersionBuild = "one.two" }, want: CodeSemverError},
		{name: "unknown_version_build", req: func(r *Request) { r.VersionBuild = "unknown" }, want: CodeUnknownVersionBuild},
		{name: "app_not_found", req: func(r *Request) { r.AppID = "com.other.app" }, want: CodeAppNotFound},
		{name: "coerced version_build 1", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyMajor }), req: func(r *Request) { r.VersionBuild = "1" }, want: ResultUpdate},
		{name: "coerced version_build 1.2", channels: only(func(c *release.Channel) { c.DisableAutoUpdate = release.PolicyMinor }), req: func(r *Request) { r.VersionBuild = "1.2" }, want: ResultUpdate},
		{name: "coerced version_build 2 blocks under native", req: func(r *Request) { r.VersionBuild = "2" }, want: CodeUnderNative},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := baseChannel()
			chans := []release.Channel{base}
			if tc.channels != nil {
				chans = tc.channels(&base)
			}
			snap := fixture(chans, tc.extra)
			req := baseRequest()
			if tc.req != nil {
				tc.req(&req)
			}
			a := Decide(&req, snap, Options{PublicURL: testPublic + "/"})
			if a.Result != tc.want {
				t.Fatalf("Result = %q, want %q (body %s)", a.Result, tc.want, a.Body)
			}
			if tc.wantVer != "" && a.Version != tc.wantVer {
				t.Errorf("Version = %q, want %q", a.Version, tc.wantVer)
			}
			checkAnswerShape(t, a)
			if tc.check != nil {
				tc.check(t, decodeBody(t, a.Body))
			}
		})
	}
}

// checkAnswerShape enforces the plugin's rules on every answer.
func checkAnswerShape(t *testing.T, a Answer) {
	t.Helper()
	if a.Status != 200 {
		t.Fatalf("status %d", a.Status)
	}
	m := decodeBody(t, a.Body)
	switch a.Result {
	case ResultUpdate:
		for _, k := range []string{"error", "kind"} {
			if _, ok := m[k]; ok {
				t.Errorf("success body has %q: %s", k, a.Body)
			}
		}
		if _, ok := m["session_key"].(string); !ok {
			t.Errorf("session_key missing: %s", a.Body)
		}
		if _, ok := m["checksum"].(string); !ok {
			t.Errorf("checksum missing: %s", a.Body)
		}
		u, err := url.Parse(m["url"].(string))
		if err != nil || u.Scheme == "" || u.Host == "" {
			t.Errorf("url %q does not parse as an absolute URL", m["url"])
		}
		if m["version"] != a.Version {
			t.Errorf("version %v != %q", m["version"], a.Version)
		}
	case ResultBuiltin:
		if string(a.Body) != `{"version":"builtin"}` {
			t.Errorf("builtin body %s", a.Body)
		}
	default:
		if m["error"] != a.Result {
			t.Errorf("error %v, Result %q", m["error"], a.Result)
		}
		if m["kind"] != KindOf(a.Result) {
			t.Errorf("kind %v for %s", m["kind"], a.Result)
		}
		if want, ok := protocolKinds[a.Result]; ok && m["kind"] != want {
			t.Errorf("kind %v, protocol says %s", m["kind"], want)
		}
		if s, _ := m["message"].(string); s == "" {
			t.Errorf("no message: %s", a.Body)
		}
	}
}

// Each pair makes two checks fail and asserts the earlier one in
// PROTOCOL.md's decision order wins.
func TestDecideOrder(t *testing.T) {
	noPublicPrivate := func(c *release.Channel) { c.Public, c.AllowSelfSet = false, false }
	withDefault := func(r *Request) { r.DefaultChannel = "production" }
	cases := []struct {
		name  string
		mut   func(c *release.Channel)
		extra func(b *release.Builder)
		req   func(r *Request)
		want  string
	}{
		{"app before channel", func(c *release.Channel) {}, nil, func(r *Request) { r.AppID = "nope" }, CodeAppNotFound},
		{"missing_info before app", func(c *release.Channel) {}, nil, func(r *Request) { r.AppID, r.Platform = "nope", "" }, CodeMissingInfo},
		{"unknown build before app", func(c *release.Channel) {}, nil, func(r *Request) { r.AppID, r.VersionBuild = "nope", "unknown" }, CodeUnknownVersionBuild},
		{"no_bundle before key", func(c *release.Channel) { c.Bundle = "9.9.9" }, nil, func(r *Request) { r.KeyID = "x" }, CodeNoBundle},
		{"key before up to date", func(c *release.Channel) {},
			func(b *release.Builder) { b.PutBundle(release.Bundle{AppID: testApp, Version: "1.2.0", KeyID: "aaaa"}) },
			func(r *Request) { r.KeyID, r.VersionName = "bbbb", "1.2.0" }, CodeKeyIDMismatch},
		{"up to date before platform", func(c *release.Channel) { c.IOS = false }, nil, func(r *Request) { r.VersionName = "1.2.0" }, CodeNoNewVersion},
		{"platform before major", func(c *release.Channel) { c.IOS, c.DisableAutoUpdate, c.Bundle = false, release.PolicyMajor, "2.0.0" }, nil, nil, CodeDisabledIOS},
		{"major before private", func(c *release.Channel) {
			noPublicPrivate(c)
			c.DisableAutoUpdate, c.Bundle = release.PolicyMajor, "2.0.0"
		}, nil, withDefault, CodeToMajor},
		{"private before minor", func(c *release.Channel) { noPublicPrivate(c); c.DisableAutoUpdate = release.PolicyMinor }, nil, withDefault, CodePrivateChannel},
		{"private before patch", func(c *release.Channel) { noPublicPrivate(c); c.DisableAutoUpdate = release.PolicyPatch }, nil, withDefault, CodePrivateChannel},
		{"private before under native", func(c *release.Channel) { noPublicPrivate(c); c.Bundle = "0.9.0" }, nil, withDefault, CodePrivateChannel},
		{"minor before under native", func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyMinor, "0.9.0" }, nil, nil, CodeToMinor},
		{"patch before under native", func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyPatch, "0.9.0" }, nil, nil, CodeToPatch},
		{"metadata before under native", func(c *release.Channel) { c.DisableAutoUpdate, c.Bundle = release.PolicyVersionNumber, "0.9.0" },
			func(b *release.Builder) {
				b.PutBundle(release.Bundle{AppID: testApp, Version: "0.9.0", MinUpdateVersion: "5.0.0"})
			}, nil, CodeToMetadata},
		{"under native before prod", func(c *release.Channel) { c.Bundle, c.AllowProd = "0.9.0", false }, nil, nil, CodeUnderNative},
		{"prod before emulator", func(c *release.Channel) { c.AllowProd, c.AllowEmulator = false, false }, nil, func(r *Request) { r.IsEmulator = true }, CodeProdBuild},
		{"dev before device", func(c *release.Channel) { c.AllowDev, c.AllowDevice = false, false }, nil, func(r *Request) { r.IsProd = false }, CodeDevBuild},
		{"private before prod", func(c *release.Channel) { noPublicPrivate(c); c.AllowProd = false }, nil, withDefault, CodePrivateChannel},
		{"policies before builtin revert", func(c *release.Channel) { c.Bundle, c.AllowDevice = "", false }, nil, nil, CodeDevice},
		{"policies before already_on_builtin", func(c *release.Channel) { c.Bundle, c.IOS = "", false }, nil, func(r *Request) { r.VersionName = "builtin" }, CodeDisabledIOS},
		{"semver policies skip a builtin target", func(c *release.Channel) { c.Bundle, c.DisableAutoUpdate = "", release.PolicyPatch }, nil, nil, ResultBuiltin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := baseChannel()
			tc.mut(&c)
			snap := fixture([]release.Channel{c}, tc.extra)
			req := baseRequest()
			if tc.req != nil {
				tc.req(&req)
			}
			a := Decide(&req, snap, Options{PublicURL: testPublic})
			if a.Result != tc.want {
				t.Fatalf("Result = %q, want %q (%s)", a.Result, tc.want, a.Body)
			}
			checkAnswerShape(t, a)
		})
	}
}

func TestDecideSuccessBody(t *testing.T) {
	c := baseChannel()
	snap := fixture([]release.Channel{c}, func(b *release.Builder) {
		b.PutBundle(release.Bundle{
			AppID: testApp, Version: "1.2.0", Checksum: "abc", Object: "o",
			Manifest: []release.ManifestEntry{
				{FileName: "assets/app.js.br", FileHash: "h1", DownloadURL: "https://cdn.example.com/h1"},
				{FileName: "index.html", FileHash: "h2", DownloadURL: "https://cdn.example.com/h2"},
			},
			Link: "https://example.com/notes", Comment: "Fixes \"login\"\n<b>", Breaking: true,
			Data: map[string]string{"z": "last", "a": "first"},
		})
	})
	req := baseRequest()
	a := Decide(&req, snap, Options{PublicURL: testPublic})
	checkAnswerShape(t, a)
	want := `{"version":"1.2.0","url":"https://updates.example.com/bundles/com.example.app/1.2.0.zip","session_key":"","checksum":"abc",` +
		`"manifest":[{"file_name":"assets/app.js.br","file_hash":"h1","download_url":"https://cdn.example.com/h1"},` +
		`{"file_name":"index.html","file_hash":"h2","download_url":"https://cdn.example.com/h2"}],` +
		`"link":"https://example.com/notes","comment":"Fixes \"login\"\n<b>","breaking":true,"data":{"a":"first","z":"last"}}`
	if string(a.Body) != want {
		t.Errorf("body\n%s\nwant\n%s", a.Body, want)
	}
}

func TestBundleURL(t *testing.T) {
	cases := []struct {
		pub  string
		b    release.Bundle
		want string
	}{
		{"https://u.example.com", release.Bundle{AppID: "com.a", Version: "1.0.0"}, "https://u.example.com/bundles/com.a/1.0.0.zip"},
		{"https://u.example.com/base/", release.Bundle{AppID: "com.a", Version: "1.0.0+build/5"}, "https://u.example.com/base/bundles/com.a/1.0.0+build%2F5.zip"},
		{"https://u.example.com", release.Bundle{AppID: "com.a", Version: "1 0?"}, "https://u.example.com/bundles/com.a/1%200%3F.zip"},
		{"https://u.example.com", release.Bundle{AppID: "com.a", Version: "1.0.0", ExternalURL: "https://s3.example.com/x.zip"}, "https://s3.example.com/x.zip"},
		// Manifest-only bundles still get a parseable placeholder url.
		{"https://u.example.com", release.Bundle{AppID: "com.a", Version: "2.0.0", Manifest: []release.ManifestEntry{{FileName: "a"}}}, "https://u.example.com/bundles/com.a/2.0.0.zip"},
	}
	for _, tc := range cases {
		got := BundleURL(tc.pub, &tc.b)
		if got != tc.want {
			t.Errorf("BundleURL(%q, %s) = %q, want %q", tc.pub, tc.b.Version, got, tc.want)
		}
		if _, err := url.Parse(got); err != nil {
			t.Errorf("%q: %v", got, err)
		}
	}
}

func TestResolveChannel(t *testing.T) {
	pub := baseChannel()
	beta := baseChannel()
	beta.Name, beta.Public, beta.AllowSelfSet = "beta", false, true
	priv := baseChannel()
	priv.Name, priv.Public = "internal", false
	androidOnly := baseChannel()
	androidOnly.Name, androidOnly.IOS, androidOnly.Public = "android-only", false, false
	androidOnly.AllowSelfSet = true

	full := fixture([]release.Channel{pub, beta, priv, androidOnly}, func(b *release.Builder) {
		b.PutOverride(release.Override{AppID: testApp, DeviceID: "pinned", Channel: "internal"})
	})
	noPublic := fixture([]release.Channel{beta, priv}, nil)
	cases := []struct {
		name              string
		snap              *release.Snapshot
		app, dev, plat, d string
		wantCh, wantCode  string
	}{
		{"public default", full, testApp, "d", "ios", "", "production", ""},
		{"self-set default", full, testApp, "d", "ios", "beta", "beta", ""},
		{"private default falls back", full, testApp, "d", "ios", "internal", "production", ""},
		{"override", full, testApp, "PINNED", "ios", "beta", "internal", ""},
		{"default disabled for platform", full, testApp, "d", "ios", "android-only", "production", ""},
		{"default enabled for platform", full, testApp, "d", "android", "android-only", "android-only", ""},
		{"private with no fallback", noPublic, testApp, "d", "ios", "internal", "internal", CodePrivateChannel},
		{"nothing", noPublic, testApp, "d", "ios", "", "", CodeNoChannel},
		{"unknown app", full, "com.nope", "d", "ios", "", "", CodeAppNotFound},
		{"nil snapshot", nil, testApp, "d", "ios", "", "", CodeAppNotFound},
	}
	for _, tc := range cases {
		ch, code := ResolveChannel(tc.snap, tc.app, tc.dev, tc.plat, tc.d, "8.51.23")
		name := ""
		if ch != nil {
			name = ch.Name
		}
		if name != tc.wantCh || code != tc.wantCode {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", tc.name, name, code, tc.wantCh, tc.wantCode)
		}
	}
	// Stats of an old plugin are attributed to the channel it chose.
	chosen := fixture([]release.Channel{pub, beta}, func(b *release.Builder) {
		b.PutChoice(release.Choice{AppID: testApp, DeviceID: "old", Channel: "beta"})
	})
	for plugin, want := range map[string]string{"6.0.0": "beta", "8.51.23": "production"} {
		if ch, _ := ResolveChannel(chosen, testApp, "OLD", "ios", "", plugin); ch == nil || ch.Name != want {
			t.Errorf("plugin %s with a stored choice: %v, want %s", plugin, ch, want)
		}
	}
}

func TestDecideNilSnapshotAndPurity(t *testing.T) {
	req := baseRequest()
	if a := Decide(&req, nil, Options{}); a.Result != CodeAppNotFound {
		t.Fatalf("nil snapshot: %s", a.Result)
	}
	if ch, code := ResolveChannel(nil, req.AppID, req.DeviceID, req.Platform, "", ""); ch != nil || code != CodeAppNotFound {
		t.Fatalf("nil snapshot: ResolveChannel gives %v, %s", ch, code)
	}
	for name, call := range map[string]func(*release.Snapshot, *Request) ChannelReply{
		"set": SetChannel, "get": GetChannel, "list": ListChannels, "unset": UnsetChannel,
	} {
		if rep := call(nil, &req); rep.Code != CodeAppNotFound {
			t.Fatalf("nil snapshot: %s channel gives %q", name, rep.Code)
		}
	}
	snap := fixture([]release.Channel{baseChannel()}, nil)
	before := req
	a1 := Decide(&req, snap, Options{PublicURL: testPublic})
	a2 := Decide(&req, snap, Options{PublicURL: testPublic})
	if string(a1.Body) != string(a2.Body) || req != before {
		t.Fatal("Decide is not pure")
	}
}

func TestDeviceIDCaseInsensitive(t *testing.T) {
	c := baseChannel()
	p := baseChannel()
	p.Name, p.Public, p.Bundle = "pinned", false, "1.0.5"
	snap := fixture([]release.Channel{c, p}, func(b *release.Builder) {
		b.PutOverride(release.Override{AppID: testApp, DeviceID: testDevice, Channel: "pinned"})
	})
	req := baseRequest()
	req.DeviceID = strings.ToUpper(testDevice)
	if a := Decide(&req, snap, Options{PublicURL: testPublic}); a.Version != "1.0.5" {
		t.Fatalf("uppercase device id missed its override: %s", a.Body)
	}
}

// The url written into success bodies must be exactly BundleURL.
func TestSuccessURLMatchesBundleURL(t *testing.T) {
	for _, v := range []string{"1.2.0", "1.2.0+build/7", "1.2.0-rc 1?x", "1.2.0-ü\"", "1.2.0#frag"} {
		for _, ext := range []string{"", "https://cdn.example.com/a b/\"x\".zip"} {
			c := baseChannel()
			c.Bundle, c.DisableUnderNative = v, false
			bu := release.Bundle{AppID: "com.example.app", Version: v, Checksum: "x", ExternalURL: ext}
			snap := fixture([]release.Channel{c}, func(b *release.Builder) { b.PutBundle(bu) })
			req := baseRequest()
			for _, pub := range []string{testPublic, testPublic + "/", "http://h:1/p"} {
				a := Decide(&req, snap, Options{PublicURL: pub})
				if a.Result != ResultUpdate {
					t.Fatalf("%q: %s", v, a.Body)
				}
				if got, want := decodeBody(t, a.Body)["url"], BundleURL(pub, &bu); got != want {
					t.Errorf("url %q, BundleURL %q", got, want)
				}
			}
		}
	}
}
