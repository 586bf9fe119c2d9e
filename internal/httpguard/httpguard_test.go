package httpguard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs h behind a Listener holding at most max connections, with
// policy p, on a loopback port, until the test ends.
func serve(t *testing.T, max int, p Policy, h http.Handler) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := NewListener(ln, max, 3*time.Second)
	srv := &http.Server{Handler: p.Handler(h), ReadHeaderTimeout: 2 * time.Second}
	go func() { _ = srv.Serve(gl) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), gl
}

// stalled opens a connection and sends a request announcing a body it
// never sends in full.
func stalled(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[", path); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer reads the status line of the answer on c and how long it took.
func answer(t *testing.T, c net.Conn, within time.Duration) (string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	_ = c.SetReadDeadline(t0.Add(within))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer within %s: %v", within, err)
	}
	return strings.TrimSpace(line), time.Since(t0)
}

func readAll(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestStalledBodyIsCutAtTheReadDeadline(t *testing.T) {
	addr, _ := serve(t, 0, Policy{Read: 300 * time.Millisecond, Write: time.Second}, http.HandlerFunc(readAll))
	line, took := answer(t, stalled(t, addr, "/stats"), 3*time.Second)
	if !strings.HasPrefix(line, "HTTP/1.1 400") || took < 250*time.Millisecond || took > 2*time.Second {
		t.Fatalf("got %q after %s, want 400 after the 300ms read deadline", line, took)
	}
}

// A handler that answers without reading (404, 401) is not held back
// until the read deadline by the server draining the body.
func TestUnreadBodyDoesNotDelayTheAnswer(t *testing.T) {
	addr, _ := serve(t, 0, Policy{Read: time.Minute, Write: time.Second}, http.NotFoundHandler())
	line, took := answer(t, stalled(t, addr, "/nope"), 3*time.Second)
	if !strings.HasPrefix(line, "HTTP/1.1 404") || took > 2*time.Second {
		t.Fatalf("got %q after %s, want 404 at once", line, took)
	}
}

func TestFullListenerAnswersBusyAtOnce(t *testing.T) {
	addr, gl := serve(t, 2, Policy{Read: 5 * time.Second, Write: time.Second}, http.HandlerFunc(readAll))
	stalled(t, addr, "/a")
	stalled(t, addr, "/b")
	deadline := time.Now().Add(2 * time.Second)
	for gl.Open() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c := stalled(t, addr, "/c")
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no busy answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" || !strings.Contains(string(body), `"error":"server_busy"`) {
		t.Fatalf("got %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if gl.Rejected() != 1 || gl.Open() != 2 {
		t.Fatalf("rejected %d open %d, want 1 and 2", gl.Rejected(), gl.Open())
	}
}

func TestUploadDeadlineGrowsWithSize(t *testing.T) {
	p := Policy{Read: time.Minute, MinRate: 1 << 20, MaxBody: 512 << 20}
	now := time.Unix(0, 0)
	for _, c := range []struct {
		length int64
		want   time.Duration
	}{
		{0, time.Minute},
		{100 << 20, time.Minute + 100*time.Second},
		{-1, time.Minute + 512*time.Second}, // chunked: the largest upload
	} {
		if got := p.readDeadline(now, c.length).Sub(now); got != c.want {
			t.Errorf("Content-Length %d: read deadline %s, want %s", c.length, got, c.want)
		}
	}
}

// A download lasts as long as bytes flow; a reader that stops loses the
// connection once one chunk waits longer than WriteIdle. The idle bound is
// a second so a loaded CI machine's scheduling pauses do not cut the
// steady reader.
func TestRollingWriteDeadline(t *testing.T) {
	const size = 8 << 20
	payload := strings.Repeat("x", size)
	addr, _ := serve(t, 0, Policy{Read: time.Second, WriteIdle: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = io.WriteString(w, payload)
	}))

	// Slow but steady: 8 MiB in about 1.5 s, beyond WriteIdle in total.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	fmt.Fprint(c, "GET /bundle HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	got := 0
	for {
		n, err := resp.Body.Read(buf)
		got += n
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != size {
		t.Fatalf("steady reader got %d of %d bytes", got, size)
	}

	// Stops reading: the server gives up and closes.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if tc, ok := c2.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	fmt.Fprint(c2, "GET /bundle HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(3 * time.Second)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := io.Copy(io.Discard, c2)
	if n >= size {
		t.Fatalf("stalled reader still got the whole body (%d bytes)", n)
	}
}
