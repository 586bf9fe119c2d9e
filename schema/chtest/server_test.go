package chtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestServerRestartKeepsData(t *testing.T) {
	s := chtest.StartServer(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	conn := s.Conn(t, db)
	if err := conn.Exec(ctx, "CREATE TABLE x (n UInt32) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "INSERT INTO x SELECT toUInt32(number) FROM numbers(2)"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %s", time.Since(t0))
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping succeeded while stopped")
	}
	t0 = time.Now()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("start took %s", time.Since(t0))
	// 18.16 waits for client-sent data blocks on INSERT ... VALUES over the
	// native protocol; use INSERT ... SELECT or a batch.
	var n uint64
	if err := s.Conn(t, db).QueryRow(ctx, "SELECT count() FROM x").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("count after restart = %d, want 2", n)
	}
}

func TestSharedIsShared(t *testing.T) {
	a, b := chtest.Shared(t), chtest.Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	var v string
	if err := a.Conn(t, "").QueryRow(context.Background(), "SELECT version()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("clickhouse %s at %s", v, a.DSN(""))
}
