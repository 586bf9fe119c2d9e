package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeTour runs the README's five-minute tour, as written, against
// a fresh `capstan serve` (embedded JetStream, no ClickHouse needed).
func TestReadmeTour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a server")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not available")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	script := tourScript(t, string(readme))

	work := t.TempDir()
	bin := filepath.Join(work, "bin", "capstan")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(work, "data"),
		"--nats-listen", "", "--consume=false", "--admin-token", "dev-admin-token")
	srv.Env = cleanEnv()
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
	})
	addr := waitServing(t, stderr)

	// The tour assumes `make run` on 127.0.0.1:8080 and bin/capstan in the
	// checkout; point both at this test's server and binary.
	script = strings.ReplaceAll(script, "127.0.0.1:8080", addr)
	tourDir := filepath.Join(work, "tour")
	script = strings.ReplaceAll(script, "/tmp/capstan-tour", tourDir)
	run := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	run.Dir = work
	run.Env = cleanEnv()
	out, err := run.CombinedOutput()
	t.Logf("tour output:\n%s", out)
	if err != nil {
		t.Fatalf("tour failed: %v", err)
	}
	if !strings.Contains(string(out), `"version":"1.0.1"`) {
		t.Errorf("update check did not offer 1.0.1")
	}
	if !strings.Contains(string(out), "bundle.zip: OK") {
		t.Errorf("downloaded bundle did not match the checksum")
	}
}

// tourScript extracts the shell block between the tour markers.
func tourScript(t *testing.T, readme string) string {
	t.Helper()
	start := strings.Index(readme, "<!-- tour:start -->")
	end := strings.Index(readme, "<!-- tour:end -->")
	if start < 0 || end < start {
		t.Fatal("README has no tour markers")
	}
	block := readme[start:end]
	lines := strings.Split(block, "\n")
	var keep []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "```") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

var servingRE = regexp.MustCompile(`msg="capstan serving".* addr=(\S+)`)

func waitServing(t *testing.T, stderr interface{ Read([]byte) (int, error) }) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start serving within 60s")
	}
	return ""
}

// cleanEnv drops CAPSTAN_* settings of the developer's shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAPSTAN_") {
			env = append(env, kv)
		}
	}
	return env
}
