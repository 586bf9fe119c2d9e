package update

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/capstan-io/capstan/update/release"
)

func TestManifestSizes(t *testing.T) {
	snap := fixture([]release.Channel{baseChannel()}, func(b *release.Builder) {
		b.PutBundle(release.Bundle{AppID: testApp, Version: "3.0.0", Manifest: []release.ManifestEntry{
			{FileName: "index.html", FileHash: "aa", DownloadURL: "https://cdn.example/index.html", Size: 120},
			{FileName: "app.js.br", FileHash: "bb", DownloadURL: "https://cdn.example/app.js.br", Size: 3400},
			{FileName: "logo.png", FileHash: "cc", DownloadURL: "https://cdn.example/logo.png"},
		}})
	})
	s := func(v string) *string { return &v }
	entry := func(name, hash string) SizeEntry {
		return SizeEntry{FileName: s(name), FileHash: s(hash), DownloadURL: s("https://cdn.example/" + name)}
	}
	all := []SizeEntry{entry("index.html", "AA"), entry("app.js.br", "bb"), entry("logo.png", "cc"), entry("app.js.br", "zz"), entry("gone.js", "dd"), {}}
	got := ManifestSizes(snap, testApp, "3.0.0", all)
	if got.TotalSize != 3520 || got.KnownFiles != 2 || got.UnknownFiles != 4 || len(got.Files) != 6 {
		t.Fatalf("%+v", got)
	}
	wantErr := []string{"", "", SizeNotRecorded, SizeUnknownFile, SizeUnknownFile, SizeUnknownFile}
	for i, f := range got.Files {
		if f.Error != wantErr[i] || (f.Error == "") != (f.Size != nil) {
			t.Errorf("file %d: %+v, want error %q", i, f, wantErr[i])
		}
	}
	if *got.Files[0].FileName != "index.html" || *got.Files[0].Size != 120 {
		t.Errorf("entry not echoed with its size: %+v", got.Files[0])
	}
	if u := ManifestSizes(snap, testApp, "9.9.9", all[:2]); u.KnownFiles != 0 || u.UnknownFiles != 2 || u.Files[0].Error != SizeUnknownBundle {
		t.Errorf("unknown bundle: %+v", u)
	}
	if e := ManifestSizes(snap, testApp, "3.0.0", nil); e.Files == nil || e.UnknownFiles != 0 {
		t.Errorf("empty manifest: %+v", e)
	}
}

func TestServeManifestSize(t *testing.T) {
	ts := newTestServer(t, fixture([]release.Channel{baseChannel()}, func(b *release.Builder) {
		b.PutBundle(release.Bundle{AppID: testApp, Version: "3.0.0", Manifest: []release.ManifestEntry{
			{FileName: "index.html", FileHash: "aa", DownloadURL: "https://cdn.example/index.html", Size: 120},
		}})
	}), 0)
	body := []byte(`{"app_id":"com.example.app","device_id":"x","platform":"android","version":"3.0.0",
		"manifest":[{"file_name":"index.html","file_hash":"aa","download_url":"https://cdn.example/index.html"}]}`)
	rec := ts.do(http.MethodPost, "/updates/manifest_size", body, nil)
	var got SizeAnswer
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.TotalSize != 120 || got.KnownFiles != 1 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := ts.do(http.MethodPost, "/updates/manifest_size", []byte(`{"manifest":"x"}`), nil); rec.Code != 400 {
		t.Fatalf("bad body: %d %s", rec.Code, rec.Body)
	}
	if rec := ts.do(http.MethodGet, "/updates/manifest_size", nil, nil); rec.Code != 405 {
		t.Fatalf("GET: %d", rec.Code)
	}
}
