package main

import (
	"context"
	"errors"
)

// Replaced by consume.go.
func runConsume(ctx context.Context, args []string) error { return errors.New("not implemented") }
