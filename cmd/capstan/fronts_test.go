package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/bundlezip"
)

// TestTwoFronts runs two `capstan serve` fronts on one JetStream: the first
// embeds the NATS server, the second joins it by URL. A channel change made
// through the first is answered by the second within a second, and the
// second serves bundles uploaded through the first.
func TestTwoFronts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two fronts")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL")
	natsAddr := freeAddr(t)
	frontA, frontB := freeAddr(t), freeAddr(t)
	startFront(t, "--listen", frontA, "--data-dir", t.TempDir(), "--nats-listen", natsAddr,
		"--consume=false", "--admin-token", "two-fronts", "--log-level", "warn", "--metrics-listen", freeAddr(t))
	startFront(t, "--listen", frontB, "--data-dir", t.TempDir(), "--nats-url", "nats://"+natsAddr,
		"--consume=false", "--log-level", "warn", "--metrics-listen", freeAddr(t))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := admin.NewClient("http://"+frontA, "two-fronts")
	const app = "com.example.fronts"
	if _, err := c.CreateApp(ctx, app, "Fronts"); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, v := range []string{"1.0.1", "1.0.2"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<title>"+v+"</title>"), 0o644); err != nil {
			t.Fatal(err)
		}
		var zip bytes.Buffer
		if err := bundlezip.ZipDir(dir, &zip); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(zip.Bytes())
		sums[v] = hex.EncodeToString(sum[:])
		if _, err := c.UploadBundle(ctx, app, admin.BundleMetadata{Version: v}, &zip); err != nil {
			t.Fatal(err)
		}
	}
	setBundle := func(v string) {
		t.Helper()
		public := true
		if _, err := c.SetChannel(ctx, app, "production", admin.ChannelPatch{Bundle: &v, Public: &public}); err != nil {
			t.Fatal(err)
		}
	}

	setBundle("1.0.1")
	waitVersion(t, frontB, app, "1.0.1", 5*time.Second)

	setBundle("1.0.2")
	answer := waitVersion(t, frontB, app, "1.0.2", time.Second)

	// Front B serves the zip uploaded through front A, from the object store.
	url, _ := answer["url"].(string)
	if !strings.HasPrefix(url, "http://"+frontB+"/bundles/") {
		t.Fatalf("bundle url %q is not front B's", url)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	if resp.StatusCode != http.StatusOK || hex.EncodeToString(sum[:]) != sums["1.0.2"] || answer["checksum"] != sums["1.0.2"] {
		t.Fatalf("download from front B: status %d, sha256 %x, want %s (answer checksum %v)", resp.StatusCode, sum, sums["1.0.2"], answer["checksum"])
	}
}

// startFront runs runServe in this process until the test ends.
func startFront(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve %v: %v", args, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve %v did not stop", args)
		}
	})
	addr := args[1]
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve %v exited: %v", args, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("front %s not ready after 30s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitVersion polls a front's update check until it offers version,
// failing after within.
func waitVersion(t *testing.T, front, app, version string, within time.Duration) map[string]any {
	t.Helper()
	req := fmt.Sprintf(`{"app_id":%q,"device_id":"0b6f3c5e-7a1d-4e2b-9c8d-2f3a4b5c6d7e","platform":"ios",
		"version_build":"1.0.0","version_name":"builtin","plugin_version":"8.51.23","is_prod":true,"is_emulator":false}`, app)
	deadline := time.Now().Add(within)
	var last map[string]any
	for {
		resp, err := http.Post("http://"+front+"/updates", "application/json", strings.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		last = map[string]any{}
		err = json.NewDecoder(resp.Body).Decode(&last)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last["version"] == version {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("front %s still answers %v %v after %v; want version %s", front, last["version"], last["error"], within, version)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
