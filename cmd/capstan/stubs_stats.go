package main

import (
	"context"
	"errors"
)

// Replaced by stats.go.
func runStats(ctx context.Context, args []string) error { return errors.New("not implemented") }
