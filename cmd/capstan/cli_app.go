package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

var appVerbs = map[string]verb{
	"create": {"<app_id> [--name NAME]", "register an app (its Capacitor appId)", appCreate},
	"list":   {"", "list apps", appList},
	"delete": {"<app_id>", "delete an app with its channels, bundles and device pins", appDelete},
	"update": {"<app_id> [--name NAME] [--keep-bundles N]", "rename an app or set its bundle retention (keep the N newest unused bundles after each upload; 0 = off)", appUpdate},
}

func runApp(ctx context.Context, args []string) error {
	return dispatch(ctx, "app", appVerbs, []string{"create", "list", "update", "delete"}, args)
}

func appUpdate(ctx context.Context, c *common, args []string) error {
	display := c.fs.String("name", "", "display name")
	keep := c.fs.Int("keep-bundles", 0, "after each upload, delete unused bundles past the N newest (0 = off)")
	pos, cl, err := c.connect(args, nil, 1, 1)
	if err != nil {
		return err
	}
	var req admin.UpdateAppRequest
	c.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			req.Name = display
		case "keep-bundles":
			req.KeepBundles = keep
		}
	})
	if req.Name == nil && req.KeepBundles == nil {
		return errors.New("give --name or --keep-bundles")
	}
	app, err := cl.UpdateApp(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return c.done(app, "updated app %s (keep bundles: %d)\n", app.ID, app.KeepBundles)
}

func appCreate(ctx context.Context, c *common, args []string) error {
	display := c.fs.String("name", "", "display name")
	pos, cl, err := c.connect(args, nil, 1, 1)
	if err != nil {
		return err
	}
	app, err := cl.CreateApp(ctx, pos[0], *display)
	if err != nil {
		return err
	}
	return c.done(app, "created app %s\n", app.ID)
}

func appList(ctx context.Context, c *common, args []string) error {
	_, cl, err := c.connect(args, nil, 0, 0)
	if err != nil {
		return err
	}
	apps, err := cl.ListApps(ctx)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(apps)
	}
	printApps(apps)
	return nil
}

func printApps(apps []release.App) {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED")
	for _, a := range apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.ID, dash(a.Name), fmtTime(a.CreatedAt))
	}
	tw.Flush()
}

func appDelete(ctx context.Context, c *common, args []string) error {
	pos, cl, err := c.connect(args, nil, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.DeleteApp(ctx, pos[0]); err != nil {
		return err
	}
	return c.done(map[string]string{"deleted": pos[0]}, "deleted app %s\n", pos[0])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
