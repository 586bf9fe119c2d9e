package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/capstan-io/capstan/internal/wait"
	"github.com/capstan-io/capstan/schema"
)

// existsChunk keeps the id lookup under ClickHouse's default 256 KiB
// max_query_size (an id costs 35 bytes in the IN list).
const existsChunk = 2000

// insert stores rows in ClickHouse. check asks to skip event ids already
// stored, for redelivered messages (most often inserted by a consumer
// whose acks were lost). Retryable failures are retried until ctx ends
// (then err is set and nothing may be acked); rows ClickHouse refuses are
// isolated by bisection and returned with the reason in detail, the rest
// inserted.
//
// A retry within this call skips nothing: an insert that failed after
// data went out may have stored the rows in capstan_events but not yet
// in the views' tables (ClickHouse fills them one after another), and
// skipping those rows would keep them out of the rollups for good. The
// whole batch goes again: the rollups hold sets of event ids, and every
// query counts a raw row stored twice once. On a cluster (Config.Cluster)
// nothing is ever skipped, as a shard's rows may likewise be in
// capstan_events_local and not yet in its views (insert_deduplicate=0,
// see schema.OpenClickHouseCluster).
func (c *Consumer) insert(ctx context.Context, rows []*item, check bool) (rejected []*item, err error) {
	if check && c.cfg.Cluster == "" {
		if rows, err = c.unstored(ctx, rows); err != nil {
			return nil, err
		}
	}
	for attempt := 0; len(rows) > 0; {
		bad, err := c.send(ctx, rows)
		if err == nil {
			return rejected, nil
		}
		c.m.insertErrors.Inc()
		if bad >= 0 {
			// The driver refused a value before anything was sent.
			rows[bad].detail = err.Error()
			rejected = append(rejected, rows[bad])
			rows = append(rows[:bad:bad], rows[bad+1:]...)
			continue
		}
		if classify(err) == rowsRejected {
			if len(rows) == 1 {
				rows[0].detail = err.Error()
				return append(rejected, rows[0]), nil
			}
			c.log.Warn("clickhouse rejected batch; bisecting", "rows", len(rows), "err", err)
			mid := len(rows) / 2
			left, err := c.insert(ctx, rows[:mid:mid], false)
			rejected = append(rejected, left...)
			if err != nil {
				return rejected, err
			}
			right, err := c.insert(ctx, rows[mid:], false)
			return append(rejected, right...), err
		}
		if !c.backoff(ctx, &attempt, "insert batch", err) {
			return rejected, ctx.Err()
		}
		c.m.retries.Inc()
	}
	return rejected, nil
}

// unstored drops the rows whose event ids capstan_events already holds,
// retrying the lookup until ctx ends.
func (c *Consumer) unstored(ctx context.Context, rows []*item) ([]*item, error) {
	for attempt := 0; ; {
		stored, err := c.storedIDs(ctx, rows)
		if err == nil {
			return withoutStored(rows, stored), nil
		}
		c.m.insertErrors.Inc()
		if !c.backoff(ctx, &attempt, "look up stored event ids", err) {
			return nil, ctx.Err()
		}
		c.m.retries.Inc()
	}
}

// backoff logs a retryable failure and waits before the next attempt;
// false means ctx ended.
func (c *Consumer) backoff(ctx context.Context, attempt *int, what string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	d := backoff(*attempt, c.cfg.RetryInitial, c.cfg.RetryMax)
	*attempt++
	c.log.Warn(what+" failed; retrying", "err", err, "attempt", *attempt, "retry_in", d)
	return wait.Sleep(ctx, d)
}

// send runs one native batch insert. bad is the index of a row the
// driver refused while appending (-1 otherwise).
func (c *Consumer) send(ctx context.Context, rows []*item) (bad int, err error) {
	ictx, cancel := context.WithTimeout(ctx, c.cfg.InsertTimeout)
	defer cancel()
	start := time.Now()
	b, err := c.ch.PrepareBatch(ictx, schema.InsertSQL("", c.flavor))
	if err != nil {
		return -1, fmt.Errorf("prepare insert: %w", err)
	}
	defer c.cols.release()
	if cerr := c.cols.append(b, rows, c.flavor); cerr != nil {
		// A value the driver refuses (or a column only the row-wise
		// path knows): start over row by row, which finds the row.
		if !errors.Is(cerr, errUnknownColumn) {
			c.log.Debug("column-wise append failed; appending row by row", "err", cerr)
		}
		_ = b.Abort()
		if b, err = c.ch.PrepareBatch(ictx, schema.InsertSQL("", c.flavor)); err != nil {
			return -1, fmt.Errorf("prepare insert: %w", err)
		}
		for i, it := range rows {
			if err := schema.AppendEvent(b, it.ev, c.flavor); err != nil {
				_ = b.Abort()
				return i, fmt.Errorf("append event %s: %w", it.ev.ID, err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return -1, fmt.Errorf("insert batch of %d: %w", len(rows), err)
	}
	c.m.insertDuration.Observe(time.Since(start).Seconds())
	c.m.batchSize.Observe(float64(len(rows)))
	c.m.inserted.Add(float64(len(rows)))
	c.m.lastInsert.Set(float64(time.Now().UnixNano()) / 1e9)
	return -1, nil
}

// storedIDs returns which of the rows' event ids capstan_events already
// holds. The received_at range lets ClickHouse skip other partitions.
func (c *Consumer) storedIDs(ctx context.Context, rows []*item) (map[string]bool, error) {
	stored := make(map[string]bool)
	for start := 0; start < len(rows); start += existsChunk {
		q := storedIDsQuery(rows[start:min(start+existsChunk, len(rows))])
		qctx, cancel := context.WithTimeout(ctx, c.cfg.InsertTimeout)
		res, err := c.ch.Query(qctx, q)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("query stored event ids: %w", err)
		}
		for res.Next() {
			var id string
			if err := res.Scan(&id); err != nil {
				res.Close()
				cancel()
				return nil, fmt.Errorf("scan stored event id: %w", err)
			}
			stored[id] = true
		}
		err = res.Err()
		res.Close()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read stored event ids: %w", err)
		}
	}
	return stored, nil
}

// storedIDsQuery renders the lookup for rows. Event ids are inlined:
// decodeEvent admits only 32 hex characters.
func storedIDsQuery(rows []*item) string {
	minMs, maxMs := rows[0].ev.ReceivedMs, rows[0].ev.ReceivedMs
	var ids strings.Builder
	for i, it := range rows {
		if i > 0 {
			ids.WriteByte(',')
		}
		ids.WriteByte('\'')
		ids.WriteString(it.ev.ID)
		ids.WriteByte('\'')
		minMs = min(minMs, it.ev.ReceivedMs)
		maxMs = max(maxMs, it.ev.ReceivedMs)
	}
	return fmt.Sprintf("SELECT DISTINCT event_id FROM %s WHERE received_at >= toDateTime(%d) AND received_at < toDateTime(%d) AND event_id IN (%s)",
		schema.EventsTable, minMs/1000, maxMs/1000+1, ids.String())
}

// withoutStored drops rows whose event id ClickHouse already holds.
func withoutStored(rows []*item, stored map[string]bool) []*item {
	if len(stored) == 0 {
		return rows
	}
	kept := make([]*item, 0, len(rows))
	for _, it := range rows {
		if !stored[it.ev.ID] {
			kept = append(kept, it)
		}
	}
	return kept
}
