package deploy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Datasource plugin ids used by Capstan's dashboards.
const (
	PrometheusType = "prometheus"
	ClickHouseType = "grafana-clickhouse-datasource"
)

// Query is one query found in a dashboard: a panel target or a template
// variable's query.
type Query struct {
	// Where names the place in the dashboard, for error messages
	// ("panel 3 \"Installs\" target A", "variable app").
	Where string
	// Variable is true for template variable queries.
	Variable bool
	// Panel is the panel type ("timeseries", "table", ...), empty for variables.
	Panel string
	// DatasourceType and DatasourceUID come from the target, else the panel.
	DatasourceType string
	DatasourceUID  string
	// Text is the PromQL expression or the ClickHouse SQL, unexpanded.
	Text string
	// Format is the ClickHouse plugin's result format (0 time series,
	// 1 table); -1 when not set.
	Format int
}

// Dashboard is the part of a Grafana dashboard JSON model the checks read.
type Dashboard struct {
	UID        string     `json:"uid"`
	Title      string     `json:"title"`
	Panels     []Panel    `json:"panels"`
	Templating Templating `json:"templating"`
}

// Panel is a dashboard panel; rows nest their collapsed panels.
type Panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *DatasourceRef  `json:"datasource"`
	Targets    []Target        `json:"targets"`
	Panels     []Panel         `json:"panels"`
	GridPos    json.RawMessage `json:"gridPos"`
}

// DatasourceRef points at a provisioned datasource by uid.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is a panel query in either datasource's model.
type Target struct {
	RefID      string         `json:"refId"`
	Datasource *DatasourceRef `json:"datasource"`
	Expr       string         `json:"expr"`   // Prometheus
	RawSQL     string         `json:"rawSql"` // ClickHouse
	EditorType string         `json:"editorType"`
	QueryType  string         `json:"queryType"`
	Format     *int           `json:"format"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a template variable. Query is a string (the SQL or PromQL)
// or an object with rawSql/query.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *DatasourceRef  `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

// ParseDashboard decodes a dashboard JSON file.
func ParseDashboard(raw []byte) (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	return &d, nil
}

// Queries lists every query of the dashboard: all targets of all panels
// (rows included) and every query variable.
func (d *Dashboard) Queries() ([]Query, error) {
	var out []Query
	var walk func(ps []Panel) error
	walk = func(ps []Panel) error {
		for _, p := range ps {
			if err := walk(p.Panels); err != nil {
				return err
			}
			for _, t := range p.Targets {
				ds := t.Datasource
				if ds == nil || ds.UID == "" {
					ds = p.Datasource
				}
				if ds == nil {
					return fmt.Errorf("panel %d %q target %s: no datasource", p.ID, p.Title, t.RefID)
				}
				q := Query{
					Where:          fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, t.RefID),
					Panel:          p.Type,
					DatasourceType: ds.Type,
					DatasourceUID:  ds.UID,
					Format:         -1,
				}
				if t.Format != nil {
					q.Format = *t.Format
				}
				switch ds.Type {
				case ClickHouseType:
					q.Text = t.RawSQL
				default:
					q.Text = t.Expr
				}
				out = append(out, q)
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil {
			return nil, fmt.Errorf("variable %s: no datasource", v.Name)
		}
		text, err := variableQueryText(v.Query)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		out = append(out, Query{
			Where:          "variable " + v.Name,
			Variable:       true,
			DatasourceType: v.Datasource.Type,
			DatasourceUID:  v.Datasource.UID,
			Text:           text,
			Format:         1,
		})
	}
	return out, nil
}

func variableQueryText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", fmt.Errorf("no query")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		RawSQL string `json:"rawSql"`
		Query  string `json:"query"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("query is neither a string nor an object: %w", err)
	}
	if obj.RawSQL != "" {
		return obj.RawSQL, nil
	}
	return obj.Query, nil
}

// AllPanels returns every panel, rows' nested panels included, in order.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func(ps []Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// QueryContext is what Grafana knows when it sends a query: the time
// range, the interval it picked for the panel and the variables' values.
type QueryContext struct {
	From, To time.Time
	Interval time.Duration
	// Vars maps a variable name to its selected values (several for a
	// multi-value variable or "All").
	Vars map[string][]string
}

// grafanaVar matches Grafana's variable syntaxes: $name, ${name},
// ${name:format} and [[name]] / [[name:format]].
var grafanaVar = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]`)

// InterpolateVariables replaces dashboard variables the way Grafana's
// frontend does before a query leaves the browser. Names starting with
// "__" are Grafana's or the datasource's own and are left for
// ExpandClickHouseMacros (or PromQL's $__rate_interval handling).
func InterpolateVariables(text string, qc QueryContext) (string, error) {
	var firstErr error
	out := grafanaVar.ReplaceAllStringFunc(text, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name, format := sub[1], ""
		switch {
		case sub[2] != "":
			name, format = sub[2], sub[3]
		case sub[4] != "":
			name, format = sub[4], sub[5]
		}
		if strings.HasPrefix(name, "__") {
			return m
		}
		vals, ok := qc.Vars[name]
		if !ok {
			if firstErr == nil {
				firstErr = fmt.Errorf("unknown variable %q", name)
			}
			return m
		}
		s, err := formatValues(vals, format)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("variable %q: %w", name, err)
		}
		return s
	})
	return out, firstErr
}

// formatValues applies a Grafana variable format.
func formatValues(vals []string, format string) (string, error) {
	switch format {
	case "", "raw":
		if len(vals) != 1 {
			return "", fmt.Errorf("%d values need an explicit format such as :singlequote", len(vals))
		}
		return vals[0], nil
	case "singlequote":
		q := make([]string, len(vals))
		for i, v := range vals {
			q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
		}
		return strings.Join(q, ","), nil
	case "sqlstring":
		q := make([]string, len(vals))
		for i, v := range vals {
			q[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		return strings.Join(q, ","), nil
	case "csv":
		return strings.Join(vals, ","), nil
	default:
		return "", fmt.Errorf("variable format %q is not supported by these checks", format)
	}
}

// clickHouseMacros are the macros grafana-clickhouse-datasource (v4)
// expands in its backend, with the number of arguments each takes
// (-1: no parentheses).
var clickHouseMacros = map[string]int{
	"fromTime":        -1,
	"toTime":          -1,
	"fromTime_ms":     -1,
	"toTime_ms":       -1,
	"interval_s":      -1,
	"timeFilter":      1,
	"timeFilter_ms":   1,
	"dateFilter":      1,
	"dateTimeFilter":  2,
	"dt":              2,
	"timeInterval":    1,
	"timeInterval_ms": 1,
}

var macroName = regexp.MustCompile(`\$__(\w+)`)

// ExpandClickHouseMacros expands the ClickHouse plugin's $__ macros into
// the SQL the plugin sends to ClickHouse. Unknown macros are an error: the
// plugin would send them verbatim and ClickHouse would reject the query.
func ExpandClickHouseMacros(sql string, qc QueryContext) (string, error) {
	var b strings.Builder
	rest := sql
	for {
		loc := macroName.FindStringSubmatchIndex(rest)
		if loc == nil {
			b.WriteString(rest)
			return b.String(), nil
		}
		name := rest[loc[2]:loc[3]]
		// The longest known name wins ("fromTime_ms" over "fromTime").
		nargs, ok := clickHouseMacros[name]
		if !ok {
			return "", fmt.Errorf("unknown ClickHouse macro $__%s", name)
		}
		b.WriteString(rest[:loc[0]])
		rest = rest[loc[1]:]
		var args []string
		if nargs >= 0 {
			if !strings.HasPrefix(rest, "(") {
				return "", fmt.Errorf("macro $__%s needs (%d argument(s))", name, nargs)
			}
			inner, after, err := balanced(rest)
			if err != nil {
				return "", fmt.Errorf("macro $__%s: %w", name, err)
			}
			args = splitArgs(inner)
			if len(args) != nargs {
				return "", fmt.Errorf("macro $__%s: %d argument(s), want %d", name, len(args), nargs)
			}
			rest = after
		}
		b.WriteString(clickHouseMacro(name, args, qc))
	}
}

// clickHouseMacro renders one macro exactly as the plugin's pkg/macros does.
func clickHouseMacro(name string, args []string, qc QueryContext) string {
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	dt64 := func(t time.Time) string { return fmt.Sprintf("fromUnixTimestamp64Milli(%d)", t.UnixMilli()) }
	date := func(t time.Time) string { return fmt.Sprintf("toDate('%s')", t.UTC().Format("2006-01-02")) }
	secs := int(qc.Interval.Seconds())
	if secs < 1 {
		secs = 1
	}
	ms := int(qc.Interval.Milliseconds())
	if ms < 1 {
		ms = 1
	}
	switch name {
	case "fromTime":
		return dt(qc.From)
	case "toTime":
		return dt(qc.To)
	case "fromTime_ms":
		return dt64(qc.From)
	case "toTime_ms":
		return dt64(qc.To)
	case "interval_s":
		return strconv.Itoa(secs)
	case "timeFilter":
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dt(qc.From), args[0], dt(qc.To))
	case "timeFilter_ms":
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], dt64(qc.From), args[0], dt64(qc.To))
	case "dateFilter":
		return fmt.Sprintf("%s >= %s AND %s <= %s", args[0], date(qc.From), args[0], date(qc.To))
	case "dateTimeFilter", "dt":
		return fmt.Sprintf("(%s >= %s AND %s <= %s) AND (%s >= %s AND %s <= %s)",
			args[0], date(qc.From), args[0], date(qc.To), args[1], dt(qc.From), args[1], dt(qc.To))
	case "timeInterval":
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], secs)
	case "timeInterval_ms":
		return fmt.Sprintf("toStartOfInterval(toDateTime64(%s, 3), INTERVAL %d millisecond)", args[0], ms)
	}
	panic("unreachable: macro table and renderer disagree on " + name)
}

// balanced takes "(...)rest" and returns the text inside the outer
// parentheses and what follows them, skipping parentheses in quotes.
func balanced(s string) (inner, rest string, err error) {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return s[1:i], s[i+1:], nil
			}
		}
	}
	return "", "", fmt.Errorf("unbalanced parentheses")
}

// splitArgs splits macro arguments on top-level commas.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if strings.TrimSpace(s) != "" {
		out = append(out, strings.TrimSpace(s[start:]))
	}
	return out
}

// ExpandClickHouse turns a dashboard's ClickHouse query into the SQL the
// server receives: variables first (Grafana's frontend), then the plugin's
// macros (its backend).
func ExpandClickHouse(sql string, qc QueryContext) (string, error) {
	s, err := InterpolateVariables(sql, qc)
	if err != nil {
		return "", err
	}
	return ExpandClickHouseMacros(s, qc)
}

// ExpandPromQL substitutes Grafana's interval variables and the dashboard
// variables so the expression can be checked by promtool.
func ExpandPromQL(expr string, qc QueryContext) (string, error) {
	values := map[string]string{
		"rate_interval": promDuration(4 * qc.Interval),
		"interval":      promDuration(qc.Interval),
		"range":         promDuration(qc.To.Sub(qc.From)),
	}
	s := promBuiltin.ReplaceAllStringFunc(expr, func(m string) string {
		sub := promBuiltin.FindStringSubmatch(m)
		return values[sub[1]+sub[2]]
	})
	s, err := InterpolateVariables(s, qc)
	if err != nil {
		return "", err
	}
	if m := macroName.FindString(s); m != "" {
		return "", fmt.Errorf("unexpanded Grafana variable %s", m)
	}
	return s, nil
}

// promBuiltin matches the Grafana variables a Prometheus query may use.
var promBuiltin = regexp.MustCompile(`\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}`)

func promDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%ds", int(d/time.Second))
}

// MetricNames returns the capstan_* metric names an expression uses,
// sorted and without duplicates.
func MetricNames(expr string) []string {
	seen := map[string]bool{}
	for _, m := range metricName.FindAllString(expr, -1) {
		seen[m] = true
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

var metricName = regexp.MustCompile(`\bcapstan_[a-z0-9_]+`)
