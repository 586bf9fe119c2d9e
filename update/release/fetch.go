package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultFetchTimeout is the default Options.FetchTimeout.
const DefaultFetchTimeout = 15 * time.Second

// ErrFetchTimeout is returned (wrapped) when the object store stopped
// answering during a bundle fetch: nothing arrived for FetchTimeout.
var ErrFetchTimeout = errors.New("object store did not answer in time")

// objectReader reads a stored object chunk by chunk with direct gets on
// the object store's stream, each bounded by a progress deadline: the
// time to the first byte, and from then on between two chunks, is at most
// timeout. jetstream.ObjectStore.Get cannot be bounded that way: its
// reader blocks until the whole-fetch deadline when the server stops
// sending.
type objectReader struct {
	ctx     context.Context
	stream  jetstream.Stream
	subject string
	timeout time.Duration
	// deadline is when the fetch fails unless another chunk arrives.
	deadline time.Time
	next     uint64 // stream sequence to look from
	left     uint64 // bytes still expected
	buf      []byte
}

// openObject starts reading the object name; the first-byte deadline
// starts now and covers the object's info, the stream lookup and the
// first chunk.
func (s *Store) openObject(ctx context.Context, name string) (*objectReader, error) {
	r := &objectReader{ctx: ctx, timeout: s.opts.FetchTimeout, deadline: time.Now().Add(s.opts.FetchTimeout), next: 1}
	var info *jetstream.ObjectInfo
	err := r.bounded(func(ctx context.Context) error {
		var err error
		info, err = s.obs.GetInfo(ctx, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("object %q info: %w", name, err)
	}
	if info.NUID == "" || info.Opts != nil && info.Opts.Link != nil {
		return nil, fmt.Errorf("object %q: %w", name, jetstream.ErrBadObjectMeta)
	}
	err = r.bounded(func(ctx context.Context) error {
		var err error
		r.stream, err = s.js.Stream(ctx, "OBJ_"+s.opts.ObjectBucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("object store stream: %w", err)
	}
	r.subject = "$O." + s.opts.ObjectBucket + ".C." + info.NUID
	r.left = info.Size
	return r, nil
}

// bounded runs one request with the current progress deadline, mapping
// its expiry to ErrFetchTimeout.
func (r *objectReader) bounded(f func(context.Context) error) error {
	ctx, cancel := context.WithDeadline(r.ctx, r.deadline)
	defer cancel()
	err := f(ctx)
	if err != nil && r.ctx.Err() == nil && !time.Now().Before(r.deadline) {
		return fmt.Errorf("%w (no progress for %s): %w", ErrFetchTimeout, r.timeout, err)
	}
	return err
}

func (r *objectReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		var m *jetstream.RawStreamMsg
		err := r.bounded(func(ctx context.Context) error {
			var err error
			m, err = r.stream.GetMsg(ctx, r.next, jetstream.WithGetMsgSubject(r.subject))
			return err
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, fmt.Errorf("object chunks end %d bytes early: %w", r.left, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, fmt.Errorf("object chunk: %w", err)
		}
		if uint64(len(m.Data)) > r.left {
			return 0, fmt.Errorf("object chunks exceed the object's size by %d bytes", uint64(len(m.Data))-r.left)
		}
		r.next = m.Sequence + 1
		r.left -= uint64(len(m.Data))
		r.buf = m.Data
		r.deadline = time.Now().Add(r.timeout)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
