// Package libpath points chdb-go at the repository's libchdb.so before
// chdb-go loads it.
//
// chdb-go dlopens the library in its package init, reading CHDB_LIB_PATH.
// Go initialises packages in import-path order once their own imports are
// ready, so this package (github.com/capstan-io/... sorts before
// github.com/chdb-io/..., and its imports are a subset of chdb-go's) runs
// first and can set the variable.
package libpath

import (
	"fmt"
	"os"
	"path/filepath"
)

// Rel is where .ci/install-deps puts the library, relative to the
// repository root.
const Rel = ".cache/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so"

// Path is the library chdb-go will load ("" if none was found).
var Path string

func init() {
	if p := os.Getenv("CHDB_LIB_PATH"); p != "" {
		Path = p
		return
	}
	root, err := RepoRoot()
	if err == nil {
		p := filepath.Join(root, Rel)
		if _, err := os.Stat(p); err == nil {
			Path = p
			os.Setenv("CHDB_LIB_PATH", p)
			return
		}
	}
	for _, p := range []string{"/usr/local/lib/libchdb.so"} {
		if _, err := os.Stat(p); err == nil {
			Path = p
			return
		}
	}
	fmt.Fprintf(os.Stderr, "chdbtest: libchdb.so not found (looked for <repo>/%s and $CHDB_LIB_PATH): run .ci/install-deps from the repository root\n", Rel)
}

// RepoRoot walks up from the working directory to the directory holding
// go.mod (tests run in their package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
