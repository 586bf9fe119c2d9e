package main

import (
	"context"
	"errors"
)

// Replaced by the admin CLI (cli_admin.go).
func runApp(ctx context.Context, args []string) error     { return errors.New("not implemented") }
func runBundle(ctx context.Context, args []string) error  { return errors.New("not implemented") }
func runChannel(ctx context.Context, args []string) error { return errors.New("not implemented") }
func runDevice(ctx context.Context, args []string) error  { return errors.New("not implemented") }
func runToken(ctx context.Context, args []string) error   { return errors.New("not implemented") }
