package bundlezip

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name string
	body string
	mode fs.FileMode // 0 = regular file / folder by name
}

func buildZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func files(names ...string) []entry {
	out := make([]entry, len(names))
	for i, n := range names {
		out[i] = entry{name: n, body: "x"}
	}
	return out
}

func TestValidate(t *testing.T) {
	lim := Limits{MaxFiles: 5, MaxUncompressedBytes: 1000}
	many := files("index.html", "a.js", "b.js", "c.js", "d.js", "e.js")
	tests := []struct {
		name     string
		zip      []byte
		wantCode string
		wantRoot string
	}{
		{"index at root", buildZip(t, files("index.html", "assets/app.js")...), "", ""},
		{"index in single top folder", buildZip(t, files("dist/index.html", "dist/assets/app.js")...), "", "dist/"},
		{"top folder with folder entry", buildZip(t, entry{name: "dist/"}, entry{name: "dist/index.html", body: "<html>"}), "", "dist/"},
		{"two top folders", buildZip(t, files("dist/index.html", "other/a.js")...), CodeMissingIndex, ""},
		{"macOS junk next to top folder", buildZip(t, files("dist/index.html", "__MACOSX/dist/._index.html")...), CodeMissingIndex, ""},
		{"top folder plus root file", buildZip(t, files("dist/index.html", "README")...), CodeMissingIndex, ""},
		{"no index", buildZip(t, files("main.js", "assets/app.js")...), CodeMissingIndex, ""},
		{"index too deep", buildZip(t, files("a/b/index.html")...), CodeMissingIndex, ""},
		{"index.html is a folder", buildZip(t, entry{name: "index.html/"}, entry{name: "index.html/x", body: "x"}), CodeMissingIndex, ""},
		{"empty zip", buildZip(t), CodeMissingIndex, ""},
		{"parent traversal", buildZip(t, files("index.html", "../evil.js")...), CodeUnsafePath, ""},
		{"nested traversal", buildZip(t, files("index.html", "a/../../evil.js")...), CodeUnsafePath, ""},
		{"absolute path", buildZip(t, files("index.html", "/etc/passwd")...), CodeUnsafePath, ""},
		{"backslash", buildZip(t, files("index.html", `..\evil.js`)...), CodeUnsafePath, ""},
		{"drive letter", buildZip(t, files("index.html", "C:/evil.js")...), CodeUnsafePath, ""},
		{"dot segment", buildZip(t, files("./index.html")...), CodeUnsafePath, ""},
		{"empty segment", buildZip(t, files("index.html", "a//b.js")...), CodeUnsafePath, ""},
		{"NUL in name", buildZip(t, files("index.html", "a\x00.js")...), CodeUnsafePath, ""},
		{"newline in name", buildZip(t, files("index.html", "a\nb.js")...), CodeUnsafePath, ""},
		{"DEL in name", buildZip(t, files("index.html", "a\x7fb.js")...), CodeUnsafePath, ""},
		{"tab in name", buildZip(t, files("index.html", "a\tb.js")...), CodeUnsafePath, ""},
		{"symlink", buildZip(t, entry{name: "index.html", body: "x"}, entry{name: "link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), CodeUnsafePath, ""},
		{"duplicate entry", buildZip(t, files("index.html", "index.html")...), CodeInvalidZip, ""},
		{"too many files", buildZip(t, many...), CodeTooManyFiles, ""},
		{"folders do not count as files", buildZip(t, append(files("index.html", "a.js", "b.js", "c.js", "d.js"), entry{name: "x/"}, entry{name: "y/"})...), "", ""},
		{"too large", buildZip(t, entry{name: "index.html", body: strings.Repeat("a", 1001)}), CodeTooLarge, ""},
		{"not a zip", []byte("this is not a zip file at all, just text"), CodeInvalidZip, ""},
		{"empty input", nil, CodeInvalidZip, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Validate(bytes.NewReader(tc.zip), int64(len(tc.zip)), lim)
			if got := Code(err); got != tc.wantCode {
				t.Fatalf("code = %q (err %v), want %q", got, err, tc.wantCode)
			}
			if err == nil && info.Root != tc.wantRoot {
				t.Fatalf("root = %q, want %q", info.Root, tc.wantRoot)
			}
		})
	}
}

func TestValidateSizeLie(t *testing.T) {
	// Rewrite a stored entry's declared sizes (local header and central
	// directory) to claim fewer bytes than it holds.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "index.html", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(strings.Repeat("A", 100)))
	zw.Close()
	data := buf.Bytes()
	// Sizes appear as little-endian uint32 100 in the data descriptor and
	// central directory; claim 10 instead.
	patched := bytes.ReplaceAll(data, []byte{100, 0, 0, 0, 100, 0, 0, 0}, []byte{10, 0, 0, 0, 10, 0, 0, 0})
	if bytes.Equal(patched, data) {
		t.Fatal("test zip layout changed; patch did not apply")
	}
	_, err = Validate(bytes.NewReader(patched), int64(len(patched)), Limits{MaxFiles: 10, MaxUncompressedBytes: 50})
	if Code(err) != CodeInvalidZip {
		t.Fatalf("got %v, want invalid_zip", err)
	}
}

func TestValidateCorruptData(t *testing.T) {
	z := buildZip(t, entry{name: "index.html", body: strings.Repeat("hello world ", 50)})
	// Flip a byte inside the compressed data (just after the 30-byte local
	// header and the 10-byte name).
	z[45] ^= 0xff
	_, err := Validate(bytes.NewReader(z), int64(len(z)), DefaultLimits())
	if Code(err) != CodeInvalidZip {
		t.Fatalf("got %v, want invalid_zip", err)
	}
}

func TestErrorsIs(t *testing.T) {
	z := buildZip(t, files("index.html", "../x")...)
	_, err := Validate(bytes.NewReader(z), int64(len(z)), DefaultLimits())
	if !errors.Is(err, ErrUnsafePath) || errors.Is(err, ErrInvalidZip) {
		t.Fatalf("errors.Is mismatch for %v", err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestZipDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.html"), "<html></html>")
	writeFile(t, filepath.Join(dir, "assets", "b.js"), "b")
	writeFile(t, filepath.Join(dir, "assets", "a.js"), "a")
	writeFile(t, filepath.Join(dir, ".well-known", "x"), "hidden")
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("assets/a.js", filepath.Join(dir, "alias.js")); err != nil {
		t.Fatal(err)
	}

	var one, two bytes.Buffer
	if err := ZipDir(dir, &one); err != nil {
		t.Fatal(err)
	}
	if err := ZipDir(dir, &two); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Fatal("ZipDir is not deterministic")
	}
	zr, err := zip.NewReader(bytes.NewReader(one.Bytes()), int64(one.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := ".well-known/x alias.js assets/a.js assets/b.js empty/ index.html"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("entries = %q, want %q", got, want)
	}
	info, err := Validate(bytes.NewReader(one.Bytes()), int64(one.Len()), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if info.Root != "" || info.Files != 5 {
		t.Fatalf("info = %+v", info)
	}
}

func TestZipDirRefusesEscapingSymlink(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), "s")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.html"), "x")
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "leak")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ZipDir(dir, &buf); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("err = %v, want refusal", err)
	}
}

func TestZipDirRefusesSymlinkedFolder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "index.html"), "x")
	writeFile(t, filepath.Join(dir, "real", "a.js"), "a")
	if err := os.Symlink("real", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ZipDir(dir, &buf); err == nil {
		t.Fatal("want error for symlinked folder")
	}
}

func TestZipDirNotADir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	writeFile(t, f, "x")
	if err := ZipDir(f, &bytes.Buffer{}); err == nil {
		t.Fatal("want error")
	}
}
