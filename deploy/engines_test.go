package deploy

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/schema/chtest/chdbtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// sqlConn is what both engines offer: a clickhouse-go connection to the
// 18.16 server and the chDB 26.x session.
type sqlConn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// sampleEvents fills capstan_events (and through the materialized views
// the rollup) with 600 events over about two hours from base: three
// versions, three channels (one of them empty), two platforms, installs,
// rollbacks, install failures, crashes and a second app; some dev builds,
// emulators and ignored (legacy) download_fail events.
func sampleEvents(db string, base time.Time) string {
	return fmt.Sprintf(`INSERT INTO %[1]s.capstan_events
  (event_id, received_at, client_time, app_id, device_id, platform, action, version_name, channel, is_prod, is_emulator, ignored)
SELECT
  lower(hex(MD5(toString(number)))),
  toDateTime(%[2]d + number * 13),
  toDateTime(%[2]d + number * 13 - 2),
  if(number %% 10 = 9, 'com.example.other', 'com.example.app'),
  concat('device-', toString(number %% 37)),
  if(number %% 2 = 0, 'ios', 'android'),
  arrayElement(['set', 'app_launch_ready', 'update_fail', 'reset', 'download_fail', 'checksum_fail', 'app_crash', 'app_anr', 'set', 'download_complete'], (number %% 10) + 1),
  arrayElement(['1.0.0', '1.1.0', 'it''s'], (intDiv(number, 10) %% 3) + 1),
  arrayElement(['production', 'beta', ''], (intDiv(number, 7) %% 3) + 1),
  if(number %% 11 = 3, 0, 1),
  if(number %% 13 = 5, 1, 0),
  if(number %% 30 = 4, 1, 0)
FROM numbers(600)`, db, base.Unix())
}

// dashboardQueries lists every ClickHouse query of every dashboard.
func dashboardQueries(t *testing.T) []Query {
	t.Helper()
	var out []Query
	for _, df := range loadDashboards(t) {
		qs, err := df.d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.DatasourceType == ClickHouseType {
				q.Where = df.path + ": " + q.Where
				out = append(out, q)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no ClickHouse queries in the dashboards")
	}
	return out
}

// The contexts each query runs in: the whole sample with every channel and
// version selected, at a fine, a medium and a coarse interval, and one
// channel and one version only.
func engineContexts(base time.Time) []QueryContext {
	all := map[string][]string{
		"app":     {"com.example.app"},
		"channel": {"production", "beta", "(none)"},
		"version": {"1.0.0", "1.1.0", "it's"},
		"devices": {"production"},
	}
	one := map[string][]string{
		"app":     {"com.example.app"},
		"channel": {"(none)"},
		"version": {"it's"},
		"devices": {"all"},
	}
	from, to := base.Add(-time.Hour), base.Add(3*time.Hour)
	return []QueryContext{
		{From: from, To: to, Interval: 20 * time.Second, Vars: all},
		{From: from, To: to, Interval: 5 * time.Minute, Vars: all},
		{From: from, To: to, Interval: 2 * time.Hour, Vars: all},
		{From: from, To: to, Interval: 90 * time.Second, Vars: one},
	}
}

// result is a query's rows rendered as text, for comparing engines.
type result struct {
	columns []string
	rows    []string
}

func query(ctx context.Context, c sqlConn, sql string) (result, error) {
	rows, err := c.Query(ctx, sql)
	if err != nil {
		return result{}, err
	}
	defer rows.Close()
	res := result{columns: rows.Columns()}
	types := rows.ColumnTypes()
	for rows.Next() {
		dest := make([]any, len(res.columns))
		for i := range dest {
			if types != nil {
				dest[i] = reflect.New(types[i].ScanType()).Interface()
			} else {
				dest[i] = new(any)
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return result{}, fmt.Errorf("scan: %w", err)
		}
		cells := make([]string, len(dest))
		for i, d := range dest {
			cells[i] = renderCell(reflect.ValueOf(d).Elem().Interface())
		}
		res.rows = append(res.rows, strings.Join(cells, "\t"))
	}
	return res, rows.Err()
}

// renderCell prints numbers the same way whatever the engine's Go type.
func renderCell(v any) string {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	case float32, float64:
		return fmt.Sprintf("%.6g", x)
	case fmt.Stringer:
		s := x.String()
		var f float64
		if _, err := fmt.Sscanf(s, "%g", &f); err == nil && strings.ContainsAny(s, ".eE") {
			return fmt.Sprintf("%.6g", f)
		}
		return s
	}
	return fmt.Sprint(v)
}

// runDashboardSQL migrates a fresh database with Capstan's schema, inserts
// the sample and runs every dashboard query, expanded as Grafana and the
// ClickHouse plugin would, in every context. It returns the results by
// query and context.
func runDashboardSQL(t *testing.T, ctx context.Context, c sqlConn, db string, base time.Time, useDB func(string) sqlConn) map[string]result {
	t.Helper()
	return runDashboardSQLOn(t, ctx, c, schema.MigrateOptions{Database: db}, base, useDB, nil)
}

// runDashboardSQLOn is runDashboardSQL with the migration's options (a
// cluster's, for one), calling settled (when not nil) between the insert
// and the queries.
func runDashboardSQLOn(t *testing.T, ctx context.Context, c sqlConn, opts schema.MigrateOptions, base time.Time, useDB func(string) sqlConn, settled func()) map[string]result {
	t.Helper()
	db := opts.Database
	if err := schema.Migrate(ctx, c, opts); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := c.Exec(ctx, sampleEvents(db, base)); err != nil {
		t.Fatalf("insert sample events: %v", err)
	}
	if settled != nil {
		settled()
	}
	conn := useDB(db)
	out := map[string]result{}
	for _, q := range dashboardQueries(t) {
		for i, qc := range engineContexts(base) {
			sql, err := ExpandClickHouse(q.Text, qc)
			if err != nil {
				t.Errorf("%s: expand: %v", q.Where, err)
				continue
			}
			res, err := query(ctx, conn, sql)
			if err != nil {
				t.Errorf("%s (context %d): %v\n%s", q.Where, i, err, sql)
				continue
			}
			if len(res.rows) == 0 {
				t.Errorf("%s (context %d): no rows from the sample events\n%s", q.Where, i, sql)
			}
			if q.Format == 0 && (len(res.columns) < 2 || res.columns[0] != "time") {
				t.Errorf("%s: a time series query's first column must be time, got %v", q.Where, res.columns)
			}
			out[fmt.Sprintf("%s #%d", q.Where, i)] = res
		}
	}
	checkVariableValues(t, out)
	return out
}

// checkVariableValues: the variables offer the sample's values, with the
// empty channel shown as (none).
func checkVariableValues(t *testing.T, out map[string]result) {
	t.Helper()
	want := map[string][]string{
		"variable app":     {"com.example.app", "com.example.other"},
		"variable channel": {"(none)", "beta", "production"},
		"variable version": {"1.0.0", "1.1.0", "it's"},
	}
	for key, res := range out {
		if !strings.HasSuffix(key, " #1") {
			continue
		}
		for v, vals := range want {
			if !strings.Contains(key, ": "+v+" #") {
				continue
			}
			got := append([]string(nil), res.rows...)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(vals, ",") {
				t.Errorf("%s offers %v, want %v", v, got, vals)
			}
		}
	}
}

// Every dashboard query runs on ClickHouse 18.16 (the distribution's
// server) and on chDB 26.x, after Capstan's own migrations, and both
// engines give the same answers.
func TestDashboardSQLOnBothEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and chDB; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)

	srv := chtest.Shared(t)
	db := chtest.DBName(t)
	admin := srv.Conn(t, db)
	legacy := runDashboardSQL(t, ctx, admin, db, base, func(string) sqlConn { return admin })

	chdb := chdbtest.Open(t)
	cdb := chtest.DBName(t)
	if err := chdb.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cdb); err != nil {
		t.Fatal(err)
	}
	modern := runDashboardSQL(t, ctx, chdb, cdb, base, func(db string) sqlConn { return qualified{chdb, db} })

	t.Logf("%d query runs on ClickHouse 18.16, %d on chDB %s", len(legacy), len(modern), chdb.Version())
	for key, a := range legacy {
		b, ok := modern[key]
		if !ok {
			continue
		}
		if strings.Join(a.rows, "\n") != strings.Join(b.rows, "\n") {
			t.Errorf("%s: ClickHouse 18.16 and chDB %s disagree:\n18.16:\n%s\nchDB:\n%s", key, chdb.Version(),
				strings.Join(a.rows, "\n"), strings.Join(b.rows, "\n"))
		}
	}
}

// qualified runs dashboard SQL against one database of the shared chDB
// session, as Grafana's datasource does with its default database: table
// names are qualified with the database.
type qualified struct {
	c  sqlConn
	db string
}

func (q qualified) Exec(ctx context.Context, sql string, args ...any) error {
	return q.c.Exec(ctx, qualify(sql, q.db), args...)
}

func (q qualified) Query(ctx context.Context, sql string, args ...any) (driver.Rows, error) {
	return q.c.Query(ctx, qualify(sql, q.db), args...)
}

func qualify(sql, db string) string {
	r := strings.NewReplacer(
		"FROM capstan_events_minute", "FROM "+db+".capstan_events_minute",
		"FROM capstan_rollup_minute", "FROM "+db+".capstan_rollup_minute",
		"FROM capstan_events ", "FROM "+db+".capstan_events ",
		"FROM capstan_devices", "FROM "+db+".capstan_devices",
	)
	return r.Replace(sql)
}

// The release-health dashboard counts failures, installs and rollbacks
// with the same conditions as the schema's views and `capstan stats`.
func TestDashboardConditionsMatchSchema(t *testing.T) {
	var sql strings.Builder
	for _, q := range dashboardQueries(t) {
		sql.WriteString(q.Text)
		sql.WriteByte('\n')
	}
	for name, cond := range map[string]string{
		"schema.FailureCondition":        schema.FailureCondition,
		"schema.CountedFailureCondition": schema.CountedFailureCondition,
		"schema.InstallCondition":        schema.InstallCondition,
		"schema.RollbackCondition":       schema.RollbackCondition,
	} {
		if !strings.Contains(sql.String(), cond) {
			t.Errorf("no dashboard query uses %s (%s)", name, cond)
		}
	}
	if !strings.Contains(sql.String(), schema.RollupTable) || !strings.Contains(sql.String(), "uniqExactMerge") || !strings.Contains(sql.String(), "uniqMerge") {
		t.Error("dashboards must read the rollup with uniqExactMerge(events) and uniqMerge(devices)")
	}
	// Every panel counts production devices unless the viewer picks all,
	// and failures leave ignored events out.
	for _, q := range dashboardQueries(t) {
		if q.Variable {
			continue
		}
		if strings.Contains(q.Text, "capstan_events_minute") {
			t.Errorf("%s reads the rollup without the device dimensions", q.Where)
		}
		if !strings.Contains(q.Text, "(${devices:singlequote} = 'all' OR "+schema.ProductionCondition+")") {
			t.Errorf("%s does not filter on the devices variable", q.Where)
		}
		if strings.Contains(strings.ReplaceAll(q.Text, schema.CountedFailureCondition, ""), schema.FailureCondition) {
			t.Errorf("%s counts failures without leaving ignored events out", q.Where)
		}
	}
}

// The devices variable changes what panels count: production builds on
// real devices by default, every device with "all".
func TestDashboardDevicesFilter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	srv := chtest.Shared(t)
	db := chtest.DBName(t)
	conn := srv.Conn(t, db)
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{Database: db}); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, sampleEvents(db, base)); err != nil {
		t.Fatal(err)
	}
	var installs *Query
	for _, q := range dashboardQueries(t) {
		if strings.HasPrefix(q.Text, "SELECT uniqExactMergeIf(events, action = 'set') AS installs\n") {
			installs = &q
		}
	}
	if installs == nil {
		t.Fatal("no installs stat panel")
	}
	count := func(devices string) string {
		qc := engineContexts(base)[0]
		qc.Vars["devices"] = []string{devices}
		sql, err := ExpandClickHouse(installs.Text, qc)
		if err != nil {
			t.Fatal(err)
		}
		res, err := query(ctx, conn, sql)
		if err != nil || len(res.rows) != 1 {
			t.Fatalf("%v %v", err, res)
		}
		return res.rows[0]
	}
	// 120 sets of com.example.app; 19 of them from dev builds or emulators.
	if prod, all := count("production"), count("all"); prod != "101" || all != "120" {
		t.Errorf("installs: production %s, all %s; want 101 and 120", prod, all)
	}
}
