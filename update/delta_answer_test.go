package update

import (
	"encoding/json"
	"testing"

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
