package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/bus"
	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

func TestConsumeNeedsNATSURL(t *testing.T) {
	t.Setenv("CAPSTAN_NATS_URL", "")
	err := runConsume(context.Background(), []string{"--metrics-listen", ""})
	if err == nil || !strings.Contains(err.Error(), "--nats-url") {
		t.Fatalf("runConsume without a NATS URL: %v", err)
	}
}

// capstan consume against a separate NATS server and a real ClickHouse:
// events already waiting in the stream end up in ClickHouse, the ops
// endpoints answer, and cancelling (SIGTERM) returns cleanly.
func TestConsumeCommand(t *testing.T) {
	chSrv := chtest.StartServer(t)
	ns, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	js := jetStreamAt(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := schema.EnsureStreams(ctx, js, schema.DefaultStreamLimits()); err != nil {
		t.Fatal(err)
	}
	const n = 50
	// As fronts publish: one message per request, here of 10 events.
	for r := 0; r < n/10; r++ {
		m := nats.NewMsg(schema.EventSubject("com.example.cmd"))
		var ids []string
		for i := r * 10; i < r*10+10; i++ {
			ev := schema.Event{ID: fmt.Sprintf("%032x", i+1), ReceivedMs: time.Now().UnixMilli(), AppID: "com.example.cmd",
				DeviceID: fmt.Sprintf("device-%d", i), Platform: "ios", Action: "set", VersionName: "1.0.0"}
			m.Data, _ = schema.AppendBatchEvent(m.Data, &ev, nil)
			ids = append(ids, ev.ID)
		}
		m.Header.Set(schema.EventsHeader, "2")
		m.Header.Set(jetstream.MsgIDHeader, schema.BatchMsgID(slices.Values(ids)))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	addr := freeAddr(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runConsume(runCtx, []string{
			"--nats-url", ns.ClientURL(),
			"--clickhouse-url", chSrv.DSN("capstan_cmd"),
			"--batch-size", "20", "--batch-linger", "50ms",
			"--metrics-listen", addr, "--log-level", "warn",
		})
	}()

	waitUntil(t, "ready", func() bool { code, _ := get(t, "http://"+addr+"/readyz"); return code == http.StatusOK })
	if code, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d", code)
	}
	conn := chSrv.Conn(t, "capstan_cmd")
	waitUntil(t, "events in clickhouse", func() bool {
		var c uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM capstan_events").Scan(&c)
		return err == nil && c == n
	})
	waitUntil(t, "metrics", func() bool {
		_, body := get(t, "http://"+addr+"/metrics")
		return strings.Contains(body, fmt.Sprintf("capstan_consumer_inserted_events_total %d", n))
	})

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runConsume: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runConsume did not return after cancel")
	}
}

// unsetEnv clears keys for the test, restoring them after it: the
// commands read their defaults from CAPSTAN_* variables.
func unsetEnv(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// jetStreamAt connects to a NATS server for the test's lifetime.
func jetStreamAt(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
