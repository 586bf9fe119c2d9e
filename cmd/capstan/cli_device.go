package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/capstan-io/capstan/update/admin"
)

var deviceVerbs = map[string]verb{
	"set-channel":   {"--app APP <device_id> <channel>", "pin a device to a channel (wins over what the device asks for)", deviceSetChannel},
	"unset-channel": {"--app APP <device_id>", "unpin a device", deviceUnsetChannel},
	"list":          {"--app APP", "list pinned devices", deviceList},
	"show":          {"--app APP <device_id>", "show a device: pin, last reported state and newest events (needs ClickHouse on the server)", deviceShow},
}

func runDevice(ctx context.Context, args []string) error {
	return dispatch(ctx, "device", deviceVerbs, []string{"set-channel", "unset-channel", "list", "show"}, args)
}

func deviceSetChannel(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	pos, cl, err := c.connect(args, app, 2, 2)
	if err != nil {
		return err
	}
	o, err := cl.SetDeviceChannel(ctx, *app, pos[0], pos[1])
	if err != nil {
		return err
	}
	return c.done(o, "device %s of %s pinned to channel %s\n", o.DeviceID, o.AppID, o.Channel)
}

func deviceUnsetChannel(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	pos, cl, err := c.connect(args, app, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.UnsetDeviceChannel(ctx, *app, pos[0]); err != nil {
		return err
	}
	return c.done(map[string]string{"unpinned": pos[0]}, "device %s of %s unpinned\n", pos[0], *app)
}

func deviceList(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	_, cl, err := c.connect(args, app, 0, 0)
	if err != nil {
		return err
	}
	pins, err := cl.ListDevices(ctx, *app)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(pins)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tCHANNEL")
	for _, o := range pins {
		fmt.Fprintf(tw, "%s\t%s\n", o.DeviceID, o.Channel)
	}
	return tw.Flush()
}

func deviceShow(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	pos, cl, err := c.connect(args, app, 1, 1)
	if err != nil {
		return err
	}
	d, err := cl.Device(ctx, *app, pos[0])
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(d)
	}
	return printDevice(stdout, d)
}

// printDevice renders a device lookup: its fields, then its events.
func printDevice(w io.Writer, d admin.DeviceInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	pin := d.Pin
	if pin == "" {
		pin = "-"
	}
	fmt.Fprintf(tw, "app:\t%s\ndevice:\t%s\npin:\t%s\n", d.App, d.DeviceID, pin)
	if !d.Known {
		fmt.Fprintln(tw, "stats:\tnone reported")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "last seen:\t%s\nplatform:\t%s %s\nversion:\t%s (native %s)\nplugin:\t%s\nchannel:\t%s\n",
		d.LastSeen, d.Platform, d.VersionOS, orDash(d.VersionName), orDash(d.VersionBuild), d.PluginVersion, orDash(d.Channel))
	if d.CustomID != "" {
		fmt.Fprintf(tw, "custom id:\t%s\n", d.CustomID)
	}
	fmt.Fprintf(tw, "prod build:\t%v\nemulator:\t%v\n", d.IsProd, d.IsEmulator)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.RecentEvents) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nrecent events (%d, newest first):\n", len(d.RecentEvents))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tACTION\tVERSION\tOLD_VERSION")
	for _, e := range d.RecentEvents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ReceivedAt.UTC().Format(time.RFC3339), e.Action, orDash(e.VersionName), orDash(e.OldVersionName))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
