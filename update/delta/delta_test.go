package delta

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func TestCompress(t *testing.T) {
	text := []byte(strings.Repeat("const a = 1;\n", 200))
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	for _, c := range []struct {
		name    string
		file    string
		content []byte
		br      bool
	}{
		{"compressible text", "a.js", text, true},
		{"tiny file stays raw", "a.js", []byte("x=1"), false},
		{"empty file stays raw", "a.js", nil, false},
		{"a .br name is always compressed", "x.br", []byte("x"), true},
		{"incompressible stays raw", "p.jpg", random, false},
	} {
		stored, br, err := Compress(c.file, c.content)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if br != c.br {
			t.Errorf("%s: brotli %v, want %v", c.name, br, c.br)
			continue
		}
		if !br {
			if !bytes.Equal(stored, c.content) {
				t.Errorf("%s: raw bytes changed", c.name)
			}
			continue
		}
		plain, err := io.ReadAll(brotli.NewReader(bytes.NewReader(stored)))
		if err != nil || !bytes.Equal(plain, c.content) {
			t.Errorf("%s: does not decompress to the file: %v", c.name, err)
		}
	}
}

func TestFromZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := map[string]string{"dist/index.html": "<html>", "dist/a.js": strings.Repeat("a();", 300), "dist/b.js": strings.Repeat("a();", 300)}
	for n, c := range files {
		w, _ := zw.Create(n)
		w.Write([]byte(c))
	}
	zw.Create("dist/empty-dir/")
	zw.Close()
	b, err := FromZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "dist/", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	names := map[string]string{}
	for _, m := range b.Manifest {
		names[m.FileName] = m.FileHash
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for n, want := range map[string]string{"index.html": sum("<html>"), "a.js.br": sum(files["dist/a.js"]), "b.js.br": sum(files["dist/b.js"])} {
		if names[n] != want {
			t.Errorf("%s: hash %q, want %q (manifest %v)", n, names[n], want, names)
		}
	}
	// a.js and b.js have the same bytes: one object.
	if len(b.Manifest) != 3 || len(b.Files) != 2 {
		t.Fatalf("%d entries, %d files; want 3 and 2", len(b.Manifest), len(b.Files))
	}
	for _, f := range b.Files {
		r, _ := f.Open()
		got, _ := io.ReadAll(r)
		h := sha256.Sum256(got)
		if hex.EncodeToString(h[:]) != f.SHA256 || int64(len(got)) != f.Size {
			t.Errorf("file %s: spooled bytes do not match", f.SHA256)
		}
	}
}
