// Package consumer moves stats events from the JetStream work queue into
// ClickHouse in batches, acknowledging each message only once ClickHouse
// holds all its events (or the bad ones are dead-lettered).
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

	"github.com/capstan-io/capstan/internal/wait"
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
	// Cluster is the ClickHouse cluster the tables live on ("" = one
	// server; see ClickHouseClusterConnector), for retention's DDL.
	Cluster string
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

// delivered is one message from the events stream: one event (version 1)
// or a request's events (version 2, schema/batch.go). It is acked once
// every one of its rows is in ClickHouse or dead-lettered.
type delivered struct {
	msg  jetstream.Msg
	seq  uint64 // stream sequence
	ms   int64  // stream time, epoch ms
	redo bool   // delivered before
	// rows are its events, in order, including undecodable records.
	rows []*item
	// Why the whole message goes to the dead-letter stream, if it does.
	reason, detail string
	// unsettled: a row neither stored nor dead-lettered, so the message
	// must not be acked.
	unsettled bool
}

// item is one event (a row) on its way to ClickHouse.
type item struct {
	m *delivered
	// index is the record's place in a version 2 message (-1 for
	// version 1); rec is its body.
	index int
	rec   []byte
	ev    *schema.Event
	// dupOf is the row carrying the same event id earlier in the batch.
	dupOf *item
	// Why the event goes to the dead-letter stream, if it does.
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
	// Batches sealed but not yet taken by the inserter: a fetch may fill
	// more than one, as messages hold many rows. Sealed batches are kept
	// alive (seal), so they may wait.
	var queue []*batch
	open := c.newBatch()
	fetchFailures := 0
	perMsg := initialRowsPerMsg
	for ctx.Err() == nil {
		if len(queue) > 0 {
			select {
			case sealed <- queue[0]:
				queue = queue[1:]
			case <-ctx.Done():
			}
			continue
		}
		if open.rows > 0 && (open.rows >= c.cfg.BatchSize || !time.Now().Before(open.deadline)) {
			queue = append(queue, c.seal(open))
			open = c.newBatch()
			continue
		}
		pull := c.cfg.Linger
		if open.rows > 0 {
			pull = time.Until(open.deadline)
		}
		// The server ends the pull at its expiry, after the last message
		// it sent for it. A client-side deadline instead could drop
		// messages already on their way, which JetStream redelivers only
		// after AckWait. Short pulls keep shutdown prompt.
		pull = min(max(pull, 10*time.Millisecond), maxFetchWait)
		n := max(1, (c.cfg.BatchSize-open.rows)/perMsg)
		mb, err := cons.Fetch(n, jetstream.FetchMaxWait(pull))
		if err == nil {
			most := 0
			for m := range mb.Messages() {
				d := c.prepare(m)
				most = max(most, len(d.rows))
				// A message is never split across inserts: one that does
				// not fit starts the next batch.
				if open.rows > 0 && open.rows+d.weight() > c.cfg.BatchSize {
					queue = append(queue, c.seal(open))
					open = c.newBatch()
				}
				if open.add(d, c.cfg.Linger) {
					c.m.fillingOldestMs.Store(open.oldestMs())
				}
			}
			if most > 0 {
				perMsg = most
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
			wait.Sleep(ctx, d)
			continue
		}
		fetchFailures = 0
	}
	// Drain: the inserter finishes what it holds, then takes the sealed
	// batches and the open one, all bounded by flushCtx.
	for _, b := range queue {
		sealed <- b
	}
	if len(open.msgs) > 0 {
		c.log.Info("draining", "events", open.rows, "messages", len(open.msgs))
		sealed <- c.seal(open)
	}
	close(sealed)
	<-inserterDone
	return nil
}

// initialRowsPerMsg guesses the events per message (a device's batch)
// before the first fetch shows it; a fetch asks for as many messages as
// the open batch has room for at the largest size of the last fetch.
const initialRowsPerMsg = 20

// maxFetchWait bounds one pull request, and so how long shutdown waits
// for the one in progress.
const maxFetchWait = time.Second

// batch is the messages of one insert, from their fetch to their ack.
type batch struct {
	msgs     []*delivered
	rows     int       // weight of msgs: their events (at least 1 each)
	deadline time.Time // inserted by then even if not full
	// stopKeepAlive ends the progress acks started when the batch was
	// sealed.
	stopKeepAlive func()
}

func (c *Consumer) newBatch() *batch {
	return &batch{msgs: make([]*delivered, 0, 64)}
}

// weight is what d counts towards BatchSize.
func (d *delivered) weight() int { return max(1, len(d.rows)) }

// add appends d; first says it is the batch's first message.
func (b *batch) add(d *delivered, linger time.Duration) (first bool) {
	first = len(b.msgs) == 0
	if first {
		b.deadline = time.Now().Add(linger)
	}
	b.msgs = append(b.msgs, d)
	b.rows += d.weight()
	return first
}

// oldestMs is the stream time of the batch's first message (0 if empty).
func (b *batch) oldestMs() int64 {
	if len(b.msgs) == 0 {
		return 0
	}
	return b.msgs[0].ms
}

// seal closes b to new messages. From here until it is acked, progress
// acks keep it from being redelivered however long the inserter takes
// to get to it and to store it.
func (c *Consumer) seal(b *batch) *batch {
	c.m.fillingOldestMs.Store(0)
	b.stopKeepAlive = c.keepAlive(b.msgs)
	return b
}

// insertLoop stores and acks sealed batches in order until the channel
// closes, then waits for the last acks to be confirmed.
func (c *Consumer) insertLoop(ctx context.Context, sealed <-chan *batch) {
	defer c.waitAckConfirmed()
	for b := range sealed {
		c.m.flushingOldestMs.Store(b.oldestMs())
		c.flush(ctx, b)
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

// prepare decodes a delivered message into its rows; undecodable
// records carry the reason they will be dead-lettered with, and a
// message with no decodable record at all is dead-lettered whole.
func (c *Consumer) prepare(m jetstream.Msg) *delivered {
	d := &delivered{msg: m, ms: time.Now().UnixMilli()}
	if md, err := m.Metadata(); err == nil {
		d.seq = md.Sequence.Stream
		d.ms = md.Timestamp.UnixMilli()
		if md.NumDelivered > 1 {
			d.redo = true
			c.m.redeliveries.Inc()
		}
	}
	v, err := schema.MessageVersion(m.Headers())
	if err != nil {
		d.reason, d.detail = ReasonUnknownFormat, err.Error()
		return d
	}
	if v == schema.EventsVersion1 {
		it := &item{m: d, index: -1, rec: m.Data()}
		ev, derr := decodeEvent(it.rec)
		if derr != nil {
			// The message is this one event: dead-lettered whole.
			d.reason, d.detail = derr.reason, derr.detail
			return d
		}
		it.ev = ev
		d.rows = []*item{it}
		return d
	}
	good := 0
	var first *decodeError
	schema.BatchRecords(m.Data(), func(i int, rec []byte) {
		it := &item{m: d, index: i, rec: rec}
		if ev, derr := decodeEvent(rec); derr != nil {
			it.reason, it.detail = derr.reason, derr.detail
			if first == nil {
				first = derr
			}
		} else {
			it.ev = ev
			good++
		}
		d.rows = append(d.rows, it)
	})
	if good == 0 {
		d.rows = nil
		d.reason, d.detail = first.reason, fmt.Sprintf("no record decodes; record 0: %s", first.detail)
	}
	return d
}

// flush inserts a batch and acks it. On return every message is acked
// (the confirmation of the last ack may still be on its way: see ack),
// terminated after dead-lettering, or (ctx ended first, or a dead
// letter could not be stored) left for JetStream to redeliver: never
// acked before all its rows are stored or dead-lettered.
func (c *Consumer) flush(ctx context.Context, b *batch) {
	batch := b.msgs
	rows := make([]*item, 0, b.rows)
	var dups, dead []*item
	first := make(map[string]*item, b.rows)
	check := false
	for _, d := range batch {
		for _, it := range d.rows {
			switch {
			case it.ev == nil:
				dead = append(dead, it)
			case first[it.ev.ID] != nil:
				// The same event twice in one batch (published twice
				// outside the duplicate window): one row, both settled
				// alike.
				it.dupOf = first[it.ev.ID]
				dups = append(dups, it)
			default:
				first[it.ev.ID] = it
				rows = append(rows, it)
				check = check || d.redo
			}
		}
	}
	rejected, err := c.insert(ctx, rows, check)
	if err != nil {
		c.log.Warn("batch left in jetstream for redelivery", "events", len(rows)+len(dups), "messages", len(batch), "err", err)
		// Hand the messages to another replica now rather than after
		// AckWait; rows that did get stored are filtered out there.
		for _, d := range batch {
			_ = d.msg.Nak()
		}
		return
	}
	for _, it := range rejected {
		it.reason = ReasonInsertRejected
	}
	for _, it := range dups {
		if row := it.dupOf; row.reason != "" {
			it.reason, it.detail = row.reason, row.detail
		}
	}
	for _, it := range append(rows, dups...) {
		if it.reason != "" {
			dead = append(dead, it)
		}
	}
	// Dead letters first: a message is acked only after its bad events
	// are stored elsewhere.
	for _, it := range dead {
		if err := c.deadLetterEvent(ctx, it); err != nil {
			c.log.Warn("dead letter not stored; message left for redelivery", "seq", it.m.seq, "index", it.index, "err", err)
			it.m.unsettled = true
			continue
		}
		c.m.deadLetters.WithLabelValues(it.reason).Inc()
	}
	var acks []*delivered
	for _, d := range batch {
		switch {
		case d.unsettled:
		case d.reason != "":
			if err := c.deadLetter(ctx, d, d.msg.Data(), d.msg.Headers().Get(schema.EventsHeader), -1, d.reason, d.detail); err != nil {
				c.log.Warn("dead letter not stored; message left for redelivery", "seq", d.seq, "err", err)
				continue
			}
			c.m.deadLetters.WithLabelValues(d.reason).Inc()
			c.term(d)
		case d.rows[0].index < 0 && d.rows[0].reason != "": // version 1
			c.term(d) // its one event was dead-lettered: the message with it
		default:
			acks = append(acks, d)
		}
	}
	c.ack(ctx, acks)
}

func (c *Consumer) term(d *delivered) {
	reason := d.reason
	if reason == "" {
		reason = d.rows[0].reason
	}
	if err := d.msg.TermWithReason(reason); err != nil {
		c.log.Warn("terminate dead-lettered message", "seq", d.seq, "err", err)
	}
}

// ack acknowledges inserted messages: fire-and-forget acks, then a
// confirmed ack for the last one. The confirmation is awaited in the
// background, next to the following insert, and before the next batch's
// acks, so unconfirmed acks never exceed one batch. A lost ack only means
// a redelivery, which the next flush filters out against ClickHouse.
func (c *Consumer) ack(ctx context.Context, msgs []*delivered) {
	if len(msgs) == 0 {
		return
	}
	c.waitAckConfirmed()
	last := len(msgs) - 1
	for _, d := range msgs[:last] {
		if err := d.msg.Ack(); err != nil {
			c.log.Warn("ack", "seq", d.seq, "err", err)
		}
	}
	msg, seq := msgs[last].msg, msgs[last].seq
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
func (c *Consumer) keepAlive(batch []*delivered) (stop func()) {
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
				for _, d := range batch {
					// Fails harmlessly for messages already acked.
					_ = d.msg.InProgress()
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// deadLetterEvent stores one bad event: a version 1 message is stored
// whole (its rec is the message), a version 2 record alone, as a
// version 1 message.
func (c *Consumer) deadLetterEvent(ctx context.Context, it *item) error {
	return c.deadLetter(ctx, it.m, it.rec, "", it.index, it.reason, it.detail)
}

// deadLetter stores body (from message d; version its Capstan-Events
// header, "" for version 1; index its record, -1 for all of it) in the
// dead-letter stream, retrying until JetStream confirms it or ctx ends.
func (c *Consumer) deadLetter(ctx context.Context, d *delivered, body []byte, version string, index int, reason, detail string) error {
	m := nats.NewMsg(schema.DeadLetterSubject)
	m.Data = body
	m.Header.Set(HeaderOriginalSubject, d.msg.Subject())
	m.Header.Set(HeaderStreamSequence, strconv.FormatUint(d.seq, 10))
	m.Header.Set(HeaderReason, reason)
	m.Header.Set(HeaderError, truncate(detail, 1024))
	if version != "" {
		m.Header.Set(schema.EventsHeader, version)
	}
	// A redelivered message dead-lettered again is dropped as a duplicate.
	id := schema.EventsStream + "-" + strconv.FormatUint(d.seq, 10)
	if index >= 0 {
		m.Header.Set(HeaderRecordIndex, strconv.Itoa(index))
		id += "-" + strconv.Itoa(index)
	}
	m.Header.Set(jetstream.MsgIDHeader, id)
	c.log.Warn("dead-lettering", "seq", d.seq, "index", index, "subject", d.msg.Subject(),
		"reason", reason, "detail", detail)
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
		if !wait.Sleep(ctx, d) {
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
			n, err := schema.DropExpiredPartitionsOn(ctx, c.ch, "", c.cfg.Cluster, c.cfg.RetentionDays, time.Now())
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
