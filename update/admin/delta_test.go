package admin

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

// A plain zip upload gets a manifest Capstan built: names relative to the
// zip's top folder, .br for files stored compressed, file_hash of each
// file as the device keeps it, and files unchanged between bundles
// stored as one object.
func TestUploadBuildsManifest(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.app"
	e.app(t, app)
	big := strings.Repeat("console.log('compressible');\n", 200)
	z1 := makeZip(t, zf{"www/index.html", "<html>v1</html>"}, zf{"www/assets/app.js", big}, zf{"www/logo.br", "not brotli"})
	b1, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(z1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	objects := map[string]string{}
	for _, m := range b1.Manifest {
		got[m.FileName] = m.FileHash
		objects[m.FileName] = m.Object
		if m.Object == "" || m.Size <= 0 || m.DownloadURL != "" {
			t.Errorf("entry %+v: want an object, a size and no stored url", m)
		}
	}
	want := map[string]string{
		"index.html":       sha([]byte("<html>v1</html>")),
		"assets/app.js.br": sha([]byte(big)),
		"logo.br.br":       sha([]byte("not brotli")), // the plugin strips one .br
	}
	for name, h := range want {
		if got[name] != h {
			t.Errorf("%s: hash %q, want %q (manifest %v)", name, got[name], h, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("manifest %v, want %v", got, want)
	}
	f, _, err := e.store.OpenFile(e.ctx, objects["assets/app.js.br"])
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(brotli.NewReader(f))
	f.Close()
	if err != nil || string(plain) != big {
		t.Fatalf("stored .br object does not decompress to the file: %v", err)
	}
	z2 := makeZip(t, zf{"index.html", "<html>v2</html>"}, zf{"assets/app.js", big})
	b2, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.1"}, bytes.NewReader(z2))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b2.Manifest {
		if m.FileName == "assets/app.js.br" && m.Object != objects["assets/app.js.br"] {
			t.Errorf("unchanged file stored again: %s vs %s", m.Object, objects["assets/app.js.br"])
		}
	}
	// Opting out keeps the zip only; a hand-set object is refused.
	b3, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.2", NoDelta: true}, bytes.NewReader(z2))
	if err != nil || len(b3.Manifest) != 0 {
		t.Fatalf("no_delta: %v, manifest %v", err, b3.Manifest)
	}
	meta := BundleMetadata{Version: "1.0.3", Manifest: b2.Manifest}
	_, err = e.client.UploadBundle(e.ctx, app, meta, nil)
	wantAPIError(t, err, 400, "invalid_manifest")
}
