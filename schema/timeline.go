package schema

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// CrashCondition: the app crashed or did not answer (the rollout guard's
// crash count, over the rollup's action column).
const CrashCondition = "(startsWith(action, 'app_crash') OR action = 'app_anr')"

// TimelineQuery is a ReportQuery cut into buckets of Step. Since is
// moved back to the start of its bucket (see TimelineBuckets).
type TimelineQuery struct {
	ReportQuery
	Step time.Duration // a whole number of minutes, the rollup's grain
}

// Timeline is release health per bucket and version. Every series
// array has len(Buckets) entries; buckets without events hold zeros.
type Timeline struct {
	Since       time.Time        `json:"since"` // start of the first bucket
	Until       time.Time        `json:"until"`
	StepSeconds int64            `json:"step_seconds"`
	Buckets     []time.Time      `json:"buckets"` // bucket starts, multiples of the step since the epoch
	Series      []TimelineSeries `json:"series"`
}

// TimelineSeries is one version's counts per bucket, defined as in
// ReportRow; Crashes counts distinct devices that reported app_crash*
// or app_anr (CrashCondition), as the rollout guard does.
type TimelineSeries struct {
	Version       string   `json:"version"`
	ActiveDevices []uint64 `json:"active_devices"`
	Installs      []uint64 `json:"installs"`
	Failures      []uint64 `json:"failures"`
	Rollbacks     []uint64 `json:"rollbacks"`
	Crashes       []uint64 `json:"crashes"`
}

// TimelineRow is one bucket of one version as TimelineSQL returns it.
type TimelineRow struct {
	Bucket        time.Time
	Version       string
	ActiveDevices uint64
	Installs      uint64
	Failures      uint64
	Rollbacks     uint64
	Crashes       uint64
}

// TimelineBuckets aligns [since, until) to step: start is since rounded
// down to a multiple of step since the epoch, n the number of buckets
// from start that cover until (at least 1).
func TimelineBuckets(since, until time.Time, step time.Duration) (start time.Time, n int) {
	if step <= 0 {
		return since, 0
	}
	s := int64(step / time.Second)
	if s <= 0 {
		return since, 0
	}
	from := since.Unix()
	start = time.Unix(from-mod(from, s), 0).UTC()
	span := until.Sub(start)
	n = int(span / step)
	if span%step != 0 || n <= 0 {
		n = max(n, 0) + 1
	}
	return start, n
}

// mod is a non-negative remainder (times before 1970 round down too).
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// TimelineSQL counts per bucket and version over the rollup. Columns:
// bucket (epoch seconds), version_name, active_devices, installs,
// failures, rollbacks, crashes. q.Since must already be aligned
// (Timeline does it).
func TimelineSQL(q TimelineQuery) string {
	step := int64(q.Step / time.Second)
	return fmt.Sprintf(`SELECT
    toUInt64(intDiv(toUInt32(minute), %[1]d) * %[1]d) AS bucket,
    version_name,
    uniqMergeIf(devices, %[2]s) AS active_devices,
    uniqExactMergeIf(events, %[3]s) AS installs,
    uniqExactMergeIf(events, %[4]s) AS failures,
    uniqExactMergeIf(events, %[5]s) AS rollbacks,
    uniqMergeIf(devices, %[6]s) AS crashed
FROM %[7]s
WHERE %[8]s
GROUP BY bucket, version_name
ORDER BY bucket, version_name`,
		step, RunningCondition, InstallCondition, CountedFailureCondition, RollbackCondition, CrashCondition,
		qualify(q.Database, RollupTable), reportWhere(q.ReportQuery))
}

// TimelineReport runs TimelineSQL over q's aligned window and shapes it.
func TimelineReport(ctx context.Context, conn Querier, q TimelineQuery) (Timeline, error) {
	if q.Step < time.Minute || q.Step%time.Minute != 0 {
		return Timeline{}, fmt.Errorf("timeline step %s: want a whole number of minutes", q.Step)
	}
	if q.Until.IsZero() {
		q.Until = time.Now()
	}
	start, n := TimelineBuckets(q.Since, q.Until, q.Step)
	q.Since = start
	rows, err := conn.Query(ctx, TimelineSQL(q))
	if err != nil {
		return Timeline{}, fmt.Errorf("timeline query: %w", err)
	}
	defer rows.Close()
	var got []TimelineRow
	for rows.Next() {
		var r TimelineRow
		var bucket uint64
		if err := rows.Scan(&bucket, &r.Version, &r.ActiveDevices, &r.Installs, &r.Failures, &r.Rollbacks, &r.Crashes); err != nil {
			return Timeline{}, fmt.Errorf("timeline row: %w", err)
		}
		r.Bucket = time.Unix(int64(bucket), 0).UTC()
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return Timeline{}, fmt.Errorf("timeline rows: %w", err)
	}
	return ShapeTimeline(start, q.Until, q.Step, n, got), nil
}

// ShapeTimeline lays rows out as n buckets of step from start, one series
// per version sorted by version, zeros where a version had no row. Rows
// outside the buckets are dropped.
func ShapeTimeline(start, until time.Time, step time.Duration, n int, rows []TimelineRow) Timeline {
	t := Timeline{Since: start.UTC(), Until: until.UTC(), StepSeconds: int64(step / time.Second), Buckets: make([]time.Time, n), Series: []TimelineSeries{}}
	for i := range n {
		t.Buckets[i] = start.Add(time.Duration(i) * step).UTC()
	}
	index := map[string]int{}
	for _, r := range rows {
		if step <= 0 || r.Bucket.Before(start) {
			continue
		}
		off := r.Bucket.Sub(start)
		i := int(off / step)
		if i >= n || off%step != 0 {
			continue
		}
		si, ok := index[r.Version]
		if !ok {
			si = len(t.Series)
			index[r.Version] = si
			t.Series = append(t.Series, TimelineSeries{Version: r.Version, ActiveDevices: make([]uint64, n), Installs: make([]uint64, n),
				Failures: make([]uint64, n), Rollbacks: make([]uint64, n), Crashes: make([]uint64, n)})
		}
		s := &t.Series[si]
		s.ActiveDevices[i] += r.ActiveDevices
		s.Installs[i] += r.Installs
		s.Failures[i] += r.Failures
		s.Rollbacks[i] += r.Rollbacks
		s.Crashes[i] += r.Crashes
	}
	sort.Slice(t.Series, func(i, j int) bool { return t.Series[i].Version < t.Series[j].Version })
	return t
}
