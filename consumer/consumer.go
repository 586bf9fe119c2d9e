// Package consumer moves stats events from the JetStream work queue into
// ClickHouse in batches, acknowledging each event only once ClickHouse holds it.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/capstan-io/capstan/schema"
)

// Defaults for Config's zero values.
const (
	DefaultBatchSize      = 10000
	DefaultLinger         = time.Second
	DefaultAckWait        = 30 * time.Second
	DefaultRetryInitial   = 250 * time.Millisecond
	DefaultRetryMax       = 10 * time.Second
	DefaultDrainTimeout   = 15 * time.Second
	DefaultInsertTimeout  = 60 * time.Second
	DefaultInfoInterval   = 5 * time.Second
	DefaultMaintenanceGap = time.Hour
)

// Config sets up a Consumer. Only JetStream and ClickHouse are required.
type Config struct {
	// JetStream holds the events stream (schema.EventsStream) and the
	// dead-letter stream; both must exist (schema.EnsureStreams).
	JetStream jetstream.JetStream
	// ClickHouse is a migrated database's connection pool. clickhouse-go
	// redials broken connections itself, so one pool lives as long as
	// the consumer.
	ClickHouse driver.Conn
	// Flavor of the ClickHouse server; detected at Run when zero.
	Flavor schema.Flavor

	// BatchSize is the most rows per insert (default 10000).
	BatchSize int
	// Linger is how long the first event of a batch waits for more
	// before the batch is inserted anyway (default 1s).
	Linger time.Duration
	// AckWait is the durable consumer's redelivery timeout (default 30s).
	// Must exceed Linger; events held longer are kept alive with
	// progress acks.
	AckWait time.Duration
	// MaxAckPending caps unacknowledged events across all replicas
	// (default 4 × BatchSize, at least 20000). A replica holds up to two
	// batches: one being inserted, the next being filled.
	MaxAckPending int
	// RetryInitial and RetryMax bound the exponential backoff between
	// retries of a failing insert (defaults 250ms and 10s).
	RetryInitial time.Duration
	RetryMax     time.Duration
	// DrainTimeout bounds the final flush once Run's context ends
	// (default 15s); what is not inserted by then stays in JetStream.
	DrainTimeout time.Duration
	// InsertTimeout bounds one insert attempt (default 60s).
	InsertTimeout time.Duration
	// InfoInterval is how often pending-message and lag gauges are
	// refreshed from JetStream (default 5s).
	InfoInterval time.Duration

	// RetentionDays > 0 makes the consumer drop expired partitions
	// (schema.DropExpiredPartitions) at start and every MaintenanceEvery:
	// legacy servers (18.16) have no TTL. Harmless on modern servers.
	RetentionDays int
	// Maintenance, when set, also runs at start and every
	// MaintenanceEvery (default 1h). Errors are logged, never fatal.
	Maintenance      func(ctx context.Context) error
	MaintenanceEvery time.Duration

	// Registerer receives the capstan_consumer_* metrics; nil skips them.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.JetStream == nil {
		return c, errors.New("consumer: JetStream is required")
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Linger*2 > c.AckWait {
		return c, fmt.Errorf("consumer: linger %s must be under half the ack wait %s", c.Linger, c.AckWait)
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = max(4*c.BatchSize, 20000)
	}
	if c.RetryInitial <= 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.RetryMax < c.RetryInitial {
		c.RetryMax = c.RetryInitial
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = DefaultInsertTimeout
	}
	if c.InfoInterval <= 0 {
		c.InfoInterval = DefaultInfoInterval
	}
	if c.MaintenanceEvery <= 0 {
		c.MaintenanceEvery = DefaultMaintenanceGap
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Consumer is one replica of the stats consumer. Any number of replicas,
// in one process or many, share the durable schema.ConsumerName.
type Consumer struct {
	cfg    Config
	js     jetstream.JetStream
	ch     driver.Conn
	flavor schema.Flavor
	log    *slog.Logger
	m      *metrics

	// cols is the inserter's column buffers.
	cols columns
	// ackConfirmed closes when the server confirmed the last batch's
	// acks (nil when none is outstanding); owned by the inserter.
	ackConfirmed chan struct{}
}

// New checks cfg and registers the consumer's metrics.
func New(cfg Config) (*Consumer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.ClickHouse == nil {
		return nil, errors.New("consumer: ClickHouse connection is required")
	}
	return &Consumer{
		cfg:    cfg,
		js:     cfg.JetStream,
		ch:     cfg.ClickHouse,
		flavor: cfg.Flavor,
		log:    cfg.Logger,
		m:      newMetrics(cfg.Registerer),
	}, nil
}

// item is one delivered message on its way to ClickHouse.
type item struct {
	msg  jetstream.Msg
	seq  uint64 // stream sequence
	ms   int64  // stream time, epoch ms
	redo bool   // delivered before
	ev   *schema.Event
	// dupOf is the row carrying the same event id earlier in the batch.
	dupOf *item
	// Why the message goes to the dead-letter stream, if it does.
	reason, detail string
}

// Run pulls, inserts and acks until ctx ends, then flushes the batch it
// holds (bounded by DrainTimeout) and returns. It returns an error only
// when it cannot start; JetStream and ClickHouse outages are waited out.
func (c *Consumer) Run(ctx context.Context) error {
	// Flushes outlive ctx by DrainTimeout so a batch being inserted at
	// shutdown still gets in and acked.
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.cfg.DrainTimeout, cancelFlush)
	})
	defer stopDrainTimer()

	if c.flavor == 0 {
		if err := c.retry(ctx, "detect clickhouse flavor", func(ctx context.Context) error {
			f, err := schema.DetectFlavor(ctx, c.ch)
			c.flavor = f
			return err
		}); err != nil {
			return nil // ctx ended before ClickHouse answered: nothing held
		}
	}
	var cons jetstream.Consumer
	if err := c.retry(ctx, "bind durable consumer", func(ctx context.Context) error {
		var err error
		cons, err = c.bind(ctx)
		return err
	}); err != nil {
		return nil
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	bgCtx, stopBg := context.WithCancel(ctx)
	defer stopBg()
	wg.Add(1)
	go func() { defer wg.Done(); c.pollInfo(bgCtx, cons) }()
	if c.cfg.Maintenance != nil || c.cfg.RetentionDays > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); c.maintain(bgCtx) }()
	}

	c.log.Info("consumer running", "batch_size", c.cfg.BatchSize, "linger", c.cfg.Linger,
		"ack_wait", c.cfg.AckWait, "flavor", c.flavor)

	// Two stages: this goroutine fetches and decodes the next batch while
	// the inserter stores and acks the previous one. The hand-over is
	// unbuffered, so at most one batch is being inserted and one filled
	// (or, sealed, waiting for the inserter).
	sealed := make(chan *batch)
	inserterDone := make(chan struct{})
	go func() {
		defer close(inserterDone)
		c.insertLoop(flushCtx, sealed)
	}()
	var held *batch // sealed but not handed over when ctx ended
	hand := func(b *batch) {
		select {
		case sealed <- b:
		case <-ctx.Done():
			held = b
		}
	}

	open := c.newBatch()
	fetchFailures := 0
	for ctx.Err() == nil {
		if len(open.items) > 0 && (len(open.items) >= c.cfg.BatchSize || !time.Now().Before(open.deadline)) {
			hand(c.seal(open))
			open = c.newBatch()
			continue
		}
		wait := c.cfg.Linger
		if len(open.items) > 0 {
			wait = time.Until(open.deadline)
		}
		// The server ends the pull at its expiry, after the last message
		// it sent for it. A client-side deadline instead could drop
		// messages already on their way, which JetStream redelivers only
		// after AckWait. Short pulls keep shutdown prompt.
		wait = min(max(wait, 10*time.Millisecond), maxFetchWait)
		mb, err := cons.Fetch(c.cfg.BatchSize-len(open.items), jetstream.FetchMaxWait(wait))
		if err == nil {
			for m := range mb.Messages() {
				if open.add(c.prepare(m), c.cfg.Linger) {
					c.m.fillingOldestMs.Store(open.oldestMs())
				}
			}
			err = mb.Error()
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				if b, berr := c.bind(ctx); berr == nil {
					cons = b
				}
			}
			d := backoff(fetchFailures, c.cfg.RetryInitial, c.cfg.RetryMax)
			fetchFailures++
			c.log.Warn("fetch from jetstream failed", "err", err, "retry_in", d)
			sleep(ctx, d)
			continue
		}
		fetchFailures = 0
	}
	// Drain: the inserter finishes what it holds, then takes the sealed
	// batch and the open one, all bounded by flushCtx.
	if held != nil {
		sealed <- held
	}
	if len(open.items) > 0 {
		c.log.Info("draining", "events", len(open.items))
		sealed <- c.seal(open)
	}
	close(sealed)
	<-inserterDone
	return nil
}

// maxFetchWait bounds one pull request, and so how long shutdown waits
// for the one in progress.
const maxFetchWait = time.Second

// batch is the events of one insert, from their fetch to their ack.
type batch struct {
	items    []*item
	deadline time.Time // inserted by then even if not full
	// stopKeepAlive ends the progress acks started when the batch was
	// sealed.
	stopKeepAlive func()
}

func (c *Consumer) newBatch() *batch {
	return &batch{items: make([]*item, 0, c.cfg.BatchSize)}
}

// add appends it; first says it is the batch's first event.
func (b *batch) add(it *item, linger time.Duration) (first bool) {
	first = len(b.items) == 0
	if first {
		b.deadline = time.Now().Add(linger)
	}
	b.items = append(b.items, it)
	return first
}

// oldestMs is the stream time of the batch's first event (0 if empty).
func (b *batch) oldestMs() int64 {
	if len(b.items) == 0 {
		return 0
	}
	return b.items[0].ms
}

// seal closes b to new events. From here until it is acked, progress
// acks keep it from being redelivered however long the inserter takes
// to get to it and to store it.
func (c *Consumer) seal(b *batch) *batch {
	c.m.fillingOldestMs.Store(0)
	b.stopKeepAlive = c.keepAlive(b.items)
	return b
}

// insertLoop stores and acks sealed batches in order until the channel
// closes, then waits for the last acks to be confirmed.
func (c *Consumer) insertLoop(ctx context.Context, sealed <-chan *batch) {
	defer c.waitAckConfirmed()
	for b := range sealed {
		c.m.flushingOldestMs.Store(b.oldestMs())
		c.flush(ctx, b.items)
		b.stopKeepAlive()
		c.m.flushingOldestMs.Store(0)
	}
}

// bind creates or updates the shared durable pull consumer.
func (c *Consumer) bind(ctx context.Context) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := c.js.CreateOrUpdateConsumer(cctx, schema.EventsStream,
		schema.ConsumerConfig(c.cfg.AckWait, c.cfg.MaxAckPending))
	if err != nil {
		return nil, fmt.Errorf("durable consumer %s on %s: %w", schema.ConsumerName, schema.EventsStream, err)
	}
	return cons, nil
}

// prepare decodes a delivered message; undecodable ones carry the
// reason they will be dead-lettered with.
func (c *Consumer) prepare(m jetstream.Msg) *item {
	it := &item{msg: m, ms: time.Now().UnixMilli()}
	if md, err := m.Metadata(); err == nil {
		it.seq = md.Sequence.Stream
		it.ms = md.Timestamp.UnixMilli()
		if md.NumDelivered > 1 {
			it.redo = true
			c.m.redeliveries.Inc()
		}
	}
	ev, derr := decodeEvent(m.Data())
	if derr != nil {
		it.reason, it.detail = derr.reason, derr.detail
		return it
	}
	it.ev = ev
	return it
}

// flush inserts a batch and acks it. On return every message is acked
// (the confirmation of the last ack may still be on its way: see ack),
// terminated after dead-lettering, or (ctx ended first) left for
// JetStream to redeliver: never acked without being stored.
func (c *Consumer) flush(ctx context.Context, batch []*item) {
	rows := make([]*item, 0, len(batch))
	var dead, dups []*item
	first := make(map[string]*item, len(batch))
	check := false
	for _, it := range batch {
		switch {
		case it.ev == nil:
			dead = append(dead, it)
		case first[it.ev.ID] != nil:
			// The same event twice in one batch (published twice outside
			// the duplicate window): one row, both messages settled alike.
			it.dupOf = first[it.ev.ID]
			dups = append(dups, it)
		default:
			first[it.ev.ID] = it
			rows = append(rows, it)
			check = check || it.redo
		}
	}
	rejected, err := c.insert(ctx, rows, check)
	if err != nil {
		c.log.Warn("batch left in jetstream for redelivery", "events", len(batch), "err", err)
		// Hand the events to another replica now rather than after
		// AckWait; any that did get stored are filtered out there.
		for _, it := range batch {
			_ = it.msg.Nak()
		}
		return
	}
	for _, it := range rejected {
		it.reason = ReasonInsertRejected
	}
	good := make([]*item, 0, len(rows)+len(dups))
	for _, it := range append(rows, dups...) {
		row := it
		if it.dupOf != nil {
			row = it.dupOf
		}
		if row.reason != "" {
			it.reason, it.detail = row.reason, row.detail
			dead = append(dead, it)
		} else {
			good = append(good, it)
		}
	}
	c.ack(ctx, good)
	for _, it := range dead {
		if err := c.deadLetter(ctx, it); err != nil {
			c.log.Warn("dead letter not stored; message left for redelivery", "seq", it.seq, "err", err)
			continue
		}
		if err := it.msg.TermWithReason(it.reason); err != nil {
			c.log.Warn("terminate dead-lettered message", "seq", it.seq, "err", err)
		}
		c.m.deadLetters.WithLabelValues(it.reason).Inc()
	}
}

// ack acknowledges inserted messages: fire-and-forget acks, then a
// confirmed ack for the last one. The confirmation is awaited in the
// background, next to the following insert, and before the next batch's
// acks, so unconfirmed acks never exceed one batch. A lost ack only means
// a redelivery, which the next flush filters out against ClickHouse.
func (c *Consumer) ack(ctx context.Context, items []*item) {
	if len(items) == 0 {
		return
	}
	c.waitAckConfirmed()
	last := len(items) - 1
	for _, it := range items[:last] {
		if err := it.msg.Ack(); err != nil {
			c.log.Warn("ack", "seq", it.seq, "err", err)
		}
	}
	msg, seq := items[last].msg, items[last].seq
	done := make(chan struct{})
	c.ackConfirmed = done
	go func() {
		defer close(done)
		// Waiting longer than AckWait is pointless: the message is
		// redelivered by then anyway.
		actx, cancel := context.WithTimeout(ctx, min(5*time.Second, c.cfg.AckWait))
		defer cancel()
		if err := msg.DoubleAck(actx); err != nil {
			c.log.Warn("confirmed ack", "seq", seq, "err", err)
		}
	}()
}

// waitAckConfirmed waits for the confirmation of the previous batch's
// acks, if any is outstanding. Only the inserter calls it.
func (c *Consumer) waitAckConfirmed() {
	if c.ackConfirmed != nil {
		<-c.ackConfirmed
		c.ackConfirmed = nil
	}
}

// keepAlive sends progress acks for the batch every third of AckWait
// until stopped, so slow inserts and retries don't cause redelivery.
func (c *Consumer) keepAlive(batch []*item) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, it := range batch {
					// Fails harmlessly for messages already acked.
					_ = it.msg.InProgress()
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// deadLetter stores a message in the dead-letter stream, retrying until
// JetStream confirms it or ctx ends.
func (c *Consumer) deadLetter(ctx context.Context, it *item) error {
	m := nats.NewMsg(schema.DeadLetterSubject)
	m.Data = it.msg.Data()
	m.Header.Set(HeaderOriginalSubject, it.msg.Subject())
	m.Header.Set(HeaderStreamSequence, strconv.FormatUint(it.seq, 10))
	m.Header.Set(HeaderReason, it.reason)
	m.Header.Set(HeaderError, truncate(it.detail, 1024))
	// A redelivered message dead-lettered again is dropped as a duplicate.
	m.Header.Set(jetstream.MsgIDHeader, schema.EventsStream+"-"+strconv.FormatUint(it.seq, 10))
	c.log.Warn("dead-lettering message", "seq", it.seq, "subject", it.msg.Subject(),
		"reason", it.reason, "detail", it.detail)
	return c.retry(ctx, "publish dead letter", func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := c.js.PublishMsg(pctx, m)
		return err
	})
}

// retry runs fn until it succeeds or ctx ends, with capped exponential
// backoff between attempts.
func (c *Consumer) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		d := backoff(attempt, c.cfg.RetryInitial, c.cfg.RetryMax)
		c.log.Warn(what+" failed; retrying", "err", err, "attempt", attempt+1, "retry_in", d)
		if !sleep(ctx, d) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// pollInfo refreshes the pending and lag gauges from JetStream.
func (c *Consumer) pollInfo(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(c.cfg.InfoInterval)
	defer t.Stop()
	for {
		c.refreshInfo(ctx, cons)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Consumer) refreshInfo(ctx context.Context, cons jetstream.Consumer) {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cons.Info(ictx)
	if err != nil {
		return
	}
	c.m.pending.Set(float64(info.NumPending) + float64(info.NumAckPending))
	// The events stream is a work queue: its first message is the
	// oldest one not yet acked by any replica.
	s, err := c.js.Stream(ictx, schema.EventsStream)
	if err != nil {
		return
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 || st.FirstTime.IsZero() {
		c.m.streamOldestMs.Store(0)
		return
	}
	c.m.streamOldestMs.Store(st.FirstTime.UnixMilli())
}

func (c *Consumer) maintain(ctx context.Context) {
	t := time.NewTicker(c.cfg.MaintenanceEvery)
	defer t.Stop()
	for {
		if c.cfg.RetentionDays > 0 {
			n, err := schema.DropExpiredPartitions(ctx, c.ch, "", c.cfg.RetentionDays, time.Now())
			switch {
			case err != nil && ctx.Err() == nil:
				c.log.Warn("dropping expired partitions failed", "err", err)
			case n > 0:
				c.log.Info("dropped expired partitions", "partitions", n, "retention_days", c.cfg.RetentionDays)
			}
		}
		if c.cfg.Maintenance != nil {
			if err := c.cfg.Maintenance(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("clickhouse maintenance failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
