package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/capstan-io/capstan/schema"
)

func runStats(ctx context.Context, args []string) error {
	return statsMain(ctx, args, os.Stdout)
}

// statsMain prints release health per app and bundle version from the
// ClickHouse rollup.
func statsMain(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	chURL := stringFlag(fs, "clickhouse-url", "CAPSTAN_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/capstan", "ClickHouse native-protocol URL clickhouse://user:pass@host:9000/db")
	chCluster := stringFlag(fs, "clickhouse-cluster", "CAPSTAN_CLICKHOUSE_CLUSTER", "", clusterFlagHelp)
	app := stringFlag(fs, "app", "CAPSTAN_STATS_APP", "", "only this app id (default: every app)")
	channel := stringFlag(fs, "channel", "CAPSTAN_STATS_CHANNEL", "", "only events from devices on this channel")
	since := durationFlag(fs, "since", "CAPSTAN_STATS_SINCE", 24*time.Hour, "window: this long before now")
	asJSON := boolFlag(fs, "json", "CAPSTAN_STATS_JSON", false, "print JSON instead of a table")
	includeDev := boolFlag(fs, "include-dev", "CAPSTAN_STATS_INCLUDE_DEV", false, "also count dev builds (is_prod false) and emulators (default: production builds on real devices only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *since <= 0 {
		return fmt.Errorf("--since must be positive, got %s", *since)
	}
	conn, err := schema.OpenClickHouseCluster(ctx, *chURL, *chCluster)
	if err != nil {
		return err
	}
	defer conn.Close()
	now := time.Now()
	rows, err := schema.Report(ctx, conn, schema.ReportQuery{App: *app, Channel: *channel, Since: now.Add(-*since), Until: now, IncludeDev: *includeDev})
	if schema.ErrorCode(err) == 60 { // UNKNOWN_TABLE
		return fmt.Errorf("no Capstan tables in this database yet (capstan consume creates them): %w", err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if rows == nil {
			rows = []schema.ReportRow{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return printReport(w, rows)
}

func printReport(w io.Writer, rows []schema.ReportRow) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "no events in this window")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tVERSION\tINSTALLS\tACTIVE\tFAILURES\tFAIL_RATE\tROLLBACKS\tTOP_FAILURES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f%%\t%d\t%s\n", r.App, r.Version, r.Installs, r.ActiveDevices,
			r.Failures, 100*r.FailureRate, r.Rollbacks, topFailures(r.FailuresByAction, 3))
	}
	return tw.Flush()
}

// topFailures renders the n most frequent failure actions as
// "action:count,...", "-" when there are none.
func topFailures(c []schema.ActionCount, n int) string {
	if len(c) == 0 {
		return "-"
	}
	var parts []string
	for i, a := range c {
		if i == n {
			parts = append(parts, fmt.Sprintf("+%d more", len(c)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s:%d", a.Action, a.Count))
	}
	return strings.Join(parts, ",")
}
