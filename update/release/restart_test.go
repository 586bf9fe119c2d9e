package release

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/capstan-io/capstan/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSServerRestart keeps a store running while the NATS server it
// talks to restarts on the same port and data: the store must come back
// to ready and keep following changes made by another front.
func TestNATSServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(dir, "127.0.0.1:-1")
	must(t, err)
	addr := srv.Addr().(*net.TCPAddr)
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	connect := func() jetstream.JetStream {
		nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		must(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		must(t, err)
		return js
	}
	ctx := tctx(t)
	a := testStore(t, connect(), Options{})
	must(t, a.CreateApp(ctx, App{ID: "com.a"}))

	srv.Shutdown()
	srv.WaitForShutdown()
	srv, err = bus.StartEmbedded(dir, listen)
	must(t, err)

	b := testStore(t, connect(), Options{})
	waitFor(t, func() bool { _, ok := b.Snapshot().App("com.a"); return ok })
	waitFor(t, a.Ready)
	must(t, b.PutChannel(ctx, NewChannel("com.a", "after-restart")))
	waitFor(t, func() bool { _, ok := a.Snapshot().Channel("com.a", "after-restart"); return ok })
	must(t, a.Check(ctx))
}
