package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/internal/wait"
)

// Defaults of Retry.
const (
	// SetupDeadline bounds the retries of creating a bucket or stream at
	// start-up: long enough for a fresh 3-node cluster to elect its
	// JetStream meta leader (raft election timeouts are 4–9 s) and for
	// the peers to join, short enough that a front pointed at a broken
	// cluster exits and is restarted by its supervisor.
	SetupDeadline = time.Minute
	// setupAttempt bounds one attempt: a request the meta leader never
	// answers (none elected yet, or it just died) is retried, not waited on.
	setupAttempt    = 5 * time.Second
	setupBackoffMin = 100 * time.Millisecond
	setupBackoffMax = 2 * time.Second
)

// JetStream API error codes a cluster returns while it forms or changes
// leaders; the request may succeed when tried again.
const (
	errCodeNoPeers         = 10005 // insufficient resources / no suitable peers for placement
	errCodeClusterNotAvail = 10008 // JetStream system temporarily unavailable
	errCodeNameInUse       = 10058 // stream name already in use with a different configuration
	errCodeNotLeader       = 10074 // not currently the leader
)

// Transient reports whether err from a JetStream API request (stream or
// bucket creation, info, update) may go away by itself: a cluster still
// forming or electing a leader, a connection reconnecting, a request that
// timed out, or a concurrent creator that got there first (the next
// attempt reads what it created).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse),
		errors.Is(err, jetstream.ErrBucketExists),
		errors.Is(err, jetstream.ErrStreamNotFound): // created, not yet visible on every peer
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errCodeNoPeers, errCodeClusterNotAvail, errCodeNameInUse, errCodeNotLeader:
			return true
		}
		if apiErr.Code >= 500 {
			return true
		}
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"no suitable peers", "temporarily unavailable", "already in use", "already exists", "not currently the leader", "no leader", "insufficient resources"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Retry runs op until it succeeds, fails with an error Transient says is
// permanent, ctx ends, or SetupDeadline passes. Each attempt gets its own
// deadline of at most 5 s; attempts are spaced by a jittered exponential
// backoff (100 ms to 2 s) and each failure is logged. what names the
// operation in logs and errors.
func Retry(ctx context.Context, log *slog.Logger, what string, op func(context.Context) error) error {
	return RetryUntil(ctx, log, what, SetupDeadline, op)
}

// RetryUntil is Retry with its own overall bound.
func RetryUntil(ctx context.Context, log *slog.Logger, what string, bound time.Duration, op func(context.Context) error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deadline := time.Now().Add(bound)
	backoff := setupBackoffMin
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(setupAttempt, max(time.Until(deadline), 100*time.Millisecond)))
		err := op(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("jetstream setup succeeded after retries", "what", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		}
		if !Transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("%s: still failing after %d attempts in %s: %w", what, attempt, bound, err)
		}
		pause := backoff/2 + rand.N(backoff/2+1)
		log.Warn("jetstream setup failed; retrying", "what", what, "attempt", attempt, "err", err, "backoff", pause)
		if !wait.Sleep(ctx, pause) {
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		}
		backoff = min(backoff*2, setupBackoffMax)
	}
}
