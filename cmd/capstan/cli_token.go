package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/capstan-io/capstan/update/admin"
)

var tokenVerbs = map[string]verb{
	"create": {"--name NAME --role viewer|publisher|admin [--app APP ...]", "create an admin token (shown once)", tokenCreate},
	"list":   {"", "list tokens: name, role, apps, created, last used", tokenList},
	"revoke": {"<name>", "revoke a token; every front refuses it at once", tokenRevoke},
}

func runToken(ctx context.Context, args []string) error {
	return dispatch(ctx, "token", tokenVerbs, []string{"create", "list", "revoke"}, args)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func tokenCreate(ctx context.Context, c *common, args []string) error {
	name := c.fs.String("name", "", "the token's unique name: 1-64 of A-Z a-z 0-9 . _ - (required)")
	role := c.fs.String("role", "", "viewer (read), publisher (bundles, channels, rollouts, pins) or admin (everything) (required)")
	// No CAPSTAN_APP default: a token limited by accident is worse than
	// one limited on purpose.
	var apps listFlag
	c.fs.Var(&apps, "app", "limit the token to this app (repeatable; none: every app)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	switch {
	case *name == "":
		return errors.New("--name is required")
	case *role == "":
		return fmt.Errorf("--role is required (%s)", strings.Join(admin.Roles, ", "))
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	tok, err := cl.CreateToken(ctx, *name, *role, apps)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(tok)
	}
	// The token alone on stdout, so `$(capstan token create ...)` works.
	fmt.Fprintln(stdout, tok.Token)
	fmt.Fprintln(os.Stderr, "capstan: store this token now; only its hash is kept and it cannot be shown again")
	return nil
}

func tokenList(ctx context.Context, c *common, args []string) error {
	_, cl, err := c.connect(args, nil, 0, 0)
	if err != nil {
		return err
	}
	toks, err := cl.ListTokens(ctx)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(toks)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tAPPS\tCREATED\tLAST USED")
	for _, t := range toks {
		apps := strings.Join(t.Apps, ",")
		if apps == "" {
			apps = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, apps, fmtTime(t.CreatedAt), fmtTime(t.LastUsedAt))
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, c *common, args []string) error {
	pos, cl, err := c.connect(args, nil, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.RevokeToken(ctx, pos[0]); err != nil {
		return err
	}
	return c.done(map[string]string{"revoked": pos[0]}, "revoked token %s\n", pos[0])
}
