package admin

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/capstan-io/capstan/update/release"
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
	// Opting out keeps the zip only; an object no part carries is refused.
	b3, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.2", NoDelta: true}, bytes.NewReader(z2))
	if err != nil || len(b3.Manifest) != 0 {
		t.Fatalf("no_delta: %v, manifest %v", err, b3.Manifest)
	}
	meta := BundleMetadata{Version: "1.0.3", Manifest: b2.Manifest}
	_, err = e.client.UploadBundle(e.ctx, app, meta, nil)
	wantAPIError(t, err, 400, "missing_object")
}

// An encrypted bundle gets delta only from per-file objects the upload
// carries (encrypted by the Capgo CLI, opaque to Capstan): stored and
// served like built ones, named by their SHA-256; without them the
// encrypted zip alone.
func TestUploadEncryptedObjects(t *testing.T) {
	e := newEnv(t, nil)
	const app = "com.example.enc"
	e.app(t, app)
	enc := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1024) // the encrypted zip
	objA, objB := bytes.Repeat([]byte{1, 2, 3}, 300), bytes.Repeat([]byte{4, 5}, 200)
	meta := BundleMetadata{Version: "1.0.0", SessionKey: "QUJDREVGR0hJSktMTU5PUA==:c2VjcmV0a2V5ZW5jcnlwdGVk",
		Checksum: strings.Repeat("5a", 256), KeyID: "MIIBCgKCAQEAv3Y0a1Mx",
		Manifest: []release.ManifestEntry{
			{FileName: "index.html", FileHash: "encrypted-hash-a", Object: sha(objA)},
			{FileName: "app.js.br", FileHash: "encrypted-hash-b", Object: strings.ToUpper(sha(objB))},
		}}
	b, err := e.client.UploadBundleObjects(e.ctx, app, meta, bytes.NewReader(enc), []io.Reader{bytes.NewReader(objA), bytes.NewReader(objB), bytes.NewReader(objA)})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Manifest) != 2 || b.Manifest[1].Object != sha(objB) || b.Manifest[1].Size != int64(len(objB)) || b.ObjectSHA256 != sha(enc) {
		t.Fatalf("bundle %+v", b)
	}
	f, _, err := e.store.OpenFile(e.ctx, sha(objB))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, objB) {
		t.Fatal("stored object differs from the part")
	}
	// Without objects an encrypted upload has no manifest: the zip only.
	plainMeta := meta
	plainMeta.Version, plainMeta.Manifest = "1.0.1", nil
	b, err = e.client.UploadBundle(e.ctx, app, plainMeta, bytes.NewReader(enc))
	if err != nil || len(b.Manifest) != 0 {
		t.Fatalf("encrypted zip upload: %v, manifest %v", err, b.Manifest)
	}
	// A part no entry names is refused, and nothing is stored.
	meta.Version = "1.0.2"
	_, err = e.client.UploadBundleObjects(e.ctx, app, meta, nil, []io.Reader{bytes.NewReader(objA), bytes.NewReader(objB), bytes.NewReader([]byte("stray"))})
	wantAPIError(t, err, 400, "unused_object")
}

// A zip whose built manifest would not fit in one record (a NATS with a
// small max_payload) is stored as its zip alone, not refused.
func TestUploadDeltaTooLargeFallsBackToZip(t *testing.T) {
	e, _ := newSmallPayloadEnv(t, 256<<10)
	const app = "com.example.big"
	e.app(t, app)
	files := []zf{{"index.html", "<html>"}}
	for i := range 1500 {
		files = append(files, zf{fmt.Sprintf("assets/module-%04d.js", i), fmt.Sprintf("export default %d;", i)})
	}
	z := makeZip(t, files...)
	b, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Manifest) != 0 || b.ObjectSHA256 != sha(z) {
		t.Fatalf("bundle with %d manifest entries, sha %s; want the zip alone", len(b.Manifest), b.ObjectSHA256)
	}
}
