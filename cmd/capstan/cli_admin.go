package main

// The admin CLI: app, bundle, channel, device and token verbs, each a thin
// layer over admin.Client.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/capstan-io/capstan/update/admin"
)

// stdout receives command output; tests replace it.
var stdout io.Writer = os.Stdout

// verb is one subcommand of an admin command.
type verb struct {
	usage string // arguments after the verb
	short string
	run   func(ctx context.Context, c *common, args []string) error
}

// dispatch runs the verb named by args[0].
func dispatch(ctx context.Context, cmd string, verbs map[string]verb, order []string, args []string) error {
	help := func() {
		fmt.Fprintf(os.Stderr, "usage: capstan %s <verb> [flags]\n\nverbs:\n", cmd)
		for _, n := range order {
			fmt.Fprintf(os.Stderr, "  %-14s %s\n", n, verbs[n].short)
		}
		fmt.Fprintf(os.Stderr, "\nRun 'capstan %s <verb> -h' for its flags.\n", cmd)
	}
	if len(args) == 0 {
		help()
		return fmt.Errorf("missing verb (one of %s)", strings.Join(order, ", "))
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		help()
		return flag.ErrHelp
	}
	v, ok := verbs[args[0]]
	if !ok {
		help()
		return fmt.Errorf("unknown verb %q (one of %s)", args[0], strings.Join(order, ", "))
	}
	return v.run(ctx, newCommon(cmd+" "+args[0], v.usage), args[1:])
}

// common holds the flags every admin verb takes.
type common struct {
	fs     *flag.FlagSet
	server *string
	token  *string
	json   *bool
}

func newCommon(name, usage string) *common {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c := &common{
		fs:     fs,
		server: stringFlag(fs, "server", "CAPSTAN_SERVER", "http://127.0.0.1:8080", "Capstan server URL"),
		token:  stringFlag(fs, "token", "CAPSTAN_TOKEN", "", "admin token"),
		json:   boolFlag(fs, "json", "CAPSTAN_JSON", false, "print JSON instead of a table"),
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: capstan %s %s\n\nflags:\n", name, usage)
		fs.PrintDefaults()
	}
	return c
}

func appFlag(fs *flag.FlagSet) *string {
	return stringFlag(fs, "app", "CAPSTAN_APP", "", "app id (com.example.app)")
}

// parse parses flags placed before, between or after positional
// arguments and checks the positional count (max < 0: no upper bound).
func (c *common) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, err
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		// After "--" everything is positional.
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		c.fs.Usage()
		want := fmt.Sprint(min)
		if max != min {
			want = fmt.Sprintf("%d to %d", min, max)
			if max < 0 {
				want = fmt.Sprintf("at least %d", min)
			}
		}
		return nil, fmt.Errorf("want %s argument(s), got %d", want, len(pos))
	}
	return pos, nil
}

func (c *common) client() (*admin.Client, error) {
	if *c.token == "" {
		return nil, errors.New("no admin token: pass --token or set CAPSTAN_TOKEN")
	}
	return admin.NewClient(*c.server, *c.token), nil
}

// connect parses args like parse, checks --app when the verb takes one
// (app not nil) and returns a client for the server.
func (c *common) connect(args []string, app *string, min, max int) ([]string, *admin.Client, error) {
	pos, err := c.parse(args, min, max)
	if err != nil {
		return nil, nil, err
	}
	if app != nil {
		if err := requireApp(*app); err != nil {
			return nil, nil, err
		}
	}
	cl, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	return pos, cl, nil
}

// done reports a verb's result: v as JSON with --json, else one line.
func (c *common) done(v any, format string, a ...any) error {
	if *c.json {
		return printJSON(v)
	}
	fmt.Fprintf(stdout, format, a...)
	return nil
}

func requireApp(app string) error {
	if app == "" {
		return errors.New("--app is required (or set CAPSTAN_APP)")
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
