package schema_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/schema/chtest/chdbtest"
)

func TestTimelineBuckets(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		since, until string
		step         time.Duration
		start        string
		n            int
	}{
		{"2026-01-01T10:30:00Z", "2026-01-02T10:30:00Z", time.Hour, "2026-01-01T10:00:00Z", 25},
		{"2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", time.Hour, "2026-01-01T10:00:00Z", 24},
		{"2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", time.Hour, "2026-01-01T10:00:00Z", 1},
		{"2026-01-01T10:07:10Z", "2026-01-01T10:20:00Z", 5 * time.Minute, "2026-01-01T10:05:00Z", 3},
		{"2026-01-01T10:07:10Z", "2026-01-01T10:20:01Z", 5 * time.Minute, "2026-01-01T10:05:00Z", 4},
		{"2026-01-01T10:00:00Z", "2026-01-01T10:00:30Z", time.Minute, "2026-01-01T10:00:00Z", 1},
		// A day step aligns to UTC midnight.
		{"2026-01-03T15:00:00Z", "2026-01-05T01:00:00Z", 24 * time.Hour, "2026-01-03T00:00:00Z", 3},
	} {
		start, n := schema.TimelineBuckets(at(tc.since), at(tc.until), tc.step)
		if !start.Equal(at(tc.start)) || n != tc.n {
			t.Errorf("TimelineBuckets(%s, %s, %s) = %s, %d; want %s, %d", tc.since, tc.until, tc.step, start.Format(time.RFC3339), n, tc.start, tc.n)
		}
	}
	// Sub-second ends still get the bucket their last minute falls in.
	start, n := schema.TimelineBuckets(at("2026-01-01T10:00:00Z"), at("2026-01-01T11:00:00Z").Add(time.Millisecond), time.Hour)
	if !start.Equal(at("2026-01-01T10:00:00Z")) || n != 2 {
		t.Errorf("sub-second until: %s %d", start, n)
	}
}

func TestShapeTimeline(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	until := start.Add(150 * time.Minute)
	rows := []schema.TimelineRow{
		{Bucket: start, Version: "1.1.0", ActiveDevices: 5, Installs: 2, Crashes: 1},
		{Bucket: start.Add(2 * time.Hour), Version: "1.1.0", ActiveDevices: 7, Failures: 3, Rollbacks: 1},
		{Bucket: start.Add(time.Hour), Version: "1.0.0", ActiveDevices: 9},
		{Bucket: start.Add(3 * time.Hour), Version: "1.0.0", ActiveDevices: 100},  // after the last bucket
		{Bucket: start.Add(-time.Hour), Version: "0.9.0", ActiveDevices: 100},     // before the first
		{Bucket: start.Add(90 * time.Minute), Version: "0.9.0", ActiveDevices: 1}, // not on a bucket start
	}
	got := schema.ShapeTimeline(start, until, time.Hour, 3, rows)
	want := schema.Timeline{
		Since: start, Until: until, StepSeconds: 3600,
		Buckets: []time.Time{start, start.Add(time.Hour), start.Add(2 * time.Hour)},
		Series: []schema.TimelineSeries{
			{Version: "1.0.0", ActiveDevices: []uint64{0, 9, 0}, Installs: []uint64{0, 0, 0}, Failures: []uint64{0, 0, 0}, Rollbacks: []uint64{0, 0, 0}, Crashes: []uint64{0, 0, 0}},
			{Version: "1.1.0", ActiveDevices: []uint64{5, 0, 7}, Installs: []uint64{2, 0, 0}, Failures: []uint64{0, 0, 3}, Rollbacks: []uint64{0, 0, 1}, Crashes: []uint64{1, 0, 0}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ShapeTimeline\n got %+v\nwant %+v", got, want)
	}
	empty := schema.ShapeTimeline(start, until, time.Hour, 2, nil)
	if len(empty.Buckets) != 2 || empty.Series == nil || len(empty.Series) != 0 {
		t.Errorf("empty timeline %+v", empty)
	}
}

func TestMergeDevice(t *testing.T) {
	t1 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Minute)
	row := &schema.DeviceState{LastSeen: t1, Platform: "ios", VersionName: "1.1.0", VersionBuild: "2.0", Channel: "beta", IsProd: true}
	fail := schema.DeviceEvent{EventID: "b", ReceivedAt: t2, Action: "update_fail", VersionName: "1.2.0", Platform: "android", PluginVersion: "8.51.23", VersionBuild: "3.0", IsProd: true}
	old := schema.DeviceEvent{EventID: "a", ReceivedAt: t1.Add(-time.Hour), Action: "set", VersionName: "1.1.0"}
	for _, tc := range []struct {
		name   string
		row    *schema.DeviceState
		events []schema.DeviceEvent
		want   schema.DeviceState
	}{
		{"nothing", nil, nil, schema.DeviceState{Events: []schema.DeviceEvent{}}},
		{"row only", row, nil, schema.DeviceState{Known: true, LastSeen: t1, Platform: "ios", VersionName: "1.1.0", VersionBuild: "2.0", Channel: "beta", IsProd: true, Events: []schema.DeviceEvent{}}},
		// A newer failure moves last seen, not the version the device runs.
		{"row and newer event", row, []schema.DeviceEvent{fail, old}, schema.DeviceState{Known: true, LastSeen: t2, Platform: "ios", VersionName: "1.1.0", VersionBuild: "2.0", Channel: "beta", IsProd: true, Events: []schema.DeviceEvent{fail, old}}},
		{"row newer than events", row, []schema.DeviceEvent{old}, schema.DeviceState{Known: true, LastSeen: t1, Platform: "ios", VersionName: "1.1.0", VersionBuild: "2.0", Channel: "beta", IsProd: true, Events: []schema.DeviceEvent{old}}},
		// Only failures: described by the newest event, running nothing known.
		{"events only", nil, []schema.DeviceEvent{fail}, schema.DeviceState{Known: true, LastSeen: t2, Platform: "android", VersionBuild: "3.0", PluginVersion: "8.51.23", IsProd: true, Events: []schema.DeviceEvent{fail}}},
	} {
		if got := schema.MergeDevice(tc.row, tc.events); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestFleetSQL(t *testing.T) {
	q := schema.DeviceQuery{Database: "db", App: "com.x", DeviceID: `d' OR 1=1`}
	for _, sql := range []string{schema.DeviceStateSQL(q), schema.DeviceEventsSQL(q)} {
		if !strings.Contains(sql, `device_id = 'd\' OR 1=1'`) || !strings.Contains(sql, "app_id = 'com.x'") || !strings.Contains(sql, "`db`.capstan_") {
			t.Errorf("device filter not rendered as literals:\n%s", sql)
		}
	}
	if !strings.Contains(schema.DeviceEventsSQL(q), "LIMIT 50") || !strings.Contains(schema.DeviceEventsSQL(schema.DeviceQuery{Events: 3}), "LIMIT 3") {
		t.Error("event limit")
	}
	tl := schema.TimelineSQL(schema.TimelineQuery{ReportQuery: schema.ReportQuery{App: "com.x", Since: time.Unix(3600, 0), Until: time.Unix(7200, 0)}, Step: 5 * time.Minute})
	for _, want := range []string{"intDiv(toUInt32(minute), 300) * 300", "minute >= toDateTime(3600)", "minute < toDateTime(7200)", schema.ProductionCondition, schema.CrashCondition} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline SQL lacks %q:\n%s", want, tl)
		}
	}
}

// The fleet reads on both engines, over the scenario inserted twice.
func TestFleetReads(t *testing.T) {
	engines := map[string]func(t *testing.T) (schema.Querier, string){
		"18.16": func(t *testing.T) (schema.Querier, string) {
			conn := chtest.Shared(t).Conn(t, "")
			db := chtest.DBName(t)
			if err := schema.Migrate(context.Background(), conn, schema.MigrateOptions{Database: db}); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				b, err := conn.PrepareBatch(context.Background(), schema.InsertSQL(db, schema.FlavorLegacy))
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range scenario() {
					if err := schema.AppendEvent(b, e, schema.FlavorLegacy); err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Send(); err != nil {
					t.Fatal(err)
				}
			}
			return conn, db
		},
		"chdb": func(t *testing.T) (schema.Querier, string) {
			q := chdbtest.Open(t)
			db := chtest.DBName(t)
			if err := schema.Migrate(context.Background(), q, schema.MigrateOptions{Database: db}); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				var tuples []string
				for _, e := range scenario() {
					var lits []string
					for _, v := range schema.EventValues(e, schema.FlavorModern) {
						lits = append(lits, literal(v))
					}
					tuples = append(tuples, "("+strings.Join(lits, ", ")+")")
				}
				if err := q.Exec(context.Background(), schema.InsertSQL(db, schema.FlavorModern)+" VALUES "+strings.Join(tuples, ", ")); err != nil {
					t.Fatal(err)
				}
			}
			return q, db
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			q, db := open(t)
			checkFleet(t, q, db)
		})
	}
}

func checkFleet(t *testing.T, q schema.Querier, db string) {
	t.Helper()
	ctx := context.Background()
	f := schema.NewFleetReader(func(context.Context) (schema.Querier, error) { return q, nil }, db)

	d1, err := f.Device(ctx, app, "d1")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range d1.Events {
		actions = append(actions, e.Action+"@"+e.VersionName)
	}
	if want := []string{"set@1.1.0", "app_crash@1.0.0", "app_launch_ready@1.0.0", "set@1.0.0"}; !reflect.DeepEqual(actions, want) {
		t.Errorf("d1 events %v, want %v (each once, newest first)", actions, want)
	}
	if !d1.Known || d1.VersionName != "1.1.0" || d1.Channel != "beta" || d1.Platform != "ios" || d1.PluginVersion != "8.51.23" ||
		d1.VersionOS != "18.1" || d1.VersionBuild != "1.4.0" || !d1.IsProd || d1.IsEmulator || !d1.LastSeen.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("d1 state %+v", d1)
	}
	e := d1.Events[1]
	if e.EventID != "00000000000000000000000000000008" || !e.ReceivedAt.Equal(t0.Add(2*time.Minute)) || e.ClientTime == nil ||
		!e.ClientTime.Equal(t0.Add(-5*time.Second)) || !e.Failure || e.Channel != "production" || e.Ignored {
		t.Errorf("d1 crash event %+v", e)
	}
	// Only a failure: known from its event, running nothing known.
	d4, err := f.Device(ctx, app, "d4")
	if err != nil || !d4.Known || d4.VersionName != "" || len(d4.Events) != 1 || d4.Platform != "ios" || !d4.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("d4 %+v, %v", d4, err)
	}
	x9, err := f.Device(ctx, app, "x9")
	if err != nil || len(x9.Events) != 1 || !x9.Events[0].Ignored || x9.Events[0].Failure {
		t.Errorf("x9 (ignored download_fail) %+v, %v", x9, err)
	}
	for _, dev := range []string{"nobody", `d1' OR 1=1 --`, `back\slash'`} {
		none, err := f.Device(ctx, app, dev)
		if err != nil || none.Known || len(none.Events) != 0 {
			t.Errorf("device %q: %+v, %v", dev, none, err)
		}
	}
	if other, err := f.Device(ctx, "com.other.app", "d1"); err != nil || other.Known {
		t.Errorf("d1 of another app: %+v, %v", other, err)
	}
	if limited, err := schema.Device(ctx, q, schema.DeviceQuery{Database: db, App: app, DeviceID: "d1", Events: 2}); err != nil || len(limited.Events) != 2 || limited.Events[0].Action != "set" {
		t.Errorf("two newest events %+v, %v", limited.Events, err)
	}

	rq := schema.ReportQuery{App: app, Since: t0, Until: t0.Add(6 * time.Minute)}
	health, err := f.Health(ctx, rq)
	if err != nil || !reflect.DeepEqual(health, wantReport) {
		t.Errorf("health (%v)\n got %+v\nwant %+v", err, health, wantReport)
	}
	tl, err := f.Timeline(ctx, schema.TimelineQuery{ReportQuery: rq, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	z := []uint64{0, 0, 0, 0, 0, 0}
	want := schema.Timeline{Since: t0, Until: t0.Add(6 * time.Minute), StepSeconds: 60, Series: []schema.TimelineSeries{
		{Version: "1.0.0", ActiveDevices: []uint64{3, 2, 0, 0, 0, 0}, Installs: []uint64{3, 0, 0, 0, 0, 0}, Failures: []uint64{0, 1, 2, 0, 0, 0},
			Rollbacks: []uint64{0, 0, 1, 0, 0, 0}, Crashes: []uint64{0, 0, 1, 0, 0, 0}},
		{Version: "1.1.0", ActiveDevices: []uint64{0, 0, 0, 1, 0, 0}, Installs: []uint64{0, 0, 0, 1, 0, 0}, Failures: []uint64{0, 0, 0, 1, 1, 0},
			Rollbacks: z, Crashes: z},
	}}
	for i := range 6 {
		want.Buckets = append(want.Buckets, t0.Add(time.Duration(i)*time.Minute))
	}
	if !reflect.DeepEqual(tl, want) {
		t.Errorf("timeline\n got %+v\nwant %+v", tl, want)
	}
	// Summed over buckets, the timeline agrees with the report.
	for i, s := range tl.Series {
		if sum(s.Installs) != health[i].Installs || sum(s.Failures) != health[i].Failures || sum(s.Rollbacks) != health[i].Rollbacks {
			t.Errorf("%s: timeline sums differ from the report %+v", s.Version, health[i])
		}
	}
	// Dev builds and emulators, and a coarse step aligned down.
	dev := schema.TimelineQuery{ReportQuery: schema.ReportQuery{App: app, Since: t0.Add(-30 * time.Minute), Until: t0.Add(6 * time.Minute), IncludeDev: true}, Step: time.Hour}
	tl, err = f.Timeline(ctx, dev)
	if err != nil || !tl.Since.Equal(t0.Add(-time.Hour)) || len(tl.Buckets) != 2 || len(tl.Series) != 2 ||
		!reflect.DeepEqual(tl.Series[0].Installs, []uint64{0, 4}) || !reflect.DeepEqual(tl.Series[1].Crashes, []uint64{0, 1}) {
		t.Errorf("hourly timeline with dev devices (%v): %+v", err, tl)
	}
	if _, err := f.Timeline(ctx, schema.TimelineQuery{ReportQuery: rq, Step: 90 * time.Second}); err == nil {
		t.Error("a step that is not whole minutes was accepted")
	}
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}
