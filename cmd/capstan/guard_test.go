package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capstan-io/capstan/audit"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/update"
	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/bundlezip"
	"github.com/capstan-io/capstan/update/release"
)

// guardFleet simulates production devices of one app against a front.
type guardFleet struct {
	t     *testing.T
	front string
	app   string
	// fail: devices that get the rollout bundle report set, then
	// update_fail for it.
	fail          bool
	rolloutBundle string
	mu            sync.Mutex
	n             int
	// firstFail is when the first update_fail was accepted.
	firstFail time.Time
	got       map[string]int // version answered → devices
}

var hc = &http.Client{Timeout: 10 * time.Second}

// check asks for an update as a fresh production device and returns the
// version offered ("" when none).
func checkAs(t *testing.T, front, app, device string) string {
	t.Helper()
	body := fmt.Sprintf(`{"app_id":%q,"device_id":%q,"platform":"android","version_build":"1.0.0","version_name":"builtin",
		"plugin_version":"8.51.23","is_prod":true,"is_emulator":false}`, app, device)
	resp, err := hc.Post("http://"+front+"/updates", "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("update check: %v", err)
		return ""
	}
	defer resp.Body.Close()
	var a struct {
		Version string `json:"version"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&a)
	return a.Version
}

func postStats(t *testing.T, front string, events ...string) bool {
	t.Helper()
	resp, err := hc.Post("http://"+front+"/stats", "application/json", strings.NewReader("["+strings.Join(events, ",")+"]"))
	if err != nil {
		t.Errorf("stats: %v", err)
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

func statEvent(app, device, action, version string) string {
	return fmt.Sprintf(`{"app_id":%q,"device_id":%q,"platform":"android","action":%q,"version_name":%q,"old_version_name":"builtin",
		"version_build":"1.0.0","plugin_version":"8.51.23","is_prod":true,"is_emulator":false}`, app, device, action, version)
}

// device is one new device: it checks, installs what it was offered and,
// in a failing fleet, fails on the rollout bundle.
func (f *guardFleet) device() {
	f.mu.Lock()
	f.n++
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", f.n, len(f.app))
	f.mu.Unlock()
	v := checkAs(f.t, f.front, f.app, id)
	f.mu.Lock()
	f.got[v]++
	f.mu.Unlock()
	if v == "" {
		return
	}
	evs := []string{statEvent(f.app, id, "set", v)}
	failing := f.fail && v == f.rolloutBundle
	if failing {
		evs = append(evs, statEvent(f.app, id, "update_fail", v))
	}
	if postStats(f.t, f.front, evs...) && failing {
		f.mu.Lock()
		if f.firstFail.IsZero() {
			f.firstFail = time.Now()
		}
		f.mu.Unlock()
	}
}

// TestRolloutGuard runs two all-in-one fronts (two guard replicas) on one
// NATS and a real ClickHouse, with the guard's default settings: a 50 %
// rollout whose devices report update_fail stops reaching new devices
// within 60 s of the first failure accepted; a healthy rollout keeps
// going; a failing rollout with too few devices is left alone; exactly
// one replica acts; a progressive plan with short bakes advances and
// promotes; the audit log has every change.
func TestRolloutGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two fronts with ClickHouse")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL", "CAPSTAN_GUARD", "CAPSTAN_GUARD_INTERVAL")
	ch := chtest.StartServer(t)
	dsn := ch.DSN(chtest.DBName(t))
	natsAddr := freeAddr(t)
	frontA, frontB := freeAddr(t), freeAddr(t)
	metricsA, metricsB := freeAddr(t), freeAddr(t)
	const token = "guard-test"
	startFront(t, "--listen", frontA, "--data-dir", t.TempDir(), "--nats-listen", natsAddr, "--clickhouse-url", dsn,
		"--admin-token", token, "--log-level", "warn", "--metrics-listen", metricsA, "--batch-linger", "200ms")
	startFront(t, "--listen", frontB, "--data-dir", t.TempDir(), "--nats-url", "nats://"+natsAddr, "--clickhouse-url", dsn,
		"--admin-token", token, "--log-level", "warn", "--metrics-listen", metricsB, "--batch-linger", "200ms")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := admin.NewClient("http://"+frontA, token)
	release50 := func(app string, plan []release.RolloutStep) {
		t.Helper()
		if _, err := c.CreateApp(ctx, app, app); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"1.0.1", "1.1.0"} {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<title>"+v+"</title>"), 0o644); err != nil {
				t.Fatal(err)
			}
			var zip bytes.Buffer
			if err := bundlezip.ZipDir(dir, &zip); err != nil {
				t.Fatal(err)
			}
			if _, err := c.UploadBundle(ctx, app, admin.BundleMetadata{Version: v}, &zip); err != nil {
				t.Fatal(err)
			}
		}
		base, rb, pct, public := "1.0.1", "1.1.0", 50.0, true
		p := admin.ChannelPatch{Bundle: &base, RolloutBundle: &rb, RolloutPercent: &pct, Public: &public}
		if plan != nil {
			p.RolloutPercent = nil
			p.RolloutPlan = &plan
		}
		if _, err := c.SetChannel(ctx, app, "production", p); err != nil {
			t.Fatal(err)
		}
	}
	const failing, healthy, few, stepped = "com.example.failing", "com.example.healthy", "com.example.few", "com.example.stepped"
	release50(failing, nil)
	// The failing app's webhook receives the guard's change.
	hooks := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- b
	}))
	defer hook.Close()
	hookURL := hook.URL + "/capstan"
	if _, err := c.UpdateApp(ctx, failing, admin.UpdateAppRequest{WebhookURL: &hookURL}); err != nil {
		t.Fatal(err)
	}
	release50(healthy, nil)
	release50(few, nil)
	release50(stepped, []release.RolloutStep{{Percent: 10, BakeSeconds: 5, MinInstalls: 3}, {Percent: 40, BakeSeconds: 5, MinInstalls: 3}})

	fleet := func(app string, fail bool, front string) *guardFleet {
		return &guardFleet{t: t, front: front, app: app, fail: fail, rolloutBundle: "1.1.0", got: map[string]int{}}
	}
	fFail, fHealthy, fFew, fStepped := fleet(failing, true, frontA), fleet(healthy, false, frontB), fleet(few, true, frontA), fleet(stepped, false, frontB)
	for range 5 { // too few devices to decide anything
		fFew.device()
	}

	// New devices keep arriving on every app until the test says stop.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range []*guardFleet{fFail, fHealthy, fStepped} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				f.device()
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Devices of the failing app's rollout cohort that have not checked
	// yet: once none of them is offered the rollout bundle, it no longer
	// reaches new devices.
	probe := 0
	cohortDevice := func() string {
		for {
			probe++
			id := fmt.Sprintf("%08x-1111-4000-8000-000000000000", probe)
			if update.InRollout(failing, "production", "1.1.0", id, 50) {
				return id
			}
		}
	}
	var stoppedAt time.Time
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if checkAs(t, frontB, failing, cohortDevice()) != "1.1.0" && checkAs(t, frontA, failing, cohortDevice()) != "1.1.0" {
			stoppedAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			st, _ := c.Rollout(ctx, failing, "production")
			t.Fatalf("the failing rollout still reaches new devices after 2 minutes: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fFail.mu.Lock()
	first := fFail.firstFail
	fFail.mu.Unlock()
	took := stoppedAt.Sub(first)
	t.Logf("failing rollout: first update_fail accepted %s, no longer reaching new devices %s later", first.Format("15:04:05.000"), took.Round(10*time.Millisecond))
	if took > 60*time.Second {
		t.Errorf("the failing rollout reached new devices for %s after its first failure; want ≤ 60 s", took)
	}
	st, err := c.Rollout(ctx, failing, "production")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "paused" || st.Channel.RolloutPausedBy != audit.ActorGuard || st.Channel.RolloutPauseReason == "" {
		t.Errorf("failing rollout: state %q paused by %q (%q); want paused by the guard with a reason", st.State, st.Channel.RolloutPausedBy, st.Channel.RolloutPauseReason)
	}
	t.Logf("guard's reason: %s", st.Channel.RolloutPauseReason)
	select {
	case b := <-hooks:
		var ev struct {
			App, Channel, Decision string
			Gate                   struct{ Failing bool }
		}
		if err := json.Unmarshal(b, &ev); err != nil || ev.App != failing || ev.Decision != "pause" || !ev.Gate.Failing {
			t.Errorf("webhook body %s (%v): want the failing app's pause with the gate's numbers", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the failing app's webhook got nothing")
	}
	// Devices already on the paused rollout's bundle keep it.
	onRollout := fmt.Sprintf(`{"app_id":%q,"device_id":"%08x-0000-4000-8000-000000000001","platform":"android","version_build":"1.0.0","version_name":"1.1.0","plugin_version":"8.51.23","is_prod":true,"is_emulator":false}`, failing, 1)
	if resp, err := hc.Post("http://"+frontA+"/updates", "application/json", strings.NewReader(onRollout)); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(b, []byte("no_new_version_available")) {
			t.Errorf("a device on the paused rollout's bundle got %s", b)
		}
	}

	// The progressive plan: two steps, then promoted.
	waitUntilWithin(t, "the stepped rollout promoted", 90*time.Second, func() bool {
		ch, err := c.GetChannel(ctx, stepped, "production")
		return err == nil && ch.RolloutBundle == "" && ch.Bundle == "1.1.0"
	})
	close(stop)
	wg.Wait()

	// The healthy rollout keeps going; the small failing one is left alone.
	for _, app := range []string{healthy, few} {
		st, err := c.Rollout(ctx, app, "production")
		if err != nil {
			t.Fatal(err)
		}
		if st.State != "running" || st.Channel.RolloutPercent != 50 {
			t.Errorf("%s: rollout %s at %g %%, want still running at 50 %%", app, st.State, st.Channel.RolloutPercent)
		}
	}
	if fHealthy.got["1.1.0"] == 0 || fHealthy.got["1.0.1"] == 0 {
		t.Errorf("healthy rollout: devices got %v, want both bundles", fHealthy.got)
	}

	// Exactly one replica acted: one pause in the audit log, one decision
	// across both fronts' metrics, one leader.
	entries, err := c.Audit(ctx, admin.AuditQuery{App: failing})
	if err != nil {
		t.Fatal(err)
	}
	pauses := 0
	for _, e := range entries {
		if e.Change == "rollout_pause" {
			pauses++
			if e.Actor != audit.ActorGuard || !e.Automatic || len(e.Gate) == 0 {
				t.Errorf("guard's audit entry %+v: want actor guard, automatic, with the gate's numbers", e)
			}
		}
	}
	if pauses != 1 {
		t.Errorf("%d rollout_pause entries for the failing app, want 1: %+v", pauses, entries)
	}
	leaders, decisions := 0.0, 0.0
	for _, m := range []string{metricsA, metricsB} {
		_, body := get(t, "http://"+m+"/metrics")
		leaders += metricValue(body, `capstan_guard_leader`)
		decisions += metricValue(body, `capstan_guard_decisions_total{app="`+failing+`",channel="production",decision="pause"}`)
	}
	if leaders != 1 || decisions != 1 {
		t.Errorf("across both fronts: %v guard leaders and %v pause decisions; want 1 and 1", leaders, decisions)
	}
	stepEntries, err := c.Audit(ctx, admin.AuditQuery{App: stepped})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, e := range stepEntries {
		changes = append(changes, e.Change)
	}
	if got := strings.Join(changes, " "); !strings.Contains(got, "rollout_advance rollout_promote") {
		t.Errorf("stepped app's audit: %s; want an advance then a promote", got)
	}
	t.Logf("stepped app's audit: %s", strings.Join(changes, ", "))
}

// metricValue returns the value of the sample named exactly series in a
// Prometheus text exposition (0 when absent).
func metricValue(body, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func waitUntilWithin(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
