package admin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestParseFleetWindow(t *testing.T) {
	for _, tc := range []struct {
		query    string
		withStep bool
		want     fleetWindow
		code     string
	}{
		{"", true, fleetWindow{since: 24 * time.Hour, step: time.Hour}, ""},
		{"since=90m&step=5m&channel=beta&include_dev=true", true, fleetWindow{since: 90 * time.Minute, step: 5 * time.Minute, channel: "beta", includeDev: true}, ""},
		{"since=2160h", false, fleetWindow{since: 90 * 24 * time.Hour, step: time.Hour}, ""},
		{"include_dev=0", false, fleetWindow{since: 24 * time.Hour, step: time.Hour}, ""},
		{"since=2160h1s", false, fleetWindow{}, "invalid_since"},
		{"since=0s", false, fleetWindow{}, "invalid_since"},
		{"since=-1h", false, fleetWindow{}, "invalid_since"},
		{"since=1d", false, fleetWindow{}, "invalid_since"},
		{"step=30s", true, fleetWindow{}, "invalid_step"},
		{"step=90s", true, fleetWindow{}, "invalid_step"},
		{"step=-1h", true, fleetWindow{}, "invalid_step"},
		{"step=often", true, fleetWindow{}, "invalid_step"},
		{"step=often", false, fleetWindow{since: 24 * time.Hour, step: time.Hour}, ""}, // health has no step
		{"include_dev=maybe", false, fleetWindow{}, "invalid_include_dev"},
	} {
		v, _ := url.ParseQuery(tc.query)
		got, err := parseFleetWindow(v, tc.withStep)
		switch {
		case tc.code != "":
			if err == nil || err.code != tc.code || err.status != 400 || err.message == "" {
				t.Errorf("%q: %v, want %s", tc.query, err, tc.code)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case got != tc.want:
			t.Errorf("%q: %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestDeviceInfoShape(t *testing.T) {
	seen := time.Date(2026, 1, 1, 10, 0, 0, 500e6, time.FixedZone("x", 3600))
	known := schema.DeviceState{Known: true, LastSeen: seen, Platform: "android", VersionName: "1.2.0", VersionBuild: "5", PluginVersion: "8.51.23",
		VersionOS: "14", Channel: "production", IsProd: true}
	got := deviceInfo("com.x", "d1", "beta", known)
	want := DeviceInfo{App: "com.x", DeviceID: "d1", Pin: "beta", Known: true, LastSeen: "2026-01-01T09:00:00.5Z", Platform: "android",
		VersionName: "1.2.0", VersionBuild: "5", PluginVersion: "8.51.23", VersionOS: "14", Channel: "production", IsProd: true,
		RecentEvents: []schema.DeviceEvent{}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("known device\n got %+v\nwant %+v", got, want)
	}
	// Pinned, never reported: the ClickHouse fields stay empty.
	got = deviceInfo("com.x", "d2", "beta", schema.DeviceState{})
	if want := (DeviceInfo{App: "com.x", DeviceID: "d2", Pin: "beta", RecentEvents: []schema.DeviceEvent{}}); !reflect.DeepEqual(got, want) {
		t.Errorf("pinned only %+v", got)
	}
}

// fleetEvents are a small fleet of com.example.app, inserted twice as a
// consumer retrying its batch does.
func insertFleet(t *testing.T, s *chtest.Server, db string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	conn := s.Conn(t, "")
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{Database: db}); err != nil {
		t.Fatal(err)
	}
	n := 0
	ev := func(device, action, version, old string, ago time.Duration, tweak ...func(*schema.Event)) *schema.Event {
		n++
		e := &schema.Event{ID: fmt.Sprintf("%032x", n), ReceivedMs: now.Add(-ago).UnixMilli(), AppID: "com.example.app", DeviceID: device,
			Platform: "android", Action: action, VersionName: version, OldVersionName: old, VersionBuild: "1.0.0", VersionOS: "14",
			PluginVersion: "8.51.23", Channel: "production", IsProd: true}
		for _, f := range tweak {
			f(e)
		}
		return e
	}
	events := []*schema.Event{
		ev("d-1", "set", "1.2.0", "1.1.0", 50*time.Minute, func(e *schema.Event) { e.CustomID = "user-7" }),
		ev("d-1", "app_launch_ready", "1.2.0", "", 40*time.Minute, func(e *schema.Event) { e.CustomID = "user-7" }),
		ev("d-2", "set", "1.2.0", "1.1.0", 30*time.Minute),
		ev("d-2", "update_fail", "1.2.0", "", 29*time.Minute),
		ev("d-3", "app_launch_ready", "1.1.0", "", 20*time.Minute),
		ev("d-3", "app_crash", "1.1.0", "", 19*time.Minute),
		ev("emu", "set", "1.2.0", "", 10*time.Minute, func(e *schema.Event) { e.IsEmulator = true }),
		ev("d-1", "set", "1.2.0", "", 10*time.Minute, func(e *schema.Event) { e.AppID = "com.other.app" }),
	}
	for range 2 {
		b, err := conn.PrepareBatch(ctx, schema.InsertSQL(db, schema.FlavorLegacy))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if err := schema.AppendEvent(b, e, schema.FlavorLegacy); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFleetEndpoints(t *testing.T) {
	s := chtest.Shared(t)
	db := chtest.DBName(t)
	insertFleet(t, s, db, time.Now())
	conn := s.Conn(t, db)
	fleet := schema.NewFleetReader(func(context.Context) (schema.Querier, error) { return conn, nil }, "")
	e := newEnv(t, func(c *Config) { c.Fleet = fleet })
	const app = "com.example.app"
	e.app(t, app)
	e.app(t, "com.other.app")
	if _, err := e.client.SetChannel(e.ctx, app, "beta", ChannelPatch{}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"D-1", "pinned-only"} {
		if _, err := e.client.SetDeviceChannel(e.ctx, app, dev, "beta"); err != nil {
			t.Fatal(err)
		}
	}

	// Device ids are normalised as the pin routes do.
	d := must[DeviceInfo](t)(e.client.Device(e.ctx, app, "D-1"))
	if d.App != app || d.DeviceID != "d-1" || d.Pin != "beta" || !d.Known || d.VersionName != "1.2.0" || d.Platform != "android" ||
		d.PluginVersion != "8.51.23" || d.VersionOS != "14" || d.Channel != "production" || d.CustomID != "user-7" || !d.IsProd || d.IsEmulator {
		t.Errorf("d-1 %+v", d)
	}
	if ls, err := time.Parse(time.RFC3339, d.LastSeen); err != nil || time.Since(ls) < 39*time.Minute || time.Since(ls) > 41*time.Minute {
		t.Errorf("d-1 last_seen %q, %v", d.LastSeen, err)
	}
	if len(d.RecentEvents) != 2 || d.RecentEvents[0].Action != "app_launch_ready" || d.RecentEvents[1].Action != "set" || d.RecentEvents[1].OldVersionName != "1.1.0" {
		t.Errorf("d-1 events (inserted twice, each once newest first) %+v", d.RecentEvents)
	}
	d = must[DeviceInfo](t)(e.client.Device(e.ctx, app, "d-2"))
	if d.Pin != "" || !d.Known || len(d.RecentEvents) != 2 || !d.RecentEvents[0].Failure {
		t.Errorf("d-2 %+v", d)
	}
	d = must[DeviceInfo](t)(e.client.Device(e.ctx, app, "pinned-only"))
	if want := (DeviceInfo{App: app, DeviceID: "pinned-only", Pin: "beta", RecentEvents: []schema.DeviceEvent{}}); !reflect.DeepEqual(d, want) {
		t.Errorf("pinned-only %+v", d)
	}
	// The raw answer has the console's field names.
	status, _, _, body := e.raw(t, "GET", "/api/v1/apps/"+app+"/devices/pinned-only", testToken, "", nil)
	if status != 200 || !strings.Contains(string(body), `"known": false`) || !strings.Contains(string(body), `"last_seen": ""`) || !strings.Contains(string(body), `"recent_events": []`) {
		t.Errorf("pinned-only raw %d %s", status, body)
	}
	_, err := e.client.Device(e.ctx, app, "nobody")
	wantAPIError(t, err, 404, "unknown_device")
	_, err = e.client.Device(e.ctx, "com.example.none", "d-1")
	wantAPIError(t, err, 404, "app_not_found")
	_, err = e.client.Device(e.ctx, app, "bad id!")
	wantAPIError(t, err, 400, "invalid_device_id")

	// Health: the numbers of `capstan stats --json` for the app.
	h := must[HealthReport](t)(e.client.Health(e.ctx, app, FleetParams{}))
	if h.Until.Sub(h.Since) != 24*time.Hour {
		t.Errorf("health window %s..%s", h.Since, h.Until)
	}
	want, err := schema.Report(e.ctx, conn, schema.ReportQuery{App: app, Since: h.Since, Until: h.Until})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.Versions, want) || len(want) != 2 || want[1].Installs != 2 || want[1].Failures != 1 || want[0].Failures != 1 {
		t.Errorf("health %+v\nwant %+v", h.Versions, want)
	}
	h = must[HealthReport](t)(e.client.Health(e.ctx, app, FleetParams{Since: time.Hour, IncludeDev: true}))
	if len(h.Versions) != 2 || h.Versions[1].Installs != 3 {
		t.Errorf("health with dev devices %+v", h.Versions)
	}
	if h = must[HealthReport](t)(e.client.Health(e.ctx, app, FleetParams{Channel: "beta"})); h.Versions == nil || len(h.Versions) != 0 {
		t.Errorf("health of an empty channel %+v", h)
	}

	// Timeline: aligned buckets, zeros filled, sums equal to the report.
	tl := must[schema.Timeline](t)(e.client.Timeline(e.ctx, app, FleetParams{Since: 3 * time.Hour, Step: 30 * time.Minute}))
	if tl.StepSeconds != 1800 || len(tl.Buckets) < 6 || len(tl.Buckets) > 7 || tl.Since.Unix()%1800 != 0 || !tl.Buckets[0].Equal(tl.Since) || len(tl.Series) != 2 {
		t.Fatalf("timeline %+v", tl)
	}
	for i, b := range tl.Buckets {
		if b.Unix() != tl.Since.Unix()+int64(i)*1800 {
			t.Errorf("bucket %d at %s", i, b)
		}
	}
	for i, s := range tl.Series {
		for _, arr := range [][]uint64{s.ActiveDevices, s.Installs, s.Failures, s.Rollbacks, s.Crashes} {
			if len(arr) != len(tl.Buckets) {
				t.Fatalf("%s: %d values for %d buckets", s.Version, len(arr), len(tl.Buckets))
			}
		}
		r := want[i]
		if s.Version != r.Version || sum(s.Installs) != r.Installs || sum(s.Failures) != r.Failures || sum(s.Rollbacks) != r.Rollbacks {
			t.Errorf("series %+v disagrees with report row %+v", s, r)
		}
	}
	if sum(tl.Series[0].Crashes) != 1 || sum(tl.Series[1].Crashes) != 0 {
		t.Errorf("crashes %+v", tl.Series)
	}

	// Parameter errors, checked before ClickHouse is asked.
	for path, code := range map[string]string{
		"/health?since=91d":                  "invalid_since",
		"/health?since=2161h":                "invalid_since",
		"/health?include_dev=yes":            "invalid_include_dev",
		"/health/timeline?since=soon":        "invalid_since",
		"/health/timeline?step=30s":          "invalid_step",
		"/health/timeline?step=0":            "invalid_step",
		"/health/timeline?since=48h&step=1m": "too_many_buckets",
		"/health/timeline?include_dev=2":     "invalid_include_dev",
	} {
		status, _, eb, _ := e.raw(t, "GET", "/api/v1/apps/"+app+path, testToken, "", nil)
		if status != 400 || eb.Error != code || eb.Message == "" {
			t.Errorf("%s: %d %+v, want 400 %s", path, status, eb, code)
		}
	}
	for _, path := range []string{"/health", "/health/timeline"} {
		status, _, eb, _ := e.raw(t, "GET", "/api/v1/apps/com.example.none"+path, testToken, "", nil)
		if status != 404 || eb.Error != "app_not_found" {
			t.Errorf("%s of an unknown app: %d %+v", path, status, eb)
		}
	}
	if _, err := e.client.Timeline(e.ctx, app, FleetParams{Since: 90 * 24 * time.Hour, Step: 24 * time.Hour}); err != nil {
		t.Errorf("90 daily buckets: %v", err)
	}
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}

// Without a reader, or with ClickHouse failing, the answers say so.
func TestFleetUnavailable(t *testing.T) {
	const app = "com.example.app"
	calls := map[string]func(e *env) error{
		"device":   func(e *env) error { _, err := e.client.Device(e.ctx, app, "d-1"); return err },
		"health":   func(e *env) error { _, err := e.client.Health(e.ctx, app, FleetParams{}); return err },
		"timeline": func(e *env) error { _, err := e.client.Timeline(e.ctx, app, FleetParams{}); return err },
	}
	s := chtest.Shared(t)
	broken := chtest.DBName(t)
	bconn := s.Conn(t, broken)
	if err := bconn.Exec(context.Background(), "CREATE TABLE capstan_devices (x UInt8) ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		fleet  Fleet
		status int
		code   string
		only   string // just this call
	}{
		{"no reader", nil, 503, "stats_unavailable", ""},
		{"unreachable", schema.NewFleetReader(func(ctx context.Context) (schema.Querier, error) {
			return schema.OpenClickHouse(ctx, "clickhouse://default@127.0.0.1:1/x?dial_timeout=200ms")
		}, ""), 503, "stats_error", ""},
		{"no tables", schema.NewFleetReader(func(context.Context) (schema.Querier, error) { return s.Conn(t, chtest.DBName(t)), nil }, ""), 503, "stats_error", ""},
		{"refused", schema.NewFleetReader(func(context.Context) (schema.Querier, error) { return bconn, nil }, ""), 502, "stats_error", "device"},
	} {
		e := newEnv(t, func(c *Config) { c.Fleet = tc.fleet })
		e.app(t, app)
		for name, call := range calls {
			if tc.only != "" && name != tc.only {
				continue
			}
			err := call(e)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Errorf("%s, %s: %v; want %d %s", tc.name, name, err, tc.status, tc.code)
			}
		}
	}
}
