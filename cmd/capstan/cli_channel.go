package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

var channelVerbs = map[string]verb{
	"set":    {"--app APP <name> [--bundle V] [--rollout-bundle V --rollout-percent P] [--rollout-plan P:BAKE[:MIN],...] [--guard JSON] [--public] [--self-assign] [--ios] [--android] [--electron] [--policy P] [--under-native] [--prod] [--dev] [--emulator] [--device]", "create or update a channel (only the flags given change)", channelSet},
	"list":   {"--app APP", "list an app's channels", channelList},
	"delete": {"--app APP <name>", "delete a channel no device is pinned to", channelDelete},
}

func runChannel(ctx context.Context, args []string) error {
	return dispatch(ctx, "channel", channelVerbs, []string{"set", "list", "delete"}, args)
}

func channelSet(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	fs := c.fs
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintln(fs.Output(), "\nOnly the flags given change the channel; a new channel starts from the defaults shown.\nTurn a switch off with =false, e.g. --android=false.")
	}
	bundle := fs.String("bundle", "", `bundle version devices get ("" = back to the builtin bundle); promote and roll back by pointing it elsewhere`)
	rollout := fs.String("rollout-bundle", "", `second bundle for a share of devices ("" ends the rollout)`)
	percent := fs.Float64("rollout-percent", 0, "share of devices (0-100) that get --rollout-bundle")
	plan := fs.String("rollout-plan", "", `progressive steps PERCENT:BAKE[:MIN_INSTALLS],... e.g. 1:10m,5:30m:100,25:1h; the last step promotes ("" clears)`)
	guard := fs.String("guard", "", `health gate overrides as JSON, e.g. '{"action":"abort","min_devices":50}' ('{}' restores the defaults)`)
	public := fs.Bool("public", false, "default channel for devices of the enabled platforms")
	self := fs.Bool("self-assign", false, "devices may pick this channel themselves (setChannel)")
	ios := fs.Bool("ios", true, "serve iOS devices")
	android := fs.Bool("android", true, "serve Android devices")
	electron := fs.Bool("electron", true, "serve Electron apps")
	policy := fs.String("policy", "", "block automatic updates across: none|major|minor|patch|version_number")
	under := fs.Bool("under-native", true, "block bundles older than the native app version")
	prod := fs.Bool("prod", true, "serve production builds")
	dev := fs.Bool("dev", true, "serve development builds")
	emu := fs.Bool("emulator", true, "serve emulators")
	device := fs.Bool("device", true, "serve real devices")
	pos, cl, err := c.connect(args, app, 1, 1)
	if err != nil {
		return err
	}
	// Only flags given on the command line are sent, so an update never
	// resets fields it does not mention.
	var p admin.ChannelPatch
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "bundle":
			p.Bundle = bundle
		case "rollout-bundle":
			p.RolloutBundle = rollout
		case "rollout-percent":
			p.RolloutPercent = percent
		case "public":
			p.Public = public
		case "self-assign":
			p.AllowSelfSet = self
		case "ios":
			p.IOS = ios
		case "android":
			p.Android = android
		case "electron":
			p.Electron = electron
		case "policy":
			p.DisableAutoUpdate = policy
		case "under-native":
			p.DisableUnderNative = under
		case "prod":
			p.AllowProd = prod
		case "dev":
			p.AllowDev = dev
		case "emulator":
			p.AllowEmulator = emu
		case "device":
			p.AllowDevice = device
		case "rollout-plan":
			steps, err := parsePlan(*plan)
			if err != nil {
				flagErr = err
			}
			p.RolloutPlan = &steps
		case "guard":
			var g release.GuardSettings
			if err := json.Unmarshal([]byte(*guard), &g); err != nil {
				flagErr = fmt.Errorf("--guard: %w", err)
			}
			p.Guard = &g
		}
	})
	if flagErr != nil {
		return flagErr
	}
	ch, err := cl.SetChannel(ctx, *app, pos[0], p)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(ch)
	}
	printChannels([]release.Channel{ch})
	return nil
}

func channelList(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	_, cl, err := c.connect(args, app, 0, 0)
	if err != nil {
		return err
	}
	cs, err := cl.ListChannels(ctx, *app)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(cs)
	}
	printChannels(cs)
	return nil
}

func printChannels(cs []release.Channel) {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tBUNDLE\tROLLOUT\tPUBLIC\tSELF-ASSIGN\tPLATFORMS\tPOLICY\tUNDER-NATIVE\tBUILDS\tHARDWARE")
	for _, c := range cs {
		bundle := c.Bundle
		if bundle == "" {
			bundle = "builtin"
		}
		rollout := "-"
		if c.RolloutBundle != "" {
			rollout = fmt.Sprintf("%s@%g%%", c.RolloutBundle, c.RolloutPercent)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			c.Name, c.ID, bundle, rollout, yesNo(c.Public), yesNo(c.AllowSelfSet),
			list(map[string]bool{"ios": c.IOS, "android": c.Android, "electron": c.Electron}, "ios", "android", "electron"),
			dash(c.DisableAutoUpdate), blocked(c.DisableUnderNative),
			list(map[string]bool{"prod": c.AllowProd, "dev": c.AllowDev}, "prod", "dev"),
			list(map[string]bool{"device": c.AllowDevice, "emulator": c.AllowEmulator}, "device", "emulator"))
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func blocked(b bool) string {
	if b {
		return "blocked"
	}
	return "allowed"
}

// list joins the names whose flag is set, in order; "none" when none is.
func list(set map[string]bool, order ...string) string {
	var on []string
	for _, n := range order {
		if set[n] {
			on = append(on, n)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, ",")
}

func channelDelete(ctx context.Context, c *common, args []string) error {
	app := appFlag(c.fs)
	pos, cl, err := c.connect(args, app, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.DeleteChannel(ctx, *app, pos[0]); err != nil {
		return err
	}
	return c.done(map[string]string{"deleted": pos[0]}, "deleted channel %s of %s\n", pos[0], *app)
}
