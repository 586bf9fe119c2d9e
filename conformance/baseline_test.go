package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/admin"
	"github.com/capstan-io/capstan/update/release"
)

// A major bump under the default `major` policy: Capstan answers kind
// blocked and the plugin neither downloads nor reports a failure.
func (e *env) blockedMajor(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "2.0.0")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("2.0.0"), Public: ptr(true), DisableAutoUpdate: ptr(release.PolicyMajor)})
	d := e.device(t, deviceConfig{AppID: app})
	r := autoUpdateDone(t, d)
	resp := response(r)
	if r["branch"] != "blocked" || resp["error"] != "disable_auto_update_to_major" {
		t.Fatalf("branch %v, answer %v; want blocked disable_auto_update_to_major", r["branch"], resp)
	}
	// The plugin keeps only error/kind/message/version of an error answer;
	// the rest is on the wire.
	if ex := d.exchanges("/updates"); len(ex) != 1 || !strings.Contains(ex[0].str("response"), `"major":true`) {
		t.Errorf("major answer lacks major:true: %v", ex)
	}
	time.Sleep(1500 * time.Millisecond) // one stats flush period
	if a := d.sentActions(); contains(a, "download_fail") {
		t.Errorf("plugin sent download_fail on a blocked answer: %v", a)
	}
	if infos := d.obj("state", nil)["bundle_infos"].([]any); len(infos) != 0 {
		t.Errorf("plugin started a download of a blocked bundle: %v", infos)
	}
}

// A device running 1.0.1 whose channel is emptied is told
// {"version":"builtin"} and schedules the builtin bundle as next.
func (e *env) revertToBuiltin(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app})
	install(t, d, "1.0.1")
	if cur := d.obj("state", nil)["current"].(map[string]any); cur["version"] != "1.0.1" {
		t.Fatalf("current %v, want 1.0.1", cur)
	}
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("")})
	r := autoUpdateDone(t, d)
	if r["branch"] != "set_next_builtin" {
		t.Fatalf("branch %v, answer %v; want {\"version\":\"builtin\"}", r["branch"], response(r))
	}
	next, _ := d.obj("state", nil)["next"].(map[string]any)
	if next == nil || next["id"] != "builtin" {
		t.Fatalf("next bundle %v, want builtin", next)
	}
	if _, ok := d.waitFor(5*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && ev.str("path") == "/stats" && contains(statActions(ev.str("request")), "set_next")
	}); !ok {
		t.Errorf("no set_next stat; sent %v", d.sentActions())
	}
}

// setChannel stores a self-assignable channel, getChannel reports it,
// listChannels offers it, the next check is served by it, and
// unsetChannel returns the device to the public channel.
func (e *env) channels(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.upload(t, app, "1.0.2")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	e.channel(t, app, "beta", admin.ChannelPatch{Bundle: ptr("1.0.2"), AllowSelfSet: ptr(true)})
	e.channel(t, app, "internal", admin.ChannelPatch{Bundle: ptr("1.0.2")})
	d := e.device(t, deviceConfig{AppID: app})

	list := d.obj("listChannels", nil)
	names := map[string]bool{}
	for _, c := range list["channels"].([]any) {
		names[c.(map[string]any)["name"].(string)] = true
	}
	if !names["beta"] || !names["production"] || names["internal"] {
		t.Errorf("listChannels %v: want beta and production, not internal", list)
	}

	if r := d.obj("setChannel", m("channel", "internal")); r["error"] != "channel_self_set_not_allowed" {
		t.Errorf("setChannel(internal) = %v, want channel_self_set_not_allowed", r)
	}
	if r := d.obj("setChannel", m("channel", "beta")); r["error"] != nil || r["status"] != "ok" {
		t.Fatalf("setChannel(beta) = %v", r)
	}
	st := d.obj("state", nil)
	if st["defaultChannel"] != "beta" || st["stored_default_channel"] != "beta" {
		t.Fatalf("after setChannel: defaultChannel %v stored %v, want beta", st["defaultChannel"], st["stored_default_channel"])
	}
	if r := d.obj("getChannel", nil); r["channel"] != "beta" {
		t.Errorf("getChannel = %v, want beta", r)
	}
	r := d.obj("getLatest", nil)
	if r["version"] != "1.0.2" {
		t.Errorf("update check on beta offered %v, want 1.0.2", r)
	}
	if reqs := d.exchanges("/updates"); len(reqs) == 0 || !strings.Contains(reqs[len(reqs)-1].str("request"), `"defaultChannel":"beta"`) {
		t.Errorf("update check did not send defaultChannel beta")
	}

	if r := d.obj("unsetChannel", nil); r["status"] != "ok" {
		t.Fatalf("unsetChannel = %v", r)
	}
	st = d.obj("state", nil)
	if st["defaultChannel"] != "" || st["stored_default_channel"] != nil {
		t.Errorf("after unsetChannel: defaultChannel %q stored %v, want none", st["defaultChannel"], st["stored_default_channel"])
	}
	if r := d.obj("getLatest", nil); r["version"] != "1.0.1" {
		t.Errorf("update check after unsetChannel offered %v, want production's 1.0.1", r)
	}
	// Asking for the public channel makes Capstan answer unset:true.
	if r := d.obj("setChannel", m("channel", "production")); r["unset"] != true {
		t.Errorf("setChannel(production) = %v, want unset:true", r)
	}
}

// countRows counts the stored events of a device for an action, once
// the consumer has caught up (FINAL: ReplacingMergeTree collapses
// duplicates of one event id).
func (e *env) countRows(t *testing.T, device, action string) uint64 {
	t.Helper()
	var n uint64
	row := e.chConn.QueryRow(context.Background(),
		"SELECT count() FROM capstan_events FINAL WHERE device_id = ? AND action = ?", strings.ToLower(device), action)
	if err := row.Scan(&n); err != nil {
		t.Fatalf("count %s rows: %v", action, err)
	}
	return n
}

// waitRows polls until a device has want rows of action, or fails.
func (e *env) waitRows(t *testing.T, device, action string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := e.countRows(t, device, action)
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("%d %s rows for %s, want %d", n, action, device, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Queued stats go out as one batch within the flush period, the 2xx runs
// their callbacks, and the consumer stores them in ClickHouse.
func (e *env) statsFlush(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.channel(t, app, "production", admin.ChannelPatch{Public: ptr(true)})
	dev := deviceID()
	d := e.device(t, deviceConfig{AppID: app, DeviceID: dev})
	launch := d.launched()
	actions := []string{"app_moved_to_foreground", "app_moved_to_background", "webview_page_loaded"}
	for _, a := range actions {
		d.call("sendStats", m("action", a))
	}
	if _, ok := d.waitFor(5*time.Second, func(ev event) bool {
		return ev.str("event") == "stat_sent" && ev.str("action") == "webview_page_loaded"
	}); !ok {
		t.Fatalf("stats not acknowledged within 5s; exchanges %v", d.exchanges("/stats"))
	}
	var sent []string
	for _, b := range d.exchanges("/stats")[launch:] {
		if b.num("status") != 200 || !strings.HasPrefix(b.str("request"), "[") {
			t.Errorf("stats flush %v: want a JSON array answered 200", b)
		}
		sent = append(sent, statActions(b.str("request"))...)
	}
	if len(sent) != 3 {
		t.Errorf("flushed %v, want the 3 queued events once", sent)
	}
	if st := d.obj("state", nil); st["pending_stats"] != float64(0) {
		t.Errorf("pending stats after 2xx: %v", st["pending_stats"])
	}
	for _, a := range append(actions, "app_launch_start", "app_launch_ready") {
		e.waitRows(t, dev, a, 1)
	}
}

// fillStream takes the busy server's free stream slots, one event at a
// time until one is refused (429, or 503 from older builds), so the next
// events are refused until they age out (--stream-max-age).
func fillStream(t *testing.T, srv *server, app string) {
	t.Helper()
	for i := 0; i <= busySlots; i++ {
		body := fmt.Sprintf(`[{"app_id":%q,"device_id":"%s","platform":"android","action":"app_launch_ready","version_name":"1.0.0","version_build":"1.0.0","plugin_version":"8.51.23","timestamp":%d}]`,
			app, deviceID(), time.Now().UnixMilli())
		resp, err := http.Post(srv.URL+"/stats", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if i == 0 {
				t.Fatal("filling the stream: already full")
			}
			return
		}
		if resp.StatusCode != 200 {
			t.Fatalf("filling the stream: %d", resp.StatusCode)
		}
	}
	t.Fatalf("stream took more than %d events", busySlots)
}

// refused tells a stats exchange Capstan declined to store (429, or 503
// from older builds).
func refused(ex event) bool {
	return ex.num("status") == http.StatusTooManyRequests || ex.num("status") == http.StatusServiceUnavailable
}

// busySlots is what the busy server's stream holds: a launch's stats and
// a test's own event.
const busySlots = 4

// startBusy starts a capstan whose event stream holds busySlots events
// for 3s and has no consumer: a stats outage that clears by itself.
func (e *env) startBusy(t *testing.T) (*server, string) {
	srv := startServe(t, e.bin, "--consume=false", "--stream-max-msgs", strconv.Itoa(busySlots), "--stream-max-age", "3s",
		"--stream-duplicate-window", "1s")
	app := "com.conformance.busy"
	if _, err := srv.Admin.CreateApp(ctxT(t), app, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin.SetChannel(ctxT(t), app, "production", admin.ChannelPatch{Public: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	return srv, app
}

// While Capstan cannot store events the plugin keeps its batch (requeue)
// and sends it again once the outage ends; nothing is lost.
func (e *env) statsBackpressure(t *testing.T) {
	t.Parallel()
	srv, app := e.startBusy(t)
	d := newDevice(t, e.classpath, srv, deviceConfig{AppID: app, DeviceID: deviceID(), VersionBuild: "1.0.0"})
	d.launched()
	fillStream(t, srv, app)
	d.call("sendStats", m("action", "app_moved_to_foreground"))
	if _, ok := d.waitFor(15*time.Second, func(ev event) bool {
		return ev.str("event") == "stat_sent" && ev.str("action") == "app_moved_to_foreground"
	}); !ok {
		t.Fatalf("event never delivered; exchanges %v", d.exchanges("/stats"))
	}
	ex := d.statsWith("app_moved_to_foreground")
	if len(ex) < 2 || ex[0].num("status") < 400 {
		t.Fatalf("want a refused flush then a delivered one, got %v", ex)
	}
	first, last := ex[0], ex[len(ex)-1]
	if last.num("status") != 200 || first.str("request") != last.str("request") {
		t.Errorf("the delivered batch %q is not the refused one %q resent", last.str("request"), first.str("request"))
	}
	t.Logf("refused with %v (Retry-After %v), delivered after %d attempts", first["status"], first["retry_after"], len(ex))
}

// Events still queued when the app stops are persisted by shutdown() and
// sent by the next launch (restorePendingStats), once Capstan takes them.
func (e *env) statsPersistAcrossRestart(t *testing.T) {
	t.Parallel()
	srv, app := e.startBusy(t)
	cfg := deviceConfig{AppID: app, DeviceID: deviceID(), VersionBuild: "1.0.0", Root: t.TempDir()}
	d := newDevice(t, e.classpath, srv, cfg)
	d.launched()
	fillStream(t, srv, app)
	d.call("sendStats", m("action", "app_moved_to_background"))
	if _, ok := d.waitFor(5*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && ev.str("path") == "/stats" && refused(ev)
	}); !ok {
		t.Fatalf("flush not refused; exchanges %v", d.exchanges("/stats"))
	}
	time.Sleep(300 * time.Millisecond) // let the plugin requeue it
	d.call("shutdown", nil)
	if ex := d.statsWith("app_moved_to_background"); len(ex) != 1 || !refused(ex[0]) {
		t.Fatalf("flushes of the event before shutdown %v, want the refused one", ex)
	}
	again := newDevice(t, e.classpath, srv, cfg)
	_, ok := again.waitFor(15*time.Second, func(ev event) bool {
		return ev.str("event") == "http" && ev.str("path") == "/stats" && ev.num("status") == 200 &&
			contains(statActions(ev.str("request")), "app_moved_to_background")
	})
	if !ok {
		t.Fatalf("restarted app never delivered the event; exchanges %v", again.exchanges("/stats"))
	}
	var n int
	for _, ex := range again.statsWith("app_moved_to_background") {
		if ex.num("status") == 200 {
			for _, a := range statActions(ex.str("request")) {
				if a == "app_moved_to_background" {
					n++
				}
			}
		}
	}
	if n != 1 {
		t.Errorf("restarted app delivered app_moved_to_background %d times, want the persisted one once: %v", n, again.exchanges("/stats"))
	}
}

// A per-file (manifest) bundle: Capstan answers the manifest, the plugin's
// worker fetches each file from its download_url, checks its hash and
// assembles the bundle; a .br entry is stored decompressed under its name
// without .br, its hash being that of the decompressed file.
func (e *env) manifestDownload(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	files := webFiles("1.1.0")
	served := map[string]string{"index.html": files["index.html"], "assets/app.js.br": string(brotliCompress(t, files["assets/app.js"]))}
	cdn := newCDN(t, served)
	manifest := []release.ManifestEntry{
		{FileName: "index.html", FileHash: sha([]byte(files["index.html"])), DownloadURL: cdn.URL + "/index.html"},
		{FileName: "assets/app.js.br", FileHash: sha([]byte(files["assets/app.js"])), DownloadURL: cdn.URL + "/assets/app.js.br"},
	}
	if _, err := e.srv.Admin.UploadBundle(ctxT(t), app, admin.BundleMetadata{Version: "1.1.0", Manifest: manifest}, nil); err != nil {
		t.Fatalf("upload manifest bundle: %v", err)
	}
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.1.0"), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app})
	r := autoUpdateDone(t, d)
	if r["branch"] != "download" || response(r)["manifest"] == nil {
		t.Fatalf("branch %v answer %v, want a manifest download", r["branch"], response(r))
	}
	if f := d.notified("downloadFailed"); len(f) > 0 {
		t.Fatalf("manifest download failed: %v; plugin sent %v", f[0], d.sentActions())
	}
	next, _ := d.obj("state", nil)["next"].(map[string]any)
	if next == nil || next["version"] != "1.1.0" {
		t.Fatalf("next bundle %v, want 1.1.0", next)
	}
	got := d.obj("files", m("id", next["id"]))
	for name, content := range files {
		if got[name] != sha([]byte(content)) {
			t.Errorf("%s: %v, want %s (bundle files %v)", name, got[name], sha([]byte(content)), got)
		}
	}
	for _, a := range []string{"download_manifest_start", "download_manifest_complete"} {
		if !contains(d.sentActions(), a) {
			t.Errorf("no %s stat; sent %v", a, d.sentActions())
		}
	}
}

// brotliCompress uses Debian's brotli, as the Capgo CLI compresses
// manifest files before upload.
func brotliCompress(t *testing.T, content string) []byte {
	t.Helper()
	if _, err := exec.LookPath("brotli"); err != nil {
		t.Fatal("brotli not found: run `bash .ci/install-deps` (apt brotli)")
	}
	cmd := exec.Command("brotli", "--stdout", "-")
	cmd.Stdin = strings.NewReader(content)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("brotli: %v", err)
	}
	return out
}

// newCDN serves bundle files on loopback, where an operator's CDN would
// hold a manifest bundle's files (Capstan stores only the manifest).
func newCDN(t *testing.T, files map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(c))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func manifestOf(cdn *httptest.Server, files map[string]string) []release.ManifestEntry {
	var out []release.ManifestEntry
	for name, c := range files {
		out = append(out, release.ManifestEntry{FileName: name, FileHash: sha([]byte(c)), DownloadURL: cdn.URL + "/" + name, Size: int64(len(c))})
	}
	return out
}

func (e *env) uploadManifest(t *testing.T, app, version string, cdn *httptest.Server, files map[string]string) {
	t.Helper()
	meta := admin.BundleMetadata{Version: version, Manifest: manifestOf(cdn, files)}
	if _, err := e.srv.Admin.UploadBundle(ctxT(t), app, meta, nil); err != nil {
		t.Fatalf("upload manifest bundle: %v", err)
	}
}

// Once the offered bundle runs, the next check answers
// no_new_version_available (up_to_date) and nothing is downloaded.
func (e *env) upToDateAfterInstall(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	e.upload(t, app, "1.0.1")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app})
	install(t, d, "1.0.1")
	r := autoUpdateDone(t, d)
	if r["branch"] != "up_to_date" || response(r)["error"] != "no_new_version_available" {
		t.Errorf("check on 1.0.1: branch %v answer %v, want up_to_date no_new_version_available", r["branch"], response(r))
	}
	if reqs := d.exchanges("/updates"); !strings.Contains(reqs[len(reqs)-1].str("request"), `"version_name":"1.0.1"`) {
		t.Errorf("plugin did not report the running bundle: %s", reqs[len(reqs)-1].str("request"))
	}
	if infos := d.obj("state", nil)["bundle_infos"].([]any); len(infos) != 1 {
		t.Errorf("plugin holds %d bundles, want the one installed: %v", len(infos), infos)
	}
}
