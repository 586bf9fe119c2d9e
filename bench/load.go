package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is one closed-loop run: Workers goroutines each send a request,
// wait for the answer, and send the next, until MaxRequests were sent or
// Duration elapsed, whichever comes first.
type Load struct {
	BaseURL     string // http://127.0.0.1:port
	Requests    []Request
	Workers     int
	MaxRequests int64
	Duration    time.Duration
	// Warmup requests are sent (by all workers) before measuring.
	Warmup int64
	// StampBase is the first number written into Request.Stamps; every
	// send gets fresh numbers from it upward.
	StampBase int64
	// Stamp, when non-nil, is shared between runs so numbers never repeat.
	Stamp *atomic.Int64
	// Rate, when positive, paces the run to this many requests per second
	// in total (an offered load); 0 sends as fast as answers come back.
	Rate float64
}

// Result is what a Load measured.
type Result struct {
	Requests  int64 // answered with 2xx
	Events    int64 // events in 2xx requests, minus per-event errors
	EventErrs int64 // per-event "status":"error" entries in 2xx answers
	Failed    int64 // transport errors and non-2xx answers
	Status    map[int]int64
	Answers   map[string]int64 // update-check outcomes: "update", "builtin" or the error code
	Errors    map[string]int64 // transport errors by text (first words)
	Elapsed   time.Duration
	Latency   *Histogram
}

// RPS is 2xx requests per second.
func (r *Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// EPS is accepted events per second.
func (r *Result) EPS() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// NewClient returns an HTTP client tuned for many keep-alive connections
// to one loopback host.
func NewClient(conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type worker struct {
	hist      *Histogram
	ok        int64
	events    int64
	eventErrs int64
	failed    int64
	status    map[int]int64
	answers   map[string]int64
	errs      map[string]int64
	resp      bytes.Buffer
	body      []byte
}

// Run executes the load and returns what it measured.
func (l *Load) Run(ctx context.Context, client *http.Client) (*Result, error) {
	if len(l.Requests) == 0 || l.Workers < 1 {
		return nil, errors.New("load: no requests or workers")
	}
	if l.Stamp == nil {
		l.Stamp = &atomic.Int64{}
		// 13 digits without a leading zero keep the JSON number valid.
		l.Stamp.Store(max(l.StampBase, placeholder))
	}
	if l.Warmup > 0 {
		warm := *l
		warm.Warmup, warm.MaxRequests, warm.Duration = 0, l.Warmup, time.Minute
		if _, err := warm.run(ctx, client); err != nil {
			return nil, err
		}
	}
	return l.run(ctx, client)
}

func (l *Load) run(ctx context.Context, client *http.Client) (*Result, error) {
	// Workers stop taking new requests at the deadline but let requests in
	// flight finish, so every event the server accepted is counted.
	var next atomic.Int64 // request tickets
	max := l.MaxRequests
	if max <= 0 {
		max = 1 << 62
	}
	ws := make([]*worker, l.Workers)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(l.Duration)
	for i := range ws {
		w := &worker{hist: NewHistogram(), status: map[int]int64{}, answers: map[string]int64{}, errs: map[string]int64{}}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > max {
					return
				}
				if l.Rate > 0 {
					at := start.Add(time.Duration(float64(n-1) / l.Rate * float64(time.Second)))
					if at.After(deadline) {
						return
					}
					if d := time.Until(at); d > 0 {
						time.Sleep(d)
					}
				}
				if !time.Now().Before(deadline) {
					return
				}
				req := &l.Requests[(n-1)%int64(len(l.Requests))]
				w.send(ctx, client, l.BaseURL, req, l.Stamp)
			}
		}()
	}
	wg.Wait()
	res := &Result{Elapsed: time.Since(start), Latency: NewHistogram(), Status: map[int]int64{}, Answers: map[string]int64{}, Errors: map[string]int64{}}
	for _, w := range ws {
		res.Latency.Merge(w.hist)
		res.Requests += w.ok
		res.Events += w.events
		res.EventErrs += w.eventErrs
		res.Failed += w.failed
		for k, v := range w.status {
			res.Status[k] += v
		}
		for k, v := range w.answers {
			res.Answers[k] += v
		}
		for k, v := range w.errs {
			res.Errors[k] += v
		}
	}
	return res, nil
}

var (
	statusErrJSON = []byte(`"status":"error"`)
	errorKeyJSON  = []byte(`"error":"`)
	builtinJSON   = []byte(`"version":"builtin"`)
)

func (w *worker) send(ctx context.Context, client *http.Client, base string, r *Request, stamp *atomic.Int64) {
	body := r.Body
	if len(r.Stamps) > 0 {
		w.body = append(w.body[:0], r.Body...)
		first := stamp.Add(int64(len(r.Stamps))) - int64(len(r.Stamps))
		for i, off := range r.Stamps {
			putStamp(w.body, off, first+int64(i))
		}
		body = w.body
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+r.Path, bytes.NewReader(body))
	if err != nil {
		w.failed++
		w.errs[err.Error()]++
		return
	}
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["User-Agent"] = []string{r.UserAgent}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the run ended while this request was in flight
		}
		w.failed++
		w.errs[shortErr(err)]++
		return
	}
	w.resp.Reset()
	_, err = io.Copy(&w.resp, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		w.failed++
		w.errs[shortErr(err)]++
		return
	}
	w.status[resp.StatusCode]++
	if resp.StatusCode/100 != 2 {
		w.failed++
		return
	}
	w.hist.Record(d)
	w.ok++
	b := w.resp.Bytes()
	if r.Path == "/updates" {
		w.answers[classify(b)]++
		w.events++
		return
	}
	bad := int64(bytes.Count(b, statusErrJSON))
	w.eventErrs += bad
	w.events += int64(r.Events) - bad
}

// classify names an update-check answer: "update", "builtin" or its error code.
func classify(b []byte) string {
	if i := bytes.Index(b, errorKeyJSON); i >= 0 {
		rest := b[i+len(errorKeyJSON):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && j < 64 {
			return string(rest[:j])
		}
		return "error"
	}
	if bytes.Contains(b, builtinJSON) {
		return "builtin"
	}
	return "update"
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// Summary is a one-line human summary of r.
func (r *Result) Summary(events bool) string {
	s := fmt.Sprintf("%d req in %.1fs = %.0f req/s", r.Requests, r.Elapsed.Seconds(), r.RPS())
	if events {
		s += fmt.Sprintf(", %.0f events/s", r.EPS())
	}
	s += fmt.Sprintf("; latency p50 %s p90 %s p99 %s max %s", fmtDur(r.Latency.Quantile(.5)), fmtDur(r.Latency.Quantile(.9)), fmtDur(r.Latency.Quantile(.99)), fmtDur(r.Latency.Max()))
	if r.Failed > 0 || r.EventErrs > 0 {
		s += fmt.Sprintf("; FAILED %d (status %v, errors %v), event errors %d", r.Failed, r.Status, r.Errors, r.EventErrs)
	}
	return s
}

// SortedAnswers lists update-check outcomes by count, largest first.
func (r *Result) SortedAnswers() []string {
	var keys []string
	for k := range r.Answers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return r.Answers[keys[i]] > r.Answers[keys[j]] })
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %.1f%%", k, 100*float64(r.Answers[k])/float64(r.Requests)))
	}
	return out
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
