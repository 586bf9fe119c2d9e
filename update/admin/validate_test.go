package admin

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/capstan-io/capstan/update/release"
)

func TestValidAppID(t *testing.T) {
	tests := map[string]bool{
		"com.example.app":               true,
		"io.capstan":                    true,
		"com.my-co.app_2":               true,
		"A.B":                           true,
		"app":                           false,
		"":                              false,
		"com..app":                      false,
		".com.app":                      false,
		"com.app.":                      false,
		"com.app/x":                     false,
		"com.äpp":                       false,
		"com.app" + " ":                 false,
		strings.Repeat("a.", 64) + "bb": false, // 130 chars
	}
	for id, ok := range tests {
		if err := validAppID(id); (err == nil) != ok {
			t.Errorf("validAppID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestValidVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"1.0.0": true, "0.0.1": true, "1.2.3-beta.1": true, "1.2.3+build.5": true, "1.2.3-rc.1+sha.abc": true,
		"1.0": false, "1": false, "v1.0.0": false, "01.0.0": false, "builtin": false, "": false, "1.0.0-": false,
	} {
		if err := validVersion(v); (err == nil) != ok {
			t.Errorf("validVersion(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func TestNormDeviceID(t *testing.T) {
	got, err := normDeviceID("0F8FAD5B-D9CB-469F-A165-70867728950E")
	if err != nil || got != "0f8fad5b-d9cb-469f-a165-70867728950e" {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range []string{"", "a b", "../x", "a/b", strings.Repeat("a", 129)} {
		if _, err := normDeviceID(bad); err == nil {
			t.Errorf("normDeviceID(%q) accepted", bad)
		}
	}
}

func TestApplyPatch(t *testing.T) {
	base := release.NewChannel("com.a.b", "prod")
	base.Bundle, base.RolloutBundle, base.RolloutPercent = "1.0.0", "1.1.0", 20
	tests := []struct {
		name  string
		p     ChannelPatch
		check func(release.Channel) bool
		code  string
	}{
		{"empty patch changes nothing", ChannelPatch{}, func(c release.Channel) bool { return reflect.DeepEqual(c, base) }, ""},
		{"bundle to builtin", ChannelPatch{Bundle: ptr("")}, func(c release.Channel) bool { return c.Bundle == "" && c.RolloutBundle == "1.1.0" }, ""},
		{"clear rollout bundle clears percent", ChannelPatch{RolloutBundle: ptr("")}, func(c release.Channel) bool { return c.RolloutPercent == 0 }, ""},
		{"clear rollout with explicit percent", ChannelPatch{RolloutBundle: ptr(""), RolloutPercent: ptr(5.0)}, nil, "invalid_rollout"},
		{"percent 100", ChannelPatch{RolloutPercent: ptr(100.0)}, func(c release.Channel) bool { return c.RolloutPercent == 100 }, ""},
		{"percent NaN", ChannelPatch{RolloutPercent: ptr(math.NaN())}, nil, "invalid_rollout_percent"},
		{"percent > 100", ChannelPatch{RolloutPercent: ptr(100.5)}, nil, "invalid_rollout_percent"},
		{"policy none", ChannelPatch{DisableAutoUpdate: ptr("none")}, func(c release.Channel) bool { return c.DisableAutoUpdate == "none" }, ""},
		{"policy unknown", ChannelPatch{DisableAutoUpdate: ptr("Major")}, nil, "invalid_policy"},
		{"bundle not semver", ChannelPatch{Bundle: ptr("1.0")}, nil, "invalid_bundle"},
		{"flags", ChannelPatch{IOS: ptr(false), AllowDev: ptr(false), DisableUnderNative: ptr(false)}, func(c release.Channel) bool {
			return !c.IOS && c.Android && !c.AllowDev && c.AllowProd && !c.DisableUnderNative
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := applyPatch(base, tc.p)
			if tc.code != "" {
				ae, ok := err.(*apiError)
				if !ok || ae.code != tc.code || ae.status != 400 {
					t.Fatalf("err = %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("got %+v, %v", c, err)
			}
		})
	}
}

func TestSortBundles(t *testing.T) {
	var bs []*release.Bundle
	for _, v := range []string{"1.0.0", "1.10.0", "1.2.0", "2.0.0-beta.1", "2.0.0", "1.2.0+b", "weird"} {
		bs = append(bs, &release.Bundle{Version: v})
	}
	sortBundles(bs)
	var got []string
	for _, b := range bs {
		got = append(got, b.Version)
	}
	if s := strings.Join(got, " "); s != "2.0.0 2.0.0-beta.1 1.10.0 1.2.0+b 1.2.0 1.0.0 weird" {
		t.Fatalf("order %s", s)
	}
}

func TestCheckMetadata(t *testing.T) {
	hex64 := strings.Repeat("a", 64)
	sig := strings.Repeat("0f", 256)
	tests := []struct {
		name    string
		m       BundleMetadata
		hasFile bool
		code    string
	}{
		{"plain file", BundleMetadata{Version: "1.0.0"}, true, ""},
		{"plain with checksum", BundleMetadata{Version: "1.0.0", Checksum: strings.ToUpper(hex64)}, true, ""},
		{"plain bad checksum", BundleMetadata{Version: "1.0.0", Checksum: "crc32"}, true, "invalid_checksum"},
		{"encrypted", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5", Checksum: sig}, true, ""},
		{"encrypted base64 checksum", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5", Checksum: "c2lnbmF0dXJl"}, true, "invalid_checksum"},
		{"encrypted short hex checksum", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5", Checksum: hex64}, true, "invalid_checksum"},
		{"manifest .br collision", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a.js", FileHash: "h", DownloadURL: "https://x/a"}, {FileName: "a.js.br", FileHash: "h", DownloadURL: "https://x/b"}}}, true, "invalid_manifest"},
		{"manifest .br collision reversed", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a.js.br", FileHash: "h", DownloadURL: "https://x/a"}, {FileName: "a.js", FileHash: "h", DownloadURL: "https://x/b"}}}, true, "invalid_manifest"},
		{"manifest dot segment", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a/./b.js", FileHash: "h", DownloadURL: "https://x/a"}}}, true, "invalid_manifest"},
		{"manifest dot", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: ".", FileHash: "h", DownloadURL: "https://x/a"}}}, true, "invalid_manifest"},
		{"manifest dotdot", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a/../../b", FileHash: "h", DownloadURL: "https://x/a"}}}, true, "invalid_manifest"},
		{"manifest control character", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a\nb.js", FileHash: "h", DownloadURL: "https://x/a"}}}, true, "invalid_manifest"},
		{"manifest .br alone", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a.js.br", FileHash: "h", DownloadURL: "https://x/a"}, {FileName: "b.js", FileHash: "h", DownloadURL: "https://x/b"}}}, true, ""},
		{"encrypted no checksum", BundleMetadata{Version: "1.0.0", SessionKey: "aXY=:a2V5"}, true, "missing_checksum"},
		{"external", BundleMetadata{Version: "1.0.0", ExternalURL: "https://x.example/b.zip", Checksum: hex64}, false, ""},
		{"external encrypted", BundleMetadata{Version: "1.0.0", ExternalURL: "https://x.example/b.zip", SessionKey: "a:b", Checksum: sig}, false, ""},
		{"external no checksum", BundleMetadata{Version: "1.0.0", ExternalURL: "https://x.example/b.zip"}, false, "missing_checksum"},
		{"external relative", BundleMetadata{Version: "1.0.0", ExternalURL: "/b.zip", Checksum: hex64}, false, "invalid_external_url"},
		{"manifest only", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a/b.js", FileHash: hex64, DownloadURL: "https://x/a"}}}, false, ""},
		{"manifest duplicate", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a", FileHash: "h", DownloadURL: "https://x/a"}, {FileName: "a", FileHash: "h", DownloadURL: "https://x/a"}}}, true, "invalid_manifest"},
		{"manifest no hash", BundleMetadata{Version: "1.0.0", Manifest: []release.ManifestEntry{{FileName: "a", DownloadURL: "https://x/a"}}}, true, "invalid_manifest"},
		{"nothing", BundleMetadata{Version: "1.0.0"}, false, "missing_file"},
		{"long comment", BundleMetadata{Version: "1.0.0", Comment: strings.Repeat("c", maxTextLen+1)}, true, "invalid_comment"},
		{"min update version coerced", BundleMetadata{Version: "1.0.0", MinUpdateVersion: "5"}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			err := checkMetadata(&m, tc.hasFile)
			got := ""
			if ae, ok := err.(*apiError); ok {
				got = ae.code
			} else if err != nil {
				t.Fatalf("non-API error %v", err)
			}
			if got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}
