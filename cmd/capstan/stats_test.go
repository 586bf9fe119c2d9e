package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
)

func TestTopFailures(t *testing.T) {
	c := []schema.ActionCount{{Action: "update_fail", Count: 5}, {Action: "download_fail", Count: 2}, {Action: "app_crash", Count: 1}, {Action: "unzip_fail", Count: 1}}
	for n, want := range map[int]string{3: "update_fail:5,download_fail:2,app_crash:1,+1 more", 4: "update_fail:5,download_fail:2,app_crash:1,unzip_fail:1"} {
		if got := topFailures(c, n); got != want {
			t.Errorf("topFailures(%d) = %q, want %q", n, got, want)
		}
	}
	if got := topFailures(nil, 3); got != "-" {
		t.Errorf("topFailures(nil) = %q", got)
	}
}

func TestStatsCommand(t *testing.T) {
	srv := chtest.StartServer(t)
	ctx := context.Background()
	db := chtest.DBName(t)
	dsn := srv.DSN(db)

	// Before any migration: a clear error, not a crash.
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no Capstan tables") {
		t.Fatalf("stats on an empty database: %v", err)
	}

	conn, err := schema.OpenClickHouse(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := schema.Migrate(ctx, conn, schema.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	flavor, err := schema.DetectFlavor(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b, err := conn.PrepareBatch(ctx, schema.InsertSQL("", flavor))
	if err != nil {
		t.Fatal(err)
	}
	for i, action := range []string{"set", "set", "update_fail", "app_launch_ready", "set", "download_fail"} {
		e := &schema.Event{ID: fmt.Sprintf("%032x", i), ReceivedMs: now.Add(-time.Minute).UnixMilli(), AppID: "com.example.app",
			DeviceID: fmt.Sprintf("d%d", i), Platform: "android", Action: action, VersionName: "1.2.0", Channel: "production",
			IsProd: true}
		switch i {
		case 4: // counted only with --include-dev
			e.IsEmulator = true
		case 5:
			e.IsProd = false
		}
		if err := schema.AppendEvent(b, e, flavor); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--app", "com.example.app", "--since", "1h"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "APP") {
		t.Fatalf("table:\n%s", out.String())
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "com.example.app 1.2.0 2 3 1 33.3% 1 update_fail:1" {
		t.Fatalf("row %q", lines[1])
	}

	out.Reset()
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--app", "com.example.app", "--include-dev"}, &out); err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if f := strings.Fields(lines[len(lines)-1]); strings.Join(f, " ") != "com.example.app 1.2.0 3 4 2 40.0% 1 download_fail:1,update_fail:1" {
		t.Fatalf("row with --include-dev %q", lines[len(lines)-1])
	}

	out.Reset()
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--json", "--channel", "beta"}, &out); err != nil {
		t.Fatal(err)
	}
	var rows []schema.ReportRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil || len(rows) != 0 {
		t.Fatalf("json for an empty channel: %v %q", err, out.String())
	}

	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--since", "-1h"}, &out); err == nil {
		t.Fatal("negative --since accepted")
	}
}
