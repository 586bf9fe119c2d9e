package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/capstan-io/capstan/update/release"
)

func TestTakesManifest(t *testing.T) {
	for v, want := range map[string]bool{
		"8.51.23": true, "8.0.0": true, "7.0.30": true, "7.0.29": false, "7.34.0": true,
		"6.25.0": true, "6.24.9": false, "5.10.0": true, "5.9.9": false, "4.99.0": false,
		"9.0.0": false, // npm's mislabelled copy of 5.0
		"":      false, "junk": false,
	} {
		if got := TakesManifest(v); got != want {
			t.Errorf("TakesManifest(%q) = %v, want %v", v, got, want)
		}
	}
}

// A bundle Capstan stores as zip and files offers the manifest, with
// download URLs on the front's public URL, only to plugins that take it.
func TestSuccessBodyManifest(t *testing.T) {
	stored := &release.Bundle{AppID: "com.x", Version: "1.0.1", Checksum: "c", Object: "o",
		Manifest: []release.ManifestEntry{{FileName: "app.js.br", FileHash: "h", Object: "abc", Size: 3}}}
	hand := &release.Bundle{AppID: "com.x", Version: "1.0.2", Checksum: "c",
		Manifest: []release.ManifestEntry{{FileName: "index.html", FileHash: "h", DownloadURL: "https://cdn/x"}}}
	for _, c := range []struct {
		name, plugin string
		b            *release.Bundle
		wantURL      string // "" when no manifest
	}{
		{"stored, current plugin", "8.51.23", stored, "https://u.example/files/abc"},
		{"stored, old plugin gets the zip", "6.0.0", stored, ""},
		{"operator manifest, any plugin", "6.0.0", hand, "https://cdn/x"},
	} {
		var got struct {
			URL      string `json:"url"`
			Manifest []struct {
				DownloadURL string `json:"download_url"`
			} `json:"manifest"`
		}
		body := successBody(c.b, "https://u.example/", sendsManifest(c.b, c.plugin))
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v in %s", c.name, err, body)
		}
		if got.URL != BundleURL("https://u.example", c.b) {
			t.Errorf("%s: url %q", c.name, got.URL)
		}
		switch {
		case c.wantURL == "" && got.Manifest != nil:
			t.Errorf("%s: manifest sent: %s", c.name, body)
		case c.wantURL != "" && (len(got.Manifest) != 1 || got.Manifest[0].DownloadURL != c.wantURL):
			t.Errorf("%s: manifest %s, want download_url %s", c.name, body, c.wantURL)
		}
	}
}

// GET /files/{sha} serves a stored delta file with its digest as ETag,
// ranges for resumed downloads, and 404 for unknown or malformed names.
func TestFileDownload(t *testing.T) {
	s, _, _ := bundleTestStore(t)
	content := bytes.Repeat([]byte("delta file "), 500)
	h := sha256.Sum256(content)
	sha := hex.EncodeToString(h[:])
	src := release.FileSource{SHA256: sha, Size: int64(len(content)), Open: func() (io.Reader, error) { return bytes.NewReader(content), nil }}
	b := release.Bundle{AppID: "com.example.app", Version: "4.0.0",
		Manifest: []release.ManifestEntry{{FileName: "index.html", FileHash: sha, Object: sha, Size: src.Size}}}
	if err := s.CreateBundleFiles(context.Background(), b, nil, []release.FileSource{src}); err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Handle("/files/{sha}", FileHandler(s, nil))
	rec := bundleDo(r, "GET", "/files/"+sha, nil)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), content) || rec.Header().Get("ETag") != `"`+sha+`"` {
		t.Fatalf("GET: %d, %d bytes, headers %v", rec.Code, rec.Body.Len(), rec.Header())
	}
	rec = bundleDo(r, "GET", "/files/"+sha, map[string]string{"Range": "bytes=100-"})
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), content[100:]) {
		t.Fatalf("resume: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	rec = bundleDo(r, "GET", "/files/"+sha, map[string]string{"If-None-Match": `"` + sha + `"`})
	if rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", rec.Code)
	}
	for _, p := range []string{"/files/" + strings.Repeat("0", 64), "/files/..%2F..%2Fetc", "/files/abc"} {
		if rec := bundleDo(r, "GET", p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
}
