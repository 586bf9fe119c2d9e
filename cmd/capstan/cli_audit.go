package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/capstan-io/capstan/update/admin"
)

// runAudit is `capstan audit`: the release changes the server recorded,
// oldest first.
func runAudit(ctx context.Context, args []string) error {
	c := newCommon("audit", "[--app APP] [--channel NAME] [--since 24h|7d|RFC3339] [--limit N] [--json]")
	fs := c.fs
	app := appFlag(fs)
	channel := fs.String("channel", "", "only this channel")
	since := fs.String("since", "", "only changes since an RFC 3339 time or a duration back from now (24h, 7d)")
	limit := fs.Int("limit", 0, "newest N changes (default 100, at most 1000)")
	_, cl, err := c.connect(args, nil, 0, 0)
	if err != nil {
		return err
	}
	entries, err := cl.Audit(ctx, admin.AuditQuery{App: *app, Channel: *channel, Since: *since, Limit: *limit})
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tAPP\tCHANNEL\tCHANGE\tACTOR\tDETAIL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(e.Time), dash(e.App), dash(e.Channel), e.Change, dash(e.Actor), dash(e.Detail))
	}
	return tw.Flush()
}
