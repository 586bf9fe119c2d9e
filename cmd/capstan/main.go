// Command capstan is Capstan's single binary: the server roles and the
// admin, stats and benchmark tools, chosen by subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	run   func(ctx context.Context, args []string) error
	short string
}

var commands = map[string]command{
	"serve":   {runServe, "run a front (update checks, stats, admin API); all-in-one by default"},
	"consume": {runConsume, "run a stats consumer: JetStream → ClickHouse"},
	"app":     {runApp, "create and list apps"},
	"bundle":  {runBundle, "upload, list and delete bundles"},
	"channel": {runChannel, "create, update and list channels"},
	"device":  {runDevice, "pin a device to a channel or unpin it"},
	"rollout": {runRollout, "show, pause, resume, promote or abort a channel's rollout"},
	"token":   {runToken, "create, list and revoke admin tokens"},
	"audit":   {runAudit, "list recorded release changes: who changed what, when"},
	"stats":   {runStats, "print release health from ClickHouse"},
	"bench":   {runBench, "measure a Capstan server against a bare baseline (see BENCHMARKS.md)"},
}

var order = []string{"serve", "consume", "app", "bundle", "channel", "rollout", "device", "token", "audit", "stats", "bench"}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: capstan <command> [flags]\n\ncommands:")
	for _, name := range order {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", name, commands[name].short)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'capstan <command> -h' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "capstan: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "capstan %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
