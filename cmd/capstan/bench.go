package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/capstan-io/capstan/bench"
)

const benchUsage = `usage: capstan bench <scenario> [flags]

scenarios (each starts the processes it needs on loopback and prints a Markdown report):
  updates   POST /updates of Capstan vs a bare chi handler
  stats     events/s accepted by POST /stats (1- and 20-event bodies) vs the bare handler
  e2e       events/s from HTTP into ClickHouse rows, lag to queryable, loss check
  e2e-split the same with the consumer as its own process (serve --consume=false + capstan consume)
  memory    resident memory of a front holding 1,000,000 overrides and 1,000 bundles
  all       the five above in order
`

// runBench is `capstan bench`.
func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(os.Stderr, benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return fmt.Errorf("missing scenario")
	}
	scenario, args := args[0], args[1:]
	if scenario == "baseline-serve" {
		fs := flag.NewFlagSet("bench baseline-serve", flag.ContinueOnError)
		listen := fs.String("listen", "127.0.0.1:0", "loopback address to serve the bare handler on")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return bench.BaselineServe(ctx, *listen, os.Stdout)
	}
	if scenario == "front-profile" {
		fs := flag.NewFlagSet("bench front-profile", flag.ContinueOnError)
		var o bench.ProfiledFront
		fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "loopback address")
		fs.StringVar(&o.DataDir, "data-dir", "", "data directory")
		fs.StringVar(&o.Token, "token", "", "admin token")
		fs.StringVar(&o.ClickHouseURL, "clickhouse-url", "", "run the consumer into this ClickHouse")
		fs.StringVar(&o.ProfilePrefix, "profile", "front", "profile file prefix")
		fs.StringVar(&o.NatsURL, "nats-url", "", "join this NATS instead of embedding one")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return bench.ServeProfiled(ctx, o)
	}
	d := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench "+scenario, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, benchUsage, "\nflags:\n"); fs.PrintDefaults() }
	workers := intFlag(fs, "workers", "CAPSTAN_BENCH_WORKERS", d.Workers, "concurrent connections of the load generator")
	duration := durationFlag(fs, "duration", "CAPSTAN_BENCH_DURATION", d.Duration, "length of each measured run (updates, stats, memory, e2e baseline)")
	e2eDuration := durationFlag(fs, "e2e-duration", "CAPSTAN_BENCH_E2E_DURATION", d.E2EDuration, "e2e: length of the sustained run")
	requests := int64Flag(fs, "requests", "CAPSTAN_BENCH_REQUESTS", d.MaxRequests, "upper bound of requests per measured run")
	rounds := intFlag(fs, "rounds", "CAPSTAN_BENCH_ROUNDS", d.Rounds, "measured runs per side (baseline, Capstan), interleaved; the median is reported")
	devices := intFlag(fs, "devices", "CAPSTAN_BENCH_DEVICES", d.Devices, "distinct simulated devices")
	rate := intFlag(fs, "rate", "CAPSTAN_BENCH_RATE", int(d.Rate), "e2e: offered events/s (0 = --rate-ratio × the bare handler's ceiling measured in the same run)")
	rateRatio := float64Flag(fs, "rate-ratio", "CAPSTAN_BENCH_RATE_RATIO", d.RateRatio, "e2e: offered load as a share of the bare handler's ceiling, when --rate is 0")
	drain := durationFlag(fs, "drain", "CAPSTAN_BENCH_DRAIN", d.Drain, "e2e: how long to wait for ClickHouse to hold every accepted event")
	overrides := intFlag(fs, "overrides", "CAPSTAN_BENCH_OVERRIDES", d.Overrides, "memory: device overrides to hold")
	bundles := intFlag(fs, "bundles", "CAPSTAN_BENCH_BUNDLES", d.Bundles, "memory: bundles to hold")
	dir := stringFlag(fs, "dir", "CAPSTAN_BENCH_DIR", "", "work directory for data and logs (default: a temporary one)")
	keep := boolFlag(fs, "keep", "CAPSTAN_BENCH_KEEP", false, "keep the temporary work directory")
	out := stringFlag(fs, "out", "CAPSTAN_BENCH_OUT", "", "also append the Markdown report to this file")
	bin := stringFlag(fs, "bin", "CAPSTAN_BENCH_BIN", "", "capstan binary to start (default: this one)")
	cpuprof := stringFlag(fs, "cpuprofile", "CAPSTAN_BENCH_CPUPROFILE", "", "write a CPU profile of the benchmark process (load generator) here")
	profFront := stringFlag(fs, "profile-front", "CAPSTAN_BENCH_PROFILE_FRONT", "", "run fronts as a profiled in-process copy of serve's handlers and write their CPU/heap profiles into this directory")
	frontEnv := stringFlag(fs, "front-env", "CAPSTAN_BENCH_FRONT_ENV", "", "comma-separated KEY=value pairs added to the fronts' environment only (e.g. GOMEMLIMIT=200MiB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var fenv []string
	for _, kv := range strings.Split(*frontEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("--front-env %q: want KEY=value", kv)
		}
		fenv = append(fenv, kv)
	}
	c := d
	c.Workers, c.Duration, c.MaxRequests, c.Rounds, c.Devices = *workers, *duration, *requests, *rounds, *devices
	c.E2EDuration, c.Rate, c.Drain, c.Overrides, c.Bundles = *e2eDuration, float64(*rate), *drain, *overrides, *bundles
	c.RateRatio = *rateRatio
	if c.Rate == 0 && !(c.RateRatio > 0) {
		return fmt.Errorf("--rate-ratio must be above 0 when --rate is 0")
	}
	if c.Workers < 1 || c.Rounds < 1 || c.Devices < 1 || c.Duration <= 0 || c.E2EDuration <= 0 {
		return fmt.Errorf("--workers, --rounds, --devices, --duration and --e2e-duration must be positive")
	}
	return bench.Command(ctx, scenario, c, bench.Options{Bin: *bin, Dir: *dir, Keep: *keep, Out: *out, CPUProf: *cpuprof, ProfileFront: *profFront, FrontEnv: fenv})
}
