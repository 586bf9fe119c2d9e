package guard

import (
	"context"
	"fmt"
	"time"

	"github.com/capstan-io/capstan/rollout"
	"github.com/capstan-io/capstan/schema"
)

// SQL conditions over the rollup's action column for the gate's counts.
const (
	// installFailure: the bundle did not install or was reverted. Crashes
	// are counted apart, per active device.
	installFailure = "((endsWith(action, '_fail') OR action IN ('session_key_required', 'checksum_required')) AND ignored = 0)"
	crash          = "(startsWith(action, 'app_crash') OR action = 'app_anr')"
)

// countsSQL reads, for one channel, the distinct production devices of
// the rollout and base bundles from `since`, and the rollout bundle's
// installs from `stepSince`. The rollup is per minute: a window starts at
// its first whole minute, so it may count up to a minute more than asked.
// Literals are rendered, as in schema's reports, so the same text runs
// on every server version.
func countsSQL(db, app, channel, rolloutBundle, baseBundle string, since, stepSince time.Time) string {
	from := min(since.Unix(), stepSince.Unix())
	table := schema.RollupTable
	if db != "" {
		table = "`" + db + "`." + table
	}
	return fmt.Sprintf(`SELECT
    version_name,
    uniqMergeIf(devices, minute >= toStartOfMinute(toDateTime(%[1]d)) AND (action = 'set' OR %[2]s)) AS attempts,
    uniqMergeIf(devices, minute >= toStartOfMinute(toDateTime(%[1]d)) AND %[2]s) AS failures,
    uniqMergeIf(devices, minute >= toStartOfMinute(toDateTime(%[1]d)) AND %[3]s) AS active,
    uniqMergeIf(devices, minute >= toStartOfMinute(toDateTime(%[1]d)) AND %[4]s) AS crashed,
    uniqMergeIf(devices, minute >= toStartOfMinute(toDateTime(%[1]d)) AND action = 'set') AS installs,
    uniqMergeIf(devices, minute >= toStartOfMinute(toDateTime(%[5]d)) AND action = 'set') AS step_installs
FROM %[6]s
WHERE app_id = %[7]s AND channel = %[8]s AND version_name IN (%[9]s, %[10]s)
    AND minute >= toStartOfMinute(toDateTime(%[11]d)) AND %[12]s
GROUP BY version_name`,
		since.Unix(), installFailure, schema.RunningCondition, crash, stepSince.Unix(), table,
		schema.Quote(app), schema.Quote(channel), schema.Quote(rolloutBundle), schema.Quote(baseBundle),
		from, schema.ProductionCondition)
}

// countChannel runs countsSQL and sorts its rows into the gate's input.
func countChannel(ctx context.Context, q schema.Querier, db, app, channel, rolloutBundle, baseBundle string, since, stepSince time.Time) (rollout.Input, error) {
	var in rollout.Input
	rows, err := q.Query(ctx, countsSQL(db, app, channel, rolloutBundle, baseBundle, since, stepSince))
	if err != nil {
		return in, fmt.Errorf("rollout counts of %s/%s: %w", app, channel, err)
	}
	defer rows.Close()
	for rows.Next() {
		var version string
		var c rollout.Counts
		var step uint64
		if err := rows.Scan(&version, &c.Attempts, &c.Failures, &c.Active, &c.Crashed, &c.Installs, &step); err != nil {
			return in, fmt.Errorf("rollout counts of %s/%s: %w", app, channel, err)
		}
		switch version {
		case rolloutBundle:
			in.Rollout, in.StepInstalls = c, step
		case baseBundle:
			in.Base = c
		}
	}
	if err := rows.Err(); err != nil {
		return in, fmt.Errorf("rollout counts of %s/%s: %w", app, channel, err)
	}
	return in, nil
}
