// Package webhook delivers JSON events by HTTP POST, retrying failures.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/capstan-io/capstan/internal/wait"
)

const (
	// DefaultAttempts is how many times Post tries when Sender.Attempts is 0.
	DefaultAttempts = 4
	// DefaultBackoff is the wait before the second attempt when
	// Sender.Backoff is 0; it doubles for every further attempt.
	DefaultBackoff = time.Second
	// MaxBackoff caps the wait between attempts, Retry-After included.
	MaxBackoff = 30 * time.Second
	// AttemptTimeout bounds one attempt: connecting, sending the body and
	// reading the answer.
	AttemptTimeout = 10 * time.Second
)

// maxSnippet is how much of an error answer's body the error quotes.
const maxSnippet = 256

// Sender posts JSON bodies to webhook URLs. The zero value is ready to use.
// A Sender is safe for concurrent use once configured.
type Sender struct {
	// Client sends the requests; nil means http.DefaultClient. Redirects
	// are not followed whatever the client's policy: a 301/302/303 would
	// turn the POST into a GET, so a 3xx answer is a failure.
	Client *http.Client
	// Attempts is the most requests Post sends for one body; 0 means
	// DefaultAttempts.
	Attempts int
	// Backoff is the wait before the second attempt, doubled for every
	// further one, jittered to between half and all of it and capped at
	// MaxBackoff; 0 means DefaultBackoff.
	Backoff time.Duration
	// UserAgent, when set, is sent as the User-Agent header.
	UserAgent string
	// Logger receives one warning per failed attempt; nil discards them.
	Logger *slog.Logger
}

// Error is the error Post returns when the body was not delivered.
type Error struct {
	// URL is the webhook's URL, with any password and query removed.
	URL string
	// Attempts is how many requests were sent.
	Attempts int
	// StatusCode is the last answer's HTTP status, 0 when no attempt got
	// an answer.
	StatusCode int
	// Body is the start of the last answer's body, for the message.
	Body string
	// Err is the last attempt's transport error, or the context's error
	// when ctx ended Post; nil when the last attempt got an answer.
	Err error
	// Retryable is false when the last answer was a status that is not
	// worth retrying (4xx other than 429, 3xx).
	Retryable bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook POST %s", e.URL)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.StatusCode != 0 {
		if e.Err != nil {
			b.WriteString("; last status")
		} else {
			b.WriteString(": status")
		}
		fmt.Fprintf(&b, " %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Body != "" {
			fmt.Fprintf(&b, " %q", e.Body)
		}
	}
	switch {
	case e.Attempts == 1:
		b.WriteString(" (1 attempt")
	default:
		fmt.Fprintf(&b, " (%d attempts", e.Attempts)
	}
	if !e.Retryable && e.Err == nil {
		b.WriteString(", not retried")
	}
	b.WriteString(")")
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Post sends body, encoded as JSON once, to rawURL with Content-Type
// application/json. It retries after transport errors (timeouts
// included), 429 and 5xx answers, waiting the backoff or the answer's
// Retry-After (capped at MaxBackoff), and gives up at once on any other
// non-2xx answer. Each attempt may take AttemptTimeout. Post returns nil
// once an attempt got a 2xx answer; otherwise an *Error, which wraps
// ctx's error when ctx ended first.
func (s *Sender) Post(ctx context.Context, rawURL string, body any) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("webhook: invalid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook: URL %s is not an absolute http(s) URL", redact(u))
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("webhook POST %s: encode body: %w", redact(u), err)
	}
	client := s.client()
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	last := &Error{URL: redact(u)}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			last.Err = err
			return last
		}
		last.Attempts = attempt
		res := s.try(ctx, client, rawURL, payload)
		if res.err == nil && res.status/100 == 2 {
			return nil
		}
		if res.err != nil && ctx.Err() != nil {
			// Ended by the caller, not by the attempt's own timeout.
			last.Err = ctx.Err()
			return last
		}
		last.Err, last.Retryable = res.err, res.retryable()
		if res.status != 0 {
			last.StatusCode, last.Body = res.status, res.body
		}
		if !last.Retryable || attempt >= attempts {
			log.Warn("webhook delivery failed", "url", last.URL, "attempt", attempt, "attempts", attempts,
				"status", res.status, "error", res.err, "giving_up", true)
			return last
		}
		pause := s.backoff(attempt)
		if res.retryAfter >= 0 {
			pause = min(res.retryAfter, MaxBackoff)
		}
		log.Warn("webhook delivery failed", "url", last.URL, "attempt", attempt, "attempts", attempts,
			"status", res.status, "error", res.err, "retry_in", pause)
		if !wait.Sleep(ctx, pause) {
			last.Err = ctx.Err()
			return last
		}
	}
}

// result is one attempt's outcome.
type result struct {
	status     int
	body       string
	retryAfter time.Duration // -1: none
	err        error
}

func (r result) retryable() bool {
	if r.err != nil {
		return true
	}
	return r.status == http.StatusTooManyRequests || r.status >= 500
}

func (s *Sender) try(ctx context.Context, client *http.Client, rawURL string, payload []byte) result {
	actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, rawURL, bytes.NewReader(payload))
	if err != nil {
		return result{err: err, retryAfter: -1}
	}
	req.Header.Set("Content-Type", "application/json")
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is in the Error already
		}
		return result{err: err, retryAfter: -1}
	}
	defer resp.Body.Close()
	r := result{status: resp.StatusCode, retryAfter: -1}
	if resp.StatusCode/100 != 2 {
		snip, _ := io.ReadAll(io.LimitReader(resp.Body, maxSnippet))
		r.body = strings.TrimSpace(strings.ToValidUTF8(string(snip), "?"))
		if r.retryable() {
			r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	// Read what is left (a little) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return r
}

// client returns the Sender's client, not following redirects.
func (s *Sender) client() *http.Client {
	c := http.DefaultClient
	if s.Client != nil {
		c = s.Client
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// backoff is the jittered wait after the given failed attempt (1-based).
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.Backoff
	if d <= 0 {
		d = DefaultBackoff
	}
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date;
// -1 when absent or not understood.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return -1
		}
		if secs > int64(MaxBackoff/time.Second) {
			return MaxBackoff
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), MaxBackoff)
	}
	return -1
}

// redact is the URL for messages: without password and query, which often
// carry the webhook's secret.
func redact(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "REDACTED"
	}
	c.Fragment, c.RawFragment = "", ""
	return c.Redacted()
}
