package bundlezip

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// zipTime is stamped on every entry so the same directory always gives
// the same bytes, hence the same checksum.
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ZipDir writes the contents of dir (not dir itself) to w as a zip, in
// lexical order with forward-slash names. Hidden files are included.
// A symlink is stored as the file it points to when that file lies inside
// dir; symlinks leaving dir, symlinked folders and special files are
// refused. Empty folders are kept as folder entries.
func ZipDir(dir string, w io.Writer) error {
	root, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	root, err = filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("zip %s: not a directory", dir)
	}
	zw := zip.NewWriter(w)
	if err := addDir(zw, root, ""); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip %s: %w", dir, err)
	}
	return nil
}

// addDir adds the folder root/rel (rel uses forward slashes, "" for root).
func addDir(zw *zip.Writer, root, rel string) error {
	entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	if len(entries) == 0 && rel != "" {
		h := &zip.FileHeader{Name: rel + "/", Modified: zipTime}
		h.SetMode(fs.ModeDir | 0o755)
		if _, err := zw.CreateHeader(h); err != nil {
			return fmt.Errorf("zip %s: %w", rel, err)
		}
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		if strings.ContainsAny(name, `\:`) {
			return fmt.Errorf("zip: %q: backslashes and colons are not allowed in bundle file names", joinRel(rel, name))
		}
		childRel := joinRel(rel, name)
		path := filepath.Join(root, filepath.FromSlash(childRel))
		switch t := e.Type(); {
		case t.IsDir():
			if err := addDir(zw, root, childRel); err != nil {
				return err
			}
		case t.IsRegular():
			if err := addFile(zw, path, childRel); err != nil {
				return err
			}
		case t&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return fmt.Errorf("zip: symlink %s: %w", childRel, err)
			}
			if !within(root, target) {
				return fmt.Errorf("zip: symlink %s points outside %s (to %s)", childRel, root, target)
			}
			st, err := os.Stat(target)
			if err != nil {
				return fmt.Errorf("zip: symlink %s: %w", childRel, err)
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("zip: symlink %s points to a folder or special file; only symlinks to files are followed", childRel)
			}
			if err := addFile(zw, target, childRel); err != nil {
				return err
			}
		default:
			return fmt.Errorf("zip: %s is not a regular file (%s)", childRel, t)
		}
	}
	return nil
}

func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

func within(root, path string) bool {
	r, err := filepath.Rel(root, path)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

func addFile(zw *zip.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	defer f.Close()
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: zipTime}
	h.SetMode(0o644)
	fw, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	if _, err := io.Copy(fw, f); err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	return nil
}
