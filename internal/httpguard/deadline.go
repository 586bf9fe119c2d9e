package httpguard

import (
	"io"
	"net/http"
	"time"
)

// Policy is how long one request may take once its headers are read. The
// HTTP server's ReadHeaderTimeout covers the headers; a Policy covers the
// body and the answer, so a client that stops sending or reading loses its
// connection instead of holding it.
type Policy struct {
	// Read is the time allowed to read the body.
	Read time.Duration
	// MinRate, in bytes per second, lengthens Read for large bodies: by
	// Content-Length/MinRate, or MaxBody/MinRate when the length is not
	// announced (chunked). 0 = Read alone.
	MinRate int64
	MaxBody int64
	// Write is the time allowed to write the answer, counted from the end
	// of the read deadline (handlers answer after reading).
	Write time.Duration
	// WriteIdle, when set, replaces Write by a rolling deadline: each chunk
	// of the answer may take WriteIdle, so a large download lasts as long
	// as bytes keep flowing.
	WriteIdle time.Duration
}

// readDeadline is when the body must have arrived, for a request of
// contentLength bytes (-1 = unknown).
func (p Policy) readDeadline(now time.Time, contentLength int64) time.Time {
	d := p.Read
	if p.MinRate > 0 {
		n := contentLength
		if n < 0 {
			n = p.MaxBody
		}
		if n > 0 {
			d += time.Duration(float64(n) / float64(p.MinRate) * float64(time.Second))
		}
	}
	return now.Add(d)
}

// Handler sets the policy's deadlines on every request before next sees it.
func (p Policy) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rd := p.readDeadline(time.Now(), r.ContentLength)
		// Errors mean the writer has no connection underneath (an
		// in-process test recorder): there is nothing to bound then.
		_ = rc.SetReadDeadline(rd)
		if p.WriteIdle > 0 {
			_ = rc.SetWriteDeadline(rd.Add(p.WriteIdle))
			w = &rollingWriter{ResponseWriter: w, rc: rc, idle: p.WriteIdle}
		} else {
			_ = rc.SetWriteDeadline(rd.Add(p.Write))
		}
		var body *eofReader
		if r.Body != nil && r.Body != http.NoBody {
			body = &eofReader{ReadCloser: r.Body}
			r.Body = body
		}
		next.ServeHTTP(w, r)
		if body != nil && !body.eof {
			// The handler answered without reading the whole body (404,
			// 401, 405...). The server would read the rest before sending
			// the answer, waiting for a stalled client until the read
			// deadline; give it a moment only, then the connection closes
			// after the answer.
			_ = rc.SetReadDeadline(earliest(rd, time.Now().Add(unreadGrace)))
		}
	})
}

// unreadGrace is how long the server may still read a body its handler
// left unread.
const unreadGrace = 250 * time.Millisecond

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// eofReader records whether a request body was read to its end.
type eofReader struct {
	io.ReadCloser
	eof bool
}

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err == io.EOF {
		r.eof = true
	}
	return n, err
}

// chunk is the most written under one extension of a rolling deadline.
const chunk = 64 << 10

// rollingWriter extends the write deadline before each chunk it writes.
type rollingWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
}

func (w *rollingWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.idle))
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Flush keeps http.Flusher working through the wrapper.
func (w *rollingWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.idle))
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *rollingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
