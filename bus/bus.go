// Package bus connects Capstan to NATS JetStream: an embedded in-process
// server when no URL is given, an external cluster when one is.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where JetStream is.
type Config struct {
	// URL of an external NATS cluster; empty starts an embedded server.
	URL string
	// DataDir holds the embedded server's JetStream files.
	DataDir string
	// Listen is the embedded server's client address ("127.0.0.1:4222");
	// a port of -1 or 0 picks a free one, an empty value does not listen.
	Listen string
	// Name identifies this process in NATS connection lists.
	Name string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// Bus is a live connection to JetStream, plus the embedded server when
// Capstan runs one.
type Bus struct {
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	// Server is the embedded server, nil when connected to an external one.
	Server *server.Server
	log    *slog.Logger
}

// Open starts or joins JetStream according to cfg.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{log: log}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil on our own Close/Drain
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	}
	url := cfg.URL
	if url == "" {
		srv, err := StartEmbedded(cfg.DataDir, cfg.Listen)
		if err != nil {
			return nil, err
		}
		b.Server = srv
		opts = append(opts, nats.InProcessServer(srv))
		if srv.Addr() != nil {
			log.Info("embedded nats started", "store_dir", cfg.DataDir, "client_url", srv.ClientURL())
		} else {
			log.Info("embedded nats started in-process", "store_dir", cfg.DataDir)
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to nats %q: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	b.Conn, b.JetStream = nc, js
	ping := b.Ping
	if url != "" {
		// A cluster still electing its JetStream meta leader answers
		// "temporarily unavailable" or not at all: wait for it, bounded.
		ping = func(ctx context.Context) error {
			return Retry(ctx, log, "jetstream account info", b.Ping)
		}
	}
	if err := ping(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// StartEmbedded runs a JetStream-enabled nats-server storing under dir.
// listen is "host:port"; port -1 picks a free port; "" means in-process only.
func StartEmbedded(dir, listen string) (*server.Server, error) {
	if dir == "" {
		return nil, errors.New("embedded nats: a data directory is required")
	}
	o := &server.Options{
		ServerName: "capstan-embedded",
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
		DontListen: listen == "",
		// Allow large bundle chunks and stats bodies without tuning.
		MaxPayload: 8 << 20,
	}
	if listen != "" {
		host, portStr, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats listen %q: %w", listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("embedded nats listen port %q: %w", portStr, err)
		}
		if port == 0 {
			port = -1
		}
		o.Host, o.Port = host, port
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	return srv, nil
}

// Ping checks that JetStream answers.
func (b *Bus) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.JetStream.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream account info: %w", err)
	}
	return nil
}

// Close drains the connection, then stops the embedded server if any.
func (b *Bus) Close() {
	if b.Conn != nil {
		if err := b.Conn.Drain(); err != nil {
			b.Conn.Close()
		}
		// Drain is asynchronous; wait for it so pending acks are flushed.
		deadline := time.Now().Add(10 * time.Second)
		for !b.Conn.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.Server != nil {
		b.Server.Shutdown()
		b.Server.WaitForShutdown()
	}
}
