package update

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/update/release"
)

// fuzzRouter serves a snapshot rich enough to reach every decision step.
func fuzzRouter() chi.Router {
	prod := baseChannel()
	prod.DisableAutoUpdate = release.PolicyMajor
	prod.RolloutBundle, prod.RolloutPercent = "1.2.1", 30
	beta := baseChannel()
	beta.Name, beta.Public, beta.AllowSelfSet, beta.DisableAutoUpdate, beta.Bundle = "beta", false, true, release.PolicyVersionNumber, "2.0.0"
	internal := baseChannel()
	internal.Name, internal.Public, internal.Bundle, internal.AllowEmulator = "internal", false, "", false
	snap := fixture([]release.Channel{prod, beta, internal}, func(b *release.Builder) {
		b.PutBundle(release.Bundle{AppID: testApp, Version: "2.0.0", Checksum: "c", KeyID: "MIIB", MinUpdateVersion: "1.1.0",
			Manifest: []release.ManifestEntry{{FileName: "a\u2028\"b", FileHash: "h", DownloadURL: "u"}}, Data: map[string]string{"k": "\xff"}})
		b.PutOverride(release.Override{AppID: testApp, DeviceID: "pinned", Channel: "internal"})
	})
	h := NewHandler(Config{Snapshot: func() *release.Snapshot { return snap }, PublicURL: testPublic, MaxBodyBytes: 4096, Metrics: NewMetrics(nil)})
	r := chi.NewRouter()
	h.Routes(r)
	return r
}

// checkFuzzAnswer: never a 5xx, always a JSON body, and an update offer
// never carries error or kind.
func checkFuzzAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case 200, 400, 413:
	default:
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, rec.Body)
	}
	_, hasErr := m["error"]
	_, hasKind := m["kind"]
	if rec.Code == 200 && hasErr != hasKind {
		t.Fatalf("error without kind or kind without error: %s", rec.Body)
	}
	if rec.Code != 200 && (!hasErr || hasKind) {
		t.Fatalf("rejection shape: %s", rec.Body)
	}
}

func FuzzUpdatesBody(f *testing.F) {
	r := baseRequest()
	seed, _ := json.Marshal(map[string]any{"platform": r.Platform, "device_id": r.DeviceID, "app_id": r.AppID, "version_build": r.VersionBuild, "version_name": r.VersionName})
	f.Add(seed)
	f.Add([]byte(`{}`))
	router := fuzzRouter()
	f.Fuzz(func(t *testing.T, body []byte) {
		// The decoder alone must agree with the handler.
		req, rerr := DecodeJSON(body)
		if rerr == nil {
			if rerr = req.ValidateVersionBuild(); rerr == nil {
				a := Decide(&req, nil, Options{})
				if a.Status != 200 {
					t.Fatalf("Decide status %d", a.Status)
				}
			}
		}
		if rerr != nil && rerr.Status != 400 {
			t.Fatalf("decode status %d", rerr.Status)
		}
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body)))
		checkFuzzAnswer(t, rec)
		if rec.Code == 400 && (rerr == nil || !strings.Contains(rec.Body.String(), rerr.Code)) {
			t.Fatalf("handler said %s, decoder %v", rec.Body, rerr)
		}
		// The same bytes as a setChannel/getChannel body.
		for _, m := range []string{http.MethodPost, http.MethodPut} {
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, httptest.NewRequest(m, "/channel_self", bytes.NewReader(body)))
			if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("channel_self %s: %d %q", m, rec.Code, rec.Body)
			}
		}
	})
}

func FuzzLegacyHeaders(f *testing.F) {
	r := baseRequest()
	f.Add(r.Platform, r.DeviceID, r.AppID, r.VersionBuild, "4.2.0", r.VersionName)
	f.Add("", "", "", "", "", "")
	router := fuzzRouter()
	f.Fuzz(func(t *testing.T, platform, device, app, build, plugin, name string) {
		req := httptest.NewRequest(http.MethodGet, "/updates", nil)
		// Set the map directly: the fuzzer's strings need not be valid
		// header values, and the decoder must cope with whatever arrives.
		for k, v := range map[string]string{"cap_platform": platform, "cap_device_id": device, "cap_app_id": app,
			"cap_version_build": build, "cap_plugin_version": plugin, "cap_version_name": name} {
			if v != "" {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
		}
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		checkFuzzAnswer(t, rec)
	})
}

func FuzzChannelQuery(f *testing.F) {
	f.Add("app_id=com.example.app&device_id=d&platform=ios&is_prod=true&is_emulator=false")
	f.Add("app_id=%zz&is_prod=")
	router := fuzzRouter()
	f.Fuzz(func(t *testing.T, query string) {
		for _, m := range []string{http.MethodGet, http.MethodDelete} {
			req := httptest.NewRequest(m, "/channel_self", nil)
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			router.ServeHTTP(rec, req)
			if rec.Code >= 500 || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s ?%s: %d %q", m, query, rec.Code, rec.Body)
			}
		}
	})
}
