package update

import (
	"encoding/json"
	"testing"

	"github.com/capstan-io/capstan/update/release"
)

const (
	testApp    = "com.example.app"
	testDevice = "6aa1c4c5-1c7e-4a3b-9d2e-0f2b8c1d9e01"
	testPublic = "https://updates.example.com"
)

var testBundleVersions = []string{"0.9.0", "1.0.0", "1.0.5", "1.1.0", "1.2.0", "1.2.1", "1.3.0-beta.1", "2.0.0", "nightly"}

// baseChannel is the public channel every decision test starts from:
// permissive except under-native, pointing at 1.2.0.
func baseChannel() release.Channel {
	c := release.NewChannel(testApp, "production")
	c.ID = 1
	c.Public = true
	c.Bundle = "1.2.0"
	c.DisableAutoUpdate = release.PolicyNone
	return c
}

// baseRequest is a production iOS device on native 1.0.0 running bundle 1.1.0.
func baseRequest() Request {
	return Request{
		Platform:      "ios",
		DeviceID:      testDevice,
		AppID:         testApp,
		VersionBuild:  "1.0.0",
		VersionName:   "1.1.0",
		PluginVersion: "8.51.23",
		IsProd:        true,
	}
}

// fixture builds a snapshot holding testApp with its bundles and the given
// channels; extra can add overrides or more.
func fixture(channels []release.Channel, extra func(b *release.Builder)) *release.Snapshot {
	b := release.NewBuilder(nil)
	b.PutApp(release.App{ID: testApp, Name: "Example"})
	for _, v := range testBundleVersions {
		b.PutBundle(release.Bundle{AppID: testApp, Version: v, Checksum: "sha-" + v, Object: testApp + "/" + v})
	}
	for _, c := range channels {
		b.PutChannel(c)
	}
	if extra != nil {
		extra(b)
	}
	return b.Build()
}

func decodeBody(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	return m
}
