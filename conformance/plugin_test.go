package conformance

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capstan-io/capstan/schema/chtest"
	"github.com/capstan-io/capstan/update/admin"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// env is what every scenario shares: the compiled plugin and the servers.
type env struct {
	classpath string
	bin       string
	srv       *server
	chConn    driver.Conn
}

var appSeq atomic.Int64

// newApp creates an app of its own for one scenario, so scenarios can run
// side by side on one server.
func (e *env) newApp(t *testing.T) string {
	t.Helper()
	id := fmt.Sprintf("com.conformance.app%d", appSeq.Add(1))
	if _, err := e.srv.Admin.CreateApp(ctxT(t), id, t.Name()); err != nil {
		t.Fatal(err)
	}
	return id
}

func bundleZip(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(files[n]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func webFiles(version string) map[string]string {
	return map[string]string{
		"index.html":    "<!doctype html><title>" + version + "</title>",
		"assets/app.js": strings.Repeat("console.log('"+version+"');\n", 20),
	}
}

// upload stores a zip-only bundle (no_delta): the scenarios using it are
// about the zip download; DeltaReusesFiles covers the manifest Capstan
// builds otherwise.
func (e *env) upload(t *testing.T, app, version string) []byte {
	t.Helper()
	z := bundleZip(t, webFiles(version))
	if _, err := e.srv.Admin.UploadBundle(ctxT(t), app, admin.BundleMetadata{Version: version, NoDelta: true}, bytes.NewReader(z)); err != nil {
		t.Fatalf("upload %s: %v", version, err)
	}
	return z
}

func ptr[T any](v T) *T { return &v }

func (e *env) channel(t *testing.T, app, name string, p admin.ChannelPatch) {
	t.Helper()
	if _, err := e.srv.Admin.SetChannel(ctxT(t), app, name, p); err != nil {
		t.Fatalf("channel %s: %v", name, err)
	}
}

var devSeq atomic.Int64

func deviceID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", devSeq.Add(1))
}

func (e *env) device(t *testing.T, cfg deviceConfig) *device {
	t.Helper()
	if cfg.DeviceID == "" {
		cfg.DeviceID = deviceID()
	}
	if cfg.VersionBuild == "" {
		cfg.VersionBuild = "1.0.0"
	}
	return newDevice(t, e.classpath, e.srv, cfg)
}

func m(kv ...any) map[string]any {
	out := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the capacitor-updater plugin and starts capstan serve and ClickHouse")
	}
	start := time.Now()
	work := t.TempDir()
	e := &env{classpath: buildJava(t, work), bin: buildCapstan(t, work)}
	t.Logf("built plugin and capstan in %v", time.Since(start).Round(time.Millisecond))
	ch := chtest.StartServer(t)
	e.chConn = ch.Conn(t, "conformance")
	e.srv = startServe(t, e.bin, "--clickhouse-url", ch.DSN("conformance"), "--batch-linger", "100ms")
	t.Logf("servers up after %v", time.Since(start).Round(time.Millisecond))

	t.Run("baseline", func(t *testing.T) {
		t.Run("UpdateDownloadChecksumUnzip", e.updateDownloadUnzip)
		t.Run("UpToDateAfterInstall", e.upToDateAfterInstall)
		t.Run("BlockedMajor", e.blockedMajor)
		t.Run("RevertToBuiltin", e.revertToBuiltin)
		t.Run("Channels", e.channels)
		t.Run("StatsQueueFlush", e.statsFlush)
		t.Run("StatsRequeueUnderBackpressure", e.statsBackpressure)
		t.Run("StatsPersistAcrossRestart", e.statsPersistAcrossRestart)
		t.Run("ManifestDownload", e.manifestDownload)
		t.Run("EncryptedBundle", e.encryptedBundle)
		t.Run("DeltaReusesFiles", e.deltaReusesFiles)
	})
	t.Run("defects", func(t *testing.T) {
		t.Run("D1_BuiltinAlreadyOnBuiltin", e.d1Builtin)
		t.Run("D2_PrivateChannelBlocked", e.d2PrivateChannel)
		t.Run("D3_GetChannelIgnoresPin", e.d3GetChannelPin)
		t.Run("D4_EncryptedAppPlaintextBundle", e.d4EncryptionRequired)
		t.Run("D5_RolloutShrinkNoDowngrade", e.d5RolloutShrink)
		t.Run("D6_OldPluginChannelRemembered", e.d6OldPlugin)
		t.Run("D7_UploadsRefused", e.d7UploadsRefused)
		t.Run("D8_EventIdentity", e.d8EventIdentity)
		t.Run("D10_RetryAfterNoRateLimitStat", e.d10Backpressure)
		t.Run("D11_ManifestSize", e.d11ManifestSize)
	})
	t.Logf("suite took %v", time.Since(start).Round(time.Millisecond))
}

// autoUpdate has the app ask the plugin for an update check
// (triggerUpdateCheck, which runs the plugin's backgroundDownload) and
// names what the plugin did with the answer in r["branch"]. via
// "foreground" brings the app to the foreground instead, where the
// plugin makes the same check by itself.
func autoUpdate(t *testing.T, d *device, via ...string) map[string]any {
	t.Helper()
	var args map[string]any
	if len(via) > 0 {
		args = m("via", via[0])
	}
	r := d.obj("autoUpdate", args)
	r["branch"] = checkBranch(r)
	return r
}

// checkBranch reads the events the plugin notified during a check:
// updateCheckResult carries its own kind for an error answer (up_to_date,
// blocked, failed); a download event means it started downloading; setNext
// of builtin means it scheduled the builtin bundle; downloadFailed alone
// means it gave up on the answer (no url); noNeedUpdate alone means it
// already runs the offered bundle; none means it did nothing more.
func checkBranch(r map[string]any) string {
	events, _ := r["events"].([]any)
	find := func(name string) map[string]any {
		for _, e := range events {
			if ev, _ := e.(map[string]any); ev["name"] == name {
				data, _ := ev["data"].(map[string]any)
				if data == nil {
					data = map[string]any{}
				}
				return data
			}
		}
		return nil
	}
	if e := find("updateCheckResult"); e != nil {
		k, _ := e["kind"].(string)
		return k
	}
	if find("download") != nil {
		return "download"
	}
	if e := find("setNext"); e != nil {
		if b, _ := e["bundle"].(map[string]any); b["id"] == "builtin" {
			return "set_next_builtin"
		}
		return "set_next"
	}
	if find("downloadFailed") != nil {
		return "no_url"
	}
	if find("noNeedUpdate") != nil {
		return "no_need_update"
	}
	return "none"
}

// autoUpdateDone runs the plugin's update check and, when it starts a
// download, waits until the download ends (setNext or downloadFailed);
// r["refused"] is set when the answer offered a bundle and the plugin
// declined to start downloading it.
func autoUpdateDone(t *testing.T, d *device) map[string]any {
	t.Helper()
	r := autoUpdate(t, d)
	switch r["branch"] {
	case "download":
		if _, ok := d.waitFor(20*time.Second, func(ev event) bool {
			return ev.str("event") == "notify" && (ev.str("name") == "setNext" || ev.str("name") == "downloadFailed")
		}); !ok {
			t.Fatal("download did not finish within 20s")
		}
	case "none":
		if response(r)["url"] != nil {
			r["refused"] = true
		}
	}
	return r
}

// install downloads version through the update check and makes it the
// running bundle, as the plugin does on the next app start.
func install(t *testing.T, d *device, version string) string {
	t.Helper()
	r := autoUpdateDone(t, d)
	if r["branch"] != "download" {
		t.Fatalf("update check took branch %v (%v), want a download of %s", r["branch"], r["response"], version)
	}
	return activateNext(t, d, version)
}

// activateNext checks the download of version finished as the plugin's
// next bundle and sets it, returning its bundle id.
func activateNext(t *testing.T, d *device, version string) string {
	t.Helper()
	if f := d.notified("downloadFailed"); len(f) > 0 {
		t.Fatalf("download of %s failed: %v; plugin sent %v", version, f[0], d.sentActions())
	}
	next, _ := d.obj("state", nil)["next"].(map[string]any)
	if next == nil || next["version"] != version {
		t.Fatalf("next bundle %v, want %s", next, version)
	}
	id := next["id"].(string)
	if d.call("set", m("id", id)) != true {
		t.Fatalf("set(%s) failed", id)
	}
	return id
}

func response(r map[string]any) map[string]any {
	resp, _ := r["response"].(map[string]any)
	return resp
}

// The app on builtin comes to the foreground; the plugin asks by itself,
// is offered 1.0.1, downloads the zip in its worker, checks its SHA-256,
// unzips it and sets it as next bundle.
func (e *env) updateDownloadUnzip(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	z := e.upload(t, app, "1.0.1")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app})

	r := autoUpdate(t, d, "foreground")
	if r["branch"] != "download" {
		t.Fatalf("plugin took branch %v on %v, want download", r["branch"], r["response"])
	}
	resp := r["response"].(map[string]any)
	if resp["checksum"] != sha(z) {
		t.Errorf("answered checksum %v, want the zip's SHA-256 %s", resp["checksum"], sha(z))
	}
	if _, ok := d.waitFor(20*time.Second, func(ev event) bool {
		return ev.str("event") == "notify" && (ev.str("name") == "setNext" || ev.str("name") == "downloadFailed")
	}); !ok {
		t.Fatal("download did not finish within 20s")
	}
	if f := d.notified("downloadFailed"); len(f) > 0 {
		t.Fatalf("download failed: %v", f[0])
	}
	st := d.obj("state", nil)
	next, _ := st["next"].(map[string]any)
	if next == nil || next["version"] != "1.0.1" || next["status"] != "pending" {
		t.Fatalf("next bundle %v, want 1.0.1 pending", st["next"])
	}
	files := d.obj("files", m("id", next["id"]))
	for name, content := range webFiles("1.0.1") {
		if files[name] != sha([]byte(content)) {
			t.Errorf("unzipped %s: sha %v, want %s (files %v)", name, files[name], sha([]byte(content)), files)
		}
	}
	// The worker's own stats went out as single objects.
	if _, ok := d.waitFor(5*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && ev.str("path") == "/stats" && contains(statActions(ev.str("request")), "set_next")
	}); !ok {
		t.Errorf("no set_next stat sent; sent %v", d.sentActions())
	}
	for _, a := range []string{"app_moved_to_foreground", "download_zip_start", "download_zip_complete", "download_complete"} {
		if _, ok := d.waitFor(5*time.Second, func(ev event) bool {
			return ev.str("event") == "http" && ev.str("path") == "/stats" && contains(statActions(ev.str("request")), a)
		}); !ok {
			t.Errorf("no %s stat sent; sent %v", a, d.sentActions())
		}
	}
}
