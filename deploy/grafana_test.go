package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var sampleContext = QueryContext{
	From:     time.Unix(1700000000, 0),
	To:       time.Unix(1700003600, 0),
	Interval: 5 * time.Minute,
	Vars: map[string][]string{
		"app":     {"com.example.app"},
		"channel": {"production", "beta"},
		"version": {"1.0.0", "it's"},
	},
}

func TestInterpolateVariables(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "app_id = ${app:singlequote}", want: "app_id = 'com.example.app'"},
		{in: "channel IN (${channel:singlequote})", want: "channel IN ('production','beta')"},
		{in: "v IN (${version:singlequote})", want: `v IN ('1.0.0','it\'s')`},
		{in: "v IN (${version:sqlstring})", want: `v IN ('1.0.0','it''s')`},
		{in: "x = '$app'", want: "x = 'com.example.app'"},
		{in: "x = '[[app]]'", want: "x = 'com.example.app'"},
		{in: "c = ${channel:csv}", want: "c = production,beta"},
		{in: "keeps $__timeFilter(minute) and ${__interval}", want: "keeps $__timeFilter(minute) and ${__interval}"},
		{in: "c = '$channel'", err: "explicit format"},
		{in: "$nope", err: `unknown variable "nope"`},
		{in: "${app:json}", err: "not supported"},
	}
	for _, tt := range tests {
		got, err := InterpolateVariables(tt.in, sampleContext)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("InterpolateVariables(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("InterpolateVariables(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandClickHouseMacros(t *testing.T) {
	qc := sampleContext
	tests := []struct {
		in, want, err string
	}{
		{in: "WHERE $__timeFilter(minute)", want: "WHERE minute >= toDateTime(1700000000) AND minute <= toDateTime(1700003600)"},
		{in: "WHERE $__timeFilter_ms(t)", want: "WHERE t >= fromUnixTimestamp64Milli(1700000000000) AND t <= fromUnixTimestamp64Milli(1700003600000)"},
		{in: "$__fromTime, $__toTime", want: "toDateTime(1700000000), toDateTime(1700003600)"},
		{in: "$__fromTime_ms", want: "fromUnixTimestamp64Milli(1700000000000)"},
		{in: "intDiv(x, $__interval_s)", want: "intDiv(x, 300)"},
		{in: "$__timeInterval(minute)", want: "toStartOfInterval(toDateTime(minute), INTERVAL 300 second)"},
		{in: "$__dateFilter(d)", want: "d >= toDate('2023-11-14') AND d <= toDate('2023-11-14')"},
		{in: "$__dateTimeFilter(d, t)", want: "(d >= toDate('2023-11-14') AND d <= toDate('2023-11-14')) AND (t >= toDateTime(1700000000) AND t <= toDateTime(1700003600))"},
		{in: "$__timeFilter(toDateTime(f(a, b)))", want: "toDateTime(f(a, b)) >= toDateTime(1700000000) AND toDateTime(f(a, b)) <= toDateTime(1700003600)"},
		{in: "$__timeFilter(minute", err: "unbalanced"},
		{in: "$__timeFilter", err: "needs"},
		{in: "$__timeFilter(a, b)", err: "2 argument(s), want 1"},
		{in: "$__conditionalAll(x, $app)", err: "unknown ClickHouse macro"},
	}
	for _, tt := range tests {
		got, err := ExpandClickHouseMacros(tt.in, qc)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ExpandClickHouseMacros(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ExpandClickHouseMacros(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// Intervals under a second are clamped to 1, as the plugin does.
	qc.Interval = 10 * time.Millisecond
	if got, _ := ExpandClickHouseMacros("$__interval_s", qc); got != "1" {
		t.Errorf("$__interval_s at 10ms = %s, want 1", got)
	}
}

func TestExpandPromQL(t *testing.T) {
	qc := sampleContext
	qc.Interval = 15 * time.Second
	got, err := ExpandPromQL(`sum(rate(x{app=~"$app"}[$__rate_interval])) / $__range_s`, qc)
	if err == nil {
		t.Errorf("unknown $__ variable accepted: %s", got)
	}
	got, err = ExpandPromQL(`sum(rate(x{app=~"$app"}[$__rate_interval])) + sum(increase(x[$__range]))`, qc)
	if want := `sum(rate(x{app=~"com.example.app"}[1m])) + sum(increase(x[60m]))`; err != nil || got != want {
		t.Errorf("ExpandPromQL = %q, %v; want %q", got, err, want)
	}
}

func TestQueriesFindsEveryTarget(t *testing.T) {
	raw := []byte(`{
	  "panels": [
	    {"id": 1, "type": "row", "title": "r", "panels": [
	      {"id": 2, "type": "stat", "title": "s", "datasource": {"type": "prometheus", "uid": "p"},
	       "targets": [{"refId": "A", "expr": "up"}]}]},
	    {"id": 3, "type": "table", "title": "t", "datasource": {"type": "prometheus", "uid": "p"},
	     "targets": [{"refId": "A", "datasource": {"type": "grafana-clickhouse-datasource", "uid": "c"}, "rawSql": "SELECT 1", "format": 1}]}
	  ],
	  "templating": {"list": [
	    {"name": "a", "type": "query", "datasource": {"type": "grafana-clickhouse-datasource", "uid": "c"}, "query": "SELECT 2"},
	    {"name": "b", "type": "query", "datasource": {"type": "grafana-clickhouse-datasource", "uid": "c"}, "query": {"rawSql": "SELECT 3"}},
	    {"name": "k", "type": "constant", "query": "x"}
	  ]}
	}`)
	d, err := ParseDashboard(raw)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := d.Queries()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range qs {
		got = append(got, q.DatasourceUID+":"+q.Text)
	}
	want := "p:up c:SELECT 1 c:SELECT 2 c:SELECT 3"
	if strings.Join(got, " ") != want {
		t.Errorf("queries = %v, want %s", got, want)
	}
	if qs[1].Format != 1 || qs[0].Format != -1 {
		t.Errorf("formats = %d, %d", qs[0].Format, qs[1].Format)
	}
}

// ------------------------------------------------------------ dashboards

type provisionedDatasources struct {
	Datasources []struct {
		Name           string            `yaml:"name"`
		UID            string            `yaml:"uid"`
		Type           string            `yaml:"type"`
		JSONData       map[string]any    `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

func loadDatasources(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob("grafana/provisioning/datasources/*.yml")
	if len(files) == 0 {
		t.Fatal("no datasource provisioning files")
	}
	types := map[string]string{}
	for _, f := range files {
		var p provisionedDatasources
		if err := yaml.Unmarshal(readFile(t, f), &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, ds := range p.Datasources {
			if ds.UID == "" {
				t.Errorf("%s: datasource %s has no fixed uid", f, ds.Name)
			}
			types[ds.UID] = ds.Type
			if ds.Type == ClickHouseType {
				if ds.JSONData["username"] != "grafana" {
					t.Errorf("%s: ClickHouse datasource must use the read-only grafana user, has %v", f, ds.JSONData["username"])
				}
				if !strings.HasPrefix(ds.SecureJSONData["password"], "$") {
					t.Errorf("%s: ClickHouse password must come from the environment", f)
				}
			}
		}
	}
	return types
}

type dashboardFile struct {
	path string
	d    *Dashboard
}

func loadDashboards(t *testing.T) []dashboardFile {
	t.Helper()
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	var out []dashboardFile
	for _, f := range files {
		d, err := ParseDashboard(readFile(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, dashboardFile{f, d})
	}
	for _, want := range []string{"release-health.json", "pipeline.json"} {
		found := false
		for _, df := range out {
			found = found || filepath.Base(df.path) == want
		}
		if !found {
			t.Errorf("dashboard %s missing", want)
		}
	}
	return out
}

func TestDashboardsStructure(t *testing.T) {
	types := loadDatasources(t)
	uids := map[string]string{}
	for _, df := range loadDashboards(t) {
		d := df.d
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: needs uid and title", df.path)
		}
		if prev, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s share uid %s", prev, df.path, d.UID)
		}
		uids[d.UID] = df.path
		ids := map[int]bool{}
		for _, p := range d.AllPanels() {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", df.path, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if len(p.GridPos) == 0 {
				t.Errorf("%s: panel %q has no gridPos", df.path, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", df.path, p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if refs[tg.RefID] || tg.RefID == "" {
					t.Errorf("%s: panel %q: refId %q empty or repeated", df.path, p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
			}
		}
		qs, err := d.Queries()
		if err != nil {
			t.Fatalf("%s: %v", df.path, err)
		}
		vars := map[string]bool{}
		for _, v := range d.Templating.List {
			vars[v.Name] = true
		}
		for _, q := range qs {
			where := df.path + ": " + q.Where
			typ, ok := types[q.DatasourceUID]
			if !ok {
				t.Errorf("%s: datasource uid %q is not provisioned", where, q.DatasourceUID)
			} else if typ != q.DatasourceType {
				t.Errorf("%s: datasource %s has type %s, the dashboard says %s", where, q.DatasourceUID, typ, q.DatasourceType)
			}
			if strings.TrimSpace(q.Text) == "" {
				t.Errorf("%s: empty query", where)
			}
			for _, m := range grafanaVar.FindAllStringSubmatch(q.Text, -1) {
				name := m[1] + m[2] + m[4]
				if !strings.HasPrefix(name, "__") && !vars[name] {
					t.Errorf("%s: uses undefined variable %s", where, name)
				}
			}
			if q.DatasourceType == ClickHouseType && !q.Variable && q.Format != 0 && q.Format != 1 {
				t.Errorf("%s: ClickHouse target needs format 0 (time series) or 1 (table), has %d", where, q.Format)
			}
		}
	}
	rh := dashboardByFile(t, "release-health.json")
	for _, name := range []string{"app", "channel", "version"} {
		found := false
		for _, v := range rh.Templating.List {
			if v.Name == name {
				found = true
				if v.Datasource == nil || v.Datasource.Type != ClickHouseType {
					t.Errorf("release health variable %s must come from ClickHouse", name)
				}
			}
		}
		if !found {
			t.Errorf("release health dashboard lacks variable %s", name)
		}
	}
	// Production devices by default, as capstan stats and the alerts.
	var devices struct {
		Templating struct {
			List []struct {
				Name    string `json:"name"`
				Type    string `json:"type"`
				Query   string `json:"query"`
				Current struct {
					Value string `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join("grafana/dashboards", "release-health.json")), &devices); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range devices.Templating.List {
		if v.Name == "devices" {
			found = v.Type == "custom" && v.Query == "production,all" && v.Current.Value == "production"
		}
	}
	if !found {
		t.Error("release health needs a custom variable devices (production,all) defaulting to production")
	}
}

func dashboardByFile(t *testing.T, base string) *Dashboard {
	t.Helper()
	d, err := ParseDashboard(readFile(t, filepath.Join("grafana/dashboards", base)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The dashboards provider reads the directory compose mounts them into.
func TestDashboardProvisioning(t *testing.T) {
	var p struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(readFile(t, "grafana/provisioning/dashboards/capstan.yml"), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %d", len(p.Providers))
	}
	compose := string(readFile(t, filepath.Join(repoRoot, "docker-compose.yml")))
	mount := "./deploy/grafana/dashboards:" + p.Providers[0].Options.Path + ":ro"
	if !strings.Contains(compose, mount) {
		t.Errorf("docker-compose.yml must mount %s", mount)
	}
	if !strings.Contains(compose, "./deploy/grafana/provisioning:/etc/grafana/provisioning") {
		t.Error("docker-compose.yml must mount the provisioning directory")
	}
	if !strings.Contains(compose, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: "+p.Providers[0].Options.Path+"/release-health.json") {
		t.Error("the home dashboard must be the provisioned release-health.json")
	}
	if !strings.Contains(compose, "grafana-clickhouse-datasource@") {
		t.Error("Grafana must install grafana-clickhouse-datasource at a pinned version")
	}
}

// Every PromQL expression of the dashboards parses (promtool checks them as
// recording rules) and uses only Capstan's metrics.
func TestDashboardPromQL(t *testing.T) {
	promtool := requireTool(t, "promtool")
	source := sourceMetrics(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard-expressions\n    rules:\n")
	n := 0
	for _, df := range loadDashboards(t) {
		qs, err := df.d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.DatasourceType != PrometheusType {
				continue
			}
			qc := sampleContext
			qc.Interval = 15 * time.Second
			expr, err := ExpandPromQL(q.Text, qc)
			if err != nil {
				t.Errorf("%s %s: %v", df.path, q.Where, err)
				continue
			}
			checkMetricNames(t, df.path+" "+q.Where, expr, source)
			n++
			fmt.Fprintf(&rules, "      # %s %s\n      - record: dashboard:expr:%d\n        expr: %q\n", filepath.Base(df.path), q.Where, n, expr)
		}
	}
	if n == 0 {
		t.Fatal("no Prometheus queries found")
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, ".", nil, promtool, "check", "rules", path); err != nil {
		t.Fatalf("dashboard PromQL does not parse: %v\n%s\n%s", err, out, rules.String())
	}
}
