// Package delta builds the per-file manifest of a plain bundle zip: each
// file hashed, brotli-compressed where that pays, and spooled for storage.
package delta

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"

	"github.com/capstan-io/capstan/update/release"
)

// Quality is the brotli quality files are compressed at: close to the
// best ratio for web assets at a tenth of quality 11's time.
const Quality = 9

// minCompress is the smallest file worth compressing: below it brotli's
// framing eats most of the gain and the plugin spends a decoder per file.
const minCompress = 512

// Build is the manifest of one bundle and the bytes of its distinct files,
// spooled in one temporary file; Close removes it.
type Build struct {
	Manifest []release.ManifestEntry
	Files    []release.FileSource
	// Bytes is the sum of the stored files' sizes.
	Bytes int64
	spool *os.File
}

// Close removes the spool file.
func (b *Build) Close() {
	if b != nil && b.spool != nil {
		b.spool.Close()
		os.Remove(b.spool.Name())
		b.spool = nil
	}
}

// writers are reused: a new brotli writer allocates and clears tens of
// megabytes of hash tables, most of the time of compressing a small file.
var writers = sync.Pool{New: func() any { return brotli.NewWriterLevel(nil, Quality) }}

// Compress decides how one file is stored: brotli-compressed (stored name
// name+".br") when that saves at least a tenth and the file is not tiny,
// and always for a name already ending in .br, since the plugin strips one
// .br and decompresses whatever carries it.
func Compress(name string, content []byte) (stored []byte, brotliName bool, err error) {
	forced := strings.HasSuffix(name, ".br")
	if !forced && len(content) < minCompress {
		return content, false, nil
	}
	var buf bytes.Buffer
	w := writers.Get().(*brotli.Writer)
	defer writers.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(content); err != nil {
		return nil, false, fmt.Errorf("brotli %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return nil, false, fmt.Errorf("brotli %s: %w", name, err)
	}
	if forced || buf.Len() <= len(content)-len(content)/10 {
		return buf.Bytes(), true, nil
	}
	return content, false, nil
}

// FromZip reads a validated plain bundle zip whose files lie under root
// ("" or "dist/", bundlezip.Info.Root) and returns its manifest, with
// file names relative to root, file_hash the SHA-256 of each file as the
// device stores it, and Object the SHA-256 of the bytes served.
func FromZip(r io.ReaderAt, size int64, root, tempDir string) (*Build, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("delta: read zip: %w", err)
	}
	spool, err := os.CreateTemp(tempDir, "capstan-delta-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("delta: spool: %w", err)
	}
	b := &Build{spool: spool}
	seen := map[string]bool{}
	var off int64
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") || !strings.HasPrefix(f.Name, root) {
			continue
		}
		name := strings.TrimPrefix(f.Name, root)
		content, err := readFile(f)
		if err != nil {
			b.Close()
			return nil, err
		}
		fileHash := sha256.Sum256(content)
		stored, br, err := Compress(name, content)
		if err != nil {
			b.Close()
			return nil, err
		}
		object := sha256.Sum256(stored)
		obj := hex.EncodeToString(object[:])
		entry := release.ManifestEntry{FileName: name, FileHash: hex.EncodeToString(fileHash[:]), Size: int64(len(stored)), Object: obj}
		if br {
			entry.FileName += ".br"
		}
		b.Manifest = append(b.Manifest, entry)
		if seen[obj] {
			continue
		}
		seen[obj] = true
		if _, err := spool.Write(stored); err != nil {
			b.Close()
			return nil, fmt.Errorf("delta: spool: %w", err)
		}
		start, n := off, int64(len(stored))
		off += n
		b.Bytes += n
		b.Files = append(b.Files, release.FileSource{
			SHA256: obj, Size: n,
			Open: func() (io.Reader, error) { return io.NewSectionReader(spool, start, n), nil },
		})
	}
	return b, nil
}

func readFile(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("delta: open %s: %w", f.Name, err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("delta: read %s: %w", f.Name, err)
	}
	return out, nil
}
