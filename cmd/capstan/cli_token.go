package main

import (
	"context"
	"fmt"
	"os"
)

var tokenVerbs = map[string]verb{
	"create": {"[--name NAME]", "create an admin token (shown once)", tokenCreate},
}

func runToken(ctx context.Context, args []string) error {
	return dispatch(ctx, "token", tokenVerbs, []string{"create"}, args)
}

func tokenCreate(ctx context.Context, c *common, args []string) error {
	label := c.fs.String("name", "", "what the token is for (shown in logs)")
	_, cl, err := c.connect(args, nil, 0, 0)
	if err != nil {
		return err
	}
	tok, err := cl.CreateToken(ctx, *label)
	if err != nil {
		return err
	}
	if *c.json {
		return printJSON(tok)
	}
	// The token alone on stdout, so `$(capstan token create)` works.
	fmt.Fprintln(stdout, tok.Token)
	fmt.Fprintln(os.Stderr, "capstan: store this token now; only its hash is kept and it cannot be shown again")
	return nil
}
