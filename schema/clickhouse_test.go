package schema_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/schema/chtest/chdbtest"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	chtest.Main(m)
}

func TestFlavorOf(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want schema.Flavor
	}{
		{"18.16.1", schema.FlavorLegacy},
		{"21.8.15.7", schema.FlavorLegacy},
		{"22.2.1", schema.FlavorLegacy},
		{"22.3.1.1", schema.FlavorModern},
		{"24.8.4.13", schema.FlavorModern},
		{"26.5.1.1", schema.FlavorModern},
	} {
		got, err := schema.FlavorOf(tc.v)
		if err != nil || got != tc.want {
			t.Errorf("FlavorOf(%q) = %v, %v; want %v", tc.v, got, err, tc.want)
		}
	}
	if _, err := schema.FlavorOf("banana"); err == nil {
		t.Error("FlavorOf(banana) succeeded")
	}
}

func TestIsFailureAction(t *testing.T) {
	for action, want := range map[string]bool{
		"set": false, "set_fail": true, "update_fail": true, "download_fail": true, "app_crash": true,
		"app_crash_native": true, "app_anr": true, "reset": false, "download_10": false, "app_launch_ready": false,
		"session_key_required": true, "checksum_required": true, "checksum_fail": true, "rate_limit_reached": false,
	} {
		if got := schema.IsFailureAction(action); got != want {
			t.Errorf("IsFailureAction(%q) = %v", action, got)
		}
	}
}

func TestMigrationsRender(t *testing.T) {
	for _, f := range []schema.Flavor{schema.FlavorLegacy, schema.FlavorModern} {
		ms, err := schema.Migrations(f, "db", 30)
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for i, m := range ms {
			if m.Version != uint32(i+1) || len(m.Statements) == 0 {
				t.Fatalf("%v: migration %d = %+v", f, i, m)
			}
			all = append(all, m.Statements...)
		}
		// Applied migrations render as they ran; the devices view of 0004
		// has today's condition.
		if !strings.Contains(strings.Join(ms[2].Statements, "\n"), "OR action = 'app_anr') OR startsWith(action, 'download_')") {
			t.Errorf("%v: 0003 renders a changed devices condition", f)
		}
		if !strings.Contains(strings.Join(ms[3].Statements, "\n"), "WHERE "+schema.RunningCondition) {
			t.Errorf("%v: 0004 lacks the current RunningCondition", f)
		}
		sql := strings.Join(all, "\n")
		for _, word := range []string{"LowCardinality", "DateTime64", "Map(", "TTL"} {
			if strings.Contains(sql, word) != (f == schema.FlavorModern) {
				t.Errorf("%v flavour: contains %s = %v", f, word, !(f == schema.FlavorModern))
			}
		}
		if strings.Contains(sql, "{{") || strings.Contains(sql, "--") {
			t.Errorf("%v: unrendered template or comment left:\n%s", f, sql)
		}
	}
}

func TestMigrateServer(t *testing.T) {
	s := chtest.Shared(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	conn := s.Conn(t, "")
	opts := schema.MigrateOptions{Database: db, RetentionDays: 30}
	if err := schema.Migrate(ctx, conn, opts); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(ctx, conn, opts); err != nil {
		t.Fatalf("second run: %v", err)
	}
	versions, err := schema.AppliedMigrations(ctx, conn, db)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(versions, allVersions(t)) {
		t.Fatalf("applied %v", versions)
	}
	var records uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".capstan_schema_migrations").Scan(&records); err != nil {
		t.Fatal(err)
	}
	if records != uint64(len(allVersions(t))) {
		t.Fatalf("%d migration records after two runs, want %d", records, len(allVersions(t)))
	}
	if got := tables(t, conn, db); !reflect.DeepEqual(got, allTables) {
		t.Fatalf("tables %v", got)
	}
	// An interrupted run repeats 0005's ADD COLUMN, which 18.16 cannot
	// say IF NOT EXISTS to: the error must be one Migrate takes as done.
	ms, err := schema.Migrations(schema.FlavorLegacy, db, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Exec(ctx, ms[4].Statements[0])
	if code := schema.ErrorCode(err); code != 44 && code != 15 {
		t.Fatalf("adding an existing column: %v", err)
	}
}

// allVersions are the versions of every embedded migration.
func allVersions(t *testing.T) []uint32 {
	t.Helper()
	ms, err := schema.Migrations(schema.FlavorLegacy, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var v []uint32
	for _, m := range ms {
		v = append(v, m.Version)
	}
	return v
}

var allTables = []string{"capstan_devices", "capstan_devices_mv", "capstan_events", "capstan_events_minute", "capstan_events_minute_mv",
	"capstan_rollup_minute", "capstan_rollup_minute_mv", "capstan_schema_migrations"}

func tables(t *testing.T, q schema.Querier, db string) []string {
	t.Helper()
	rows, err := q.Query(context.Background(), "SELECT name FROM system.tables WHERE database = "+schema.Quote(db)+" ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestMigrateConcurrent(t *testing.T) {
	s := chtest.Shared(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	const n = 6
	var conns []schema.Querier
	for range n {
		conns = append(conns, s.Conn(t, ""))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = schema.Migrate(ctx, conns[i], schema.MigrateOptions{Database: db}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("runner %d: %v", i, err)
		}
	}
	var records uint64
	rows, err := conns[0].Query(ctx, "SELECT count() FROM "+db+".capstan_schema_migrations")
	if err != nil {
		t.Fatal(err)
	}
	rows.Next()
	rows.Scan(&records)
	rows.Close()
	if records != uint64(len(allVersions(t))) {
		t.Fatalf("%d migration records from %d concurrent runners, want %d (each applied once)", records, n, len(allVersions(t)))
	}
	if got := tables(t, conns[0], db); !reflect.DeepEqual(got, allTables) {
		t.Fatalf("tables %v (lock left behind?)", got)
	}
}

func TestMigrateBreaksStaleLock(t *testing.T) {
	s := chtest.Shared(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	conn := s.Conn(t, "")
	// A process died holding the lock.
	for _, q := range []string{"CREATE DATABASE " + db, "CREATE TABLE " + db + ".capstan_schema_lock (owner String) ENGINE = Memory"} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// With a live lock Migrate waits (here: until its context ends).
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := schema.Migrate(short, conn, schema.MigrateOptions{Database: db}); err == nil {
		t.Fatal("Migrate ran while another holder had the lock")
	}
	// Once the lock is older than LockStaleAfter it is broken.
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{Database: db, LockStaleAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got := tables(t, conn, db); !reflect.DeepEqual(got, allTables) {
		t.Fatalf("tables %v", got)
	}
}

func TestOpenClickHouseCreatesDatabase(t *testing.T) {
	s := chtest.Shared(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	conn, err := schema.OpenClickHouse(ctx, s.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cur string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&cur); err != nil || cur != db {
		t.Fatalf("current database %q, %v", cur, err)
	}
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := tables(t, conn, db); !reflect.DeepEqual(got, allTables) {
		t.Fatalf("tables %v", got)
	}
	if _, err := schema.OpenClickHouse(ctx, "clickhouse://default@127.0.0.1:1/x?dial_timeout=200ms"); err == nil {
		t.Fatal("open of a closed port succeeded")
	}
}

func TestMigrateChDB(t *testing.T) {
	db := chdbtest.Open(t)
	ctx := context.Background()
	name := chtest.DBName(t)
	for _, days := range []int{30, 30, 7, 0} {
		if err := schema.Migrate(ctx, db, schema.MigrateOptions{Database: name, RetentionDays: days}); err != nil {
			t.Fatalf("retention %d: %v", days, err)
		}
		for _, table := range []string{"capstan_events", "capstan_events_minute", "capstan_devices", "capstan_rollup_minute"} {
			var engine string
			if err := db.QueryRow("SELECT engine_full FROM system.tables WHERE database = '"+name+"' AND name = '"+table+"'", &engine); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("toIntervalDay(%d)", days)
			if days == 0 && strings.Contains(engine, "TTL") || days > 0 && !strings.Contains(engine, want) {
				t.Fatalf("retention %d: %s engine %s", days, table, engine)
			}
		}
	}
	if got := tables(t, db, name); !reflect.DeepEqual(got, allTables) {
		t.Fatalf("tables %v", got)
	}
	versions, err := schema.AppliedMigrations(ctx, db, name)
	if err != nil || !reflect.DeepEqual(versions, allVersions(t)) {
		t.Fatalf("applied %v, %v", versions, err)
	}
}

// --- event scenario run on both engines ---

var t0 = time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)

func ev(id int, app, device, action, version, channel string, minute int) *schema.Event {
	return &schema.Event{
		ID: fmt.Sprintf("%032x", id), ReceivedMs: t0.Add(time.Duration(minute) * time.Minute).UnixMilli(),
		ClientMs: t0.UnixMilli() - 5000, AppID: app, DeviceID: device, Platform: "ios", Action: action,
		VersionName: version, VersionBuild: "1.4.0", PluginVersion: "8.51.23", VersionOS: "18.1",
		Channel: channel, IsProd: true, Metadata: map[string]string{"b": "2", "a": "it's"},
	}
}

const app = "com.example.app"

func scenario() []*schema.Event {
	return []*schema.Event{
		ev(1, app, "d1", "set", "1.0.0", "production", 0),
		ev(2, app, "d2", "set", "1.0.0", "production", 0),
		ev(3, app, "d3", "set", "1.0.0", "production", 0),
		ev(4, app, "d1", "app_launch_ready", "1.0.0", "production", 1),
		ev(5, app, "d2", "app_launch_ready", "1.0.0", "production", 1),
		ev(6, app, "d4", "download_fail", "1.0.0", "production", 1),
		ev(7, app, "d3", "update_fail", "1.0.0", "production", 2),
		ev(8, app, "d1", "app_crash", "1.0.0", "production", 2),
		ev(9, app, "d1", "set", "1.1.0", "beta", 3),
		ev(10, app, "d2", "checksum_fail", "1.1.0", "beta", 3),
		ev(12, app, "d5", "session_key_required", "1.1.0", "beta", 4), // a failure; d5 runs no 1.1.0
		ev(11, "com.other.app", "x1", "set", "2.0.0", "production", 0),
		// Counted only with IncludeDev: an emulator and a dev build.
		with(ev(13, app, "e1", "set", "1.0.0", "production", 5), func(e *schema.Event) { e.IsEmulator = true }),
		with(ev(15, app, "dv", "app_crash", "1.1.0", "beta", 5), func(e *schema.Event) { e.IsProd = false }),
		// Kept, but never a failure: an old plugin's "no update" download_fail.
		with(ev(14, app, "x9", "download_fail", "1.0.0", "production", 5), func(e *schema.Event) { e.Ignored, e.PluginVersion = true, "6.0.0" }),
	}
}

func with(e *schema.Event, f func(*schema.Event)) *schema.Event {
	f(e)
	return e
}

// wantDevReport is wantReport with IncludeDev.
var wantDevReport = []schema.ReportRow{
	{App: app, Version: "1.0.0", Installs: 4, ActiveDevices: 4, Failures: 3, FailureRate: 3.0 / 7, Rollbacks: 1, Events: 10,
		FailuresByAction: []schema.ActionCount{{Action: "app_crash", Count: 1}, {Action: "download_fail", Count: 1}, {Action: "update_fail", Count: 1}}},
	{App: app, Version: "1.1.0", Installs: 1, ActiveDevices: 1, Failures: 3, FailureRate: 0.75, Events: 4,
		FailuresByAction: []schema.ActionCount{{Action: "app_crash", Count: 1}, {Action: "checksum_fail", Count: 1}, {Action: "session_key_required", Count: 1}}},
}

var wantReport = []schema.ReportRow{
	{App: app, Version: "1.0.0", Installs: 3, ActiveDevices: 3, Failures: 3, FailureRate: 0.5, Rollbacks: 1, Events: 9,
		FailuresByAction: []schema.ActionCount{{Action: "app_crash", Count: 1}, {Action: "download_fail", Count: 1}, {Action: "update_fail", Count: 1}}},
	{App: app, Version: "1.1.0", Installs: 1, ActiveDevices: 1, Failures: 2, FailureRate: 2.0 / 3, Events: 3,
		FailuresByAction: []schema.ActionCount{{Action: "checksum_fail", Count: 1}, {Action: "session_key_required", Count: 1}}},
}

// checkScenario verifies rollup, devices and report after the scenario
// was inserted (twice).
func checkScenario(t *testing.T, q schema.Querier, db string) {
	t.Helper()
	ctx := context.Background()
	var events, rollupRows uint64
	if err := queryRow(q, "SELECT uniqExactMerge(events) FROM "+db+".capstan_events_minute", &events); err != nil {
		t.Fatal(err)
	}
	if events != uint64(len(scenario())) {
		t.Errorf("rollup counts %d events, want %d (duplicates counted?)", events, len(scenario()))
	}
	if err := queryRow(q, "SELECT uniqExactMerge(events) FROM "+db+".capstan_rollup_minute", &events); err != nil {
		t.Fatal(err)
	}
	if events != uint64(len(scenario())) {
		t.Errorf("new rollup counts %d events, want %d", events, len(scenario()))
	}
	if err := queryRow(q, "SELECT count() FROM "+db+".capstan_events FINAL", &rollupRows); err != nil {
		t.Fatal(err)
	}
	if rollupRows != uint64(len(scenario())) {
		t.Errorf("raw table FINAL has %d rows, want %d", rollupRows, len(scenario()))
	}
	rows, err := q.Query(ctx, "SELECT device_id, version_name FROM "+db+".capstan_devices FINAL WHERE app_id = '"+app+"' ORDER BY device_id")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var d, v string
		if err := rows.Scan(&d, &v); err != nil {
			t.Fatal(err)
		}
		got[d] = v
	}
	rows.Close()
	want := map[string]string{"d1": "1.1.0", "d2": "1.0.0", "d3": "1.0.0", "e1": "1.0.0"}
	if !maps.Equal(got, want) {
		t.Errorf("devices %v, want %v (failures and downloads must not move a device)", got, want)
	}

	rq := schema.ReportQuery{Database: db, App: app, Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)}
	rep, err := schema.Report(ctx, q, rq)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, wantReport) {
		t.Errorf("report\n got %+v\nwant %+v", rep, wantReport)
	}
	dq := rq
	dq.IncludeDev = true
	if rep, err := schema.Report(ctx, q, dq); err != nil || !reflect.DeepEqual(rep, wantDevReport) {
		t.Errorf("report with dev devices (%v)\n got %+v\nwant %+v", err, rep, wantDevReport)
	}
	rq.Channel = "beta"
	rep, err = schema.Report(ctx, q, rq)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep) != 1 || rep[0].Version != "1.1.0" {
		t.Errorf("beta report %+v", rep)
	}
	all, err := schema.Report(ctx, q, schema.ReportQuery{Database: db, Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].App != "com.other.app" || all[2].Installs != 1 {
		t.Errorf("all-apps report %+v", all)
	}
	none, err := schema.Report(ctx, q, schema.ReportQuery{Database: db, App: app, Since: t0.Add(time.Hour)})
	if err != nil || len(none) != 0 {
		t.Errorf("empty window: %+v, %v", none, err)
	}
}

func queryRow(q schema.Querier, query string, dest ...any) error {
	rows, err := q.Query(context.Background(), query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		return fmt.Errorf("no rows: %v", rows.Err())
	}
	return rows.Scan(dest...)
}

func TestEventsServer(t *testing.T) {
	s := chtest.Shared(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	conn := s.Conn(t, "")
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{Database: db}); err != nil {
		t.Fatal(err)
	}
	flavor, err := schema.DetectFlavor(ctx, conn)
	if err != nil || flavor != schema.FlavorLegacy {
		t.Fatalf("flavor %v, %v", flavor, err)
	}
	// The same events twice, as a consumer retrying a batch would.
	for range 2 {
		b, err := conn.PrepareBatch(ctx, schema.InsertSQL(db, flavor))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range scenario() {
			if err := schema.AppendEvent(b, e, flavor); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	checkScenario(t, conn, db)

	var keys, values []string
	var received time.Time
	if err := conn.QueryRow(ctx, "SELECT metadata_keys, metadata_values, received_at FROM "+db+".capstan_events WHERE event_id = ? LIMIT 1",
		fmt.Sprintf("%032x", 1)).Scan(&keys, &values, &received); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"a", "b"}) || !slices.Equal(values, []string{"it's", "2"}) || !received.Equal(t0) {
		t.Fatalf("metadata %v %v received %v", keys, values, received)
	}
}

// literal renders a Go value from EventValues as a ClickHouse literal.
func literal(v any) string {
	switch x := v.(type) {
	case string:
		return schema.Quote(x)
	case uint8:
		return fmt.Sprint(x)
	case time.Time:
		return fmt.Sprintf("fromUnixTimestamp64Milli(%d, 'UTC')", x.UnixMilli())
	case map[string]string:
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			kv = append(kv, schema.Quote(k), schema.Quote(x[k]))
		}
		return "map(" + strings.Join(kv, ", ") + ")"
	}
	panic(fmt.Sprintf("literal %T", v))
}

func TestEventsChDB(t *testing.T) {
	db := chdbtest.Open(t)
	ctx := context.Background()
	name := chtest.DBName(t)
	if err := schema.Migrate(ctx, db, schema.MigrateOptions{Database: name, RetentionDays: 400}); err != nil {
		t.Fatal(err)
	}
	flavor, err := schema.DetectFlavor(ctx, db)
	if err != nil || flavor != schema.FlavorModern {
		t.Fatalf("flavor %v, %v", flavor, err)
	}
	for range 2 {
		var tuples []string
		for _, e := range scenario() {
			var lits []string
			for _, v := range schema.EventValues(e, flavor) {
				lits = append(lits, literal(v))
			}
			tuples = append(tuples, "("+strings.Join(lits, ", ")+")")
		}
		if err := db.Exec(ctx, schema.InsertSQL(name, flavor)+" VALUES "+strings.Join(tuples, ", ")); err != nil {
			t.Fatal(err)
		}
	}
	checkScenario(t, db, name)
	var m map[string]string
	var received time.Time
	if err := db.QueryRow("SELECT metadata, received_at FROM "+name+".capstan_events WHERE event_id = '"+fmt.Sprintf("%032x", 1)+"' LIMIT 1", &m, &received); err != nil {
		t.Fatal(err)
	}
	if m["a"] != "it's" || !received.Equal(t0) {
		t.Fatalf("metadata %v received %v", m, received)
	}
	// Partition maintenance statements are valid on the modern engine too.
	if _, err := schema.DropExpiredPartitions(ctx, db, name, 30, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestDropExpiredPartitionsServer(t *testing.T) {
	s := chtest.Shared(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	conn := s.Conn(t, "")
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{Database: db, RetentionDays: 30}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := ev(1, app, "old", "set", "1.0.0", "production", 0)
	old.ReceivedMs = now.AddDate(0, 0, -40).UnixMilli()
	fresh := ev(2, app, "new", "set", "1.0.0", "production", 0)
	fresh.ReceivedMs = now.UnixMilli()
	b, err := conn.PrepareBatch(ctx, schema.InsertSQL(db, schema.FlavorLegacy))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*schema.Event{old, fresh} {
		if err := schema.AppendEvent(b, e, schema.FlavorLegacy); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	dropped, err := schema.DropExpiredPartitions(ctx, conn, db, 30, now)
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 3 {
		t.Fatalf("dropped %d partitions, want 3 (raw + both rollups)", dropped)
	}
	var raw, rolled, rolled2 uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".capstan_events").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM "+db+".capstan_events_minute").Scan(&rolled); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM "+db+".capstan_rollup_minute").Scan(&rolled2); err != nil {
		t.Fatal(err)
	}
	if raw != 1 || rolled != 1 || rolled2 != 1 {
		t.Fatalf("after retention: %d raw, %d and %d rolled up; want 1, 1 and 1", raw, rolled, rolled2)
	}
	// Device deletion is a mutation: wait for it to finish (bounded).
	deadline := time.Now().Add(30 * time.Second)
	for {
		var devices []string
		rows, err := conn.Query(ctx, "SELECT device_id FROM "+db+".capstan_devices")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var d string
			rows.Scan(&d)
			devices = append(devices, d)
		}
		rows.Close()
		if slices.Equal(devices, []string{"new"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devices after retention: %v", devices)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := schema.DropExpiredPartitions(ctx, conn, db, 30, now); err != nil || n != 0 {
		t.Fatalf("second run dropped %d, %v", n, err)
	}
}

func TestErrorCode(t *testing.T) {
	for msg, want := range map[string]int{
		"chdb: Code: 57. DB::Exception: Table x.y already exists. (TABLE_ALREADY_EXISTS)": 57,
		"code: 81, message: Database nodb doesn't exist":                                  81,
		"dial tcp: connection refused":                                                    0,
	} {
		if got := schema.ErrorCode(errors.New(msg)); got != want {
			t.Errorf("ErrorCode(%q) = %d, want %d", msg, got, want)
		}
	}
}

// Hostile filter values are literals on both engines, never SQL.
func TestReportQuotesFilters(t *testing.T) {
	ctx := context.Background()
	engines := map[string]schema.Querier{"18.16": chtest.Shared(t).Conn(t, ""), "chdb": chdbtest.Open(t)}
	for name, q := range engines {
		db := chtest.DBName(t)
		if err := schema.Migrate(ctx, q, schema.MigrateOptions{Database: db}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, app := range []string{`x' OR 1=1 --`, `back\slash'`, "new\nline"} {
			rows, err := schema.Report(ctx, q, schema.ReportQuery{Database: db, App: app, Channel: app, Since: t0})
			if err != nil || len(rows) != 0 {
				t.Fatalf("%s: report for %q: %v %v", name, app, rows, err)
			}
		}
	}
}

// Migration 0005 backfills the new rollup from events stored before it,
// on both engines.
func TestRollupBackfill(t *testing.T) {
	engines := map[string]func(t *testing.T) (schema.Querier, schema.Flavor){
		"18.16": func(t *testing.T) (schema.Querier, schema.Flavor) {
			return chtest.Shared(t).Conn(t, ""), schema.FlavorLegacy
		},
		"chdb": func(t *testing.T) (schema.Querier, schema.Flavor) { return chdbtest.Open(t), schema.FlavorModern },
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			q, flavor := open(t)
			ctx := context.Background()
			db := chtest.DBName(t)
			if err := q.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+db); err != nil {
				t.Fatal(err)
			}
			ms, err := schema.Migrations(flavor, db, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms[:4] {
				for _, stmt := range m.Statements {
					if err := q.Exec(ctx, stmt); err != nil {
						t.Fatalf("%d: %v", m.Version, err)
					}
				}
			}
			// Rows as a consumer before 0005 wrote them (no new columns).
			for i, action := range []string{"set", "download_fail", "set"} {
				if err := q.Exec(ctx, fmt.Sprintf("INSERT INTO %s.capstan_events (event_id, received_at, app_id, device_id, platform, action, version_name, is_prod) "+
					"SELECT '%032x', toDateTime(%d), 'a', 'd%d', 'ios', '%s', '1.0.0', 1", db, i, t0.Unix(), i, action)); err != nil {
					t.Fatal(err)
				}
			}
			if err := schema.Migrate(ctx, q, schema.MigrateOptions{Database: db, Logger: slog.New(slog.DiscardHandler)}); err != nil {
				t.Fatal(err)
			}
			rep, err := schema.Report(ctx, q, schema.ReportQuery{Database: db, Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep) != 1 || rep[0].Installs != 2 || rep[0].Failures != 1 || rep[0].Events != 3 {
				t.Fatalf("report after backfill %+v", rep)
			}
		})
	}
}

// The modern cluster DDL parses on chDB (which has no Keeper to run it):
// every statement, formatted back by the server's own parser, keeps its
// ON CLUSTER clause and Replicated or Distributed engine.
func TestClusterMigrationsParseOnChDB(t *testing.T) {
	db := chdbtest.Open(t)
	ms, err := schema.ClusterMigrations(schema.FlavorModern, "capstan", "fleet", 30)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		for _, stmt := range m.Statements {
			if strings.HasPrefix(stmt, "INSERT INTO") {
				continue // the backfill: no DDL
			}
			var formatted string
			if err := db.QueryRow("SELECT formatQuery("+schema.Quote(stmt)+")", &formatted); err != nil {
				t.Fatalf("migration %d on chDB %s: %v\n%s", m.Version, db.Version(), err, stmt)
			}
			if !strings.Contains(formatted, "ON CLUSTER fleet") {
				t.Errorf("migration %d lost ON CLUSTER:\n%s", m.Version, formatted)
			}
			if strings.HasPrefix(stmt, "CREATE TABLE") && !strings.Contains(formatted, "ENGINE = Replicated") && !strings.Contains(formatted, "ENGINE = Distributed") {
				t.Errorf("migration %d: a table neither replicated nor distributed:\n%s", m.Version, formatted)
			}
			if strings.Contains(stmt, "_local") && strings.HasPrefix(stmt, "CREATE TABLE") && strings.Contains(stmt, "ENGINE = Replicated") && !strings.Contains(formatted, "TTL") {
				t.Errorf("migration %d: no TTL on a replicated table:\n%s", m.Version, formatted)
			}
			n++
		}
	}
	t.Logf("%d cluster DDL statements parsed by chDB %s", n, db.Version())
}

// On one server the migrations are those that ran before clusters
// existed; on a cluster each table has a Replicated *_local table with
// {shard}/{replica} paths and a Distributed table of its own name.
func TestClusterMigrationsRender(t *testing.T) {
	for _, f := range []schema.Flavor{schema.FlavorLegacy, schema.FlavorModern} {
		single, err := schema.Migrations(f, "db", 0)
		if err != nil {
			t.Fatal(err)
		}
		viaCluster, err := schema.ClusterMigrations(f, "db", "", 0)
		if err != nil || !reflect.DeepEqual(single, viaCluster) {
			t.Fatalf("%v: ClusterMigrations without a cluster differs (%v)", f, err)
		}
		ms, err := schema.ClusterMigrations(f, "db", "c1", 0)
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, m := range ms {
			for _, s := range m.Statements {
				all.WriteString(s + ";\n")
				if !strings.HasPrefix(s, "INSERT") && !strings.Contains(s, " ON CLUSTER `c1`") {
					t.Errorf("%v: not ON CLUSTER: %s", f, s)
				}
				// 18.16's distributed-DDL worker can die when both
				// replicas of a shard run one ALTER ON CLUSTER.
				if strings.HasPrefix(s, "ALTER") {
					t.Errorf("%v: cluster migrations ALTER: %s", f, s)
				}
			}
		}
		for _, want := range []string{
			"CREATE TABLE IF NOT EXISTS `db`.capstan_events_local ON CLUSTER `c1` (",
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/capstan_events', '{replica}')",
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/capstan_devices', '{replica}', last_seen)",
			"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/db/capstan_rollup_minute', '{replica}')",
			"CREATE TABLE IF NOT EXISTS `db`.capstan_events ON CLUSTER `c1` AS `db`.capstan_events_local\nENGINE = Distributed('c1', 'db', 'capstan_events_local', cityHash64(app_id, device_id))",
			"ENGINE = Distributed('c1', 'db', 'capstan_rollup_minute_local', rand())",
			"TO `db`.capstan_rollup_minute_local AS",
			"FROM `db`.capstan_events_local\nGROUP BY minute",
			"    reported_version_name String DEFAULT '',\n    ignored UInt8 DEFAULT 0,\n",
		} {
			if !strings.Contains(all.String(), want) {
				t.Errorf("%v: cluster migrations lack %q", f, want)
			}
		}
	}
}
