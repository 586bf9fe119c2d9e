package conformance

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capstan-io/capstan/update/admin"
)

// deltaFiles is a bundle whose index.html names its version; the other
// files never change, two of them large enough to be stored as .br.
func deltaFiles(version string) map[string]string {
	return map[string]string{
		"index.html":       "<!doctype html><title>" + version + "</title>",
		"assets/app.js":    strings.Repeat("console.log('app');\n", 400),
		"assets/vendor.js": strings.Repeat("export const vendor = 42;\n", 400),
		"assets/tiny.css":  "body{margin:0}",
	}
}

// fileFetches are the /files/ downloads the plugin made after the first
// `after` events.
func fileFetches(d *device, after int) []string {
	var out []string
	for _, e := range d.snapshot()[after:] {
		if e.str("event") == "http" && strings.HasPrefix(e.str("path"), "/files/") && e.num("status") == 200 {
			out = append(out, strings.TrimPrefix(e.str("path"), "/files/"))
		}
	}
	return out
}

// fileDownloads reads the front's count of files it served with 200.
func (e *env) fileDownloads(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get(e.srv.Metrics + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var n float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "capstan_http_requests_total{") && strings.Contains(line, `handler="files"`) && strings.Contains(line, `code="200"`) {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			n += v
		}
	}
	return n
}

// A plain zip upload is offered to this plugin as the manifest Capstan
// built: the plugin fetches each file, .br ones decompressed and checked
// against file_hash. Once 1.0.1 is installed, 1.0.2 changes one file, and
// the plugin downloads only that one, taking the others from its cache.
func (e *env) deltaReusesFiles(t *testing.T) {
	t.Parallel()
	app := e.newApp(t)
	upload := func(version string) []byte {
		z := bundleZip(t, deltaFiles(version))
		b, err := e.srv.Admin.UploadBundle(ctxT(t), app, admin.BundleMetadata{Version: version}, bytes.NewReader(z))
		if err != nil {
			t.Fatalf("upload %s: %v", version, err)
		}
		brs := 0
		for _, m := range b.Manifest {
			if strings.HasSuffix(m.FileName, ".br") {
				brs++
			}
		}
		if len(b.Manifest) != 4 || brs != 2 {
			t.Fatalf("manifest of %s: %+v, want 4 files, 2 of them .br", version, b.Manifest)
		}
		return z
	}
	upload("1.0.1")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.1"), Public: ptr(true)})
	d := e.device(t, deviceConfig{AppID: app})

	check := func(version string) (fetched []string) {
		t.Helper()
		before := len(d.snapshot())
		r := autoUpdate(t, d)
		if r["branch"] != "download" || response(r)["manifest"] == nil || response(r)["url"] == nil {
			t.Fatalf("branch %v answer %v, want a manifest download with a url", r["branch"], response(r))
		}
		// Only this download's end counts: the last one's setNext is there too.
		_, ok := d.waitFor(20*time.Second, func(ev event) bool {
			if ev.str("event") != "notify" || ev.str("name") != "setNext" && ev.str("name") != "downloadFailed" {
				return false
			}
			return ev.str("name") == "downloadFailed" || strings.Contains(fmt.Sprint(ev), version)
		})
		if !ok {
			t.Fatalf("download of %s did not finish within 20s", version)
		}
		id := activateNext(t, d, version)
		got := d.obj("files", m("id", id))
		for name, content := range deltaFiles(version) {
			if got[name] != sha([]byte(content)) {
				t.Errorf("%s %s: %v, want %s (files %v)", version, name, got[name], sha([]byte(content)), got)
			}
		}
		for _, a := range []string{"download_manifest_start", "download_manifest_complete"} {
			if !contains(d.sentActions(), a) {
				t.Errorf("no %s stat; sent %v", a, d.sentActions())
			}
		}
		return fileFetches(d, before)
	}
	// No other scenario downloads /files, so the server's count is this
	// device's alone.
	served := e.fileDownloads(t)
	if got := check("1.0.1"); len(got) != 4 {
		t.Fatalf("first install fetched %v, want all 4 files", got)
	}
	if n := e.fileDownloads(t) - served; n != 4 {
		t.Errorf("server served %v files during the first install, want 4", n)
	}

	upload("1.0.2")
	e.channel(t, app, "production", admin.ChannelPatch{Bundle: ptr("1.0.2")})
	served = e.fileDownloads(t)
	got := check("1.0.2")
	if n := e.fileDownloads(t) - served; n != 1 {
		t.Errorf("server served %v files during the second install, want 1", n)
	}
	want := sha([]byte(deltaFiles("1.0.2")["index.html"])) // stored raw: too small for brotli
	if len(got) != 1 || got[0] != want {
		t.Fatalf("second install fetched %v, want only the changed index.html (%s)", got, want)
	}
}
