package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// /metrics is never on the device port; with --admin-listen the admin API
// is only on its own port; without it, the admin API shares the device port.
func TestServePorts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two fronts")
	}
	unsetEnv(t, "CAPSTAN_NATS_URL", "CAPSTAN_ADMIN_TOKEN", "CAPSTAN_CONSUME", "CAPSTAN_PUBLIC_URL", "CAPSTAN_METRICS_LISTEN", "CAPSTAN_ADMIN_LISTEN")
	const token = "ports-token"
	call := func(url string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	expect := func(url string, want int, contains string) {
		t.Helper()
		code, body := call(url)
		if code != want || !strings.Contains(body, contains) {
			t.Errorf("GET %s: %d %.200s, want %d with %q", url, code, body, want, contains)
		}
	}

	device, metrics, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startFront(t, "--listen", device, "--metrics-listen", metrics, "--admin-listen", adminAddr,
		"--data-dir", t.TempDir(), "--nats-listen", "", "--consume=false", "--admin-token", token, "--log-level", "warn")
	expect("http://"+device+"/metrics", http.StatusNotFound, "not_found")
	expect("http://"+device+"/api/v1/apps", http.StatusNotFound, "not_found")
	expect("http://"+device+"/healthz", http.StatusOK, "ok")
	expect("http://"+metrics+"/metrics", http.StatusOK, `capstan_http_open_connections{listener="device"}`)
	expect("http://"+metrics+"/metrics", http.StatusOK, `capstan_http_open_connections{listener="admin"}`)
	expect("http://"+metrics+"/healthz", http.StatusOK, "ok")
	expect("http://"+metrics+"/readyz", http.StatusOK, "ok")
	expect("http://"+metrics+"/api/v1/apps", http.StatusNotFound, "not_found")
	expect("http://"+adminAddr+"/api/v1/apps", http.StatusOK, "")
	expect("http://"+adminAddr+"/metrics", http.StatusNotFound, "not_found")
	expect("http://"+adminAddr+"/updates", http.StatusNotFound, "not_found")

	// Default: the admin API on the device port, /metrics still apart.
	shared, metrics2 := freeAddr(t), freeAddr(t)
	startFront(t, "--listen", shared, "--metrics-listen", metrics2,
		"--data-dir", t.TempDir(), "--nats-listen", "", "--consume=false", "--admin-token", token, "--log-level", "warn")
	expect("http://"+shared+"/api/v1/apps", http.StatusOK, "")
	expect("http://"+shared+"/metrics", http.StatusNotFound, "not_found")
	expect("http://"+metrics2+"/metrics", http.StatusOK, "capstan_http_requests_total")
}
