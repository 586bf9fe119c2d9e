package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher sends events to JetStream as NATS publishes with a reply
// subject and matches the acknowledgements itself. Compared with
// jetstream.PublishMsgAsync it costs no timer, channel, map entry, header
// map or reflection per message: a request registers once, publishes all
// its messages, and waits on one channel until every ack is in.
type publisher struct {
	nc     *nats.Conn
	prefix string // reply subjects: prefix + batch id + "." + message index
	max    int    // messages published and not yet acknowledged, at most

	mu       sync.Mutex
	sub      *nats.Subscription
	batches  map[uint64]*batch
	inflight int
	room     chan struct{} // closed (and replaced) when inflight drops and someone waits
	waiting  int
	nextID   uint64
}

// Outcome of one published message.
const (
	ackPending uint8 = iota
	ackStored
	ackDuplicate
	ackFailed
)

// batch is one request's published messages.
type batch struct {
	id   uint64
	acks []uint8 // by message index
	left int     // acks still to come
	err  error   // the first failure
	done chan struct{}
}

func newPublisher(nc *nats.Conn, max int) *publisher {
	p := &publisher{
		nc:      nc,
		prefix:  nc.NewInbox() + ".",
		max:     max,
		batches: map[uint64]*batch{},
		room:    make(chan struct{}),
	}
	// Acks in flight when the connection drops never come: fail their
	// requests at once instead of at the publish timeout.
	status := nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	go func() {
		for s := range status {
			p.failAll(nats.ErrDisconnected)
			if s == nats.CLOSED {
				return
			}
		}
	}()
	return p
}

// subscribe makes sure the ack subscription exists (lazily, so a
// connection that is down when the handler is built can recover).
func (p *publisher) subscribe() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sub != nil {
		return nil
	}
	sub, err := p.nc.Subscribe(p.prefix+">", p.handleAck)
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, 256<<20)
	p.sub = sub
	return nil
}

// begin registers b for n messages, waiting until the window has room
// (or deadline). A request larger than the window gets it alone.
func (p *publisher) begin(b *batch, n int, deadline time.Time) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	p.mu.Lock()
	for p.inflight > 0 && p.inflight+n > p.max {
		room := p.room
		p.waiting++
		p.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-room:
		case <-timer.C:
			p.mu.Lock()
			p.waiting--
			p.mu.Unlock()
			return jetstream.ErrTooManyStalledMsgs
		}
		p.mu.Lock()
		p.waiting--
	}
	p.nextID++
	b.id = p.nextID
	if cap(b.acks) < n {
		b.acks = make([]uint8, n)
	}
	b.acks = b.acks[:n]
	clear(b.acks)
	b.left, b.err = n, nil
	if b.done == nil {
		b.done = make(chan struct{}, 1)
	}
	select { // a signal left over from an earlier use
	case <-b.done:
	default:
	}
	p.batches[b.id] = b
	p.inflight += n
	p.mu.Unlock()
	return nil
}

// replySubject appends the reply subject of message k of b to dst.
func (p *publisher) replySubject(dst []byte, b *batch, k int) []byte {
	dst = append(dst, p.prefix...)
	dst = strconv.AppendUint(dst, b.id, 10)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, int64(k), 10)
}

// unsent marks messages from k on as never published.
func (p *publisher) unsent(b *batch, k int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; k < len(b.acks); k++ {
		if b.acks[k] == ackPending {
			b.acks[k] = ackFailed
			p.resolved(b, err)
		}
	}
}

// pending appends to dst the indexes of b's messages still unanswered.
func (p *publisher) pending(b *batch, dst []int) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, a := range b.acks {
		if a == ackPending {
			dst = append(dst, k)
		}
	}
	return dst
}

// end unregisters b; late acks for it are dropped. After end, b.acks and
// b.err are the request's alone.
func (p *publisher) end(b *batch) {
	p.mu.Lock()
	delete(p.batches, b.id)
	p.inflight -= len(b.acks)
	if p.waiting > 0 {
		close(p.room)
		p.room = make(chan struct{})
	}
	p.mu.Unlock()
}

// resolved counts one outcome of b; p.mu is held.
func (p *publisher) resolved(b *batch, err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
	b.left--
	if b.left == 0 {
		select {
		case b.done <- struct{}{}:
		default:
		}
	}
}

func (p *publisher) failAll(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.batches {
		for k, a := range b.acks {
			if a == ackPending {
				b.acks[k] = ackFailed
				p.resolved(b, err)
			}
		}
	}
}

// handleAck runs on the subscription's goroutine for every reply.
func (p *publisher) handleAck(m *nats.Msg) {
	if len(m.Subject) <= len(p.prefix) {
		return
	}
	tok := m.Subject[len(p.prefix):]
	dot := -1
	for i := 0; i < len(tok); i++ {
		if tok[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return
	}
	id, err1 := strconv.ParseUint(tok[:dot], 10, 64)
	k, err2 := strconv.Atoi(tok[dot+1:])
	if err1 != nil || err2 != nil {
		return
	}
	outcome, err := parseAck(m)
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.batches[id]
	if b == nil || k < 0 || k >= len(b.acks) || b.acks[k] != ackPending {
		return
	}
	b.acks[k] = outcome
	p.resolved(b, err)
}

var (
	ackPrefix   = []byte(`{"stream":"`)
	ackErrorKey = []byte(`"error"`)
	ackDupKey   = []byte(`"duplicate"`)
	errBadAck   = errors.New("jetstream: invalid publish acknowledgement")
)

// parseAck reads a JetStream publish acknowledgement: the plain
// {"stream":...,"seq":...} without reflection, anything else (duplicates,
// errors) with encoding/json.
func parseAck(m *nats.Msg) (uint8, error) {
	data := m.Data
	if len(data) == 0 {
		if m.Header.Get("Status") == "503" {
			return ackFailed, jetstream.ErrNoStreamResponse
		}
		return ackFailed, errBadAck
	}
	// Names and strings in an ack cannot hold an unescaped quote, so a
	// key found here is a key. Duplicates (rare) take the long way.
	if bytes.HasPrefix(data, ackPrefix) && !bytes.Contains(data, ackErrorKey) && !bytes.Contains(data, ackDupKey) {
		return ackStored, nil
	}
	var a struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &a); err != nil {
		return ackFailed, errBadAck
	}
	switch {
	case a.Error != nil:
		return ackFailed, a.Error
	case a.Stream == "":
		return ackFailed, errBadAck
	case a.Duplicate:
		return ackDuplicate, nil
	}
	return ackStored, nil
}
