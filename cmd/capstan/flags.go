package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Flags whose default comes from an environment variable, so every
// setting is both a flag and an env var (the flag wins).

func envDefault(env, def string) string {
	if v, ok := os.LookupEnv(env); ok {
		return v
	}
	return def
}

func stringFlag(fs *flag.FlagSet, name, env, def, usage string) *string {
	return fs.String(name, envDefault(env, def), fmt.Sprintf("%s (env %s)", usage, env))
}

func intFlag(fs *flag.FlagSet, name, env string, def int, usage string) *int {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		if n, err := strconv.Atoi(s); err == nil {
			v = n
		} else {
			fmt.Fprintf(os.Stderr, "capstan: ignoring %s=%q: not an integer\n", env, s)
		}
	}
	return fs.Int(name, v, fmt.Sprintf("%s (env %s)", usage, env))
}

func int64Flag(fs *flag.FlagSet, name, env string, def int64, usage string) *int64 {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			v = n
		} else {
			fmt.Fprintf(os.Stderr, "capstan: ignoring %s=%q: not an integer\n", env, s)
		}
	}
	return fs.Int64(name, v, fmt.Sprintf("%s (env %s)", usage, env))
}

func durationFlag(fs *flag.FlagSet, name, env string, def time.Duration, usage string) *time.Duration {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		if d, err := time.ParseDuration(s); err == nil {
			v = d
		} else {
			fmt.Fprintf(os.Stderr, "capstan: ignoring %s=%q: not a duration\n", env, s)
		}
	}
	return fs.Duration(name, v, fmt.Sprintf("%s (env %s)", usage, env))
}

func boolFlag(fs *flag.FlagSet, name, env string, def bool, usage string) *bool {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		if b, err := strconv.ParseBool(s); err == nil {
			v = b
		} else {
			fmt.Fprintf(os.Stderr, "capstan: ignoring %s=%q: not a boolean\n", env, s)
		}
	}
	return fs.Bool(name, v, fmt.Sprintf("%s (env %s)", usage, env))
}

func float64Flag(fs *flag.FlagSet, name, env string, def float64, usage string) *float64 {
	v := def
	if s, ok := os.LookupEnv(env); ok {
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			v = n
		} else {
			fmt.Fprintf(os.Stderr, "capstan: ignoring %s=%q: not a number\n", env, s)
		}
	}
	return fs.Float64(name, v, fmt.Sprintf("%s (env %s)", usage, env))
}

// clusterFlagHelp is --clickhouse-cluster's help, the same in every command.
const clusterFlagHelp = "ClickHouse cluster (remote_servers name) holding Capstan's tables: ON CLUSTER migrations, Replicated*MergeTree tables under Distributed ones, synchronous Distributed inserts; list several of its hosts in --clickhouse-url (empty = one server)"
