package conformance

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

// noStat waits one stats flush period and fails if the plugin sent action.
func noStat(t *testing.T, d *device, action string) {
	t.Helper()
	time.Sleep(1500 * time.Millisecond)
	if a := d.sentActions(); contains(a, action) {
		t.Errorf("plugin sent %s: %v", action, a)
	}
}

// Defect 1. On builtin the plugin reports version_name = version_build
// (CapgoUpdater.getBundleInfo(builtin) uses versionBuild). A channel with
// no bundle must answer already_on_builtin (up_to_date), else the plugin
// schedules builtin as next bundle and sends set_next.
func (e *env) d1Builtin(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.channel(t, app, "production", admin.ChannelPatch{Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app, VersionBuild: "1.4.0"})
	r := autoUpdateDone(t, d)
	if reqs := d.exchanges("/updates"); len(reqs) != 1 || !strings.Contains(reqs[0].str("request"), `"version_name":"1.4.0"`) {
		t.Errorf("plugin on builtin did not send version_name = version_build: %v", reqs)
	}
	if r["branch"] != "up_to_date" || response(r)["error"] != "already_on_builtin" {
		t.Errorf("branch %v answer %v, want up_to_date already_on_builtin", r["branch"], response(r))
	}
	if next := d.obj("state", nil)["next"]; next != nil {
		t.Errorf("plugin scheduled next bundle %v", next)
	}
	noStat(t, d, "set_next")
}

// Defect 2. A device asking for a channel that is neither public nor
// self-assignable is refused with kind blocked: the plugin must not count
// it as a failed update (no download_fail).
func (e *env) d2PrivateChannel(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.channel(t, app, "staff", admin.ChannelPatch{Bundle: ptr("1.0.1")})
	d := e.device(t, deviceConfig{AppID: app, DefaultChannel: "staff"})
	r := autoUpdateDone(t, d)
	resp := response(r)
	if resp["error"] != "cannot_update_via_private_channel" {
		t.Fatalf("answer %v, want cannot_update_via_private_channel", resp)
	}
	if r["branch"] != "blocked" {
		t.Errorf("kind %v: plugin took branch %v, want blocked", resp["kind"], r["branch"])
	}
	noStat(t, d, "download_fail")
}

// Defect 3. getChannel's answer becomes the plugin's defaultChannel
// (CapgoUpdater.persistDefaultChannelFromResponse). An operator pin must
// not be answered, or the device keeps the pinned channel after the pin
// is removed.
func (e *env) d3GetChannelPin(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.upload(t, app, "1.0.2")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	e.channel(t, app, "qa", admin.ChannelPatch{Bundle: ptr("1.0.2"), AllowSelfSet: ptr(true)})
	dev := deviceID()
	d := e.device(t, deviceConfig{AppID: app, DeviceID: dev})
	if _, err := e.srv.Admin.SetDeviceChannel(ctxT(t), app, dev, "qa"); err != nil {
		t.Fatal(err)
	}
	if r := d.obj("getLatest", nil); r["version"] != "1.0.2" {
		t.Fatalf("pinned device offered %v, want qa's 1.0.2", r)
	}
	g := d.obj("getChannel", nil)
	st := d.obj("state", nil)
	if g["channel"] == "qa" || st["defaultChannel"] == "qa" {
		t.Errorf("getChannel answered the pin %v; plugin stored defaultChannel %q", g, st["defaultChannel"])
	}
	if err := e.srv.Admin.UnsetDeviceChannel(ctxT(t), app, dev); err != nil {
		t.Fatal(err)
	}
	r := d.obj("getLatest", nil)
	reqs := d.exchanges("/updates")
	if r["version"] != "1.0.1" {
		t.Errorf("after the pin was removed the device was offered %v (sent %s), want production's 1.0.1", r["version"], reqs[len(reqs)-1].str("request"))
	}
}

// publicKeyPEM is an RSA public key in the PKCS#1 PEM form the plugin's
// config holds.
func publicKeyPEM(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}))
}

// Defect 4. An app built with a public key sends key_id; a plaintext
// bundle must be refused with a blocked answer, not offered (the plugin
// would then refuse it itself and send session_key_required).
func (e *env) d4EncryptionRequired(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app, PublicKey: publicKeyPEM(t)})
	r := autoUpdateDone(t, d)
	if reqs := d.exchanges("/updates"); len(reqs) != 1 || !strings.Contains(reqs[0].str("request"), `"key_id":"`) {
		t.Errorf("plugin with a public key sent no key_id: %v", reqs)
	}
	if r["branch"] != "blocked" {
		t.Errorf("branch %v answer %v, want blocked", r["branch"], response(r))
	}
	noStat(t, d, "session_key_required")
	if a := d.sentActions(); contains(a, "download_fail") {
		t.Errorf("plugin sent download_fail: %v", a)
	}
}

// Defect 5. A device already running the rollout bundle keeps it when the
// rollout percentage is lowered.
func (e *env) d5RolloutShrink(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.upload(t, app, "1.0.2")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), RolloutBundle: ptr("1.0.2"), RolloutPercent: ptr(100.0), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app})
	install(t, d, "1.0.2")
	e.channel(t, app, "production", admin.ChannelPatch{RolloutPercent: ptr(0.0)})
	r := autoUpdateDone(t, d)
	if r["branch"] != "up_to_date" {
		t.Errorf("after lowering the rollout: branch %v answer %v, want up_to_date (stay on 1.0.2)", r["branch"], response(r))
	}
	if cur := d.obj("state", nil)["current"].(map[string]any); cur["version"] != "1.0.2" {
		t.Errorf("current %v", cur)
	}
}

// Defect 6. Plugins older than 5.34/6.34/7.34 (and 9.0.0, 10.0.0) keep no
// channel: Capstan must remember a setChannel choice. The plugin's version
// is a plain field (CapgoUpdater.pluginVersion, set from
// CapacitorUpdaterPlugin.pluginVersion), so the device reports 6.0.0; a
// fresh driver with the same device id and no stored channel is the old
// plugin on its next launch.
func (e *env) d6OldPlugin(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.upload(t, app, "1.0.2")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	e.channel(t, app, "beta", admin.ChannelPatch{Bundle: ptr("1.0.2"), AllowSelfSet: ptr(true)})
	for _, pv := range []string{"6.0.0", "9.0.0"} {
		dev := deviceID()
		d := e.device(t, deviceConfig{AppID: app, DeviceID: dev, PluginVersion: pv})
		if r := d.obj("setChannel", m("channel", "beta")); r["status"] != "ok" {
			t.Fatalf("%s setChannel(beta) = %v", pv, r)
		}
		if reqs := d.exchanges("/channel_self"); len(reqs) == 0 || !strings.Contains(reqs[0].str("request"), `"plugin_version":"`+pv+`"`) {
			t.Errorf("setChannel did not report plugin_version %s", pv)
		}
		later := e.device(t, deviceConfig{AppID: app, DeviceID: dev, PluginVersion: pv})
		if r := later.obj("getLatest", nil); r["version"] != "1.0.2" {
			t.Errorf("plugin %s without a stored channel offered %v, want beta's 1.0.2", pv, r)
		}
		if r := later.obj("getChannel", nil); r["channel"] != "beta" {
			t.Errorf("plugin %s getChannel = %v, want beta", pv, r)
		}
	}
}

func apiCode(err error) string {
	var ae *admin.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", ae.Status, ae.Code)
	}
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

// Defect 7. Uploads the plugin could not use are refused by the admin API;
// the plugin's own refusal of such a manifest is shown too.
func (e *env) d7UploadsRefused(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	cdn := newCDN(t, map[string]string{"a.js": "a", "index.html": "<html>"})
	entry := func(name string) release.ManifestEntry {
		return release.ManifestEntry{FileName: name, FileHash: sha([]byte("a")), DownloadURL: cdn.URL + "/a.js"}
	}
	manifests := map[string][]release.ManifestEntry{
		"br_collision":   {entry("index.html"), entry("a.js"), entry("a.js.br")},
		"dot_segment":    {entry("index.html"), entry("./a.js")},
		"dotdot_segment": {entry("index.html"), entry("x/../a.js")},
		"parent_escape":  {entry("index.html"), entry("../a.js")},
	}
	for name, mf := range manifests {
		_, err := e.srv.Admin.UploadBundle(ctxT(t), app, admin.BundleMetadata{Version: "2.0.0-" + strings.ReplaceAll(name, "_", "-"), Manifest: mf}, nil)
		if code := apiCode(err); !strings.HasPrefix(code, "400 ") {
			t.Errorf("manifest %s: %s, want 400", name, code)
		}
	}
	// Encrypted upload whose checksum is not the hex RSA signature.
	junk := bytes.Repeat([]byte{0x42}, 64)
	_, err := e.srv.Admin.UploadBundle(ctxT(t), app, admin.BundleMetadata{Version: "2.1.0",
		SessionKey: "AAAAAAAAAAAAAAAAAAAAAA==:" + strings.Repeat("B", 344), Checksum: "not-a-hex-checksum!"}, bytes.NewReader(junk))
	if code := apiCode(err); !strings.HasPrefix(code, "400 ") {
		t.Errorf("encrypted upload with non-hex checksum: %s, want 400", code)
	}
	for label, bad := range map[string]string{"nul": "assets/a\x00.js", "control": "assets/a\x01.js", "newline": "assets/a\n.js"} {
		z := bundleZip(t, map[string]string{"index.html": "<html>", bad: "x"})
		_, err := e.srv.Admin.UploadBundle(ctxT(t), app, admin.BundleMetadata{Version: "2.2.0-" + label}, bytes.NewReader(z))
		if code := apiCode(err); !strings.HasPrefix(code, "400 ") {
			t.Errorf("zip entry with %s: %s, want 400", label, code)
		}
	}

	// The plugin refuses such manifests whole and reports manifest_path_fail.
	d := e.device(t, deviceConfig{AppID: app})
	for name, mf := range map[string][]release.ManifestEntry{"br_collision": manifests["br_collision"], "parent_escape": manifests["parent_escape"]} {
		b, _ := json.Marshal(mf)
		var arr []any
		_ = json.Unmarshal(b, &arr)
		if _, exc := d.try("downloadManifest", m("url", cdn.URL+"/none.zip", "version", "9.9.9-"+name, "manifest", arr)); exc == "" {
			t.Errorf("plugin accepted manifest %s", name)
		}
	}
	if _, ok := d.waitFor(5*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && contains(statActions(ev.str("request")), "manifest_path_fail")
	}); !ok {
		t.Errorf("plugin sent no manifest_path_fail; sent %v", d.sentActions())
	}
}

// Defect 8. Android's download worker sends single-object stats with no
// timestamp (DownloadService.sendStatsAsync); two identical ones in
// separate requests are two events. A resent batch is one event.
func (e *env) d8EventIdentity(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	dev := deviceID()
	d := e.device(t, deviceConfig{AppID: app, DeviceID: dev})
	ans := d.obj("getLatest", nil)
	for i := 0; i < 2; i++ {
		d.obj("download", m("url", ans["url"], "version", "1.0.1", "sessionKey", "", "checksum", ans["checksum"]))
	}
	var bodies []string
	for _, ex := range d.exchanges("/stats") {
		if contains(statActions(ex.str("request")), "download_zip_start") {
			bodies = append(bodies, ex.str("request"))
		}
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || strings.Contains(bodies[0], "timestamp") {
		t.Fatalf("want two identical timestamp-less download_zip_start objects, got %q", bodies)
	}
	e.waitRows(t, dev, "download_zip_start", 2)

	d.call("sendStats", m("action", "app_moved_to_foreground"))
	if _, ok := d.waitFor(5*time.Second, func(ev event) bool { return ev.str("event") == "stat_sent" }); !ok {
		t.Fatal("batch not delivered")
	}
	var batch string
	for _, ex := range d.exchanges("/stats") {
		if contains(statActions(ex.str("request")), "app_moved_to_foreground") {
			batch = ex.str("request")
		}
	}
	e.waitRows(t, dev, "app_moved_to_foreground", 1)
	// The same bytes again, as the plugin resends a batch whose answer it lost.
	post(t, e.srv.URL+"/stats", batch)
	// Events of one device are stored in order: once this one is in, the
	// resend has been handled.
	post(t, e.srv.URL+"/stats", strings.Replace(strings.Replace(batch, "app_moved_to_foreground", "app_launch_ready", 1), `"timestamp":`, `"timestamp":1`, 1))
	e.waitRows(t, dev, "app_launch_ready", 1)
	if n := e.countRows(t, dev, "app_moved_to_foreground"); n != 1 {
		t.Errorf("resent batch stored %d rows, want 1", n)
	}
}

func post(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
}

// Defect 10. A 429 pauses the plugin for Retry-After seconds (stats and
// update checks alike), and only a 429 whose error is too_many_requests
// makes it send rate_limit_reached.
func (e *env) d10Backpressure(t *testing.T) {
	t.Parallel()
	srv, app := e.startBusy(t)
	d := newDevice(t, e.classpath, srv, deviceConfig{AppID: app, DeviceID: deviceID(), VersionBuild: "1.0.0"})
	d.launched()
	fillStream(t, srv, app)
	d.call("sendStats", m("action", "app_moved_to_foreground"))
	first, ok := d.waitFor(5*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && ev.str("path") == "/stats" && contains(statActions(ev.str("request")), "app_moved_to_foreground")
	})
	if !ok {
		t.Fatal("no flush")
	}
	if first.num("status") != 429 {
		t.Fatalf("stats outage answered %v %q, want 429 with Retry-After", first["status"], first.str("response"))
	}
	retry, err := strconv.Atoi(first.str("retry_after"))
	if err != nil || retry < 1 {
		t.Fatalf("Retry-After %q", first.str("retry_after"))
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(first.str("response")), &body)
	// The exchange is recorded before the plugin's callback reads it.
	time.Sleep(300 * time.Millisecond)
	// While paused the plugin makes no update check at all.
	// The plugin's getLatest rejects a failed check with its error.
	r := d.obj("getLatest", nil)
	if n := len(d.exchanges("/updates")); n != 0 || r["rejected"] == nil {
		t.Errorf("update check during Retry-After: %d requests, result %v; want none and a rejected call", n, r)
	}
	if r["rejected"] != body["error"] {
		t.Errorf("paused update check rejected with %v, want the 429's error %v", r["rejected"], body["error"])
	}
	// Channel calls wait too.
	if g := d.obj("getChannel", nil); len(d.exchanges("/channel_self")) != 0 || g["error"] != body["error"] {
		t.Errorf("getChannel during Retry-After: %d requests, result %v", len(d.exchanges("/channel_self")), g)
	}
	if _, ok := d.waitFor(time.Duration(retry+8)*time.Second, func(ev event) bool { return ev.str("event") == "stat_sent" }); !ok {
		t.Fatalf("event not delivered after the pause; exchanges %v", d.exchanges("/stats"))
	}
	ex := d.statsWith("app_moved_to_foreground")
	second := ex[1]
	if gap := second.num("start_ms") - first.num("at_ms"); gap < float64(retry*1000-50) {
		t.Errorf("plugin retried %vms after a 429 with Retry-After %ds", gap, retry)
	}
	if body["error"] != "too_many_requests" {
		noStat(t, d, "rate_limit_reached")
	}
	t.Logf("429 %v Retry-After %ds; retried after %.0fms", body["error"], retry, second.num("start_ms")-first.num("at_ms"))
}

// Defect 11. getBundleDownloadSize posts the missing manifest entries to
// {updateUrl}/manifest_size; Capstan answers the sizes recorded at upload.
func (e *env) d11ManifestSize(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	files := webFiles("1.2.0")
	cdn := newCDN(t, files)
	e.uploadManifest(t, app, "1.2.0", cdn, files)
	d := e.device(t, deviceConfig{AppID: app})
	mf := manifestOf(cdn, files)
	mf = append(mf, release.ManifestEntry{FileName: "assets/unknown.js", FileHash: sha([]byte("?")), DownloadURL: cdn.URL + "/unknown.js"})
	b, _ := json.Marshal(mf)
	var arr []any
	_ = json.Unmarshal(b, &arr)
	r := d.obj("bundleSize", m("version", "1.2.0", "manifest", arr))
	var total int
	for _, c := range files {
		total += len(c)
	}
	if r["totalSize"] != float64(total) || r["knownFiles"] != float64(len(files)) || r["unknownFiles"] != float64(1) {
		t.Errorf("getBundleDownloadSize = %v, want totalSize %d, knownFiles %d, unknownFiles 1", r, total, len(files))
	}
	if ex := d.exchanges("/updates/manifest_size"); len(ex) != 1 || ex[0].num("status") != 200 {
		t.Errorf("manifest_size exchanges %v", ex)
	}
}
