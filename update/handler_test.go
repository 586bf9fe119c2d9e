package update

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/update/release"
)

type testServer struct {
	router  chi.Router
	snap    atomic.Pointer[release.Snapshot]
	reg     *prometheus.Registry
	metrics *Metrics
}

func newTestServer(t testing.TB, snap *release.Snapshot, maxBody int64) *testServer {
	ts := &testServer{router: chi.NewRouter(), reg: prometheus.NewRegistry()}
	ts.snap.Store(snap)
	ts.metrics = NewMetrics(ts.reg)
	h := NewHandler(Config{
		Snapshot:     ts.snap.Load,
		PublicURL:    testPublic,
		MaxBodyBytes: maxBody,
		Metrics:      ts.metrics,
	})
	h.Routes(ts.router)
	return ts
}

func (ts *testServer) do(method, target string, body []byte, hdr http.Header) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	ts.router.ServeHTTP(rec, req)
	return rec
}

func (ts *testServer) count(app, result string) float64 {
	mfs, err := ts.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "capstan_update_checks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] == app && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func jsonBody(t testing.TB, r Request, extra map[string]any) []byte {
	m := map[string]any{
		"platform": r.Platform, "device_id": r.DeviceID, "app_id": r.AppID, "custom_id": r.CustomID,
		"version_build": r.VersionBuild, "version_code": "14", "version_os": "17.2", "version_name": r.VersionName,
		"plugin_version": r.PluginVersion, "is_emulator": r.IsEmulator, "is_prod": r.IsProd,
	}
	if r.DefaultChannel != "" {
		m["defaultChannel"] = r.DefaultChannel
	}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantJSON(t *testing.T, rec *httptest.ResponseRecorder, status int) map[string]any {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return decodeBody(t, rec.Body.Bytes())
}

func TestHandlerUpdatesPOST(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, nil), 0)
	body := jsonBody(t, baseRequest(), nil)
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", ""} {
		rec := ts.do(http.MethodPost, "/updates", body, http.Header{"Content-Type": {ct}, "User-Agent": {"CapacitorUpdater/8.51.23 (com.example.app) android/14"}})
		m := wantJSON(t, rec, 200)
		if m["version"] != "1.2.0" || m["url"] != testPublic+"/bundles/com.example.app/1.2.0.zip" {
			t.Fatalf("%q: %v", ct, m)
		}
		if _, ok := m["error"]; ok {
			t.Fatal("error key in success")
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("update answers must not be cached")
		}
	}
	if got := ts.count(testApp, ResultUpdate); got != 3 {
		t.Fatalf("update counter %v", got)
	}

	// Up to date: HTTP 200 with error and kind.
	up := baseRequest()
	up.VersionName = "1.2.0"
	m := wantJSON(t, ts.do(http.MethodPost, "/updates", jsonBody(t, up, nil), nil), 200)
	if m["error"] != CodeNoNewVersion || m["kind"] != KindUpToDate {
		t.Fatalf("%v", m)
	}
	if ts.count(testApp, CodeNoNewVersion) != 1 {
		t.Fatal("no_new_version counter")
	}

	// A snapshot swap is seen by the next request.
	c := baseChannel()
	c.Bundle = "1.2.1"
	ts.snap.Store(fixture([]release.Channel{c}, nil))
	m = wantJSON(t, ts.do(http.MethodPost, "/updates", jsonBody(t, up, nil), nil), 200)
	if m["version"] != "1.2.1" {
		t.Fatalf("after swap: %v", m)
	}
}

func TestHandlerUpdatesLegacyGET(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, nil), 0)

	m := wantJSON(t, ts.do(http.MethodGet, "/updates", nil, nil), 200)
	if len(m) != 1 || m["status"] != "ok" {
		t.Fatalf("health check: %v", m)
	}
	if head := ts.do(http.MethodHead, "/updates", nil, nil); head.Code != 200 {
		t.Fatalf("HEAD: %d", head.Code)
	}

	r := baseRequest()
	hdr := http.Header{}
	hdr.Set("cap_platform", r.Platform)
	hdr.Set("cap_device_id", strings.ToUpper(r.DeviceID))
	hdr.Set("cap_app_id", r.AppID)
	hdr.Set("cap_version_build", r.VersionBuild)
	hdr.Set("cap_plugin_version", "4.2.0")
	hdr.Set("cap_version_name", r.VersionName)
	get := ts.do(http.MethodGet, "/updates", nil, hdr)
	post := ts.do(http.MethodPost, "/updates", jsonBody(t, r, nil), nil)
	if get.Code != 200 || get.Body.String() != post.Body.String() {
		t.Fatalf("legacy GET answered %d %s, POST %s", get.Code, get.Body, post.Body)
	}

	hdr.Set("cap_version_build", "not.a.version")
	m = wantJSON(t, ts.do(http.MethodGet, "/updates", nil, hdr), 400)
	if m["error"] != CodeSemverError {
		t.Fatalf("%v", m)
	}
	hdr.Del("cap_device_id")
	hdr.Set("cap_version_build", "1.0.0")
	m = wantJSON(t, ts.do(http.MethodGet, "/updates", nil, hdr), 400)
	if m["error"] != CodeMissingDeviceID {
		t.Fatalf("%v", m)
	}
}

func TestHandlerUpdatesBadRequests(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, nil), 512)
	good := baseRequest()
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"invalid json", []byte(`{"device_id":`), 400, CodeInvalidJSONBody},
		{"empty", []byte{}, 400, CodeInvalidJSONBody},
		{"array", []byte(`[]`), 400, CodeInvalidJSONBody},
		{"missing device", []byte(`{"app_id":"com.example.app","platform":"ios","version_build":"1.0.0"}`), 400, CodeMissingDeviceID},
		{"missing app", []byte(`{"device_id":"d","platform":"ios","version_build":"1.0.0"}`), 400, CodeMissingAppID},
		{"semver", jsonBody(t, good, map[string]any{"version_build": "1.2.3.4"}), 400, CodeSemverError},
		{"too large", jsonBody(t, good, map[string]any{"custom_id": strings.Repeat("x", 600)}), 413, CodePayloadTooLarge},
		// 200 answers of the decision for request problems.
		{"unknown version_build", jsonBody(t, good, map[string]any{"version_build": "unknown"}), 200, CodeUnknownVersionBuild},
		{"missing platform", jsonBody(t, good, map[string]any{"platform": ""}), 200, CodeMissingInfo},
		{"unknown app", jsonBody(t, good, map[string]any{"app_id": "com.nope"}), 200, CodeAppNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := wantJSON(t, ts.do(http.MethodPost, "/updates", tc.body, nil), tc.status)
			if m["error"] != tc.code {
				t.Fatalf("error %v, want %s", m["error"], tc.code)
			}
			if msg, _ := m["message"].(string); msg == "" {
				t.Fatal("no message")
			}
			_, hasKind := m["kind"]
			if hasKind != (tc.status == 200) {
				t.Fatalf("kind present %v for status %d", hasKind, tc.status)
			}
		})
	}
	if ts.count(UnknownApp, CodeAppNotFound) != 1 || ts.count(UnknownApp, CodeInvalidJSONBody) != 3 || ts.count(testApp, CodeSemverError) != 1 {
		t.Fatal("rejections not counted with a bounded app label")
	}

	// 413 also when the length is not announced (chunked upload).
	req := httptest.NewRequest(http.MethodPost, "/updates", io.NopCloser(strings.NewReader(strings.Repeat(" ", 513))))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	ts.router.ServeHTTP(rec, req)
	if m := wantJSON(t, rec, 413); m["error"] != CodePayloadTooLarge {
		t.Fatalf("%v", m)
	}
	// Exactly at the limit is fine.
	padded := append(jsonBody(t, good, nil), bytes.Repeat([]byte(" "), 512)...)
	padded = padded[:512]
	if json.Valid(padded) {
		if rec := ts.do(http.MethodPost, "/updates", padded, nil); rec.Code != 200 {
			t.Fatalf("body at the limit: %d %s", rec.Code, rec.Body)
		}
	}
}

func TestHandlerMethodNotAllowed(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, nil), 0)
	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/updates"}, {http.MethodDelete, "/updates"}, {http.MethodPatch, "/updates"},
		{http.MethodPatch, "/channel_self"}, {http.MethodOptions, "/channel_self"},
	} {
		rec := ts.do(c.method, c.path, nil, nil)
		m := wantJSON(t, rec, 405)
		if m["error"] != CodeMethodNotAllowed || rec.Header().Get("Allow") == "" {
			t.Fatalf("%s %s: %v allow=%q", c.method, c.path, m, rec.Header().Get("Allow"))
		}
	}
}

func channelFixture() *release.Snapshot {
	prod := baseChannel()
	beta := baseChannel()
	beta.Name, beta.ID, beta.Public, beta.AllowSelfSet, beta.Bundle = "beta", 2, false, true, "1.2.1"
	internal := baseChannel()
	internal.Name, internal.ID, internal.Public = "internal", 3, false
	legacy := baseChannel()
	legacy.Name, legacy.ID = "production-legacy", 4 // public, not the default, no self-set
	androidBeta := baseChannel()
	androidBeta.Name, androidBeta.ID, androidBeta.Public, androidBeta.AllowSelfSet, androidBeta.IOS = "android-beta", 5, false, true, false
	devOnly := baseChannel()
	devOnly.Name, devOnly.ID, devOnly.Public, devOnly.AllowSelfSet, devOnly.AllowProd = "dev", 6, false, true, false
	noEmu := baseChannel()
	noEmu.Name, noEmu.ID, noEmu.Public, noEmu.AllowSelfSet, noEmu.AllowEmulator = "devices", 8, false, true, false
	return fixture([]release.Channel{prod, beta, internal, legacy, androidBeta, devOnly, noEmu}, func(b *release.Builder) {
		b.PutOverride(release.Override{AppID: testApp, DeviceID: "pinned-device", Channel: "internal"})
	})
}

func TestChannelSelfSet(t *testing.T) {
	ts := newTestServer(t, channelFixture(), 0)
	cases := []struct {
		name    string
		channel any
		app     string
		want    string // error code, "" for ok
		unset   bool
	}{
		{"self-assignable", "beta", testApp, "", false},
		{"default public asks to unset", "production", testApp, "", true},
		{"private", "internal", testApp, CodeSelfSetNotAllowed, false},
		{"public not default", "production-legacy", testApp, CodePublicSelfSetBlocked, false},
		{"not for this platform", "android-beta", testApp, CodeSelfSetNotAllowed, false},
		{"unknown", "nope", testApp, CodeChannelNotFound, false},
		{"missing", "", testApp, CodeMissingChannel, false},
		{"absent", nil, testApp, CodeMissingChannel, false},
		{"unknown app", "beta", "com.nope", CodeAppNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRequest()
			r.AppID = tc.app
			extra := map[string]any{}
			if tc.channel != nil {
				extra["channel"] = tc.channel
			}
			m := wantJSON(t, ts.do(http.MethodPost, "/channel_self", jsonBody(t, r, extra), nil), 200)
			if tc.want == "" {
				if m["status"] != "ok" || (m["unset"] == true) != tc.unset {
					t.Fatalf("%v", m)
				}
				return
			}
			if m["error"] != tc.want || m["message"] == "" {
				t.Fatalf("%v, want %s", m, tc.want)
			}
		})
	}
	m := wantJSON(t, ts.do(http.MethodPost, "/channel_self", []byte(`{"channel":"beta"`), nil), 400)
	if m["error"] != CodeInvalidJSONBody {
		t.Fatal(m)
	}
	m = wantJSON(t, ts.do(http.MethodPost, "/channel_self", []byte(`{"app_id":"x","channel":"beta"}`), nil), 400)
	if m["error"] != CodeMissingDeviceID {
		t.Fatal(m)
	}
}

func TestChannelSelfGet(t *testing.T) {
	ts := newTestServer(t, channelFixture(), 0)
	cases := []struct {
		name, device, def string
		want              ChannelState
	}{
		{"default", testDevice, "", ChannelState{"production", "default", true}},
		{"device choice", testDevice, "beta", ChannelState{"beta", "override", true}},
		{"invalid choice falls back", testDevice, "internal", ChannelState{"production", "default", true}},
		// The plugin stores the answer as its own channel: never the pin.
		{"operator pin answers the device's choice", "PINNED-DEVICE", "beta", ChannelState{"beta", "override", false}},
		{"operator pin answers the default", "PINNED-DEVICE", "", ChannelState{"production", "default", false}},
	}
	for _, tc := range cases {
		r := baseRequest()
		r.DeviceID, r.DefaultChannel = tc.device, tc.def
		rec := ts.do(http.MethodPut, "/channel_self", jsonBody(t, r, nil), nil)
		wantJSON(t, rec, 200)
		var got ChannelState
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got != tc.want {
			t.Errorf("%s: %s, want %+v", tc.name, rec.Body, tc.want)
		}
	}
	r := baseRequest()
	r.AppID = "com.nope"
	if m := wantJSON(t, ts.do(http.MethodPut, "/channel_self", jsonBody(t, r, nil), nil), 200); m["error"] != CodeAppNotFound {
		t.Fatal(m)
	}
	empty := fixture(nil, nil)
	ts.snap.Store(empty)
	if m := wantJSON(t, ts.do(http.MethodPut, "/channel_self", jsonBody(t, baseRequest(), nil), nil), 200); m["error"] != CodeNoChannel {
		t.Fatal(m)
	}
}

func TestChannelSelfList(t *testing.T) {
	ts := newTestServer(t, channelFixture(), 0)
	list := func(q string) []string {
		t.Helper()
		rec := ts.do(http.MethodGet, "/channel_self?"+q, nil, nil)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", q, rec.Code, rec.Body)
		}
		var out []ChannelInfo
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s: not a bare array: %s", q, rec.Body)
		}
		var names []string
		for _, c := range out {
			names = append(names, c.Name)
		}
		return names
	}
	base := "app_id=com.example.app&device_id=" + testDevice
	cases := map[string]string{
		base + "&platform=ios&is_prod=true&is_emulator=false":     "beta,devices,production",
		base + "&platform=android&is_prod=true&is_emulator=false": "android-beta,beta,devices,production",
		base + "&platform=ios&is_prod=false&is_emulator=false":    "beta,dev,devices,production",
		base + "&platform=ios&is_prod=true&is_emulator=true":      "beta,production",
		base + "&platform=ios":                                    "beta,devices,production",
	}
	for q, want := range cases {
		if got := strings.Join(list(q), ","); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	rec := ts.do(http.MethodGet, "/channel_self?"+base+"&platform=ios", nil, nil)
	var raw []map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &raw)
	if raw[0]["id"] != float64(2) || raw[0]["public"] != false || raw[0]["allow_self_set"] != true {
		t.Errorf("entry shape %v", raw[0])
	}
	ts.snap.Store(fixture(nil, nil))
	if rec := ts.do(http.MethodGet, "/channel_self?"+base, nil, nil); rec.Body.String() != "[]" {
		t.Errorf("empty list: %s", rec.Body)
	}
	if m := wantJSON(t, ts.do(http.MethodGet, "/channel_self?device_id=x", nil, nil), 400); m["error"] != CodeMissingAppID {
		t.Fatal(m)
	}
	if m := wantJSON(t, ts.do(http.MethodGet, "/channel_self?app_id=com.nope", nil, nil), 200); m["error"] != CodeAppNotFound {
		t.Fatal(m)
	}
}

func TestChannelSelfUnset(t *testing.T) {
	ts := newTestServer(t, channelFixture(), 0)
	m := wantJSON(t, ts.do(http.MethodDelete, "/channel_self?app_id=com.example.app&device_id=d&platform=ios", nil, nil), 200)
	if m["status"] != "ok" {
		t.Fatal(m)
	}
	// Info object as a DELETE body also works.
	m = wantJSON(t, ts.do(http.MethodDelete, "/channel_self", jsonBody(t, baseRequest(), nil), nil), 200)
	if m["status"] != "ok" {
		t.Fatal(m)
	}
	if m := wantJSON(t, ts.do(http.MethodDelete, "/channel_self", nil, nil), 400); m["error"] != CodeMissingAppID {
		t.Fatal(m)
	}
	if m := wantJSON(t, ts.do(http.MethodDelete, "/channel_self?app_id=com.nope", nil, nil), 200); m["error"] != CodeAppNotFound {
		t.Fatal(m)
	}
}

// The whole stack over a real loopback connection, as a device sees it.
func TestHandlerOverHTTP(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, nil), 0)
	srv := httptest.NewServer(ts.router)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/updates", "application/json; charset=utf-8", bytes.NewReader(jsonBody(t, baseRequest(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"version":"1.2.0"`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestHandlerDerivesPublicURL(t *testing.T) {
	snap := fixture([]release.Channel{baseChannel()}, nil)
	h := NewHandler(Config{Snapshot: func() *release.Snapshot { return snap }})
	r := chi.NewRouter()
	h.Routes(r)
	req := httptest.NewRequest(http.MethodPost, "http://capstan.local:8080/updates", bytes.NewReader(jsonBody(t, baseRequest(), nil)))
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if m := decodeBody(t, rec.Body.Bytes()); m["url"] != "http://capstan.local:8080/bundles/com.example.app/1.2.0.zip" {
		t.Fatalf("%v", m)
	}
}

// Concurrent checks while snapshots swap: run with -race.
func TestHandlerConcurrent(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, nil), 0)
	ids := deviceIDs(200)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			c := baseChannel()
			c.RolloutBundle, c.RolloutPercent = "1.2.1", float64(i*2)
			ts.snap.Store(fixture([]release.Channel{c}, nil))
		}
	}()
	errs := make(chan string, 4)
	for w := 0; w < 4; w++ {
		go func(w int) {
			for i, id := range ids {
				r := baseRequest()
				r.DeviceID = id
				r.VersionBuild = []string{"1.0.0", "1", "1.0", "2.0.0-rc.1"}[(i+w)%4]
				rec := ts.do(http.MethodPost, "/updates", jsonBody(t, r, nil), nil)
				if rec.Code != 200 {
					errs <- rec.Body.String()
					return
				}
			}
			errs <- ""
		}(w)
	}
	for w := 0; w < 4; w++ {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
	<-done
	total := 0.0
	for _, res := range []string{ResultUpdate, CodeUnderNative} {
		total += ts.count(testApp, res)
	}
	if total != float64(4*len(ids)) {
		t.Fatalf("counted %v checks, want %d", total, 4*len(ids))
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.observe(testApp, resUpdate)
	b.observe(testApp, resUpdate)
	mfs, _ := reg.Gather()
	if len(mfs) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 2 {
		t.Fatalf("%v", mfs)
	}
}
