package admin

import (
	"archive/zip"
	"bytes"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"github.com/capstan-io/capstan/update/release"
)

// webBundle is a deterministic web bundle of about 5 MB: 40 JavaScript
// chunks and 10 stylesheets of generated source text (compressible like
// minified code) and 20 images of random bytes (incompressible), plus
// index.html. changed rewrites chunk 7 only.
func webBundle(changed bool) map[string][]byte {
	words := strings.Fields("function return const let var if else for while this new class extends import export default async await null undefined true false window document addEventListener querySelector map filter reduce push length props state render component")
	text := func(seed uint64, n int) []byte {
		r := rand.New(rand.NewPCG(seed, 1))
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteString([]string{"(", ")", "{", "}", ";", ".", "=", ",", " "}[r.IntN(9)])
			if r.IntN(9) == 0 {
				fmt.Fprintf(&b, "%x", r.Uint32())
			}
		}
		return b.Bytes()[:n]
	}
	files := map[string][]byte{"index.html": []byte("<!doctype html><script src=assets/main.js></script>")}
	for i := range 40 {
		seed := uint64(i)
		if changed && i == 7 {
			seed = 1000
		}
		files[fmt.Sprintf("assets/chunk-%02d.js", i)] = text(seed, 75_000)
	}
	for i := range 10 {
		files[fmt.Sprintf("assets/style-%d.css", i)] = text(uint64(100+i), 20_000)
	}
	for i := range 20 {
		r := rand.New(rand.NewPCG(uint64(200+i), 2))
		img := make([]byte, 90_000)
		for j := range img {
			img[j] = byte(r.Uint32())
		}
		files[fmt.Sprintf("img/photo-%02d.jpg", i)] = img
	}
	return files
}

func zipOf(tb testing.TB, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write(content)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// deltaBytes is what a device holding the files of have downloads for
// want: the entries whose cache key, as the plugin forms it (file_hash
// and the base name without .br), it lacks.
func deltaBytes(have, want []release.ManifestEntry) int64 {
	key := func(m release.ManifestEntry) string {
		return m.FileHash + "_" + path.Base(strings.TrimSuffix(m.FileName, ".br"))
	}
	cached := map[string]bool{}
	for _, m := range have {
		cached[key(m)] = true
	}
	var n int64
	for _, m := range want {
		if !cached[key(m)] {
			n += m.Size
		}
	}
	return n
}

// BenchmarkDeltaDownload uploads a 5 MB bundle and the same bundle with
// one 75 kB chunk changed, and reports the bytes a device downloads for
// the second: the zip against the one file the manifest makes it fetch.
func BenchmarkDeltaDownload(b *testing.B) {
	e := newEnv(b, nil)
	const app = "com.bench.delta"
	if _, err := e.client.CreateApp(e.ctx, app, ""); err != nil {
		b.Fatal(err)
	}
	v1, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.0"}, bytes.NewReader(zipOf(b, webBundle(false))))
	if err != nil {
		b.Fatal(err)
	}
	v2, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "1.0.1"}, bytes.NewReader(zipOf(b, webBundle(true))))
	if err != nil {
		b.Fatal(err)
	}
	var raw int64
	for _, c := range webBundle(true) {
		raw += int64(len(c))
	}
	var change int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		change = deltaBytes(v1.Manifest, v2.Manifest)
	}
	b.ReportMetric(float64(raw), "files-bytes")
	b.ReportMetric(float64(v2.Size), "zip-bytes")
	b.ReportMetric(float64(deltaBytes(nil, v2.Manifest)), "delta-first-install-bytes")
	b.ReportMetric(float64(change), "delta-one-change-bytes")
}

// manyFiles is a bundle of n small text files (about 1 kB each), all
// different from those of another seed.
func manyFiles(n int, seed uint64) map[string][]byte {
	r := rand.New(rand.NewPCG(seed, 3))
	files := map[string][]byte{"index.html": []byte("<!doctype html>")}
	for i := range n - 1 {
		line := fmt.Sprintf("export const v%d = %q; // %x\n", i, strings.Repeat("x", 20), r.Uint64())
		files[fmt.Sprintf("assets/%02d/m%04d.js", i%50, i)] = []byte(strings.Repeat(line, 16))
	}
	return files
}

// BenchmarkUpload5000Files times POST /apps/{app}/bundles of a zip with
// 5,000 files through the admin API into a real embedded JetStream:
// "new" has every file new (stored and recorded), "unchanged" re-uploads
// the same files as a new version (each claimed, none stored again).
func BenchmarkUpload5000Files(b *testing.B) {
	for _, mode := range []string{"new", "unchanged"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, func(c *Config) { c.MaxUploadBytes = 1 << 30 })
			app := "com.bench.upload." + mode
			if _, err := e.client.CreateApp(e.ctx, app, ""); err != nil {
				b.Fatal(err)
			}
			same := zipOf(b, manyFiles(5000, 0))
			if mode == "unchanged" {
				if _, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: "0.0.1"}, bytes.NewReader(same)); err != nil {
					b.Fatal(err)
				}
			}
			zips := make([][]byte, b.N)
			for i := range zips {
				zips[i] = same
				if mode == "new" {
					zips[i] = zipOf(b, manyFiles(5000, uint64(i+1)))
				}
			}
			b.SetBytes(int64(len(same)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bd, err := e.client.UploadBundle(e.ctx, app, BundleMetadata{Version: fmt.Sprintf("1.0.%d", i)}, bytes.NewReader(zips[i]))
				if err != nil {
					b.Fatal(err)
				}
				if len(bd.Manifest) != 5000 {
					b.Fatalf("manifest of %d files", len(bd.Manifest))
				}
			}
		})
	}
}
