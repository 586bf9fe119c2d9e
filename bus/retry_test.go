package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("create: %w", nats.ErrTimeout), true},
		{nats.ErrNoResponders, true},
		{jetstream.ErrStreamNameAlreadyInUse, true},
		{jetstream.ErrBucketExists, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{&jetstream.APIError{Code: 500, ErrorCode: 10005, Description: "no suitable peers for placement"}, true},
		{fmt.Errorf("wrapped: %w", &jetstream.APIError{Code: 400, ErrorCode: 10074, Description: "not currently the leader"}), true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10052, Description: "replicas > 1 not supported in non-clustered mode"}, false},
		{errors.New("stream limit below current backlog"), false},
		{context.Canceled, false},
	} {
		if got := bus.Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	n := 0
	err := bus.Retry(ctx, nil, "flaky", func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("attempt without a deadline")
		}
		n++
		if n < 3 {
			return nats.ErrNoResponders
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Retry = %v after %d attempts; want success after 3", err, n)
	}

	permanent := errors.New("bad config")
	n = 0
	err = bus.Retry(ctx, nil, "broken", func(context.Context) error { n++; return permanent })
	if !errors.Is(err, permanent) || n != 1 {
		t.Fatalf("Retry = %v after %d attempts; want the permanent error at once", err, n)
	}

	start := time.Now()
	err = bus.RetryUntil(ctx, nil, "down", 500*time.Millisecond, func(context.Context) error { return nats.ErrNoResponders })
	if !errors.Is(err, nats.ErrNoResponders) || time.Since(start) > 2*time.Second {
		t.Fatalf("RetryUntil = %v after %s; want the last error within the bound", err, time.Since(start))
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := bus.Retry(cctx, nil, "cancelled", func(ctx context.Context) error { return ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Retry on a cancelled context = %v", err)
	}
}
