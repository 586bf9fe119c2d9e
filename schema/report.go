package schema

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ReportQuery selects the window and scope of a release-health report.
type ReportQuery struct {
	Database string // "" = the connection's database
	App      string // "" = every app
	Channel  string // "" = every channel
	Since    time.Time
	Until    time.Time // zero = now
	// IncludeDev also counts dev builds (is_prod false) and emulators;
	// by default only production builds on real devices count.
	IncludeDev bool
}

// ReportRow is the health of one bundle version of one app over the window.
//
//   - Installs: distinct `set` events (a device installing the version).
//   - ActiveDevices: distinct devices that reported running the version
//     (RunningCondition; approximate above ~65k devices: uniq).
//   - Failures: distinct failure events (CountedFailureCondition: legacy
//     plugins' download_fail is kept but not counted) about the version.
//   - FailureRate: Failures / (Installs + Failures), the share of install
//     outcomes and failure signals that were failures; 0 with neither.
//   - Rollbacks: distinct update_fail, reset and revert events.
//   - Events: all distinct events about the version.
//
// Only production builds on real devices count unless IncludeDev.
type ReportRow struct {
	App              string        `json:"app"`
	Version          string        `json:"version"`
	Installs         uint64        `json:"installs"`
	ActiveDevices    uint64        `json:"active_devices"`
	Failures         uint64        `json:"failures"`
	FailureRate      float64       `json:"failure_rate"`
	Rollbacks        uint64        `json:"rollbacks"`
	Events           uint64        `json:"events"`
	FailuresByAction []ActionCount `json:"failures_by_action"`
}

// ActionCount is how many distinct events one action had.
type ActionCount struct {
	Action string `json:"action"`
	Count  uint64 `json:"count"`
}

// reportWhere is the rollup filter of q, with literals rendered (the same
// text runs on 18.16 and on modern servers, and through the HTTP interface).
func reportWhere(q ReportQuery) string {
	until := q.Until
	if until.IsZero() {
		until = time.Now()
	}
	w := []string{
		fmt.Sprintf("minute >= toDateTime(%d)", q.Since.Unix()),
		fmt.Sprintf("minute < toDateTime(%d)", ceilUnix(until)),
	}
	if q.App != "" {
		w = append(w, "app_id = "+Quote(q.App))
	}
	if q.Channel != "" {
		w = append(w, "channel = "+Quote(q.Channel))
	}
	if !q.IncludeDev {
		w = append(w, ProductionCondition)
	}
	return strings.Join(w, " AND ")
}

// ceilUnix is t in whole seconds, rounded up. A minute row holds events
// from its first second on, so at 12:00:00.4 the 12:00 row already
// counts; truncating until would leave it out for that second.
func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// ReportSQL is the per app and version summary over the rollup. Columns:
// app_id, version_name, installs, active_devices, failures, rollbacks,
// total_events. Aliases must not reuse the column names events/devices:
// ClickHouse aliases are visible in the whole query. Dashboards reuse the
// pattern with their own time filter on `minute`.
func ReportSQL(q ReportQuery) string {
	return `SELECT
    app_id,
    version_name,
    uniqExactMergeIf(events, ` + InstallCondition + `) AS installs,
    uniqMergeIf(devices, ` + RunningCondition + `) AS active_devices,
    uniqExactMergeIf(events, ` + CountedFailureCondition + `) AS failures,
    uniqExactMergeIf(events, ` + RollbackCondition + `) AS rollbacks,
    uniqExactMerge(events) AS total_events
FROM ` + qualify(q.Database, RollupTable) + `
WHERE ` + reportWhere(q) + `
GROUP BY app_id, version_name
ORDER BY app_id, version_name`
}

// FailuresSQL counts failure events per app, version and action. Columns:
// app_id, version_name, action, failures.
func FailuresSQL(q ReportQuery) string {
	return `SELECT
    app_id,
    version_name,
    action,
    uniqExactMerge(events) AS failures
FROM ` + qualify(q.Database, RollupTable) + `
WHERE ` + reportWhere(q) + ` AND ` + CountedFailureCondition + `
GROUP BY app_id, version_name, action
ORDER BY app_id, version_name, failures DESC, action`
}

// Report runs ReportSQL and FailuresSQL and joins them.
func Report(ctx context.Context, conn Querier, q ReportQuery) ([]ReportRow, error) {
	if q.Until.IsZero() {
		q.Until = time.Now()
	}
	rows, err := conn.Query(ctx, ReportSQL(q))
	if err != nil {
		return nil, fmt.Errorf("report query: %w", err)
	}
	defer rows.Close()
	var out []ReportRow
	index := map[[2]string]int{}
	for rows.Next() {
		r := ReportRow{FailuresByAction: []ActionCount{}}
		if err := rows.Scan(&r.App, &r.Version, &r.Installs, &r.ActiveDevices, &r.Failures, &r.Rollbacks, &r.Events); err != nil {
			return nil, fmt.Errorf("report row: %w", err)
		}
		r.FailureRate = FailureRate(r.Installs, r.Failures)
		index[[2]string{r.App, r.Version}] = len(out)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report rows: %w", err)
	}
	rows.Close()

	frows, err := conn.Query(ctx, FailuresSQL(q))
	if err != nil {
		return nil, fmt.Errorf("failures query: %w", err)
	}
	defer frows.Close()
	for frows.Next() {
		var app, version string
		var c ActionCount
		if err := frows.Scan(&app, &version, &c.Action, &c.Count); err != nil {
			return nil, fmt.Errorf("failures row: %w", err)
		}
		if i, ok := index[[2]string{app, version}]; ok {
			out[i].FailuresByAction = append(out[i].FailuresByAction, c)
		}
	}
	if err := frows.Err(); err != nil {
		return nil, fmt.Errorf("failures rows: %w", err)
	}
	for i := range out {
		SortActionCounts(out[i].FailuresByAction)
	}
	return out, nil
}

// FailureRate is failures / (installs + failures), 0 when both are 0.
func FailureRate(installs, failures uint64) float64 {
	if installs+failures == 0 {
		return 0
	}
	return float64(failures) / float64(installs+failures)
}

// SortActionCounts orders by count descending, then action name.
func SortActionCounts(c []ActionCount) {
	sort.Slice(c, func(i, j int) bool {
		if c[i].Count != c[j].Count {
			return c[i].Count > c[j].Count
		}
		return c[i].Action < c[j].Action
	})
}
