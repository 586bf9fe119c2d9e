// Package bundlezip checks that an uploaded web bundle is a zip the
// updater plugin can install safely, and zips a directory into one.
package bundlezip

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Machine codes of validation errors, also used as API error codes.
const (
	CodeInvalidZip   = "invalid_zip"
	CodeMissingIndex = "missing_index_html"
	CodeUnsafePath   = "unsafe_path"
	CodeTooManyFiles = "too_many_files"
	CodeTooLarge     = "too_large"
)

// Error is a validation failure with a machine code.
type Error struct {
	Code string
	Msg  string
	Err  error // cause, may be nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches any *Error with the same code, so errors.Is(err, ErrUnsafePath) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; the returned errors carry details.
var (
	ErrInvalidZip   = &Error{Code: CodeInvalidZip, Msg: "not a valid zip file"}
	ErrMissingIndex = &Error{Code: CodeMissingIndex, Msg: "index.html missing"}
	ErrUnsafePath   = &Error{Code: CodeUnsafePath, Msg: "unsafe entry"}
	ErrTooManyFiles = &Error{Code: CodeTooManyFiles, Msg: "too many files"}
	ErrTooLarge     = &Error{Code: CodeTooLarge, Msg: "too large"}
)

// Code returns the machine code of a validation error, "" for other errors.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Limits bound what an upload may unpack to on a device.
type Limits struct {
	// MaxFiles is the largest number of file entries (directories excluded).
	MaxFiles int
	// MaxUncompressedBytes bounds the sum of the files' uncompressed sizes.
	MaxUncompressedBytes int64
}

// DefaultLimits suits ordinary Capacitor web bundles.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 20000, MaxUncompressedBytes: 1 << 30}
}

// Info describes a valid bundle zip.
type Info struct {
	// Files is the number of file entries.
	Files int
	// UncompressedBytes is the total size of the files once unzipped.
	UncompressedBytes int64
	// Root is "" when index.html is at the root, else the single top
	// folder holding it, with a trailing slash ("dist/").
	Root string
}

// Validate reads the zip in r and checks it the way the plugin will unpack
// it: index.html at the root or in a single top folder, no entry escaping
// the target directory, no symlinks, and limits on file count and size.
// Every entry is decompressed, so corrupt data and sizes that lie about the
// content are caught too.
func Validate(r io.ReaderAt, size int64, lim Limits) (Info, error) {
	var info Info
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return info, &Error{Code: CodeInvalidZip, Msg: "not a valid zip file", Err: err}
	}
	if zr == nil {
		return info, &Error{Code: CodeInvalidZip, Msg: "not a valid zip file", Err: err}
	}
	seen := make(map[string]bool, len(zr.File))
	files := make(map[string]bool, len(zr.File))
	tops := map[string]bool{}
	topDirOnly := true // every entry lies inside a top-level folder
	for _, f := range zr.File {
		name := f.Name
		if err := checkPath(name); err != nil {
			return info, err
		}
		isDir := strings.HasSuffix(name, "/")
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			return info, &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("%q is a symlink; bundles may only hold files and folders", name)}
		case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice|fs.ModeIrregular) != 0:
			return info, &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("%q is not a regular file", name)}
		case mode.IsDir() && !isDir:
			return info, &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("%q is a folder without a trailing slash", name)}
		}
		key := strings.TrimSuffix(name, "/")
		if seen[key] {
			return info, &Error{Code: CodeInvalidZip, Msg: fmt.Sprintf("entry %q appears twice", name)}
		}
		seen[key] = true

		top, _, nested := strings.Cut(key, "/")
		tops[top] = true
		if isDir {
			continue
		}
		if !nested {
			topDirOnly = false // a file at the root
		}
		files[name] = true
		info.Files++
		if lim.MaxFiles > 0 && info.Files > lim.MaxFiles {
			return info, &Error{Code: CodeTooManyFiles, Msg: fmt.Sprintf("more than %d files", lim.MaxFiles)}
		}
		if f.UncompressedSize64 > 1<<62 {
			return info, &Error{Code: CodeTooLarge, Msg: fmt.Sprintf("%q declares an impossible size", name)}
		}
		info.UncompressedBytes += int64(f.UncompressedSize64)
		if lim.MaxUncompressedBytes > 0 && info.UncompressedBytes > lim.MaxUncompressedBytes {
			return info, &Error{Code: CodeTooLarge, Msg: fmt.Sprintf("files unzip to more than %d bytes", lim.MaxUncompressedBytes)}
		}
		if err := readAll(f); err != nil {
			return info, err
		}
	}
	switch {
	case files["index.html"]:
		info.Root = ""
	case len(tops) == 1 && topDirOnly:
		var top string
		for t := range tops {
			top = t
		}
		if files[top+"/index.html"] {
			info.Root = top + "/"
			break
		}
		return info, &Error{Code: CodeMissingIndex, Msg: fmt.Sprintf("no index.html at the root or in the top folder %q", top+"/")}
	case len(tops) > 1:
		return info, &Error{Code: CodeMissingIndex, Msg: "no index.html at the root, and the zip has more than one top-level entry (it must be index.html at the root, or a single top folder holding it)"}
	default:
		return info, &Error{Code: CodeMissingIndex, Msg: "no index.html at the root or in a single top folder"}
	}
	return info, nil
}

// readAll decompresses one entry. archive/zip itself fails when the data
// runs past the declared size or the CRC differs; the LimitReader is a
// second guard against a decompression bomb.
func readAll(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return &Error{Code: CodeInvalidZip, Msg: fmt.Sprintf("cannot open %q", f.Name), Err: err}
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return &Error{Code: CodeInvalidZip, Msg: fmt.Sprintf("cannot read %q", f.Name), Err: err}
	}
	if n != int64(f.UncompressedSize64) {
		return &Error{Code: CodeInvalidZip, Msg: fmt.Sprintf("%q holds %d bytes but declares %d", f.Name, n, f.UncompressedSize64)}
	}
	return nil
}

// checkPath rejects names that could land outside the unzip directory on
// any platform the plugin runs on.
func checkPath(name string) error {
	unsafe := func(why string) error {
		return &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("entry %q: %s", name, why)}
	}
	switch {
	case name == "" || name == "/":
		return unsafe("empty name")
	case strings.ContainsRune(name, 0):
		return unsafe("NUL byte in name")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return unsafe("control character in name")
	case strings.Contains(name, `\`):
		return unsafe("backslash in name")
	case strings.HasPrefix(name, "/"):
		return unsafe("absolute path")
	case len(name) >= 2 && name[1] == ':' && isLetter(name[0]):
		return unsafe("drive letter")
	case strings.Contains(name, ":"):
		// Colons make Windows drive/stream paths and break Android paths.
		return unsafe("colon in name")
	}
	segs := strings.Split(strings.TrimSuffix(name, "/"), "/")
	for _, s := range segs {
		switch s {
		case "..":
			return unsafe("parent directory reference")
		case ".":
			return unsafe("'.' path segment")
		case "":
			return unsafe("empty path segment")
		}
	}
	return nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
