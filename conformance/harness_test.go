package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/admin"
)

const adminToken = "conformance-token"

// pluginClasses are the plugin's Android sources: every one of them,
// CapacitorUpdaterPlugin included, compiled as shipped.
var pluginClasses = []string{
	"AndroidAppExitReporter", "AppLifecycleObserver", "BundleInfo", "BundleStatus", "Callback",
	"CapacitorUpdaterPlugin", "CapgoUpdater", "CryptoCipher", "DataManager", "DelayCondition",
	"DelayUntilNext", "DelayUpdateUtils", "DeviceIdHelper", "DownloadService", "DownloadWorkerManager",
	"InternalUtils", "Logger", "ShakeDetector", "ShakeMenu", "ThreeFingerPinchDetector",
}

// java17Labels matches the Java 21 form of an enum case label,
// `case DelayUntilNext.background:`. Debian 12 has no JDK past 17, whose
// javac takes only the bare constant; both name the same constant
// (JLS 21 §14.11.1), so the label is written bare and nothing else changes.
var java17Labels = regexp.MustCompile(`case DelayUntilNext\.(\w+):`)

// java17Source returns a plugin file javac 17 can read: the file itself,
// or for DelayUpdateUtils a copy in dir with its enum case labels bare.
func java17Source(t testing.TB, dir, f string) string {
	if filepath.Base(f) != "DelayUpdateUtils.java" {
		return f
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(java17Labels.FindAll(b, -1)); n != 4 {
		t.Fatalf("%s: %d qualified DelayUntilNext case labels, want the 4 of 8.51.23", f, n)
	}
	out := filepath.Join(dir, "java17", "DelayUpdateUtils.java")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, java17Labels.ReplaceAll(b, []byte("case $1:")), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// Debian's OkHttp 3.13, Okio 1.16 and Android's org.json (libokhttp-java,
// libokio-java, libandroid-json-java).
var debianJars = []string{"/usr/share/java/okhttp.jar", "/usr/share/java/okio.jar", "/usr/share/java/com.android.json.jar"}

func readPin(t testing.TB, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func repoRoot(t testing.TB) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// buildJava compiles the stand-ins, the plugin and the driver into dir and
// returns the class path to run the driver with. The shim okhttp3.RequestBody
// comes first so it takes the place of OkHttp 3.13's.
func buildJava(t testing.TB, dir string) string {
	javac, err := exec.LookPath("javac")
	if err != nil {
		t.Fatal("javac not found: run `bash .ci/install-deps` (installs a JDK and the Debian jars)")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatal("java not found: run `bash .ci/install-deps`")
	}
	for _, j := range debianJars {
		if _, err := os.Stat(j); err != nil {
			t.Fatalf("%s missing: run `bash .ci/install-deps` (apt libokhttp-java libokio-java libandroid-json-java)", j)
		}
	}
	version := readPin(t, "plugin.version")
	src := filepath.Join(repoRoot(t), ".cache", "plugin", version, "package", "android", "src", "main", "java", "ee", "forgr", "capacitor_updater")
	var files []string
	for _, c := range pluginClasses {
		f := filepath.Join(src, c+".java")
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("plugin source %s missing: run `bash .ci/install-deps` (npm pack @capgo/capacitor-updater@%s)", f, version)
		}
		files = append(files, java17Source(t, dir, f))
	}
	for _, d := range []string{"android", "driver"} {
		err := filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err == nil && strings.HasSuffix(p, ".java") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	classes := filepath.Join(dir, "classes")
	args := append([]string{"-nowarn", "-encoding", "UTF-8", "-d", classes, "-cp", strings.Join(debianJars, ":")}, files...)
	if out, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	return classes + ":" + strings.Join(debianJars, ":")
}

// buildCapstan builds this checkout's capstan, or takes the binary named
// by CONFORMANCE_CAPSTAN_BIN (to run the suite against another build).
func buildCapstan(t testing.TB, dir string) string {
	if bin := os.Getenv("CONFORMANCE_CAPSTAN_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "capstan")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/capstan-io/capstan/cmd/capstan")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build capstan: %v\n%s", err, out)
	}
	return bin
}

var servingRE = regexp.MustCompile(`msg="capstan serving".* addr=(\S+).* metrics=(\S+)`)

type server struct {
	URL   string
	Admin *admin.Client
	log   *syncBuffer
	// Metrics is the base URL of the front's /metrics listener.
	Metrics string
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe starts `capstan serve` on a free loopback port and stops it
// (by its pid) when t ends.
func startServe(t testing.TB, bin string, extra ...string) *server {
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--nats-listen", "",
		"--admin-token", adminToken}, extra...)
	cmd := exec.Command(bin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAPSTAN_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("capstan serve log:\n%s", tail(log.String(), 8000))
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	found := make(chan []string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case addrs := <-found:
		u := "http://" + addrs[0]
		return &server{URL: u, Admin: admin.NewClient(u, adminToken), log: log, Metrics: "http://" + addrs[1]}
	case <-done:
		t.Fatalf("capstan serve exited:\n%s", log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("capstan serve did not start within 60s:\n%s", log.String())
	}
	return nil
}

// event is one {"event":...} line of the driver.
type event map[string]any

func (e event) str(k string) string {
	s, _ := e[k].(string)
	return s
}

func (e event) num(k string) float64 {
	f, _ := e[k].(float64)
	return f
}

// device is one driver process: one phone running the plugin.
type device struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	seq     int
	replies chan map[string]any
	mu      sync.Mutex
	events  []event
	stderr  *syncBuffer
	done    chan struct{}
	// keyID is CryptoCipher.calcKeyId of the configured public key.
	keyID string
}

type deviceConfig struct {
	AppID          string `json:"appId"`
	DeviceID       string `json:"deviceId"`
	VersionBuild   string `json:"versionBuild"`
	PluginVersion  string `json:"pluginVersion,omitempty"`
	PublicKey      string `json:"publicKey,omitempty"`
	DefaultChannel string `json:"defaultChannel,omitempty"`
	// Root is the phone's storage; empty for a fresh one. The same Root
	// again is the app restarted.
	Root string `json:"root,omitempty"`
}

func newDevice(t testing.TB, classpath string, srv *server, cfg deviceConfig) *device {
	t.Helper()
	cmd := exec.Command("java", "-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classpath,
		"ee.forgr.capacitor_updater.ConformanceDriver")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, cmd: cmd, stdin: stdin, replies: make(chan map[string]any, 1), stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 16<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue
			}
			if _, ok := m["reply"]; ok {
				d.replies <- m
				continue
			}
			d.mu.Lock()
			d.events = append(d.events, event(m))
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("plugin log of %s:\n%s", cfg.DeviceID, tail(d.stderr.String(), 12000))
		}
	})
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	args := map[string]any{
		"updateUrl": srv.URL + "/updates", "statsUrl": srv.URL + "/stats",
		"channelUrl": srv.URL + "/channel_self",
	}
	b, _ := json.Marshal(cfg)
	_ = json.Unmarshal(b, &args)
	init, _ := d.call("init", args).(map[string]any)
	d.keyID, _ = init["key_id"].(string)
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// call sends one command and returns its result; a Java exception fails the test.
func (d *device) call(op string, args map[string]any) any {
	d.t.Helper()
	r, exc := d.try(op, args)
	if exc != "" {
		d.t.Fatalf("%s: %s", op, exc)
	}
	return r
}

// try sends one command and returns its result or the exception it threw.
func (d *device) try(op string, args map[string]any) (any, string) {
	d.t.Helper()
	d.seq++
	cmd := map[string]any{"seq": d.seq, "op": op}
	for k, v := range args {
		cmd[k] = v
	}
	b, _ := json.Marshal(cmd)
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("%s: driver gone: %v", op, err)
	}
	select {
	case r := <-d.replies:
		if e, ok := r["exception"].(string); ok {
			return nil, e
		}
		return r["result"], ""
	case <-d.done:
		d.t.Fatalf("%s: driver exited", op)
	case <-time.After(45 * time.Second):
		d.t.Fatalf("%s: no answer within 45s", op)
	}
	return nil, ""
}

func (d *device) obj(op string, args map[string]any) map[string]any {
	d.t.Helper()
	r := d.call(op, args)
	m, ok := r.(map[string]any)
	if !ok {
		d.t.Fatalf("%s answered %T %v, want an object", op, r, r)
	}
	return m
}

func (d *device) snapshot() []event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]event(nil), d.events...)
}

// waitFor polls the events until one matches or the timeout passes.
func (d *device) waitFor(timeout time.Duration, match func(event) bool) (event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range d.snapshot() {
			if match(e) {
				return e, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// exchanges are the HTTP requests the plugin made to path.
func (d *device) exchanges(path string) []event {
	var out []event
	for _, e := range d.snapshot() {
		if e.str("event") == "http" && e.str("path") == path {
			out = append(out, e)
		}
	}
	return out
}

// launched waits until the plugin has delivered the stats every launch
// sends (app_launch_start from load(), app_launch_ready from
// notifyAppReady) and returns the number of /stats exchanges so far: a
// test's own stats are in the ones after.
func (d *device) launched() int {
	d.t.Helper()
	if _, ok := d.waitFor(10*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && ev.str("path") == "/stats" && ev.num("status") == 200 &&
			contains(statActions(ev.str("request")), "app_launch_ready")
	}); !ok {
		d.t.Fatalf("launch stats not delivered within 10s; exchanges %v", d.exchanges("/stats"))
	}
	return len(d.exchanges("/stats"))
}

// statsWith are the /stats exchanges whose events include action.
func (d *device) statsWith(action string) []event {
	var out []event
	for _, e := range d.exchanges("/stats") {
		if contains(statActions(e.str("request")), action) {
			out = append(out, e)
		}
	}
	return out
}

// sentActions lists every stats action the plugin posted (batches and
// single objects alike), in order.
func (d *device) sentActions() []string {
	var out []string
	for _, e := range d.exchanges("/stats") {
		out = append(out, statActions(e.str("request"))...)
	}
	return out
}

func statActions(body string) []string {
	var many []map[string]any
	if err := json.Unmarshal([]byte(body), &many); err != nil {
		var one map[string]any
		if json.Unmarshal([]byte(body), &one) != nil {
			return nil
		}
		many = []map[string]any{one}
	}
	var out []string
	for _, e := range many {
		a, _ := e["action"].(string)
		out = append(out, a)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *device) notified(name string) []event {
	var out []event
	for _, e := range d.snapshot() {
		if e.str("event") == "notify" && e.str("name") == name {
			out = append(out, e)
		}
	}
	return out
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
