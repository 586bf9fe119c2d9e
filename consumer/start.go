package consumer

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Connector opens a ready-to-use (migrated) ClickHouse connection.
type Connector func(ctx context.Context) (driver.Conn, error)

// Runner is a consumer started in the background by Start.
type Runner struct {
	connected atomic.Bool
	done      chan struct{}
	err       error
}

// Start runs a consumer in the background: it calls connect until
// ClickHouse is reachable (with Config's retry backoff, for as long as
// it takes; events wait in JetStream meanwhile), then runs the consumer
// until ctx ends and it has drained. cfg.ClickHouse is ignored. Start
// fails only on an invalid cfg.
func Start(ctx context.Context, cfg Config, connect Connector) (*Runner, error) {
	if connect == nil {
		return nil, errors.New("consumer: a ClickHouse connector is required")
	}
	full, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Runner{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		c := &Consumer{cfg: full, js: full.JetStream, flavor: full.Flavor, log: full.Logger}
		var conn driver.Conn
		if err := c.retry(ctx, "connect to clickhouse", func(ctx context.Context) error {
			var err error
			conn, err = connect(ctx)
			return err
		}); err != nil {
			return // ctx ended first: nothing was taken from JetStream
		}
		defer conn.Close()
		cfg.ClickHouse = conn
		cons, err := New(cfg)
		if err != nil {
			r.err = err
			return
		}
		r.connected.Store(true)
		defer r.connected.Store(false)
		r.err = cons.Run(ctx)
	}()
	return r, nil
}

// Connected reports whether the consumer has reached ClickHouse and is
// running (for readiness endpoints).
func (r *Runner) Connected() bool { return r.connected.Load() }

// Done is closed when the consumer has stopped.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Wait blocks until the consumer has drained after ctx ended and
// returns why it stopped (nil after a normal drain).
func (r *Runner) Wait() error {
	<-r.done
	return r.err
}
