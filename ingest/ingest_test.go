package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/ingest"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/update/release"
)

var fixedNow = time.UnixMilli(1_750_000_000_123)

type env struct {
	t   *testing.T
	bus *bus.Bus
	js  jetstream.JetStream
	h   *ingest.Handler
	reg *prometheus.Registry
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newEnv starts a real embedded JetStream with Capstan's streams and a
// handler publishing to it.
func newEnv(t *testing.T, l schema.StreamLimits, mod func(*ingest.Config)) *env {
	t.Helper()
	ctx := testCtx(t)
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	if err := schema.EnsureStreams(ctx, b.JetStream, l); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	e := &env{t: t, bus: b, js: b.JetStream, reg: prometheus.NewRegistry()}
	cfg := ingest.Config{
		JetStream:      b.JetStream,
		Registerer:     e.reg,
		Now:            func() time.Time { return fixedNow },
		PublishTimeout: 5 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	e.h = ingest.New(cfg)
	return e
}

type response struct {
	Code       int
	RetryAfter string
	Status     string `json:"status"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	Results    []struct {
		Index   int    `json:"index"`
		Status  string `json:"status"`
		Error   string `json:"error"`
		Message string `json:"message"`
	} `json:"results"`
	raw string
}

func (e *env) post(body string) response {
	e.t.Helper()
	return doPost(e.t, e.h, http.MethodPost, body)
}

func doPost(t *testing.T, h http.Handler, method, body string) response {
	t.Helper()
	req := httptest.NewRequest(method, "/stats", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r response
	r.raw = rec.Body.String()
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s /stats answered %d with non-JSON body %q: %v", method, rec.Code, r.raw, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	r.Code = rec.Code
	r.RetryAfter = rec.Header().Get("Retry-After")
	return r
}

type stored struct {
	subject string
	msgID   string
	seq     uint64 // of its message
	ev      schema.Event
}

// streamEvents reads every event in the events stream.
func (e *env) streamEvents() []stored {
	e.t.Helper()
	return readStream(e.t, e.js)
}

func readStream(t *testing.T, js jetstream.JetStream) []stored {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, schema.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if v := m.Header.Get(schema.EventsHeader); v != "2" {
			t.Fatalf("message %d has %s %q, want 2", seq, schema.EventsHeader, v)
		}
		evs, err := schema.DecodeBatch(m.Data)
		if err != nil {
			t.Fatalf("message %d does not decode as events: %v: %s", seq, err, m.Data)
		}
		for _, ev := range evs {
			out = append(out, stored{subject: m.Subject, msgID: m.Header.Get(jetstream.MsgIDHeader), seq: seq, ev: ev})
		}
	}
	return out
}

var idRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

const goodEvent = `{"platform":"ios","device_id":"2D1A5E3C-9B7F-4F7E-9E57-0C1B2A3D4E5F","app_id":"com.example.app",
 "custom_id":"","version_build":"1.4.0","version_code":"14","version_os":"17.5","version_name":"1.2.3",
 "plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"action":"set","old_version_name":"1.2.2",
 "defaultChannel":"beta","install_source":"testflight","key_id":"MIIBCgKCAQEAxyz12345",
 "metadata":{"reason":"auto","n":"3"},"timestamp":1749999999000}`

func event(action string, extra ...string) string {
	s := `{"platform":"android","device_id":"d-1","app_id":"com.example.app","version_build":"1.0.0",` +
		`"version_name":"1.0.1","plugin_version":"8.51.0","action":"` + action + `"`
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

func TestObjectBody(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	r := e.post(goodEvent)
	if r.Code != 200 || r.raw != `{"status":"ok"}` {
		t.Fatalf("answer %d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	if len(got) != 1 {
		t.Fatalf("stream holds %d events, want 1", len(got))
	}
	s := got[0]
	if s.subject != "capstan.events.com~example~app" || s.subject != schema.EventSubject("com.example.app") {
		t.Errorf("subject %q", s.subject)
	}
	ev := s.ev
	if !idRe.MatchString(ev.ID) || s.msgID != schema.BatchMsgID(slices.Values([]string{ev.ID})) {
		t.Errorf("id %q, Nats-Msg-Id %q", ev.ID, s.msgID)
	}
	want := schema.Event{
		ID: ev.ID, ReceivedMs: fixedNow.UnixMilli(), ClientMs: 1749999999000,
		AppID: "com.example.app", DeviceID: "2d1a5e3c-9b7f-4f7e-9e57-0c1b2a3d4e5f",
		Platform: "ios", Action: "set", VersionName: "1.2.3", OldVersionName: "1.2.2",
		VersionBuild: "1.4.0", VersionCode: "14", VersionOS: "17.5", PluginVersion: "8.51.23",
		Channel: "beta", InstallSource: "testflight", KeyID: "MIIBCgKCAQEAxyz12345",
		IsEmulator: false, IsProd: true, Metadata: map[string]string{"reason": "auto", "n": "3"},
	}
	if fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Errorf("stored event\n got %+v\nwant %+v", ev, want)
	}
	if v := metric(t, e.reg, "capstan_stats_events_total", "app=unknown", "action=set", "platform=ios", "scope=production"); v != 1 {
		t.Errorf("events_total{unknown,set,ios} = %v", v)
	}
	if v := metric(t, e.reg, "capstan_stats_requests_total", "code=200"); v != 1 {
		t.Errorf("requests_total{200} = %v", v)
	}
}

func TestDefaultsForMissingOptionalFields(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	r := e.post(`{"platform":"Electron","device_id":"ABC","app_id":"com.example.app","action":"app_launch_start"}`)
	if r.Code != 200 {
		t.Fatalf("answer %d %s", r.Code, r.raw)
	}
	ev := e.streamEvents()[0].ev
	if ev.Platform != "electron" || ev.DeviceID != "abc" || ev.VersionName != "unknown" ||
		!ev.IsProd || ev.IsEmulator || ev.ClientMs != 0 || ev.Metadata != nil {
		t.Fatalf("defaults not applied: %+v", ev)
	}
}

func TestArrayWithBadEvents(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	body := "[" + strings.Join([]string{
		event("set"), // 0 ok
		`{"platform":"ios","app_id":"com.example.app","action":"set"}`, // 1 missing device
		`5`,                                // 2 not an object
		event("set", `"metadata":{"a":1}`), // 3 wrong type
		event("download_fail", `"version_name":"2.0.0:assets/app.js"`), // 4 ok
		event("set", `"platform":"windows"`),                           // 5 bad platform
		`null`,                                                         // 6 not an object
		event("bad action!"),                                           // 7
		event("app_crash", `"is_prod":"yes"`),                          // 8 bad bool
		event("set_next", `"timestamp":"1749999999000"`),               // 9 ok (numeric string)
	}, ",\n") + "]"
	r := e.post(body)
	if r.Code != 200 || r.Status != "ok" {
		t.Fatalf("answer %d %s", r.Code, r.raw)
	}
	wantErr := map[int]string{
		1: "missing_device_id", 2: "invalid_event", 3: "invalid_event", 5: "invalid_platform",
		6: "invalid_event", 7: "invalid_action", 8: "invalid_event",
	}
	if len(r.Results) != 10 {
		t.Fatalf("%d results: %s", len(r.Results), r.raw)
	}
	for i, res := range r.Results {
		if res.Index != i {
			t.Errorf("result %d has index %d", i, res.Index)
		}
		if code, bad := wantErr[i]; bad {
			if res.Status != "error" || res.Error != code || res.Message == "" {
				t.Errorf("result %d = %+v, want error %s", i, res, code)
			}
		} else if res.Status != "ok" || res.Error != "" {
			t.Errorf("result %d = %+v, want ok", i, res)
		}
	}
	got := e.streamEvents()
	if len(got) != 3 {
		t.Fatalf("stream holds %d events, want the 3 good ones", len(got))
	}
	actions := []string{got[0].ev.Action, got[1].ev.Action, got[2].ev.Action}
	if strings.Join(actions, ",") != "set,download_fail,set_next" {
		t.Errorf("stored actions %v", actions)
	}
	if got[1].ev.VersionName != "2.0.0" || got[1].ev.FileName != "assets/app.js" {
		t.Errorf("version:file not split: %+v", got[1].ev)
	}
	if got[2].ev.ClientMs != 1749999999000 {
		t.Errorf("string timestamp: %d", got[2].ev.ClientMs)
	}
	if v := metric(t, e.reg, "capstan_stats_events_rejected_total", "reason=invalid_event"); v != 4 {
		t.Errorf("rejected{invalid_event} = %v, want 4", v)
	}
}

func TestEmptyArray(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	for _, body := range []string{"[]", " [ ]\n"} {
		r := e.post(body)
		if r.Code != 200 || r.raw != `{"status":"ok","results":[]}` {
			t.Fatalf("%q: %d %s", body, r.Code, r.raw)
		}
	}
}

func TestSingleBadEventIs400(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	tests := []struct{ body, code string }{
		{`{"platform":"ios","device_id":"d","action":"set"}`, "missing_app_id"},
		{`{"platform":"ios","app_id":"com.x.y","action":"set"}`, "missing_device_id"},
		{`{"platform":"ios","app_id":"com.x.y","device_id":"d"}`, "missing_action"},
		{`{"app_id":"com.x.y","device_id":"d","action":"set"}`, "missing_platform"},
		{`{"platform":"ios","app_id":"com x","device_id":"d","action":"set"}`, "invalid_app_id"},
		{`{"platform":"ios","app_id":"com.x","device_id":"a b","action":"set"}`, "invalid_device_id"},
		{`{"platform":"ios","app_id":"com.x","device_id":"d","action":"set","custom_id":"` + strings.Repeat("x", 300) + `"}`, "field_too_long"},
		{`{"platform":"ios","app_id":"com.x","device_id":"d","action":"set","device_id":["x"]}`, "invalid_event"},
	}
	for _, tt := range tests {
		r := e.post(tt.body)
		if r.Code != 400 || r.Error != tt.code || r.Message == "" {
			t.Errorf("%s: %d %s, want 400 %s", tt.body, r.Code, r.raw, tt.code)
		}
	}
	if n := len(e.streamEvents()); n != 0 {
		t.Fatalf("%d events stored from bad requests", n)
	}
}

func TestMetadataLimits(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	meta := func(n, klen, vlen int) string {
		var parts []string
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("k%0*d", max(klen-1, 1), i)
			parts = append(parts, fmt.Sprintf("%q:%q", k, strings.Repeat("é", vlen)))
		}
		return `"metadata":{` + strings.Join(parts, ",") + "}"
	}
	body := "[" + strings.Join([]string{
		event("set", meta(30, 64, 2048)), // at every limit: ok (é counts as one character)
		event("set", meta(31, 4, 1)),
		event("set", meta(1, 65, 1)),
		event("set", meta(1, 4, 2049)),
	}, ",") + "]"
	r := e.post(body)
	if r.Code != 200 {
		t.Fatalf("answer %d %s", r.Code, r.raw)
	}
	want := []string{"", "too_many_metadata_keys", "metadata_key_too_long", "metadata_value_too_long"}
	for i, w := range want {
		if r.Results[i].Error != w {
			t.Errorf("result %d: %+v, want %q", i, r.Results[i], w)
		}
	}
	got := e.streamEvents()
	if len(got) != 1 || len(got[0].ev.Metadata) != 30 {
		t.Fatalf("stored %d events", len(got))
	}
}

func TestUnknownActionKept(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	r := e.post(event("quantum_leap_v9"))
	if r.Code != 200 {
		t.Fatalf("answer %d %s", r.Code, r.raw)
	}
	if got := e.streamEvents(); len(got) != 1 || got[0].ev.Action != "quantum_leap_v9" {
		t.Fatalf("stored %+v", got)
	}
	if v := metric(t, e.reg, "capstan_stats_events_total", "app=unknown", "action=other", "platform=android", "scope=production"); v != 1 {
		t.Errorf("events_total{action=other} = %v", v)
	}
}

func TestBadBodies(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), func(c *ingest.Config) {
		c.MaxBodyBytes = 4096
		c.MaxEvents = 3
	})
	big := "[" + strings.Repeat(event("set")+",", 40) + event("set") + "]"
	tests := []struct {
		name, method, body string
		status             int
		code               string
	}{
		{"not json", "POST", "hello", 400, "invalid_json_body"},
		{"empty", "POST", "", 400, "invalid_json_body"},
		{"truncated object", "POST", `{"action":`, 400, "invalid_json_body"},
		{"truncated array", "POST", "[" + event("set"), 400, "invalid_json_body"},
		{"missing comma", "POST", "[" + event("set") + " " + event("set") + "]", 400, "invalid_json_body"},
		{"trailing data", "POST", "[" + event("set") + "] x", 400, "invalid_json_body"},
		{"two objects", "POST", event("set") + event("set"), 400, "invalid_json_body"},
		{"string", "POST", `"set"`, 400, "invalid_json_body"},
		{"null", "POST", `null`, 400, "invalid_json_body"},
		{"too large", "POST", big, 413, "payload_too_large"},
		{"too many events", "POST", "[" + strings.Repeat(event("set")+",", 3) + event("set") + "]", 413, "too_many_events"},
		{"get", "GET", "", 405, "method_not_allowed"},
		{"put", "PUT", event("set"), 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := doPost(t, e.h, tt.method, tt.body)
			if r.Code != tt.status || r.Error != tt.code || r.Message == "" {
				t.Fatalf("%d %s, want %d %s", r.Code, r.raw, tt.status, tt.code)
			}
		})
	}
	if n := len(e.streamEvents()); n != 0 {
		t.Fatalf("%d events stored from refused bodies", n)
	}
}

func TestTooLargeWithoutContentLength(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), func(c *ingest.Config) { c.MaxBodyBytes = 1000 })
	req := httptest.NewRequest("POST", "/stats", strings.NewReader(strings.Repeat(" ", 2000)+"[]"))
	req.ContentLength = -1 // chunked
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "payload_too_large") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestEventIdentityResentBatch(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	// The plugin's queue resends a batch verbatim when the answer is lost
	// or transient; its events are timestamped. Two identical events in
	// one batch are still two.
	batch := "[" + strings.Join([]string{event("app_moved_to_foreground", `"timestamp":1749999999000`),
		event("app_moved_to_foreground", `"timestamp":1749999999000`),
		event("set", `"timestamp":1749999999000`), event("set", `"timestamp":1749999999001`)}, ",") + "]"
	for i := 0; i < 3; i++ {
		if r := e.post(batch); r.Code != 200 {
			t.Fatalf("send %d: %d %s", i, r.Code, r.raw)
		}
	}
	// The same events in a later batch with a new one in front keep their
	// ids, so ClickHouse (event_id) drops them; JetStream only drops
	// exact resends of a request.
	later := "[" + strings.Join([]string{event("app_launch_start", `"timestamp":1750000000000`),
		event("set", `"timestamp":1749999999000`), event("set", `"timestamp":1749999999001`)}, ",") + "]"
	if r := e.post(later); r.Code != 200 {
		t.Fatalf("later: %d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	if len(got) != 7 {
		t.Fatalf("stream holds %d events, want 4 + 3", len(got))
	}
	ids := map[string]bool{}
	msgs := map[uint64][]string{}
	for _, s := range got {
		ids[s.ev.ID] = true
		msgs[s.seq] = append(msgs[s.seq], s.ev.ID)
	}
	if len(ids) != 5 || len(msgs) != 2 {
		t.Fatalf("%d distinct ids in %d messages, want 5 in 2", len(ids), len(msgs))
	}
	for _, s := range got {
		if want := schema.BatchMsgID(slices.Values(msgs[s.seq])); s.msgID != want {
			t.Fatalf("message %d: msg id %s, want %s", s.seq, s.msgID, want)
		}
	}
	if v := metric(t, e.reg, "capstan_stats_events_total", "app=unknown", "action=set", "platform=android", "scope=production"); v != 4 {
		t.Errorf("events_total{set} = %v, want 4 (exact resends not counted)", v)
	}
}

// Timestamp-less single objects (Android's download worker,
// rate_limit_reached) are never resent by the plugin: identical ones in
// separate requests are separate events.
func TestEventIdentityTimestampless(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	ev := event("download_manifest_start")
	for i := 0; i < 2; i++ {
		if r := e.post(ev); r.Code != 200 {
			t.Fatalf("send %d: %d %s", i, r.Code, r.raw)
		}
	}
	// Inside one request too.
	if r := e.post("[" + ev + "," + ev + "]"); r.Code != 200 {
		t.Fatalf("array: %d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	if len(got) != 4 {
		t.Fatalf("stream holds %d events, want 4", len(got))
	}
	ids, msgIDs := map[string]bool{}, map[string]uint64{}
	for _, s := range got {
		if ids[s.ev.ID] {
			t.Fatalf("id %s given twice", s.ev.ID)
		}
		ids[s.ev.ID] = true
		if seq, ok := msgIDs[s.msgID]; ok && seq != s.seq {
			t.Fatalf("msg id %s given to messages %d and %d", s.msgID, seq, s.seq)
		}
		msgIDs[s.msgID] = s.seq
	}
	if len(msgIDs) != 3 {
		t.Errorf("%d messages, want 3 (one per request)", len(msgIDs))
	}
	if v := metric(t, e.reg, "capstan_stats_events_total", "app=unknown", "action=download_manifest_start", "platform=android", "scope=production"); v != 4 {
		t.Errorf("events_total = %v, want 4", v)
	}
}

func TestPublishFailureStreamFull(t *testing.T) {
	l := schema.DefaultStreamLimits()
	l.MaxMsgs = 1 // a message per request: the first fills it
	e := newEnv(t, l, nil)
	first := "[" + strings.Repeat(event("set", `"timestamp":1`)+",", 0) + event("set", `"timestamp":1`) + "," +
		event("set", `"timestamp":2`) + "," + event("set", `"timestamp":3`) + "]"
	if r := e.post(first); r.Code != 200 {
		t.Fatalf("first: %d %s", r.Code, r.raw)
	}
	var evs []string
	for i := 10; i < 14; i++ {
		evs = append(evs, event("set", `"timestamp":`+strconv.Itoa(i)))
	}
	second := "[" + strings.Join(evs, ",") + "]"
	r := e.post(second)
	if r.Code != 429 || r.Error != "stats_unavailable" || r.Message == "" || r.RetryAfter == "" {
		t.Fatalf("full stream: %d %q %s", r.Code, r.RetryAfter, r.raw)
	}
	if n, err := strconv.Atoi(r.RetryAfter); err != nil || n < 2 || n > 4 {
		t.Fatalf("Retry-After %q is not 2 to 4 seconds", r.RetryAfter)
	}
	if got := e.streamEvents(); len(got) != 3 {
		t.Fatalf("stream holds %d, want 3 (nothing discarded)", len(got))
	}
	if v := metric(t, e.reg, "capstan_stats_publish_errors_total"); v != 4 {
		t.Errorf("publish errors = %v, want 4", v)
	}
	// Once there is room the device's retry of the same batch gets in.
	l.MaxMsgs = 100
	if err := schema.EnsureStreams(testCtx(t), e.js, l); err != nil {
		t.Fatal(err)
	}
	if r := e.post(second); r.Code != 200 {
		t.Fatalf("retry: %d %s", r.Code, r.raw)
	}
	if got := e.streamEvents(); len(got) != 7 {
		t.Fatalf("stream holds %d, want 7", len(got))
	}
}

func TestPublishFailureNoJetStream(t *testing.T) {
	h := ingest.New(ingest.Config{})
	r := doPost(t, h, "POST", event("set"))
	// Never too_many_requests: that makes the plugin send rate_limit_reached.
	if r.Code != 429 || r.Error != "stats_unavailable" || (r.RetryAfter != "2" && r.RetryAfter != "3" && r.RetryAfter != "4") {
		t.Fatalf("%d %q %s", r.Code, r.RetryAfter, r.raw)
	}
	// Validation still runs first.
	if r := doPost(t, h, "POST", "nope"); r.Code != 400 {
		t.Fatalf("%d %s", r.Code, r.raw)
	}
}

func TestPublishFailureMissingStream(t *testing.T) {
	ctx := testCtx(t)
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	// No EnsureStreams: nothing listens on the subject.
	h := ingest.New(ingest.Config{JetStream: b.JetStream, PublishTimeout: 3 * time.Second})
	if r := doPost(t, h, "POST", "["+event("set")+"]"); r.Code != 429 || r.RetryAfter == "" {
		t.Fatalf("%d %q %s", r.Code, r.RetryAfter, r.raw)
	}
}

func TestJetStreamDownThenBack(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(dir, "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	url := srv.ClientURL()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	})
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if err := schema.EnsureStreams(ctx, js, schema.DefaultStreamLimits()); err != nil {
		t.Fatal(err)
	}
	h := ingest.New(ingest.Config{JetStream: js, PublishTimeout: 2 * time.Second})
	if r := doPost(t, h, "POST", event("set", `"timestamp":1`)); r.Code != 200 {
		t.Fatalf("before: %d %s", r.Code, r.raw)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	stopped = true
	waitStatus(t, nc, func(s nats.Status) bool { return s != nats.CONNECTED })
	batch := "[" + event("set", `"timestamp":2`) + "," + event("set", `"timestamp":3`) + "]"
	r := doPost(t, h, "POST", batch)
	if r.Code != 429 || r.RetryAfter == "" || r.Error != "stats_unavailable" {
		t.Fatalf("while down: %d %q %s", r.Code, r.RetryAfter, r.raw)
	}

	srv2, err := bus.StartEmbedded(dir, addr)
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	t.Cleanup(func() { srv2.Shutdown(); srv2.WaitForShutdown() })
	waitStatus(t, nc, func(s nats.Status) bool { return s == nats.CONNECTED })
	// JetStream may need a moment after the listener is up; the device
	// retries until it gets a 2xx, so does the test (bounded).
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = doPost(t, h, "POST", batch)
		if r.Code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.Code != 200 {
		t.Fatalf("after restart: %d %s", r.Code, r.raw)
	}
	got := readStream(t, js)
	if len(got) != 3 {
		t.Fatalf("stream holds %d events after restart, want 3", len(got))
	}
}

func waitStatus(t *testing.T, nc *nats.Conn, ok func(nats.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok(nc.Status()) {
		if time.Now().After(deadline) {
			t.Fatalf("connection status stuck at %v", nc.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChannelAndAppLabelFromSnapshot(t *testing.T) {
	b := release.NewBuilder(release.Empty())
	b.PutApp(release.App{ID: "com.example.app"})
	prod := release.NewChannel("com.example.app", "production")
	prod.Public = true
	b.PutChannel(prod)
	qa := release.NewChannel("com.example.app", "qa")
	b.PutChannel(qa)
	b.PutOverride(release.Override{AppID: "com.example.app", DeviceID: "pinned", Channel: "qa"})
	snap := b.Build()
	e := newEnv(t, schema.DefaultStreamLimits(), func(c *ingest.Config) {
		c.Snapshot = func() *release.Snapshot { return snap }
	})
	body := "[" + strings.Join([]string{
		event("set"), // no defaultChannel → the public channel
		event("set", `"device_id":"PINNED"`, `"defaultChannel":"beta"`), // override wins
		event("set", `"device_id":"d-2"`, `"defaultChannel":"nightly"`), // no such channel
		event("set", `"app_id":"com.other.app"`),                        // app the snapshot lacks
	}, ",") + "]"
	if r := e.post(body); r.Code != 200 {
		t.Fatalf("%d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	var chans []string
	for _, s := range got {
		chans = append(chans, s.ev.Channel)
	}
	// d-2 asked for a channel that does not exist: it is served (and so
	// counted) by the public one; the unknown app has nothing to resolve.
	if strings.Join(chans, ",") != "production,qa,production," {
		t.Errorf("channels %q", chans)
	}
	if v := metric(t, e.reg, "capstan_stats_events_total", "app=com.example.app", "action=set", "platform=android", "scope=production"); v != 3 {
		t.Errorf("events_total{app=com.example.app} = %v, want 3", v)
	}
	if v := metric(t, e.reg, "capstan_stats_events_total", "app=unknown", "action=set", "platform=android", "scope=production"); v != 1 {
		t.Errorf("events_total{app=unknown} = %v, want 1", v)
	}
}

// metric reads one series ("label=value" pairs) of a counter family.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// /stats takes numbers and booleans where strings belong, like /updates;
// an object there fails only its own event.
func TestLenientStringsThroughHandler(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	body := "[" + strings.Join([]string{
		event("set", `"version_code":12`, `"custom_id":true`, `"timestamp":1`),
		event("set", `"version_build":{"major":1}`, `"timestamp":2`),
		event("set", `"version_os":14`, `"timestamp":3`),
	}, ",") + "]"
	r := e.post(body)
	if r.Code != 200 || len(r.Results) != 3 || r.Results[0].Status != "ok" || r.Results[2].Status != "ok" ||
		r.Results[1].Error != "invalid_event" || !strings.Contains(r.Results[1].Message, "version_build") {
		t.Fatalf("%d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	if len(got) != 2 || got[0].ev.VersionCode != "12" || got[0].ev.CustomID != "true" || got[1].ev.VersionOS != "14" {
		t.Fatalf("stored %+v", got)
	}
}

// Release-health alerts count production devices only: the scope label
// tells them apart, and old plugins' download_fail is kept but ignored.
func TestScopeMetric(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	body := "[" + strings.Join([]string{
		event("download_fail", `"timestamp":1`),
		event("download_fail", `"timestamp":2`, `"is_emulator":true`),
		event("download_fail", `"timestamp":3`, `"is_prod":false`),
		event("download_fail", `"timestamp":4`, `"plugin_version":"7.16.0"`),
	}, ",") + "]"
	if r := e.post(body); r.Code != 200 {
		t.Fatalf("%d %s", r.Code, r.raw)
	}
	for scope, want := range map[string]float64{"production": 1, "other": 2, "ignored": 1} {
		if v := metric(t, e.reg, "capstan_stats_events_total", "app=unknown", "action=download_fail", "platform=android", "scope="+scope); v != want {
			t.Errorf("scope %s: %v, want %v", scope, v, want)
		}
	}
	got := e.streamEvents()
	if len(got) != 4 || !got[3].ev.Ignored || got[0].ev.Ignored {
		t.Fatalf("stored %+v", got)
	}
}

// A request is one message per run of events of one app, in order.
func TestOneMessagePerAppRun(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	other := `"app_id":"com.other.app"`
	body := "[" + strings.Join([]string{
		event("set", `"timestamp":1`), event("set", `"timestamp":2`), `{"bad":true}`,
		event("set", `"timestamp":3`, other), event("set", `"timestamp":4`),
	}, ",") + "]"
	if r := e.post(body); r.Code != 200 {
		t.Fatalf("%d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	var seqs []uint64
	var apps []string
	for _, s := range got {
		if len(seqs) == 0 || seqs[len(seqs)-1] != s.seq {
			seqs = append(seqs, s.seq)
			apps = append(apps, s.ev.AppID)
		}
		if s.subject != schema.EventSubject(s.ev.AppID) {
			t.Errorf("event of %s in message on %s", s.ev.AppID, s.subject)
		}
	}
	if len(got) != 4 || !slices.Equal(apps, []string{"com.example.app", "com.other.app", "com.example.app"}) {
		t.Fatalf("%d events in messages of %v", len(got), apps)
	}
	for i, want := range []int64{1, 2, 3, 4} {
		if got[i].ev.ClientMs != want {
			t.Fatalf("event %d has timestamp %d, want %d (order kept)", i, got[i].ev.ClientMs, want)
		}
	}
}

// A request too large for one message is split, every message within
// schema.MaxBatchBytes plus one event.
func TestLargeRequestSplit(t *testing.T) {
	e := newEnv(t, schema.DefaultStreamLimits(), nil)
	var meta []string
	for k := 0; k < 30; k++ {
		meta = append(meta, fmt.Sprintf(`"k%d":"%s"`, k, strings.Repeat("x", 2000)))
	}
	var evs []string
	for i := 0; i < 12; i++ {
		evs = append(evs, event("set", fmt.Sprintf(`"timestamp":%d`, i+1), `"metadata":{`+strings.Join(meta, ",")+`}`))
	}
	if r := e.post("[" + strings.Join(evs, ",") + "]"); r.Code != 200 {
		t.Fatalf("%d %s", r.Code, r.raw)
	}
	got := e.streamEvents()
	msgs := map[uint64]bool{}
	for _, s := range got {
		msgs[s.seq] = true
	}
	if len(got) != 12 || len(msgs) < 3 {
		t.Fatalf("%d events in %d messages, want 12 in at least 3", len(got), len(msgs))
	}
}
