package main

import (
	"context"
	"errors"
)

// Replaced by consume.go and stats.go.
func runConsume(ctx context.Context, args []string) error { return errors.New("not implemented") }
func runStats(ctx context.Context, args []string) error   { return errors.New("not implemented") }
