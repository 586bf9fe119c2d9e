package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
)

var benchActions = []string{
	"app_moved_to_foreground", "download_10", "download_20", "download_complete", "set",
	"app_launch_start", "app_launch_ready", "webview_page_loaded", "app_moved_to_background", "download_fail",
}

// appendBenchBody appends a realistic 20-event batch from one device;
// seq makes its content (and so its event ids) unique.
func appendBenchBody(b []byte, seq int64) []byte { return appendBenchEvents(b, seq, 20) }

// appendBenchEvents appends a batch of n events from one device.
func appendBenchEvents(b []byte, seq int64, n int) []byte {
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"platform":"android","device_id":"2d1a5e3c-9b7f-4f7e-9e57-`...)
		b = strconv.AppendInt(b, 100000000000+seq%1000000, 10)
		b = append(b, `","app_id":"com.example.app","custom_id":"","version_build":"1.4.0","version_code":"14",`+
			`"version_os":"14","version_name":"1.2.3","plugin_version":"8.51.23","is_emulator":false,`+
			`"is_prod":true,"defaultChannel":"production","action":"`...)
		b = append(b, benchActions[i%len(benchActions)]...)
		b = append(b, `","old_version_name":"","metadata":{"source":"bench"},"timestamp":`...)
		b = strconv.AppendInt(b, 1749999999000+seq*int64(n)+int64(i), 10)
		b = append(b, '}')
	}
	return append(b, ']')
}

func BenchmarkDecode20(b *testing.B) {
	body := appendBenchBody(nil, 1)
	var d decoder
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, items, berr := d.decode(body, DefaultMaxEvents)
		if berr != nil || len(items) != 20 || items[19].err != nil {
			b.Fatal("decode failed", berr)
		}
	}
	b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHandler20 runs the whole handler, in parallel, against a real
// embedded JetStream (file storage) in the same process, 20 events per
// request, every request with new content.
func BenchmarkHandler20(b *testing.B) { benchHandler(b, 20) }

// BenchmarkHandler1 is the same with 1-event bodies, where the per-request
// JetStream message is the whole cost.
func BenchmarkHandler1(b *testing.B) { benchHandler(b, 1) }

func benchHandler(b *testing.B, per int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bs := openStreams(b, ctx)
	h := New(Config{JetStream: bs.JetStream})
	var seq atomic.Int64
	var failures atomic.Int64
	// A front serves many connections at once; with GOMAXPROCS goroutines
	// alone no request would ever wait for another.
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var body []byte
		rd := &bodyReader{}
		w := &discardWriter{h: http.Header{}}
		req := httptest.NewRequest(http.MethodPost, "/stats", nil)
		for pb.Next() {
			body = appendBenchEvents(body[:0], seq.Add(1), per)
			rd.reset(body)
			req.Body = rd
			req.ContentLength = int64(len(body))
			w.code = 0
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "events/s")
}

type bodyReader struct {
	b []byte
	i int
}

func (r *bodyReader) reset(b []byte) { r.b, r.i = b, 0 }
func (r *bodyReader) Close() error   { return nil }
func (r *bodyReader) Read(p []byte) (int, error) {
	if r.i >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.i:])
	r.i += n
	return n, nil
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(c int)           { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkPublishRequest compares nats.go's ways of publishing one
// request's message (20 events, version 2) and waiting for its ack, in parallel.
// Each run gets a fresh embedded JetStream (file storage): a stream that
// grows from run to run would favour whichever runs first.
func BenchmarkPublishRequest(b *testing.B) {
	var d decoder
	_, items, _ := d.decode(appendBenchBody(nil, 1), DefaultMaxEvents)
	var body []byte
	for i := range items {
		items[i].ev.ID, items[i].ev.ReceivedMs = "0123456789abcdef0123456789abcdef", 1
		body, _ = schema.AppendBatchEvent(body, &items[i].ev, nil)
	}
	subject := schema.EventSubject("com.example.app")
	var seq atomic.Int64
	run := func(b *testing.B, setup func(nc *nats.Conn) func(m *nats.Msg) error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bs := openStreams(b, ctx)
		op := setup(bs.Conn)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		var failures atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			m := nats.NewMsg(subject)
			m.Data = body
			m.Header.Set(schema.EventsHeader, "2")
			m.Header.Set(jetstream.MsgIDHeader, "")
			var buf []byte
			for pb.Next() {
				buf = strconv.AppendInt(append(buf[:0], 'r'), seq.Add(1), 10)
				m.Header[jetstream.MsgIDHeader][0] = string(buf)
				if err := op(m); err != nil {
					failures.Add(1)
				}
			}
		})
		b.StopTimer()
		if n := failures.Load(); n > 0 {
			b.Fatalf("%d publishes failed", n)
		}
		b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("async", func(b *testing.B) {
		run(b, func(nc *nats.Conn) func(*nats.Msg) error {
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(DefaultMaxPendingPublishes))
			if err != nil {
				b.Fatal(err)
			}
			return func(m *nats.Msg) error {
				f, err := js.PublishMsgAsync(m)
				if err != nil {
					return err
				}
				t := time.NewTimer(DefaultPublishTimeout)
				defer t.Stop()
				select {
				case <-f.Ok():
					return nil
				case err := <-f.Err():
					return err
				case <-t.C:
					return errUnavailable
				}
			}
		})
	})
	b.Run("sync", func(b *testing.B) {
		run(b, func(nc *nats.Conn) func(*nats.Msg) error {
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			return func(m *nats.Msg) error {
				ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
				defer cancel()
				_, err := js.PublishMsg(ctx, m)
				return err
			}
		})
	})
}
