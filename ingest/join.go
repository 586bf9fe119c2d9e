package ingest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
)

// Group commit. Each JetStream message costs the server a store and an
// ack and the client an ack to match, whatever its size, so a stream of
// small requests is bound by messages, not events. A request whose app
// already has maxLaneInFlight messages unacknowledged waits in the app's
// lane instead; when a slot frees, one message carries every waiting
// request's events, and each of them is answered with that message's
// outcome. An idle front still sends each request alone under its own
// id, so a device's exact resend is dropped by JetStream; a resend of a
// request that shared a message is stored again and dropped downstream
// by event id (the consumer, ReplacingMergeTree, uniqExact).
const (
	maxLaneInFlight = 2
	// maxJoinBytes: bigger requests are already cheap per event and go alone.
	maxJoinBytes = 64 << 10
	// maxJoinedBytes bounds a shared message, like schema.MaxBatchBytes
	// bounds a request's.
	maxJoinedBytes = schema.MaxBatchBytes
)

// lanes holds one lane per subject (app) with work in flight; an idle
// lane is deleted, so unknown app ids cannot grow the map.
type lanes struct {
	mu sync.Mutex
	m  map[string]*lane
}

type lane struct {
	inFlight int
	waiting  []*joiner
}

// joiner is a request waiting in a lane. Its body is read only under the
// lanes lock, before taken is set; after that the request may return.
type joiner struct {
	m     *outMsg
	body  []byte
	taken bool
	done  chan joinResult // buffered: the carrier never blocks
}

type joinResult struct {
	state uint8
	err   error
}

// errJoinTimeout answers a request whose turn did not come in time.
var errJoinTimeout = errors.New("stats lane: waited too long for a publish slot")

// publish sends one (a request's only message) alone when its lane has a
// free slot, else waits for a shared message to carry it. It sets the
// message's state.
func (l *lanes) publish(ctx context.Context, h *Handler, one []outMsg, deadline time.Time) error {
	m := &one[0]
	subj := m.msg.Subject
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*lane{}
	}
	ln := l.m[subj]
	if ln == nil {
		ln = &lane{}
		l.m[subj] = ln
	}
	if ln.inFlight < maxLaneInFlight && len(ln.waiting) == 0 {
		ln.inFlight++
		l.mu.Unlock()
		err := h.sendAll(ctx, one, deadline)
		l.release(h, subj)
		return err
	}
	j := &joiner{m: m, body: m.msg.Data, done: make(chan joinResult, 1)}
	ln.waiting = append(ln.waiting, j)
	l.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var cause error
	select {
	case r := <-j.done:
		m.state, m.err = r.state, r.err
		return nil
	case <-timer.C:
		cause = errJoinTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	}
	l.mu.Lock()
	if !j.taken {
		ln.waiting = slices.DeleteFunc(ln.waiting, func(x *joiner) bool { return x == j })
	}
	l.mu.Unlock()
	// Taken or not, the answer is a 429; if the shared message is stored
	// after all, the device's resend is a duplicate dropped by event id.
	m.state, m.err = msgFailed, cause
	return cause
}

// release frees a slot of subj's lane, or hands it to a carrier of the
// requests waiting there.
func (l *lanes) release(h *Handler, subj string) {
	l.mu.Lock()
	g := l.next(subj)
	l.mu.Unlock()
	if g != nil {
		go l.carry(h, subj, g)
	}
}

// next hands subj's slot on: a group of the requests waiting there, or
// nil once the slot is free. Called with l.mu held.
func (l *lanes) next(subj string) *group {
	ln := l.m[subj]
	if len(ln.waiting) > 0 {
		return l.take(ln)
	}
	ln.inFlight--
	if ln.inFlight == 0 {
		delete(l.m, subj)
	}
	return nil
}

// group is what a carrier sends: the bodies of the requests it took.
type group struct {
	members []*joiner
	data    []byte
	ids     schema.BatchMsgIDBuilder
}

// take moves waiting requests into a group, up to maxJoinedBytes (at
// least one), copying their bodies; called with l.mu held.
func (l *lanes) take(ln *lane) *group {
	g := &group{}
	n := 0
	for _, j := range ln.waiting {
		if n > 0 && len(g.data)+1+len(j.body) > maxJoinedBytes {
			break
		}
		if n > 0 {
			g.data = append(g.data, schema.BatchSeparator)
		}
		g.data = append(g.data, j.body...)
		g.ids.Add(j.m.hdr[jetstream.MsgIDHeader][0])
		j.taken = true
		g.members = append(g.members, j)
		n++
	}
	ln.waiting = slices.Delete(ln.waiting, 0, n)
	return g
}

// carry publishes groups for subj until the lane has nobody waiting. It
// answers for requests that may have gone, so it is bounded by its own
// deadline, not theirs.
func (l *lanes) carry(h *Handler, subj string, g *group) {
	for g != nil {
		one := []outMsg{{hdr: nats.Header{jetstream.MsgIDHeader: {g.ids.ID()}, schema.EventsHeader: {"2"}}}}
		m := &one[0]
		m.msg = nats.Msg{Subject: subj, Header: m.hdr, Data: g.data}
		if s := h.js.Conn().Status(); s != nats.CONNECTED {
			m.state, m.err = msgFailed, errors.Join(errUnavailable, errors.New("nats connection "+s.String()))
		} else if err := h.sendAll(context.Background(), one, time.Now().Add(h.cfg.PublishTimeout)); err != nil && m.state == msgPending {
			m.state, m.err = msgFailed, err
		}
		h.m.joined.Add(float64(len(g.members)))
		for _, j := range g.members {
			j.done <- joinResult{state: m.state, err: m.err}
		}
		l.mu.Lock()
		g = l.next(subj)
		l.mu.Unlock()
	}
}
