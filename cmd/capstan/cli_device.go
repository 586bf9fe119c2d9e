package main

import (
	"context"
	"fmt"
	"text/tabwriter"
)

var deviceVerbs = map[string]verb{
	"set-channel":   {"--app APP <device_id> <channel>", "pin a device to a channel (wins over what the device asks for)", deviceSetChannel},
	"unset-channel": {"--app APP <device_id>", "unpin a device", deviceUnsetChannel},
	"list":          {"--app APP", "list pinned devices", deviceList},
}

func runDevice(ctx context.Context, args []string) error {
	return dispatch(ctx, "device", deviceVerbs, []string{"set-channel", "unset-channel", "list"}, args)
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
