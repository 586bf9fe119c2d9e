package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/capstan-io/capstan/schema"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/update/admin"
)

// TestClickHouseCluster runs a front and a `capstan consume` on a
// replicated ClickHouse 18.16 cluster (ZooKeeper, two shards of two
// replicas): devices post stats while one replica is killed and brought
// back on the same ports and data. Every acknowledged event is stored
// and rolled up exactly once, the returning replica catches up, and the
// admin API, `capstan stats` and a redelivery read the Distributed tables.
func TestClickHouseCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ZooKeeper and four ClickHouse servers")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL", "CAPSTAN_GUARD",
		"CAPSTAN_CLICKHOUSE_URL", "CAPSTAN_CLICKHOUSE_CLUSTER")
	began := time.Now()
	const clusterName, db = "capstan", "capstan"
	cl := chtest.StartCluster(t, clusterName, 2, 2)
	dsn := cl.DSN(db)
	t.Logf("zookeeper and 2x2 clickhouse up in %s", time.Since(began).Round(time.Millisecond))

	natsAddr, front, consumeOps := freeAddr(t), freeAddr(t), freeAddr(t)
	const token = "cluster-test"
	startFront(t, "--listen", front, "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--clickhouse-url", dsn,
		"--clickhouse-cluster", clusterName, "--consume=false", "--admin-token", token, "--log-level", "error",
		"--metrics-listen", freeAddr(t), "--guard=false")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	consumeCtx, stopConsume := context.WithCancel(ctx)
	consumeDone := make(chan error, 1)
	go func() {
		consumeDone <- runConsume(consumeCtx, []string{"--nats-url", "nats://" + natsAddr, "--clickhouse-url", dsn,
			"--clickhouse-cluster", clusterName, "--batch-size", "1000", "--batch-linger", "200ms",
			"--metrics-listen", consumeOps, "--log-level", "error"})
	}()
	defer func() {
		stopConsume()
		select {
		case err := <-consumeDone:
			if err != nil {
				t.Errorf("consume: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("consume did not stop")
		}
	}()
	waitUntil(t, "consumer ready (cluster migrated)", func() bool {
		code, _ := get(t, "http://"+consumeOps+"/readyz")
		return code == http.StatusOK
	})
	t.Logf("migrated ON CLUSTER by %s", time.Since(began).Round(time.Millisecond))

	c := admin.NewClient("http://"+front, token)
	const app = "com.example.cluster"
	if _, err := c.CreateApp(ctx, app, ""); err != nil {
		t.Fatal(err)
	}
	waitTables(t, ctx, c, app)

	// Devices post batches of unique events; a refused batch is posted
	// again unchanged (the same event ids), as the plugin does.
	var accepted, installs atomic.Int64
	var refused sync.Map // status code -> count
	var seq atomic.Int64
	base := time.Now().Add(-2 * time.Minute).UnixMilli()
	stopIngest := make(chan struct{})
	var wg sync.WaitGroup
	actions := []string{"set", "app_launch_ready", "download_complete", "set"}
	for d := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			device := fmt.Sprintf("dev-%02d", d)
			for {
				select {
				case <-stopIngest:
					return
				default:
				}
				var batch []string
				sets := 0
				for range 5 {
					n := seq.Add(1)
					a := actions[n%int64(len(actions))]
					if a == "set" {
						sets++
					}
					batch = append(batch, fmt.Sprintf(`{"app_id":%q,"device_id":%q,"platform":"android","action":%q,"version_name":"1.2.0","old_version_name":"builtin","version_build":"1.0.0","plugin_version":"8.51.23","is_prod":true,"is_emulator":false,"timestamp":%d}`,
						app, device, a, base+n))
				}
				for {
					code := postCode(front, batch)
					if code/100 == 2 {
						accepted.Add(int64(len(batch)))
						installs.Add(int64(sets))
						break
					}
					v, _ := refused.LoadOrStore(code, new(atomic.Int64))
					v.(*atomic.Int64).Add(1)
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(250 * time.Millisecond)
			}
		}()
	}

	// Mid-ingest, kill (SIGKILL, by pid) the first replica of shard 1,
	// the first host in the URL the consumer and the front use.
	victim, peer := cl.Nodes[0][0], cl.Nodes[0][1]
	time.Sleep(4 * time.Second)
	atKill := accepted.Load()
	pid := victim.Pid()
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed replica %s (pid %d) after %d accepted events", victim.Addr(), pid, atKill)
	time.Sleep(6 * time.Second)
	atRestart := accepted.Load()
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Logf("restarted %s after %d accepted events (%d while it was down)", victim.Addr(), atRestart, atRestart-atKill)
	time.Sleep(4 * time.Second)
	close(stopIngest)
	wg.Wait()
	total := accepted.Load()
	refused.Range(func(k, v any) bool {
		t.Logf("refused requests with status %v: %d (posted again)", k, v.(*atomic.Int64).Load())
		return true
	})
	if atRestart-atKill == 0 {
		t.Error("no event was accepted while the replica was down")
	}

	// Catch-up first: each replica's local table, read from the node itself.
	conns := make([][]driver.Conn, len(cl.Nodes))
	for s, shard := range cl.Nodes {
		for _, n := range shard {
			conns[s] = append(conns[s], n.Conn(t, db))
		}
	}
	local := func(q driver.Conn) (uint64, uint64) {
		var distinct, rows uint64
		if err := q.QueryRow(ctx, "SELECT uniqExact(event_id), count() FROM capstan_events_local").Scan(&distinct, &rows); err != nil {
			return 0, 0
		}
		return distinct, rows
	}
	// Through the Distributed tables, from a node of the other shard:
	// the consumer has drained when they hold every accepted event.
	q := conns[1][1]
	var stored, rows, rollup, rollupOld uint64
	read := func() error {
		if err := q.QueryRow(ctx, "SELECT uniqExact(event_id), count() FROM capstan_events WHERE app_id = ?", app).Scan(&stored, &rows); err != nil {
			return err
		}
		if err := q.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM capstan_rollup_minute WHERE app_id = ?", app).Scan(&rollup); err != nil {
			return err
		}
		return q.QueryRow(ctx, "SELECT uniqExactMerge(events) FROM capstan_events_minute WHERE app_id = ?", app).Scan(&rollupOld)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := read()
		if err == nil && stored >= uint64(total) && rollup >= uint64(total) && rollupOld >= uint64(total) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: accepted %d, stored %d distinct (%d rows), rollup %d, events_minute %d (%v)", total, stored, rows, rollup, rollupOld, err)
		}
	}
	drained := time.Since(restarted)
	if stored != uint64(total) || rollup != uint64(total) || rollupOld != uint64(total) {
		t.Errorf("accepted %d, stored %d distinct (%d rows), rollup %d, events_minute %d", total, stored, rows, rollup, rollupOld)
	}
	t.Logf("accepted %d events (2xx), stored %d distinct (%d rows), rollup %d, events_minute %d; consumer drained %s after the restart",
		total, stored, rows, rollup, rollupOld, drained.Round(time.Millisecond))

	// Then the returning replica catches up: each replica's local table,
	// read from the node itself, holds its shard's events.
	var caughtUp time.Duration
	lastLog := time.Now()
	waitUntilWithin(t, "replicas caught up", 90*time.Second, func() bool {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logReplicas(t, ctx, conns[0][0])
		}
		var sum uint64
		for _, shard := range conns {
			a, _ := local(shard[0])
			b, _ := local(shard[1])
			if a != b {
				return false
			}
			sum += a
		}
		caughtUp = time.Since(restarted)
		return sum == uint64(total)
	})
	victimDistinct, victimRows := local(conns[0][0])
	peerDistinct, peerRows := local(conns[0][1])
	t.Logf("shard 1 caught up %s after the restart: %s has %d events (%d rows), %s has %d (%d rows)",
		caughtUp.Round(time.Millisecond), victim.Addr(), victimDistinct, victimRows, peer.Addr(), peerDistinct, peerRows)

	// The admin API and `capstan stats` read the same numbers.
	h, err := c.Health(ctx, app, admin.FleetParams{Since: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 1 || h.Versions[0].Events != uint64(total) || h.Versions[0].Installs != uint64(installs.Load()) || h.Versions[0].ActiveDevices != 8 {
		t.Errorf("health %+v, want %d events, %d installs, 8 devices", h.Versions, total, installs.Load())
	}
	var out bytes.Buffer
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--clickhouse-cluster", clusterName, "--app", app, "--since", "1h", "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var st []schema.ReportRow
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || !reflect.DeepEqual(st, h.Versions) {
		t.Errorf("capstan stats --json %s\nhealth %+v (%v)", out.String(), h.Versions, err)
	}
	tl, err := c.Timeline(ctx, app, admin.FleetParams{Since: time.Hour, Step: 5 * time.Minute})
	if err != nil || len(tl.Series) != 1 || sum(tl.Series[0].Installs) != uint64(installs.Load()) {
		t.Errorf("timeline %+v, %v; want %d installs", tl.Series, err, installs.Load())
	}
	d, err := c.Device(ctx, app, "dev-03")
	if err != nil || !d.Known || d.VersionName != "1.2.0" || d.PluginVersion != "8.51.23" || len(d.RecentEvents) == 0 {
		t.Errorf("device dev-03 %+v, %v", d, err)
	}
	if err := statsMain(ctx, []string{"--clickhouse-url", dsn, "--clickhouse-cluster", "nope", "--app", app}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "remote_servers") {
		t.Errorf("stats on an unknown cluster: %v", err)
	}

	// A redelivery: an event already stored reaches the consumer again,
	// with a new marker event; it is counted once.
	var dupID string
	if err := q.QueryRow(ctx, "SELECT any(event_id) FROM capstan_events WHERE app_id = ? AND device_id = 'dev-05'", app).Scan(&dupID); err != nil {
		t.Fatal(err)
	}
	js := jetStreamAt(t, "nats://"+natsAddr)
	now := time.Now().UnixMilli()
	var body []byte
	for _, e := range []*schema.Event{
		{ID: dupID, ReceivedMs: now, AppID: app, DeviceID: "dev-05", Platform: "android", Action: "set", VersionName: "1.2.0", IsProd: true},
		{ID: fmt.Sprintf("%032x", 0xc1), ReceivedMs: now, AppID: app, DeviceID: "dev-m", Platform: "ios", Action: "app_launch_ready", VersionName: "1.2.0", IsProd: true},
	} {
		body, _ = schema.AppendBatchEvent(body, e, nil)
	}
	m := nats.NewMsg(schema.EventSubject(app))
	m.Header.Set(schema.EventsHeader, "2")
	m.Header.Set(jetstream.MsgIDHeader, "cluster-test-redelivery")
	m.Data = body
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitDevice(t, ctx, c, app, "dev-m", 1)
	waitUntilWithin(t, "counts after the redelivery", 30*time.Second, func() bool {
		return read() == nil && stored == uint64(total)+1 && rollup == uint64(total)+1
	})
	t.Logf("after a redelivered event and a new one: stored %d distinct (%d rows), rollup %d; test ran %s",
		stored, rows, rollup, time.Since(began).Round(time.Millisecond))
}

// postCode posts one stats request and returns its status (0 when it
// did not get an answer).
func postCode(front string, events []string) int {
	resp, err := hc.Post("http://"+front+"/stats", "application/json", strings.NewReader("["+strings.Join(events, ",")+"]"))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// logReplicas logs what a replica's system.replicas says while it
// catches up (the figures to watch in production).
func logReplicas(t *testing.T, ctx context.Context, q driver.Conn) {
	rows, err := q.Query(ctx, "SELECT table, is_readonly, is_session_expired, queue_size, inserts_in_queue, absolute_delay, active_replicas FROM system.replicas WHERE database = 'capstan' AND queue_size > 0")
	if err != nil {
		t.Logf("system.replicas: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var ro, expired, active uint8
		var queue, inserts uint32
		var delay uint64
		if err := rows.Scan(&table, &ro, &expired, &queue, &inserts, &delay, &active); err != nil {
			t.Logf("system.replicas: %v", err)
			return
		}
		t.Logf("  %s: readonly=%d session_expired=%d queue=%d inserts=%d delay=%ds active=%d", table, ro, expired, queue, inserts, delay, active)
	}
	rows2, err := q.Query(ctx, "SELECT table, type, new_part_name, num_tries, num_postponed, postpone_reason, last_exception, toString(create_time) FROM system.replication_queue ORDER BY create_time LIMIT 5")
	if err != nil {
		return
	}
	defer rows2.Close()
	for rows2.Next() {
		var table, typ, part, reason, exc, created string
		var tries, postponed uint32
		if err := rows2.Scan(&table, &typ, &part, &tries, &postponed, &reason, &exc, &created); err != nil {
			t.Logf("replication_queue: %v", err)
			return
		}
		t.Logf("  queue %s %s %s created %s tries=%d postponed=%d %q %.200s", table, typ, part, created, tries, postponed, reason, exc)
	}
}
