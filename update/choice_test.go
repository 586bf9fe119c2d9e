package update

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/update/release"
)

func TestKeepsChannel(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{
		{"8.51.23", true}, {"8.0.0", true}, {"7.34.0", true}, {"7.33.9", false}, {"6.34.1", true},
		{"6.14.25", false}, {"5.34.0", true}, {"5.33.0", false}, {"4.20.0", false},
		{"9.0.0", false}, {"10.0.0", false}, {"9.0.1", true}, {"10.1.0", true}, {"11.0.0", true},
		{"", true}, {"garbage", true},
	} {
		if got := KeepsChannel(tc.version); got != tc.want {
			t.Errorf("KeepsChannel(%q) = %v, want %v", tc.version, got, tc.want)
		}
	}
}

func TestReportsNoUpdateAsFailure(t *testing.T) {
	for v, want := range map[string]bool{
		"5.9.9": true, "6.14.24": true, "6.14.25": false, "7.16.9": true, "7.17.0": false,
		"7.17.0-beta.1": false, "8.51.23": false, "9.0.0": true, "10.0.0": true, "9.1.0": false, "": false,
	} {
		if got := ReportsNoUpdateAsFailure(v); got != want {
			t.Errorf("ReportsNoUpdateAsFailure(%q) = %v, want %v", v, got, want)
		}
	}
}

// Decisions over a snapshot holding a stored choice: only plugins that
// keep no channel themselves are routed by it, and a pin still wins.
func TestDecideStoredChoice(t *testing.T) {
	beta := baseChannel()
	beta.Name, beta.ID, beta.Public, beta.AllowSelfSet, beta.Bundle = "beta", 2, false, true, "1.2.1"
	internal := baseChannel()
	internal.Name, internal.ID, internal.Public, internal.Bundle = "internal", 3, false, "1.3.0-beta.1"
	snap := fixture([]release.Channel{baseChannel(), beta, internal}, func(b *release.Builder) {
		b.PutChoice(release.Choice{AppID: testApp, DeviceID: testDevice, Channel: "beta"})
	})
	for _, tc := range []struct {
		name, plugin, def string
		pin               bool
		want              string
	}{
		{"old plugin follows its stored choice", "6.0.0", "", false, "1.2.1"},
		{"mislabelled 9.0.0 follows its stored choice", "9.0.0", "", false, "1.2.1"},
		{"current plugin ignores stored choices", "8.51.23", "", false, "1.2.0"},
		{"current plugin's own channel", "8.51.23", "beta", false, "1.2.1"},
		{"a pin beats the stored choice", "6.0.0", "", true, "1.3.0-beta.1"},
	} {
		s := snap
		if tc.pin {
			b := release.NewBuilder(snap)
			b.PutOverride(release.Override{AppID: testApp, DeviceID: testDevice, Channel: "internal"})
			s = b.Build()
		}
		req := baseRequest()
		req.PluginVersion, req.DefaultChannel = tc.plugin, tc.def
		if a := Decide(&req, s, Options{PublicURL: testPublic}); a.Version != tc.want {
			t.Errorf("%s: %s %s, want %s", tc.name, a.Result, a.Version, tc.want)
		}
	}
}

// Old plugins' setChannel choices go through a real store on embedded
// JetStream: stored, used by update checks and getChannel, forgotten on
// unsetChannel or when the default channel is asked for.
func TestOldPluginChannelChoice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store, err := release.Open(ctx, b.JetStream, release.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.CreateApp(ctx, release.App{ID: testApp}))
	for _, v := range []string{"1.2.0", "1.2.1"} {
		must(store.CreateBundle(ctx, release.Bundle{AppID: testApp, Version: v}, strings.NewReader("zip "+v)))
	}
	must(store.PutChannel(ctx, baseChannel()))
	beta := baseChannel()
	beta.Name, beta.Public, beta.AllowSelfSet, beta.Bundle = "beta", false, true, "1.2.1"
	must(store.PutChannel(ctx, beta))

	r := chi.NewRouter()
	NewHandler(Config{Snapshot: store.Snapshot, PublicURL: testPublic, Choices: store}).Routes(r)
	call := func(method, path string, body map[string]any) map[string]any {
		t.Helper()
		var req *http.Request
		if method == http.MethodDelete {
			q := url.Values{}
			for k, v := range body {
				q.Set(k, v.(string))
			}
			req = httptest.NewRequest(method, path+"?"+q.Encode(), nil)
		} else {
			raw, _ := json.Marshal(body)
			req = httptest.NewRequest(method, path, strings.NewReader(string(raw)))
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
		return m
	}
	info := func(plugin string, extra ...string) map[string]any {
		m := map[string]any{"platform": "ios", "device_id": strings.ToUpper(testDevice), "app_id": testApp,
			"version_build": "1.0.0", "version_name": "1.1.0", "plugin_version": plugin, "is_prod": true}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	version := func(plugin string) any { return call(http.MethodPost, "/updates", info(plugin))["version"] }

	if m := call(http.MethodPost, "/channel_self", info("6.0.0", "channel", "beta")); m["status"] != "ok" {
		t.Fatal(m)
	}
	if c, ok := store.Snapshot().Choice(testApp, testDevice); !ok || c != "beta" {
		t.Fatalf("choice not stored: %q %v", c, ok)
	}
	if v := version("6.0.0"); v != "1.2.1" {
		t.Fatalf("old plugin after setChannel got %v", v)
	}
	if m := call(http.MethodPut, "/channel_self", info("6.0.0")); m["channel"] != "beta" {
		t.Fatalf("getChannel: %v", m)
	}
	if v := version("8.51.23"); v != "1.2.0" {
		t.Fatalf("current plugin without defaultChannel got %v", v)
	}
	call(http.MethodDelete, "/channel_self", map[string]any{"app_id": testApp, "device_id": testDevice, "platform": "ios", "plugin_version": "6.0.0"})
	if _, ok := store.Snapshot().Choice(testApp, testDevice); ok {
		t.Fatal("unsetChannel kept the choice")
	}
	if v := version("6.0.0"); v != "1.2.0" {
		t.Fatalf("old plugin after unsetChannel got %v", v)
	}

	// Asking for the default channel forgets the choice too.
	call(http.MethodPost, "/channel_self", info("5.10.0", "channel", "beta"))
	if m := call(http.MethodPost, "/channel_self", info("5.10.0", "channel", "production")); m["unset"] != true {
		t.Fatal(m)
	}
	if _, ok := store.Snapshot().Choice(testApp, testDevice); ok {
		t.Fatal("choosing the default channel kept the old choice")
	}

	// Current plugins keep their choice themselves: nothing is stored.
	call(http.MethodPost, "/channel_self", info("8.51.23", "channel", "beta"))
	if _, ok := store.Snapshot().Choice(testApp, testDevice); ok {
		t.Fatal("a current plugin's choice was stored")
	}

	// Deleting the app removes its choices.
	call(http.MethodPost, "/channel_self", info("6.0.0", "channel", "beta"))
	must(store.DeleteApp(ctx, testApp))
	if n := store.Snapshot().ChoiceCount(); n != 0 {
		t.Fatalf("%d choices left after the app was deleted", n)
	}
}
