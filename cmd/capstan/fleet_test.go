package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/update/admin"
)

// TestFleetReads runs an all-in-one front on ClickHouse: devices post
// stats (one batch twice, as a device resending it), the consumer
// inserts them, and the admin API, its client and `capstan device show`
// read them back. An event delivered twice to the consumer (a
// redelivery) is stored twice and counted once.
func TestFleetReads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a front with ClickHouse")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL", "CAPSTAN_GUARD", "CAPSTAN_CLICKHOUSE_URL")
	ch := chtest.StartServer(t)
	dsn := ch.DSN(chtest.DBName(t))
	natsAddr, front := freeAddr(t), freeAddr(t)
	const token = "fleet-test"
	startFront(t, "--listen", front, "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--clickhouse-url", dsn,
		"--admin-token", token, "--log-level", "error", "--metrics-listen", freeAddr(t), "--batch-linger", "100ms", "--guard=false")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := admin.NewClient("http://"+front, token)
	const app = "com.example.fleet"
	if _, err := c.CreateApp(ctx, app, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetChannel(ctx, app, "beta", admin.ChannelPatch{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetDeviceChannel(ctx, app, "DEV-A", "beta"); err != nil {
		t.Fatal(err)
	}
	// Before any stats: pinned is known to the release state only.
	waitTables(t, ctx, c, app)
	d, err := c.Device(ctx, app, "dev-a")
	if err != nil || d.Known || d.Pin != "beta" || len(d.RecentEvents) != 0 {
		t.Fatalf("pinned device before stats: %+v, %v", d, err)
	}
	if _, err := c.Device(ctx, app, "dev-z"); !admin.IsCode(err, "unknown_device") {
		t.Fatalf("unknown device: %v", err)
	}

	ts := time.Now().Add(-time.Minute).UnixMilli()
	ev := func(device, action, version string, at int64) string {
		return fmt.Sprintf(`{"app_id":%q,"device_id":%q,"platform":"android","action":%q,"version_name":%q,"old_version_name":"builtin",
			"version_build":"1.0.0","version_os":"14","plugin_version":"8.51.23","is_prod":true,"is_emulator":false,"defaultChannel":"production","timestamp":%d}`,
			app, device, action, version, at)
	}
	batchA := []string{ev("dev-a", "set", "1.2.0", ts), ev("dev-a", "app_launch_ready", "1.2.0", ts+2000)}
	for range 2 {
		if !postStats(t, front, batchA...) {
			t.Fatal("stats of dev-a refused")
		}
	}
	if !postStats(t, front, ev("dev-b", "set", "1.2.0", ts), ev("dev-b", "update_fail", "1.2.0", ts+2000), ev("dev-b", "app_crash", "1.2.0", ts+4000)) {
		t.Fatal("stats of dev-b refused")
	}

	// A redelivery: the same event reaches the consumer in two messages.
	js := jetStreamAt(t, "nats://"+natsAddr)
	now := time.Now().UnixMilli()
	dup := &schema.Event{ID: fmt.Sprintf("%032x", 0xd0b), ReceivedMs: now, ClientMs: now, AppID: app, DeviceID: "dev-c", Platform: "ios",
		Action: "set", VersionName: "1.3.0", PluginVersion: "8.51.23", Channel: "production", IsProd: true}
	marker := &schema.Event{ID: fmt.Sprintf("%032x", 0xaa), ReceivedMs: now, AppID: app, DeviceID: "dev-m", Platform: "ios",
		Action: "app_launch_ready", VersionName: "1.3.0", IsProd: true}
	publish := func(msgID string, events ...*schema.Event) {
		t.Helper()
		var body []byte
		for _, e := range events {
			body, _ = schema.AppendBatchEvent(body, e, nil)
		}
		m := nats.NewMsg(schema.EventSubject(app))
		m.Header.Set(schema.EventsHeader, "2")
		m.Header.Set(jetstream.MsgIDHeader, msgID)
		m.Data = body
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish("fleet-test-1", dup)
	waitDevice(t, ctx, c, app, "dev-c", 1)
	publish("fleet-test-2", dup, marker) // the duplicate is inserted with the marker
	waitDevice(t, ctx, c, app, "dev-m", 1)
	waitDevice(t, ctx, c, app, "dev-a", 2)
	waitDevice(t, ctx, c, app, "dev-b", 3)
	// Views fill after their source table: wait for the rollup too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.Health(ctx, app, admin.FleetParams{Since: time.Hour})
		if err == nil && len(h.Versions) == 2 && h.Versions[0].Events == 5 && h.Versions[1].Events == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollup incomplete: %+v, %v", h, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	d, err = c.Device(ctx, app, "DEV-A")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Known || d.Pin != "beta" || d.DeviceID != "dev-a" || d.VersionName != "1.2.0" || d.Platform != "android" || d.PluginVersion != "8.51.23" ||
		d.VersionOS != "14" || d.Channel != "beta" || !d.IsProd || len(d.RecentEvents) != 2 ||
		d.RecentEvents[0].Action != "app_launch_ready" || d.RecentEvents[1].Action != "set" || d.RecentEvents[1].OldVersionName != "builtin" {
		t.Errorf("dev-a %+v", d)
	}
	dc, err := c.Device(ctx, app, "dev-c")
	if err != nil || len(dc.RecentEvents) != 1 || dc.VersionName != "1.3.0" || dc.RecentEvents[0].ClientTime == nil {
		t.Errorf("dev-c (event delivered twice) %+v, %v", dc, err)
	}

	h, err := c.Health(ctx, app, admin.FleetParams{Since: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][3]uint64{}
	for _, v := range h.Versions {
		got[v.Version] = [3]uint64{v.Installs, v.ActiveDevices, v.Failures}
	}
	// The pin is the channel ingest records. 1.2.0: two installs (dev-a's resend counted once), update_fail and app_crash.
	if want := map[string][3]uint64{"1.2.0": {2, 2, 2}, "1.3.0": {1, 2, 0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("health %v, want %v", got, want)
	}
	// The same numbers as `capstan stats --json`.
	var out bytes.Buffer
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--app", app, "--since", "1h", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var stats []schema.ReportRow
	if err := json.Unmarshal(out.Bytes(), &stats); err != nil || !reflect.DeepEqual(stats, h.Versions) {
		t.Errorf("capstan stats --json %s\nhealth %+v (%v)", out.String(), h.Versions, err)
	}

	tl, err := c.Timeline(ctx, app, admin.FleetParams{Since: 2 * time.Hour, Step: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if tl.StepSeconds != 900 || len(tl.Buckets) < 8 || len(tl.Buckets) > 9 || tl.Since.Unix()%900 != 0 || len(tl.Series) != 2 {
		t.Fatalf("timeline %+v", tl)
	}
	totals := map[string][4]uint64{}
	for _, s := range tl.Series {
		if len(s.Installs) != len(tl.Buckets) || len(s.Crashes) != len(tl.Buckets) {
			t.Fatalf("%s: arrays of %d for %d buckets", s.Version, len(s.Installs), len(tl.Buckets))
		}
		totals[s.Version] = [4]uint64{sum(s.Installs), sum(s.Failures), sum(s.Rollbacks), sum(s.Crashes)}
	}
	if want := map[string][4]uint64{"1.2.0": {2, 2, 1, 1}, "1.3.0": {1, 0, 0, 0}}; !reflect.DeepEqual(totals, want) {
		t.Errorf("timeline totals %v, want %v", totals, want)
	}
	if _, err := c.Timeline(ctx, app, admin.FleetParams{Since: 48 * time.Hour, Step: time.Minute}); !admin.IsCode(err, "too_many_buckets") {
		t.Errorf("2880 buckets: %v", err)
	}

	// capstan device show.
	t.Setenv("CAPSTAN_SERVER", "http://"+front)
	t.Setenv("CAPSTAN_TOKEN", token)
	unsetEnv(t, "CAPSTAN_APP", "CAPSTAN_JSON")
	text := mustRun(t, ctx, runDevice, "show", "--app", app, "DEV-A")
	for _, want := range []string{"device:", "dev-a", "pin:", "beta", "1.2.0 (native 1.0.0)", "8.51.23", "recent events (2, newest first)", "app_launch_ready", "builtin"} {
		if !strings.Contains(text, want) {
			t.Errorf("device show lacks %q:\n%s", want, text)
		}
	}
	var shown admin.DeviceInfo
	if err := json.Unmarshal([]byte(mustRun(t, ctx, runDevice, "show", "--app", app, "--json", "dev-a")), &shown); err != nil || !reflect.DeepEqual(shown, d) {
		t.Errorf("device show --json %+v (%v), want %+v", shown, err, d)
	}
	if _, err := run(t, ctx, runDevice, "show", "--app", app, "dev-z"); !admin.IsCode(err, "unknown_device") {
		t.Errorf("device show of an unknown device: %v", err)
	}
}

// waitTables waits until the consumer created the tables (the health
// read stops answering 503).
func waitTables(t *testing.T, ctx context.Context, c *admin.Client, app string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Health(ctx, app, admin.FleetParams{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDevice waits until ClickHouse has n events of a device.
func waitDevice(t *testing.T, ctx context.Context, c *admin.Client, app, device string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := c.Device(ctx, app, device)
		if err == nil && len(d.RecentEvents) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s: %d events, want %d (%v)", device, len(d.RecentEvents), n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s += x
	}
	return s
}
