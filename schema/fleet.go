package schema

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// FleetReader answers the admin API's device and health reads from
// ClickHouse. It connects on first use (the server may start before
// ClickHouse does) and again after a failed connect; the connection's
// own pool replaces broken sockets.
type FleetReader struct {
	connect  func(ctx context.Context) (Querier, error)
	database string

	mu   sync.Mutex
	conn Querier
	// failed is when the last connect failed, err its error: requests
	// within connectRetry of it fail at once instead of queueing on mu
	// for a dial each.
	failed time.Time
	err    error
}

// connectRetry is how long a failed connect is answered from memory.
const connectRetry = 2 * time.Second

// ErrConnect wraps a failure to reach ClickHouse at all, as opposed to a
// query it refused.
var ErrConnect = errors.New("cannot connect to ClickHouse")

// NewFleetReader reads through the connection connect opens, in
// database ("" = the connection's).
func NewFleetReader(connect func(ctx context.Context) (Querier, error), database string) *FleetReader {
	return &FleetReader{connect: connect, database: database}
}

func (f *FleetReader) querier(ctx context.Context) (Querier, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		return f.conn, nil
	}
	if f.err != nil && time.Since(f.failed) < connectRetry {
		return nil, f.err
	}
	c, err := f.connect(ctx)
	if err != nil {
		f.failed, f.err = time.Now(), fmt.Errorf("%w: %w", ErrConnect, err)
		return nil, f.err
	}
	f.conn, f.err = c, nil
	return c, nil
}

// Device reads one device (see Device).
func (f *FleetReader) Device(ctx context.Context, app, device string) (DeviceState, error) {
	q, err := f.querier(ctx)
	if err != nil {
		return DeviceState{}, err
	}
	return Device(ctx, q, DeviceQuery{Database: f.database, App: app, DeviceID: device})
}

// Health is the release-health report of rq (see Report).
func (f *FleetReader) Health(ctx context.Context, rq ReportQuery) ([]ReportRow, error) {
	q, err := f.querier(ctx)
	if err != nil {
		return nil, err
	}
	rq.Database = f.database
	rows, err := Report(ctx, q, rq)
	if rows == nil && err == nil {
		rows = []ReportRow{}
	}
	return rows, err
}

// Timeline is the bucketed release health of tq (see TimelineReport).
func (f *FleetReader) Timeline(ctx context.Context, tq TimelineQuery) (Timeline, error) {
	q, err := f.querier(ctx)
	if err != nil {
		return Timeline{}, err
	}
	tq.Database = f.database
	return TimelineReport(ctx, q, tq)
}

// Close closes the connection when one was opened.
func (f *FleetReader) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.conn.(io.Closer)
	f.conn = nil
	if ok {
		return c.Close()
	}
	return nil
}
