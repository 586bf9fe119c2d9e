package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capstan-io/capstan/console"
	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/update/bundlezip"
)

// consoleStep is one JSON line of console/ui/e2e/console.mjs.
type consoleStep struct {
	Step     string         `json:"step"`
	Error    string         `json:"error"`
	Status   int            `json:"status"`
	Path     string         `json:"path"`
	Text     string         `json:"text"`
	Got      map[string]int `json:"got"`
	WaitedMS int64          `json:"waited_ms"`
}

// TestConsoleInBrowser drives the web console in Debian's Chromium
// (console/ui/e2e/console.mjs, playwright-core) against `capstan serve`
// with its admin API and console on --admin-listen, embedded NATS and a
// real ClickHouse: sign in, create an app, upload bundles, set a channel,
// start a rollout, send stats, see the health charts filled from
// ClickHouse, pause the rollout, see the audit entry, then as a viewer
// see no write controls and get 403 for a write. It writes the health
// page's screenshot to $CAPSTAN_CONSOLE_SCREENSHOT when set.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse, capstan serve and Chromium")
	}
	// Missing tools fail under CI (make test installs them) and skip
	// elsewhere.
	need := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if !console.Built() {
		need("console not built: run make console (this test binary embeds console/dist)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		need("node not found: the console's browser test runs console/ui/e2e/console.mjs with node")
	}
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		need("%s not found: install Debian's chromium (bash .ci/install-deps)", chromium)
	}
	uiDir, err := filepath.Abs("../../console/ui")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(uiDir, "node_modules", "playwright-core", "package.json")); err != nil {
		need("playwright-core not installed in console/ui: run make console (npm ci)")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL", "CAPSTAN_GUARD",
		"CAPSTAN_GUARD_INTERVAL", "CAPSTAN_ADMIN_LISTEN")

	ch := chtest.StartServer(t)
	dsn := ch.DSN(chtest.DBName(t))
	device, adminAddr := freeAddr(t), freeAddr(t)
	const token = "console-test-admin"
	startFront(t, "--listen", device, "--admin-listen", adminAddr, "--data-dir", t.TempDir(), "--nats-listen", "",
		"--clickhouse-url", dsn, "--admin-token", token, "--log-level", "warn", "--metrics-listen", freeAddr(t),
		"--batch-linger", "200ms", "--guard-interval", "1s")

	// The console is on the admin listener, with its headers; the device
	// port has neither it nor the API.
	resp, err := hc.Get("http://" + adminAddr + "/console/apps/com.example.console/health")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "connect-src 'self'") ||
		resp.Header.Get("Cache-Control") != "no-cache" || !bytes.Contains(page, []byte(`src="/console/assets/`)) {
		t.Fatalf("GET /console/... on the admin port: %d %v\n%s", resp.StatusCode, resp.Header, page)
	}
	if code, _ := get(t, "http://"+device+"/console/"); code != http.StatusNotFound {
		t.Errorf("GET /console/ on the device port with --admin-listen: %d, want 404", code)
	}

	zips := make([]string, 2)
	for i, v := range []string{"1.0.1", "1.1.0"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>"+v+"</title>"+v), 0o644); err != nil {
			t.Fatal(err)
		}
		var zip bytes.Buffer
		if err := bundlezip.ZipDir(dir, &zip); err != nil {
			t.Fatal(err)
		}
		zips[i] = filepath.Join(t.TempDir(), "bundle-"+v+".zip")
		if err := os.WriteFile(zips[i], zip.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot := filepath.Join(t.TempDir(), "console-health.png")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "e2e/console.mjs")
	cmd.Dir = uiDir
	cmd.Env = append(cleanEnv(), "CONSOLE_URL=http://"+adminAddr, "DEVICE_URL=http://"+device, "ADMIN_TOKEN="+token,
		"BUNDLE_ZIP_1="+zips[0], "BUNDLE_ZIP_2="+zips[1], "SCREENSHOT="+shot, "CHROMIUM="+chromium)
	// Node and the Chromium it starts share a process group, ended
	// together by its id if the deadline passes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := map[string]consoleStep{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var s consoleStep
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Logf("script: %s", sc.Text())
			continue
		}
		t.Logf("%6.1fs %s", time.Since(started).Seconds(), sc.Text())
		steps[s.Step] = s
	}
	err = cmd.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("the browser script did not finish within 3 minutes; stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("browser script: %v: %s\nstderr:\n%s", err, steps["failed"].Error, stderr.String())
	}
	t.Logf("browser script took %s", time.Since(started).Round(100*time.Millisecond))
	for _, s := range []string{"signed_in", "app_created", "bundles_uploaded", "channel_set", "rollout_started", "bundle_usage",
		"stats_sent", "health_filled", "screenshot", "device_found", "rollout_paused", "audit_entry", "viewer_token_created", "viewer_write", "done"} {
		if _, ok := steps[s]; !ok {
			t.Errorf("the script did not report step %s", s)
		}
	}
	if e := steps["audit_entry"].Text; !strings.Contains(e, "token:admin") || !strings.Contains(e, "checkout broken") {
		t.Errorf("audit entry in the console %q: want the pause by token:admin with its reason", e)
	}
	if got := steps["stats_sent"].Got; got["1.0.1"] == 0 || got["1.1.0"] == 0 {
		t.Errorf("devices got %v; want both the base and the rollout bundle", got)
	}

	if s := steps["viewer_write"]; s.Status != http.StatusForbidden {
		t.Errorf("a viewer's write answered %d, want 403", s.Status)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if out := os.Getenv("CAPSTAN_CONSOLE_SCREENSHOT"); out != "" {
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the health page written to %s", out)
	}
}
