// Package httpguard bounds what slow or idle clients can hold on an HTTP front: connections per listener, and read and write deadlines per request.
package httpguard

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener holding at most Max connections open. A
// connection arriving when it is full is not left waiting in the kernel's
// backlog: it is answered at once with 429 server_busy, Retry-After and
// Connection: close, then closed.
//
// (golang.org/x/net/netutil.LimitListener blocks Accept instead, which
// leaves the client hanging without an answer; hence this one.)
type Listener struct {
	net.Listener
	max        int64
	retryAfter int

	open     atomic.Int64
	rejected atomic.Uint64
	// rejecting counts busy answers being written; above maxRejecting a
	// connection is closed without one, so a flood cannot pile them up.
	rejecting atomic.Int64
}

const (
	// A busy answer in flight costs a small goroutine and 512 bytes.
	maxRejecting  = 4096
	rejectTimeout = 500 * time.Millisecond
)

// NewListener wraps ln so that it holds at most max connections (max <= 0
// means no limit). retryAfter is the Retry-After, in seconds, of the busy
// answer.
func NewListener(ln net.Listener, max int, retryAfter time.Duration) *Listener {
	s := int(retryAfter / time.Second)
	if s < 1 {
		s = 1
	}
	return &Listener{Listener: ln, max: int64(max), retryAfter: s}
}

// Open is the number of connections currently held.
func (l *Listener) Open() int64 { return l.open.Load() }

// Rejected is the number of connections answered 429 server_busy so far.
func (l *Listener) Rejected() uint64 { return l.rejected.Load() }

// Accept returns the next connection while fewer than Max are open, and
// answers the others busy without handing them to the server.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > l.max {
			l.open.Add(-1)
			l.rejected.Add(1)
			l.reject(c)
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// reject writes the busy answer and closes c, in the background and
// bounded in time.
func (l *Listener) reject(c net.Conn) {
	if l.rejecting.Add(1) > maxRejecting {
		l.rejecting.Add(-1)
		_ = c.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(rejectTimeout))
		if _, err := c.Write(busyResponse(l.retryAfter)); err != nil {
			return
		}
		// Half-close, then drain what the client already sent: closing
		// with unread bytes makes the kernel send a reset, which can
		// destroy the answer before the client reads it.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		buf := make([]byte, 512)
		for total := 0; total < 64<<10; {
			n, err := c.Read(buf)
			total += n
			if err != nil {
				return
			}
		}
	}()
}

const busyBody = `{"error":"server_busy","message":"Too many open connections; retry later"}` + "\n"

func busyResponse(retryAfter int) []byte {
	// 429, not 503: the updater plugin honours Retry-After only on a 429
	// and retries a 503 at once.
	return []byte("HTTP/1.1 429 Too Many Requests\r\n" +
		"Content-Type: application/json\r\n" +
		"Retry-After: " + strconv.Itoa(retryAfter) + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(busyBody)) + "\r\n" +
		"Connection: close\r\n\r\n" + busyBody)
}

// conn gives its slot back when closed.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite keeps half-closing available to the HTTP server.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("httpguard: connection cannot half-close")
}
